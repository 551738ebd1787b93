//! District load benchmark (issue #10): 2,000 simulated phones in the 86 grids of the
//! `street` demo doing incremental syncs (record a visit as an automerge change, push it, pull
//! until the server has nothing more) over real HTTP through nginx to 1, 2 and 4
//! `gridlink-server serve --database URL` processes on one PostgreSQL database, and the same
//! workload on embedded SQLite (`serve --data DIR`, one process). Not a test: it asserts no
//! speed; it prints per configuration syncs per second, p50/p99/max latency of a whole sync,
//! errors (anything but a 200 with every change accepted; they should be 0 and are printed),
//! CPU seconds per sync of the server processes, of PostgreSQL, of nginx and of this client
//! (utime + stime from `/proc/PID/stat`), and the server processes' peak memory (`VmHWM`).
//!
//! Run: `cargo bench -p gridlink-tests --bench district` (about 6 minutes on 2 cores).
//! `GRIDLINK_BENCH_SIZE=small` runs 200 phones on the small demo, 5 s per configuration.
//! Overrides: `GRIDLINK_DISTRICT_DEVICES`, `GRIDLINK_DISTRICT_SECONDS` (measured load per
//! configuration), `GRIDLINK_DISTRICT_WARMUP` (seconds before measuring),
//! `GRIDLINK_DISTRICT_CONCURRENCY` (syncs in flight).
//!
//! Set-up (`gridlink_tests::district`): a throwaway PostgreSQL cluster (durability off, as
//! for every test cluster: fsync and synchronous_commit off), `init --demo`, the server
//! processes and nginx round-robin in front, all on 127.0.0.1; the phones are enrolled once
//! per store through nginx with codes issued by the store (`new_code`), so the 1-, 2- and
//! 4-process runs share one database and one set of phones (the database grows by the
//! visits of the earlier runs). A phone starts from the grid's documents as the store holds
//! them and a cursor at the scope's head: as if its first sync were done. Each phone edits two
//! households of its grid, each change building on its last, and pulls what the other phones
//! of its grid pushed (the pulled items are counted, not merged: merging is the phone's cost,
//! not the server's). The driver keeps a fixed number of syncs in flight, one per phone at a
//! time, on a tokio runtime in this process: client, nginx, servers and PostgreSQL share the
//! machine's cores.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use gridlink_shared::automerge::{ActorId, AutoCommit};
use gridlink_shared::protocol::{
    self, AckStatus, Cursor, EnrollRequest, EnrollResponse, PROTOCOL_VERSION, PushChange, SyncRequest, SyncResponse,
};
use gridlink_shared::time::{Millis, now_millis};
use gridlink_shared::{DocId, HouseholdFile, Role, Scope, UserId, Visit, VisitId, VisitOutcome, doc};
use gridlink_sync_server::SqliteStore;
use gridlink_sync_server::store::{PgStore, UserRow};
use gridlink_tests::district::{
    Backend, District, NginxOptions, children_of, clock_ticks_per_second, peak_rss, proc_stat,
};
use tokio::sync::Mutex;

/// Households each phone edits (in turn), from its grid.
const HOUSEHOLDS_PER_PHONE: usize = 2;
/// Household documents of a grid the phones choose from.
const HOUSEHOLDS_PER_GRID: i64 = 60;
/// Enrolments in flight while setting up: the server counts attempts still being checked
/// against its budget of wrong codes (20 a minute), so a burst of more answers 429.
const ENROL_CONCURRENCY: usize = 8;
/// Errors printed in full per configuration (all are counted).
const ERRORS_SHOWN: usize = 5;

struct Settings {
    demo: &'static str,
    devices: usize,
    seconds: u64,
    warmup: u64,
    concurrency: usize,
}

fn settings() -> Result<Settings> {
    let small = std::env::var("GRIDLINK_BENCH_SIZE").is_ok_and(|s| s == "small")
        || std::env::args().skip(1).any(|a| a == "small");
    let mut s = if small {
        Settings { demo: "small", devices: 200, seconds: 5, warmup: 2, concurrency: 64 }
    } else {
        Settings { demo: "street", devices: 2_000, seconds: 25, warmup: 5, concurrency: 128 }
    };
    let var = |name: &str| -> Result<Option<u64>> {
        std::env::var(name)
            .ok()
            .map(|v| v.parse::<u64>().map_err(|_| anyhow!("{name}={v} is not a number")))
            .transpose()
    };
    if let Some(n) = var("GRIDLINK_DISTRICT_DEVICES")? {
        s.devices = n as usize;
    }
    if let Some(n) = var("GRIDLINK_DISTRICT_SECONDS")? {
        s.seconds = n;
    }
    if let Some(n) = var("GRIDLINK_DISTRICT_WARMUP")? {
        s.warmup = n;
    }
    if let Some(n) = var("GRIDLINK_DISTRICT_CONCURRENCY")? {
        s.concurrency = n as usize;
    }
    if s.devices == 0 || s.concurrency == 0 || s.seconds == 0 {
        bail!("devices, concurrency and seconds must be positive");
    }
    Ok(s)
}

fn progress(message: impl AsRef<str>) {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(Instant::now);
    eprintln!("[district {:>6.1}s] {}", start.elapsed().as_secs_f64(), message.as_ref());
}

fn main() -> Result<()> {
    let settings = settings()?;
    progress(format!(
        "{} phones on the `{}` demo, {} s warm-up + {} s measured per configuration, {} syncs in flight",
        settings.devices, settings.demo, settings.warmup, settings.seconds, settings.concurrency
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut rows = Vec::new();

    // ----- PostgreSQL: one database and one set of phones for 1, 2 and 4 processes -----
    progress(format!("PostgreSQL: throwaway cluster, init --demo {}", settings.demo));
    let started = Instant::now();
    let backend = Backend::postgres(Some(settings.demo))?;
    progress(format!("init took {:.1} s", started.elapsed().as_secs_f64()));
    let admin =
        Admin::Pg(Box::new(PgStore::open(backend.database_url().context("a database URL")?)?.with_pool_size(2)));
    let mut phones: Option<Vec<Phone>> = None;
    for processes in [1, 2, 4] {
        let district = District::start(&backend, processes, &nginx_options())?;
        let ready = match phones.take() {
            Some(p) => p,
            None => {
                let enrolment = prepare_enrolment(&admin, &settings)?;
                runtime.block_on(enrol_all(enrolment, &district.url()))?
            }
        };
        let (row, back) = runtime.block_on(measure(
            format!("PostgreSQL, {processes} process{}", if processes == 1 { "" } else { "es" }),
            &backend,
            &district,
            ready,
            &settings,
        ))?;
        phones = Some(back);
        rows.push(row);
        drop(district);
    }
    drop(admin);
    drop(phones);
    drop(backend);

    // ----- embedded SQLite: one process -----
    progress(format!("SQLite: init --data DIR --demo {}", settings.demo));
    let started = Instant::now();
    let backend = Backend::sqlite(Some(settings.demo))?;
    progress(format!("init took {:.1} s", started.elapsed().as_secs_f64()));
    let admin = Admin::Sqlite(SqliteStore::open(backend.data_dir().context("a data directory")?)?);
    let district = District::start(&backend, 1, &nginx_options())?;
    let enrolment = prepare_enrolment(&admin, &settings)?;
    let phones = runtime.block_on(enrol_all(enrolment, &district.url()))?;
    let (row, _) =
        runtime.block_on(measure("SQLite (embedded), 1 process".into(), &backend, &district, phones, &settings))?;
    rows.push(row);
    drop(district);

    print_table(&rows, &settings);
    Ok(())
}

fn nginx_options() -> NginxOptions {
    NginxOptions { workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1), access_log: true }
}

/// The store, opened in this process for what an administrator does: list users, issue codes,
/// read the grids' documents.
enum Admin {
    Pg(Box<PgStore>),
    Sqlite(SqliteStore),
}

/// The grid's households as the store holds them, the scope's head, the roster version.
struct GridStart {
    households: Vec<(DocId, Vec<u8>)>,
    head: u64,
    reference_version: Option<u64>,
}

impl Admin {
    fn grid_workers(&self) -> Result<Vec<UserRow>> {
        let users = match self {
            Admin::Pg(s) => s.list_users()?,
            Admin::Sqlite(s) => s.list_users()?,
        };
        let workers: Vec<UserRow> = users
            .into_iter()
            .filter(|u| u.role == Role::GridWorker && u.scopes.len() == 1 && matches!(u.scopes[0], Scope::Grid(_)))
            .collect();
        if workers.is_empty() {
            bail!("the demo has no grid workers");
        }
        Ok(workers)
    }

    /// A new grid worker and their first enrolment code.
    fn add_user(&self, name: &str, scopes: &[Scope], phone: &str, now: Millis) -> Result<(UserId, String)> {
        Ok(match self {
            Admin::Pg(s) => s.add_user(name, Role::GridWorker, scopes, phone, now, 72)?,
            Admin::Sqlite(s) => s.add_user(name, Role::GridWorker, scopes, phone, now, 72)?,
        })
    }

    fn grid_start(&self, scope: Scope) -> Result<GridStart> {
        let scope = scope.to_string();
        let (households, head, reference): (Vec<(String, Vec<u8>)>, i64, String) = match self {
            Admin::Pg(s) => s.read(|client| {
                let rows = client.query(
                    "SELECT d.id, d.bytes FROM doc_scopes s JOIN docs d ON d.id = s.doc_id
                     WHERE s.scope = $1 AND d.doc_type = 'household' ORDER BY d.id LIMIT $2",
                    &[&scope, &HOUSEHOLDS_PER_GRID],
                )?;
                let head: i64 = client
                    .query_one("SELECT COALESCE(MAX(seq), 0)::BIGINT FROM scope_log WHERE scope = $1", &[&scope])?
                    .get(0);
                let reference: String =
                    client.query_one("SELECT value FROM meta WHERE key = 'reference_version'", &[])?.get(0);
                Ok((rows.iter().map(|r| (r.get(0), r.get(1))).collect(), head, reference))
            })?,
            Admin::Sqlite(s) => s.read(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT d.id, d.bytes FROM doc_scopes s JOIN docs d ON d.id = s.doc_id
                     WHERE s.scope = ?1 AND d.doc_type = 'household' ORDER BY d.id LIMIT ?2",
                )?;
                let rows = stmt
                    .query_map(rusqlite::params![scope, HOUSEHOLDS_PER_GRID], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                let head: i64 =
                    conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM scope_log WHERE scope = ?1", [&scope], |r| {
                        r.get(0)
                    })?;
                let reference: String =
                    conn.query_row("SELECT value FROM meta WHERE key = 'reference_version'", [], |r| r.get(0))?;
                Ok((rows, head, reference))
            })?,
        };
        if households.is_empty() {
            bail!("grid {scope} holds no households");
        }
        let households = households
            .into_iter()
            .map(|(id, bytes)| Ok((id.parse().map_err(|e| anyhow!("document id {id}: {e}"))?, bytes)))
            .collect::<Result<Vec<_>>>()?;
        Ok(GridStart { households, head: head as u64, reference_version: reference.parse().ok() })
    }
}

/// A simulated phone: its token, its cursor in its grid, and its copies of the households it
/// edits.
struct Phone {
    token: String,
    actor: ActorId,
    user: UserId,
    user_name: String,
    scope: Scope,
    cursor: Cursor,
    reference_version: Option<u64>,
    /// The households it visits, loaded from the grid's bytes on first use.
    households: Vec<(DocId, Arc<Vec<u8>>)>,
    docs: HashMap<DocId, AutoCommit>,
    visits: usize,
}

impl Phone {
    /// Records a visit on its next household: one automerge change, signed by its actor.
    fn record_visit(&mut self, now: Millis) -> Result<PushChange> {
        let (id, bytes) = &self.households[self.visits % self.households.len()];
        let id = *id;
        if !self.docs.contains_key(&id) {
            let loaded = doc::load(bytes)?.with_actor(self.actor.clone());
            self.docs.insert(id, loaded);
        }
        let document = self.docs.get_mut(&id).expect("inserted above");
        let mut file: HouseholdFile = doc::read(&*document)?;
        let visit_id = VisitId::new();
        let outcomes = [VisitOutcome::Met, VisitOutcome::NotHome, VisitOutcome::Met];
        file.visits.insert(
            visit_id,
            Visit {
                id: visit_id,
                visitor: self.user,
                visitor_name: self.user_name.clone(),
                at: now - 60_000,
                recorded_at: now,
                outcome: outcomes[self.visits % outcomes.len()],
                notes: format!("入户走访第{}次：老人身体状况良好，提醒注意用电安全", self.visits + 1),
                needs_found: Vec::new(),
                follow_up: None,
                residents_present: Vec::new(),
            },
        );
        doc::update(document, &file, "visit", now)?;
        let change = document.get_last_local_change().context("a visit makes a change")?;
        self.visits += 1;
        Ok(PushChange { doc: id, bytes: change.raw_bytes().to_vec() })
    }

    fn request(&self, changes: Vec<PushChange>) -> SyncRequest {
        SyncRequest {
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
        }
    }
}

fn hex_decode(hex: &str) -> Result<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        bail!("actor id {hex} is not hex");
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| anyhow!("actor id {hex}: {e}")))
        .collect()
}

fn http_client(concurrency: usize) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().pool_max_idle_per_host(concurrency).timeout(Duration::from_secs(120)).build()?)
}

/// What enrolling needs from the store, read before any async task runs (the PostgreSQL
/// client blocks): one new grid worker per phone with a first code, and each grid's start.
struct Enrolment {
    /// Phone number, its user (id, name, grid) and code.
    users: Vec<(usize, UserId, String, Scope, String)>,
    grids: HashMap<Scope, GridPhones>,
}

/// A grid's households (shared by its phones), head and roster version.
type GridPhones = (Arc<Vec<(DocId, Arc<Vec<u8>>)>>, u64, Option<u64>);

const SURNAMES: [&str; 16] =
    ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林"];
const GIVEN: [&str; 16] = [
    "秀英", "建国", "桂兰", "志强", "淑珍", "海燕", "卫东", "丽娟", "国强", "红梅", "文军", "晓燕", "德明", "玉兰",
    "春生", "静",
];

fn prepare_enrolment(admin: &Admin, settings: &Settings) -> Result<Enrolment> {
    // The demo's grids, as its grid workers hold them.
    let grid_scopes: Vec<Scope> = admin.grid_workers()?.iter().map(|w| w.scopes[0]).collect();
    // One user per phone (a code is for one phone; a user's new code replaces the last).
    let now = now_millis();
    let mut users = Vec::with_capacity(settings.devices);
    for i in 0..settings.devices {
        let scope = grid_scopes[i % grid_scopes.len()];
        let name = format!("{}{}", SURNAMES[i % SURNAMES.len()], GIVEN[(i / SURNAMES.len()) % GIVEN.len()]);
        let phone = format!("138{:08}", 10_000_000 + i);
        let (id, code) = admin.add_user(&name, &[scope], &phone, now)?;
        users.push((i, id, name, scope, code));
    }
    // Read after adding the users: the roster version the phones then hold.
    let mut grids = HashMap::new();
    for scope in grid_scopes {
        let start = admin.grid_start(scope)?;
        let households = start.households.into_iter().map(|(id, bytes)| (id, Arc::new(bytes))).collect();
        grids.insert(scope, (Arc::new(households), start.head, start.reference_version));
    }
    Ok(Enrolment { users, grids })
}

/// Enrols the phones through nginx, each starting at its grid's head.
async fn enrol_all(enrolment: Enrolment, url: &str) -> Result<Vec<Phone>> {
    let Enrolment { users, grids } = enrolment;
    progress(format!("enrolling {} phones in {} grids through nginx", users.len(), grids.len()));
    let started = Instant::now();
    let codes: Vec<(usize, String)> = users.iter().map(|(i, _, _, _, code)| (*i, code.clone())).collect();
    let client = http_client(ENROL_CONCURRENCY)?;
    let queue = Arc::new(Mutex::new(codes));
    let enrolled = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..ENROL_CONCURRENCY {
        let (queue, enrolled, client, url) = (queue.clone(), enrolled.clone(), client.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some((i, code)) = queue.lock().await.pop() else { return Ok::<(), anyhow::Error>(()) };
                let request = EnrollRequest { code, device_name: format!("网格员手机{}", i + 1) };
                let response = client.post(format!("{url}/v1/enroll")).json(&request).send().await?;
                let status = response.status();
                let body = response.bytes().await?;
                if !status.is_success() {
                    bail!("enrolment {i}: {status}: {}", String::from_utf8_lossy(&body));
                }
                let answer: EnrollResponse = serde_json::from_slice(&body)?;
                enrolled.lock().await.push((i, answer));
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let mut enrolled = std::mem::take(&mut *enrolled.lock().await);
    enrolled.sort_by_key(|(i, _)| *i);
    let mut phones = Vec::with_capacity(enrolled.len());
    let mut per_grid: HashMap<Scope, usize> = HashMap::new();
    for (i, answer) in enrolled {
        let (_, user, name, scope, _) = &users[i];
        let (households, head, reference_version) = grids.get(scope).context("grid loaded above")?;
        // The n-th phone of a grid takes households 2n, 2n+1 (mod the grid's count): phones
        // of one grid mostly edit different households and sometimes the same one.
        let nth = per_grid.entry(*scope).or_default();
        let picked = (0..HOUSEHOLDS_PER_PHONE)
            .map(|k| households[(*nth * HOUSEHOLDS_PER_PHONE + k) % households.len()].clone())
            .collect();
        *nth += 1;
        phones.push(Phone {
            token: answer.token,
            actor: ActorId::from(hex_decode(&answer.actor)?),
            user: *user,
            user_name: name.clone(),
            scope: *scope,
            cursor: Cursor::Seq { seq: *head },
            reference_version: *reference_version,
            households: picked,
            docs: HashMap::new(),
            visits: 0,
        });
    }
    progress(format!("enrolled {} phones in {:.1} s", phones.len(), started.elapsed().as_secs_f64()));
    Ok(phones)
}

/// Phase of a run: warming up, measuring, stopping.
const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    syncs: u64,
    requests: u64,
    pulled_items: u64,
    errors: u64,
    shown: Vec<String>,
}

/// One sync of one phone: push a new visit, then pull until the server has nothing more.
/// Returns (requests made, items pulled).
async fn sync_once(client: &reqwest::Client, url: &str, phone: &mut Phone) -> Result<(u64, u64)> {
    let change = phone.record_visit(now_millis())?;
    let mut changes = vec![change];
    let mut requests = 0;
    let mut pulled = 0;
    loop {
        let request = phone.request(std::mem::take(&mut changes));
        let pushed = request.changes.len();
        let response = client
            .post(format!("{url}/v1/sync"))
            .bearer_auth(&phone.token)
            .header(reqwest::header::CONTENT_TYPE, protocol::CONTENT_TYPE)
            .body(protocol::encode(&request))
            .send()
            .await
            .map_err(|e| anyhow!("sending: {e}"))?;
        requests += 1;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| anyhow!("reading the answer: {e}"))?;
        if !status.is_success() {
            bail!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]));
        }
        let response: SyncResponse = protocol::decode(&body).map_err(|e| anyhow!("decoding the answer: {e}"))?;
        if response.acks.len() != pushed {
            bail!("{} acks for {pushed} changes", response.acks.len());
        }
        if let Some(refused) = response.acks.iter().find(|a| !matches!(a.status, AckStatus::Accepted)) {
            bail!("change not accepted: {:?}", refused.status);
        }
        pulled += response.items.len() as u64;
        if let Some(cursor) = response.cursors.get(&phone.scope) {
            phone.cursor = *cursor;
        }
        if let Some(reference) = &response.reference {
            phone.reference_version = Some(reference.version);
        }
        if !response.more {
            return Ok((requests, pulled));
        }
        if requests > 1_000 {
            bail!("the server kept saying `more` for 1,000 pages");
        }
    }
}

/// Figures of one configuration.
struct Row {
    name: String,
    processes: usize,
    syncs: u64,
    seconds: f64,
    requests: u64,
    pulled_items: u64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    errors: u64,
    /// CPU seconds over the measured window.
    server_cpu: f64,
    postgres_cpu: f64,
    nginx_cpu: f64,
    client_cpu: f64,
    /// The largest `VmHWM` among the server processes, bytes.
    server_peak: u64,
}

/// CPU ticks per pid, for the pids given and (for PostgreSQL) the postmaster's children.
fn cpu_ticks(pids: &[u32]) -> HashMap<u32, u64> {
    pids.iter().filter_map(|pid| Some((*pid, proc_stat(*pid)?.cpu_ticks))).collect()
}

fn postgres_pids(backend: &Backend) -> Vec<u32> {
    backend.postmaster_pid().map(|p| std::iter::once(p).chain(children_of(p)).collect()).unwrap_or_default()
}

/// Ticks used between two snapshots (processes started in between count from zero), seconds.
fn cpu_between(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> f64 {
    let ticks: u64 = after.iter().map(|(pid, t)| t.saturating_sub(before.get(pid).copied().unwrap_or(0))).sum();
    ticks as f64 / clock_ticks_per_second() as f64
}

async fn measure(
    name: String,
    backend: &Backend,
    district: &District,
    phones: Vec<Phone>,
    settings: &Settings,
) -> Result<(Row, Vec<Phone>)> {
    let url = district.url();
    let client = http_client(settings.concurrency)?;
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let busy = Arc::new(AtomicUsize::new(0));
    // Task t drives phones t, t + C, t + 2C, ...: one sync per phone at a time.
    let count = phones.len();
    let concurrency = settings.concurrency.min(count);
    let mut groups: Vec<Vec<(usize, Phone)>> = (0..concurrency).map(|_| Vec::new()).collect();
    for (i, phone) in phones.into_iter().enumerate() {
        groups[i % concurrency].push((i, phone));
    }
    progress(format!("{name}: warming up for {} s", settings.warmup));
    let mut tasks = Vec::new();
    for mut group in groups {
        let (client, url, phase, busy) = (client.clone(), url.clone(), phase.clone(), busy.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut next = 0;
            busy.fetch_add(1, Ordering::SeqCst);
            while phase.load(Ordering::SeqCst) != STOP {
                let slot = next % group.len();
                let (_, phone) = &mut group[slot];
                next += 1;
                let started_in = phase.load(Ordering::SeqCst);
                let started = Instant::now();
                let outcome = sync_once(&client, &url, phone).await;
                let elapsed = started.elapsed();
                let counted = started_in == MEASURE && phase.load(Ordering::SeqCst) == MEASURE;
                match outcome {
                    Ok((requests, pulled)) if counted => {
                        tally.latencies.push(elapsed);
                        tally.syncs += 1;
                        tally.requests += requests;
                        tally.pulled_items += pulled;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // Errors count whenever they happen: there should be none at all.
                        tally.errors += 1;
                        if tally.shown.len() < ERRORS_SHOWN {
                            tally.shown.push(format!("{e:#}"));
                        }
                    }
                }
            }
            busy.fetch_sub(1, Ordering::SeqCst);
            (tally, group)
        }));
    }
    tokio::time::sleep(Duration::from_secs(settings.warmup)).await;

    let server_pids = district.server_pids();
    let nginx_pids = district.nginx.pids();
    let pg_pids = postgres_pids(backend);
    let self_pid = std::process::id();
    let before = (cpu_ticks(&server_pids), cpu_ticks(&pg_pids), cpu_ticks(&nginx_pids), cpu_ticks(&[self_pid]));
    phase.store(MEASURE, Ordering::SeqCst);
    let window = Instant::now();
    progress(format!("{name}: measuring for {} s", settings.seconds));
    tokio::time::sleep(Duration::from_secs(settings.seconds)).await;
    phase.store(STOP, Ordering::SeqCst);
    let seconds = window.elapsed().as_secs_f64();
    let after = (
        cpu_ticks(&server_pids),
        // Backends started during the window count too.
        cpu_ticks(&postgres_pids(backend)),
        cpu_ticks(&nginx_pids),
        cpu_ticks(&[self_pid]),
    );
    let server_peak = server_pids.iter().filter_map(|pid| peak_rss(*pid)).max().unwrap_or(0);

    let mut total = Tally::default();
    let mut phones: Vec<(usize, Phone)> = Vec::with_capacity(count);
    for task in tasks {
        let (tally, group) = task.await?;
        total.latencies.extend(tally.latencies);
        total.syncs += tally.syncs;
        total.requests += tally.requests;
        total.pulled_items += tally.pulled_items;
        total.errors += tally.errors;
        total.shown.extend(tally.shown);
        phones.extend(group);
    }
    phones.sort_by_key(|(i, _)| *i);
    let phones = phones.into_iter().map(|(_, p)| p).collect();
    if total.errors > 0 {
        eprintln!("{name}: {} errors; the first ones:", total.errors);
        for e in total.shown.iter().take(ERRORS_SHOWN * 2) {
            eprintln!("  {e}");
        }
    }
    total.latencies.sort();
    let at = |q: f64| -> Duration {
        let n = total.latencies.len();
        if n == 0 { Duration::ZERO } else { total.latencies[((q * n as f64).ceil() as usize).clamp(1, n) - 1] }
    };
    let row = Row {
        name: name.clone(),
        processes: server_pids.len(),
        syncs: total.syncs,
        seconds,
        requests: total.requests,
        pulled_items: total.pulled_items,
        p50: at(0.5),
        p99: at(0.99),
        max: total.latencies.last().copied().unwrap_or_default(),
        errors: total.errors,
        server_cpu: cpu_between(&before.0, &after.0),
        postgres_cpu: cpu_between(&before.1, &after.1),
        nginx_cpu: cpu_between(&before.2, &after.2),
        client_cpu: cpu_between(&before.3, &after.3),
        server_peak,
    };
    progress(format!(
        "{name}: {} syncs in {:.1} s = {:.0}/s, p50 {}, p99 {}, {} errors",
        row.syncs,
        row.seconds,
        row.syncs as f64 / row.seconds,
        ms(row.p50),
        ms(row.p99),
        row.errors
    ));
    Ok((row, phones))
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100.0 { format!("{ms:.0} ms") } else { format!("{ms:.1} ms") }
}

fn print_table(rows: &[Row], settings: &Settings) {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!("\n### District load: {} phones, `{}` demo\n", settings.devices, settings.demo);
    println!(
        "{cores} logical cores shared by this client, nginx ({} workers), the servers and PostgreSQL; \
         {} syncs in flight; {} s measured after {} s of warm-up per configuration.\n",
        nginx_options().workers,
        settings.concurrency,
        settings.seconds,
        settings.warmup
    );
    let header = [
        "configuration",
        "syncs/s",
        "p50",
        "p99",
        "max",
        "errors",
        "requests/sync",
        "pulled items/sync",
        "server CPU ms/sync",
        "PostgreSQL CPU ms/sync",
        "nginx CPU ms/sync",
        "client CPU ms/sync",
        "CPU busy (of all cores)",
        "server VmHWM (largest process)",
    ];
    println!("| {} |", header.join(" | "));
    println!("|{}|", header.iter().map(|_| "---").collect::<Vec<_>>().join("|"));
    for r in rows {
        let per_sync = |cpu: f64| {
            if r.syncs == 0 { "-".to_string() } else { format!("{:.2}", cpu * 1000.0 / r.syncs as f64) }
        };
        let busy = (r.server_cpu + r.postgres_cpu + r.nginx_cpu + r.client_cpu) / (r.seconds * cores.max(1) as f64);
        let divide = |n: u64| if r.syncs == 0 { 0.0 } else { n as f64 / r.syncs as f64 };
        println!(
            "| {} | {:.0} | {} | {} | {} | {} | {:.2} | {:.1} | {} | {} | {} | {} | {:.0}% | {:.1} MiB |",
            r.name,
            r.syncs as f64 / r.seconds,
            ms(r.p50),
            ms(r.p99),
            ms(r.max),
            r.errors,
            divide(r.requests),
            divide(r.pulled_items),
            per_sync(r.server_cpu),
            if r.postgres_cpu == 0.0 && r.processes <= 1 && r.name.starts_with("SQLite") {
                "-".into()
            } else {
                per_sync(r.postgres_cpu)
            },
            per_sync(r.nginx_cpu),
            per_sync(r.client_cpu),
            busy * 100.0,
            r.server_peak as f64 / 1_048_576.0,
        );
    }
    println!();
}
