//! CPU time the server spends on one sync that pushes visits, on the store alone (no HTTP):
//! one thread calls `Store::sync` for the grid workers of the small demo in turn, each sync
//! pushing 1 or 50 visits recorded on the households of the worker's grid (a year of
//! history each), and reads its own thread's CPU clock around every call. The figure to
//! compare with other servers is CPU per one-change sync; a 50-change sync should cost far
//! less than 50 of them.
//!
//! `cargo run --release -p gridlink-sync-server --example push_cpu -- [SYNCS_OF_ONE] [SYNCS_OF_50]`
//! (run it under `perf record -g` to see where the time goes).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use automerge::{ActorId, AutoCommit};
use gridlink_shared::demo::DemoSize;
use gridlink_shared::protocol::{AckStatus, Cursor, EnrollRequest, PROTOCOL_VERSION, PushChange, SyncRequest};
use gridlink_shared::time::{Millis, now_millis};
use gridlink_shared::{DocId, HouseholdFile, Role, Scope, Visit, VisitId, VisitOutcome, doc};
use gridlink_sync_server::{PushLimits, SqliteStore, Store};

/// The calling thread's CPU time.
fn thread_cpu() -> Duration {
    cpu_time::ThreadTime::now().as_duration()
}

/// One enrolled grid worker's phone: its grid's households, forked with the device's actor.
struct Phone {
    device: gridlink_shared::DeviceId,
    user: gridlink_shared::UserId,
    name: String,
    scope: Scope,
    cursor: Cursor,
    reference_version: Option<u64>,
    households: Vec<(DocId, AutoCommit, HouseholdFile)>,
    next: usize,
}

impl Phone {
    fn visits(&mut self, n: usize, now: Millis) -> Result<Vec<PushChange>> {
        let mut changes = Vec::new();
        for _ in 0..n {
            let slot = self.next % self.households.len();
            self.next += 1;
            let (id, automerge_doc, file) = &mut self.households[slot];
            let visit = Visit {
                id: VisitId::new(),
                visitor: self.user,
                visitor_name: self.name.clone(),
                at: now - 60_000,
                recorded_at: now,
                outcome: VisitOutcome::Met,
                notes: format!("入户走访第{}次：老人身体状况良好，提醒注意用电安全", self.next),
                needs_found: Vec::new(),
                follow_up: None,
                residents_present: Vec::new(),
            };
            file.visits.insert(visit.id, visit);
            doc::update(automerge_doc, file, "visit", now)?;
            let change = automerge_doc.get_last_local_change().context("a visit makes a change")?;
            changes.push(PushChange { doc: *id, bytes: change.raw_bytes().to_vec() });
        }
        Ok(changes)
    }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let syncs_of_one: usize = args.next().map(|v| v.parse()).transpose()?.unwrap_or(400);
    let syncs_of_fifty: usize = args.next().map(|v| v.parse()).transpose()?.unwrap_or(16);
    let dir = tempfile::tempdir()?;
    let now = now_millis();
    let store = SqliteStore::create(dir.path())?;
    store.load_demo(DemoSize::Small, 20261128, now)?;
    let mut phones = Vec::new();
    for user in store.list_users()? {
        let [scope @ Scope::Grid(_)] = user.scopes[..] else { continue };
        if user.role != Role::GridWorker {
            continue;
        }
        let code = store.new_code(user.id, now, 1)?;
        let enrolled = store.enroll(&EnrollRequest { code, device_name: "华为 Mate 60".into() }, now)?;
        let actor = ActorId::from(hex::decode(&enrolled.actor)?);
        let (seq, reference_version, docs) = store.read(|conn| {
            let reference: String =
                conn.query_row("SELECT value FROM meta WHERE key = 'reference_version'", [], |r| r.get(0))?;
            let seq: u64 = conn.query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM scope_log WHERE scope = ?1",
                [scope.to_string()],
                |r| r.get(0),
            )?;
            let mut stmt = conn.prepare(
                "SELECT d.id, d.bytes FROM doc_scopes s JOIN docs d ON d.id = s.doc_id
                 WHERE s.scope = ?1 AND d.doc_type = 'household' ORDER BY d.id",
            )?;
            let docs = stmt
                .query_map([scope.to_string()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok((seq, reference.parse::<u64>().ok(), docs))
        })?;
        let mut households = Vec::new();
        for (id, bytes) in docs {
            let mut automerge_doc = doc::load(&bytes)?;
            automerge_doc.set_actor(actor.clone());
            let file: HouseholdFile = doc::read(&automerge_doc)?;
            households.push((id.parse()?, automerge_doc, file));
        }
        phones.push(Phone {
            device: enrolled.device,
            user: user.id,
            name: user.name.clone(),
            scope,
            cursor: Cursor::Seq { seq },
            reference_version,
            households,
            next: 0,
        });
    }
    if phones.is_empty() {
        bail!("the demo has no grid workers with one grid");
    }
    let visits: usize = phones.iter().flat_map(|p| &p.households).map(|(_, _, f)| f.visits.len()).sum();
    let docs: usize = phones.iter().map(|p| p.households.len()).sum();
    println!(
        "small demo: {} grid workers' phones, {docs} households, {:.1} visits per household on average",
        phones.len(),
        visits as f64 / docs as f64
    );
    println!("| changes per sync | syncs | CPU per sync p50 | mean | CPU per change |");
    println!("|---|---|---|---|---|");
    let mut per_change_of_one = 0.0;
    for (per_sync, syncs) in [(1, syncs_of_one), (50, syncs_of_fifty)] {
        let mut times = Vec::new();
        for i in 0..syncs {
            let count = phones.len();
            let phone = &mut phones[i % count];
            let now = now_millis();
            let changes = phone.visits(per_sync, now)?;
            let request = SyncRequest {
                protocol: PROTOCOL_VERSION,
                cursors: BTreeMap::from([(phone.scope, phone.cursor)]),
                changes,
                page_bytes: None,
                repair: Vec::new(),
                reference_version: phone.reference_version,
                device_time: now,
                health: None,
                verify: Vec::new(),
                compact_acks: false,
            };
            let started = thread_cpu();
            let response = store.sync(phone.device, &request, &PushLimits::default(), now)?;
            times.push(thread_cpu() - started);
            if let Some(refused) = response.acks.iter().find(|a| !matches!(a.status, AckStatus::Accepted)) {
                bail!("the store did not accept a prepared visit: {:?}", refused.status);
            }
            if let Some(cursor) = response.cursors.get(&phone.scope) {
                phone.cursor = *cursor;
            }
        }
        let mean = times.iter().sum::<Duration>().as_secs_f64() / times.len() as f64;
        times.sort();
        let per_change = mean / per_sync as f64;
        if per_sync == 1 {
            per_change_of_one = per_change;
        }
        println!(
            "| {per_sync} | {syncs} | {:.2} ms | {:.2} ms | {:.3} ms ({:.2}x one-change syncs) |",
            times[times.len() / 2].as_secs_f64() * 1e3,
            mean * 1e3,
            per_change * 1e3,
            per_change / per_change_of_one
        );
    }
    Ok(())
}
