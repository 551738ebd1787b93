//! Side by side with the real alternatives (issue #13): Gridlink, automerge-repo with its sync
//! server, and PouchDB replicating with a CouchDB-protocol server, in the same run, on the same
//! machine, on the same documents: one grid of the `street` demo (households and cases, about
//! 440 documents), exported as JSON from the Gridlink server's store; the same JSON seeds both
//! baselines. Not a test: nothing asserts a speed; it prints Markdown tables and writes them to
//! a file.
//!
//! Run through `scripts/bench-baselines.sh`, which installs the npm packages into
//! `target/bench-node/` and copies `bench/baselines/*.mjs` there first; then
//! `cargo bench -p gridlink-tests --bench baselines`. Settings:
//! `GRIDLINK_BASELINES_NODE_DIR` (default `target/bench-node`), `GRIDLINK_BASELINES_OUT`
//! (default `target/bench-node/baselines.md`).
//!
//! Each server is its own process, measured the same way: `gridlink-server serve --data DIR`
//! (the real binary, embedded SQLite), `node automerge-server.mjs` (automerge-repo's sync
//! server with its file storage) and `node pouchdb-server.mjs` (express-pouchdb over LevelDB).
//! A counting TCP proxy of this process sits on 127.0.0.1 in front of each: bytes each way on
//! the wire (HTTP headers, WebSocket frames and bodies), HTTP requests and responses. Server
//! CPU is utime + stime from `/proc/PID/stat` around each workload. Our devices are real
//! `gridlink-client` stores (SQLCipher files), enrolled with codes from the store; the
//! baselines' devices run in one `node device.mjs` process per system (automerge-repo
//! `Repo`s with file storage; PouchDB LevelDB databases), driven by commands on its stdin.
//!
//! Workloads: a new device's first sync of the grid; a day's incremental sync (30 visits and
//! 5 case comments made offline, then one sync), five days; 8 and 80 devices each doing
//! cycles of (one visit + sync) at once, after one warm-up cycle each; and the link profile:
//! a new device's first sync and one day through a proxy that delays and paces both
//! directions (mobile: 300 ms RTT, 1 Mbit/s; Wi-Fi: 20 ms, 20 Mbit/s), beside the floor (one
//! round trip plus the gzipped JSON at the link rate). Results: `docs/benchmarks.md`, "Side by
//! side: automerge-repo and PouchDB".

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use gridlink_client::{CaseAction, CaseFilter, CaseRow, Client, HouseholdFilter, NewVisit};
use gridlink_shared::demo::DemoSize;
use gridlink_shared::time::{Millis, now_millis};
use gridlink_shared::{ActionKind, CaseFile, HouseholdFile, HouseholdId, Role, Scope, VisitOutcome, doc};
use gridlink_sync_server::SqliteStore;
use gridlink_sync_server::store::UserRow;
use gridlink_tests::district::{clock_ticks_per_second, peak_rss, proc_stat};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SEED: u64 = 20_261_128;
/// Days of (30 visits + 5 case comments offline, then one sync).
const DAYS: usize = 5;
const DAY_VISITS: usize = 30;
const DAY_ACTIONS: usize = 5;
/// Concurrent devices and measured cycles of (one visit + sync) each.
const CONCURRENT: [(usize, usize); 2] = [(8, 25), (80, 5)];

fn progress(message: impl AsRef<str>) {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(Instant::now);
    eprintln!("[baselines {:>6.1}s] {}", start.elapsed().as_secs_f64(), message.as_ref());
}

fn main() -> Result<()> {
    let node_dir = std::env::var_os("GRIDLINK_BASELINES_NODE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/bench-node"));
    for needed in ["node_modules", "device.mjs", "automerge-server.mjs", "pouchdb-server.mjs"] {
        if !node_dir.join(needed).exists() {
            bail!(
                "{} is missing: run scripts/bench-baselines.sh (it installs the npm packages and copies bench/baselines/)",
                node_dir.join(needed).display()
            );
        }
    }
    let out =
        std::env::var_os("GRIDLINK_BASELINES_OUT").map(PathBuf::from).unwrap_or_else(|| node_dir.join("baselines.md"));
    // Our devices' work (SQLCipher, automerge) blocks their tasks now and then: they get threads
    // of their own, and the proxies a runtime of their own, so a busy device never holds up
    // the bytes of another system's or another device's sync.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(8).enable_all().build()?;
    let proxies = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let report = run(&runtime, &proxies, &node_dir)?;
    print!("{report}");
    std::fs::write(&out, &report).with_context(|| format!("writing {}", out.display()))?;
    progress(format!("tables written to {}", out.display()));
    Ok(())
}

/// The workspace root: this crate's parent folder.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

fn run(runtime: &tokio::runtime::Runtime, proxies: &tokio::runtime::Runtime, node_dir: &Path) -> Result<String> {
    let started_at = chrono::Utc::now().format("%Y-%m-%d %H:%M");
    let load_before = load_average();
    // Inside the node folder, so scripts/bench-baselines.sh clears what a killed run leaves.
    let scratch = tempfile::tempdir_in(node_dir)?;

    // ----- Gridlink's server: the street demo, served by the real binary ---------------------
    progress("Gridlink: loading the street demo into a fresh store");
    let server_dir = scratch.path().join("gridlink-server");
    std::fs::create_dir_all(&server_dir)?;
    let admin = SqliteStore::create(&server_dir)?;
    admin.load_demo(DemoSize::Street, SEED, now_millis())?;
    let (serve, serve_addr) = gridlink_server(&server_dir)?;
    let server_pid = serve.0.id();
    let proxy = proxies.block_on(Proxy::start(serve_addr, None))?;
    let users = admin.list_users()?;
    let worker = users
        .iter()
        .find(|u| u.role == Role::GridWorker && u.scopes.len() == 1 && matches!(u.scopes[0], Scope::Grid(_)))
        .context("the demo has a grid worker")?
        .clone();

    // ----- the grid, as JSON for the baselines ------------------------------------------------
    let docs = export_grid(&admin, worker.scopes[0])?;
    progress(format!("grid of {} ({}): {} documents exported", worker.name, worker.scopes[0], docs.len()));

    // ----- Gridlink -----------------------------------------------------------------------------
    let phones = scratch.path().join("gridlink-phones");
    let (ours, workload) =
        runtime.block_on(gridlink(&admin, &worker, &proxy, proxies.handle(), serve_addr, server_pid, &phones))?;
    let ours = SystemFigures { server_rss: peak_rss(server_pid), ..ours };
    drop(serve);

    // The baselines edit the same documents: every id of the workload must be in the export.
    let exported: std::collections::BTreeSet<&str> = docs.iter().filter_map(|d| d["id"].as_str()).collect();
    for key in ["day_households", "day_cases", "cycle_households"] {
        for id in workload[key].as_array().context("workload ids")? {
            let id = id.as_str().context("an id")?;
            if !exported.contains(id) {
                bail!("{key}: document {id} is not among the exported grid's documents");
            }
        }
    }
    let docs_path = scratch.path().join("docs.json");
    let workload_path = scratch.path().join("workload.json");
    std::fs::write(&docs_path, serde_json::to_vec(&docs)?)?;
    std::fs::write(&workload_path, serde_json::to_vec(&workload)?)?;
    // Kept beside the tables, so the baselines' input can be inspected after the run.
    let _ = std::fs::copy(&docs_path, node_dir.join("grid-docs.json"));

    // ----- the baselines ------------------------------------------------------------------------
    let mut all = vec![ours];
    for system in [System::Automerge, System::Pouchdb] {
        let work = scratch.path().join(system.key());
        all.push(baseline(proxies, system, node_dir, &work, &docs_path, &workload_path)?);
    }

    let mut report = String::new();
    report += "# Side by side: Gridlink, automerge-repo and PouchDB\n\n";
    report += &format!(
        "run {started_at} (UTC); machine: {} logical cores, {}; load average before {load_before}, after {}\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        cpu_model(),
        load_average()
    );
    report += &format!(
        "documents: one grid of the `street` demo (seed {SEED}), {} households and cases, {:.1} KiB of JSON\n",
        docs.len(),
        serde_json::to_vec(&docs)?.len() as f64 / 1024.0
    );
    report += &tables(&all);
    report += &link_table(&all, &floors(&docs, &workload)?);
    Ok(report)
}

// ----- the documents --------------------------------------------------------------------------

/// The households and cases of a grid as the store holds them, as typed JSON.
fn export_grid(admin: &SqliteStore, grid: Scope) -> Result<Vec<Value>> {
    let scope = grid.to_string();
    let rows: Vec<(String, String, Vec<u8>)> = admin.read(|conn| {
        let mut stmt = conn.prepare(
            "SELECT d.id, d.doc_type, d.bytes FROM doc_scopes s JOIN docs d ON d.id = s.doc_id
             WHERE s.scope = ?1 AND d.doc_type IN ('household', 'case') ORDER BY d.doc_type DESC, d.id",
        )?;
        let rows = stmt.query_map([&scope], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
        Ok(rows)
    })?;
    rows.into_iter()
        .map(|(id, doc_type, bytes)| {
            let document = doc::load(&bytes)?;
            let value = match doc_type.as_str() {
                "household" => serde_json::to_value(doc::read::<HouseholdFile>(&document)?)?,
                _ => serde_json::to_value(doc::read::<CaseFile>(&document)?)?,
            };
            Ok(json!({ "id": id, "type": doc_type, "doc": value }))
        })
        .collect()
}

// ----- figures --------------------------------------------------------------------------------

/// One measured workload: wall time, the proxy's counts, the server's CPU.
#[derive(Clone, Copy, Default)]
struct Measure {
    wall: Duration,
    up: u64,
    down: u64,
    requests: u64,
    /// WebSocket messages the device sent and received (automerge-repo; 0 for HTTP).
    messages_up: u64,
    messages_down: u64,
    server_ticks: u64,
    /// CPU of the devices' process: this process for Gridlink (its proxies included), the
    /// `node device.mjs` process for a baseline.
    client_ticks: u64,
    /// WebSocket connections reset during the workload (the device reconnected and went on).
    resets: u64,
}

struct Concurrent {
    total: Measure,
    syncs: usize,
    latencies: Vec<Duration>,
}

struct SystemFigures {
    name: &'static str,
    first: Measure,
    first_docs: u64,
    days: Vec<Measure>,
    concurrent: Vec<Concurrent>,
    /// Per link profile: a new device's first sync and then one day's sync, through the link.
    /// (Err: why it did not finish, as the device reported it.)
    links: Vec<(Result<Measure, String>, Result<Measure, String>)>,
    server_rss: Option<u64>,
}

/// Counters at the start of a workload.
struct Mark {
    wire: WireSnapshot,
    ticks: u64,
    client: u32,
    client_ticks: u64,
    at: Instant,
}

fn cpu_ticks(pid: u32) -> u64 {
    proc_stat(pid).map(|s| s.cpu_ticks).unwrap_or(0)
}

/// Marks the start of a workload of the server `pid` and the devices' process `client`.
fn mark(proxy: &Proxy, pid: u32, client: u32) -> Mark {
    Mark {
        wire: proxy.wire.snapshot(),
        ticks: cpu_ticks(pid),
        client,
        client_ticks: cpu_ticks(client),
        at: Instant::now(),
    }
}

impl Mark {
    /// The workload since the mark; `wall` from the device's own clock when it has one.
    fn measure(&self, proxy: &Proxy, pid: u32, wall: Option<Duration>) -> Measure {
        let used = proxy.wire.snapshot().since(&self.wire);
        let ticks = proc_stat(pid).map(|s| s.cpu_ticks).unwrap_or(self.ticks);
        Measure {
            wall: wall.unwrap_or_else(|| self.at.elapsed()),
            up: used.up,
            down: used.down,
            requests: used.requests,
            messages_up: 0,
            messages_down: 0,
            server_ticks: ticks.saturating_sub(self.ticks),
            client_ticks: cpu_ticks(self.client).saturating_sub(self.client_ticks),
            resets: 0,
        }
    }
}

// ----- Gridlink -------------------------------------------------------------------------------

async fn gridlink(
    admin: &SqliteStore,
    worker: &UserRow,
    proxy: &Proxy,
    proxies: &tokio::runtime::Handle,
    upstream: SocketAddr,
    pid: u32,
    phones: &Path,
) -> Result<(SystemFigures, Value)> {
    let url = proxy.url();
    progress("Gridlink: first sync of a new device");
    let client = enrol(admin, worker, &url, &phones.join("first")).await?;
    let at = mark(proxy, pid, std::process::id());
    client.sync().await?;
    let first = at.measure(proxy, pid, None);
    let now = now_millis();
    let households = client.households(&HouseholdFilter::default(), now)?;
    let cases = client.cases(CaseFilter::All, now)?;
    let open = client.cases(CaseFilter::Open, now)?;
    let identity = client.identity()?;
    if households.len() < DAY_VISITS || open.len() < DAY_ACTIONS {
        bail!("the grid has {} households and {} open cases: too few for a day", households.len(), open.len());
    }
    let mut household_ids: Vec<HouseholdId> = households.iter().map(|h| h.id).collect();
    household_ids.sort();
    let workload = json!({
        "day_households": household_ids.iter().take(DAY_VISITS).map(|id| id.to_string()).collect::<Vec<_>>(),
        "day_cases": open.iter().take(DAY_ACTIONS).map(|c| c.id.to_string()).collect::<Vec<_>>(),
        "cycle_households": household_ids.iter().map(|id| id.to_string()).collect::<Vec<_>>(),
        "visitor_id": identity.user.to_string(),
        "visitor_name": identity.name,
    });

    let mut days = Vec::new();
    for day in 0..DAYS {
        progress(format!("Gridlink: day {} ({DAY_VISITS} visits, {DAY_ACTIONS} case comments, then sync)", day + 1));
        record_day(&client, &household_ids, &open, day)?;
        let at = mark(proxy, pid, std::process::id());
        let report = client.sync().await?;
        if report.accepted != DAY_VISITS + DAY_ACTIONS {
            bail!("day {}: the server accepted {} of {} changes", day + 1, report.accepted, DAY_VISITS + DAY_ACTIONS);
        }
        days.push(at.measure(proxy, pid, None));
    }

    let mut links = Vec::new();
    for (i, link) in LINKS.iter().enumerate() {
        progress(format!("Gridlink: a new device over {}: first sync, then a day", link.name));
        let shaped = proxies.spawn(Proxy::start(upstream, Some(*link))).await??;
        let client = enrol(admin, worker, &shaped.url(), &phones.join(format!("link{i}"))).await?;
        let at = mark(&shaped, pid, std::process::id());
        client.sync().await?;
        let first = at.measure(&shaped, pid, None);
        record_day(&client, &household_ids, &open, DAYS + i)?;
        let at = mark(&shaped, pid, std::process::id());
        client.sync().await?;
        links.push((Ok(first), Ok(at.measure(&shaped, pid, None))));
    }

    let mut concurrent = Vec::new();
    for (devices, cycles) in CONCURRENT {
        progress(format!("Gridlink: enrolling and first-syncing {devices} devices"));
        let mut clients = Vec::new();
        for i in 0..devices {
            let client = enrol(admin, worker, &url, &phones.join(format!("c{devices}-{i}"))).await?;
            client.sync().await?;
            clients.push(Arc::new(client));
        }
        // One warm-up cycle each, as for the baselines.
        cycle_all(&clients, &household_ids, 1, 0).await?;
        progress(format!("Gridlink: {devices} devices x {cycles} cycles (visit + sync)"));
        let at = mark(proxy, pid, std::process::id());
        let latencies = cycle_all(&clients, &household_ids, cycles, 1).await?;
        let total = at.measure(proxy, pid, None);
        concurrent.push(Concurrent { total, syncs: latencies.len(), latencies });
    }
    let figures = SystemFigures {
        name: "Gridlink",
        first,
        first_docs: (households.len() + cases.len()) as u64,
        days,
        concurrent,
        links,
        server_rss: None,
    };
    Ok((figures, workload))
}

/// A day's work on a phone, offline: visits on the first households, comments on open cases.
fn record_day(client: &Client, households: &[HouseholdId], open: &[CaseRow], day: usize) -> Result<()> {
    let now = now_millis();
    for (i, id) in households.iter().take(DAY_VISITS).enumerate() {
        client.record_visit(visit_input(*id, day * 100 + i, now), now)?;
    }
    for (i, case) in open.iter().take(DAY_ACTIONS).enumerate() {
        let action = CaseAction {
            case: case.id,
            action: ActionKind::Comment,
            note: format!("第{}次电话回访，住户表示满意", day * 100 + i),
            satisfaction: None,
            to: None,
        };
        client.act_on_case(action, now)?;
    }
    Ok(())
}

async fn enrol(admin: &SqliteStore, user: &UserRow, url: &str, dir: &Path) -> Result<Client> {
    let code = admin.new_code(user.id, now_millis(), 72)?;
    let client = Client::open(dir)?;
    client.enroll(url, &code, &format!("{}的手机", user.name)).await?;
    Ok(client)
}

/// Every client does `cycles` of (one visit on its own household + sync) at once; the
/// latency of each cycle.
async fn cycle_all(
    clients: &[Arc<Client>],
    households: &[HouseholdId],
    cycles: usize,
    first: usize,
) -> Result<Vec<Duration>> {
    let mut tasks = Vec::new();
    for (k, client) in clients.iter().enumerate() {
        let (client, household) = (client.clone(), households[k % households.len()]);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for c in first..first + cycles {
                let started = Instant::now();
                let now = now_millis();
                client.record_visit(visit_input(household, k * 1000 + c, now), now)?;
                let report = client.sync().await?;
                if report.accepted != 1 {
                    bail!("a cycle's visit was not accepted ({} accepted)", report.accepted);
                }
                latencies.push(started.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
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

// ----- the baselines --------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum System {
    Automerge,
    Pouchdb,
}

impl System {
    fn key(self) -> &'static str {
        match self {
            System::Automerge => "automerge",
            System::Pouchdb => "pouchdb",
        }
    }
    fn name(self) -> &'static str {
        match self {
            System::Automerge => "automerge-repo",
            System::Pouchdb => "PouchDB",
        }
    }
    fn server_script(self) -> &'static str {
        match self {
            System::Automerge => "automerge-server.mjs",
            System::Pouchdb => "pouchdb-server.mjs",
        }
    }
}

/// A child process killed (SIGKILL) and reaped on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `gridlink-server serve --data DIR --listen 127.0.0.1:0`, the release binary beside this
/// benchmark (`target/release`; scripts/bench-baselines.sh builds it first: building it from
/// here would wait forever on the lock of the `cargo bench` running us).
fn gridlink_server(data: &Path) -> Result<(Process, SocketAddr)> {
    let exe = std::env::current_exe()?;
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .context("the target directory")?
        .join(format!("gridlink-server{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        bail!("{} is missing: run `cargo build --release -p gridlink-sync-server` first", binary.display());
    }
    let mut child = Command::new(&binary)
        .arg("serve")
        .arg("--data")
        .arg(data)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().context("server stdout")?;
    let process = Process(child);
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().transpose()?.unwrap_or_default();
    let addr = first
        .strip_prefix("listening on http://")
        .with_context(|| format!("gridlink-server did not start: {first:?}"))?
        .trim()
        .parse()?;
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok((process, addr))
}

/// `node SCRIPT ARGS` in the node folder: the server prints `listening on 127.0.0.1:PORT`.
fn node_server(node_dir: &Path, script: &str, data: &Path) -> Result<(Process, SocketAddr)> {
    let mut child = Command::new("node")
        .arg(script)
        .arg(data)
        .current_dir(node_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting node (is Node.js installed?)")?;
    let stdout = child.stdout.take().context("server stdout")?;
    let process = Process(child);
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().transpose()?.unwrap_or_default();
    let addr = first
        .strip_prefix("listening on ")
        .with_context(|| format!("{script} did not start: {first:?}"))?
        .trim()
        .parse()?;
    std::thread::spawn(move || for _ in lines {});
    Ok((process, addr))
}

/// The `node device.mjs` process of one system, driven by JSON commands.
struct Devices {
    process: Process,
    stdin: ChildStdin,
    answers: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Devices {
    fn start(system: System, node_dir: &Path, url: &str, work: &Path, docs: &Path, workload: &Path) -> Result<Devices> {
        let mut child = Command::new("node")
            .arg("device.mjs")
            .arg(system.key())
            .arg(url)
            .args([work, docs, workload])
            .current_dir(node_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting node device.mjs")?;
        let stdin = child.stdin.take().context("device stdin")?;
        let stdout = child.stdout.take().context("device stdout")?;
        Ok(Devices { process: Process(child), stdin, answers: BufReader::new(stdout).lines() })
    }

    fn call(&mut self, command: Value) -> Result<Value> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        let line = self.answers.next().transpose()?.with_context(|| format!("device.mjs exited during {command}"))?;
        let answer: Value = serde_json::from_str(&line).with_context(|| format!("device.mjs answered {line:?}"))?;
        if answer["ok"] != true {
            bail!("device.mjs failed {command}: {}", answer["error"].as_str().unwrap_or("?"));
        }
        Ok(answer)
    }
}

/// The first line of a device's error, for a table cell.
fn failure(error: &anyhow::Error) -> String {
    let text = format!("{error:#}");
    let line = text.lines().next().unwrap_or("failed");
    let line = line.strip_prefix("device.mjs failed ").unwrap_or(line);
    format!("failed: {}", line.chars().take(120).collect::<String>())
}

fn millis(answer: &Value, key: &str) -> Result<Duration> {
    let ms = answer[key].as_f64().with_context(|| format!("no {key} in {answer}"))?;
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

fn with_messages(mut m: Measure, answer: &Value) -> Measure {
    m.messages_up = answer["messages_up"].as_u64().unwrap_or(0);
    m.messages_down = answer["messages_down"].as_u64().unwrap_or(0);
    m.resets = answer["resets"].as_u64().unwrap_or(0);
    // A day's command also reopens the device and makes the edits: the device times the CPU
    // of the sync alone, as Gridlink's figure is taken around `sync` only.
    if let Some(ms) = answer["device_cpu_ms"].as_f64() {
        m.client_ticks = (ms * clock_ticks_per_second() as f64 / 1000.0).round() as u64;
    }
    m
}

fn baseline(
    proxies: &tokio::runtime::Runtime,
    system: System,
    node_dir: &Path,
    work: &Path,
    docs: &Path,
    workload: &Path,
) -> Result<SystemFigures> {
    progress(format!("{}: starting the server", system.name()));
    std::fs::create_dir_all(work)?;
    let (server, addr) = node_server(node_dir, system.server_script(), &work.join("server-data"))?;
    let pid = server.0.id();
    let proxy = proxies.block_on(Proxy::start(addr, None))?;
    let mut devices = Devices::start(system, node_dir, &proxy.url(), &work.join("devices"), docs, workload)?;

    progress(format!("{}: seeding the grid (not measured)", system.name()));
    let seeded = devices.call(json!({ "cmd": "seed" }))?;

    progress(format!("{}: first sync of a new device", system.name()));
    let at = mark(&proxy, pid, devices.process.0.id());
    let answer = devices.call(json!({ "cmd": "first" }))?;
    let first = with_messages(at.measure(&proxy, pid, Some(millis(&answer, "wall_ms")?)), &answer);
    let first_docs = answer["docs"].as_u64().unwrap_or(0);

    let mut days = Vec::new();
    for day in 0..DAYS {
        progress(format!("{}: day {}", system.name(), day + 1));
        let at = mark(&proxy, pid, devices.process.0.id());
        let answer = devices.call(json!({ "cmd": "day", "day": day }))?;
        days.push(with_messages(at.measure(&proxy, pid, Some(millis(&answer, "wall_ms")?)), &answer));
    }

    let mut concurrent = Vec::new();
    for (n, cycles) in CONCURRENT {
        progress(format!("{}: setting up {n} devices", system.name()));
        devices.call(json!({ "cmd": "setup", "devices": n }))?;
        devices.call(json!({ "cmd": "cycles", "devices": n, "cycles": 1 }))?;
        progress(format!("{}: {n} devices x {cycles} cycles (visit + sync)", system.name()));
        let at = mark(&proxy, pid, devices.process.0.id());
        let answer = devices.call(json!({ "cmd": "cycles", "devices": n, "cycles": cycles }))?;
        let total = with_messages(at.measure(&proxy, pid, Some(millis(&answer, "wall_ms")?)), &answer);
        let latencies: Vec<Duration> = answer["latencies_ms"]
            .as_array()
            .context("latencies")?
            .iter()
            .filter_map(Value::as_f64)
            .map(|ms| Duration::from_secs_f64(ms / 1000.0))
            .collect();
        concurrent.push(Concurrent { total, syncs: latencies.len(), latencies });
    }
    devices.call(json!({ "cmd": "close" }))?;
    drop(devices.process);

    let mut links = Vec::new();
    for (i, link) in LINKS.iter().enumerate() {
        progress(format!("{}: a new device over {}: first sync, then a day", system.name(), link.name));
        let shaped = proxies.block_on(Proxy::start(addr, Some(*link)))?;
        let dir = work.join(format!("devices-link{i}"));
        let mut device = Devices::start(system, node_dir, &shaped.url(), &dir, docs, workload)?;
        if let Some(urls) = seeded["urls"].as_str() {
            device.call(json!({ "cmd": "urls", "path": urls }))?;
        }
        // A failure here is a figure (the system could not finish over this link), not an error.
        let at = mark(&shaped, pid, device.process.0.id());
        let first = device
            .call(json!({ "cmd": "first" }))
            .and_then(|answer| Ok(with_messages(at.measure(&shaped, pid, Some(millis(&answer, "wall_ms")?)), &answer)))
            .map_err(|e| failure(&e));
        let day = if first.is_ok() {
            let at = mark(&shaped, pid, device.process.0.id());
            device
                .call(json!({ "cmd": "day", "day": DAYS + i }))
                .and_then(|answer| {
                    Ok(with_messages(at.measure(&shaped, pid, Some(millis(&answer, "wall_ms")?)), &answer))
                })
                .map_err(|e| failure(&e))
        } else {
            Err("no first sync".into())
        };
        if first.is_ok() && day.is_ok() {
            device.call(json!({ "cmd": "close" }))?;
        }
        drop(device.process);
        links.push((first, day));
    }
    let server_rss = peak_rss(pid);
    drop(server);
    Ok(SystemFigures { name: system.name(), first, first_docs, days, concurrent, links, server_rss })
}

// ----- tables ---------------------------------------------------------------------------------

fn cpu_ms(ticks: u64) -> f64 {
    ticks as f64 * 1000.0 / clock_ticks_per_second() as f64
}

fn round_trips(m: &Measure) -> String {
    if m.messages_up + m.messages_down > 0 {
        format!("{} HTTP + {} / {} WS msgs", m.requests, m.messages_up, m.messages_down)
    } else {
        format!("{} HTTP", m.requests)
    }
}

/// Gzipped sizes of what a first sync and a day's sync must move at the least: the grid's
/// documents as JSON, and the day's visits and comments as JSON.
struct Floors {
    first_bytes: u64,
    day_bytes: u64,
}

fn gzipped(value: &Value) -> Result<u64> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&serde_json::to_vec(value)?)?;
    Ok(encoder.finish()?.len() as u64)
}

fn floors(docs: &[Value], workload: &Value) -> Result<Floors> {
    let at = now_millis();
    let visits: Vec<Value> = (0..DAY_VISITS)
        .map(|i| {
            json!({
                "id": gridlink_shared::VisitId::new().to_string(), "visitor": workload["visitor_id"],
                "visitor_name": workload["visitor_name"], "at": at - 60_000, "recorded_at": at,
                "outcome": if i % 3 == 1 { "not-home" } else { "met" },
                "notes": format!("入户走访第{i}次：老人身体状况良好，提醒注意用电安全"),
                "needs_found": [], "follow_up": null, "residents_present": [],
                "household": workload["day_households"][i],
            })
        })
        .collect();
    let actions: Vec<Value> = (0..DAY_ACTIONS)
        .map(|i| {
            json!({
                "id": gridlink_shared::VisitId::new().to_string(), "kind": "comment", "by": workload["visitor_id"],
                "by_name": workload["visitor_name"], "at": at, "lamport": 1000 + i,
                "note": format!("第{i}次电话回访，住户表示满意"), "case": workload["day_cases"][i],
            })
        })
        .collect();
    Ok(Floors { first_bytes: gzipped(&Value::from(docs.to_vec()))?, day_bytes: gzipped(&json!([visits, actions]))? })
}

fn link_table(all: &[SystemFigures], floors: &Floors) -> String {
    let mut t = Table::new(&[
        "link",
        "system",
        "first sync",
        "floor",
        "x floor",
        "a day's sync",
        "floor",
        "x floor",
        "first: up / down",
        "day: up / down",
    ]);
    for (i, link) in LINKS.iter().enumerate() {
        let first_floor = link.floor(floors.first_bytes);
        let day_floor = link.floor(floors.day_bytes);
        for s in all {
            let (first, day) = &s.links[i];
            let cells = |m: &Result<Measure, String>, floor: Duration| match m {
                Ok(m) => (ms(m.wall), format!("{:.1}x", m.wall.as_secs_f64() / floor.as_secs_f64())),
                Err(e) => (e.clone(), "-".into()),
            };
            let traffic = |m: &Result<Measure, String>| match m {
                Ok(m) => format!("{} / {}", bytes(m.up), bytes(m.down)),
                Err(_) => "-".into(),
            };
            let (first_wall, first_x) = cells(first, first_floor);
            let (day_wall, day_x) = cells(day, day_floor);
            t.row([
                link.name.to_string(),
                s.name.to_string(),
                first_wall,
                ms(first_floor),
                first_x,
                day_wall,
                ms(day_floor),
                day_x,
                traffic(first),
                traffic(day),
            ]);
        }
    }
    let mut out = t.render("5. Over a slow link: a new device's first sync, then one day's sync");
    out += &format!(
        "floor: one round trip plus the gzipped bytes at the link rate: the grid's documents as JSON\n\
         ({}) for a first sync, the day's {DAY_VISITS} visits and {DAY_ACTIONS} comments as JSON ({}) for a day.\n\
         The proxy delays each direction by half the round trip and paces it at the link rate (shared by\n\
         the device's connections). Connection set-up is part of the figure (no connection is kept).\n",
        bytes(floors.first_bytes),
        bytes(floors.day_bytes)
    );
    out
}

fn tables(all: &[SystemFigures]) -> String {
    let ours = &all[0];
    let mut out = String::new();

    let mut t = Table::new(&[
        "first sync of a new device",
        "docs",
        "wall",
        "up",
        "down",
        "round trips",
        "server CPU",
        "ours/theirs wall",
        "ours/theirs bytes",
        "ours/theirs server CPU",
    ]);
    for s in all {
        let f = &s.first;
        t.row([
            s.name.to_string(),
            s.first_docs.to_string(),
            ms(f.wall),
            bytes(f.up),
            bytes(f.down),
            round_trips(f),
            format!("{:.0} ms", cpu_ms(f.server_ticks)),
            ratio(ours.first.wall.as_secs_f64(), f.wall.as_secs_f64()),
            ratio((ours.first.up + ours.first.down) as f64, (f.up + f.down) as f64),
            ratio(cpu_ms(ours.first.server_ticks), cpu_ms(f.server_ticks)),
        ]);
    }
    out += &t.render("1. First sync of a new device (one grid)");
    out += "up/down: bytes on the wire at the proxy, both directions, headers and framing included.\n";
    out += "automerge-repo is handed every document's URL (it has no discovery); PouchDB runs one-shot\n";
    out += "`db.sync(remote)` (push and pull); Gridlink runs `Client::sync` after enrolment.\n";

    let mean = |days: &[Measure], f: &dyn Fn(&Measure) -> f64| days.iter().map(f).sum::<f64>() / days.len() as f64;
    let day_cpu = |s: &SystemFigures| mean(&s.days, &|m| cpu_ms(m.server_ticks));
    let day_client = |s: &SystemFigures| mean(&s.days, &|m| cpu_ms(m.client_ticks));
    let day_bytes = |s: &SystemFigures| mean(&s.days, &|m| (m.up + m.down) as f64);
    let day_wall = |s: &SystemFigures| {
        let mut walls: Vec<Duration> = s.days.iter().map(|m| m.wall).collect();
        walls.sort();
        walls[walls.len() / 2]
    };
    let mut t = Table::new(&[
        "a day's sync",
        "wall (median)",
        "up",
        "down",
        "round trips",
        "server CPU / sync",
        "device CPU / sync",
        "ours/theirs wall",
        "ours/theirs bytes",
        "ours/theirs server CPU",
    ]);
    for s in all {
        let m = &s.days[s.days.len() / 2];
        t.row([
            s.name.to_string(),
            ms(day_wall(s)),
            bytes(mean(&s.days, &|m| m.up as f64) as u64),
            bytes(mean(&s.days, &|m| m.down as f64) as u64),
            round_trips(m),
            format!("{:.1} ms", day_cpu(s)),
            format!("{:.1} ms", day_client(s)),
            ratio(day_wall(ours).as_secs_f64(), day_wall(s).as_secs_f64()),
            ratio(day_bytes(ours), day_bytes(s)),
            ratio(day_cpu(ours), day_cpu(s)),
        ]);
    }
    out += &t.render(&format!(
        "2. A day's incremental sync: {DAY_VISITS} visits + {DAY_ACTIONS} case comments made offline, then one sync ({DAYS} days)"
    ));
    out += "bytes: mean of the days; round trips: the middle day; server CPU: utime+stime of the server\n";
    out += "process over the days / days (10 ms clock ticks). automerge-repo reopens the device's Repo\n";
    out += "offline, edits, then connects: every document it holds syncs (it cannot know which changed).\n";
    out += "device CPU: the process running the device during the sync (Gridlink: this benchmark process).\n";

    let mut t = Table::new(&[
        "concurrent devices",
        "devices",
        "syncs",
        "syncs/s",
        "p50",
        "p99",
        "up / down per sync",
        "round trips per sync",
        "server CPU / sync",
        "devices' CPU / sync",
        "ours/theirs syncs/s",
        "ours/theirs server CPU",
    ]);
    for (i, (devices, _)) in CONCURRENT.iter().enumerate() {
        let our = &ours.concurrent[i];
        for s in all {
            let c = &s.concurrent[i];
            let per = |n: u64| n as f64 / c.syncs.max(1) as f64;
            let rate = |c: &Concurrent| c.syncs as f64 / c.total.wall.as_secs_f64();
            let cpu = |c: &Concurrent| cpu_ms(c.total.server_ticks) / c.syncs.max(1) as f64;
            let stats = Stats::of(&mut c.latencies.clone());
            let trips = if c.total.messages_up + c.total.messages_down > 0 {
                format!(
                    "{:.2} HTTP + {:.1} / {:.1} WS msgs",
                    per(c.total.requests),
                    per(c.total.messages_up),
                    per(c.total.messages_down)
                )
            } else {
                format!("{:.2} HTTP", per(c.total.requests))
            };
            t.row([
                s.name.to_string(),
                devices.to_string(),
                c.syncs.to_string(),
                format!("{:.1}", rate(c)),
                ms(stats.p50),
                ms(stats.p99),
                format!("{} / {}", bytes(per(c.total.up) as u64), bytes(per(c.total.down) as u64)),
                trips,
                format!("{:.2} ms", cpu(c)),
                format!("{:.2} ms", cpu_ms(c.total.client_ticks) / c.syncs.max(1) as f64),
                ratio(rate(our), rate(c)),
                ratio(cpu(our), cpu(c)),
            ]);
        }
    }
    out += &t.render("3. Devices syncing at once: cycles of (one visit + sync), after one warm-up cycle each");
    out += "syncs/s: all devices' cycles over the wall time; p50/p99 of one cycle (edit + sync until the\n";
    out += "server holds the change). ours/theirs syncs/s above 1 means Gridlink does more; every other\n";
    out += "ratio below 1 means Gridlink uses less. Server CPU from /proc/PID/stat over the measured cycles.\n";
    out += "Clients, proxies and servers share the machine's cores. devices' CPU: the process running\n";
    out += "the devices (Gridlink: this benchmark process, its proxies included; baselines: node device.mjs).\n";

    for s in all {
        let mut resets = vec![("first sync", s.first.resets)];
        resets.push(("days", s.days.iter().map(|m| m.resets).sum()));
        for (c, (devices, _)) in s.concurrent.iter().zip(CONCURRENT) {
            resets.push((if devices == 8 { "8 devices" } else { "80 devices" }, c.total.resets));
        }
        let seen: Vec<String> = resets.iter().filter(|(_, n)| *n > 0).map(|(w, n)| format!("{n} in {w}")).collect();
        if !seen.is_empty() {
            out += &format!(
                "{}: WebSocket connections reset by the server (keep-alive), the client reconnected: {}\n",
                s.name,
                seen.join(", ")
            );
        }
    }

    let mut t = Table::new(&["server process", "peak memory (VmHWM)"]);
    for s in all {
        t.row([s.name.to_string(), s.server_rss.map(bytes).unwrap_or_else(|| "-".into())]);
    }
    out += &t.render("4. Server memory");
    out
}

// ----- counting proxy ---------------------------------------------------------------------------

/// Totals seen by a proxy.
#[derive(Default)]
struct Wire {
    up: AtomicU64,
    down: AtomicU64,
    requests: AtomicU64,
}

#[derive(Clone, Copy, Default)]
struct WireSnapshot {
    up: u64,
    down: u64,
    requests: u64,
}

impl Wire {
    fn snapshot(&self) -> WireSnapshot {
        WireSnapshot {
            up: self.up.load(Ordering::SeqCst),
            down: self.down.load(Ordering::SeqCst),
            requests: self.requests.load(Ordering::SeqCst),
        }
    }
}

impl WireSnapshot {
    fn since(&self, before: &WireSnapshot) -> WireSnapshot {
        WireSnapshot {
            up: self.up - before.up,
            down: self.down - before.down,
            requests: self.requests - before.requests,
        }
    }
}

/// A link profile: the round trip and the rate of each direction.
#[derive(Clone, Copy)]
struct Link {
    name: &'static str,
    rtt: Duration,
    bits_per_second: u64,
}

const LINKS: [Link; 2] = [
    Link { name: "mobile (300 ms RTT, 1 Mbit/s)", rtt: Duration::from_millis(300), bits_per_second: 1_000_000 },
    Link { name: "Wi-Fi (20 ms RTT, 20 Mbit/s)", rtt: Duration::from_millis(20), bits_per_second: 20_000_000 },
];

impl Link {
    /// The least time `bytes` can take over this link: their transfer at the link rate plus
    /// one round trip.
    fn floor(&self, bytes: u64) -> Duration {
        self.rtt + Duration::from_secs_f64(bytes as f64 * 8.0 / self.bits_per_second as f64)
    }
}

/// One direction of a link: chunks leave after the ones before them have gone through at the
/// link rate, then arrive half a round trip later (shared by every connection of the proxy,
/// as one phone's connections share its radio).
struct Shaper {
    bytes_per_second: f64,
    one_way: Duration,
    free_at: std::sync::Mutex<tokio::time::Instant>,
}

impl Shaper {
    fn new(link: &Link) -> Arc<Shaper> {
        Arc::new(Shaper {
            bytes_per_second: link.bits_per_second as f64 / 8.0,
            one_way: link.rtt / 2,
            free_at: std::sync::Mutex::new(tokio::time::Instant::now()),
        })
    }

    /// When a chunk of `n` bytes read now arrives at the other end.
    fn arrival(&self, n: usize) -> tokio::time::Instant {
        let mut free_at = self.free_at.lock().unwrap_or_else(|p| p.into_inner());
        let start = (*free_at).max(tokio::time::Instant::now());
        *free_at = start + Duration::from_secs_f64(n as f64 / self.bytes_per_second);
        *free_at + self.one_way
    }
}

/// A TCP proxy on 127.0.0.1 in front of one server, counting bytes each way and HTTP requests
/// (by the end of their request line, whatever the method; WebSocket frames from a client are
/// masked, so the text cannot appear in them); with a [`Link`], it also delays and paces both
/// directions as that link would.
struct Proxy {
    addr: SocketAddr,
    wire: Arc<Wire>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr, link: Option<Link>) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let wire = Arc::new(Wire::default());
        let shapers = link.map(|l| (Shaper::new(&l), Shaper::new(&l)));
        let task = tokio::spawn(run_proxy(listener, upstream, wire.clone(), shapers));
        Ok(Proxy { addr, wire, task })
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run_proxy(
    listener: TcpListener,
    upstream: SocketAddr,
    wire: Arc<Wire>,
    shapers: Option<(Arc<Shaper>, Arc<Shaper>)>,
) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else { continue };
        let (wire, shapers) = (wire.clone(), shapers.clone());
        tokio::spawn(async move {
            let Ok(outbound) = TcpStream::connect(upstream).await else { return };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (from_client, to_client) = inbound.into_split();
            let (from_server, to_server) = outbound.into_split();
            let (up_shaper, down_shaper) = match shapers {
                Some((up, down)) => (Some(up), Some(down)),
                None => (None, None),
            };
            tokio::join!(
                forward(from_client, to_server, &wire.up, Some(&wire.requests), up_shaper),
                forward(from_server, to_client, &wire.down, None, down_shaper),
            );
        });
    }
}

/// Copies one direction until EOF, counting bytes (and requests), through the shaper if any.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    bytes: &AtomicU64,
    requests: Option<&AtomicU64>,
    shaper: Option<Arc<Shaper>>,
) {
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut carry: Vec<u8> = Vec::new();
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 {
                break;
            }
            bytes.fetch_add(n as u64, Ordering::SeqCst);
            if let Some(requests) = requests {
                requests.fetch_add(scan(&mut carry, &buf[..n], REQUEST_LINE_END), Ordering::SeqCst);
            }
            let arrival = shaper.as_ref().map(|s| s.arrival(n)).unwrap_or_else(tokio::time::Instant::now);
            if sender.send((arrival, buf[..n].to_vec())).is_err() {
                break;
            }
        }
    };
    let write = async move {
        while let Some((arrival, chunk)) = receiver.recv().await {
            tokio::time::sleep_until(arrival).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}

const REQUEST_LINE_END: &[u8] = b" HTTP/1.1\r\n";

/// Counts `pattern` in a stream read in chunks: `carry` keeps the tail of the previous chunk
/// (shorter than the pattern, so nothing is counted twice).
fn scan(carry: &mut Vec<u8>, chunk: &[u8], pattern: &[u8]) -> u64 {
    carry.extend_from_slice(chunk);
    let found = carry.windows(pattern.len()).filter(|w| *w == pattern).count() as u64;
    let keep = carry.len().min(pattern.len() - 1);
    carry.drain(..carry.len() - keep);
    found
}

// ----- formatting ------------------------------------------------------------------------------

struct Stats {
    p50: Duration,
    p99: Duration,
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
        Stats { p50: at(0.5), p99: at(0.99) }
    }
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
        format!("{:.2} MiB", n as f64 / 1_048_576.0)
    } else if n >= 10 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

fn ratio(ours: f64, baseline: f64) -> String {
    if baseline == 0.0 { "-".into() } else { format!("{:.3}x", ours / baseline) }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
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
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    fn render(&self, title: &str) -> String {
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
            format!("| {} |\n", padded.join(" | "))
        };
        let mut out = format!("\n### {title}\n\n");
        out += &line(&self.header);
        out += &format!("|{}|\n", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|"));
        for row in &self.rows {
            out += &line(row);
        }
        out += "\n";
        out
    }
}
