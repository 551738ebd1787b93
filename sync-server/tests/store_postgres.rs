//! PostgreSQL with several server processes on one database, each played by a store of its
//! own (its own pool): concurrent pushers to one scope leave a gapless log with each change
//! once and no change lost from the documents, while a reader pulling all along never skips
//! an entry; the same request reaching two servers at once is stored once and acked by both;
//! an enrolment code redeemed at once on several servers enrols exactly one device; a newer
//! schema is refused; the admin commands (compaction, the roster import, check) run while
//! servers push and pull, and no phone misses or repeats anything.

#[path = "common/backends.rs"]
mod backends;
mod common;

use std::collections::BTreeSet;
use std::sync::Barrier;

use backends::Backend;
use common::{DEMO_NOW, DEMO_SEED, Device};
use gridlink_shared::demo::{self, DemoSize};
use gridlink_shared::protocol::{self, AckStatus, Cursor, EnrollRequest, PullItem, SyncResponse};
use gridlink_shared::{DocId, HouseholdFile, Role, Scope, Staff};
use gridlink_sync_server::store::PgStore;
use gridlink_sync_server::store::postgres::cluster::TestDatabase;
use gridlink_sync_server::{PushLimits, Store, StoreError};

fn sync(store: &PgStore, device: &mut Device, changes: Vec<protocol::PushChange>) -> SyncResponse {
    let request = device.request(changes);
    let response = store.sync(device.enrolled.device, &request, &PushLimits::default(), DEMO_NOW).unwrap();
    protocol::check_page(&request.cursors, &response).unwrap();
    device.apply(&response);
    response
}

fn sync_all(store: &PgStore, device: &mut Device) {
    while sync(store, device, Vec::new()).more {}
}

fn enroll(store: &PgStore, staff: &Staff) -> Device {
    let code = store.new_code(staff.id, DEMO_NOW, 72).unwrap();
    Device::new(store.enroll(&EnrollRequest { code, device_name: "测试机".into() }, DEMO_NOW).unwrap())
}

fn demo() -> (TestDatabase, PgStore, demo::DemoData) {
    let (db, store) = PgStore::fresh();
    store.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW).unwrap();
    (db, store, demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW))
}

fn worker_and_grid(data: &demo::DemoData) -> (Staff, Scope) {
    let worker = data.staff_with_role(Role::GridWorker).next().unwrap().clone();
    let grid = worker.scopes[0];
    (worker, grid)
}

/// Marks a pusher finished when dropped.
struct Done<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn concurrent_pushers_to_one_scope_leave_a_gapless_log_and_a_reader_never_skips_an_entry() {
    let (db, first, data) = demo();
    // One connection each: the pool makes concurrent callers wait their turn.
    let second = PgStore::open(&db.url).unwrap().with_pool_size(1);
    let third = PgStore::open(&db.url).unwrap().with_pool_size(1);
    let (worker, grid) = worker_and_grid(&data);
    let Scope::Grid(grid_id) = grid else { unreachable!() };
    // Both phones edit the same few household files, so their pushes contend for documents too.
    let files: Vec<DocId> =
        data.households.iter().filter(|h| h.placement.grid == grid_id).take(3).map(|h| DocId::from(h.id)).collect();
    let mut phones = [enroll(&first, &worker), enroll(&second, &worker)];
    let mut reader = enroll(&third, &worker);
    for phone in &mut phones {
        sync_all(&first, phone);
    }
    sync_all(&third, &mut reader);
    let Cursor::Seq { seq: start } = reader.cursors[&grid] else { panic!("the reader is at the log") };

    const ROUNDS: usize = 15;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let barrier = Barrier::new(3);
    let (accepted, seen) = std::thread::scope(|s| {
        let pushers: Vec<_> = phones
            .iter_mut()
            .zip([&first, &second])
            .enumerate()
            .map(|(n, (phone, store))| {
                let (files, barrier, done) = (&files, &barrier, &done);
                s.spawn(move || {
                    // Counted as done also if this pusher panics, so the reader stops.
                    let _done = Done(done);
                    barrier.wait();
                    let mut hashes = Vec::new();
                    for round in 0..ROUNDS {
                        let id = files[round % files.len()];
                        let push = phone.edit::<HouseholdFile>(id, |h| h.notes = format!("手机{n}第{round}次"));
                        let response = sync(store, phone, vec![push]);
                        assert_eq!(response.acks[0].status, AckStatus::Accepted, "phone {n} round {round}");
                        hashes.push(response.acks[0].hash.clone());
                    }
                    hashes
                })
            })
            .collect();
        // The reader pulls all along; every entry it gets must follow the previous one.
        let reading = s.spawn(|| {
            barrier.wait();
            let mut seen: Vec<u64> = Vec::new();
            let started = std::time::Instant::now();
            loop {
                assert!(started.elapsed().as_secs() < 120, "the pushers never finished");
                let finished = done.load(std::sync::atomic::Ordering::SeqCst) == 2;
                let response = sync(&third, &mut reader, Vec::new());
                seen.extend(response.items.iter().filter_map(|item| match item {
                    PullItem::Change { seq, scope, .. } | PullItem::Echo { seq, scope, .. } if *scope == grid => {
                        Some(*seq)
                    }
                    _ => None,
                }));
                if finished && !response.more {
                    return seen;
                }
            }
        });
        let accepted: Vec<String> = pushers.into_iter().flat_map(|p| p.join().unwrap()).collect();
        (accepted, reading.join().unwrap())
    });
    // Entries seen by the reader: exactly start+1, start+2, ... in order, to the head.
    let expected: Vec<u64> = (start + 1..=start + seen.len() as u64).collect();
    assert_eq!(seen, expected, "the reader skipped or repeated an entry");

    let (count, distinct_seq, max_seq, distinct_hash): (i64, i64, i64, i64) = first
        .read(|c| {
            let row = c.query_one(
                "SELECT COUNT(*), COUNT(DISTINCT seq), MAX(seq), COUNT(DISTINCT change_hash) FROM scope_log WHERE scope = $1",
                &[&grid.to_string()],
            )?;
            Ok((row.get(0), row.get(1), row.get(2), row.get(3)))
        })
        .unwrap();
    assert_eq!((count, distinct_seq), (max_seq, max_seq), "gapless from 1");
    assert_eq!(count, distinct_hash, "each change logged once");
    assert_eq!(seen.last().copied(), Some(max_seq as u64), "the reader reached the head");
    let logged: BTreeSet<String> = first
        .read(|c| {
            Ok(c.query(
                "SELECT change_hash FROM scope_log WHERE scope = $1 AND seq > $2",
                &[&grid.to_string(), &(start as i64)],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
        .unwrap();
    assert_eq!(logged, accepted.iter().cloned().collect::<BTreeSet<_>>(), "the log holds exactly the accepted changes");
    // No document lost a change to a concurrent write of it.
    let in_docs: usize = files
        .iter()
        .map(|id| {
            let bytes: Vec<u8> = first
                .read(|c| Ok(c.query_one("SELECT bytes FROM docs WHERE id = $1", &[&id.to_string()])?.get(0)))
                .unwrap();
            let mut doc = gridlink_shared::doc::load(&bytes).unwrap();
            let held: BTreeSet<String> = doc.get_changes(&[]).iter().map(|c| c.hash().to_string()).collect();
            accepted.iter().filter(|h| held.contains(*h)).count()
        })
        .sum();
    assert_eq!(in_docs, accepted.len(), "every accepted change is in its stored document");
}

#[test]
fn the_same_request_at_two_servers_at_once_is_stored_once_and_acked_by_both() {
    let (db, first, data) = demo();
    let second = PgStore::open(&db.url).unwrap();
    let (worker, grid) = worker_and_grid(&data);
    let Scope::Grid(grid_id) = grid else { unreachable!() };
    let id: DocId = data.households.iter().find(|h| h.placement.grid == grid_id).unwrap().id.into();
    let mut phone = enroll(&first, &worker);
    sync_all(&first, &mut phone);
    for round in 0..5 {
        let push = phone.edit::<HouseholdFile>(id, |h| h.notes = format!("重发{round}"));
        let request = phone.request(vec![push]);
        let barrier = Barrier::new(2);
        let statuses: Vec<AckStatus> = std::thread::scope(|s| {
            let sends: Vec<_> = [&first, &second]
                .into_iter()
                .map(|store| {
                    let (request, barrier, device) = (&request, &barrier, phone.enrolled.device);
                    s.spawn(move || {
                        barrier.wait();
                        store.sync(device, request, &PushLimits::default(), DEMO_NOW).unwrap().acks[0].status.clone()
                    })
                })
                .collect();
            sends.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut statuses: Vec<String> = statuses.iter().map(|s| format!("{s:?}")).collect();
        statuses.sort();
        assert_eq!(statuses, vec!["Accepted".to_string(), "Duplicate".to_string()], "round {round}");
        let hash = gridlink_shared::doc::parse_change(&request.changes[0].bytes).unwrap().hash().to_string();
        let (changes, entries): (i64, i64) = first
            .read(|c| {
                Ok((
                    c.query_one("SELECT COUNT(*) FROM changes WHERE hash = $1", &[&hash])?.get(0),
                    c.query_one(
                        "SELECT COUNT(*) FROM scope_log WHERE change_hash = $1 AND scope = $2",
                        &[&hash, &grid.to_string()],
                    )?
                    .get(0),
                ))
            })
            .unwrap();
        assert_eq!((changes, entries), (1, 1), "round {round}: stored once, logged once in the grid");
        sync_all(&first, &mut phone);
    }
}

#[test]
fn an_enrolment_code_redeemed_at_several_servers_at_once_enrols_one_device() {
    let (db, first, data) = demo();
    let stores: Vec<PgStore> = (0..4).map(|_| PgStore::open(&db.url).unwrap()).collect();
    let (worker, _) = worker_and_grid(&data);
    for round in 0..3 {
        let code = first.new_code(worker.id, DEMO_NOW, 72).unwrap();
        let barrier = Barrier::new(stores.len());
        let outcomes: Vec<Result<(), StoreError>> = std::thread::scope(|s| {
            let tries: Vec<_> = stores
                .iter()
                .map(|store| {
                    let (code, barrier) = (&code, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        store
                            .enroll(&EnrollRequest { code: code.clone(), device_name: "同时登记".into() }, DEMO_NOW)
                            .map(drop)
                    })
                })
                .collect();
            tries.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "round {round}: {outcomes:?}");
        assert!(outcomes.iter().all(|o| matches!(o, Ok(()) | Err(StoreError::CodeUsed))), "{outcomes:?}");
    }
    let devices: i64 = first.read(|c| Ok(c.query_one("SELECT COUNT(*) FROM devices", &[])?.get(0))).unwrap();
    assert_eq!(devices, 3);
}

#[test]
fn a_schema_newer_than_this_server_is_refused_and_opening_twice_migrates_once() {
    let db = TestDatabase::new().unwrap();
    let stores: Vec<PgStore> = std::thread::scope(|s| {
        let opens: Vec<_> = (0..3).map(|_| s.spawn(|| PgStore::open(&db.url).unwrap())).collect();
        opens.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Each migration recorded once, up to the newest (the list need not be contiguous while
    // branches land their migrations).
    let (applied, distinct, newest): (i64, i64, i32) = stores[0]
        .read(|c| {
            let row =
                c.query_one("SELECT COUNT(*), COUNT(DISTINCT version), MAX(version) FROM schema_migrations", &[])?;
            Ok((row.get(0), row.get(1), row.get(2)))
        })
        .unwrap();
    assert_eq!(applied, distinct, "three opens ran each migration once");
    assert_eq!(newest, gridlink_sync_server::store::postgres::schema::LATEST);
    stores[0]
        .read(|c| {
            c.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)", &[])?;
            Ok(())
        })
        .unwrap();
    match PgStore::open(&db.url) {
        Err(StoreError::Invalid(message)) => assert!(message.contains("999") && message.contains("newer"), "{message}"),
        other => panic!("a newer schema must be refused, got {other:?}"),
    }
}

#[test]
fn init_database_creates_the_schema_and_loads_the_demo_the_sqlite_way() {
    let db = TestDatabase::new().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gridlink-server"))
        .args(["init", "--database", &db.url, "--demo", "small"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("demo data:"));
    // The same documents and log lengths as the embedded store gets from the same demo.
    let dir = tempfile::tempdir().unwrap();
    let sqlite = gridlink_sync_server::SqliteStore::create(dir.path()).unwrap();
    sqlite.load_demo(DemoSize::Small, 7, 0).unwrap();
    let pg = PgStore::open(&db.url).unwrap();
    let pg_logs: Vec<(String, i64)> = pg
        .read(|c| {
            Ok(c.query("SELECT scope, MAX(seq) FROM scope_log GROUP BY scope ORDER BY scope", &[])?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
        })
        .unwrap();
    let sqlite_logs: Vec<(String, i64)> = sqlite
        .read(|c| {
            let mut stmt = c.prepare("SELECT scope, MAX(seq) FROM scope_log GROUP BY scope ORDER BY scope")?;
            Ok(stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?)
        })
        .unwrap();
    assert_eq!(pg_logs, sqlite_logs);
    // Running it again on the migrated database refuses to load a second demo.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_gridlink-server"))
        .args(["init", "--database", &db.url, "--demo", "small"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds documents"));
}

#[test]
fn a_pull_only_sync_does_not_wait_behind_a_push_in_progress() {
    let (db, store, data) = demo();
    let (worker, grid) = worker_and_grid(&data);
    let mut phone = enroll(&store, &worker);
    sync_all(&store, &mut phone);
    // Another server's push, stuck half-way: it holds every log counter of the scope and
    // blocks all writes to documents, changes and logs until it ends.
    let mut other = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let mut push = other.transaction().unwrap();
    push.batch_execute("LOCK TABLE docs, doc_scopes, changes, scope_log, scope_digests IN EXCLUSIVE MODE").unwrap();
    push.execute("SELECT 1 FROM scope_heads WHERE scope = $1 FOR UPDATE", &[&grid.to_string()]).unwrap();
    let Scope::Grid(grid_id) = grid else { unreachable!() };
    let id: DocId = data.households.iter().find(|h| h.placement.grid == grid_id).unwrap().id.into();
    let edit = phone.edit::<HouseholdFile>(id, |h| h.notes = "等待中".into());
    let (pulled, pull_answer) = std::sync::mpsc::channel();
    let (pushed, push_answer) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let (phone, store) = (&phone, &store);
        s.spawn(move || {
            let request = phone.request(Vec::new());
            let response = store.sync(phone.enrolled.device, &request, &PushLimits::default(), DEMO_NOW);
            pulled.send(response.map(|r| r.cursors.contains_key(&grid))).unwrap();
        });
        let answer = pull_answer.recv_timeout(std::time::Duration::from_secs(20));
        assert!(matches!(answer, Ok(Ok(true))), "the pull-only sync waited or failed: {answer:?}");
        // A push, by contrast, waits for the other one (so the lock above is a real one).
        s.spawn(move || {
            let request = phone.request(vec![edit]);
            let response = store.sync(phone.enrolled.device, &request, &PushLimits::default(), DEMO_NOW);
            pushed.send(response.map(|r| r.acks[0].status.clone())).unwrap();
        });
        assert!(push_answer.recv_timeout(std::time::Duration::from_millis(500)).is_err(), "the push did not wait");
        push.rollback().unwrap();
        let answer = push_answer.recv_timeout(std::time::Duration::from_secs(20));
        assert!(matches!(answer, Ok(Ok(AckStatus::Accepted))), "{answer:?}");
    });
}

#[test]
fn deadlocks_and_serialization_failures_are_told_apart_by_sqlstate_as_retryable() {
    // Two SERIALIZABLE transactions that each read what the other writes (write skew): the
    // second to commit fails with SQLSTATE 40001, whatever the server's message language.
    let db = TestDatabase::new().unwrap();
    let mut setup = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    setup.batch_execute("CREATE TABLE duty (name TEXT PRIMARY KEY, on_call BOOLEAN NOT NULL); INSERT INTO duty VALUES ('陈晓燕', true), ('李建国', true)").unwrap();
    let mut first = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let mut second = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let serializable = "BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT count(*) FROM duty WHERE on_call";
    first.batch_execute(serializable).unwrap();
    second.batch_execute(serializable).unwrap();
    first.batch_execute("UPDATE duty SET on_call = false WHERE name = '陈晓燕'").unwrap();
    second.batch_execute("UPDATE duty SET on_call = false WHERE name = '李建国'").unwrap();
    first.batch_execute("COMMIT").unwrap();
    let failure = second.batch_execute("COMMIT").unwrap_err();
    assert!(matches!(StoreError::from(failure), StoreError::Retryable(_)));
    // Any other failure stays a fault.
    let other = setup.batch_execute("SELECT * FROM no_such_table").unwrap_err();
    assert!(matches!(StoreError::from(other), StoreError::Backend(_)));
    // The blocking clients run their own runtimes; close them before the cluster goes.
    drop((first, second, setup));
}

/// Compaction, roster imports that create households and checks, run by an admin process
/// while two servers take pushes to one scope and a third serves a phone that pulls all
/// along: the log stays gapless above its floor, the counter matches it, the pulling phone
/// ends with exactly what a phone enrolled afterwards receives, and every check is clean.
#[test]
fn admin_commands_run_beside_pushes_and_pulls_and_no_phone_misses_anything() {
    let (db, first, data) = demo();
    let second = PgStore::open(&db.url).unwrap().with_pool_size(1);
    let third = PgStore::open(&db.url).unwrap().with_pool_size(1);
    let admin = PgStore::open(&db.url).unwrap().with_pool_size(1);
    let (worker, grid) = worker_and_grid(&data);
    let Scope::Grid(grid_id) = grid else { unreachable!() };
    let building = data.roster.buildings.iter().find(|b| b.grid == grid_id).unwrap().id;
    let files: Vec<DocId> =
        data.households.iter().filter(|h| h.placement.grid == grid_id).take(3).map(|h| DocId::from(h.id)).collect();
    let mut phones = [enroll(&first, &worker), enroll(&second, &worker)];
    let mut reader = enroll(&third, &worker);
    for phone in &mut phones {
        sync_all(&first, phone);
    }
    sync_all(&third, &mut reader);

    const ROUNDS: usize = 12;
    const ADMIN_ROUNDS: usize = 4;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let barrier = Barrier::new(4);
    std::thread::scope(|s| {
        for (n, (phone, store)) in phones.iter_mut().zip([&first, &second]).enumerate() {
            let (files, barrier, done) = (&files, &barrier, &done);
            s.spawn(move || {
                let _done = Done(done);
                barrier.wait();
                for round in 0..ROUNDS {
                    let id = files[round % files.len()];
                    let push = phone.edit::<HouseholdFile>(id, |h| h.notes = format!("手机{n}第{round}次走访"));
                    let response = sync(store, phone, vec![push]);
                    assert_eq!(response.acks[0].status, AckStatus::Accepted, "phone {n} round {round}");
                }
            });
        }
        s.spawn(|| {
            let _done = Done(&done);
            barrier.wait();
            for round in 0..ADMIN_ROUNDS {
                admin.compact(2).unwrap();
                let csv = format!(
                    "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room
household,00000000-0000-4000-8000-00000000c00{round},{building},冯秀珍{round},1390714700{round},,,,,,1,10{round}
"
                );
                let summary = admin.import_csv_from(csv.as_bytes(), DEMO_NOW).unwrap();
                assert_eq!(summary.households_created, 1, "round {round}");
                let report = admin.check(false, DEMO_NOW, &mut |_, _| {}).unwrap();
                assert!(report.is_clean() && report.index_mismatches.is_empty(), "round {round}: {report:?}");
            }
        });
        s.spawn(|| {
            barrier.wait();
            for _ in 0..1_000_000 {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst) == 3;
                // `sync` checks every page: gapless after the cursor, or a restart below the floor.
                let response = sync(&third, &mut reader, Vec::new());
                if finished && !response.more {
                    return;
                }
            }
            panic!("the writers never finished");
        });
    });

    let (count, floor, max_seq, head): (i64, i64, i64, i64) = first
        .read(|c| {
            let row = c.query_one(
                "SELECT (SELECT COUNT(*) FROM scope_log WHERE scope = $1),
                        (SELECT COALESCE(MAX(floor), 0) FROM scope_floor WHERE scope = $1),
                        (SELECT COALESCE(MAX(seq), 0) FROM scope_log WHERE scope = $1),
                        (SELECT head FROM scope_heads WHERE scope = $1)",
                &[&grid.to_string()],
            )?;
            Ok((row.get(0), row.get(1), row.get(2), row.get(3)))
        })
        .unwrap();
    assert!(floor > 0, "compaction ran");
    assert_eq!((count, max_seq), (head - floor, head), "gapless from the floor to the counter");

    let mut fresh = enroll(&first, &worker);
    sync_all(&first, &mut fresh);
    sync_all(&third, &mut reader);
    let heads = |device: &mut Device| -> std::collections::BTreeMap<DocId, Vec<String>> {
        device.docs.iter_mut().map(|(id, d)| (*id, d.get_heads().iter().map(|h| h.to_string()).collect())).collect()
    };
    assert_eq!(heads(&mut reader), heads(&mut fresh), "the phone that pulled all along holds what a new one gets");
    let imported = data.households.len() + ADMIN_ROUNDS;
    assert_eq!(
        first.roster_report().unwrap().streets[0]
            .communities
            .iter()
            .flat_map(|c| &c.grids)
            .map(|g| g.households)
            .sum::<u64>() as usize,
        imported
    );
    let report = first.check(false, DEMO_NOW, &mut |_, _| {}).unwrap();
    assert!(report.is_clean(), "{report:?}");
}
