//! The review queue of concurrent edits against a real encrypted store: a household file
//! edited here and, from the same starting point, on another device, merged as a pull would
//! merge it; the conflict is listed with both values, picked, and gone.

use automerge::ActorId;
use gridlink_client::fixtures::{self, DEMO_NOW};
use gridlink_client::{Client, Error, HouseholdEdit, store};
use gridlink_shared::conflicts::PlainValue;
use gridlink_shared::policy::PolicyConfig;
use gridlink_shared::{DocId, HouseholdFile, HouseholdId, Lang, RejectCode, Role, doc};

fn raw_store(dir: &std::path::Path) -> rusqlite::Connection {
    let key = gridlink_client::keys::resolve_key(dir).unwrap();
    store::open_encrypted(&dir.join(store::DB_FILE), &key).unwrap()
}

/// Another device's edit of `id`'s phone, made from `base` (the document before this
/// device's own edit), merged into the store the way a pulled change is saved.
fn merge_other_device_phone(dir: &std::path::Path, id: HouseholdId, base: &[u8], phone: &str, at: i64) {
    let mut other = doc::load(base).unwrap().with_actor(ActorId::from(vec![0x5a; 16]));
    let mut file: HouseholdFile = doc::read(&other).unwrap();
    file.phone = phone.to_string();
    doc::update(&mut other, &file, "edit household", at).unwrap();
    let mut conn = raw_store(dir);
    let tx = conn.transaction().unwrap();
    let mut held = store::load_doc(&tx, DocId::from(id)).unwrap().unwrap();
    held.merge(&mut other).unwrap();
    store::save_doc(&tx, id.into(), &mut held, &PolicyConfig::default()).unwrap();
    tx.commit().unwrap();
}

fn stored_bytes(dir: &std::path::Path, id: HouseholdId) -> Vec<u8> {
    store::load_doc(&raw_store(dir), id.into()).unwrap().unwrap().save()
}

#[test]
fn a_worker_sees_both_values_picks_one_and_the_pick_goes_out() {
    let dir = tempfile::tempdir().unwrap();
    let (client, demo) = fixtures::demo_client(dir.path(), Role::GridWorker, DEMO_NOW).unwrap();
    let id = client.households(&Default::default(), DEMO_NOW).unwrap()[0].id;
    assert!(client.conflicts_in_scope().unwrap().is_empty());
    let base = stored_bytes(dir.path(), id);

    let edit = HouseholdEdit { phone: Some("13900000001".into()), ..Default::default() };
    client.edit_household(id, edit, DEMO_NOW + 1_000).unwrap();
    drop(client);
    merge_other_device_phone(dir.path(), id, &base, "13900000002", DEMO_NOW + 2_000);

    let client = Client::open(dir.path()).unwrap();
    let listed = client.conflicts_in_scope().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].household, listed[0].fields), (id, 1));
    let fields = client.household_conflicts(id, Lang::Zh).unwrap();
    assert_eq!(fields.len(), 1);
    assert_eq!(fields[0].field, "户主电话");
    let mut values: Vec<_> = fields[0].values.iter().map(|v| (v.shown.clone(), v.by_this_device, v.at)).collect();
    values.sort();
    assert_eq!(
        values,
        vec![
            ("13900000001".into(), true, Some(DEMO_NOW + 1_000)),
            ("13900000002".into(), false, Some(DEMO_NOW + 2_000))
        ]
    );
    let mine = fields[0].values.iter().find(|v| v.by_this_device).unwrap();
    let worker = demo.staff_with_role(Role::GridWorker).next().unwrap();
    assert_eq!(mine.by_name.as_deref(), Some(worker.name.as_str()));
    let theirs = fields[0].values.iter().find(|v| !v.by_this_device).unwrap();
    assert_eq!(theirs.device, "5a5a5a5a");

    // A value nobody wrote is not a pick.
    let refused = client.resolve_conflict(id, &fields[0].path, &PlainValue::Str("110".into()), DEMO_NOW + 3_000);
    assert!(matches!(refused, Err(Error::Input(_))), "{refused:?}");

    let unsent = client.status().unwrap().unsent;
    client.resolve_conflict(id, &fields[0].path, &theirs.value, DEMO_NOW + 3_000).unwrap();
    assert!(client.household_conflicts(id, Lang::Zh).unwrap().is_empty());
    assert!(client.conflicts_in_scope().unwrap().is_empty());
    assert_eq!(client.household(id, DEMO_NOW + 3_000).unwrap().phone, "13900000002");
    assert_eq!(client.status().unwrap().unsent, unsent + 1, "the pick is one change in the outbox");
}

#[test]
fn a_supervisor_may_pick_but_not_edit_and_old_stores_are_scanned_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _) = fixtures::demo_client(dir.path(), Role::Supervisor, DEMO_NOW).unwrap();
    let id = client.households(&Default::default(), DEMO_NOW).unwrap()[0].id;
    let base = stored_bytes(dir.path(), id);
    let edit = HouseholdEdit { phone: Some("13900000001".into()), ..Default::default() };
    let refused = client.edit_household(id, edit, DEMO_NOW + 1_000).unwrap_err();
    assert!(matches!(&refused, Error::Invalid(e) if e.code == RejectCode::ForbiddenRole), "{refused:?}");
    drop(client);

    // Two workers' devices edited the phone from the same file.
    merge_other_device_phone(dir.path(), id, &base, "13900000001", DEMO_NOW + 1_000);
    let mut other = doc::load(&base).unwrap().with_actor(ActorId::from(vec![0x6b; 16]));
    let mut file: HouseholdFile = doc::read(&other).unwrap();
    file.phone = "13900000002".into();
    doc::update(&mut other, &file, "edit household", DEMO_NOW + 2_000).unwrap();
    {
        let mut conn = raw_store(dir.path());
        let tx = conn.transaction().unwrap();
        let mut held = store::load_doc(&tx, id.into()).unwrap().unwrap();
        held.merge(&mut other).unwrap();
        store::save_doc(&tx, id.into(), &mut held, &PolicyConfig::default()).unwrap();
        tx.commit().unwrap();
        // A store from before the marker table: the first list scans the files once.
        drop_marker_table(&conn);
    }

    let client = Client::open(dir.path()).unwrap();
    assert_eq!(client.conflicts_in_scope().unwrap().len(), 1);
    let fields = client.household_conflicts(id, Lang::En).unwrap();
    assert_eq!(fields[0].field, "Household phone");
    assert!(fields[0].values.iter().all(|v| !v.by_this_device));
    let first = fields[0].values.iter().find(|v| v.value == PlainValue::Str("13900000001".into())).unwrap();
    client.resolve_conflict(id, &fields[0].path, &first.value, DEMO_NOW + 3_000).unwrap();
    assert!(client.conflicts_in_scope().unwrap().is_empty());
    assert_eq!(client.household(id, DEMO_NOW + 3_000).unwrap().phone, "13900000001");
}

fn drop_marker_table(conn: &rusqlite::Connection) {
    conn.execute_batch("DROP TABLE household_conflicts").unwrap();
}
