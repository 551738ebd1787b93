//! The validator: malformed documents and forbidden edits are refused with a clear reason.

mod common;

use common::*;
use gridlink_shared::validate::*;
use gridlink_shared::*;

fn hh(file: HouseholdFile) -> AnyDoc {
    AnyDoc::Household(file)
}

fn resident(name: &str, birth_year: u16, id_number: &str) -> Resident {
    Resident {
        id: ResidentId::new(),
        name: name.into(),
        sex: Sex::Female,
        birth_year,
        relation: "户主".into(),
        phone: String::new(),
        id_number: id_number.into(),
        flags: Default::default(),
    }
}

#[test]
fn a_well_formed_household_passes_for_its_grid_worker() {
    let mut file = household();
    let r = resident("张桂兰", 1948, "420704194803120023");
    file.residents.insert(r.id, r);
    assert_eq!(check_edit(None, &hh(file), &grid_worker()), Ok(()));
}

#[test]
fn malformed_households_are_refused_with_the_field_named() {
    let cases: Vec<(HouseholdFile, &str)> = vec![
        (
            {
                let mut f = household();
                f.head = "  ".into();
                f
            },
            "head of household",
        ),
        (
            {
                let mut f = household();
                f.phone = "call me".into();
                f
            },
            "not a phone number",
        ),
        (
            {
                let mut f = household();
                f.room = "".into();
                f
            },
            "room",
        ),
        (
            {
                let mut f = household();
                f.head = "张".repeat(51);
                f
            },
            "at most 50",
        ),
        (
            {
                let mut f = household();
                let r = resident("王芳", 1890, "");
                f.residents.insert(r.id, r);
                f
            },
            "birth year",
        ),
        (
            {
                let mut f = household();
                let r = resident("王芳", 1980, "4207");
                f.residents.insert(r.id, r);
                f
            },
            "18 characters",
        ),
        (
            {
                let mut f = household();
                f.moved_out_on = chrono::NaiveDate::from_ymd_opt(2026, 1, 1);
                f
            },
            "moved-out",
        ),
    ];
    for (file, needle) in cases {
        let err = validate_document(&hh(file)).unwrap_err();
        assert_eq!(err.code, RejectCode::InvalidDocument);
        assert!(err.message.contains(needle), "'{}' should mention '{needle}'", err.message);
    }
}

#[test]
fn a_worker_cannot_write_another_grid() {
    let file = household();
    let other = principal(Role::GridWorker, vec![Scope::Grid(GridId::new())]);
    assert_eq!(check_edit(None, &hh(file), &other).unwrap_err().code, RejectCode::OutOfScope);
}

#[test]
fn moving_a_household_out_of_the_workers_grid_is_refused() {
    let before = household();
    let mut after = before.clone();
    after.placement.grid = GridId::new();
    let err = check_edit(Some(&hh(before)), &hh(after), &grid_worker()).unwrap_err();
    assert_eq!(err.code, RejectCode::OutOfScope);
}

#[test]
fn building_leaders_and_supervisors_do_not_edit_household_files() {
    let file = household();
    let leader = principal(Role::BuildingLeader, vec![Scope::Building(placement().building.unwrap())]);
    let supervisor = principal(Role::Supervisor, vec![Scope::Community(placement().community)]);
    // A building leader's scope does not even cover a household's grid placement... but it
    // covers the building, so the refusal must come from the role.
    assert_eq!(check_edit(None, &hh(file.clone()), &leader).unwrap_err().code, RejectCode::ForbiddenRole);
    assert_eq!(check_edit(None, &hh(file), &supervisor).unwrap_err().code, RejectCode::ForbiddenRole);
}

#[test]
fn building_leader_reports_and_comments_but_cannot_resolve() {
    let leader = principal(Role::BuildingLeader, vec![Scope::Building(placement().building.unwrap())]);
    let report = case(CaseKind::Report(LeaderRole::Sanitation), &leader, NOW);
    assert_eq!(check_edit(None, &AnyDoc::Case(report.clone()), &leader), Ok(()));

    let mut commented = report.clone();
    commented.push_action(action(ActionKind::Comment, &leader, NOW + 1));
    assert_eq!(check_edit(Some(&AnyDoc::Case(report.clone())), &AnyDoc::Case(commented), &leader), Ok(()));

    let mut resolved = report.clone();
    resolved.push_action(action(ActionKind::Resolve, &leader, NOW + 1));
    let err = check_edit(Some(&AnyDoc::Case(report)), &AnyDoc::Case(resolved), &leader).unwrap_err();
    assert_eq!(err.code, RejectCode::ForbiddenRole);
}

#[test]
fn the_timeline_is_append_only_and_signed_by_its_author() {
    let worker = grid_worker();
    let mut before = case(CaseKind::Dispute, &worker, NOW);
    before.push_action(action(ActionKind::Accept, &worker, NOW + 1));

    let mut rewritten = before.clone();
    rewritten.timeline.values_mut().for_each(|a| a.note = "改写".into());
    let err = check_edit(Some(&AnyDoc::Case(before.clone())), &AnyDoc::Case(rewritten), &worker).unwrap_err();
    assert_eq!(err.code, RejectCode::ForbiddenEdit);

    let mut removed = before.clone();
    removed.timeline.clear();
    let err = check_edit(Some(&AnyDoc::Case(before.clone())), &AnyDoc::Case(removed), &worker).unwrap_err();
    assert_eq!(err.code, RejectCode::ForbiddenEdit);

    let someone_else = principal(Role::GridWorker, vec![Scope::Grid(placement().grid)]);
    let mut forged = before.clone();
    forged.push_action(action(ActionKind::Resolve, &someone_else, NOW + 2));
    let err = check_edit(Some(&AnyDoc::Case(before)), &AnyDoc::Case(forged), &worker).unwrap_err();
    assert_eq!(err.code, RejectCode::ForbiddenEdit);
    assert!(err.message.contains("signed"));
}

#[test]
fn case_fields_are_fixed_and_satisfaction_is_one_to_five() {
    let worker = grid_worker();
    let supervisor = principal(Role::Supervisor, vec![Scope::Community(placement().community)]);
    let before = case(CaseKind::Dispute, &worker, NOW);
    let mut moved = before.clone();
    moved.kind = CaseKind::Opinion;
    assert_eq!(
        check_edit(Some(&AnyDoc::Case(before.clone())), &AnyDoc::Case(moved), &supervisor).unwrap_err().code,
        RejectCode::ForbiddenEdit
    );
    let mut closed = before.clone();
    let mut close = action(ActionKind::Close, &supervisor, NOW + 5);
    close.satisfaction = Some(6);
    closed.push_action(close);
    let err = check_edit(Some(&AnyDoc::Case(before)), &AnyDoc::Case(closed), &supervisor).unwrap_err();
    assert_eq!(err.code, RejectCode::InvalidDocument);
    assert!(err.message.contains("between 1 and 5"));
}

#[test]
fn a_new_case_names_its_author_as_reporter() {
    let worker = grid_worker();
    let other = principal(Role::GridWorker, vec![Scope::Grid(placement().grid)]);
    let c = case(CaseKind::Opinion, &other, NOW);
    assert_eq!(check_edit(None, &AnyDoc::Case(c), &worker).unwrap_err().code, RejectCode::ForbiddenEdit);
}

#[test]
fn every_role_may_comment_and_only_supervisors_close() {
    for role in Role::ALL {
        assert!(role_may_act(*role, ActionKind::Comment));
    }
    assert!(role_may_act(Role::Supervisor, ActionKind::Close));
    assert!(!role_may_act(Role::GridWorker, ActionKind::Close));
    assert!(!role_may_act(Role::GridWorker, ActionKind::Reopen));
}

fn visit_by(who: &Principal) -> Visit {
    Visit {
        id: VisitId::new(),
        visitor: who.user,
        visitor_name: who.name.clone(),
        at: 1_795_000_000_000,
        recorded_at: 1_795_000_000_000,
        outcome: VisitOutcome::Met,
        notes: "血压正常".into(),
        needs_found: Vec::new(),
        follow_up: None,
        residents_present: Vec::new(),
    }
}

#[test]
fn a_visit_is_signed_by_the_worker_who_records_it() {
    let me = grid_worker();
    let mut colleague = grid_worker();
    colleague.user = UserId::from_u128(101);
    colleague.name = "李建国".into();
    let before = household();

    let mut own = before.clone();
    let v = visit_by(&me);
    own.visits.insert(v.id, v);
    assert_eq!(check_edit(Some(&hh(before.clone())), &hh(own.clone()), &me), Ok(()));

    // Another staff member's id and name on a visit I record: refused.
    let mut forged = before.clone();
    let v = visit_by(&colleague);
    forged.visits.insert(v.id, v);
    let refusal = check_edit(Some(&hh(before.clone())), &hh(forged), &me).unwrap_err();
    assert_eq!(refusal.code, RejectCode::ForbiddenEdit);
    assert!(refusal.message.contains("name of the person recording it"), "{}", refusal.message);

    // My id with someone else's name: refused too, the name is what the supervisor reads.
    let mut renamed = before.clone();
    let mut v = visit_by(&me);
    v.visitor_name = colleague.name.clone();
    renamed.visits.insert(v.id, v);
    assert_eq!(check_edit(Some(&hh(before)), &hh(renamed), &me).unwrap_err().code, RejectCode::ForbiddenEdit);

    // Who made an earlier visit cannot be rewritten.
    let mut rewritten = own.clone();
    let id = *rewritten.visits.keys().next().unwrap();
    rewritten.visits.get_mut(&id).unwrap().visitor = colleague.user;
    let refusal = check_edit(Some(&hh(own.clone())), &hh(rewritten), &colleague).unwrap_err();
    assert_eq!(refusal.code, RejectCode::ForbiddenEdit);

    // A colleague may still add their own visit to a file that holds mine.
    let mut both = own.clone();
    let v = visit_by(&colleague);
    both.visits.insert(v.id, v);
    assert_eq!(check_edit(Some(&hh(own)), &hh(both), &colleague), Ok(()));
}
