//! End to end: a newly moved-in household (新迁入) filed on one phone reaches the real
//! gridlink-server on 127.0.0.1 and the other phone of the grid at the next sync, with its
//! residents, its new-arrival tag and its first-visit deadline; a resident's death recorded on
//! the second phone comes back to the first with the resident still on the file.

use gridlink_client::{HouseholdFilter, NewHousehold, ResidentInput};
use gridlink_shared::household::DepartureKind;
use gridlink_shared::time::{DAY_MS, local_date, now_millis};
use gridlink_shared::validate::Field;
use gridlink_shared::{MustVisitTag, Sex};
use gridlink_tests::{Server, enrolled, export, sync_until_ok};

type TestResult = anyhow::Result<()>;

fn resident(name: &str, relation: &str, sex: Sex, birth_year: u16, id_number: &str, phone: &str) -> ResidentInput {
    ResidentInput {
        name: name.into(),
        sex,
        birth_year,
        relation: relation.into(),
        phone: phone.into(),
        id_number: (!id_number.is_empty()).then(|| id_number.to_string()),
        flags: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_arrival_filed_on_one_phone_reaches_the_other_with_its_tag() -> TestResult {
    let server = Server::start_demo()?;
    let (worker, grid_scope) = server.user_with_role("grid-worker", 0)?;
    let (second, _) = server.add_user("潘雪梅", "grid-worker", &grid_scope)?;
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = enrolled(&server, &server.url(), dir_a.path(), &worker, "phone-a").await?;
    let b = enrolled(&server, &server.url(), dir_b.path(), &second, "phone-b").await?;

    let now = now_millis();
    let building = a.buildings()?[0].id;
    let household = NewHousehold {
        building,
        unit: "4".into(),
        room: "1503".into(),
        head: "熊志刚".into(),
        phone: "13886301275".into(),
        notes: "从梁子湖区迁入，租住".into(),
    };
    let residents = vec![
        resident("熊志刚", "户主", Sex::Male, 1988, "420702198807161530", "13886301275"),
        resident("熊梓涵", "子女", Sex::Female, 2012, "420703201209010047", ""),
    ];
    let id = a.file_new_arrival(household.clone(), residents, None, now)?;
    assert_eq!(a.status()?.unsent, 1, "filed offline, one change waiting");

    sync_until_ok(&a, "phone A pushes the new household").await?;
    assert_eq!(a.status()?.unsent, 0, "the server accepted the household");
    assert_eq!(a.rejected_changes()?.len(), 0);
    sync_until_ok(&b, "phone B pulls it").await?;

    let on_b = b.household(id, now)?;
    assert_eq!(on_b.head, "熊志刚");
    assert_eq!(on_b.residents.len(), 2);
    let tag = on_b.tags.iter().find(|t| t.tag == MustVisitTag::NewArrival).expect("the new-arrival tag on phone B");
    assert_eq!(tag.since, local_date(now));
    let due = on_b.dues.iter().find(|d| d.tag == MustVisitTag::NewArrival).expect("its first-visit deadline");
    let days = b.policy().visit_every_days[&MustVisitTag::NewArrival];
    assert_eq!(due.due_on, local_date(now + days * DAY_MS));
    let tagged = b.households(&HouseholdFilter { tag: Some(MustVisitTag::NewArrival), ..Default::default() }, now)?;
    assert!(tagged.iter().any(|row| row.id == id), "phone B lists it under 新迁入");

    // Phone B now knows the room is lived in: filing it again is refused at the room field.
    let problems = b.new_household_problems(&household, &[])?;
    assert_eq!(problems.iter().map(|(_, e)| e.field).collect::<Vec<_>>(), vec![Field::Room]);

    // A death recorded on phone B comes back to phone A; the resident stays on the file.
    let daughter = on_b.residents.iter().find(|r| r.name == "熊梓涵").unwrap().id;
    let head = on_b.residents.iter().find(|r| r.name == "熊志刚").unwrap().id;
    b.set_departure(id, head, Some((DepartureKind::Deceased, local_date(now))), "", now)?;
    sync_until_ok(&b, "phone B pushes the departure").await?;
    assert_eq!(b.rejected_changes()?.len(), 0);
    sync_until_ok(&a, "phone A pulls it").await?;
    let on_a = a.household(id, now)?;
    assert_eq!(on_a.residents.len(), 2);
    let head_on_a = on_a.residents.iter().find(|r| r.id == head).unwrap();
    assert_eq!(head_on_a.departure.as_ref().map(|d| d.kind), Some(DepartureKind::Deceased));
    assert!(on_a.residents.iter().find(|r| r.id == daughter).unwrap().departure.is_none());
    assert_eq!(export(&a), export(&b), "both phones hold the same file");
    Ok(())
}
