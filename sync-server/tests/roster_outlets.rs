//! Service outlets (便民服务网点) and service pledges (服务承诺) loaded by the roster CSV: the
//! `gridlink-server import` binary writes them, and a phone receives them in its reference
//! data at its next sync, so the 便民 directory and the 亮身份 card are real in a new
//! deployment. Every story runs against both backends (`stories!`).

#[path = "common/backends.rs"]
mod backends;
mod common;

use std::process::Output;

use backends::Backend;
use common::{DEMO_NOW, DEMO_SEED, Device};
use gridlink_shared::demo::{self, DemoData, DemoSize};
use gridlink_shared::protocol::{EnrollRequest, SyncResponse};
use gridlink_shared::time::now_millis;
use gridlink_shared::{Role, Scope, ServiceCategory, Staff};
use gridlink_sync_server::PushLimits;

const BIN: &str = env!("CARGO_BIN_EXE_gridlink-server");

fn run<B: Backend>(place: &B::Place, args: &[&str]) -> Output {
    std::process::Command::new(BIN).args(args).args(B::cli_args(place)).output().unwrap()
}

fn demo_store<B: Backend>() -> (B::Place, B, DemoData) {
    let (place, store) = B::fresh();
    store.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    (place, store, demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW))
}

/// Enrols a phone for `staff` and syncs it until the server has nothing more.
fn phone_of<B: Backend>(store: &B, staff: &Staff) -> Device {
    let code = store.new_code(staff.id, now_millis(), 72).unwrap();
    let request = EnrollRequest { code, device_name: format!("{}的手机", staff.name) };
    let mut phone = Device::new(store.enroll(&request, now_millis()).unwrap());
    while sync(store, &mut phone).more {}
    phone
}

fn sync<B: Backend>(store: &B, phone: &mut Device) -> SyncResponse {
    let request = phone.request(Vec::new());
    let response = store.sync(phone.enrolled.device, &request, &PushLimits::default(), now_millis()).unwrap();
    phone.apply(&response);
    response
}

const HEADER: &str = "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room,pledge,category,address,hours";

/// A new deployment: one community, its grid, two outlets and a grid worker with a pledge.
fn new_deployment_csv() -> String {
    format!(
        "{HEADER}
street,00000000-0000-4000-8000-000000000001,,凤凰街道,,,,,,,,,,,,
community,00000000-0000-4000-8000-000000000011,00000000-0000-4000-8000-000000000001,澜湖社区,,,,,,,,,,,,
grid,00000000-0000-4000-8000-000000000101,00000000-0000-4000-8000-000000000011,澜湖社区第1网格,,,,,,,,,,,,
outlet,00000000-0000-4000-8000-000000000601,00000000-0000-4000-8000-000000000011,澜湖家政服务部,0711-3226688,,,,,,,,,housekeeping,滨湖北路18号,8:00-18:00
outlet,00000000-0000-4000-8000-000000000602,00000000-0000-4000-8000-000000000011,仁和社区卫生服务站,0711-3208120,,,,,,,,,medical,凤凰路66号,全天
staff,00000000-0000-4000-8000-000000000401,,孙丽华,13907140002,grid-worker,grid:00000000-0000-4000-8000-000000000101,,,,,,\"有求必应，有难必帮，当天回复\",,,
"
    )
}

fn the_cli_imports_outlets_and_pledges_and_refuses_a_hostile_file_whole<B: Backend>() {
    let dir = tempfile::tempdir().unwrap();
    let (place, store) = B::fresh();

    // A pledge with a line break, an outlet with no category and a phone no one can dial.
    let bad = dir.path().join("bad.csv");
    let bad_csv = new_deployment_csv()
        .replace(",housekeeping,", ",,")
        .replace("0711-3208120", "打电话给我")
        .replace("有求必应，有难必帮，当天回复", "有求必应\r\n有难必帮");
    std::fs::write(&bad, bad_csv).unwrap();
    let out = run::<B>(&place, &["import", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "row 5, column category:",
        "row 6, column phone: '打电话给我' is not a phone number",
        "row 7, column pledge: contains a control character",
        "nothing was imported",
    ] {
        assert!(stderr.contains(expected), "missing '{expected}' in:\n{stderr}");
    }
    assert!(store.roster().unwrap().outlets.is_empty(), "nothing imported");

    let good = dir.path().join("good.csv");
    std::fs::write(&good, new_deployment_csv()).unwrap();
    let out = run::<B>(&place, &["import", good.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(" 2 outlets,") && stdout.contains(" 1 staff,"), "{stdout}");

    let roster = store.roster().unwrap();
    let names: Vec<(&str, ServiceCategory)> = roster.outlets.iter().map(|o| (o.name.as_str(), o.category)).collect();
    assert_eq!(
        names,
        vec![("仁和社区卫生服务站", ServiceCategory::Medical), ("澜湖家政服务部", ServiceCategory::Housekeeping)]
    );
    assert_eq!(roster.outlets[1].address, "滨湖北路18号");
    assert_eq!(roster.outlets[1].hours, "8:00-18:00");
    assert_eq!(roster.staff[0].pledge, "有求必应，有难必帮，当天回复");

    // A file without the optional columns still imports, and leaves outlets alone.
    let old = dir.path().join("old.csv");
    std::fs::write(
        &old,
        "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room
building,00000000-0000-4000-8000-000000000201,00000000-0000-4000-8000-000000000101,澜湖印象3栋,,,,2,6,2,,
",
    )
    .unwrap();
    let out = run::<B>(&place, &["import", old.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(store.roster().unwrap().outlets.len(), 2);
}

fn a_phone_receives_imported_outlets_and_its_pledge_at_the_next_sync<B: Backend>() {
    let (_place, store, demo) = demo_store::<B>();
    let worker = demo.staff_with_role(Role::GridWorker).next().unwrap().clone();
    let Scope::Grid(grid) = worker.scopes[0] else { panic!("a grid worker has a grid scope") };
    let community = demo.roster.grids.iter().find(|g| g.id == grid).unwrap().community;
    let other = demo.roster.communities.iter().find(|c| c.id != community).map(|c| c.id);
    let mut phone = phone_of(&store, &worker);

    let mut csv = format!(
        "{HEADER}
outlet,00000000-0000-4000-8000-000000000611,{community},邻里开锁服务部,13807110110,,,,,,,,,locksmith,古楼街128号,24小时
staff,{},,{},{},grid-worker,grid:{grid},,,,,,\"入户走访不过夜，群众诉求当天回复\",,,
",
        worker.id, worker.name, worker.phone
    );
    if let Some(other) = other {
        csv.push_str(&format!(
            "outlet,00000000-0000-4000-8000-000000000612,{other},别处家电维修店,13807110111,,,,,,,,,appliance-repair,别处路1号,\n"
        ));
    }
    store.import_csv_from(csv.as_bytes(), now_millis()).unwrap();

    let response = sync(&store, &mut phone);
    let reference = response.reference.expect("a roster import sends the reference data again");
    let locksmith = reference.roster.outlets.iter().find(|o| o.name == "邻里开锁服务部").expect("the new outlet");
    assert_eq!(locksmith.category, ServiceCategory::Locksmith);
    assert_eq!(locksmith.hours, "24小时");
    assert!(
        !reference.roster.outlets.iter().any(|o| o.name == "别处家电维修店"),
        "an outlet of another community stays off the phone"
    );
    let me = reference.roster.staff.iter().find(|s| s.id == worker.id).unwrap();
    assert_eq!(me.pledge, "入户走访不过夜，群众诉求当天回复");
}

fn a_phone_receives_the_party_branch_of_its_grid_with_members_and_the_volunteers_of_its_community<B: Backend>() {
    let (_place, store, demo) = demo_store::<B>();
    let worker = demo.staff_with_role(Role::GridWorker).next().unwrap().clone();
    let Scope::Grid(grid) = worker.scopes[0] else { panic!("a grid worker has a grid scope") };
    let community = demo.roster.grids.iter().find(|g| g.id == grid).unwrap().community;
    let building = demo.roster.buildings.iter().find(|b| b.grid == grid).unwrap().id;
    let other_grid = demo.roster.grids.iter().find(|g| g.id != grid).unwrap().id;
    let mut phone = phone_of(&store, &worker);

    let csv = format!(
        "{HEADER},building,reported_at,skills
party-branch,00000000-0000-4000-8000-000000000701,{grid},本网格党支部,0711-3220001,,,,,,,,,,,,,,
party-branch,00000000-0000-4000-8000-000000000702,{other_grid},邻网格党支部,,,,,,,,,,,,,,,
party-group,00000000-0000-4000-8000-000000000711,00000000-0000-4000-8000-000000000701,本楼党小组,,,,,,,,,,,,,{building},,
party-member,00000000-0000-4000-8000-000000000721,00000000-0000-4000-8000-000000000701,陈志刚,13972205566,,,,,,,,,,,,{building},2019-03-12,
party-member,00000000-0000-4000-8000-000000000722,00000000-0000-4000-8000-000000000702,胡德明,13972205568,,,,,,,,,,,,,2019-04-02,
volunteer,00000000-0000-4000-8000-000000000731,{community},王秀英,13907140061,,,,,,,,,,,,,,助老;理发
"
    );
    let summary = store.import_csv_from(csv.as_bytes(), now_millis()).unwrap();
    assert_eq!((summary.party_branches, summary.party_groups, summary.party_members, summary.volunteers), (2, 1, 2, 1));

    let response = sync(&store, &mut phone);
    let roster = response.reference.expect("a roster import sends the reference data again").roster;
    let branches: Vec<&str> = roster.party_branches.iter().map(|b| b.name.as_str()).collect();
    assert!(branches.contains(&"本网格党支部"), "{branches:?}");
    let members: Vec<&str> = roster.party_members.iter().map(|m| m.name.as_str()).collect();
    assert!(members.contains(&"陈志刚"), "{members:?}");
    if demo.roster.grids.iter().find(|g| g.id == other_grid).unwrap().community == community {
        // Same community: the neighbouring grid's branch is visible too, like its staff.
        assert!(branches.contains(&"邻网格党支部") && members.contains(&"胡德明"));
    }
    assert_eq!(roster.party_groups.iter().find(|g| g.name == "本楼党小组").map(|g| g.building), Some(building));
    let volunteer = roster.volunteers.iter().find(|v| v.name == "王秀英").expect("the community's volunteer");
    assert_eq!(volunteer.skills, ["助老", "理发"]);
    let directory = gridlink_shared::party::directory(&roster);
    assert!(directory.branches.iter().any(|b| b.branch.name == "本网格党支部" && b.members.len() == 1));
}

stories!(
    the_cli_imports_outlets_and_pledges_and_refuses_a_hostile_file_whole,
    a_phone_receives_imported_outlets_and_its_pledge_at_the_next_sync,
    a_phone_receives_the_party_branch_of_its_grid_with_members_and_the_volunteers_of_its_community,
);
