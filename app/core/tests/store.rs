//! Storage stories against a real encrypted SQLite file: fixtures, offline writes, search,
//! validation before commit, keys.

use gridlink_client::fixtures::{self, DEMO_NOW};
use gridlink_client::{
    CaseAction, CaseFilter, Client, Error, HouseholdEdit, HouseholdFilter, NewCase, NewHousehold, NewVisit,
    ResidentInput,
};
use gridlink_shared::policy::DueState;
use gridlink_shared::time::HOUR_MS;
use gridlink_shared::{
    ActionKind, CaseKind, CaseStatus, HouseholdStatus, MustArriveKind, MustVisitTag, Role, Sex, VisitOutcome,
};

fn worker() -> (tempfile::TempDir, Client, gridlink_shared::demo::DemoData) {
    let dir = tempfile::tempdir().unwrap();
    let (client, demo) = fixtures::demo_client(dir.path(), Role::GridWorker, DEMO_NOW).unwrap();
    (dir, client, demo)
}

#[test]
fn fixtures_fill_lists_today_and_identity() {
    let (_dir, client, demo) = worker();
    let identity = client.identity().unwrap();
    let staff = demo.staff_with_role(Role::GridWorker).next().unwrap();
    assert_eq!(identity.name, staff.name);
    assert!(!identity.grid_names.is_empty());
    let all = client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap();
    assert!(all.len() > 20, "a grid holds dozens of households, got {}", all.len());
    assert!(all.iter().all(|h| !h.address.is_empty() && !h.head.is_empty()));
    let due = client.households(&HouseholdFilter { due_only: true, ..Default::default() }, DEMO_NOW).unwrap();
    assert!(due.iter().all(|h| !matches!(h.next_due_state, Some(DueState::NotDue { .. }) | None)));
    let today = client.today(DEMO_NOW).unwrap();
    assert!(today.due_visits.len() >= due.len());
    assert!(!client.buildings().unwrap().is_empty());
    assert_eq!(client.services().unwrap().len(), 8);
    let status = client.status().unwrap();
    assert!(!status.enrolled);
    assert_eq!(status.unsent, 0);
}

#[test]
fn pinyin_initials_find_heads() {
    let (_dir, client, _demo) = worker();
    let all = client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap();
    let target = &all[all.len() / 2];
    let (_, initials) = gridlink_client::search::pinyin_forms(&target.head);
    let found = client
        .households(&HouseholdFilter { search: Some(initials.to_uppercase()), ..Default::default() }, DEMO_NOW)
        .unwrap();
    assert!(found.iter().any(|h| h.id == target.id), "{initials} should find {}", target.head);
    let by_name = client
        .households(&HouseholdFilter { search: Some(target.head.clone()), ..Default::default() }, DEMO_NOW)
        .unwrap();
    assert!(by_name.iter().any(|h| h.id == target.id));
}

#[test]
fn a_visit_is_stored_materialized_and_queued() {
    let (_dir, client, _demo) = worker();
    let due = client.today(DEMO_NOW).unwrap().due_visits;
    let first = due.first().expect("the demo has due visits").clone();
    client
        .record_visit(
            NewVisit {
                household: first.household,
                outcome: VisitOutcome::Met,
                notes: "老人身体尚好，叮嘱按时服药".into(),
                needs_found: vec![gridlink_shared::HelpNeed::Medical],
                follow_up: None,
                residents_present: vec![],
                at: DEMO_NOW,
            },
            DEMO_NOW,
        )
        .unwrap();
    let detail = client.household(first.household, DEMO_NOW).unwrap();
    assert_eq!(detail.visits[0].notes, "老人身体尚好，叮嘱按时服药");
    assert!(detail.needs.iter().any(|n| n.need == gridlink_shared::HelpNeed::Medical));
    let still_due = client.today(DEMO_NOW).unwrap().due_visits;
    assert!(
        !still_due.iter().any(|d| d.household == first.household && d.tag == first.tag),
        "a met visit clears today's obligation"
    );
    assert_eq!(client.status().unwrap().unsent, 1);
}

#[test]
fn households_residents_tags_and_moves() {
    let (_dir, client, _demo) = worker();
    let building = client.buildings().unwrap()[0].id;
    let id = client
        .add_household(
            NewHousehold {
                building,
                unit: "1".into(),
                room: "502".into(),
                head: "张三".into(),
                phone: "13900001234".into(),
                notes: String::new(),
            },
            DEMO_NOW,
        )
        .unwrap();
    client.set_tag(id, MustVisitTag::NewArrival, true, None, DEMO_NOW).unwrap();
    let resident = client
        .add_resident(
            id,
            ResidentInput {
                name: "李四".into(),
                sex: Sex::Female,
                birth_year: 1950,
                relation: "配偶".into(),
                phone: String::new(),
                id_number: Some("42070419500312002X".into()),
                flags: vec![],
            },
            DEMO_NOW,
        )
        .unwrap();
    let found =
        client.households(&HouseholdFilter { search: Some("zs".into()), ..Default::default() }, DEMO_NOW).unwrap();
    assert!(found.iter().any(|h| h.id == id), "zs finds 张三");
    let found =
        client.households(&HouseholdFilter { search: Some("ls".into()), ..Default::default() }, DEMO_NOW).unwrap();
    assert!(found.iter().any(|h| h.id == id), "ls finds resident 李四");
    let detail = client.household(id, DEMO_NOW).unwrap();
    assert_eq!(detail.residents[0].id_number_masked, "4207**********002X");
    assert_eq!(detail.tags[0].tag, MustVisitTag::NewArrival);
    // Editing without the ID number keeps it.
    client
        .edit_resident(
            id,
            resident,
            ResidentInput {
                name: "李四".into(),
                sex: Sex::Female,
                birth_year: 1951,
                relation: "配偶".into(),
                phone: String::new(),
                id_number: None,
                flags: vec![gridlink_shared::ResidentFlag::LivingAlone],
            },
            DEMO_NOW,
        )
        .unwrap();
    let detail = client.household(id, DEMO_NOW).unwrap();
    assert_eq!(detail.residents[0].id_number_masked, "4207**********002X");
    assert_eq!(detail.residents[0].birth_year, 1951);
    client
        .edit_household(id, HouseholdEdit { status: Some(HouseholdStatus::MovedOut), ..Default::default() }, DEMO_NOW)
        .unwrap();
    let detail = client.household(id, DEMO_NOW).unwrap();
    assert_eq!(detail.status, HouseholdStatus::MovedOut);
    assert!(detail.moved_out_on.is_some());
    assert!(detail.dues.is_empty(), "a moved-out household is not due");
}

#[test]
fn invalid_edits_are_refused_before_commit() {
    let (_dir, client, _demo) = worker();
    let h = client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap()[0].id;
    let err = client
        .edit_household(h, HouseholdEdit { phone: Some("call me maybe".into()), ..Default::default() }, DEMO_NOW)
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    assert!(err.plain().zh.contains("未保存"));
    assert_eq!(client.status().unwrap().unsent, 0, "nothing was queued");
}

#[test]
fn case_lifecycle_and_allowed_actions() {
    let (_dir, client, _demo) = worker();
    let h = client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap()[0].id;
    let id = client
        .open_case(
            NewCase {
                kind: CaseKind::MustArrive(MustArriveKind::Dispute),
                household: Some(h),
                building: None,
                title: "邻里因漏水发生争执".into(),
                note: "楼上漏水，两户争吵".into(),
                at: DEMO_NOW,
            },
            DEMO_NOW,
        )
        .unwrap();
    let today = client.today(DEMO_NOW).unwrap();
    assert!(today.must_arrive.iter().any(|m| m.case == id));
    assert!(today.my_cases.iter().any(|c| c.id == id));
    let detail = client.case(id, DEMO_NOW).unwrap();
    assert!(detail.allowed_actions.contains(&ActionKind::Accept));
    assert!(!detail.allowed_actions.contains(&ActionKind::Close), "a grid worker does not close");
    for action in [ActionKind::Accept, ActionKind::Arrive, ActionKind::Resolve] {
        client
            .act_on_case(
                CaseAction { case: id, action, note: "已处理".into(), satisfaction: None, to: None },
                DEMO_NOW + HOUR_MS,
            )
            .unwrap();
    }
    let detail = client.case(id, DEMO_NOW + 2 * HOUR_MS).unwrap();
    assert_eq!(detail.row.status, CaseStatus::Resolved);
    assert_eq!(detail.timeline.len(), 3);
    let err = client
        .act_on_case(
            CaseAction { case: id, action: ActionKind::Accept, note: String::new(), satisfaction: None, to: None },
            DEMO_NOW,
        )
        .unwrap_err();
    assert!(matches!(err, Error::Input(_)), "{err}");
    assert!(client.cases(CaseFilter::Open, DEMO_NOW).unwrap().iter().all(|c| c.id != id));
}

#[test]
fn a_case_is_handed_on_only_to_staff_who_may_work_it() {
    let (_dir, client, _demo) = worker();
    let staff = client.staff().unwrap();
    assert!(staff.iter().any(|s| matches!(s.role, Role::BuildingLeader | Role::Volunteer)), "the demo has both");
    let handlers = client.case_handlers().unwrap();
    assert!(handlers.iter().any(|s| s.role == Role::GridWorker));
    assert!(
        handlers.iter().all(|s| matches!(s.role, Role::GridWorker | Role::Supervisor | Role::Admin)),
        "building leaders and volunteers (the e-link accounts among them) may only comment"
    );
}

#[test]
fn wrong_key_is_a_clear_error_and_nothing_is_reset() {
    let dir = tempfile::tempdir().unwrap();
    drop(fixtures::demo_client(dir.path(), Role::GridWorker, DEMO_NOW).unwrap());
    let size_before = std::fs::metadata(dir.path().join("gridlink.db")).unwrap().len();
    let err = Client::open_with_key(dir.path(), &[7u8; 32]).unwrap_err();
    assert!(matches!(err, Error::WrongKey { .. }), "{err}");
    std::fs::remove_file(dir.path().join("db.key")).unwrap();
    let err = Client::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("key file"), "{err}");
    assert_eq!(std::fs::metadata(dir.path().join("gridlink.db")).unwrap().len(), size_before);
}

#[test]
fn export_is_deterministic_and_masks_id_numbers() {
    let (_dir, client, _demo) = worker();
    let a = serde_json::to_string(&client.export().unwrap()).unwrap();
    let b = serde_json::to_string(&client.export().unwrap()).unwrap();
    assert_eq!(a, b);
    assert!(!a.contains("19550312"), "full ID numbers never leave the store");
}

#[test]
fn pin_and_logout_guard() {
    let (_dir, client, _demo) = worker();
    assert!(!client.has_pin().unwrap());
    client.verify_pin("0000", DEMO_NOW).expect("no PIN set yet: anything opens");
    client.set_pin("2468").unwrap();
    assert!(client.has_pin().unwrap());
    client.verify_pin("2468", DEMO_NOW).unwrap();
    assert!(matches!(client.verify_pin("1357", DEMO_NOW), Err(Error::WrongPin { left: 9, wait_ms: 0 })));
    assert!(matches!(client.set_pin("12"), Err(Error::Input(_))));
    let h = client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap()[0].id;
    client.set_tag(h, MustVisitTag::PoorFamily, true, None, DEMO_NOW).unwrap();
    assert!(matches!(client.logout(false), Err(Error::Unsent { unsent: 1, .. })));
    client.logout(true).unwrap();
    assert!(client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap().is_empty());
}

/// Copies the files of a data directory (as someone copying it off a device would).
fn copy_dir(from: &std::path::Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.path().join(entry.file_name())).unwrap();
        }
    }
    to
}

#[test]
fn a_copied_data_directory_does_not_open_without_the_pin_once_one_is_set() {
    let (dir, client, _demo) = worker();
    let households = client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap();
    client.set_pin("2468").unwrap();
    assert!(!dir.path().join("db.key").exists(), "the plain key is deleted");
    drop(client);

    let copy = copy_dir(dir.path());
    assert!(matches!(Client::open(copy.path()), Err(Error::PinRequired)));
    assert!(matches!(Client::open_with_pin(copy.path(), "1111", DEMO_NOW), Err(Error::WrongPin { left: 9, .. })));
    let opened = Client::open_with_pin(copy.path(), "2468", DEMO_NOW).unwrap();
    assert_eq!(opened.households(&HouseholdFilter::default(), DEMO_NOW).unwrap(), households);
    // Still no plain key written back, and a key that is not the store's does not open it.
    assert!(!copy.path().join("db.key").exists());
    drop(opened);
    let stranger = copy_dir(copy.path());
    std::fs::write(stranger.path().join("db.key"), hex_of([5u8; 32])).unwrap();
    assert!(matches!(Client::open(stranger.path()), Err(Error::WrongKey { .. })));
}

fn hex_of(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn erase_removes_the_database_its_wal_files_and_every_key_file() {
    let (dir, client, _demo) = worker();
    client.set_pin("2468").unwrap();
    let h = client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap()[0].id;
    client.set_tag(h, MustVisitTag::PoorFamily, true, None, DEMO_NOW).unwrap();
    assert!(dir.path().join("gridlink.db-wal").exists(), "the store runs in WAL mode");
    let removed = client.erase().unwrap();
    // Closing the database folds the WAL back in (SQLite removes -wal and -shm itself).
    assert!(
        removed.iter().any(|f| f.ends_with("db.key.pin")) && removed.iter().any(|f| f.ends_with("gridlink.db")),
        "{removed:?}"
    );
    let left: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    for gone in ["gridlink.db", "gridlink.db-wal", "gridlink.db-shm", "db.key", "db.key.pin", "db.key.recovery"] {
        assert!(!left.iter().any(|f| f == gone), "{gone} is still there: {left:?}");
    }
    // The handle no longer reads anything, and writes nothing back to the directory.
    assert!(client.households(&HouseholdFilter::default(), DEMO_NOW).is_err());
    assert!(!dir.path().join("gridlink.db").exists());
}
