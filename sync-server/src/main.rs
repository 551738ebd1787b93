//! `gridlink-server`: run the sync server and administer its data directory.
//!
//! Every command takes exactly one of `--data DIR` (embedded SQLite) and `--database URL`
//! (PostgreSQL). Admin commands open the same SQLite file as a running `serve` (WAL + busy
//! timeout), so they work while the server runs. On PostgreSQL, `init`, `serve` (the phones'
//! API, the web console and the residents' e-link), `import`, `roster`, `audit`, `check
//! [--repair]`, `compact`, `export`, `building link|links`, `user
//! add|code|set-scopes|list|password` and `device list|revoke|wipe|recovery-key` work, each on
//! the same backend-neutral store code as on SQLite and printing the same. `serve
//! --trusted-proxy ADDR` reads the e-link's client address from `X-Forwarded-For` on
//! connections from that proxy only. `migrate --data DIR --to URL` moves an embedded store into an empty
//! PostgreSQL database, verified, so its phones keep syncing without a new enrolment.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use gridlink_shared::demo::DemoSize;
use gridlink_shared::figures::Period;
use gridlink_shared::time::now_millis;
use gridlink_shared::{DeviceId, Role, Scope, UserId};
use gridlink_sync_server::console::password::check_new_password;
use gridlink_sync_server::console::store::may_use_console;
use gridlink_sync_server::ledgers::{ExportRequest, Format, LedgerKind, export};
use gridlink_sync_server::store::{AnyStore, PgStore};
use gridlink_sync_server::store::{
    AuditFilter, CSV_COLUMNS, DEFAULT_CODE_HOURS, ImportError, Origin, SecurityEvent, SecurityKind,
};
use gridlink_sync_server::{AppState, Limits, SqliteStore};

#[derive(Parser)]
#[command(name = "gridlink-server", version, about = "Gridlink (网格通) sync server and admin tool")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the data lives: exactly one of the two.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct DataDir {
    /// Data directory holding server.db (embedded SQLite).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// A PostgreSQL database instead (`postgres://USER@HOST/DB`, or
    /// `postgresql:///DB?host=/run/postgresql` for a Unix socket).
    #[arg(long, value_name = "URL")]
    database: Option<String>,
}

impl DataDir {
    /// Either store, for the commands that work on both.
    fn admin(&self) -> anyhow::Result<Admin> {
        match (&self.data, &self.database) {
            (Some(data), _) => Ok(Admin::Sqlite(open(data)?)),
            (None, Some(url)) => Ok(Admin::Pg(Box::new(open_pg(url)?))),
            (None, None) => bail!("give --data DIR or --database URL"),
        }
    }
}

/// The store of an admin command that runs on both backends.
enum Admin {
    Sqlite(SqliteStore),
    Pg(Box<PgStore>),
}

impl Admin {
    fn any(&self) -> AnyStore<'_> {
        match self {
            Admin::Sqlite(store) => AnyStore::Sqlite(store),
            Admin::Pg(store) => AnyStore::Postgres(store),
        }
    }
}

/// Calls the same-named method of whichever store it is.
macro_rules! both {
    ($admin:expr, $method:ident($($arg:expr),*)) => {
        match $admin {
            Admin::Sqlite(store) => store.$method($($arg),*),
            Admin::Pg(store) => store.$method($($arg),*),
        }
    };
}

fn open_pg(url: &str) -> anyhow::Result<PgStore> {
    PgStore::open(url).context("opening the PostgreSQL database")
}

#[derive(Subcommand)]
enum Command {
    /// Create the data directory and database, optionally with demo data.
    Init {
        /// --data DIR creates the data directory; --database URL creates or migrates the
        /// PostgreSQL schema.
        #[command(flatten)]
        data: DataDir,
        /// Load a generated demo dataset: small (one community) or street (86 grids, ~25,000 households).
        #[arg(long, value_name = "SIZE")]
        demo: Option<DemoSize>,
        /// Seed of the demo generator.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Serve the sync API.
    Serve {
        #[command(flatten)]
        data: DataDir,
        /// Address to listen on; port 0 picks a free port. Prints `listening on http://IP:PORT`
        /// (`https://` with --tls-cert).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Serve HTTPS with this certificate chain (PEM: the server's certificate first, then
        /// any intermediates). Needs --tls-key.
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Connections open at once; more wait until one closes. Keep it well under the
        /// process's open-file limit (`ulimit -n`).
        #[arg(long, value_name = "N", default_value_t = default_max_connections())]
        max_connections: NonZeroUsize,
        /// PostgreSQL connections this process opens at most; requests past it wait for one.
        /// Keep processes × N under the database's `max_connections`. Ignored with --data.
        #[arg(long, value_name = "N", default_value_t = default_db_pool())]
        db_pool: NonZeroUsize,
        /// A reverse proxy in front of this server (repeatable; an IP address, e.g. 127.0.0.1
        /// for nginx on the same machine). Only for requests whose TCP peer is one of these is
        /// the client address taken from `X-Forwarded-For` (the right-most address that is not
        /// a trusted proxy), for the residents' e-link's per-address limits; from anyone else
        /// the header is ignored, since a phone or browser can write anything there.
        #[arg(long = "trusted-proxy", value_name = "ADDR")]
        trusted_proxies: Vec<String>,
    },
    /// Print the roster: communities, grids, buildings and household counts.
    Roster {
        #[command(flatten)]
        data: DataDir,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage users (staff who may enrol devices).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage enrolled devices.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// Buildings: the residents' grid e-link (社区网格e通) of each.
    Building {
        #[command(subcommand)]
        command: BuildingCommand,
    },
    /// Compact the scope logs, keeping the newest entries of each. Devices further behind
    /// get snapshots at their next sync.
    Compact {
        #[command(flatten)]
        data: DataDir,
        /// Entries to keep per scope.
        #[arg(long, default_value_t = 10_000)]
        keep: u64,
    },
    /// Export a ledger (台账) as XLSX or CSV: households, visits, cases, or the summary per grid.
    Export {
        #[command(flatten)]
        data: DataDir,
        /// Which ledger.
        #[arg(long, value_enum)]
        what: LedgerKind,
        /// File format.
        #[arg(long, value_enum, default_value = "xlsx")]
        format: Format,
        /// The file to write (replaced if it exists).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Only rows within this scope (street:ID, community:ID or grid:ID); repeatable.
        /// Default: the whole roster.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<Scope>,
        /// First day (YYYY-MM-DD, Asia/Shanghai) of visits by visit time and cases by report
        /// time. Default: every row (the summary: this month).
        #[arg(long, value_name = "DATE")]
        from: Option<chrono::NaiveDate>,
        /// Last day, inclusive (default: today).
        #[arg(long, value_name = "DATE")]
        to: Option<chrono::NaiveDate>,
        /// English headers instead of Chinese.
        #[arg(long)]
        english: bool,
    },
    /// Check that every stored document and change loads as a phone would load it; with
    /// --repair, rebuild bad documents from their sound changes and quarantine the rest.
    /// Exits 1 while anything bad is left.
    Check {
        #[command(flatten)]
        data: DataDir,
        /// Rebuild bad documents, move bad changes to the quarantine table (kept, never
        /// deleted) and send every device the repaired copies at its next sync.
        #[arg(long)]
        repair: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Import a roster CSV. Nothing is imported from a file with errors.
    #[command(long_about = IMPORT_HELP)]
    Import {
        #[command(flatten)]
        data: DataDir,
        /// The CSV file.
        file: PathBuf,
    },
    /// The audit: security events (enrolments, wrong codes, console logins, admin actions),
    /// accepted changes and refused pushes, merged, newest first.
    Audit {
        #[command(flatten)]
        data: DataDir,
        /// Print JSON (an array).
        #[arg(long)]
        json: bool,
        /// Only events concerning this user.
        #[arg(long)]
        user: Option<UserId>,
        /// Only events concerning this device.
        #[arg(long)]
        device: Option<DeviceId>,
        /// Only events on or after this day (YYYY-MM-DD, Asia/Shanghai).
        #[arg(long, value_name = "DATE")]
        since: Option<chrono::NaiveDate>,
        /// Only this kind: enrol, enrol-refused, console-login, console-login-failed, user-add,
        /// code-issued, scopes-set, roster-import, revoke, wipe, wipe-delivered,
        /// recovery-key-shown, compact, user-password, change-accepted or push-refused.
        #[arg(long)]
        kind: Option<String>,
        /// At most this many (the newest).
        #[arg(long, default_value_t = 1000)]
        limit: u64,
    },
    /// Copy a SQLite data directory into a new, empty PostgreSQL database, then verify the
    /// copy: devices keep their tokens and cursors. Stop `serve --data DIR` first.
    Migrate {
        /// The data directory to copy (read only, never changed).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The PostgreSQL database to copy into; it must hold no data.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

const IMPORT_HELP: &str = "Import a roster CSV (UTF-8, header row required) with the columns
record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room
and optionally pledge,category,address,hours,building,reported_at,skills (empty when absent)

record_type  street | community | grid | building | outlet | party-branch | party-group |
             party-member | volunteer | staff | household
id           UUID of the record (households: the household file id)
parent_id    street: empty; community: its street; grid: its community; building: its grid;
             outlet: its community; party-branch: its grid; party-group, party-member: its
             party branch; volunteer: its community; household: its building; staff: empty
name         the name (household: head of household; staff, member, volunteer: the person)
phone        staff, household, party-branch phone (optional); outlet, party-member and
             volunteer phone (required): 3-20 of digits - + spaces brackets
building     party-group: its building (required); party-member: where they live (optional);
             a building of the branch's grid
reported_at  party-member: the day they reported to the community, YYYY-MM-DD
skills       volunteer: up to 10 skills of up to 20 characters, separated by ; or 、
role         staff only: grid-worker | building-leader | volunteer | supervisor | admin
scopes       staff only: grid:ID building:ID community:ID street:ID, separated by ';' or spaces
pledge       staff only: the service pledge on the identity card (亮身份), up to 200 characters
category     outlets only: housekeeping | appliance-repair | medical | elderly-care | utilities |
             legal | locksmith | errands
address, hours   outlets only: address (required, up to 100), opening hours (up to 60)
units, floors, rooms_per_floor   buildings only, numbers 1-200
unit, room   households only (room required)

Rows may come in any order; parents may be in the same file or already on the roster.
Existing roster rows are updated; existing households are left as they are. Every bad row
is reported as `row N, column C: problem` and nothing is imported until the file is clean.
Staff get no enrolment code here: run `user code --user ID` for each.";

#[derive(Subcommand)]
enum BuildingCommand {
    /// Print the URL of the building's e-link page (residents' help requests); with --qr,
    /// write its QR code as a PNG for the notice board.
    Link {
        #[command(flatten)]
        data: DataDir,
        /// The building's id (see `roster`).
        #[arg(long)]
        building: gridlink_shared::BuildingId,
        /// How residents reach this server, e.g. `https://grid.example.cn`
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        base_url: String,
        /// Also write the QR code of the URL to this PNG file.
        #[arg(long, value_name = "FILE")]
        qr: Option<PathBuf>,
        /// Replace the building's token: the old URL and QR code stop working.
        #[arg(long)]
        rotate: bool,
        /// Withdraw the building's link: its URL and QR code stop working and nothing replaces
        /// them until `building link` is run again.
        #[arg(long, conflicts_with_all = ["rotate", "qr"])]
        revoke: bool,
    },
    /// List every building's e-link URL (one line each: building name, id, URL).
    Links {
        #[command(flatten)]
        data: DataDir,
        /// How residents reach this server, e.g. `https://grid.example.cn`
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        base_url: String,
        /// Print JSON (`building`, `name`, `url` per link) instead.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; prints a one-time enrolment code on the last line.
    Add {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        name: String,
        /// grid-worker | building-leader | volunteer | supervisor | admin
        #[arg(long)]
        role: Role,
        /// grid:ID | building:ID | community:ID | street:ID (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<Scope>,
        #[arg(long, default_value = "")]
        phone: String,
        /// Hours the code stays valid.
        #[arg(long, default_value_t = DEFAULT_CODE_HOURS)]
        code_hours: i64,
    },
    /// Issue a new one-time enrolment code for an existing user (printed on the last line).
    Code {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        user: UserId,
        #[arg(long, default_value_t = DEFAULT_CODE_HOURS)]
        code_hours: i64,
    },
    /// Replace a user's scopes (e.g. move a grid worker to another grid).
    SetScopes {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        user: UserId,
        #[arg(long = "scope", required = true)]
        scopes: Vec<Scope>,
    },
    /// List users.
    List {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        json: bool,
    },
    /// Set a user's web console password, read from standard input (one line, at least 8
    /// characters; typed twice without echo on a terminal). Only supervisors and admins can
    /// sign in with it. Ends the user's console sessions and lifts a login lock.
    Password {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        user: UserId,
    },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// List devices.
    List {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a device, or every device of a user. Takes effect at their next request; the
    /// device keeps its data (for a handover).
    Revoke {
        #[command(flatten)]
        data: DataDir,
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        device: Option<DeviceId>,
        #[arg(long)]
        user: Option<UserId>,
    },
    /// Wipe a lost or stolen phone, or every phone of a user: at its next request the device
    /// is answered 410 device-wiped and erases its data and key (and keeps being answered so).
    /// Also revokes it.
    Wipe {
        #[command(flatten)]
        data: DataDir,
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        device: Option<DeviceId>,
        #[arg(long)]
        user: Option<UserId>,
    },
    /// Print a device's recovery key (hex), which opens the copy of its database key it kept
    /// for the admin, to recover unsent changes after it wiped itself. Audited.
    RecoveryKey {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        device: DeviceId,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=info,gridlink_sync_server=info".into()),
        )
        .init();
    if let Err(error) = run(Cli::parse()) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn open(data: &Path) -> anyhow::Result<SqliteStore> {
    Ok(SqliteStore::open(data)?)
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init { data: DataDir { data, database }, demo, seed } => {
            let started = Instant::now();
            let loaded = match (data, database) {
                (_, Some(url)) => {
                    let store = open_pg(&url)?;
                    println!("schema ready in the PostgreSQL database");
                    demo.map(|size| store.load_demo(size, seed, now_millis())).transpose()?
                }
                (Some(data), None) => {
                    let store = SqliteStore::create(&data)
                        .with_context(|| format!("creating the store in {}", data.display()))?;
                    println!("created {}", data.join(gridlink_sync_server::store::DB_FILE).display());
                    demo.map(|size| store.load_demo(size, seed, now_millis())).transpose()?
                }
                (None, None) => bail!("give --data DIR or --database URL"),
            };
            if let Some(s) = loaded {
                println!(
                    "demo data: {} communities, {} grids, {} buildings, {} staff, {} households, {} cases",
                    s.communities, s.grids, s.buildings, s.staff, s.households, s.cases
                );
                println!(
                    "stored {} changes and {} scope-log entries; generated in {} ms, stored in {} ms \
                     (of which building automerge documents {} ms)",
                    s.changes, s.log_entries, s.generate_ms, s.store_ms, s.build_ms
                );
            }
            println!("init took {} ms", started.elapsed().as_millis());
        }
        Command::Serve { data, listen, max_connections, db_pool, tls_cert, tls_key, trusted_proxies } => {
            let trusted_proxies = parse_trusted_proxies(&trusted_proxies)?;
            // Certificate problems are reported before anything listens.
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(gridlink_sync_server::tls::load(&cert, &key)?),
                _ => None,
            };
            let limits = Limits { max_connections: max_connections.get(), ..Limits::default() };
            serve(&data, db_pool, listen, limits, tls, trusted_proxies)?
        }
        Command::Roster { data, json } => {
            let report = both!(&data.admin()?, roster_report())?;
            if json {
                print_json(&report)?;
            } else {
                for street in &report.streets {
                    println!("{} {}", street.name, street.id);
                    for community in &street.communities {
                        println!("  {} {}", community.name, community.id);
                        for grid in &community.grids {
                            println!(
                                "    {} grid:{} ({} households, {} moved out, {} open cases)",
                                grid.name, grid.id, grid.households, grid.moved_out, grid.open_cases
                            );
                            for b in &grid.buildings {
                                println!("      {} building:{} ({} households)", b.name, b.id, b.households);
                            }
                        }
                    }
                }
            }
        }
        Command::User { command } => user(command)?,
        Command::Device { command } => device(command)?,
        Command::Building { command: BuildingCommand::Link { data, building, revoke: true, .. } } => {
            if both!(&data.admin()?, elink_revoke(building))? {
                println!(
                    "revoked the e-link of building {building}: its URL and QR code no longer work; \
                     `building link` makes a new one"
                );
            } else {
                println!("building {building} had no e-link; nothing to revoke");
            }
        }
        Command::Building { command: BuildingCommand::Links { data, base_url, json } } => {
            let links = both!(&data.admin()?, elink_links())?;
            let url = |link| gridlink_sync_server::elink::link_url(&base_url, link);
            if json {
                let rows: Vec<serde_json::Value> = links
                    .iter()
                    .map(|l| serde_json::json!({ "building": l.building, "name": l.building_name, "url": url(l) }))
                    .collect();
                print_json(&rows)?;
            } else {
                for link in &links {
                    println!("{} building:{} {}", link.building_name, link.building, url(link));
                }
            }
        }
        Command::Building {
            command: BuildingCommand::Link { data, building, base_url, qr, rotate, revoke: false },
        } => {
            let link = both!(&data.admin()?, elink_link(building, rotate, now_millis()))?;
            let url = gridlink_sync_server::elink::link_url(&base_url, &link);
            if let Some(file) = qr {
                let png = gridlink_sync_server::elink::qr::png(&url)?;
                std::fs::write(&file, png).with_context(|| format!("writing {}", file.display()))?;
            }
            println!("{url}");
        }
        Command::Compact { data, keep } => {
            let store = data.admin()?;
            let (entries, changes) = both!(&store, compact(keep))?;
            audit_in(
                &store,
                SecurityEvent::new(SecurityKind::Compact, Origin::Cli).detail(
                    serde_json::json!({ "keep": keep, "entries_removed": entries, "changes_removed": changes }),
                ),
            );
            println!("removed {entries} log entries and {changes} changes; each scope keeps its newest {keep}");
        }
        Command::Check { data, repair, json } => check(data.admin()?, repair, json)?,
        Command::Export { data, what, format, out, scopes, from, to, english } => {
            let admin = data.admin()?;
            let store = admin.any();
            let scopes = if scopes.is_empty() {
                store.roster()?.streets.iter().map(|s| Scope::Street(s.id)).collect()
            } else {
                scopes
            };
            let today = gridlink_shared::time::local_date(now_millis());
            let period = match (from, to) {
                (None, None) => None,
                (Some(from), to) => {
                    let to = to.unwrap_or(today);
                    if to < from {
                        bail!("--to {to} is before --from {from}");
                    }
                    Some(Period::days(from, to))
                }
                (None, Some(_)) => bail!("give --from with --to"),
            };
            let lang = if english { gridlink_shared::Lang::En } else { gridlink_shared::Lang::Zh };
            let request = ExportRequest { what, format, scopes, period, lang };
            let started = Instant::now();
            let mut progress = |rows: usize| eprint!("\rwriting {}: {rows} rows", out.display());
            let rows = export(store, &request, &out, now_millis(), &mut progress)
                .with_context(|| format!("exporting to {}", out.display()))?;
            eprintln!();
            println!("wrote {rows} rows to {} in {:.1} s", out.display(), started.elapsed().as_secs_f64());
        }
        Command::Import { data, file } => {
            let store = data.admin()?;
            let result = both!(&store, import_csv(&file, now_millis()));
            let detail = match &result {
                Ok(s) => serde_json::json!({ "file": file.display().to_string(), "imported": s }),
                Err(ImportError::Rows(problems)) => {
                    serde_json::json!({ "file": file.display().to_string(), "problems": problems.len() })
                }
                Err(ImportError::Store(e)) => {
                    serde_json::json!({ "file": file.display().to_string(), "error": e.to_string() })
                }
            };
            audit_in(&store, SecurityEvent::new(SecurityKind::RosterImport, Origin::Cli).detail(detail));
            match result {
                Ok(s) => println!(
                    "imported {}: {} streets, {} communities, {} grids, {} buildings, {} outlets, {} party branches, \
                     {} party groups, {} party members, {} volunteers, {} staff, {} new households ({} already present)",
                    file.display(),
                    s.streets,
                    s.communities,
                    s.grids,
                    s.buildings,
                    s.outlets,
                    s.party_branches,
                    s.party_groups,
                    s.party_members,
                    s.volunteers,
                    s.staff,
                    s.households_created,
                    s.households_already_present
                ),
                Err(ImportError::Rows(problems)) => {
                    for p in &problems {
                        eprintln!("{p}");
                    }
                    bail!(
                        "{} problem(s) in {}; nothing was imported (expected columns: {})",
                        problems.len(),
                        file.display(),
                        CSV_COLUMNS.join(",")
                    );
                }
                Err(ImportError::Store(e)) => return Err(e.into()),
            }
        }
        Command::Audit { data, json, user, device, since, kind, limit } => {
            let store = data.admin()?;
            let since = since.map(gridlink_shared::time::start_of_local_day);
            let entries = both!(&store, audit_log(&AuditFilter { user, device, since, kind, limit }))?;
            if json {
                print_json(&entries)?;
            } else {
                for e in &entries {
                    println!(
                        "{} {:<20} user={} device={} from={} {}",
                        gridlink_shared::time::format_local(e.at),
                        e.kind,
                        e.user.as_deref().unwrap_or("-"),
                        e.device.as_deref().unwrap_or("-"),
                        e.origin,
                        e.detail
                    );
                }
            }
            if entries.len() as u64 == limit {
                eprintln!("showing the newest {limit}; use --limit for more");
            }
        }
        Command::Migrate { data, to } => migrate(&data, &to)?,
    }
    Ok(())
}

/// `migrate`: the copy with its progress lines, what was left behind, the verification.
fn migrate(data: &Path, url: &str) -> anyhow::Result<()> {
    use gridlink_sync_server::store::postgres::migrate_sqlite;
    println!("copying {} into PostgreSQL (the server must be stopped; the file is only read)", data.display());
    let done = migrate_sqlite(data, url, &mut |line| println!("{line}"))?;
    if !done.not_copied.is_empty() {
        println!("not copied (PostgreSQL does not hold these yet):");
        for left in &done.not_copied {
            println!("  {}: {}", left.what, left.why);
        }
    }
    println!("verification (read back from both databases):");
    print!("{}", done.verification.render());
    if !done.committed {
        bail!(
            "the copy does not match the SQLite store; it was rolled back and nothing was written (a \
             difference on the SQLite side too means the store disagrees with itself: run \
             `gridlink-server check --data {}` first)",
            data.display()
        );
    }
    println!(
        "migrated {} rows ({:.1} MiB) in {:.1} s; start `gridlink-server serve --database URL` on the same address \
         and the enrolled phones carry on",
        done.rows(),
        done.bytes() as f64 / f64::from(1 << 20),
        done.elapsed_ms as f64 / 1000.0
    );
    Ok(())
}

/// Records an admin action of the CLI. The action is done already: a failure to record it is
/// reported, not hidden, but does not undo it.
fn audit_in(store: &Admin, event: SecurityEvent) {
    if let Err(error) = both!(store, record_security(&event, now_millis())) {
        eprintln!("warning: could not record {} in the security audit: {error}", event.kind.code());
    }
}

fn check(store: Admin, repair: bool, json: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last_shown = Instant::now();
    let mut progress = |done: usize, total: usize| {
        if last_shown.elapsed().as_millis() >= 500 || done == total {
            eprint!("\rchecking {done}/{total} stored documents and changes");
            last_shown = Instant::now();
        }
    };
    let report = both!(&store, check(repair, now_millis(), &mut progress))?;
    eprintln!(" ({:.1} s)", started.elapsed().as_secs_f64());
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("checked {} documents and {} changes", report.documents, report.changes);
        for p in &report.bad_documents {
            println!("bad document {}: {}", p.doc, p.reason);
        }
        for p in &report.bad_changes {
            println!("bad change {} of document {}: {}", p.change.as_deref().unwrap_or("?"), p.doc, p.reason);
        }
        for p in &report.quarantined {
            println!("quarantined change {} of document {}: {}", p.change.as_deref().unwrap_or("?"), p.doc, p.reason);
        }
        for id in &report.repaired {
            println!("repaired document {id}; devices get the repaired copy at their next sync");
        }
        for p in &report.unrepaired {
            println!("could not repair document {}: {}", p.doc, p.reason);
        }
        for id in &report.index_mismatches {
            println!("document {id}: its delivery scopes or digest entry disagree with its stored bytes");
        }
        if report.index_rebuilt {
            println!("re-derived delivery scopes and digests from the stored documents");
        } else if !report.index_mismatches.is_empty() {
            println!("run again with --repair to re-derive delivery scopes and digests from the documents");
        }
        if report.bad_documents.is_empty() && report.bad_changes.is_empty() {
            println!("all sound");
        } else if !repair {
            println!("run again with --repair to rebuild the bad documents");
        }
    }
    if !report.is_clean() {
        std::process::exit(1);
    }
    Ok(())
}

fn user(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { data, name, role, scopes, phone, code_hours } => {
            let store = data.admin()?;
            let (user, code) = both!(&store, add_user(&name, role, &scopes, &phone, now_millis(), code_hours))?;
            audit_in(
                &store,
                SecurityEvent::new(SecurityKind::UserAdd, Origin::Cli).user(user).detail(
                    serde_json::json!({ "name": name, "role": role.code(), "scopes": scopes, "code_hours": code_hours }),
                ),
            );
            println!("added user {user} ({name}, {role}); enrolment code valid for {code_hours} h:");
            println!("{code}");
        }
        UserCommand::Code { data, user, code_hours } => {
            let store = data.admin()?;
            let code = both!(&store, new_code(user, now_millis(), code_hours))?;
            audit_in(
                &store,
                SecurityEvent::new(SecurityKind::CodeIssued, Origin::Cli)
                    .user(user)
                    .detail(serde_json::json!({ "code_hours": code_hours })),
            );
            println!("enrolment code for user {user}, valid for {code_hours} h:");
            println!("{code}");
        }
        UserCommand::SetScopes { data, user, scopes } => {
            let store = data.admin()?;
            both!(&store, set_scopes(user, &scopes))?;
            audit_in(
                &store,
                SecurityEvent::new(SecurityKind::ScopesSet, Origin::Cli)
                    .user(user)
                    .detail(serde_json::json!({ "scopes": scopes })),
            );
            let list: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
            println!("user {user} now has scopes {}; devices drop the old ones at their next sync", list.join(" "));
        }
        UserCommand::List { data, json } => {
            let users = both!(&data.admin()?, list_users())?;
            if json {
                print_json(&users)?;
            } else {
                for u in &users {
                    let scopes: Vec<String> = u.scopes.iter().map(|s| s.to_string()).collect();
                    println!("{} {} {} devices={} {}", u.id, u.role, u.name, u.active_devices, scopes.join(" "));
                }
            }
        }
        UserCommand::Password { data, user } => {
            let store = data.admin()?;
            let password = read_new_password()?;
            let set = both!(&store, set_console_password(user, &password, now_millis()))?;
            audit_in(
                &store,
                SecurityEvent::new(SecurityKind::UserPassword, Origin::Cli)
                    .user(user)
                    .detail(serde_json::json!({ "sessions_ended": set.sessions_ended })),
            );
            println!("console password set for {} ({user}, {})", set.name, set.role);
            if set.sessions_ended > 0 {
                println!("signed out {} console session(s)", set.sessions_ended);
            }
            if !may_use_console(set.role) {
                eprintln!("note: a {} cannot sign in to the console; only supervisors and admins can", set.role);
            }
        }
    }
    Ok(())
}

/// The new console password: typed twice without echo on a terminal, else the first line of
/// standard input (so `echo ... | gridlink-server user password` works). Checked against the
/// rules before anything is hashed or stored.
fn read_new_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = rpassword::prompt_password("New console password (at least 8 characters): ")?;
        let again = rpassword::prompt_password("Type it again: ")?;
        if first != again {
            bail!("the two passwords differ; nothing was changed");
        }
        first
    } else {
        let mut line = String::new();
        // One line, and never more than a few KiB of whatever is piped in.
        stdin.lock().take(4096).read_line(&mut line).context("reading the password from standard input")?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        line.strip_suffix('\r').unwrap_or(line).to_string()
    };
    check_new_password(&password).map_err(|rule| anyhow::anyhow!("{rule}; nothing was changed"))?;
    Ok(password)
}

fn device(command: DeviceCommand) -> anyhow::Result<()> {
    match command {
        DeviceCommand::List { data, json } => {
            let devices = both!(&data.admin()?, list_devices())?;
            if json {
                print_json(&devices)?;
            } else {
                for d in &devices {
                    let state = match (d.wipe_requested_at, d.wipe_delivered_at, d.revoked_at.is_some(), d.console) {
                        (Some(_), Some(_), _, _) => "wiped",
                        (Some(_), None, _, _) => "wipe-pending",
                        (None, _, true, _) => "revoked",
                        (None, _, false, true) => "console",
                        (None, _, false, false) => "active",
                    };
                    let health = d
                        .health
                        .as_ref()
                        .map(|h| {
                            format!(
                                " app {}, {} unsent, {} rejected, {} damaged",
                                h.app_version, h.unsent, h.rejected, h.quarantined
                            )
                        })
                        .unwrap_or_default();
                    println!("{} {} {} ({}) {}{health}", d.id, state, d.name, d.user_name, d.user);
                }
            }
        }
        DeviceCommand::Revoke { data, device, user } => {
            let store = data.admin()?;
            match (device, user) {
                (Some(device), _) => {
                    both!(&store, revoke_device(device, now_millis()))?;
                    let mut event = SecurityEvent::new(SecurityKind::Revoke, Origin::Cli).device(device);
                    event.user = both!(&store, device_user(device)).ok();
                    audit_in(&store, event);
                    println!("revoked device {device}");
                }
                (None, Some(user)) => {
                    let n = both!(&store, revoke_user_devices(user, now_millis()))?;
                    audit_in(
                        &store,
                        SecurityEvent::new(SecurityKind::Revoke, Origin::Cli)
                            .user(user)
                            .detail(serde_json::json!({ "devices": n })),
                    );
                    println!("revoked {n} device(s) of user {user}");
                }
                (None, None) => bail!("give --device ID or --user ID"),
            }
        }
        DeviceCommand::Wipe { data, device, user } => {
            let store = data.admin()?;
            match (device, user) {
                (Some(device), _) => {
                    let newly = both!(&store, wipe_device(device, now_millis()))?;
                    let mut event = SecurityEvent::new(SecurityKind::Wipe, Origin::Cli)
                        .device(device)
                        .detail(serde_json::json!({ "already_marked": !newly }));
                    event.user = both!(&store, device_user(device)).ok();
                    audit_in(&store, event);
                    if newly {
                        println!("device {device} will be wiped at its next request (it is revoked now)");
                    } else {
                        println!("device {device} was already marked for wipe");
                    }
                }
                (None, Some(user)) => {
                    let n = both!(&store, wipe_user_devices(user, now_millis()))?;
                    audit_in(
                        &store,
                        SecurityEvent::new(SecurityKind::Wipe, Origin::Cli)
                            .user(user)
                            .detail(serde_json::json!({ "devices": n })),
                    );
                    println!("{n} device(s) of user {user} will be wiped at their next request (revoked now)");
                }
                (None, None) => bail!("give --device ID or --user ID"),
            }
        }
        DeviceCommand::RecoveryKey { data, device } => {
            let store = data.admin()?;
            let (user, secret) = both!(&store, recovery_key(device))?;
            let Some(secret) = secret else {
                bail!("device {device} was enrolled before the server kept recovery keys; it has none");
            };
            // Recorded before it is shown: nobody sees a key without a trace.
            let event = SecurityEvent::new(SecurityKind::RecoveryKeyShown, Origin::Cli).user(user).device(device);
            both!(&store, record_security(&event, now_millis()))?;
            eprintln!("recovery key of device {device} (user {user}); keep it secret:");
            println!("{secret}");
        }
    }
    Ok(())
}

fn default_max_connections() -> NonZeroUsize {
    NonZeroUsize::new(Limits::default().max_connections).unwrap_or(NonZeroUsize::MIN)
}

fn default_db_pool() -> NonZeroUsize {
    NonZeroUsize::new(gridlink_sync_server::store::postgres::DEFAULT_POOL_SIZE).unwrap_or(NonZeroUsize::MIN)
}

/// The `--trusted-proxy` values as addresses; a value that is not one (a network, a name, a
/// port) is refused with its text, before anything listens.
fn parse_trusted_proxies(values: &[String]) -> anyhow::Result<Vec<std::net::IpAddr>> {
    values
        .iter()
        .map(|value| {
            value.trim().parse().map_err(|_| {
                anyhow::anyhow!(
                    "--trusted-proxy '{}' is not an IP address; give each proxy's address (e.g. 127.0.0.1 or \
                     ::1), one --trusted-proxy per proxy, without a port or a /prefix",
                    value.escape_debug()
                )
            })
        })
        .collect()
}

fn serve(
    data: &DataDir,
    db_pool: NonZeroUsize,
    listen: SocketAddr,
    limits: Limits,
    tls: Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>,
    trusted_proxies: Vec<std::net::IpAddr>,
) -> anyhow::Result<()> {
    // Opened (and, on PostgreSQL, migrated) before the runtime starts: the PostgreSQL
    // client blocks, and a bad URL or a newer schema is reported before anything listens.
    let (state, source) = match (&data.data, &data.database) {
        (Some(dir), _) => (AppState::new(open(dir)?), dir.display().to_string()),
        (None, Some(url)) => {
            (AppState::new(open_pg(url)?.with_pool_size(db_pool.get())), format!("PostgreSQL, pool of {db_pool}"))
        }
        (None, None) => bail!("give --data DIR or --database URL"),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let mut stdout = std::io::stdout();
        let scheme = if tls.is_some() { "https" } else { "http" };
        writeln!(stdout, "listening on {scheme}://{addr}")?;
        stdout.flush()?;
        tracing::info!(%addr, data = %source, max_connections = limits.max_connections, scheme, "serving");
        if !trusted_proxies.is_empty() {
            tracing::info!(?trusted_proxies, "X-Forwarded-For is read from these proxies only");
        }
        let mut state = state.with_limits(limits);
        state.elink = state.elink.clone().with_trusted_proxies(trusted_proxies);
        match tls {
            Some(tls) => gridlink_sync_server::serve_tls(listener, state, tls, shutdown_signal()).await?,
            None => gridlink_sync_server::serve(listener, state, shutdown_signal()).await?,
        }
        tracing::info!("stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
