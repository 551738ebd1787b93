//! Activity and service records over the real router and a real SQLite file: the demo's
//! records reach the grid's phones, a grid worker's new record is accepted and pulled by the
//! grid's other device, a building leader's is refused, and an oversized participant list is
//! refused without harming the store.

mod common;

use common::Harness;
use gridlink_shared::protocol::AckStatus;
use gridlink_shared::{
    ActivityFile, ActivityId, ActivityKind, CaseId, DocId, PersonRef, Placement, RejectCode, Role, Scope, Staff,
    VolunteerId, doc,
};

fn rejected(status: &AckStatus) -> RejectCode {
    match status {
        AckStatus::Rejected { code, .. } => *code,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn record(h: &Harness, placement: Placement, by: &Staff, case: Option<CaseId>) -> ActivityFile {
    let mut file = ActivityFile::new(
        ActivityId::new(),
        ActivityKind::VolunteerService,
        placement,
        "为独居老人上门理发",
        gridlink_shared::time::local_date(gridlink_shared::time::now_millis()),
        case,
        (by.id, &by.name),
        gridlink_shared::time::now_millis(),
    );
    let volunteer = &h.demo.roster.volunteers[0];
    file.add(PersonRef::Volunteer(volunteer.id), &volunteer.name, 15);
    file
}

#[tokio::test]
async fn a_record_by_a_grid_worker_is_accepted_and_reaches_the_grids_other_device() {
    let h = Harness::new();
    let worker = h.staff(Role::GridWorker);
    let Scope::Grid(grid) = worker.scopes[0] else { panic!("grid scope") };
    let mut phone = h.enroll(&worker).await;
    let mut tablet = h.enroll(&worker).await;
    for device in [&mut phone, &mut tablet] {
        h.sync_all(device).await;
    }
    let demo_records: Vec<DocId> =
        h.demo.activities.iter().filter(|a| a.placement.grid == grid).map(|a| a.id.into()).collect();
    assert!(!demo_records.is_empty());
    assert!(demo_records.iter().all(|id| tablet.docs.contains_key(id)), "the demo's records came with the grid");

    let case = h.demo.cases.iter().find(|c| c.placement.grid == grid).unwrap();
    let mut placement = case.placement;
    placement.building = None;
    let file = record(&h, placement, &worker, Some(case.id));
    let push = phone.create(&file);
    let response = h.sync(&mut phone, vec![push]).await;
    assert_eq!(response.acks[0].status, AckStatus::Accepted, "{:?}", response.acks[0]);
    h.assert_store_loads("after an activity record");

    h.sync(&mut tablet, Vec::new()).await;
    let on_tablet: ActivityFile = doc::read(&tablet.docs[&file.id.into()]).unwrap();
    assert_eq!(on_tablet, file);
    assert_eq!(on_tablet.case, Some(case.id));
}

#[tokio::test]
async fn a_building_leader_cannot_record_and_does_not_receive_records() {
    let h = Harness::new();
    let leader = h.staff(Role::BuildingLeader);
    let Scope::Building(building) = leader.scopes[0] else { panic!("leader scope") };
    let mut phone = h.enroll(&leader).await;
    h.sync_all(&mut phone).await;
    assert!(
        phone.docs.values().all(|d| !matches!(doc::read_any(d), Ok(gridlink_shared::AnyDoc::Activity(_)))),
        "records are not delivered to building scopes"
    );
    let placement = h.demo.roster.placement_of_building(building).unwrap();
    // Placed at the leader's own building, so the refusal is for the role, not the place.
    let file = record(&h, placement, &leader, None);
    let push = phone.create(&file);
    let response = h.sync(&mut phone, vec![push]).await;
    assert_eq!(rejected(&response.acks[0].status), RejectCode::ForbiddenRole);
    assert!(h.server_doc(file.id.into()).is_none());
}

#[tokio::test]
async fn an_oversized_participant_list_is_refused_and_the_store_stays_whole() {
    let h = Harness::new();
    let worker = h.staff(Role::GridWorker);
    let Scope::Grid(grid) = worker.scopes[0] else { panic!("grid scope") };
    let mut phone = h.enroll(&worker).await;
    h.sync_all(&mut phone).await;
    let placement = h.demo.roster.placement_of_grid(grid).unwrap();
    let mut crowd = record(&h, placement, &worker, None);
    for n in 0..5_000u128 {
        crowd.add(PersonRef::Volunteer(VolunteerId::from_u128(1_000_000 + n)), "冒名志愿者", 240);
    }
    let push = phone.create(&crowd);
    let response = h.sync(&mut phone, vec![push]).await;
    let code = rejected(&response.acks[0].status);
    assert!(matches!(code, RejectCode::InvalidDocument | RejectCode::TooLarge), "{code}");
    assert!(h.server_doc(crowd.id.into()).is_none());
    h.assert_store_loads("after a refused oversized record");

    // The same worker's honest record right after is accepted.
    let honest = record(&h, placement, &worker, None);
    let push = phone.create(&honest);
    let response = h.sync(&mut phone, vec![push]).await;
    assert_eq!(response.acks[0].status, AckStatus::Accepted, "{:?}", response.acks[0]);
}

#[tokio::test]
async fn the_dashboard_shows_a_community_supervisor_the_service_hours_of_its_branches() {
    let h = Harness::new();
    let supervisor = h
        .demo
        .staff_with_role(Role::Supervisor)
        .find(|s| matches!(s.scopes.as_slice(), [Scope::Community(_)]))
        .unwrap()
        .clone();
    let password = "社区督导Service2026";
    h.admin.set_console_password(supervisor.id, password, gridlink_shared::time::now_millis()).unwrap();
    let mut browser = common::console::Browser::signed_in(h.app.clone(), &supervisor.phone, password).await;
    // The demo's history ends at DEMO_NOW: its last year.
    let last = gridlink_shared::time::local_date(common::DEMO_NOW);
    let first = last - chrono::Duration::days(364);
    let page = browser.get(&format!("/console?from={first}&to={last}")).await;
    assert_eq!(page.status, axum::http::StatusCode::OK, "{}", page.body);

    let expected = gridlink_shared::activity::totals(
        &h.demo.activities.iter().flat_map(ActivityFile::entries).collect::<Vec<_>>(),
        &h.demo.roster,
        first,
        last,
    );
    assert!(expected.tenths() > 0);
    assert!(page.body.contains("党员志愿服务时长"), "{}", page.body);
    let total = format!(
        r#"<span class="num" data-figure="service.hours">{}</span>"#,
        gridlink_shared::activity::hours_text(expected.tenths())
    );
    assert!(page.body.contains(&total), "{total} in the page");
    for branch in &expected.branches {
        assert!(page.body.contains(&branch.name), "{} on the card", branch.name);
    }
}
