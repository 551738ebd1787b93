//! A district on one machine: a store (a throwaway PostgreSQL database, or an embedded SQLite
//! data directory), N `gridlink-server serve` processes over it, and an nginx in front that
//! spreads requests round-robin over them. Used by the failover test (`tests/failover.rs`)
//! and the load benchmark (`benches/district.rs`).
//!
//! Everything runs on 127.0.0.1 and lives in temporary directories: nginx gets its own prefix
//! directory holding its config, pid file, logs and temp paths, so nothing touches root-owned
//! system paths. Server processes can be SIGKILLed and restarted on the same port. Dropping a
//! [`District`] stops nginx and kills the servers (also while a panicking test unwinds);
//! dropping the [`Backend`] removes the database or data directory.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gridlink_sync_server::store::postgres::cluster::TestDatabase;

use crate::server_binary;

/// Where the served data lives.
pub enum Backend {
    /// A database of its own in a throwaway cluster (removed when the last holder drops it).
    Postgres(TestDatabase),
    /// An embedded SQLite data directory (`serve --data DIR`): one process only.
    Sqlite(tempfile::TempDir),
}

impl Backend {
    /// A fresh PostgreSQL database, initialised by `gridlink-server init --database URL`
    /// (with `--demo SIZE` when given).
    pub fn postgres(demo: Option<&str>) -> anyhow::Result<Backend> {
        let db = TestDatabase::new().map_err(|e| anyhow::anyhow!("a throwaway PostgreSQL cluster: {e}"))?;
        let backend = Backend::Postgres(db);
        backend.init(demo)?;
        Ok(backend)
    }

    /// A fresh SQLite data directory, initialised by `gridlink-server init --data DIR`.
    pub fn sqlite(demo: Option<&str>) -> anyhow::Result<Backend> {
        let backend = Backend::Sqlite(tempfile::tempdir()?);
        backend.init(demo)?;
        Ok(backend)
    }

    fn init(&self, demo: Option<&str>) -> anyhow::Result<String> {
        let mut args = vec!["init"];
        if let Some(size) = demo {
            args.extend(["--demo", size]);
        }
        self.admin(&args)
    }

    /// `--database URL` or `--data DIR`.
    pub fn store_args(&self) -> Vec<String> {
        match self {
            Backend::Postgres(db) => vec!["--database".into(), db.url.clone()],
            Backend::Sqlite(dir) => vec!["--data".into(), dir.path().display().to_string()],
        }
    }

    /// The PostgreSQL URL, if this is PostgreSQL.
    pub fn database_url(&self) -> Option<&str> {
        match self {
            Backend::Postgres(db) => Some(&db.url),
            Backend::Sqlite(_) => None,
        }
    }

    /// The SQLite data directory, if this is SQLite.
    pub fn data_dir(&self) -> Option<&Path> {
        match self {
            Backend::Postgres(_) => None,
            Backend::Sqlite(dir) => Some(dir.path()),
        }
    }

    /// The postmaster's pid (from `postmaster.pid` in the cluster's data directory), so a
    /// benchmark can add up the CPU time of PostgreSQL's processes.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let url = self.database_url()?;
        // The cluster's URL names its socket directory (`?host=DIR&...`); the data directory
        // is `DIR/data` (see `store::postgres::cluster`).
        let host = url.split(['?', '&']).find_map(|part| part.strip_prefix("host="))?;
        let pid_file = std::fs::read_to_string(Path::new(host).join("data").join("postmaster.pid")).ok()?;
        pid_file.lines().next()?.trim().parse().ok()
    }

    /// Runs an admin command: `gridlink-server WORDS... <store args> REST...`, where WORDS are
    /// the leading arguments that do not start with `--` (`user code`, `device list`). Returns
    /// stdout; fails with stderr.
    pub fn admin(&self, args: &[&str]) -> anyhow::Result<String> {
        let words = args.iter().take_while(|a| !a.starts_with("--")).count();
        let out = Command::new(server_binary())
            .args(&args[..words])
            .args(self.store_args())
            .args(&args[words..])
            .env("RUST_LOG", "warn")
            .output()?;
        if !out.status.success() {
            bail!("gridlink-server {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// A fresh enrolment code for a user (the last line of `user code`).
    pub fn code_for(&self, user: &str) -> anyhow::Result<String> {
        let out = self.admin(&["user", "code", "--user", user])?;
        Ok(out.lines().rev().find(|l| !l.trim().is_empty()).context("empty `user code` output")?.trim().to_string())
    }

    /// Users on the roster, as `user list --json` prints them.
    pub fn users(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        Ok(serde_json::from_str(&self.admin(&["user", "list", "--json"])?)?)
    }
}

/// One `gridlink-server serve <store args> --listen ADDR` process; SIGKILLed on drop.
pub struct ServeProcess {
    child: Option<Child>,
    pub addr: SocketAddr,
    store_args: Vec<String>,
}

impl ServeProcess {
    /// Starts on a free port of 127.0.0.1.
    pub fn start(store_args: &[String]) -> anyhow::Result<ServeProcess> {
        let (child, addr) = spawn_serve(store_args, "127.0.0.1:0".parse()?)?;
        Ok(ServeProcess { child: Some(child), addr, store_args: store_args.to_vec() })
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL: no graceful shutdown, like a power cut or the OOM killer.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same address (after [`ServeProcess::kill`]); retries while the
    /// port is still held for up to 30 s.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match spawn_serve(&self.store_args, self.addr) {
                Ok((child, _)) => {
                    self.child = Some(child);
                    return Ok(());
                }
                Err(e) if Instant::now() < deadline => {
                    eprintln!("restarting the server on {}: {e}; retrying", self.addr);
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_serve(store_args: &[String], listen: SocketAddr) -> anyhow::Result<(Child, SocketAddr)> {
    let mut child = Command::new(server_binary())
        .arg("serve")
        .args(store_args)
        .args(["--listen", &listen.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    // The first line is `listening on http://IP:PORT`; the process exits if it cannot bind.
    let first = lines.next().transpose()?.unwrap_or_default();
    let Some(addr) = first.strip_prefix("listening on http://") else {
        let _ = child.kill();
        let _ = child.wait();
        bail!("server did not start: {first:?}");
    };
    let addr: SocketAddr = addr.trim().parse()?;
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok((child, addr))
}

/// How nginx is set up.
#[derive(Clone, Debug)]
pub struct NginxOptions {
    /// `worker_processes` (the benchmark uses one per core).
    pub workers: usize,
    /// Write an access log line per request (`$upstream_addr` and `$upstream_status` in it).
    pub access_log: bool,
}

impl Default for NginxOptions {
    fn default() -> Self {
        NginxOptions { workers: 1, access_log: true }
    }
}

/// nginx in the foreground (`daemon off`) with its own prefix directory; stopped on drop.
pub struct Nginx {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub addr: SocketAddr,
}

/// Path of the nginx binary (Debian's `nginx-light`, installed by `scripts/setup.sh`).
pub fn nginx_binary() -> anyhow::Result<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .context("nginx is not installed (Debian's nginx-light); run scripts/setup.sh")
}

impl Nginx {
    /// Starts nginx on a free port of 127.0.0.1, balancing round-robin over `upstreams`.
    pub fn start(upstreams: &[SocketAddr], options: &NginxOptions) -> anyhow::Result<Nginx> {
        if upstreams.is_empty() {
            bail!("nginx needs at least one upstream server");
        }
        let binary = nginx_binary()?;
        let dir = tempfile::Builder::new().prefix("gridlink-nginx").tempdir()?;
        if is_root(dir.path()) {
            // The master runs as root and its workers as `nobody` (nginx's default): they must
            // reach the temp paths below. Nothing in this directory is secret.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        }
        // A free port: bind, note it, release it; another process may take it in between,
        // so a failed bind is retried on a new port.
        let mut last_error = String::new();
        for _ in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
            std::fs::write(dir.path().join("nginx.conf"), config(dir.path(), addr, upstreams, options))?;
            let mut child = Command::new(&binary)
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(dir.path().join("nginx.conf"))
                .args(["-g", "daemon off;"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("starting {}", binary.display()))?;
            match wait_listening(&mut child, addr) {
                Ok(()) => return Ok(Nginx { dir, child: Some(child), addr }),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error =
                        format!("{e}: {}", std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default());
                }
            }
        }
        bail!("nginx did not start: {last_error}")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The master's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The master and its workers (children of the master, from `/proc`).
    pub fn pids(&self) -> Vec<u32> {
        self.pid().map(|master| std::iter::once(master).chain(children_of(master)).collect()).unwrap_or_default()
    }

    /// The prefix directory (config, pid file, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The access log: one line per request, `STATUS UPSTREAM_ADDRS UPSTREAM_STATUSES
    /// SECONDS "REQUEST"` (several upstreams, comma-separated, when nginx passed a request on
    /// to the next server).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Fast shutdown (`nginx -s stop`: SIGTERM to the master named in the pid file, which
    /// stops its workers), then waits. SIGKILL would orphan the workers, which keep the port.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let stopped = nginx_binary().and_then(|nginx| {
                Ok(Command::new(nginx)
                    .arg("-p")
                    .arg(self.dir.path())
                    .arg("-c")
                    .arg(self.dir.path().join("nginx.conf"))
                    .args(["-s", "stop"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()?)
            });
            if !matches!(stopped, Ok(s) if s.success()) {
                let _ = child.kill();
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether we run as root: the owner of a directory we just created.
fn is_root(created: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(created).is_ok_and(|m| m.uid() == 0)
}

/// Waits until nginx accepts connections on `addr`, or fails if it exited (bind error).
fn wait_listening(child: &mut Child, addr: SocketAddr) -> anyhow::Result<()> {
    for _ in 0..500 {
        if let Some(status) = child.try_wait()? {
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
            }
            bail!("nginx exited with {status}: {}", stderr.trim());
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("nginx is not listening on {addr}")
}

/// Child processes of `pid`, from `/proc/*/stat`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| proc_stat(*child).is_some_and(|s| s.ppid == pid))
        .collect()
}

/// The fields of `/proc/PID/stat` a benchmark needs.
#[derive(Clone, Copy, Debug)]
pub struct ProcStat {
    pub ppid: u32,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
}

/// `/proc/PID/stat`, or `None` if the process is gone.
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the name: state(3) ppid(4) ... utime(14) stime(15), numbered from 1 with pid and name.
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(ProcStat { ppid: field(4)? as u32, cpu_ticks: field(14)? + field(15)? })
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux), to turn
/// [`ProcStat::cpu_ticks`] into time.
pub fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .filter(|ticks| *ticks > 0)
            .unwrap_or(100)
    })
}

/// The peak resident set (`VmHWM` of `/proc/PID/status`) in bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The nginx configuration: everything inside `dir`, one round-robin upstream.
fn config(dir: &Path, listen: SocketAddr, upstreams: &[SocketAddr], options: &NginxOptions) -> String {
    let d = dir.display();
    let servers: String = upstreams
        .iter()
        // After a failed attempt a server is left out for 2 s, then tried again: a restarted
        // process gets traffic again within seconds.
        .map(|a| format!("        server {a} max_fails=1 fail_timeout=2s;\n"))
        .collect();
    let access_log =
        if options.access_log { format!("access_log {d}/access.log upstreams;") } else { "access_log off;".into() };
    format!(
        r#"# Written by gridlink-tests (tests/src/district.rs) for one test or benchmark run.
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    log_format upstreams '$status $upstream_addr $upstream_status $request_time "$request"';
    {access_log}
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    # The server refuses bodies over 16 MiB itself, with its own error.
    client_max_body_size 17m;

    upstream gridlink {{
{servers}        # Reused connections to the servers, so each request does not open one.
        keepalive 64;
    }}

    server {{
        listen {listen};
        location / {{
            proxy_pass http://gridlink;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            # As docs/deploy.md section 7: the client's address appended to what it sent;
            # the servers read it only with --trusted-proxy (tests/elink_nginx.rs).
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_connect_timeout 2s;
            # The server answers or times out a request within 60 s itself.
            proxy_read_timeout 75s;
            proxy_send_timeout 75s;
            # A request that fails on one server (connection refused or reset, as when a
            # process is killed) is passed on to the next one, POSTs included
            # (`non_idempotent`): a sync is idempotent by design. A push that reached a
            # server before it died is stored at most once and acked again as a duplicate,
            # and a pull only reads. nginx buffers the request body (the default), so it can
            # send it again. The one POST this can repeat with a visible effect is
            # /v1/enroll: if the first server used the code and died before answering, the
            # second answers that the code is used, which is what the phone would see if it
            # retried itself; the administrator issues a new code. Timeouts are not passed
            # on: a slow sync sent to a second server would only double the load that made
            # it slow. Server answers (4xx, 5xx) are passed to the phone unchanged.
            proxy_next_upstream error non_idempotent;
            proxy_next_upstream_tries {tries};
        }}
    }}
}}
"#,
        workers = options.workers.max(1),
        tries = upstreams.len(),
    )
}

/// A store, N server processes over it, and nginx in front.
pub struct District {
    // nginx first: it is stopped before the servers it forwards to.
    pub nginx: Nginx,
    pub servers: Vec<ServeProcess>,
}

impl District {
    /// Starts `processes` servers on `backend` and nginx over them.
    pub fn start(backend: &Backend, processes: usize, options: &NginxOptions) -> anyhow::Result<District> {
        if processes == 0 {
            bail!("a district needs at least one server process");
        }
        if matches!(backend, Backend::Sqlite(_)) && processes > 1 {
            bail!("embedded SQLite is served by one process");
        }
        let store_args = backend.store_args();
        let servers =
            (0..processes).map(|_| ServeProcess::start(&store_args)).collect::<anyhow::Result<Vec<ServeProcess>>>()?;
        let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
        let nginx = Nginx::start(&addrs, options)?;
        Ok(District { nginx, servers })
    }

    /// The URL phones use: nginx.
    pub fn url(&self) -> String {
        self.nginx.url()
    }

    /// Pids of the running server processes.
    pub fn server_pids(&self) -> Vec<u32> {
        self.servers.iter().filter_map(ServeProcess::pid).collect()
    }
}
