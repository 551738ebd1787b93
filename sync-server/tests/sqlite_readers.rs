//! On embedded SQLite a phone with nothing to push never waits behind a write: its token check
//! and its pull run on read connections (a WAL snapshot, no lock) while another writer holds
//! the database, here an admin command's open write transaction from another process's
//! connection, which any push must wait for. What the pull-only sync reports about the device
//! (last sync, health) is kept and written by the next write.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{DEMO_NOW, DEMO_SEED, Device};
use gridlink_shared::demo::{self, DemoSize};
use gridlink_shared::protocol::{AckStatus, DeviceHealth, EnrollRequest};
use gridlink_shared::{DocId, HouseholdFile, Role, Scope};
use gridlink_sync_server::{PushLimits, SqliteStore, Store};

fn enroll(store: &SqliteStore, staff: &gridlink_shared::Staff) -> Device {
    let code = store.new_code(staff.id, DEMO_NOW, 72).unwrap();
    Device::new(store.enroll(&EnrollRequest { code, device_name: "网格员的手机".into() }, DEMO_NOW).unwrap())
}

fn last_sync(dir: &std::path::Path, device: &Device) -> (Option<i64>, Option<String>) {
    let conn = rusqlite::Connection::open(dir.join("server.db")).unwrap();
    conn.query_row(
        "SELECT last_sync_at, app_version FROM devices WHERE id = ?1",
        [device.enrolled.device.to_string()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

#[test]
fn a_pull_only_sync_does_not_wait_behind_a_writer_and_its_bookkeeping_lands_later() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::create(dir.path()).unwrap();
    store.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW).unwrap();
    let data = demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let workers: Vec<_> = data.staff_with_role(Role::GridWorker).cloned().collect();
    let grid = workers[0].scopes[0];
    let mut puller = enroll(&store, &workers[0]);
    let mut pusher = enroll(&store, &workers[0]);
    for phone in [&mut puller, &mut pusher] {
        loop {
            let request = phone.request(Vec::new());
            let response = store.sync(phone.enrolled.device, &request, &PushLimits::default(), DEMO_NOW).unwrap();
            phone.apply(&response);
            if !response.more {
                break;
            }
        }
    }
    let Scope::Grid(grid_id) = grid else { unreachable!() };
    let id: DocId = data.households.iter().find(|h| h.placement.grid == grid_id).unwrap().id.into();
    let edit = pusher.edit::<HouseholdFile>(id, |h| h.notes = "锁释放后保存".into());

    // Another process writing: it holds SQLite's write lock until it rolls back.
    let other = rusqlite::Connection::open(dir.path().join("server.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE; UPDATE meta SET value = value WHERE key = 'schema_version';").unwrap();

    let pull_at = DEMO_NOW + 60_000;
    let (pulled, pull_answer) = mpsc::channel();
    let (pushed, push_answer) = mpsc::channel();
    std::thread::scope(|s| {
        let (puller, pusher, store) = (&puller, &pusher, &store);
        s.spawn(move || {
            let mut request = puller.request(Vec::new());
            request.health =
                Some(DeviceHealth { app_version: "网格通 1.4.0".into(), unsent: 0, rejected: 0, quarantined: 0 });
            let authed = store.authenticate(&puller.token).map(|a| a.device);
            let response = store.sync(puller.enrolled.device, &request, &PushLimits::default(), pull_at);
            pulled.send((authed, response.map(|r| r.cursors.contains_key(&grid)))).unwrap();
        });
        // Well under the writer's 10 s busy timeout, which a locked pull used to wait out.
        let answer = pull_answer.recv_timeout(Duration::from_secs(5));
        assert!(
            matches!(&answer, Ok((Ok(device), Ok(true))) if *device == puller.enrolled.device),
            "the pull-only sync waited or failed: {answer:?}"
        );
        // A push, by contrast, waits for the other writer (so the lock is a real one).
        s.spawn(move || {
            let request = pusher.request(vec![edit]);
            let response = store.sync(pusher.enrolled.device, &request, &PushLimits::default(), pull_at + 1);
            pushed.send(response.map(|r| r.acks[0].status.clone())).unwrap();
        });
        assert!(push_answer.recv_timeout(Duration::from_millis(500)).is_err(), "the push did not wait");
        // The pull's bookkeeping could not be written yet.
        assert_eq!(last_sync(dir.path(), puller).0, Some(DEMO_NOW));
        other.execute_batch("ROLLBACK").unwrap();
        let answer = push_answer.recv_timeout(Duration::from_secs(20));
        assert!(matches!(answer, Ok(Ok(AckStatus::Accepted))), "{answer:?}");
    });
    // The push wrote the pull's last sync and health along with its own.
    assert_eq!(last_sync(dir.path(), &puller), (Some(pull_at), Some("网格通 1.4.0".into())));
    assert_eq!(last_sync(dir.path(), &pusher).0, Some(pull_at + 1));
}

#[test]
fn with_the_writer_free_a_pull_only_sync_is_recorded_at_once_and_a_wiped_phone_is_still_told() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::create(dir.path()).unwrap();
    store.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW).unwrap();
    let data = demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let worker = data.staff_with_role(Role::GridWorker).next().unwrap().clone();
    let phone = enroll(&store, &worker);
    let at = DEMO_NOW + 5_000;
    store.sync(phone.enrolled.device, &phone.request(Vec::new()), &PushLimits::default(), at).unwrap();
    assert_eq!(last_sync(dir.path(), &phone).0, Some(at));

    // The token check reads on a reader, but a wiped phone's first telling is still recorded.
    assert!(store.wipe_device(phone.enrolled.device, at).unwrap());
    assert!(matches!(store.authenticate(&phone.token), Err(gridlink_sync_server::StoreError::DeviceWiped)));
    let delivered: Option<i64> = rusqlite::Connection::open(dir.path().join("server.db"))
        .unwrap()
        .query_row("SELECT wipe_delivered_at FROM devices WHERE id = ?1", [phone.enrolled.device.to_string()], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(delivered.is_some(), "the wipe's delivery is recorded");
    assert!(matches!(store.authenticate("not-a-token"), Err(gridlink_sync_server::StoreError::Unauthorized)));
}
