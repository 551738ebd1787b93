//! Storage stories against the `Store` trait of the SQLite backend, with the clock passed in:
//! enrolment codes over time, durability across reopening, and the admin CLI's connection
//! writing while syncs run.

mod common;

use common::{DEMO_NOW, DEMO_SEED, Device};
use gridlink_shared::demo::{self, DemoSize};
use gridlink_shared::protocol::{self, AckStatus, Cursor, EnrollRequest, PullItem, SyncResponse};
use gridlink_shared::time::HOUR_MS;
use gridlink_shared::{DocId, HouseholdFile, Role, Scope};
use gridlink_sync_server::{PushLimits, SqliteStore, Store, StoreError};

fn enroll(store: &SqliteStore, code: &str, now: i64) -> Result<Device, StoreError> {
    store.enroll(&EnrollRequest { code: code.into(), device_name: "测试机".into() }, now).map(Device::new)
}

fn sync(store: &SqliteStore, device: &mut Device, changes: Vec<protocol::PushChange>, now: i64) -> SyncResponse {
    let request = device.request(changes);
    let response = store.sync(device.enrolled.device, &request, &PushLimits::default(), now).unwrap();
    protocol::check_page(&request.cursors, &response).unwrap();
    device.apply(&response);
    response
}

fn demo_store() -> (tempfile::TempDir, SqliteStore, demo::DemoData) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::create(dir.path()).unwrap();
    store.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW).unwrap();
    (dir, store, demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW))
}

#[test]
fn enrolment_codes_expire_are_used_once_and_die_with_a_revoked_user() {
    let (_dir, store, data) = demo_store();
    let grid = data.roster.grids[0].id;
    let now = DEMO_NOW;
    let (user, code) = store.add_user("黄丽华", Role::GridWorker, &[Scope::Grid(grid)], "", now, 72).unwrap();
    let device = enroll(&store, &code, now + 71 * HOUR_MS).unwrap();
    assert_eq!(device.enrolled.principal.user, user);
    assert!(matches!(enroll(&store, &code, now + 71 * HOUR_MS), Err(StoreError::CodeUsed)));

    let late = store.new_code(user, now, 72).unwrap();
    assert!(matches!(enroll(&store, &late, now + 72 * HOUR_MS), Err(StoreError::CodeExpired)));
    assert!(matches!(enroll(&store, "0000-0000", now), Err(StoreError::CodeInvalid)));

    let spare = store.new_code(user, now, 72).unwrap();
    assert_eq!(store.authenticate(&device.token).unwrap().device, device.enrolled.device);
    assert_eq!(store.revoke_user_devices(user, now + HOUR_MS).unwrap(), 1);
    assert!(matches!(store.authenticate(&device.token), Err(StoreError::DeviceRevoked)));
    assert!(
        matches!(enroll(&store, &spare, now + 2 * HOUR_MS), Err(StoreError::CodeExpired)),
        "codes issued before the revocation die with it"
    );
    assert!(matches!(store.authenticate("not-a-token"), Err(StoreError::Unauthorized)));
}

#[test]
fn a_reopened_store_has_every_accepted_change_and_the_same_logs() {
    let (dir, store, data) = demo_store();
    let worker = data.staff_with_role(Role::GridWorker).next().unwrap().clone();
    let Scope::Grid(grid) = worker.scopes[0] else { panic!() };
    let code = store.new_code(worker.id, DEMO_NOW, 72).unwrap();
    let mut phone = enroll(&store, &code, DEMO_NOW).unwrap();
    while sync(&store, &mut phone, Vec::new(), DEMO_NOW).more {}
    let id: DocId = data.households.iter().find(|x| x.placement.grid == grid).unwrap().id.into();
    let push = phone.edit::<HouseholdFile>(id, |x| x.notes = "低保户，每月核实一次".into());
    let hash = {
        let response = sync(&store, &mut phone, vec![push.clone()], DEMO_NOW + 1);
        assert_eq!(response.acks[0].status, AckStatus::Accepted);
        response.acks[0].hash.clone()
    };
    let Cursor::Seq { seq } = phone.cursors[&Scope::Grid(grid)] else { panic!() };
    drop(store);

    let store = SqliteStore::open(dir.path()).unwrap();
    // A second phone starting from just before the change gets exactly that change.
    let code = store.new_code(worker.id, DEMO_NOW, 72).unwrap();
    let mut tablet = enroll(&store, &code, DEMO_NOW).unwrap();
    tablet.cursors.insert(Scope::Grid(grid), Cursor::Seq { seq: seq - 1 });
    let response = sync(&store, &mut tablet, Vec::new(), DEMO_NOW + 2);
    match response.items.as_slice() {
        [PullItem::Change { seq: got, doc, bytes, .. }] => {
            assert_eq!((*got, *doc), (seq, id));
            assert_eq!(gridlink_shared::doc::parse_change(bytes).unwrap().hash().to_string(), hash);
        }
        other => panic!("expected the one change, got {other:?}"),
    }
    // Pushing it again after the restart is a duplicate.
    let response = sync(&store, &mut phone, vec![push], DEMO_NOW + 3);
    assert_eq!(response.acks[0].status, AckStatus::Duplicate);
}

#[test]
fn the_admin_connection_writes_while_syncs_run_on_another() {
    let (dir, store, data) = demo_store();
    let worker = data.staff_with_role(Role::GridWorker).next().unwrap().clone();
    let grids: Vec<Scope> = data.roster.grids.iter().map(|g| Scope::Grid(g.id)).collect();
    let code = store.new_code(worker.id, DEMO_NOW, 72).unwrap();
    let mut phone = enroll(&store, &code, DEMO_NOW).unwrap();

    let admin_dir = dir.path().to_path_buf();
    let admin_worker = worker.id;
    let admin_grids = grids.clone();
    let admin = std::thread::spawn(move || {
        let admin = SqliteStore::open(&admin_dir).unwrap();
        for i in 0..30 {
            admin.set_scopes(admin_worker, &[admin_grids[i % admin_grids.len()]]).unwrap();
            admin.new_code(admin_worker, DEMO_NOW, 72).unwrap();
        }
        admin_grids[29 % admin_grids.len()]
    });
    for _ in 0..30 {
        let response = sync(&store, &mut phone, Vec::new(), DEMO_NOW);
        assert_eq!(response.cursors.len(), 1, "a worker holds exactly one grid at any moment");
    }
    let last = admin.join().unwrap();
    while sync(&store, &mut phone, Vec::new(), DEMO_NOW).more {}
    assert_eq!(phone.cursors.keys().copied().collect::<Vec<_>>(), vec![last]);
}
