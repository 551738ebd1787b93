//! Street-scale benchmarks (DESIGN.md §8): sync bytes and round trips, server throughput and
//! phone-side latencies, on the `street` demo (86 grids, 471 buildings, 25,000 households,
//! ~15,000 cases). Not timed tests: nothing here asserts a speed; it prints figures, and
//! ratios against a baseline measured in the same process.
//!
//! Run: `cargo bench -p gridlink-tests --bench street` (about a few minutes on 2 cores);
//! `GRIDLINK_BENCH_SIZE=small cargo bench -p gridlink-tests --bench street` (or the argument
//! `small`) runs the one-community demo in seconds. `GRIDLINK_BENCH_ONLY=first-sync` stops
//! after the first syncs (section 2); `GRIDLINK_BENCH_ONLY=latencies` runs sections 1, 2 and
//! 5 (the phone-side latencies on the stores the first syncs left) and stops.
//!
//! Set-up: a real `gridlink-sync-server` (SQLite in a tempdir) served on 127.0.0.1:0 inside
//! this process, and real `gridlink-client` stores (SQLCipher files in tempdirs) talking to
//! it over HTTP through a tiny counting TCP proxy, also on 127.0.0.1, which counts the bytes
//! on the wire each way (HTTP headers and gzip included) and the HTTP requests.
//!
//! Baseline: automerge's own per-document sync protocol (`automerge::sync`) run in memory
//! between a phone copy and the server copy of every document in the same scope, counting
//! messages, round trips and encoded bytes. It is given every advantage: no HTTP, no headers,
//! no document discovery (it is told which documents exist), and all documents' messages of a
//! round batched into one round trip.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use gridlink_client::{CaseAction, CaseFilter, Client, HouseholdFilter, NewCase, NewVisit, Page};
use gridlink_shared::automerge::sync::{Message, State, SyncDoc};
use gridlink_shared::automerge::{ActorId, AutoCommit};
use gridlink_shared::demo::DemoSize;
use gridlink_shared::protocol::{AckStatus, Cursor, PROTOCOL_VERSION, PushChange, SyncRequest};
use gridlink_shared::time::{Millis, now_millis};
use gridlink_shared::{
    ActionKind, CaseKind, CaseStatus, DocId, HouseholdFile, HouseholdId, MustArriveKind, Role, Scope, ServiceCategory,
    UserId, Visit, VisitId, VisitOutcome, doc,
};
use gridlink_sync_server::store::UserRow;
use gridlink_sync_server::{AppState, PushLimits, SqliteStore, Store, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SEED: u64 = 20_261_128;
/// Offline visits recorded before one incremental sync.
const INCREMENTAL_VISITS: [usize; 3] = [1, 50, 500];
/// Concurrent grid workers in the throughput run, and record_visit + sync cycles each.
const THROUGHPUT_WORKERS: usize = 8;
const THROUGHPUT_CYCLES: usize = 25;
/// Repetitions per phone-side operation (after the cold call).
const LATENCY_REPEATS: usize = 60;
/// The street supervisor's first sync is skipped past this wall time (the rest still runs).
const STREET_SUPERVISOR_BUDGET: Duration = Duration::from_secs(240);
const LATENCY_COLUMNS: &[&str] = &["phone operation", "store", "cold", "p50", "p99", "max", "n", "result"];
const LATENCY_TITLE: &str = "5. Phone-side latencies (SQLCipher store, release build)";
const LATENCY_NOTE: &str =
    "cold: the first call on a freshly opened store; p50/p99/max over the repeated calls after it.
pages: the first 100 rows in list order and the total the filter matches (\"100 of 25000\"); the
\"every row\" reads are what the CLI and exports read, the baseline for the pages.";
/// Above this many documents, the baseline is run on an even sample and scaled up.
const BASELINE_FULL_LIMIT: usize = 6_000;

fn main() -> Result<()> {
    let size = bench_size()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(size))
}

/// `street` unless `GRIDLINK_BENCH_SIZE` or a bare argument says `small` (cargo passes
/// `--bench` and filters; flags are ignored).
fn bench_size() -> Result<DemoSize> {
    let from_args = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let chosen = std::env::var("GRIDLINK_BENCH_SIZE").ok().or(from_args).unwrap_or_else(|| "street".into());
    chosen.parse().map_err(|e: String| anyhow!(e))
}

fn progress(message: impl AsRef<str>) {
    eprintln!("[bench {:>7.1}s] {}", started_at().elapsed().as_secs_f64(), message.as_ref());
}

fn started_at() -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *START.get_or_init(Instant::now)
}

async fn run(size: DemoSize) -> Result<()> {
    started_at();
    let now = now_millis();
    let size_name = if size == DemoSize::Street { "street" } else { "small" };
    println!("# Gridlink benchmarks, demo size `{size_name}` (seed {SEED})");
    println!(
        "machine: {} logical cores; server, proxy and clients share them in one process",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );

    // ----- 1. server load -------------------------------------------------------------------
    progress("loading the demo into a fresh server store");
    let server_dir = tempfile::tempdir()?;
    let admin = SqliteStore::create(server_dir.path())?;
    let started = Instant::now();
    let summary = admin.load_demo(size, SEED, now)?;
    let load_time = started.elapsed();
    admin.read(|conn| Ok(conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?))?;
    let server_bytes = dir_size(server_dir.path());
    let mut t = Table::new(&["server load_demo", "value"]);
    t.row([
        "communities / grids / buildings".into(),
        format!("{} / {} / {}", summary.communities, summary.grids, summary.buildings),
    ]);
    t.row([
        "households / cases / staff".into(),
        format!("{} / {} / {}", summary.households, summary.cases, summary.staff),
    ]);
    t.row(["log entries (change x scope)".into(), summary.log_entries.to_string()]);
    t.row(["generate (typed values)".into(), ms(Duration::from_millis(summary.generate_ms as u64))]);
    t.row(["store (automerge + SQLite, one tx)".into(), ms(Duration::from_millis(summary.store_ms as u64))]);
    t.row(["load_demo total".into(), ms(load_time)]);
    t.row(["database size (after checkpoint)".into(), mib(server_bytes)]);
    t.print("1. Server: load the demo");

    // ----- server + counting proxy ----------------------------------------------------------
    let served = SqliteStore::open(server_dir.path())?;
    let server_listener = TcpListener::bind("127.0.0.1:0").await?;
    let server_addr = server_listener.local_addr()?;
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(server_listener, AppState::new(served), async {
        let _ = stopped.await;
    }));
    let wire = Arc::new(Wire::default());
    let proxy_listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", proxy_listener.local_addr()?);
    let proxy = tokio::spawn(run_proxy(proxy_listener, server_addr, wire.clone()));

    let users = admin.list_users()?;
    let grid_workers: Vec<&UserRow> = users
        .iter()
        .filter(|u| u.role == Role::GridWorker && u.scopes.len() == 1 && matches!(u.scopes[0], Scope::Grid(_)))
        .collect();
    let community_supervisor = users
        .iter()
        .find(|u| u.role == Role::Supervisor && u.scopes.iter().any(|s| matches!(s, Scope::Community(_))))
        .context("the demo has a community supervisor")?;
    let street_supervisor = users
        .iter()
        .find(|u| u.role == Role::Supervisor && u.scopes.iter().any(|s| matches!(s, Scope::Street(_))))
        .context("the demo has a street supervisor")?;
    let worker = *grid_workers.first().context("the demo has grid workers")?;

    // ----- 2. first sync --------------------------------------------------------------------
    let phones_dir = tempfile::tempdir()?;
    let mut first = Table::new(&[
        "first sync",
        "docs",
        "HTTP req",
        "rounds",
        "up",
        "down",
        "wall (waiting / applying)",
        "local DB",
        "baseline msgs",
        "baseline RT batched / per doc",
        "baseline bytes (gz)",
        "RT ratio",
        "bytes ratio",
    ]);
    let mut first_notes = Vec::new();

    progress(format!("first sync: grid worker {}", worker.name));
    let (worker_client, worker_first) =
        first_sync(&admin, &wire, &url, worker, phones_dir.path().join("worker"), now, None).await?;
    progress("baseline: automerge sync of the grid worker's documents");
    let mut worker_pairs = Pairs::default();
    let worker_base = baseline_first_sync(&admin, &worker.scopes, Some(&mut worker_pairs))?;
    first.row(first_row("grid worker (1 grid)", &worker_first, &worker_base));

    progress(format!("first sync: community supervisor {}", community_supervisor.name));
    let (supervisor_client, supervisor_first) =
        first_sync(&admin, &wire, &url, community_supervisor, phones_dir.path().join("community"), now, None).await?;
    progress("baseline: automerge sync of the community's documents");
    let supervisor_base = baseline_first_sync(&admin, &community_supervisor.scopes, None)?;
    first.row(first_row("community supervisor", &supervisor_first, &supervisor_base));

    progress(format!(
        "first sync: street supervisor {} (budget {:?})",
        street_supervisor.name, STREET_SUPERVISOR_BUDGET
    ));
    let street = first_sync(
        &admin,
        &wire,
        &url,
        street_supervisor,
        phones_dir.path().join("street"),
        now,
        Some(STREET_SUPERVISOR_BUDGET),
    )
    .await;
    let mut street_dir = None;
    match street {
        Ok((client, figures)) => {
            progress("baseline: automerge sync of the whole street's documents");
            let base = baseline_first_sync(&admin, &street_supervisor.scopes, None)?;
            first.row(first_row("street supervisor", &figures, &base));
            if base.sampled_every > 1 {
                first_notes.push(format!(
                    "street supervisor baseline: every {}th document synced, totals scaled up",
                    base.sampled_every
                ));
            }
            street_dir = Some(client.dir().to_path_buf());
        }
        Err(e) => first_notes.push(format!("street supervisor: {e:#}")),
    }
    first.print("2. First sync of a new device (gridlink: one HTTP request per round, gzip, snapshots)");
    println!("up/down: bytes on the wire at the proxy (HTTP headers + gzip bodies); baseline bytes: encoded");
    println!("automerge sync messages, raw and (gz) gzipped as one stream per direction, no HTTP.");
    println!("baseline RT batched: rounds if every document's messages of a round shared one request (no");
    println!("page limit; the most favourable reading); per doc: round trips if each document syncs in its own");
    println!("request/response exchanges. RT ratio: gridlink requests / batched rounds; bytes ratio: wire / gz.");
    for note in &first_notes {
        println!("note: {note}");
    }
    if std::env::var("GRIDLINK_BENCH_ONLY").as_deref() == Ok("first-sync") {
        // Only the first syncs (tuning the page size or the apply path).
        let _ = stop_server.send(());
        server.await??;
        proxy.abort();
        return Ok(());
    }

    let only_latencies = std::env::var("GRIDLINK_BENCH_ONLY").as_deref() == Ok("latencies");
    if only_latencies {
        // Sections 1, 2 and 5 (the phone-side reads on the stores the first syncs left).
        progress("phone-side latencies only (GRIDLINK_BENCH_ONLY=latencies)");
        let mut latencies = Table::new(LATENCY_COLUMNS);
        let (worker_dir, supervisor_dir) = (worker_client.dir().to_path_buf(), supervisor_client.dir().to_path_buf());
        drop((worker_client, supervisor_client));
        phone_latencies(&mut latencies, "grid worker", &worker_dir, true, LATENCY_REPEATS)?;
        phone_latencies(&mut latencies, "community supervisor", &supervisor_dir, false, LATENCY_REPEATS)?;
        if let Some(dir) = &street_dir {
            progress("phone-side latencies: street supervisor");
            phone_latencies(&mut latencies, "street supervisor", dir, false, LATENCY_REPEATS / 3)?;
        }
        latencies.print(LATENCY_TITLE);
        println!("{LATENCY_NOTE}");
        let _ = stop_server.send(());
        server.await??;
        proxy.abort();
        return Ok(());
    }

    // ----- 3. incremental sync --------------------------------------------------------------
    let mut incremental = Table::new(&[
        "offline visits, then one sync",
        "HTTP req",
        "rounds",
        "accepted",
        "pulled back",
        "up",
        "down",
        "wall",
        "baseline msgs",
        "baseline RT batched / per doc",
        "baseline bytes (gz)",
        "changed-docs-only baseline (gz)",
        "RT ratio",
        "bytes ratio",
    ]);
    let worker_households = worker_client.households(&HouseholdFilter::default(), now)?;
    let worker_identity = worker_client.identity()?;
    if worker_households.is_empty() {
        bail!("the grid worker holds no households after the first sync");
    }
    let section_start = wire.snapshot();
    for visits in INCREMENTAL_VISITS {
        progress(format!("incremental: {visits} offline visits, then one sync"));
        let now = now_millis();
        let mut touched = BTreeSet::new();
        for i in 0..visits {
            let household = &worker_households[i % worker_households.len()];
            touched.insert(DocId::from(household.id));
            worker_client.record_visit(visit_input(household.id, i, now), now)?;
        }
        let before = wire.snapshot();
        let started = Instant::now();
        let report = worker_client.sync().await?;
        let wall = started.elapsed();
        let used = wire.snapshot().since(&before);
        progress("baseline: the same visits on automerge phone copies, then per-document sync");
        let base = worker_pairs.incremental(visits, &worker_households, worker_identity.user, &touched, now)?;
        incremental.row([
            format!("{visits} visit(s) on {} household(s)", touched.len()),
            used.requests.to_string(),
            report.rounds.to_string(),
            report.accepted.to_string(),
            report.pulled_changes.to_string(),
            kib(used.up),
            kib(used.down),
            ms(wall),
            base.all.messages.to_string(),
            format!("{} / {}", base.all.rounds, base.all.exchanges),
            format!("{} ({})", kib(base.all.bytes()), kib(base.all.gz_bytes())),
            format!("{} msgs, {}", base.touched.messages, kib(base.touched.gz_bytes())),
            ratio(used.requests as f64, base.all.rounds as f64),
            ratio((used.up + used.down) as f64, base.all.gz_bytes() as f64),
        ]);
    }
    incremental.print("3. Incremental sync of a grid worker");
    println!("baseline: automerge sync of every document the worker holds (the phone cannot know which");
    println!("changed on the server without asking per document), with sync states persisted from the");
    println!("previous session; changed-docs-only: the same protocol if an oracle named the changed documents.");
    println!("pulled back: logged changes in the reply (the device's own pushes return through its grid's log).");
    let section = wire.snapshot().since(&section_start);
    println!(
        "replies with content-encoding: gzip in this section: {} of {} (seen at the proxy)",
        section.gzip_responses, section.responses
    );

    // ----- 5. phone-side latencies ----------------------------------------------------------
    // Before the throughput run, so the stores are as the first sync left them.
    progress("phone-side latencies: grid worker");
    let mut latencies = Table::new(LATENCY_COLUMNS);
    let worker_dir = worker_client.dir().to_path_buf();
    drop(worker_client);
    phone_latencies(&mut latencies, "grid worker", &worker_dir, true, LATENCY_REPEATS)?;
    progress("phone-side latencies: community supervisor");
    let supervisor_dir = supervisor_client.dir().to_path_buf();
    drop(supervisor_client);
    phone_latencies(&mut latencies, "community supervisor", &supervisor_dir, false, LATENCY_REPEATS)?;
    if let Some(dir) = &street_dir {
        progress("phone-side latencies: street supervisor");
        phone_latencies(&mut latencies, "street supervisor", dir, false, LATENCY_REPEATS / 3)?;
    }

    // ----- 4. server throughput -------------------------------------------------------------
    let workers: Vec<&UserRow> = grid_workers.iter().skip(1).take(THROUGHPUT_WORKERS).copied().collect();
    progress(format!("throughput: enrolling and first-syncing {} grid workers", workers.len()));
    let mut clients = Vec::new();
    for (i, user) in workers.iter().enumerate() {
        let (client, _) =
            first_sync(&admin, &wire, &url, user, phones_dir.path().join(format!("tp{i}")), now, None).await?;
        let households = client.households(&HouseholdFilter::default(), now)?;
        clients.push((client, households));
    }
    progress(format!("throughput: {} workers x {THROUGHPUT_CYCLES} (record_visit + sync)", clients.len()));
    let before = wire.snapshot();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (client, households) in clients {
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut accepted = 0;
            for cycle in 0..THROUGHPUT_CYCLES {
                let now = now_millis();
                let household = &households[cycle % households.len()];
                client.record_visit(visit_input(household.id, cycle, now), now)?;
                let started = Instant::now();
                let report = client.sync().await?;
                latencies.push(started.elapsed());
                accepted += report.accepted;
            }
            anyhow::Ok((latencies, accepted))
        }));
    }
    let mut sync_latencies = Vec::new();
    let mut accepted = 0;
    for task in tasks {
        let (latencies, n) = task.await??;
        sync_latencies.extend(latencies);
        accepted += n;
    }
    let elapsed = started.elapsed();
    let used = wire.snapshot().since(&before);
    let stats = Stats::of(&mut sync_latencies);
    let mut t = Table::new(&["throughput", "value"]);
    t.row(["concurrent grid workers (tokio tasks)".into(), workers.len().to_string()]);
    t.row(["cycles each (record_visit + sync)".into(), THROUGHPUT_CYCLES.to_string()]);
    t.row(["wall time".into(), ms(elapsed)]);
    t.row(["syncs / s".into(), format!("{:.1}", sync_latencies.len() as f64 / elapsed.as_secs_f64())]);
    t.row(["changes accepted / s".into(), format!("{:.1}", accepted as f64 / elapsed.as_secs_f64())]);
    t.row(["HTTP requests".into(), used.requests.to_string()]);
    t.row([
        "sync latency p50 / p99 / max".into(),
        format!("{} / {} / {}", ms(stats.p50), ms(stats.p99), ms(stats.max)),
    ]);
    t.row([
        "bytes up / down per sync".into(),
        format!(
            "{} / {}",
            bytes((used.up as f64 / sync_latencies.len() as f64) as u64),
            bytes((used.down as f64 / sync_latencies.len() as f64) as u64)
        ),
    ]);
    t.print("4. Server throughput (clients, proxy and server share the same cores)");

    progress("throughput: the server store alone (no HTTP, no clients)");
    let direct = Arc::new(SqliteStore::open(server_dir.path())?);
    let devices: Vec<_> = admin
        .list_devices()?
        .into_iter()
        .filter(|d| d.revoked_at.is_none() && workers.iter().any(|w| w.id == d.user))
        .collect();
    let mut t =
        Table::new(&["server store alone", "syncs", "changes", "wall", "syncs / s", "changes / s", "p50", "p99"]);
    for (per_request, syncs) in STORE_BATCHES {
        let mut pushers = Vec::new();
        for device in &devices {
            let user = workers.iter().find(|w| w.id == device.user).context("device of a worker")?;
            pushers.push(StorePusher::new(&admin, device.id, &device.actor, user, per_request, syncs, now)?);
        }
        let started = Instant::now();
        let results: Vec<Result<(Vec<Duration>, usize)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = pushers
                .into_iter()
                .map(|pusher| {
                    let store = direct.clone();
                    scope.spawn(move || pusher.run(store.as_ref()))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("pusher panicked")))).collect()
        });
        let wall = started.elapsed();
        let (mut times, mut accepted) = (Vec::new(), 0);
        for result in results {
            let (t, n) = result?;
            times.extend(t);
            accepted += n;
        }
        let stats = Stats::of(&mut times);
        t.row([
            format!("{} threads, {per_request} change(s) per sync", devices.len()),
            times.len().to_string(),
            accepted.to_string(),
            ms(wall),
            format!("{:.1}", times.len() as f64 / wall.as_secs_f64()),
            format!("{:.1}", accepted as f64 / wall.as_secs_f64()),
            ms(stats.p50),
            ms(stats.p99),
        ]);
    }
    t.print("4b. Server store alone: Store::sync from threads sharing one SqliteStore, as the HTTP handlers do");
    println!("Each sync pushes visits signed with the device's actor (validated, stored, logged) and pulls");
    println!("the page after the device's cursor; SQLite in WAL mode, synchronous=FULL.");

    latencies.print(LATENCY_TITLE);
    println!("{LATENCY_NOTE}");

    let _ = stop_server.send(());
    server.await??;
    proxy.abort();
    progress("done");
    Ok(())
}

// ----- the server store alone ----------------------------------------------------------------

/// Changes per request, and syncs per thread, in the store-only throughput run.
const STORE_BATCHES: [(usize, usize); 2] = [(1, 40), (50, 4)];

/// One enrolled device pushing prepared visits straight into [`Store::sync`].
struct StorePusher {
    device: gridlink_shared::DeviceId,
    scope: Scope,
    cursor: Cursor,
    reference_version: Option<u64>,
    batches: Vec<Vec<PushChange>>,
}

impl StorePusher {
    /// Prepares `syncs` batches of `per_request` visits on the households of the
    /// user's grid, signed with the device's actor, each change building on the last.
    fn new(
        admin: &SqliteStore,
        device: gridlink_shared::DeviceId,
        actor: &str,
        user: &UserRow,
        per_request: usize,
        syncs: usize,
        now: Millis,
    ) -> Result<StorePusher> {
        let scope = *user.scopes.first().context("worker has a scope")?;
        let actor = ActorId::from(hex_decode(actor)?);
        let (seq, reference_version, docs) = admin.read(|conn| {
            // The roster version the device holds, so replies do not carry the roster again.
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
        if docs.is_empty() {
            bail!("grid {scope} holds no households");
        }
        let mut loaded: BTreeMap<usize, (DocId, AutoCommit)> = BTreeMap::new();
        let mut batches = Vec::new();
        let mut n = 0;
        for _ in 0..syncs {
            let mut batch = Vec::new();
            for _ in 0..per_request {
                let slot = n % docs.len();
                if let std::collections::btree_map::Entry::Vacant(e) = loaded.entry(slot) {
                    let (id, bytes) = &docs[slot];
                    let mut automerge_doc = doc::load(bytes)?;
                    automerge_doc.set_actor(actor.clone());
                    e.insert((id.parse().map_err(|e| anyhow!("document id {id}: {e}"))?, automerge_doc));
                }
                let (id, automerge_doc) = loaded.get_mut(&slot).expect("inserted above");
                let mut file: HouseholdFile = doc::read(&*automerge_doc)?;
                let input = visit_input(file.id, n, now);
                let visit_id = VisitId::new();
                file.visits.insert(
                    visit_id,
                    Visit {
                        id: visit_id,
                        visitor: user.id,
                        visitor_name: user.name.clone(),
                        at: input.at,
                        recorded_at: now,
                        outcome: input.outcome,
                        notes: input.notes,
                        needs_found: input.needs_found,
                        follow_up: input.follow_up,
                        residents_present: input.residents_present,
                    },
                );
                doc::update(automerge_doc, &file, "visit", now)?;
                let change = automerge_doc.get_last_local_change().context("a visit makes a change")?;
                batch.push(PushChange { doc: *id, bytes: change.raw_bytes().to_vec() });
                n += 1;
            }
            batches.push(batch);
        }
        Ok(StorePusher { device, scope, cursor: Cursor::Seq { seq }, reference_version, batches })
    }

    /// Runs every batch as one sync; returns the latencies and the changes accepted.
    fn run(mut self, store: &dyn Store) -> Result<(Vec<Duration>, usize)> {
        let mut times = Vec::new();
        let mut accepted = 0;
        for changes in std::mem::take(&mut self.batches) {
            let request = SyncRequest {
                protocol: PROTOCOL_VERSION,
                cursors: BTreeMap::from([(self.scope, self.cursor)]),
                changes,
                page_bytes: None,
                repair: Vec::new(),
                reference_version: self.reference_version,
                device_time: now_millis(),
                health: None,
                verify: Vec::new(),
                compact_acks: false,
            };
            let started = Instant::now();
            let response = store.sync(self.device, &request, &PushLimits::default(), now_millis())?;
            times.push(started.elapsed());
            accepted += response.acks.iter().filter(|a| matches!(a.status, AckStatus::Accepted)).count();
            if let Some(rejected) = response.acks.iter().find(|a| matches!(a.status, AckStatus::Rejected { .. })) {
                bail!("the store refused a prepared visit: {:?}", rejected.status);
            }
            if let Some(cursor) = response.cursors.get(&self.scope) {
                self.cursor = *cursor;
            }
        }
        Ok((times, accepted))
    }
}

fn hex_decode(hex: &str) -> Result<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        bail!("actor id {hex} is not hex");
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| anyhow!("actor id {hex}: {e}")))
        .collect()
}

// ----- first sync ------------------------------------------------------------------------------

struct FirstSync {
    docs: usize,
    requests: u64,
    rounds: usize,
    up: u64,
    down: u64,
    wall: Duration,
    /// Of the wall time: waiting for answers (network and server), and applying them.
    exchange: Duration,
    apply: Duration,
    local_bytes: u64,
}

/// Enrols a new device for `user` through the proxy and runs its first sync.
async fn first_sync(
    admin: &SqliteStore,
    wire: &Wire,
    url: &str,
    user: &UserRow,
    dir: PathBuf,
    now: Millis,
    budget: Option<Duration>,
) -> Result<(Client, FirstSync)> {
    let code = admin.new_code(user.id, now_millis(), 72)?;
    let client = Client::open(&dir)?;
    client.enroll(url, &code, &format!("{}的手机", user.name)).await?;
    let before = wire.snapshot();
    let started = Instant::now();
    let report = match budget {
        Some(budget) => match tokio::time::timeout(budget, client.sync()).await {
            Ok(report) => report?,
            Err(_) => {
                let used = wire.snapshot().since(&before);
                bail!(
                    "first sync stopped after {budget:?} ({} requests, {} down so far); not counted",
                    used.requests,
                    kib(used.down)
                )
            }
        },
        None => client.sync().await?,
    };
    let wall = started.elapsed();
    let used = wire.snapshot().since(&before);
    let docs = client.households(&HouseholdFilter::default(), now)?.len() + client.cases(CaseFilter::All, now)?.len();
    Ok((
        client,
        FirstSync {
            docs,
            requests: used.requests,
            rounds: report.rounds,
            up: used.up,
            down: used.down,
            wall,
            exchange: Duration::from_millis(report.exchange_ms),
            apply: Duration::from_millis(report.apply_ms),
            local_bytes: dir_size(&dir),
        },
    ))
}

fn first_row(who: &str, ours: &FirstSync, base: &BaselineFirst) -> [String; 13] {
    [
        who.to_string(),
        ours.docs.to_string(),
        ours.requests.to_string(),
        ours.rounds.to_string(),
        mib(ours.up),
        mib(ours.down),
        format!("{} ({} / {})", ms(ours.wall), ms(ours.exchange), ms(ours.apply)),
        mib(ours.local_bytes),
        base.tally.messages.to_string(),
        format!("{} / {}", base.tally.rounds, base.tally.exchanges),
        format!("{} ({})", mib(base.tally.bytes()), mib(base.tally.gz_bytes())),
        ratio(ours.requests as f64, base.tally.rounds as f64),
        ratio((ours.up + ours.down) as f64, base.tally.gz_bytes() as f64),
    ]
}

// ----- baseline: automerge's per-document sync protocol ---------------------------------------

/// Messages, bytes and rounds of a batch of per-document syncs.
struct Tally {
    messages: u64,
    up: u64,
    down: u64,
    /// Rounds when every document's messages of a round share one request.
    rounds: u64,
    /// Round trips when each document syncs over its own request/response exchanges.
    exchanges: u64,
    gz_up: GzEncoder<Counter>,
    gz_down: GzEncoder<Counter>,
    docs: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            messages: 0,
            up: 0,
            down: 0,
            rounds: 0,
            exchanges: 0,
            gz_up: GzEncoder::new(Counter(0), Compression::default()),
            gz_down: GzEncoder::new(Counter(0), Compression::default()),
            docs: 0,
        }
    }
}

impl Tally {
    fn bytes(&self) -> u64 {
        self.up + self.down
    }

    /// Gzipped size; exact after [`Tally::finish`].
    fn gz_bytes(&self) -> u64 {
        self.gz_up.get_ref().0 + self.gz_down.get_ref().0
    }

    fn finish(&mut self) {
        let _ = self.gz_up.try_finish();
        let _ = self.gz_down.try_finish();
    }

    fn scaled(&mut self, factor: u64) {
        self.messages *= factor;
        self.exchanges *= factor;
        self.up *= factor;
        self.down *= factor;
        self.docs *= factor;
        self.gz_up.get_mut().0 *= factor;
        self.gz_down.get_mut().0 *= factor;
    }
}

/// A writer that only counts.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends one message over the imaginary wire: encode, count, decode.
fn transmit(message: Message, bytes: &mut u64, gz: &mut GzEncoder<Counter>) -> Result<Message> {
    let encoded = message.encode();
    *bytes += encoded.len() as u64;
    gz.write_all(&encoded)?;
    Message::decode(&encoded).map_err(|e| anyhow!("sync message does not decode: {e}"))
}

/// Runs automerge's sync protocol for one document until both sides are quiet: the phone
/// speaks, the server answers, and so on. Returns the round trips it took.
fn sync_one_document(
    phone: &mut AutoCommit,
    server: &mut AutoCommit,
    phone_state: &mut State,
    server_state: &mut State,
    tally: &mut Tally,
) -> Result<u64> {
    let mut rounds = 0;
    loop {
        let up = phone.sync().generate_sync_message(phone_state);
        let sent_up = up.is_some();
        if let Some(message) = up {
            let message = transmit(message, &mut tally.up, &mut tally.gz_up)?;
            server.sync().receive_sync_message(server_state, message)?;
            tally.messages += 1;
        }
        let down = server.sync().generate_sync_message(server_state);
        let sent_down = down.is_some();
        if let Some(message) = down {
            let message = transmit(message, &mut tally.down, &mut tally.gz_down)?;
            phone.sync().receive_sync_message(phone_state, message)?;
            tally.messages += 1;
        }
        if !sent_up && !sent_down {
            return Ok(rounds);
        }
        rounds += 1;
        if rounds > 100 {
            bail!("automerge sync did not settle in 100 rounds");
        }
    }
}

struct BaselineFirst {
    tally: Tally,
    sampled_every: usize,
}

/// The documents of `scopes` on the server, in id order, streamed to `each`.
fn server_documents(
    admin: &SqliteStore,
    scopes: &[Scope],
    mut each: impl FnMut(DocId, &[u8]) -> Result<()>,
) -> Result<usize> {
    let mut ids: BTreeSet<String> = BTreeSet::new();
    admin.read(|conn| {
        let mut stmt = conn.prepare("SELECT doc_id FROM doc_scopes WHERE scope = ?1")?;
        for scope in scopes {
            for id in stmt.query_map([scope.to_string()], |r| r.get::<_, String>(0))? {
                ids.insert(id?);
            }
        }
        Ok(())
    })?;
    let total = ids.len();
    let sample = total.div_ceil(BASELINE_FULL_LIMIT).max(1);
    let mut failure = None;
    admin.read(|conn| {
        let mut stmt = conn.prepare("SELECT bytes FROM docs WHERE id = ?1")?;
        for id in ids.iter().step_by(sample) {
            let bytes: Vec<u8> = stmt.query_row([id], |r| r.get(0))?;
            let doc_id: DocId = match id.parse() {
                Ok(d) => d,
                Err(e) => {
                    failure = Some(anyhow!("document id {id}: {e}"));
                    break;
                }
            };
            if let Err(e) = each(doc_id, &bytes) {
                failure = Some(e);
                break;
            }
        }
        Ok(())
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(sample),
    }
}

/// A new phone syncs every document of `scopes` with the server copy, fresh sync states.
/// With `keep`, the phone copies, server copies and persisted states are kept for the
/// incremental baseline.
fn baseline_first_sync(admin: &SqliteStore, scopes: &[Scope], mut keep: Option<&mut Pairs>) -> Result<BaselineFirst> {
    let mut tally = Tally::default();
    let sampled_every = server_documents(admin, scopes, |id, bytes| {
        let mut server = doc::load(bytes)?;
        let mut phone = AutoCommit::new().with_actor(ActorId::random());
        let (mut phone_state, mut server_state) = (State::new(), State::new());
        let rounds = sync_one_document(&mut phone, &mut server, &mut phone_state, &mut server_state, &mut tally)?;
        tally.rounds = tally.rounds.max(rounds);
        tally.exchanges += rounds;
        tally.docs += 1;
        if phone.get_heads() != server.get_heads() {
            bail!("automerge sync left document {id} diverged");
        }
        if let Some(pairs) = keep.as_deref_mut() {
            pairs.docs.insert(
                id,
                Pair { phone, server, phone_state: phone_state.encode(), server_state: server_state.encode() },
            );
        }
        Ok(())
    })?;
    tally.finish();
    if sampled_every > 1 {
        tally.scaled(sampled_every as u64);
    }
    Ok(BaselineFirst { tally, sampled_every })
}

struct Pair {
    phone: AutoCommit,
    server: AutoCommit,
    /// `State::encode()` of each side after the last session (what a real peer persists).
    phone_state: Vec<u8>,
    server_state: Vec<u8>,
}

#[derive(Default)]
struct Pairs {
    docs: BTreeMap<DocId, Pair>,
}

struct BaselineIncremental {
    all: Tally,
    touched: Tally,
}

impl Pairs {
    /// Records the same visits on the phone copies (typed, as the app does), then runs one
    /// sync session over every document, resuming from the persisted states.
    fn incremental(
        &mut self,
        visits: usize,
        households: &[gridlink_client::HouseholdRow],
        visitor: UserId,
        touched: &BTreeSet<DocId>,
        now: Millis,
    ) -> Result<BaselineIncremental> {
        for i in 0..visits {
            let id = DocId::from(households[i % households.len()].id);
            let pair = self.docs.get_mut(&id).context("baseline holds every household of the grid")?;
            let mut file: HouseholdFile = doc::read(&pair.phone)?;
            let visit = visit_input(households[i % households.len()].id, i, now);
            let visit_id = VisitId::new();
            file.visits.insert(
                visit_id,
                Visit {
                    id: visit_id,
                    visitor,
                    visitor_name: "网格员".into(),
                    at: visit.at,
                    recorded_at: now,
                    outcome: visit.outcome,
                    notes: visit.notes,
                    needs_found: visit.needs_found,
                    follow_up: visit.follow_up,
                    residents_present: visit.residents_present,
                },
            );
            doc::update(&mut pair.phone, &file, "visit", now)?;
        }
        let (mut all, mut changed) = (Tally::default(), Tally::default());
        for (id, pair) in &mut self.docs {
            let mut phone_state = State::decode(&pair.phone_state)?;
            let mut server_state = State::decode(&pair.server_state)?;
            let tally = if touched.contains(id) { &mut changed } else { &mut all };
            let rounds =
                sync_one_document(&mut pair.phone, &mut pair.server, &mut phone_state, &mut server_state, tally)?;
            tally.rounds = tally.rounds.max(rounds);
            tally.exchanges += rounds;
            tally.docs += 1;
            pair.phone_state = phone_state.encode();
            pair.server_state = server_state.encode();
        }
        all.finish();
        changed.finish();
        // "all" covers every document: add the changed ones to it.
        let touched_tally = Tally {
            messages: changed.messages,
            up: changed.up,
            down: changed.down,
            rounds: changed.rounds,
            exchanges: changed.exchanges,
            gz_up: GzEncoder::new(Counter(changed.gz_up.get_ref().0), Compression::default()),
            gz_down: GzEncoder::new(Counter(changed.gz_down.get_ref().0), Compression::default()),
            docs: changed.docs,
        };
        all.messages += changed.messages;
        all.up += changed.up;
        all.down += changed.down;
        all.rounds = all.rounds.max(changed.rounds);
        all.exchanges += changed.exchanges;
        all.docs += changed.docs;
        all.gz_up.get_mut().0 += changed.gz_up.get_ref().0;
        all.gz_down.get_mut().0 += changed.gz_down.get_ref().0;
        Ok(BaselineIncremental { all, touched: touched_tally })
    }
}

// ----- phone-side latencies --------------------------------------------------------------------

/// Times the screens' reads and the offline writes on the store in `dir`; the first call of
/// each on a freshly opened store is reported as cold.
fn phone_latencies(table: &mut Table, who: &str, dir: &Path, writes: bool, repeats: usize) -> Result<()> {
    let now = now_millis();
    let probe = Client::open(dir)?;
    let households = probe.households(&HouseholdFilter::default(), now)?;
    let cases = probe.cases(CaseFilter::All, now)?;
    drop(probe);
    let household = households.get(households.len() / 2).context("store holds households")?.clone();
    let name = household.head.clone();
    let open_case = cases
        .iter()
        .find(|c| !matches!(c.status, CaseStatus::Resolved | CaseStatus::Closed))
        .or(cases.first())
        .context("store holds cases")?
        .clone();

    let mut op = |label: &str, f: &mut dyn FnMut(&Client, usize) -> Result<String>| -> Result<()> {
        let client = Client::open(dir)?;
        let started = Instant::now();
        let first = f(&client, 0);
        let cold = started.elapsed();
        let result = match first {
            Ok(result) => result,
            Err(e) => {
                table.row([
                    label.into(),
                    who.into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "0".into(),
                    format!("refused: {e:#}"),
                ]);
                return Ok(());
            }
        };
        let mut times = Vec::new();
        for i in 1..=repeats {
            let started = Instant::now();
            f(&client, i)?;
            times.push(started.elapsed());
        }
        let stats = Stats::of(&mut times);
        table.row([
            label.into(),
            who.into(),
            ms(cold),
            ms(stats.p50),
            ms(stats.p99),
            ms(stats.max),
            times.len().to_string(),
            result,
        ]);
        Ok(())
    };

    op("today()", &mut |c, _| {
        let today = c.today(now)?;
        Ok(format!(
            "{} due, {} must-arrive, {} mine",
            today.due_visits.len(),
            today.must_arrive.len(),
            today.my_cases.len()
        ))
    })?;
    // The list screens read one page (the first 100 rows) and the total the filter matches.
    let page = Page::default();
    let paged = |filter: HouseholdFilter| {
        move |c: &Client, _: usize| -> Result<String> {
            let got = c.households_page(&filter, page, now)?;
            Ok(format!("{} of {}", got.rows.len(), got.total))
        }
    };
    op("households page (all)", &mut paged(HouseholdFilter::default()))?;
    op(&format!("households page (search \"{name}\")"), &mut paged(search(&name)))?;
    op("households page (search \"zs\")", &mut paged(search("zs")))?;
    op("households page (due only)", &mut paged(HouseholdFilter { due_only: true, ..Default::default() }))?;
    let tag = households.iter().find_map(|h| h.tags.first().copied());
    op("households page (tag)", &mut paged(HouseholdFilter { tag, ..Default::default() }))?;
    let building = Some(household.building_id);
    op("households page (building)", &mut paged(HouseholdFilter { building, ..Default::default() }))?;
    let last = Page { offset: households.len().saturating_sub(page.limit), limit: page.limit };
    op("households page (all, last page)", &mut |c, _| {
        let got = c.households_page(&HouseholdFilter::default(), last, now)?;
        Ok(format!("{} of {}", got.rows.len(), got.total))
    })?;
    // Every row, as the CLI and exports read them: the baseline for the pages above.
    op("households(all), every row", &mut |c, _| {
        Ok(format!("{} rows", c.households(&HouseholdFilter::default(), now)?.len()))
    })?;
    op("household(id) detail", &mut |c, _| {
        let detail = c.household(household.id, now)?;
        Ok(format!("{} residents, {} visits", detail.residents.len(), detail.visits.len()))
    })?;
    for (label, filter) in [
        ("cases page (mine)", CaseFilter::Mine),
        ("cases page (open)", CaseFilter::Open),
        ("cases page (overdue)", CaseFilter::Overdue),
        ("cases page (resolved, to verify)", CaseFilter::Resolved),
        ("cases page (all)", CaseFilter::All),
    ] {
        op(label, &mut |c, _| {
            let got = c.cases_page(filter, page, now)?;
            Ok(format!("{} of {}", got.rows.len(), got.total))
        })?;
    }
    op("cases(all), every row", &mut |c, _| Ok(format!("{} rows", c.cases(CaseFilter::All, now)?.len())))?;
    op("case(id) detail", &mut |c, _| Ok(format!("{} actions", c.case(open_case.id, now)?.timeline.len())))?;
    if writes {
        op("record_visit", &mut |c, i| {
            let now = now_millis();
            c.record_visit(visit_input(households[i % households.len()].id, i, now), now)?;
            Ok("ok".into())
        })?;
        op("open_case", &mut |c, i| {
            let now = now_millis();
            let kind = if i % 2 == 0 {
                CaseKind::Help(ServiceCategory::ElderlyCare)
            } else {
                CaseKind::MustArrive(MustArriveKind::Emergency)
            };
            c.open_case(
                NewCase {
                    kind,
                    household: Some(households[i % households.len()].id),
                    building: None,
                    title: "独居老人家中水管漏水，需上门协助".into(),
                    note: "住户来电，已告知物业".into(),
                    at: now,
                },
                now,
            )?;
            Ok("ok".into())
        })?;
    }
    op("act_on_case(comment)", &mut |c, i| {
        c.act_on_case(
            CaseAction {
                case: open_case.id,
                action: ActionKind::Comment,
                note: format!("第{i}次电话回访，住户表示满意"),
                satisfaction: None,
                to: None,
            },
            now_millis(),
        )?;
        Ok("ok".into())
    })?;
    Ok(())
}

fn search(text: &str) -> HouseholdFilter {
    HouseholdFilter { search: Some(text.into()), ..Default::default() }
}

fn visit_input(household: HouseholdId, i: usize, now: Millis) -> NewVisit {
    let outcomes = [VisitOutcome::Met, VisitOutcome::NotHome, VisitOutcome::Met];
    NewVisit {
        household,
        outcome: outcomes[i % outcomes.len()],
        notes: format!("入户走访第{i}次：老人身体状况良好，提醒注意用电安全"),
        needs_found: Vec::new(),
        follow_up: None,
        residents_present: Vec::new(),
        at: now - 60_000,
    }
}

// ----- counting proxy --------------------------------------------------------------------------

/// Totals seen by the proxy.
#[derive(Default)]
struct Wire {
    up: AtomicU64,
    down: AtomicU64,
    requests: AtomicU64,
    responses: AtomicU64,
    gzip_responses: AtomicU64,
}

#[derive(Clone, Copy, Default)]
struct WireSnapshot {
    up: u64,
    down: u64,
    requests: u64,
    responses: u64,
    gzip_responses: u64,
}

impl Wire {
    fn snapshot(&self) -> WireSnapshot {
        WireSnapshot {
            up: self.up.load(Ordering::SeqCst),
            down: self.down.load(Ordering::SeqCst),
            requests: self.requests.load(Ordering::SeqCst),
            responses: self.responses.load(Ordering::SeqCst),
            gzip_responses: self.gzip_responses.load(Ordering::SeqCst),
        }
    }
}

impl WireSnapshot {
    fn since(&self, before: &WireSnapshot) -> WireSnapshot {
        WireSnapshot {
            up: self.up - before.up,
            down: self.down - before.down,
            requests: self.requests - before.requests,
            responses: self.responses - before.responses,
            gzip_responses: self.gzip_responses - before.gzip_responses,
        }
    }
}

/// Forwards every connection to `upstream`, counting bytes each way and HTTP requests (by
/// their request line; bodies are gzip, so the text cannot appear in them by accident in
/// practice).
async fn run_proxy(listener: TcpListener, upstream: SocketAddr, wire: Arc<Wire>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else { continue };
        let wire = wire.clone();
        tokio::spawn(async move {
            let Ok(outbound) = TcpStream::connect(upstream).await else { return };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (mut from_client, mut to_client) = inbound.into_split();
            let (mut from_server, mut to_server) = outbound.into_split();
            let up = async {
                let mut buf = vec![0u8; 64 * 1024];
                let mut carry: Vec<u8> = Vec::new();
                while let Ok(n) = from_client.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    wire.up.fetch_add(n as u64, Ordering::SeqCst);
                    wire.requests.fetch_add(scan(&mut carry, &buf[..n], REQUEST_LINE), Ordering::SeqCst);
                    if to_server.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = to_server.shutdown().await;
            };
            let down = async {
                let mut buf = vec![0u8; 64 * 1024];
                let (mut status_carry, mut gzip_carry) = (Vec::new(), Vec::new());
                while let Ok(n) = from_server.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    wire.down.fetch_add(n as u64, Ordering::SeqCst);
                    wire.responses.fetch_add(scan(&mut status_carry, &buf[..n], STATUS_LINE), Ordering::SeqCst);
                    wire.gzip_responses.fetch_add(scan(&mut gzip_carry, &buf[..n], GZIP_HEADER), Ordering::SeqCst);
                    if to_client.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = to_client.shutdown().await;
            };
            tokio::join!(up, down);
        });
    }
}

const REQUEST_LINE: &[u8] = b"POST /v1/";
const STATUS_LINE: &[u8] = b"HTTP/1.1 ";
/// hyper writes header names in lower case.
const GZIP_HEADER: &[u8] = b"content-encoding: gzip";

/// Counts `pattern` in a stream read in chunks: `carry` keeps the tail of the previous chunk
/// (shorter than the pattern, so nothing is counted twice).
fn scan(carry: &mut Vec<u8>, chunk: &[u8], pattern: &[u8]) -> u64 {
    carry.extend_from_slice(chunk);
    let found = carry.windows(pattern.len()).filter(|w| *w == pattern).count() as u64;
    let keep = carry.len().min(pattern.len() - 1);
    carry.drain(..carry.len() - keep);
    found
}

// ----- figures ---------------------------------------------------------------------------------

struct Stats {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Stats {
    fn of(times: &mut [Duration]) -> Stats {
        times.sort();
        let at = |q: f64| {
            if times.is_empty() {
                Duration::ZERO
            } else {
                times[((q * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1]
            }
        };
        Stats { p50: at(0.5), p99: at(0.99), max: times.last().copied().unwrap_or_default() }
    }
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

fn bytes(n: u64) -> String {
    if n >= 1024 * 1024 {
        mib(n)
    } else if n >= 1024 {
        kib(n)
    } else {
        format!("{n} B")
    }
}

fn kib(n: u64) -> String {
    if n < 10 * 1024 { format!("{n} B") } else { format!("{:.1} KiB", n as f64 / 1024.0) }
}

fn mib(n: u64) -> String {
    if n < 1024 * 1024 { kib(n) } else { format!("{:.2} MiB", n as f64 / 1_048_576.0) }
}

fn ratio(ours: f64, baseline: f64) -> String {
    if baseline == 0.0 { "-".into() } else { format!("{:.3}x", ours / baseline) }
}

/// A Markdown table, columns padded for the terminal.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str]) -> Table {
        Table { header: header.iter().map(|s| s.to_string()).collect(), rows: Vec::new() }
    }

    fn row<const N: usize>(&mut self, cells: [String; N]) {
        let mut cells = cells.to_vec();
        cells.truncate(self.header.len());
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    fn print(&self, title: &str) {
        let width = |s: &str| s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum::<usize>();
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> =
                cells.iter().zip(&widths).map(|(c, w)| format!("{c}{}", " ".repeat(w - width(c)))).collect();
            format!("| {} |", padded.join(" | "))
        };
        println!("\n### {title}\n");
        println!("{}", line(&self.header));
        println!("|{}|", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|"));
        for row in &self.rows {
            println!("{}", line(row));
        }
        println!();
        let _ = std::io::stdout().flush();
    }
}
