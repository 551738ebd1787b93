//! The supervisors' rows on both backends: after the small demo and the same pushes (visits, a
//! case reported, accepted and resolved, a household edited), SQLite and PostgreSQL give the
//! same facts for a grid, a community and the street, the same "changed since", the same
//! household and case list rows and the same console reads; each backend's rows are the
//! documents' own facts. PostgreSQL only: rows rebuilt at open for a database that has
//! documents but none (as `migrate` leaves it), and the generation counter under concurrent
//! writers in several "processes" (stores): a reader that caches the rows as the console does
//! never misses a row that commits after it read a generation.

#[path = "common/backends.rs"]
mod backends;
mod common;

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};

use backends::Backend;
use common::{DEMO_NOW, DEMO_SEED, Device};
use gridlink_shared::demo::{self, DemoSize};
use gridlink_shared::figures::Facts;
use gridlink_shared::protocol::{self, AckStatus, EnrollRequest, SyncResponse};
use gridlink_shared::time::HOUR_MS;
use gridlink_shared::{
    Action, ActionId, ActionKind, CaseFile, CaseId, CaseKind, CaseStatus, DocId, HouseholdFile, HouseholdId,
    PolicyConfig, Role, Scope, Staff, UserId, Visit, VisitId, VisitOutcome,
};
use gridlink_sync_server::store::PgStore;
use gridlink_sync_server::{PushLimits, SqliteStore};

fn sync<B: Backend>(store: &B, device: &mut Device, changes: Vec<protocol::PushChange>) -> SyncResponse {
    let request = device.request(changes);
    let response = store.sync(device.enrolled.device, &request, &PushLimits::default(), DEMO_NOW).unwrap();
    protocol::check_page(&request.cursors, &response).unwrap();
    device.apply(&response);
    response
}

fn sync_all<B: Backend>(store: &B, device: &mut Device) {
    while sync(store, device, Vec::new()).more {}
}

fn push<B: Backend>(store: &B, device: &mut Device, change: protocol::PushChange) {
    let response = sync(store, device, vec![change]);
    assert_eq!(response.acks[0].status, AckStatus::Accepted, "{:?}", response.acks[0]);
}

fn phone_of<B: Backend>(store: &B, staff: &Staff) -> Device {
    let code = store.new_code(staff.id, DEMO_NOW, 72).unwrap();
    Device::new(store.enroll(&EnrollRequest { code, device_name: "网格员手机".into() }, DEMO_NOW).unwrap())
}

fn sorted(mut facts: Facts) -> Facts {
    facts.households.sort_by_key(|h| h.id);
    facts.visits.sort_by_key(|v| v.id);
    facts.cases.sort_by_key(|c| c.id);
    facts
}

fn grid_workers(data: &demo::DemoData) -> Vec<Staff> {
    data.roster.staff.iter().filter(|s| s.role == Role::GridWorker).cloned().collect()
}

fn grid_of(staff: &Staff) -> gridlink_shared::GridId {
    match staff.scopes[0] {
        Scope::Grid(grid) => grid,
        other => panic!("not a grid scope: {other}"),
    }
}

fn visit(id: u128, by: &Staff, at: i64, notes: &str) -> Visit {
    Visit {
        id: VisitId::from_u128(id),
        visitor: by.id,
        visitor_name: by.name.clone(),
        at,
        recorded_at: at,
        outcome: VisitOutcome::Met,
        notes: notes.into(),
        needs_found: Vec::new(),
        follow_up: None,
        residents_present: Vec::new(),
    }
}

fn action(id: u128, kind: ActionKind, by: &Staff, at: i64, note: &str) -> Action {
    Action {
        id: ActionId::from_u128(id),
        kind,
        by: by.id,
        by_name: by.name.clone(),
        at,
        lamport: 0,
        note: note.into(),
        satisfaction: None,
        to: None,
        to_name: None,
        claimant: None,
        outlet: None,
    }
}

/// Everything the console reads, after the story's pushes.
#[derive(Debug, PartialEq)]
struct Seen {
    street: Facts,
    community: Facts,
    grid: Facts,
    changed: Facts,
    rows: Vec<String>,
    case_status: Option<CaseStatus>,
    household_phone: Option<String>,
    phones: Vec<(HouseholdId, String)>,
    workers: Vec<(UserId, String)>,
}

/// The small demo, then the same pushes on `B`, with fixed ids and times so both backends
/// store documents with the same contents.
fn story<B: Backend>() -> Seen {
    let (_place, store) = B::fresh();
    store.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let data = demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let worker = grid_workers(&data).remove(0);
    let grid = grid_of(&worker);
    let household = data.households.iter().find(|h| h.placement.grid == grid).unwrap().clone();
    let community = Scope::Community(household.placement.community);
    let street = Scope::Street(household.placement.street);

    // Before any push, the rows are the demo documents' facts.
    let policy = PolicyConfig::default();
    assert_eq!(sorted(store.facts(&[street])), sorted(Facts::from_documents(&data.households, &data.cases, &policy)));
    let before = store.facts_generation();

    let mut phone = phone_of(&store, &worker);
    sync_all(&store, &mut phone);
    let id = DocId::from(household.id);
    for (n, note) in [(1, "上门走访：张桂英老人血压平稳"), (2, "复访：药已按时服用")] {
        let visit = visit(0x5151_0000 + n, &worker, DEMO_NOW + n as i64 * HOUR_MS, note);
        let change = phone.edit::<HouseholdFile>(id, |f| {
            f.visits.insert(visit.id, visit.clone());
        });
        push(&store, &mut phone, change);
    }
    let case_id = CaseId::from_u128(0xca5e_0001);
    let case = CaseFile::new(
        case_id,
        CaseKind::all()[0],
        household.placement,
        Some(household.id),
        "楼道灯坏了，老人夜间出行不便",
        "3单元2楼楼道灯不亮",
        (worker.id, &worker.name),
        (worker.id, &worker.name),
        DEMO_NOW + 3 * HOUR_MS,
    );
    let change = phone.create(&case);
    push(&store, &mut phone, change);
    for (n, kind, note) in [(1, ActionKind::Accept, "已受理，联系物业"), (2, ActionKind::Resolve, "物业已更换灯泡")]
    {
        let act = action(0xac70_0000 + n, kind, &worker, DEMO_NOW + (3 + n as i64) * HOUR_MS, note);
        let change = phone.edit::<CaseFile>(DocId::from(case_id), |c| c.push_action(act));
        push(&store, &mut phone, change);
    }
    let change = phone.edit::<HouseholdFile>(id, |f| {
        f.phone = "13912345678".into();
        f.notes = "户主电话已更新".into();
    });
    push(&store, &mut phone, change);
    assert!(store.facts_generation() > before, "a cache of the rows sees they changed");

    // The rows are the stored documents' facts.
    let households: Vec<HouseholdFile> =
        data.households.iter().map(|h| store.household_file(h.id).expect("stored")).collect();
    let mut cases: Vec<CaseFile> = data.cases.iter().map(|c| store.case_file(c.id).expect("stored")).collect();
    cases.push(store.case_file(case_id).expect("the reported case"));
    let street_facts = sorted(store.facts(&[street]));
    assert_eq!(street_facts, sorted(Facts::from_documents(&households, &cases, &policy)));
    let changed = sorted(store.facts_changed_since(&[street], before));
    assert_eq!(changed.households.iter().map(|h| h.id).collect::<Vec<_>>(), [household.id]);
    assert_eq!(changed.cases.iter().map(|c| c.id).collect::<Vec<_>>(), [case_id]);
    let all_visits = street_facts.visits.iter().filter(|v| v.household == household.id).count();
    assert_eq!(changed.visits.len(), all_visits, "a changed household comes with all its visits");
    let grid_facts = sorted(store.facts(&[Scope::Grid(grid)]));
    assert!(grid_facts.households.iter().all(|h| h.placement.grid == grid));
    assert_eq!(sorted(store.facts(&[Scope::Grid(grid), street])), street_facts, "each row once");
    assert!(store.household_file(HouseholdId::from_u128(0xca5e_0001)).is_none(), "a case is no household");

    let mut phones: Vec<_> = store.household_phones(&[grid]).into_iter().collect();
    phones.sort();
    Seen {
        street: street_facts,
        community: sorted(store.facts(&[community])),
        grid: grid_facts,
        changed,
        rows: store.list_rows(),
        case_status: store.case_file(case_id).map(|c| c.status()),
        household_phone: store.household_file(household.id).map(|h| h.phone),
        phones,
        workers: store.grid_workers(grid),
    }
}

#[test]
fn both_backends_keep_the_same_rows_after_the_same_pushes() {
    let sqlite = story::<SqliteStore>();
    let postgres = story::<PgStore>();
    assert_eq!(sqlite.case_status, Some(CaseStatus::Resolved));
    assert_eq!(sqlite.household_phone.as_deref(), Some("13912345678"));
    assert!(sqlite.rows.iter().any(|r| r.contains("|13912345678|")), "the list row has the new phone");
    assert!(!sqlite.workers.is_empty() && !sqlite.phones.is_empty());
    assert_eq!(postgres.street, sqlite.street);
    assert_eq!(postgres.community, sqlite.community);
    assert_eq!(postgres.grid, sqlite.grid);
    assert_eq!(postgres.changed, sqlite.changed);
    assert_eq!(postgres.rows.len(), sqlite.rows.len());
    for (pg, lite) in postgres.rows.iter().zip(&sqlite.rows) {
        assert_eq!(pg, lite);
    }
    assert_eq!(postgres, sqlite);
}

#[test]
fn a_postgres_database_with_documents_but_no_rows_gets_them_when_opened() {
    let (db, store) = PgStore::fresh();
    // Opening an empty database writes nothing: `migrate` still takes it as empty.
    let keys: i64 = store.read(|c| Ok(c.query_one("SELECT COUNT(*) FROM meta", &[])?.get(0))).unwrap();
    assert_eq!(keys, 1, "only the schema's own reference_version");
    store.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW).unwrap();
    let data = demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let street = Scope::Street(data.roster.streets[0].id);
    let (facts, rows) = (sorted(store.facts(&[street]).unwrap()), store.list_rows());
    assert!(!rows.is_empty());
    // What `migrate` leaves: documents, no rows, no marker.
    for table in ["household_rows", "case_rows", "household_facts", "visit_facts", "case_facts"] {
        store.exec(&format!("DELETE FROM {table}"));
    }
    store.exec("DELETE FROM meta WHERE key IN ('facts_version', 'facts_generation')");
    drop(store);
    let reopened = PgStore::open(&db.url).unwrap();
    assert_eq!(sorted(reopened.facts(&[street]).unwrap()), facts);
    assert_eq!(reopened.list_rows(), rows);
    let at = reopened.facts_generation().unwrap();
    assert!(at >= 1);
    // Opened again: nothing is rebuilt (the rows keep their generation).
    drop(reopened);
    assert_eq!(PgStore::open(&db.url).unwrap().facts_generation().unwrap(), at);
}

#[test]
fn a_sqlite_store_migrated_to_postgres_has_the_same_rows_once_opened() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::create(dir.path()).unwrap();
    Backend::load_demo(&sqlite, DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let data = demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let scopes = [Scope::Street(data.roster.streets[0].id)];
    let (facts, rows) = (sorted(Backend::facts(&sqlite, &scopes)), Backend::list_rows(&sqlite));
    drop(sqlite);
    let (db, _) = PgStore::fresh();
    let migration = gridlink_sync_server::store::postgres::migrate_sqlite(dir.path(), &db.url, &mut |_| {}).unwrap();
    assert!(migration.committed, "{}", migration.verification.render());
    let left: Vec<String> = migration.not_copied.iter().map(|n| format!("{}: {}", n.what, n.why)).collect();
    assert!(left.iter().any(|l| l.starts_with("table household_facts (") && l.contains("rebuilt")), "{left:?}");
    let pg = PgStore::open(&db.url).unwrap();
    assert_eq!(sorted(Backend::facts(&pg, &scopes)), facts);
    assert_eq!(Backend::list_rows(&pg), rows);
}

/// Several servers push visits at once while another reads the rows as the console's cache
/// does (the generation first, then what changed since the kept copy). Had a row committed
/// with a generation at or below one the reader already passed, the cache would lack it for
/// good: at the end it must equal a full read.
#[test]
fn a_cache_of_the_postgres_rows_never_misses_a_row_committed_by_concurrent_writers() {
    let (db, first) = PgStore::fresh();
    first.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW).unwrap();
    let data = demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let street = [Scope::Street(data.roster.streets[0].id)];
    let workers = grid_workers(&data);
    assert!(workers.len() >= 2, "the demo has several grid workers");
    let writers: Vec<(PgStore, Device, Vec<DocId>)> = workers
        .iter()
        .take(3)
        .map(|worker| {
            let store = PgStore::open(&db.url).unwrap().with_pool_size(1);
            let mut phone = phone_of(&store, worker);
            sync_all(&store, &mut phone);
            let grid = grid_of(worker);
            let files = data
                .households
                .iter()
                .filter(|h| h.placement.grid == grid)
                .take(4)
                .map(|h| DocId::from(h.id))
                .collect();
            (store, phone, files)
        })
        .collect();
    let reader = PgStore::open(&db.url).unwrap().with_pool_size(1);
    let start = reader.facts_generation().unwrap();
    let mut kept = start;
    let mut cache = reader.facts(&street).unwrap();

    const ROUNDS: usize = 12;
    let writing = AtomicBool::new(true);
    let pushes = writers.len() * ROUNDS;
    let barrier = Barrier::new(writers.len() + 1);
    let refreshes = std::thread::scope(|s| {
        let handles: Vec<_> = writers
            .into_iter()
            .enumerate()
            .map(|(n, (store, mut phone, files))| {
                let (barrier, worker) = (&barrier, &workers[n]);
                s.spawn(move || {
                    barrier.wait();
                    for round in 0..ROUNDS {
                        let id = files[round % files.len()];
                        let visit = visit(
                            ((n as u128 + 1) << 32) + round as u128,
                            worker,
                            DEMO_NOW + round as i64 * HOUR_MS,
                            &format!("第{round}次走访"),
                        );
                        let change = phone.edit::<HouseholdFile>(id, |f| {
                            f.visits.insert(visit.id, visit.clone());
                        });
                        push(&store, &mut phone, change);
                    }
                })
            })
            .collect();
        let reading = s.spawn(|| {
            barrier.wait();
            let mut refreshes = 0;
            loop {
                let last = !writing.load(Ordering::SeqCst);
                let generation = reader.facts_generation().unwrap();
                if generation > kept {
                    cache = cache.clone().with_changes(reader.facts_changed_since(&street, kept).unwrap());
                    kept = generation;
                    refreshes += 1;
                }
                if last {
                    return refreshes;
                }
                // Not a timing assertion: only keeps the loop from taking a whole core.
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        });
        for handle in handles {
            handle.join().unwrap();
        }
        writing.store(false, Ordering::SeqCst);
        reading.join().unwrap()
    });
    assert!(refreshes > 0);
    let full = sorted(first.facts(&street).unwrap());
    let demo_visits = Facts::from_documents(&data.households, &data.cases, &PolicyConfig::default()).visits.len();
    assert_eq!(full.visits.len(), demo_visits + pushes);
    assert_eq!(sorted(cache), full, "the cache kept up by generation equals a full read");
    // One generation per writing transaction, gapless: the counter moved once per push, and
    // it is the highest a row carries.
    let highest: i64 =
        first.read(|c| Ok(c.query_one("SELECT MAX(generation) FROM household_facts", &[])?.get(0))).unwrap();
    assert_eq!(first.facts_generation().unwrap(), start + pushes as u64);
    assert_eq!(highest as u64, start + pushes as u64);
}

stories!(story_rows_are_the_documents_facts);

/// Per backend: the rows after the story are the stored documents' facts (checked inside).
fn story_rows_are_the_documents_facts<B: Backend>() {
    story::<B>();
}

/// The ordering itself, step by step: while a transaction holds the next generation (here a
/// raw one, as a writer in another process mid-push), a push from this server waits for it
/// instead of committing a later number first; readers meanwhile see the last committed
/// generation, and the push's rows come after the held one.
#[test]
fn a_postgres_push_waits_for_an_earlier_generation_in_flight_and_commits_after_it() {
    let (db, store) = PgStore::fresh();
    store.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW).unwrap();
    let data = demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let worker = grid_workers(&data).remove(0);
    let household = data.households.iter().find(|h| h.placement.grid == grid_of(&worker)).unwrap();
    let street = [Scope::Street(household.placement.street)];
    let mut phone = phone_of(&store, &worker);
    sync_all(&store, &mut phone);
    let before = store.facts_generation().unwrap();

    let mut other = ::postgres::Client::connect(&db.url, ::postgres::NoTls).unwrap();
    let mut held = other.transaction().unwrap();
    let taken: String = held
        .query_one(
            "UPDATE meta SET value = (CAST(value AS BIGINT) + 1)::text WHERE key = 'facts_generation' RETURNING value",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(taken, (before + 1).to_string());

    let pusher = PgStore::open(&db.url).unwrap();
    let visit = visit(0x7777_0001, &worker, DEMO_NOW + HOUR_MS, "夜间走访：独居老人门窗已检查");
    let change = phone.edit::<HouseholdFile>(DocId::from(household.id), |f| {
        f.visits.insert(visit.id, visit.clone());
    });
    std::thread::scope(|s| {
        let pushing = s.spawn(|| push(&pusher, &mut phone, change));
        // Wait until the push is blocked on a lock (or finished, which would be the fault).
        let mut watcher = ::postgres::Client::connect(&db.url, ::postgres::NoTls).unwrap();
        loop {
            let waiting: i64 = watcher
                .query_one(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .unwrap()
                .get(0);
            if waiting > 0 {
                break;
            }
            assert!(!pushing.is_finished(), "the push committed while an earlier generation was in flight");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(store.facts_generation().unwrap(), before, "readers see the last committed generation");
        assert!(store.facts_changed_since(&street, before).unwrap().visits.is_empty());
        held.commit().unwrap();
        pushing.join().unwrap();
    });
    assert_eq!(store.facts_generation().unwrap(), before + 2);
    let changed = store.facts_changed_since(&street, before + 1).unwrap();
    assert!(changed.visits.iter().any(|v| v.id == visit.id), "the push's rows come after the held generation");
}
