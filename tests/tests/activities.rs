//! End to end: a volunteer service recorded on one phone for a party member and a volunteer,
//! for one of the grid's open cases, reaches the real gridlink-server on 127.0.0.1 and the
//! grid's other phone at the next sync: listed, counted in its branch's and the volunteers'
//! hours, and on the case's detail.

use gridlink_client::{ActivityFilter, CaseFilter, NewActivity};
use gridlink_shared::time::{DAY_MS, local_date, now_millis};
use gridlink_shared::{ActivityKind, PersonRef};
use gridlink_tests::{Server, enrolled, export, sync_until_ok};

type TestResult = anyhow::Result<()>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_recorded_on_one_phone_is_counted_on_the_other() -> TestResult {
    let server = Server::start_demo()?;
    let (worker, grid_scope) = server.user_with_role("grid-worker", 0)?;
    let (second, _) = server.add_user("潘雪梅", "grid-worker", &grid_scope)?;
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = enrolled(&server, &server.url(), dir_a.path(), &worker, "phone-a").await?;
    let b = enrolled(&server, &server.url(), dir_b.path(), &second, "phone-b").await?;

    let now = now_millis();
    let today = local_date(now);
    let year = (local_date(now - 364 * DAY_MS), today);
    let before = b.activity_totals(year.0, year.1)?;
    let held_before = b.activities(ActivityFilter::All)?.len();
    assert_eq!(held_before, a.activities(ActivityFilter::All)?.len(), "both phones hold the grid's records");

    let choices = a.activity_choices()?;
    assert!(choices.may_record);
    let grid = &choices.grids[0];
    let (member, _) = grid.members[0].clone();
    let (volunteer, _) = grid.volunteers[0].clone();
    // An open case when there is one (the form offers those), else any case of the grid.
    let case = match grid.open_cases.first() {
        Some((case, _)) => *case,
        None => a.cases(CaseFilter::All, now)?[0].id,
    };
    let id = a.record_activity(
        NewActivity {
            kind: ActivityKind::VolunteerService,
            grid: grid.grid,
            title: "为独居老人上门理发".into(),
            notes: "老人行动不便".into(),
            on: today,
            case: Some(case),
            participants: vec![(member, "1.5".into()), (volunteer, "2".into())],
        },
        now,
    )?;
    sync_until_ok(&a, "phone A pushes the record").await?;
    assert_eq!(a.status()?.unsent, 0, "the server accepted the record");
    assert_eq!(a.rejected_changes()?.len(), 0);
    sync_until_ok(&b, "phone B pulls it").await?;

    let on_b = b.activities(ActivityFilter::All)?;
    assert_eq!(on_b.len(), held_before + 1);
    let row = on_b.iter().find(|r| r.id == id).expect("the record on phone B");
    assert_eq!((row.tenths, row.case), (35, Some(case)));
    let after = b.activity_totals(year.0, year.1)?;
    assert_eq!(after.tenths(), before.tenths() + 35);
    assert_eq!(after.volunteers.tenths, before.volunteers.tenths + 20);
    let PersonRef::PartyMember(_) = member else { panic!("a party member") };
    let old = before.person(member).map_or(0, |p| p.tenths);
    assert_eq!(after.person(member).map(|p| p.tenths), Some(old + 15));
    assert!(b.case(case, now)?.services.iter().any(|s| s.id == id), "listed on the case on phone B");
    assert_eq!(export(&a), export(&b), "both phones hold the same records");
    Ok(())
}
