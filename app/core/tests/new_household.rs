//! Filing a newly moved-in household on the phone, against a real encrypted SQLite file: the
//! new-arrival tag and its first-visit deadline come with the file, bad input is refused at
//! its field, and residents who leave stay on the file, marked.

use chrono::{Duration, NaiveDate};
use gridlink_client::fixtures::{self, DEMO_NOW};
use gridlink_client::{Client, Error, HouseholdEdit, HouseholdFilter, NewHousehold, ResidentInput};
use gridlink_shared::household::DepartureKind;
use gridlink_shared::policy::DueState;
use gridlink_shared::time::local_date;
use gridlink_shared::validate::Field;
use gridlink_shared::{HouseholdStatus, MustVisitTag, Role, Sex};

fn worker() -> (tempfile::TempDir, Client) {
    let dir = tempfile::tempdir().unwrap();
    let (client, _demo) = fixtures::demo_client(dir.path(), Role::GridWorker, DEMO_NOW).unwrap();
    (dir, client)
}

fn resident(name: &str, relation: &str, sex: Sex, birth_year: u16, id_number: &str, phone: &str) -> ResidentInput {
    ResidentInput {
        name: name.into(),
        sex,
        birth_year,
        relation: relation.into(),
        phone: phone.into(),
        id_number: Some(id_number.into()),
        flags: vec![],
    }
}

/// The 刘 family moving into unit 3, room 1802 of the worker's first building.
fn liu_family(client: &Client) -> (NewHousehold, Vec<ResidentInput>) {
    let building = client.buildings().unwrap()[0].id;
    let household = NewHousehold {
        building,
        unit: "3".into(),
        room: "1802".into(),
        head: "刘志强".into(),
        phone: "13872351688".into(),
        notes: "从鄂城区古楼街道迁入".into(),
    };
    let residents = vec![
        resident("刘志强", "户主", Sex::Male, 1988, "420702198807161530", "13872351688"),
        resident("陈晓燕", "配偶", Sex::Female, 1990, "", "15971120345"),
        resident("刘梓涵", "子女", Sex::Female, 2012, "420703201209010047", ""),
    ];
    (household, residents)
}

#[test]
fn filing_a_new_arrival_sets_its_tag_and_first_visit_deadline_at_once() {
    let (_dir, client) = worker();
    let (household, residents) = liu_family(&client);
    assert_eq!(client.new_household_problems(&household, &residents).unwrap(), vec![]);
    let id = client.file_new_arrival(household, residents, None, DEMO_NOW).unwrap();

    let detail = client.household(id, DEMO_NOW).unwrap();
    let today = local_date(DEMO_NOW);
    assert_eq!(detail.head, "刘志强");
    assert_eq!(detail.residents.len(), 3);
    assert!(detail.residents.iter().any(|r| r.name == "刘梓涵" && r.id_number_masked == "4207**********0047"));
    let tag = detail.tags.iter().find(|t| t.tag == MustVisitTag::NewArrival).expect("the new-arrival tag");
    assert_eq!(tag.since, today);
    let days = client.policy().visit_every_days[&MustVisitTag::NewArrival];
    let due = detail.dues.iter().find(|d| d.tag == MustVisitTag::NewArrival).expect("a first-visit deadline");
    assert_eq!(due.due_on, today + Duration::days(days));
    assert_eq!(due.last_met, None);

    // The one change is queued for the server, and the list finds the household by the tag.
    assert_eq!(client.status().unwrap().unsent, 1);
    let tagged = client
        .households(&HouseholdFilter { tag: Some(MustVisitTag::NewArrival), ..Default::default() }, DEMO_NOW)
        .unwrap();
    assert!(tagged.iter().any(|row| row.id == id));
}

#[test]
fn an_earlier_move_in_day_can_make_the_first_visit_overdue() {
    let (_dir, client) = worker();
    let (household, residents) = liu_family(&client);
    let moved_in = local_date(DEMO_NOW) - Duration::days(10);
    let id = client.file_new_arrival(household, residents, Some(moved_in), DEMO_NOW).unwrap();
    let due = client.household(id, DEMO_NOW).unwrap().dues.into_iter().next().unwrap();
    assert!(matches!(due.state, DueState::Overdue { .. }), "{:?}", due.state);
}

#[test]
fn a_room_lived_in_and_malformed_id_or_phone_are_refused_at_their_fields() {
    let (_dir, client) = worker();
    let (household, residents) = liu_family(&client);
    client.file_new_arrival(household.clone(), residents.clone(), None, DEMO_NOW).unwrap();

    let mut bad = residents.clone();
    bad[1].phone = "1597112034".into();
    bad[2].id_number = Some("420703201209010041".into());
    let problems = client.new_household_problems(&household, &bad).unwrap();
    let fields: Vec<(Option<usize>, Field)> = problems.iter().map(|(at, e)| (*at, e.field)).collect();
    assert_eq!(fields, vec![(None, Field::Room), (Some(1), Field::ResidentPhone), (Some(2), Field::ResidentIdNumber)]);
    assert!(problems[0].1.zh.contains("3单元1802室"), "{}", problems[0].1.zh);

    let unsent = client.status().unwrap().unsent;
    let err = client.file_new_arrival(household.clone(), residents, None, DEMO_NOW).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    assert!(err.plain().zh.contains("已有在住住户"), "{}", err.plain().zh);
    assert_eq!(client.status().unwrap().unsent, unsent, "nothing was queued");

    // The same room in another unit is free.
    let other_unit = NewHousehold { unit: "2".into(), ..household };
    assert_eq!(client.new_household_problems(&other_unit, &[]).unwrap(), vec![]);
}

#[test]
fn a_moved_out_households_room_takes_the_next_family() {
    let (_dir, client) = worker();
    let (household, residents) = liu_family(&client);
    let first = client.file_new_arrival(household.clone(), residents, None, DEMO_NOW).unwrap();
    client
        .edit_household(
            first,
            HouseholdEdit { status: Some(HouseholdStatus::MovedOut), ..Default::default() },
            DEMO_NOW,
        )
        .unwrap();
    let next = NewHousehold { head: "黄丽华".into(), phone: "0711-3256789".into(), ..household };
    let second = client.file_new_arrival(next, vec![], None, DEMO_NOW).unwrap();

    // History kept: the old file is still there, marked moved out, beside the new one.
    let old = client.household(first, DEMO_NOW).unwrap();
    assert_eq!(old.status, HouseholdStatus::MovedOut);
    assert_eq!(old.moved_out_on, Some(local_date(DEMO_NOW)));
    assert_eq!(old.residents.len(), 3);
    assert!(old.dues.is_empty());
    assert_eq!(client.household(second, DEMO_NOW).unwrap().head, "黄丽华");
}

#[test]
fn a_resident_moving_out_or_passing_away_stays_listed_and_marked() {
    let (_dir, client) = worker();
    let (household, residents) = liu_family(&client);
    let id = client.file_new_arrival(household, residents, None, DEMO_NOW).unwrap();
    let detail = client.household(id, DEMO_NOW).unwrap();
    let wife = detail.residents.iter().find(|r| r.name == "陈晓燕").unwrap().id;
    let head = detail.residents.iter().find(|r| r.name == "刘志强").unwrap().id;
    let moved_on = NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
    let died_on = local_date(DEMO_NOW) - Duration::days(2);

    client.set_departure(id, wife, Some((DepartureKind::MovedOut, moved_on)), "随工作调动迁往武汉", DEMO_NOW).unwrap();
    client.set_departure(id, head, Some((DepartureKind::Deceased, died_on)), "", DEMO_NOW).unwrap();

    let detail = client.household(id, DEMO_NOW).unwrap();
    assert_eq!(detail.residents.len(), 3, "nobody is removed from the file");
    let wife_view = detail.residents.iter().find(|r| r.id == wife).unwrap();
    let departure = wife_view.departure.as_ref().unwrap();
    assert_eq!((departure.kind, departure.on), (DepartureKind::MovedOut, moved_on));
    assert_eq!(departure.note, "随工作调动迁往武汉");
    let head_view = detail.residents.iter().find(|r| r.id == head).unwrap();
    assert_eq!(head_view.departure.as_ref().map(|d| (d.kind, d.on)), Some((DepartureKind::Deceased, died_on)));
    assert!(detail.residents.iter().any(|r| r.name == "刘梓涵" && r.departure.is_none()));

    // A future date is refused; a mistaken record can be withdrawn.
    let tomorrow = local_date(DEMO_NOW) + Duration::days(1);
    assert!(client.set_departure(id, wife, Some((DepartureKind::MovedOut, tomorrow)), "", DEMO_NOW).is_err());
    client.set_departure(id, wife, None, "", DEMO_NOW).unwrap();
    assert!(
        client.household(id, DEMO_NOW).unwrap().residents.iter().find(|r| r.id == wife).unwrap().departure.is_none()
    );
}

#[test]
fn editing_a_resident_checks_the_changed_id_number() {
    let (_dir, client) = worker();
    let (household, residents) = liu_family(&client);
    let id = client.file_new_arrival(household, residents, None, DEMO_NOW).unwrap();
    let wife = client.household(id, DEMO_NOW).unwrap().residents.into_iter().find(|r| r.name == "陈晓燕").unwrap().id;
    let mut input = resident("陈晓燕", "配偶", Sex::Female, 1990, "420702199003150821", "15971120345");
    let err = client.edit_resident(id, wife, input.clone(), DEMO_NOW).unwrap_err();
    assert!(err.plain().zh.contains("校验位"), "{}", err.plain().zh);
    let check = gridlink_shared::validate::id_check_char("42070219900315082").unwrap();
    input.id_number = Some(format!("42070219900315082{check}"));
    client.edit_resident(id, wife, input, DEMO_NOW).unwrap();
}
