//! Activity and service records in a real encrypted store: a grid worker records one for two
//! people and a case, it is listed (all, per person, on the case) and counted in the totals;
//! refused hours and people and a building leader's attempt change nothing.

use chrono::Duration;
use gridlink_client::fixtures::{self, DEMO_NOW};
use gridlink_client::{ActivityFilter, CaseFilter, Client, Error, NewActivity};
use gridlink_shared::time::local_date;
use gridlink_shared::{ActivityKind, PersonRef, RejectCode, Role, Scope, VolunteerId};

fn open(role: Role) -> (tempfile::TempDir, Client, gridlink_shared::demo::DemoData) {
    let dir = tempfile::tempdir().unwrap();
    let (client, demo) = fixtures::demo_client(dir.path(), role, DEMO_NOW).unwrap();
    (dir, client, demo)
}

#[test]
fn a_grid_worker_records_a_service_for_two_people_and_a_case_and_the_totals_count_it() {
    let (_dir, client, demo) = open(Role::GridWorker);
    let me = demo.staff_with_role(Role::GridWorker).next().unwrap();
    let Scope::Grid(grid) = me.scopes[0] else { panic!("a grid worker has a grid scope") };
    let today = local_date(DEMO_NOW);
    let year = (today - Duration::days(365), today);
    let held = client.activities(ActivityFilter::All).unwrap();
    assert!(held.iter().all(|a| demo.activities.iter().any(|d| d.id == a.id && d.placement.grid == grid)));
    assert_eq!(held.len(), demo.activities.iter().filter(|a| a.placement.grid == grid).count());
    let before = client.activity_totals(year.0, year.1).unwrap();
    // The phone holds the whole community's roster but only its grid's records: branches of
    // other grids are listed only when one of theirs served here.
    for group in &before.branches {
        let of_grid = demo.roster.party_branches.iter().any(|b| Some(b.id) == group.branch && b.grid == grid);
        assert!(of_grid || group.count > 0, "{} listed with nothing held", group.name);
    }
    assert!(demo.roster.party_branches.iter().any(|b| b.grid != grid), "the community has other grids' branches");
    let until_yesterday = client.activity_totals(year.0, today - Duration::days(1)).unwrap();

    let branch = demo.roster.party_branches.iter().find(|b| b.grid == grid).unwrap();
    let member = demo.roster.party_members.iter().find(|m| m.branch == branch.id).unwrap();
    let volunteer = demo.roster.volunteers.iter().find(|v| v.community == demo.roster.grids[0].community).unwrap();
    let case = client.cases(CaseFilter::Open, DEMO_NOW).unwrap()[0].id;
    let (member_ref, volunteer_ref) = (PersonRef::PartyMember(member.id), PersonRef::Volunteer(volunteer.id));
    let id = client
        .record_activity(
            NewActivity {
                kind: ActivityKind::VolunteerService,
                grid,
                title: " 上门陪同就医 ".into(),
                notes: String::new(),
                on: today,
                case: Some(case),
                participants: vec![(member_ref, "2.5".into()), (volunteer_ref, "3".into())],
            },
            DEMO_NOW,
        )
        .unwrap();
    assert_eq!(client.status().unwrap().unsent, 1, "one change waits for the server");

    let all = client.activities(ActivityFilter::All).unwrap();
    assert_eq!(all.len(), held.len() + 1);
    let row = all.iter().find(|a| a.id == id).unwrap();
    assert_eq!((row.title.as_str(), row.tenths, row.case), ("上门陪同就医", 55, Some(case)));
    assert_eq!(row.recorded_by_name, me.name);
    let names: Vec<&str> = row.people.iter().map(|(_, n, _)| n.as_str()).collect();
    assert!(row.people.iter().any(|(p, _, t)| *p == member_ref && *t == 25));
    assert!(names.contains(&member.name.as_str()) && names.contains(&volunteer.name.as_str()));
    assert!(client.activities(ActivityFilter::Person(member_ref)).unwrap().iter().any(|a| a.id == id));
    assert!(client.case(case, DEMO_NOW).unwrap().services.iter().any(|a| a.id == id), "listed on the case");

    let after = client.activity_totals(year.0, year.1).unwrap();
    assert_eq!(after.tenths(), before.tenths() + 55);
    let group = after.branches.iter().find(|g| g.branch == Some(branch.id)).unwrap();
    let old_group = before.branches.iter().find(|g| g.branch == Some(branch.id)).unwrap();
    assert_eq!((group.tenths, group.count), (old_group.tenths + 25, old_group.count + 1));
    assert_eq!(after.volunteers.tenths, before.volunteers.tenths + 30);
    let old = before.person(member_ref).map_or(0, |p| p.tenths);
    assert_eq!(after.person(member_ref).unwrap().tenths, old + 25);
    // A range that ends yesterday does not count it.
    assert_eq!(client.activity_totals(year.0, today - Duration::days(1)).unwrap(), until_yesterday);

    // The export holds it too.
    let export = client.export().unwrap();
    assert!(export["activities"].as_array().unwrap().iter().any(|a| a["id"] == id.to_string()));
}

#[test]
fn absurd_hours_unknown_people_and_a_building_leader_are_refused_and_nothing_is_written() {
    let (_dir, client, demo) = open(Role::GridWorker);
    let me = demo.staff_with_role(Role::GridWorker).next().unwrap();
    let Scope::Grid(grid) = me.scopes[0] else { panic!("grid scope") };
    let volunteer = PersonRef::Volunteer(demo.roster.volunteers[0].id);
    let new = |participants: Vec<(PersonRef, String)>| NewActivity {
        kind: ActivityKind::PartyActivity,
        grid,
        title: "清理楼道".into(),
        notes: String::new(),
        on: local_date(DEMO_NOW),
        case: None,
        participants,
    };
    let held = client.activities(ActivityFilter::All).unwrap().len();
    for hours in ["25", "0", "-1", "两小时"] {
        let err = client.record_activity(new(vec![(volunteer, hours.into())]), DEMO_NOW).unwrap_err();
        assert!(matches!(err, Error::Input(_)), "{hours}: {err:?}");
    }
    let stranger = PersonRef::Volunteer(VolunteerId::from_u128(12345));
    assert!(matches!(client.record_activity(new(vec![(stranger, "1".into())]), DEMO_NOW), Err(Error::Input(_))));
    assert!(matches!(client.record_activity(new(vec![]), DEMO_NOW), Err(Error::Input(_))));
    assert_eq!(client.activities(ActivityFilter::All).unwrap().len(), held);
    assert_eq!(client.status().unwrap().unsent, 0);

    let (_dir, leader, _) = open(Role::BuildingLeader);
    assert!(leader.activities(ActivityFilter::All).unwrap().is_empty(), "building leaders do not receive records");
    let err = leader.record_activity(new(vec![(volunteer, "1".into())]), DEMO_NOW).unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(v) if v.code == RejectCode::OutOfScope) || matches!(err, Error::Input(_)),
        "{err:?}"
    );
    assert_eq!(leader.status().unwrap().unsent, 0);
}
