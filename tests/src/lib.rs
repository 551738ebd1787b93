//! Shared helpers for the end-to-end scenarios in `tests/tests/`: a real `gridlink-server`
//! process on 127.0.0.1 (demo data, admin commands, SIGKILL and restart on the same port),
//! enrolled [`gridlink_client::Client`]s with one data directory each, and a fault-injecting
//! TCP proxy that cuts connections at seeded random points of requests and responses.
//!
//! The store behind the server is chosen by `GRIDLINK_TEST_BACKEND`: unset or `sqlite` for the
//! embedded store (`--data DIR`), `postgres` for a database in a throwaway PostgreSQL cluster
//! (`--database URL`, [`TestDatabase`]). The scenario files (sync, the admin commands, the
//! console and the e-link in a browser) run on both (`scripts/test.sh` runs them twice); those
//! that need the SQLite file itself pin [`Backend::Sqlite`].
//!
//! The server binary is built with `cargo build -p gridlink-sync-server` on first use (the
//! tests need the real executable, which a library dependency does not provide) and found in
//! the target directory next to the test executable.

pub mod admin;
pub mod district;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gridlink_client::Client;
use gridlink_client::sync::RetryPolicy;
use gridlink_sync_server::SqliteStore;
use gridlink_sync_server::store::postgres::cluster::TestDatabase;
use gridlink_sync_server::store::{AnyStore, PgStore};
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The target directory holding this test executable (`target/debug`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test>-<hash> -> target/debug
    exe.parent().and_then(Path::parent).expect("target directory").to_path_buf()
}

/// `--release` when running from the release target directory (benchmarks, examples).
fn release_flag() -> Option<&'static str> {
    (target_dir().file_name().is_some_and(|n| n == "release")).then_some("--release")
}

/// Path of the `gridlink-server` binary, building it once if needed.
pub fn server_binary() -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let path = target_dir().join(format!("gridlink-server{}", std::env::consts::EXE_SUFFIX));
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "gridlink-sync-server", "--bin", "gridlink-server"])
            .args(release_flag())
            .stdout(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) && !path.exists() {
            panic!("cannot build gridlink-server; run `cargo build -p gridlink-sync-server` first");
        }
    });
    assert!(path.exists(), "{} is missing; run `cargo build -p gridlink-sync-server`", path.display());
    path
}

/// Path of the `gridlink` CLI binary, building it once if needed.
pub fn cli_binary() -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let path = target_dir().join(format!("gridlink{}", std::env::consts::EXE_SUFFIX));
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "gridlink-cli", "--bin", "gridlink"])
            .args(release_flag())
            .stdout(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) && !path.exists() {
            panic!("cannot build gridlink; run `cargo build -p gridlink-cli` first");
        }
    });
    assert!(path.exists(), "{} is missing; run `cargo build -p gridlink-cli`", path.display());
    path
}

/// Output of one `gridlink --data DIR ARGS...` run.
#[derive(Debug)]
pub struct CliRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl CliRun {
    /// Stdout parsed as JSON; panics with both streams when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): stdout {:?} stderr {:?}", self.stdout, self.stderr))
    }
}

/// Runs the `gridlink` CLI on a data directory.
pub fn cli(data: &Path, args: &[&str]) -> CliRun {
    cli_env(data, &[], args)
}

/// [`cli`] with extra environment variables (`GRIDLINK_PIN`, `GRIDLINK_NEW_PIN`, ...).
pub fn cli_env(data: &Path, env: &[(&str, &str)], args: &[&str]) -> CliRun {
    let mut command = Command::new(cli_binary());
    command.arg("--data").arg(data).args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().expect("run gridlink");
    CliRun {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Which store a test server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite in a temporary data directory (`--data DIR`).
    Sqlite,
    /// A fresh database in a throwaway PostgreSQL cluster (`--database URL`).
    Postgres,
}

impl Backend {
    /// From `GRIDLINK_TEST_BACKEND` (`sqlite`, the default, or `postgres`). Any other value is a
    /// mistake in the test command, so it panics rather than silently testing SQLite.
    pub fn from_env() -> Backend {
        match std::env::var("GRIDLINK_TEST_BACKEND").as_deref() {
            Err(_) | Ok("") | Ok("sqlite") => Backend::Sqlite,
            Ok("postgres") => Backend::Postgres,
            Ok(other) => panic!("GRIDLINK_TEST_BACKEND={other:?}: expected sqlite or postgres"),
        }
    }
}

/// A `gridlink-server` process serving the demo dataset from a data directory or, with
/// `GRIDLINK_TEST_BACKEND=postgres`, from a throwaway PostgreSQL database.
pub struct Server {
    /// The data directory (SQLite); on PostgreSQL an empty directory for scratch files.
    pub data: tempfile::TempDir,
    /// The database on PostgreSQL; dropped (with the cluster when last) after the process.
    database: Option<TestDatabase>,
    child: Option<Child>,
    pub addr: SocketAddr,
    /// Extra `serve` arguments (e.g. `--tls-cert FILE --tls-key FILE`), kept for restarts.
    serve_args: Vec<String>,
    /// Whether it speaks HTTPS (`listening on https://...`).
    https: bool,
}

impl Server {
    /// `init --demo small`, then `serve --listen 127.0.0.1:0`.
    pub fn start_demo() -> anyhow::Result<Server> {
        Server::start_with_demo("small")
    }

    /// `init --demo SIZE` (small or street), then `serve --listen 127.0.0.1:0`.
    pub fn start_with_demo(size: &str) -> anyhow::Result<Server> {
        Server::start_demo_serving(size, &[])
    }

    /// `init --demo SIZE`, then `serve --listen 127.0.0.1:0 SERVE_ARGS...` (for instance
    /// `--tls-cert FILE --tls-key FILE`: the server then speaks HTTPS and [`Server::url`]
    /// starts with `https://`).
    pub fn start_demo_serving(size: &str, serve_args: &[&str]) -> anyhow::Result<Server> {
        Server::start_on(Backend::from_env(), size, serve_args)
    }

    /// `init --demo SIZE` then `serve` on the given backend, whatever the environment says:
    /// for the tests that need the SQLite file itself.
    pub fn start_on(backend: Backend, size: &str, serve_args: &[&str]) -> anyhow::Result<Server> {
        let data = tempfile::tempdir()?;
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::new().map_err(|e| anyhow::anyhow!("PostgreSQL cluster: {e}"))?),
        };
        let store = store_args(data.path(), database.as_ref());
        let out = Command::new(server_binary()).arg("init").args(&store).args(["--demo", size]).output()?;
        if !out.status.success() {
            bail!("init failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let serve_args: Vec<String> = serve_args.iter().map(|a| a.to_string()).collect();
        let (child, addr, https) = spawn_serve(&store, "127.0.0.1:0".parse()?, &serve_args)?;
        Ok(Server { data, database, child: Some(child), addr, serve_args, https })
    }

    /// Which store this server runs on.
    pub fn backend(&self) -> Backend {
        if self.database.is_some() { Backend::Postgres } else { Backend::Sqlite }
    }

    /// `--data DIR` or `--database URL`, for any `gridlink-server` command on this store.
    pub fn store_args(&self) -> Vec<std::ffi::OsString> {
        store_args(self.data.path(), self.database.as_ref())
    }

    pub fn url(&self) -> String {
        format!("{}://{}", if self.https { "https" } else { "http" }, self.addr)
    }

    /// The server's store, opened in this process to read what the server wrote. Blocking on
    /// PostgreSQL: call it (and drop it) off the async threads.
    pub fn open_store(&self) -> anyhow::Result<OpenedStore> {
        Ok(match &self.database {
            Some(database) => OpenedStore::Postgres(Box::new(PgStore::open(&database.url)?)),
            None => OpenedStore::Sqlite(SqliteStore::open(self.data.path())?),
        })
    }

    /// Restarts on the same address with other `serve` arguments (another certificate).
    pub fn restart_serving(&mut self, serve_args: &[&str]) -> anyhow::Result<()> {
        self.serve_args = serve_args.iter().map(|a| a.to_string()).collect();
        self.restart()
    }

    /// Runs an admin command against the data directory (while serving) and returns stdout.
    pub fn admin(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut command = Command::new(server_binary());
        command.args(&args[..args.len().min(2)]);
        command.args(self.store_args());
        command.args(args.iter().skip(2));
        let out = command.output()?;
        if !out.status.success() {
            bail!("gridlink-server {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Users on the roster, as `user list --json` prints them.
    pub fn users(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        Ok(serde_json::from_str(&self.admin(&["user", "list", "--json"])?)?)
    }

    /// The first user with `role`: (id, first scope).
    pub fn user_with_role(&self, role: &str, index: usize) -> anyhow::Result<(String, String)> {
        let users = self.users()?;
        let user = users
            .iter()
            .filter(|u| u["role"] == role)
            .nth(index)
            .with_context(|| format!("no {role} number {index} on the demo roster"))?;
        let id = user["id"].as_str().context("user id")?.to_string();
        let scope = user["scopes"][0].as_str().context("user scope")?.to_string();
        Ok((id, scope))
    }

    /// A fresh enrolment code for a user (last line of `user code`).
    pub fn code_for(&self, user: &str) -> anyhow::Result<String> {
        last_line(&self.admin(&["user", "code", "--user", user])?)
    }

    /// Adds a user and returns (user id, enrolment code).
    pub fn add_user(&self, name: &str, role: &str, scope: &str) -> anyhow::Result<(String, String)> {
        let out = self.admin(&["user", "add", "--name", name, "--role", role, "--scope", scope])?;
        let code = last_line(&out)?;
        let users = self.users()?;
        let id = users
            .iter()
            .find(|u| u["name"] == name)
            .and_then(|u| u["id"].as_str())
            .context("new user in the list")?
            .to_string();
        Ok((id, code))
    }

    /// SIGKILL: no graceful shutdown, like a power cut.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts serving again on the same address (after [`Server::kill`]).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match spawn_serve(&self.store_args(), self.addr, &self.serve_args) {
                Ok((child, _, https)) => {
                    self.child = Some(child);
                    self.https = https;
                    return Ok(());
                }
                Err(e) if Instant::now() < deadline => {
                    eprintln!("restart: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn last_line(text: &str) -> anyhow::Result<String> {
    Ok(text.lines().rev().find(|l| !l.trim().is_empty()).context("empty output")?.trim().to_string())
}

/// A [`Server`]'s store opened by the test itself ([`Server::open_store`]).
pub enum OpenedStore {
    Sqlite(SqliteStore),
    Postgres(Box<PgStore>),
}

impl OpenedStore {
    pub fn any(&self) -> AnyStore<'_> {
        match self {
            OpenedStore::Sqlite(store) => AnyStore::Sqlite(store),
            OpenedStore::Postgres(store) => AnyStore::Postgres(store),
        }
    }
}

fn store_args(data: &Path, database: Option<&TestDatabase>) -> Vec<std::ffi::OsString> {
    match database {
        Some(database) => vec!["--database".into(), database.url.clone().into()],
        None => vec!["--data".into(), data.into()],
    }
}

fn spawn_serve(
    store: &[std::ffi::OsString],
    listen: SocketAddr,
    extra: &[String],
) -> anyhow::Result<(Child, SocketAddr, bool)> {
    let mut child = Command::new(server_binary())
        .arg("serve")
        .args(store)
        .args(["--listen", &listen.to_string()])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    // The first line is `listening on http://IP:PORT` (https with a certificate); the process
    // exits if it cannot bind.
    let first = lines.next().transpose()?.unwrap_or_default();
    let (url, https) = match (first.strip_prefix("listening on http://"), first.strip_prefix("listening on https://")) {
        (Some(url), _) => (url, false),
        (None, Some(url)) => (url, true),
        (None, None) => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("server did not start: {first:?}");
        }
    };
    let addr: SocketAddr = url.trim().parse()?;
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok((child, addr, https))
}

/// Retry settings for tests: quick, so cut connections cost milliseconds, not seconds.
pub fn quick_retries(attempts: u32) -> RetryPolicy {
    RetryPolicy { attempts, base_delay: Duration::from_millis(5), max_delay: Duration::from_millis(50) }
}

/// Syncs until a round succeeds, retrying what a flaky moment may fail (a server restarting,
/// a connection refused), within two minutes; any other error ends the test.
pub async fn sync_until_ok(client: &Client, what: &'static str) -> anyhow::Result<gridlink_client::SyncReport> {
    let bound = Bound::new(what, Duration::from_secs(120));
    let mut last = None;
    for _ in 0..50 {
        bound.check();
        match client.sync().await {
            Ok(report) => return Ok(report),
            Err(e) if e.is_retryable() => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(anyhow::anyhow!("{what}: sync kept failing: {last:?}"))
}

/// Opens a client in `dir`, enrols it for `user` and runs the first sync.
pub async fn enrolled(server: &Server, url: &str, dir: &Path, user: &str, device: &str) -> anyhow::Result<Client> {
    let code = server.code_for(user)?;
    let client = Client::open(dir)?;
    client.set_retry_policy(quick_retries(4));
    client.enroll(url, &code, device).await?;
    client.sync().await?;
    Ok(client)
}

/// The deterministic export as one string.
pub fn export(client: &Client) -> String {
    serde_json::to_string_pretty(&client.export().expect("export")).expect("json")
}

/// Panics when a scenario loop runs past its safety bound (a hang guard, not a timing test).
pub struct Bound {
    deadline: Instant,
    what: &'static str,
}

impl Bound {
    pub fn new(what: &'static str, limit: Duration) -> Bound {
        Bound { deadline: Instant::now() + limit, what }
    }
    pub fn check(&self) {
        assert!(Instant::now() < self.deadline, "{} did not finish within its safety bound", self.what);
    }
}

/// A TCP proxy on 127.0.0.1 that forwards to `upstream` and, while faults are enabled, cuts
/// the connection at seeded random points: each chunk read in either direction (request or
/// response) is, with `cut_probability`, forwarded only up to a random offset and then both
/// sides are dropped. Deciding per chunk rather than per connection makes kept-alive
/// connections fail mid-request and mid-response too.
pub struct FaultProxy {
    pub addr: SocketAddr,
    cuts: Arc<AtomicUsize>,
    /// Request bytes forwarded so far, across connections.
    pub request_bytes: Arc<AtomicU64>,
    enabled: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

type SharedRng = Arc<std::sync::Mutex<rand::rngs::StdRng>>;

#[derive(Clone)]
struct Faults {
    enabled: Arc<AtomicBool>,
    rng: SharedRng,
    probability: f64,
    cuts: Arc<AtomicUsize>,
}

impl Faults {
    /// How many bytes of an `n`-byte chunk to forward before cutting, if this chunk is cut.
    fn cut_point(&self, n: usize) -> Option<usize> {
        if !self.enabled.load(Ordering::SeqCst) {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        rng.random_bool(self.probability).then(|| rng.random_range(0..n))
    }
}

impl FaultProxy {
    pub async fn start(upstream: SocketAddr, seed: u64, cut_probability: f64) -> anyhow::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let faults = Faults {
            enabled: Arc::new(AtomicBool::new(false)),
            rng: Arc::new(std::sync::Mutex::new(rand::rngs::StdRng::seed_from_u64(seed))),
            probability: cut_probability,
            cuts: Arc::new(AtomicUsize::new(0)),
        };
        let request_bytes = Arc::new(AtomicU64::new(0));
        let (cuts, enabled) = (faults.cuts.clone(), faults.enabled.clone());
        let task = {
            let request_bytes = request_bytes.clone();
            tokio::spawn(async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    let (faults, request_bytes) = (faults.clone(), request_bytes.clone());
                    tokio::spawn(async move {
                        let _ = proxy_connection(inbound, upstream, faults, request_bytes).await;
                    });
                }
            })
        };
        Ok(FaultProxy { addr, cuts, request_bytes, enabled, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_faults(&self, on: bool) {
        self.enabled.store(on, Ordering::SeqCst);
    }

    pub fn cut_count(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn proxy_connection(
    inbound: TcpStream,
    upstream: SocketAddr,
    faults: Faults,
    request_bytes: Arc<AtomicU64>,
) -> std::io::Result<()> {
    let outbound = TcpStream::connect(upstream).await?;
    let (mut in_read, mut in_write) = inbound.into_split();
    let (mut out_read, mut out_write) = outbound.into_split();
    let up_faults = faults.clone();
    let cuts = faults.cuts.clone();
    let upstream_dir =
        async move { copy_with_faults(&mut in_read, &mut out_write, &up_faults, Some(request_bytes)).await };
    let downstream_dir = async move { copy_with_faults(&mut out_read, &mut in_write, &faults, None).await };
    // Whichever direction ends (EOF or cut) ends the connection: both halves drop here.
    let cut = tokio::select! {
        r = upstream_dir => r?,
        r = downstream_dir => r?,
    };
    if cut {
        cuts.fetch_add(1, Ordering::SeqCst);
    }
    Ok(())
}

/// Copies until EOF (false) or until a cut (true).
async fn copy_with_faults(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    faults: &Faults,
    counter: Option<Arc<AtomicU64>>,
) -> std::io::Result<bool> {
    let mut buf = vec![0u8; 8192];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            let _ = to.shutdown().await;
            return Ok(false);
        }
        let cut = faults.cut_point(n);
        let forward = cut.unwrap_or(n);
        to.write_all(&buf[..forward]).await?;
        if let Some(counter) = &counter {
            counter.fetch_add(forward as u64, Ordering::SeqCst);
        }
        if cut.is_some() {
            return Ok(true);
        }
    }
}
