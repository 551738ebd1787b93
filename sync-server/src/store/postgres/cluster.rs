//! A throwaway PostgreSQL cluster for tests (and later the benchmark): `initdb` into a
//! temporary directory, `pg_ctl start` listening only on a Unix socket in that directory, one
//! database per caller, and `pg_ctl stop` plus removal of the directory when the last user
//! drops it (also while a panicking test unwinds). No test needs a server started by hand.
//!
//! initdb and the server refuse to run as root, so as root (CI) they run as the `postgres`
//! system user through `runuser`, in a directory handed to that user.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// The port only names the socket file (`.s.PGSQL.PORT`): nothing listens on TCP.
const PORT: u16 = 5432;

/// A running cluster in a temporary directory; stopped and removed on drop.
pub struct TempCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Run the server's programs as `postgres` (we are root).
    as_postgres: bool,
    next_db: AtomicU64,
}

impl std::fmt::Debug for TempCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TempCluster").field("dir", &self.dir.path()).finish_non_exhaustive()
    }
}

/// The directory holding `initdb` and `pg_ctl`: the newest `/usr/lib/postgresql/*/bin`
/// (Debian's layout), else whatever `pg_config --bindir` says.
pub fn find_bin_dir() -> Result<PathBuf, String> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Ok(bin);
    }
    let output = Command::new("pg_config").arg("--bindir").output();
    match output {
        Ok(out) if out.status.success() => {
            let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if bin.join("initdb").exists() {
                return Ok(bin);
            }
            Err(format!("pg_config names {} but it has no initdb", bin.display()))
        }
        _ => Err("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); run scripts/setup.sh".into()),
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn id_of(flag: &str, user: &str) -> Result<u32, String> {
    let out = Command::new("id").args([flag, user]).output().map_err(|e| format!("id {flag} {user}: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| format!("no system user '{user}' (Debian's postgresql package creates it)"))
}

impl TempCluster {
    /// Creates and starts a cluster. Takes about a second.
    pub fn start() -> Result<TempCluster, String> {
        let bin = find_bin_dir()?;
        let as_postgres = is_root();
        sweep_orphans(&bin, as_postgres);
        let dir = tempfile::Builder::new()
            .prefix("gridlink-pg")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        if as_postgres {
            let (uid, gid) = (id_of("-u", "postgres")?, id_of("-g", "postgres")?);
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|e| format!("chown: {e}"))?;
        }
        // Whose cluster this is: one whose process died without dropping it (killed test
        // binary) is stopped and removed by the next start.
        std::fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string())
            .map_err(|e| format!("writing the owner file: {e}"))?;
        let cluster = TempCluster { dir, bin, as_postgres, next_db: AtomicU64::new(1) };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
        )?;
        // Durability off: a throwaway cluster trades it for speed. Sockets only in our directory.
        let options = format!(
            "-c listen_addresses='' -k {} -p {PORT} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300",
            path_str(cluster.dir.path())?
        );
        let log = cluster.dir.path().join("server.log");
        let started = cluster
            .run("pg_ctl", &["-D", path_str(&data)?, "-l", path_str(&log)?, "-w", "-t", "60", "-o", &options, "start"]);
        if let Err(e) = started {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("{e}\nserver log:\n{log}"));
        }
        Ok(cluster)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The socket directory.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        run_program(&self.bin, self.as_postgres, self.dir.path(), program, args)
    }

    /// The connection URL of database `db` (a Unix-socket host).
    pub fn url(&self, db: &str) -> String {
        format!("postgresql:///{db}?host={}&port={PORT}&user=postgres", self.dir.path().display())
    }

    /// Creates a new, empty database and returns its URL. Callable from async tests too: the
    /// blocking client runs its own runtime, so it lives on a thread of its own.
    pub fn create_database(&self) -> Result<String, String> {
        let name = format!("gridlink_{}", self.next_db.fetch_add(1, Ordering::Relaxed));
        let admin_url = self.url("postgres");
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let mut admin = postgres::Client::connect(&admin_url, postgres::NoTls)
                        .map_err(|e| format!("connecting to the cluster: {e}"))?;
                    admin.batch_execute(&format!("CREATE DATABASE {name}")).map_err(|e| format!("CREATE DATABASE: {e}"))
                })
                .join()
                .map_err(|_| "creating the database panicked".to_string())?
        })?;
        Ok(self.url(&name))
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        // Immediate: nothing in a throwaway cluster needs a clean shutdown.
        let data = self.data_dir();
        if let Some(data) = data.to_str()
            && let Err(e) = self.run("pg_ctl", &["-D", data, "-m", "immediate", "-w", "stop"])
        {
            eprintln!("stopping the temporary PostgreSQL cluster: {e}");
        }
    }
}

/// Runs one of the server's programs, as `postgres` when we are root, in `cwd` (the cluster
/// directory, not the caller's, so `postgres` may enter it).
fn run_program(bin: &Path, as_postgres: bool, cwd: &Path, program: &str, args: &[&str]) -> Result<(), String> {
    let program = bin.join(program);
    let mut command = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&program);
        c
    } else {
        Command::new(&program)
    };
    let out = command.args(args).current_dir(cwd).output().map_err(|e| format!("{program:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} {} failed: {}{}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The file naming the process that owns a cluster directory.
const OWNER_FILE: &str = "owner.pid";

/// Stops and removes the clusters of processes that no longer run (a test binary killed
/// before its clusters were dropped leaves its server running).
fn sweep_orphans(bin: &Path, as_postgres: bool) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let dir = entry.path();
        let named = entry.file_name().to_str().is_some_and(|n| n.starts_with("gridlink-pg"));
        let Some(owner) = named.then(|| std::fs::read_to_string(dir.join(OWNER_FILE)).ok()).flatten() else {
            continue;
        };
        let alive = owner.trim().parse::<u32>().is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if alive {
            continue;
        }
        if let Some(data) = dir.join("data").to_str() {
            // Already stopped is fine too: the directory goes either way.
            let _ = run_program(bin, as_postgres, &dir, "pg_ctl", &["-D", data, "-m", "immediate", "-w", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn path_str(path: &Path) -> Result<&str, String> {
    path.to_str().ok_or_else(|| format!("{} is not UTF-8", path.display()))
}

/// A database of its own in a cluster shared by whoever holds one at the moment: tests in one
/// binary running in parallel share one cluster (one initdb, not one per test) and the last
/// to finish stops it.
pub struct TestDatabase {
    pub url: String,
    // Held so the cluster outlives the database's users.
    _cluster: Arc<TempCluster>,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase").field("url", &self.url).finish()
    }
}

static SHARED: Mutex<Weak<TempCluster>> = Mutex::new(Weak::new());

impl TestDatabase {
    /// A fresh database in the shared cluster, starting the cluster if nobody holds it.
    pub fn new() -> Result<TestDatabase, String> {
        let cluster = {
            let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
            match shared.upgrade() {
                Some(cluster) => cluster,
                None => {
                    let cluster = Arc::new(TempCluster::start()?);
                    *shared = Arc::downgrade(&cluster);
                    cluster
                }
            }
        };
        Ok(TestDatabase { url: cluster.create_database()?, _cluster: cluster })
    }
}
