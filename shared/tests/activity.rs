//! Activity and service records: they round-trip through automerge, and the validator refuses
//! absurd hours, malformed participants, oversized lists and writers who may not record them.

mod common;

use common::*;
use gridlink_shared::activity::{MAX_PARTICIPANTS, Participant};
use gridlink_shared::validate::*;
use gridlink_shared::*;

fn record(by: &Principal) -> ActivityFile {
    let mut placement = placement();
    placement.building = None;
    let mut file = ActivityFile::new(
        ActivityId::from_u128(700),
        ActivityKind::VolunteerService,
        placement,
        "为空巢老人上门理发",
        chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
        Some(CaseId::from_u128(900)),
        (by.user, &by.name),
        NOW,
    );
    file.add(PersonRef::Volunteer(VolunteerId::from_u128(61)), "王秀英", 25);
    file.add(PersonRef::PartyMember(PartyMemberId::from_u128(51)), "陈志刚", 10);
    file
}

fn any(file: &ActivityFile) -> AnyDoc {
    AnyDoc::Activity(file.clone())
}

#[test]
fn an_activity_round_trips_through_automerge_and_is_told_apart_from_other_documents() {
    let file = record(&grid_worker());
    let mut automerge_doc = doc::create(&file, automerge::ActorId::random(), NOW).unwrap();
    let loaded = doc::load(&automerge_doc.save()).unwrap();
    assert_eq!(doc::read::<ActivityFile>(&loaded).unwrap(), file);
    assert!(doc::read::<CaseFile>(&loaded).is_err());
    let any = doc::read_any(&loaded).unwrap();
    assert_eq!(any.doc_type(), DocType::Activity);
    assert_eq!(any.doc_id(), DocId::from(file.id));
    assert!(!any.scopes().iter().any(|s| matches!(s, Scope::Building(_))), "not delivered to building leaders");
    assert_eq!(file.total_tenths(), 35);
}

#[test]
fn the_grid_worker_records_it_and_a_supervisor_may_correct_it() {
    let worker = grid_worker();
    let file = record(&worker);
    assert_eq!(check_edit(None, &any(&file), &worker), Ok(()));
    let supervisor = principal(Role::Supervisor, vec![Scope::Community(placement().community)]);
    let mut corrected = file.clone();
    corrected.participants.values_mut().for_each(|p| p.tenths = 20);
    assert_eq!(check_edit(Some(&any(&file)), &any(&corrected), &supervisor), Ok(()));
}

#[test]
fn negative_zero_and_absurd_hours_are_refused() {
    let worker = grid_worker();
    for tenths in [0, 241, 10_000] {
        let mut file = record(&worker);
        file.participants.values_mut().for_each(|p| p.tenths = tenths);
        let err = check_edit(None, &any(&file), &worker).unwrap_err();
        assert_eq!(err.code, RejectCode::InvalidDocument, "{tenths}");
        assert!(err.message.contains("24 hours"), "{}", err.message);
    }
    // A negative number cannot even be read as hours: the document does not hydrate.
    let file = record(&worker);
    let mut automerge_doc = doc::create(&file, automerge::ActorId::random(), NOW).unwrap();
    let key = PersonRef::Volunteer(VolunteerId::from_u128(61)).to_string();
    use automerge::ReadDoc;
    use automerge::transaction::Transactable;
    let participants = automerge_doc.get(automerge::ROOT, "participants").unwrap().unwrap().1;
    let person = automerge_doc.get(&participants, key.as_str()).unwrap().unwrap().1;
    automerge_doc.put(&person, "tenths", -5i64).unwrap();
    assert!(doc::read_any(&automerge_doc).is_err());
}

#[test]
fn unknown_or_misfiled_participants_and_oversized_lists_are_refused() {
    let worker = grid_worker();
    // A participant that is neither a party member nor a volunteer does not hydrate.
    let file = record(&worker);
    let mut automerge_doc = doc::create(&file, automerge::ActorId::random(), NOW).unwrap();
    use automerge::ReadDoc;
    use automerge::transaction::Transactable;
    let participants = automerge_doc.get(automerge::ROOT, "participants").unwrap().unwrap().1;
    let stranger = automerge_doc
        .put_object(&participants, "staff:00000000-0000-0000-0000-000000000001", automerge::ObjType::Map)
        .unwrap();
    automerge_doc.put(&stranger, "person", "staff:00000000-0000-0000-0000-000000000001").unwrap();
    automerge_doc.put(&stranger, "name", "某人").unwrap();
    automerge_doc.put(&stranger, "tenths", 10u64).unwrap();
    assert!(matches!(doc::read_any(&automerge_doc), Err(DocError::Shape { .. })));

    // One filed under another person's key is refused by the validator.
    let mut misfiled = record(&worker);
    let other = PersonRef::Volunteer(VolunteerId::from_u128(62));
    misfiled.participants.insert(
        other,
        Participant { person: PersonRef::Volunteer(VolunteerId::from_u128(63)), name: "李卫东".into(), tenths: 10 },
    );
    assert!(check_edit(None, &any(&misfiled), &worker).unwrap_err().message.contains("wrong key"));

    let mut crowd = record(&worker);
    for n in 0..=MAX_PARTICIPANTS as u128 {
        crowd.add(PersonRef::Volunteer(VolunteerId::from_u128(1_000 + n)), "志愿者", 10);
    }
    assert!(check_edit(None, &any(&crowd), &worker).unwrap_err().message.contains("participants"));

    let mut nobody = record(&worker);
    nobody.participants.clear();
    assert_eq!(check_edit(None, &any(&nobody), &worker).unwrap_err().code, RejectCode::InvalidDocument);

    let mut long = record(&worker);
    long.title = "理".repeat(101);
    assert_eq!(check_edit(None, &any(&long), &worker).unwrap_err().code, RejectCode::InvalidDocument);
}

#[test]
fn building_leaders_volunteers_and_other_grids_may_not_record_and_nobody_signs_for_another() {
    let leader = principal(Role::BuildingLeader, vec![Scope::Building(placement().building.unwrap())]);
    let err = check_edit(None, &any(&record(&leader)), &leader).unwrap_err();
    // The record is grid-wide: the leader's building scope does not even cover it.
    assert_eq!(err.code, RejectCode::OutOfScope);
    let leader_of_grid = principal(Role::BuildingLeader, vec![Scope::Grid(placement().grid)]);
    assert_eq!(
        check_edit(None, &any(&record(&leader_of_grid)), &leader_of_grid).unwrap_err().code,
        RejectCode::ForbiddenRole
    );
    let volunteer = principal(Role::Volunteer, vec![Scope::Grid(placement().grid)]);
    assert_eq!(check_edit(None, &any(&record(&volunteer)), &volunteer).unwrap_err().code, RejectCode::ForbiddenRole);
    let elsewhere = principal(Role::GridWorker, vec![Scope::Grid(GridId::from_u128(99))]);
    assert_eq!(check_edit(None, &any(&record(&elsewhere)), &elsewhere).unwrap_err().code, RejectCode::OutOfScope);

    let worker = grid_worker();
    let colleague = principal(Role::GridWorker, vec![Scope::Grid(placement().grid)]);
    assert_eq!(check_edit(None, &any(&record(&colleague)), &worker).unwrap_err().code, RejectCode::ForbiddenEdit);
    let file = record(&worker);
    let mut moved = file.clone();
    moved.recorded_by = colleague.user;
    assert_eq!(check_edit(Some(&any(&file)), &any(&moved), &worker).unwrap_err().code, RejectCode::ForbiddenEdit);
    let case = AnyDoc::Case(case(CaseKind::MicroWish, &worker, NOW));
    assert_eq!(check_edit(Some(&case), &any(&file), &worker).unwrap_err().code, RejectCode::ForbiddenEdit);
}
