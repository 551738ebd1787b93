//! End to end: a roster CSV imported with the real `gridlink-server import` while the server
//! runs reaches a phone (the real client core over HTTP on 127.0.0.1) at its next sync: a new
//! service outlet in the 便民 directory, the grid worker's new service pledge on the 亮身份
//! card, and a new grid's party branch, building party group, reported party member and a
//! volunteer in the 党群 list.

use gridlink_shared::ServiceCategory;
use gridlink_tests::{Server, enrolled, sync_until_ok};

type TestResult = anyhow::Result<()>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outlets_pledges_and_party_lists_imported_by_csv_reach_the_phone_at_its_next_sync() -> TestResult {
    let server = Server::start_demo()?;
    let (worker, grid_scope) = server.user_with_role("grid-worker", 0)?;
    let users = server.users()?;
    let me = users.iter().find(|u| u["id"] == worker.as_str()).expect("the worker in user list");
    let dir = tempfile::tempdir()?;
    let phone = enrolled(&server, &server.url(), dir.path(), &worker, "phone").await?;
    sync_until_ok(&phone, "first sync").await?;
    assert!(!phone.identity()?.pledge.contains("入户走访不过夜"));

    let roster: serde_json::Value = serde_json::from_str(&server.admin(&["roster", "--json"])?)?;
    let grid = grid_scope.strip_prefix("grid:").expect("a grid worker's scope is a grid");
    let community = roster["streets"][0]["communities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["grids"].as_array().unwrap().iter().any(|g| g["id"] == grid))
        .expect("the worker's community");
    let community_id = community["id"].as_str().unwrap();
    let community_name = community["name"].as_str().unwrap();

    let csv = format!(
        "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room,pledge,category,address,hours,building,reported_at,skills
outlet,00000000-0000-4000-8000-000000000901,{community_id},{community_name}邻里开锁服务部,13807110110,,,,,,,,,locksmith,鄂州市鄂城区古楼街128号,24小时,,,
staff,{worker},,{name},{phone},grid-worker,{grid_scope},,,,,,入户走访不过夜，群众诉求当天回复,,,,,,
grid,00000000-0000-4000-8000-000000000902,{community_id},{community_name}第9网格,,,,,,,,,,,,,,,
building,00000000-0000-4000-8000-000000000903,00000000-0000-4000-8000-000000000902,洋澜湖畔11栋,,,,2,11,2,,,,,,,,,
party-branch,00000000-0000-4000-8000-000000000904,00000000-0000-4000-8000-000000000902,{community_name}第9网格党支部,0711-3226001,,,,,,,,,,,,,,
party-group,00000000-0000-4000-8000-000000000905,00000000-0000-4000-8000-000000000904,洋澜湖畔11栋党小组,,,,,,,,,,,,,00000000-0000-4000-8000-000000000903,,
party-member,00000000-0000-4000-8000-000000000906,00000000-0000-4000-8000-000000000904,程国栋,13972208866,,,,,,,,,,,,00000000-0000-4000-8000-000000000903,2019-05-20,
volunteer,00000000-0000-4000-8000-000000000907,{community_id},邵慧琴,13972208877,,,,,,,,,,,,,,助老陪护；义务理发
",
        name = me["name"].as_str().unwrap(),
        phone = me["phone"].as_str().unwrap_or(""),
    );
    let file = dir.path().join("roster.csv");
    std::fs::write(&file, csv)?;
    let out = server.admin(&["import", file.to_str().unwrap()])?;
    assert!(
        out.contains(" 1 outlets,") && out.contains(" 1 party branches,") && out.contains(" 1 volunteers,"),
        "{out}"
    );

    sync_until_ok(&phone, "the sync after the import").await?;

    let locksmiths = phone.services()?.into_iter().find(|g| g.category == ServiceCategory::Locksmith).unwrap();
    let outlet = locksmiths.outlets.iter().find(|o| o.name.ends_with("邻里开锁服务部")).expect("the new outlet");
    assert_eq!((outlet.phone.as_str(), outlet.hours.as_str()), ("13807110110", "24小时"));
    assert_eq!(phone.identity()?.pledge, "入户走访不过夜，群众诉求当天回复");

    let party = phone.party_directory()?;
    let branch = party.branches.iter().find(|b| b.branch.name.ends_with("第9网格党支部")).expect("the new branch");
    assert_eq!(branch.groups.len(), 1);
    let (member, building) = &branch.members[0];
    assert_eq!((member.name.as_str(), building.as_str()), ("程国栋", "洋澜湖畔11栋"));
    let volunteer = party.volunteers.iter().find(|v| v.name == "邵慧琴").expect("the new volunteer");
    assert_eq!(volunteer.skills, ["助老陪护", "义务理发"]);
    Ok(())
}
