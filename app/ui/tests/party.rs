//! The 党群 list rendered with `VirtualDom` + `dioxus_ssr` over a real encrypted store holding
//! the small demo's roster: a grid worker sees the grid party branches of the community with
//! their building party groups and the party members who reported, then the volunteers with
//! their skills, each with a phone link; 我的 and 便民服务 link to it; a roster without party
//! lists says how they get there.

mod common;

use common::{NOW, render};

use gridlink_client::{Client, fixtures};
use gridlink_shared::activity::hours_text;
use gridlink_shared::{Lang, Role, Roster};

fn assert_has(html: &str, needle: &str) {
    let escaped = needle.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    assert!(html.contains(&escaped), "expected {needle:?} in the rendered screen:\n{html}");
}

fn assert_lacks(html: &str, needle: &str) {
    assert!(!html.contains(needle), "did not expect {needle:?} in the rendered screen");
}

#[test]
fn the_party_list_shows_branches_with_their_members_then_volunteers_in_chinese() {
    let dir = tempfile::tempdir().unwrap();
    let (client, data) = fixtures::demo_client(dir.path(), Role::GridWorker, NOW).unwrap();
    let directory = client.party_directory().unwrap();
    assert_eq!(directory.branches.len(), data.roster.party_branches.len());
    let html = render(&client, "/party", Lang::Zh);
    assert_has(&html, "党群服务");
    assert_has(&html, "网格党支部");
    let members_stat = format!(r#"<div class="n">{}</div><div class="l">报到党员</div>"#, directory.member_count());
    assert!(html.contains(&members_stat), "{members_stat} in:\n{html}");

    // The first branch is open: its groups and members with building, report day and phone.
    let first = &directory.branches[0];
    assert_has(&html, &first.branch.name);
    assert_has(&html, &format!("楼栋党小组 {} 个", first.groups.len()));
    assert_has(&html, &first.groups[0].0.name);
    for (member, building) in &first.members {
        assert_has(&html, &member.name);
        assert_has(&html, &format!("tel:{}", member.phone));
        assert_has(&html, &format!("{building} · {} 报到", member.reported_at));
    }
    // Another branch shows its name and counts, not its members.
    let second = &directory.branches[1];
    assert_has(&html, &second.branch.name);
    assert_has(&html, &format!("报到党员 {} 名", second.members.len()));
    assert_lacks(&html, &format!("tel:{}", second.members[0].0.phone));

    // Volunteers: the first thirty with their skills, then "show all".
    let volunteers = &directory.volunteers;
    assert!(volunteers.len() > 30, "the small demo has {} volunteers", volunteers.len());
    for volunteer in volunteers.iter().take(30) {
        assert_has(&html, &format!("tel:{}", volunteer.phone));
        for skill in &volunteer.skills {
            assert_has(&html, skill);
        }
    }
    assert_lacks(&html, &format!("tel:{}", volunteers[30].phone));
    assert_has(&html, &format!("显示全部 {} 名", volunteers.len()));
}

#[test]
fn the_party_list_speaks_english_too() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _) = fixtures::demo_client(dir.path(), Role::GridWorker, NOW).unwrap();
    let first = client.party_directory().unwrap().branches.remove(0);
    let html = render(&client, "/party", Lang::En);
    assert!(html.contains("<h1>Party &#38; volunteers</h1>"), "{html}");
    assert_has(&html, "Grid party branches");
    assert_has(&html, &format!("reported {}", first.members[0].0.reported_at));
    assert_lacks(&html, "党群服务");
}

#[test]
fn me_and_services_link_to_the_party_list() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _) = fixtures::demo_client(dir.path(), Role::GridWorker, NOW).unwrap();
    for path in ["/me", "/services"] {
        let html = render(&client, path, Lang::Zh);
        assert!(html.contains(r#"href="/party""#), "{path} links to /party:\n{html}");
        assert_has(&html, "党群服务（党支部·党员·志愿者）");
    }
}

#[test]
fn a_roster_without_party_lists_says_the_administrator_imports_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_, data) = fixtures::demo_client(dir.path(), Role::GridWorker, NOW).unwrap();
    let staff = data.staff_with_role(Role::GridWorker).next().unwrap().clone();
    let roster = Roster {
        party_branches: vec![],
        party_groups: vec![],
        party_members: vec![],
        volunteers: vec![],
        ..data.roster.clone()
    };
    let empty_dir = tempfile::tempdir().unwrap();
    let client = Client::open_with_documents(empty_dir.path(), staff.principal(), roster, vec![]).unwrap();
    assert!(client.party_directory().unwrap().is_empty());
    let html = render(&client, "/party", Lang::Zh);
    assert_has(&html, "还没有导入党支部和志愿者");
    assert_lacks(&html, "显示全部");
}

/// The 党群 screen's range: the last year up to the fixtures' today.
fn last_year() -> (chrono::NaiveDate, chrono::NaiveDate) {
    let today = gridlink_shared::time::local_date(NOW);
    (today - chrono::Duration::days(364), today)
}

#[test]
fn the_party_screen_shows_service_hours_per_branch_and_the_record_button_in_chinese() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _) = fixtures::demo_client(dir.path(), Role::GridWorker, NOW).unwrap();
    let (from, to) = last_year();
    let totals = client.activity_totals(from, to).unwrap();
    assert!(totals.tenths() > 0, "the demo grid has a year of services");
    let html = render(&client, "/party", Lang::Zh);
    assert_has(&html, "服务时长");
    assert_has(&html, &format!("{from} 至 {to}"));
    assert_has(&html, &format!("{} 小时", hours_text(totals.tenths())));
    for group in &totals.branches {
        assert_has(&html, &group.name);
        assert_has(&html, &format!("{} 小时 · {} 人次", hours_text(group.tenths), group.count));
    }
    assert_has(&html, &format!("{} 小时 · {} 人次", hours_text(totals.volunteers.tenths), totals.volunteers.count));
    assert!(html.contains(r#"href="/party/record""#), "a grid worker may record:\n{html}");
    assert_has(&html, "记录志愿服务 / 党员活动");
}

#[test]
fn the_record_form_offers_the_grids_people_and_open_cases_in_chinese() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _) = fixtures::demo_client(dir.path(), Role::GridWorker, NOW).unwrap();
    let choices = client.activity_choices().unwrap();
    assert!(choices.may_record);
    let grid = &choices.grids[0];
    let html = render(&client, "/party/record", Lang::Zh);
    for label in
        ["记录服务", "类别", "志愿服务", "党员活动", "服务内容", "服务日期", "关联事件（可不选）", "不关联事件"]
    {
        assert_has(&html, label);
    }
    assert_has(&html, "参加人员及时长");
    assert_has(&html, &grid.members[0].1);
    assert_has(&html, &grid.volunteers[0].1);
    assert!(!grid.open_cases.is_empty());
    assert_has(&html, &grid.open_cases[0].1);
    assert_has(&html, &format!(r#"max="{}""#, last_year().1));
    assert_has(&html, "保存");
}

#[test]
fn a_building_leader_sees_no_hours_to_record_and_a_case_lists_its_services() {
    let dir = tempfile::tempdir().unwrap();
    let (leader, _) = fixtures::demo_client(dir.path(), Role::BuildingLeader, NOW).unwrap();
    let html = render(&leader, "/party", Lang::Zh);
    assert_lacks(&html, "服务时长");
    assert_lacks(&html, r#"href="/party/record""#);
    let form = render(&leader, "/party/record", Lang::Zh);
    assert_has(&form, "只有网格员和督导可以记录服务时长");

    let dir = tempfile::tempdir().unwrap();
    let (client, data) = fixtures::demo_client(dir.path(), Role::GridWorker, NOW).unwrap();
    let linked = client
        .activities(gridlink_client::ActivityFilter::All)
        .unwrap()
        .into_iter()
        .find(|a| a.case.is_some())
        .expect("a demo record of this grid serves a case");
    let case = linked.case.unwrap();
    assert!(data.cases.iter().any(|c| c.id == case));
    let html = render(&client, &format!("/cases/{case}"), Lang::Zh);
    assert_has(&html, "志愿服务");
    assert_has(&html, &linked.title);
    assert!(html.contains(r#"id="case-services""#), "{html}");
}
