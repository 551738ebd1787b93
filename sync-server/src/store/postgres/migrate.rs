//! `gridlink-server migrate --data DIR --to URL`: moves a SQLite store into a new, empty
//! PostgreSQL database so a street grows into a district without re-enrolling a phone, and
//! checks the result ([`verify_migration`]).
//!
//! What is copied is what both schemas hold, found from the two catalogs rather than listed
//! here: the PostgreSQL tables keep the SQLite tables' names, columns and text encodings on
//! purpose (`postgres/roster.rs`), so rows go over as they are, in PostgreSQL's creation order
//! (a table is created after the tables it references). Device token hashes, actor ids,
//! revoked and wiped marks, used codes and the logs' sequence numbers go over unchanged, so
//! tokens and the cursors phones hold stay valid; `scope_heads`, which PostgreSQL numbers new
//! log entries from, is set to each scope's head as SQLite computes it (last entry or
//! compaction point), so the numbering continues after the copied entries. The console's
//! passwords, login throttle and sessions go over too, so supervisors keep their passwords and
//! stay signed in, and so do the e-link's building links and request references, so printed
//! QR codes keep working. The supervisors' query rows and facts are reported as not copied,
//! with the reason: PostgreSQL rebuilds them from the copied documents when a server first
//! opens the database.
//!
//! The copy is one PostgreSQL transaction (all or nothing) written with binary `COPY` in
//! batches while the SQLite rows are streamed from one read snapshot, so memory stays bounded
//! whatever the size of the store. The SQLite file is opened read-only. A running server is
//! detected by SQLite's own lock: every connection to a WAL database holds a shared lock on
//! one byte of `server.db-shm` for as long as it is open, and the kernel lists it in
//! `/proc/locks`; unlike a marker file it cannot go stale when a process dies.
//!
//! Before committing, the copy is verified from the database: row counts per table, and per
//! scope the divergence digest (`store/digest.rs`) and a content hash recomputed from the
//! stored documents, plus each log's length, last sequence number, head and a hash over its
//! entries in order. A difference rolls everything back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Instant;

use gridlink_shared::digest::{DocEntry, ScopeDigest};
use gridlink_shared::{DocId, Scope};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use postgres::{Client, GenericClient, IsolationLevel, NoTls};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

use super::schema;
use crate::store::StoreError;

/// Rows per `COPY` batch, and the payload after which a batch ends early (documents are big).
const BATCH_ROWS: usize = 5000;
const BATCH_BYTES: usize = 8 << 20;

/// PostgreSQL tables the migration does not copy: the migrations' own record, and the log
/// counters, which are derived from the copied logs.
const OWN_TABLES: &[&str] = &["schema_migrations", "scope_heads"];

/// SQLite tables PostgreSQL does not hold yet, and why.
const NOT_ON_POSTGRES: &[(&str, &str)] = &[];

/// Tables both hold that are derived from the documents: not copied but rebuilt from the
/// copied documents when a server first opens the database (`postgres/facts.rs`), so their
/// facts generations are PostgreSQL's own from the start.
const DERIVED: &[&str] = &["household_rows", "case_rows", "household_facts", "visit_facts", "case_facts"];

/// `meta` keys that belong to SQLite's side only.
const SQLITE_META: &[(&str, &str)] = &[
    ("schema_version", "SQLite's own schema version; PostgreSQL keeps schema_migrations"),
    ("facts_version", "the supervisors' rows are rebuilt from the documents when a server first opens the database"),
    ("facts_generation", "PostgreSQL numbers the rebuilt supervisors' rows afresh"),
];

/// One table copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCopied {
    pub table: String,
    pub rows: u64,
    /// Payload copied: text and blob lengths, 8 per number.
    pub bytes: u64,
}

/// Something the SQLite store holds that was not copied, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotCopied {
    pub what: String,
    pub why: String,
}

/// What a migration did.
#[derive(Debug)]
pub struct Migration {
    /// The PostgreSQL schema version, and the migrations run by this migration.
    pub schema_version: i32,
    pub migrations_run: Vec<i32>,
    pub tables: Vec<TableCopied>,
    pub not_copied: Vec<NotCopied>,
    /// Scopes whose log counter was set.
    pub scope_heads: usize,
    pub verification: Verification,
    /// False when the verification found a difference: the transaction was rolled back.
    pub committed: bool,
    pub elapsed_ms: u128,
}

impl Migration {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.tables.iter().map(|t| t.bytes).sum()
    }
}

/// A table's rows on both sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCount {
    pub table: String,
    pub sqlite: u64,
    pub postgres: u64,
}

/// The comparison of a SQLite store and a PostgreSQL database, read from both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verification {
    pub tables: Vec<TableCount>,
    /// Scopes compared (documents, logs and heads).
    pub scopes: usize,
    /// Every difference found, each naming its table or scope; empty when they agree.
    pub problems: Vec<String>,
}

impl Verification {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// A short table for the operator.
    pub fn render(&self) -> String {
        let mut out = format!("  {:<18} {:>10} {:>10}\n", "table", "SQLite", "PostgreSQL");
        for t in &self.tables {
            let mark = if t.sqlite == t.postgres { "" } else { "  DIFFERS" };
            out.push_str(&format!("  {:<18} {:>10} {:>10}{mark}\n", t.table, t.sqlite, t.postgres));
        }
        out.push_str(&format!(
            "  {} scopes compared (documents' digest and content; log length, last seq, head and entries): {}\n",
            self.scopes,
            if self.is_ok() { "all equal".to_string() } else { format!("{} differences", self.problems.len()) }
        ));
        // A store that disagrees with itself everywhere would otherwise bury the table.
        const SHOWN: usize = 40;
        for problem in self.problems.iter().take(SHOWN) {
            out.push_str(&format!("  DIFFERS {problem}\n"));
        }
        if self.problems.len() > SHOWN {
            out.push_str(&format!("  ... and {} more\n", self.problems.len() - SHOWN));
        }
        out
    }
}

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Invalid(message.into())
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Copies the SQLite store in `data_dir` into the empty PostgreSQL database at `url`,
/// reporting each step through `progress`. Refuses (writing nothing) a target that holds
/// data, a missing or damaged store, a store in use, and a URL that does not parse or answer.
pub fn migrate_sqlite(data_dir: &Path, url: &str, progress: &mut dyn FnMut(&str)) -> Result<Migration, StoreError> {
    let started = Instant::now();
    let sqlite = open_source(data_dir, true)?;
    let mut client = connect(url)?;
    // Before the migrations too: a database that holds anything gets nothing written.
    refuse_data(&mut client)?;
    let migrations_run = schema::migrate(&mut client, gridlink_shared::time::now_millis())?;
    progress(&format!(
        "PostgreSQL schema at version {} (migrations run now: {})",
        schema::LATEST,
        if migrations_run.is_empty() {
            "none".to_string()
        } else {
            migrations_run.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
        }
    ));
    let mut tx = client.transaction()?;
    let all: Vec<String> = pg_tables(&mut tx)?;
    // Servers pointed at the database early wait until the copy is committed or undone.
    tx.batch_execute(&format!(
        "LOCK TABLE {} IN EXCLUSIVE MODE",
        all.iter().map(|t| quote(t)).collect::<Vec<_>>().join(", ")
    ))?;
    refuse_data(&mut tx)?;
    // One snapshot of the SQLite store for the copy and its verification.
    sqlite.execute_batch("BEGIN")?;
    let plan = Plan::of(&sqlite, &mut tx)?;
    let mut tables = Vec::new();
    for table in &plan.copy {
        let table_started = Instant::now();
        let copied =
            if table == "meta" { copy_meta(&sqlite, &mut tx)? } else { copy_table(&sqlite, &mut tx, table, progress)? };
        progress(&format!(
            "  {table}: {} rows, {} in {:.1} s",
            copied.rows,
            human_bytes(copied.bytes),
            table_started.elapsed().as_secs_f64()
        ));
        tables.push(copied);
    }
    let heads = sqlite_heads(&sqlite)?;
    let set_heads = tx.prepare("INSERT INTO scope_heads (scope, head) VALUES ($1, $2)")?;
    for (scope, head) in &heads {
        tx.execute(&set_heads, &[scope, &(*head as i64)])?;
    }
    progress(&format!("  scope_heads: {} scopes, new log entries numbered after the copied ones", heads.len()));
    for table in &plan.copy {
        restart_identities(&mut tx, table)?;
    }
    progress(&format!("copied in {:.1} s; verifying from both databases", started.elapsed().as_secs_f64()));
    let verifying = Instant::now();
    let verification = compare(&sqlite, &mut tx, &plan)?;
    progress(&format!("verified in {:.1} s", verifying.elapsed().as_secs_f64()));
    sqlite.execute_batch("COMMIT")?;
    let committed = verification.is_ok();
    if committed {
        // Fresh statistics, so the first queries after the bulk load plan well.
        tx.batch_execute("ANALYZE")?;
        tx.commit()?;
    } else {
        tx.rollback()?;
    }
    Ok(Migration {
        schema_version: schema::LATEST,
        migrations_run,
        tables,
        not_copied: plan.not_copied,
        scope_heads: heads.len(),
        verification,
        committed,
        elapsed_ms: started.elapsed().as_millis(),
    })
}

/// Compares the SQLite store in `data_dir` with the PostgreSQL database at `url` it was
/// migrated into, reading both (each in one snapshot). Meant for right after the migration:
/// anything either side has been sent since shows as a difference.
pub fn verify_migration(data_dir: &Path, url: &str) -> Result<Verification, StoreError> {
    let sqlite = open_source(data_dir, false)?;
    let mut client = connect(url)?;
    let mut tx = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
    let present: Option<i32> =
        tx.query_one("SELECT MAX(version) FROM schema_migrations", &[]).ok().and_then(|r| r.get(0));
    if present.is_none() {
        return Err(invalid("the PostgreSQL database has no gridlink schema; nothing was migrated into it"));
    }
    sqlite.execute_batch("BEGIN")?;
    let plan = Plan::of(&sqlite, &mut tx)?;
    let verification = compare(&sqlite, &mut tx, &plan)?;
    sqlite.execute_batch("COMMIT")?;
    tx.commit()?;
    Ok(verification)
}

fn connect(url: &str) -> Result<Client, StoreError> {
    let config: postgres::Config =
        url.parse().map_err(|e| invalid(format!("database URL '{url}' does not parse: {e}")))?;
    config.connect(NoTls).map_err(|e| {
        // The server's own words (no such database, role, password) are in the source.
        let cause = std::error::Error::source(&e).map(|s| format!(": {s}")).unwrap_or_default();
        StoreError::Backend(format!("cannot connect to PostgreSQL: {e}{cause}"))
    })
}

/// The store's database, read-only, after checking it exists, is not in use (when
/// `check_in_use`), is sound and is of this build's schema.
fn open_source(data_dir: &Path, check_in_use: bool) -> Result<Connection, StoreError> {
    if !data_dir.is_dir() {
        return Err(StoreError::NotFound(format!("data directory {} does not exist", data_dir.display())));
    }
    let path = data_dir.join(crate::store::DB_FILE);
    if !path.is_file() {
        return Err(StoreError::NotFound(format!("no server database at {}", path.display())));
    }
    if check_in_use && let Some(pid) = holder_of(&path)? {
        return Err(invalid(format!(
            "{} is open in process {pid} (a running `gridlink-server serve --data {}`?); stop the server and \
             any admin command first, so no change arrives after the copy",
            path.display(),
            data_dir.display()
        )));
    }
    let unreadable = |e: rusqlite::Error| invalid(format!("{} is not a readable server database: {e}", path.display()));
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(unreadable)?;
    let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(unreadable)?;
    if check != "ok" {
        return Err(invalid(format!("{} is damaged (SQLite's quick_check: {check})", path.display())));
    }
    let version: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
        .map_err(|e| invalid(format!("{} holds no gridlink schema: {e}", path.display())))?;
    if version.as_deref() != Some(&crate::store::schema::SCHEMA_VERSION.to_string()) {
        return Err(invalid(format!(
            "{} is at schema version {}, not {}; use the matching gridlink-server",
            path.display(),
            version.unwrap_or_default(),
            crate::store::schema::SCHEMA_VERSION
        )));
    }
    // Written by every open of this build (`digest::backfill`); missing only in a store last
    // opened by an older one, whose copy would lack its documents' digests.
    let uncounted: Result<i64, _> =
        conn.query_row("SELECT COUNT(*) FROM docs WHERE digest_entry IS NULL OR digest_scopes IS NULL", [], |r| {
            r.get(0)
        });
    if !matches!(uncounted, Ok(0)) {
        return Err(invalid(format!(
            "{} was last opened by an older gridlink-server; open it once with this one (e.g. \
             `gridlink-server roster --data {}`) and migrate again",
            path.display(),
            data_dir.display()
        )));
    }
    Ok(conn)
}

/// The process holding `db` open, from SQLite's lock on `db-shm` (see the module header).
/// `None` if nobody does, or if the system does not list its locks (`/proc/locks`).
fn holder_of(db: &Path) -> Result<Option<u32>, StoreError> {
    use std::os::unix::fs::MetadataExt;
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    let Ok(meta) = std::fs::metadata(&shm) else { return Ok(None) };
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else { return Ok(None) };
    let dev = meta.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    // `1: POSIX  ADVISORY  READ 4242 fe:00:10014411 128 128`
    let file = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    // The DMS byte of SQLite's unix VFS: (22 + 8) * 4 + 8.
    const DMS: u64 = 128;
    for line in locks.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 || fields[1] != "POSIX" || fields[5] != file {
            continue;
        }
        let start: u64 = fields[6].parse().unwrap_or(u64::MAX);
        let end: u64 = if fields[7] == "EOF" { u64::MAX } else { fields[7].parse().unwrap_or(0) };
        if start <= DMS && DMS <= end {
            return Ok(fields[4].parse().ok().or(Some(0)));
        }
    }
    Ok(None)
}

/// Tables (and rows) a database already holds, beyond an empty gridlink schema.
fn refuse_data(client: &mut impl GenericClient) -> Result<(), StoreError> {
    let mut held = Vec::new();
    for table in pg_tables(client)? {
        let sql = match table.as_str() {
            "schema_migrations" => continue,
            // The schema's first migration writes this one row.
            "meta" => "SELECT COUNT(*) FROM meta WHERE key <> 'reference_version'".to_string(),
            _ => format!("SELECT COUNT(*) FROM {}", quote(&table)),
        };
        let n: i64 = client.query_one(&sql, &[])?.get(0);
        if n > 0 {
            held.push(format!("{table}: {n} rows"));
        }
    }
    if held.is_empty() {
        Ok(())
    } else {
        Err(invalid(format!(
            "the target database already holds data ({}); migrate only into a new, empty database \
             (nothing was written)",
            held.join(", ")
        )))
    }
}

/// The tables of the current schema, in creation order (referenced tables first).
fn pg_tables(client: &mut impl GenericClient) -> Result<Vec<String>, StoreError> {
    Ok(client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.oid",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

fn sqlite_tables(conn: &Connection) -> Result<BTreeSet<String>, StoreError> {
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")?;
    Ok(stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?)
}

fn sqlite_columns(conn: &Connection, table: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    Ok(stmt.query_map([table], |r| r.get(0))?.collect::<Result<_, _>>()?)
}

/// A PostgreSQL column.
struct PgColumn {
    name: String,
    kind: Type,
    nullable: bool,
    identity: bool,
}

fn pg_columns(client: &mut impl GenericClient, table: &str) -> Result<Vec<PgColumn>, StoreError> {
    let rows = client.query(
        "SELECT column_name::text, data_type::text, is_nullable = 'YES', is_identity = 'YES'
         FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1
         ORDER BY ordinal_position",
        &[&table],
    )?;
    rows.iter()
        .map(|r| {
            let name: String = r.get(0);
            let data_type: &str = r.get(1);
            let kind = match data_type {
                "text" => Type::TEXT,
                "bigint" => Type::INT8,
                "integer" => Type::INT4,
                "bytea" => Type::BYTEA,
                other => {
                    return Err(StoreError::Backend(format!(
                        "{table}.{name} is of type {other}, which this migration cannot fill"
                    )));
                }
            };
            Ok(PgColumn { name, kind, nullable: r.get(2), identity: r.get(3) })
        })
        .collect()
}

/// What goes where: tables both have (in PostgreSQL's order), and what is left behind.
struct Plan {
    copy: Vec<String>,
    not_copied: Vec<NotCopied>,
}

impl Plan {
    fn of(sqlite: &Connection, pg: &mut impl GenericClient) -> Result<Plan, StoreError> {
        let on_sqlite = sqlite_tables(sqlite)?;
        let on_pg = pg_tables(pg)?;
        let mut copy = Vec::new();
        let mut not_copied = Vec::new();
        for table in &on_pg {
            if OWN_TABLES.contains(&table.as_str()) {
                continue;
            }
            if DERIVED.contains(&table.as_str()) {
                let rows: i64 = if on_sqlite.contains(table) {
                    sqlite.query_row(&format!("SELECT COUNT(*) FROM {}", quote(table)), [], |r| r.get(0))?
                } else {
                    0
                };
                not_copied.push(NotCopied {
                    what: format!("table {table} ({rows} rows)"),
                    why: "derived from the documents (copied): rebuilt when a server first opens the database".into(),
                });
                continue;
            }
            if !on_sqlite.contains(table) {
                not_copied.push(NotCopied {
                    what: format!("PostgreSQL table {table}"),
                    why: "the SQLite store has no such table; left empty".into(),
                });
                continue;
            }
            let sqlite_cols = sqlite_columns(sqlite, table)?;
            for column in pg_columns(pg, table)? {
                if !sqlite_cols.contains(&column.name) && !column.identity {
                    if !column.nullable {
                        return Err(invalid(format!(
                            "the SQLite table {table} has no column {} that PostgreSQL requires; open the data \
                             directory once with this gridlink-server and migrate again",
                            column.name
                        )));
                    }
                    not_copied.push(NotCopied {
                        what: format!("PostgreSQL column {table}.{}", column.name),
                        why: "the SQLite store has no such column; left empty".into(),
                    });
                }
            }
            let pg_cols: Vec<String> = pg_columns(pg, table)?.into_iter().map(|c| c.name).collect();
            for column in sqlite_cols.iter().filter(|c| !pg_cols.contains(c)) {
                not_copied.push(NotCopied {
                    what: format!("column {table}.{column}"),
                    why: format!("PostgreSQL schema {} has no such column", schema::LATEST),
                });
            }
            copy.push(table.clone());
        }
        for table in on_sqlite.iter().filter(|t| !on_pg.contains(t)) {
            let rows: i64 = sqlite.query_row(&format!("SELECT COUNT(*) FROM {}", quote(table)), [], |r| r.get(0))?;
            let why = NOT_ON_POSTGRES
                .iter()
                .find(|(t, _)| t == table)
                .map(|(_, why)| why.to_string())
                .unwrap_or_else(|| format!("PostgreSQL schema {} has no such table", schema::LATEST));
            not_copied.push(NotCopied { what: format!("table {table} ({rows} rows)"), why });
        }
        for (key, why) in SQLITE_META {
            let present: bool =
                sqlite.query_row("SELECT COUNT(*) > 0 FROM meta WHERE key = ?1", [key], |r| r.get(0))?;
            if present {
                not_copied.push(NotCopied { what: format!("meta key {key}"), why: why.to_string() });
            }
        }
        Ok(Plan { copy, not_copied })
    }
}

/// Copies one table with binary `COPY`, batch by batch, the SQLite rows streamed.
fn copy_table(
    sqlite: &Connection,
    tx: &mut postgres::Transaction<'_>,
    table: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<TableCopied, StoreError> {
    let sqlite_cols = sqlite_columns(sqlite, table)?;
    let columns: Vec<PgColumn> = pg_columns(tx, table)?.into_iter().filter(|c| sqlite_cols.contains(&c.name)).collect();
    let names = columns.iter().map(|c| quote(&c.name)).collect::<Vec<_>>().join(", ");
    let types: Vec<Type> = columns.iter().map(|c| c.kind.clone()).collect();
    let total: i64 = sqlite.query_row(&format!("SELECT COUNT(*) FROM {}", quote(table)), [], |r| r.get(0))?;
    let copy_sql = format!("COPY {} ({names}) FROM STDIN (FORMAT binary)", quote(table));
    let mut stmt = sqlite.prepare(&format!("SELECT {names} FROM {}", quote(table)))?;
    let mut rows = stmt.query([])?;
    let mut copied = TableCopied { table: table.to_string(), rows: 0, bytes: 0 };
    let mut done = false;
    let mut batches = 0;
    while !done {
        let mut writer = BinaryCopyInWriter::new(tx.copy_in(&copy_sql)?, &types);
        let (mut in_batch, mut batch_bytes) = (0, 0);
        loop {
            let Some(row) = rows.next()? else {
                done = true;
                break;
            };
            let mut cells: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(columns.len());
            for (i, column) in columns.iter().enumerate() {
                let (cell, len) = to_pg(row.get_ref(i)?, column, table, copied.rows + 1)?;
                batch_bytes += len;
                cells.push(cell);
            }
            let refs: Vec<&(dyn ToSql + Sync)> = cells.iter().map(|c| c.as_ref()).collect();
            writer.write(&refs).map_err(|e| StoreError::Backend(format!("copying {table}: {e}")))?;
            copied.rows += 1;
            in_batch += 1;
            if in_batch >= BATCH_ROWS || batch_bytes >= BATCH_BYTES {
                break;
            }
        }
        writer.finish().map_err(|e| StoreError::Backend(format!("copying {table}: {e}")))?;
        copied.bytes += batch_bytes as u64;
        batches += 1;
        if !done && batches % 4 == 0 {
            progress(&format!("  {table}: {} of {total} rows...", copied.rows));
        }
    }
    Ok(copied)
}

/// A SQLite value as the PostgreSQL column's type, and its payload length. SQLite lets any
/// column hold any type, so a value of another type is refused, naming where it is.
fn to_pg(
    value: ValueRef<'_>,
    column: &PgColumn,
    table: &str,
    row: u64,
) -> Result<(Box<dyn ToSql + Sync>, usize), StoreError> {
    let wrong = |found: &str| {
        invalid(format!(
            "{table}.{} (row {row}) holds {found} where PostgreSQL expects {}; nothing was written",
            column.name, column.kind
        ))
    };
    Ok(match (column.kind.clone(), value) {
        (Type::TEXT, ValueRef::Null) => (Box::new(None::<String>), 0),
        (Type::INT8, ValueRef::Null) => (Box::new(None::<i64>), 0),
        (Type::INT4, ValueRef::Null) => (Box::new(None::<i32>), 0),
        (Type::BYTEA, ValueRef::Null) => (Box::new(None::<Vec<u8>>), 0),
        (Type::TEXT, ValueRef::Text(bytes)) => {
            let text = std::str::from_utf8(bytes).map_err(|_| wrong("text that is not UTF-8"))?;
            (Box::new(text.to_string()), bytes.len())
        }
        (Type::INT8, ValueRef::Integer(n)) => (Box::new(n), 8),
        (Type::INT4, ValueRef::Integer(n)) => (Box::new(i32::try_from(n).map_err(|_| wrong("a number too large"))?), 8),
        (Type::BYTEA, ValueRef::Blob(bytes)) => (Box::new(bytes.to_vec()), bytes.len()),
        (_, ValueRef::Null) => return Err(wrong("NULL")),
        (_, ValueRef::Text(_)) => return Err(wrong("text")),
        (_, ValueRef::Integer(_)) => return Err(wrong("a number")),
        (_, ValueRef::Real(_)) => return Err(wrong("a real number")),
        (_, ValueRef::Blob(_)) => return Err(wrong("a blob")),
    })
}

/// `meta` over the row the schema wrote: every key but SQLite's own.
fn copy_meta(sqlite: &Connection, tx: &mut postgres::Transaction<'_>) -> Result<TableCopied, StoreError> {
    let mut copied = TableCopied { table: "meta".into(), rows: 0, bytes: 0 };
    for (key, value) in sqlite_meta(sqlite)? {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )?;
        copied.rows += 1;
        copied.bytes += (key.len() + value.len()) as u64;
    }
    Ok(copied)
}

fn sqlite_meta(sqlite: &Connection) -> Result<BTreeMap<String, String>, StoreError> {
    let mut stmt = sqlite.prepare("SELECT key, value FROM meta")?;
    let all: BTreeMap<String, String> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    Ok(all.into_iter().filter(|(k, _)| !SQLITE_META.iter().any(|(own, _)| own == k)).collect())
}

/// Identity columns continue after the copied ids (`COPY` writes them as given).
fn restart_identities(tx: &mut postgres::Transaction<'_>, table: &str) -> Result<(), StoreError> {
    for column in pg_columns(tx, table)?.into_iter().filter(|c| c.identity) {
        let max: Option<i64> =
            tx.query_one(&format!("SELECT MAX({}) FROM {}", quote(&column.name), quote(table)), &[])?.get(0);
        if let Some(max) = max {
            tx.query_one("SELECT setval(pg_get_serial_sequence($1, $2), $3)", &[&quote(table), &column.name, &max])?;
        }
    }
    Ok(())
}

/// Each scope's head as SQLite's push computes it (`push::scope_head`: the last log entry, or
/// the compaction point if higher), for every scope with a log or a compaction point.
fn sqlite_heads(sqlite: &Connection) -> Result<BTreeMap<String, u64>, StoreError> {
    let scopes: Vec<String> = {
        let mut stmt =
            sqlite.prepare("SELECT scope FROM scope_log GROUP BY scope UNION SELECT scope FROM scope_floor")?;
        stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    let mut heads = BTreeMap::new();
    for raw in scopes {
        let scope: Scope =
            raw.parse().map_err(|_| StoreError::Backend(format!("stored scope '{raw}' does not parse")))?;
        heads.insert(raw, crate::store::push::scope_head(sqlite, scope)?);
    }
    Ok(heads)
}

/// What one side holds for a scope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ScopeSums {
    /// The divergence digest, recomputed from the stored documents' bytes.
    digest: ScopeDigest,
    /// XOR of SHA-256 over each document's id and bytes: any changed byte shows.
    content: [u8; 32],
    log_entries: u64,
    log_max: u64,
    /// SHA-256 over the log entries (seq, document, change hash) in order.
    log_hash: [u8; 32],
    head: u64,
}

/// Accumulates [`ScopeSums`] from rows, whichever database they come from.
#[derive(Default)]
struct Sums {
    docs: HashMap<String, (DocEntry, [u8; 32])>,
    scopes: BTreeMap<String, ScopeSums>,
    logs: BTreeMap<String, Sha256>,
    problems: Vec<String>,
}

impl Sums {
    fn doc(&mut self, side: &str, id: &str, bytes: &[u8]) {
        let entry = match id.parse::<DocId>() {
            Ok(doc) => match crate::store::digest::entry_of_saved(doc, bytes) {
                Ok(entry) => entry,
                Err(e) => {
                    self.problems.push(format!("table docs: document {id} on {side}: {e}"));
                    DocEntry([0; 32])
                }
            },
            Err(_) => {
                self.problems.push(format!("table docs: id '{id}' on {side} is not a document id"));
                DocEntry([0; 32])
            }
        };
        let mut content = Sha256::new();
        content.update((id.len() as u64).to_be_bytes());
        content.update(id.as_bytes());
        content.update(bytes);
        self.docs.insert(id.to_string(), (entry, content.finalize().into()));
    }

    fn delivered(&mut self, side: &str, scope: String, doc: &str) {
        let Some((entry, content)) = self.docs.get(doc) else {
            self.problems.push(format!("table doc_scopes: scope {scope} on {side} names document {doc}, not in docs"));
            return;
        };
        let sums = self.scopes.entry(scope).or_default();
        sums.digest.add(entry);
        for (x, c) in sums.content.iter_mut().zip(content) {
            *x ^= c;
        }
    }

    fn logged(&mut self, scope: String, seq: i64, doc: &str, hash: &str) {
        let hasher = self.logs.entry(scope.clone()).or_default();
        hasher.update(seq.to_be_bytes());
        for field in [doc, hash] {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        let sums = self.scopes.entry(scope).or_default();
        sums.log_entries += 1;
        sums.log_max = sums.log_max.max(seq.max(0) as u64);
    }

    fn finish(mut self) -> (BTreeMap<String, ScopeSums>, Vec<String>) {
        for (scope, hasher) in self.logs {
            self.scopes.entry(scope).or_default().log_hash = hasher.finalize().into();
        }
        (self.scopes, self.problems)
    }
}

const SIDES: [&str; 2] = ["SQLite", "PostgreSQL"];

fn sqlite_sums(sqlite: &Connection) -> Result<(BTreeMap<String, ScopeSums>, Vec<String>), StoreError> {
    let mut sums = Sums::default();
    let mut stmt = sqlite.prepare("SELECT id, bytes FROM docs")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (id, bytes): (String, Vec<u8>) = (row.get(0)?, row.get(1)?);
        sums.doc(SIDES[0], &id, &bytes);
    }
    let mut stmt = sqlite.prepare("SELECT scope, doc_id FROM doc_scopes")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let doc: String = row.get(1)?;
        sums.delivered(SIDES[0], row.get(0)?, &doc);
    }
    let mut stmt = sqlite.prepare("SELECT scope, seq, doc_id, change_hash FROM scope_log ORDER BY scope, seq")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (doc, hash): (String, String) = (row.get(2)?, row.get(3)?);
        sums.logged(row.get(0)?, row.get(1)?, &doc, &hash);
    }
    let heads = sqlite_heads(sqlite)?;
    let (mut scopes, problems) = sums.finish();
    for (scope, head) in heads {
        scopes.entry(scope).or_default().head = head;
    }
    Ok((scopes, problems))
}

fn pg_sums(pg: &mut impl GenericClient) -> Result<(BTreeMap<String, ScopeSums>, Vec<String>), StoreError> {
    let none: [&(dyn ToSql + Sync); 0] = [];
    let mut sums = Sums::default();
    // Streamed: the documents are never all in memory at once.
    {
        let mut rows = pg.query_raw("SELECT id, bytes FROM docs", none.iter().copied())?;
        while let Some(row) = rows.next()? {
            sums.doc(SIDES[1], row.get(0), row.get(1));
        }
    }
    {
        let mut rows = pg.query_raw("SELECT scope, doc_id FROM doc_scopes", none.iter().copied())?;
        while let Some(row) = rows.next()? {
            sums.delivered(SIDES[1], row.get(0), row.get(1));
        }
    }
    {
        let mut rows = pg.query_raw(
            "SELECT scope, seq, doc_id, change_hash FROM scope_log ORDER BY scope, seq",
            none.iter().copied(),
        )?;
        while let Some(row) = rows.next()? {
            sums.logged(row.get(0), row.get(1), row.get(2), row.get(3));
        }
    }
    let heads: Vec<(String, i64)> =
        pg.query("SELECT scope, head FROM scope_heads", &[])?.iter().map(|r| (r.get(0), r.get(1))).collect();
    let (mut scopes, problems) = sums.finish();
    for (scope, head) in heads {
        scopes.entry(scope).or_default().head = head.max(0) as u64;
    }
    Ok((scopes, problems))
}

/// The comparison itself, on open connections (each inside its snapshot).
fn compare(sqlite: &Connection, pg: &mut impl GenericClient, plan: &Plan) -> Result<Verification, StoreError> {
    let mut verification = Verification::default();
    for table in &plan.copy {
        let (on_sqlite, on_pg) = if table == "meta" {
            let theirs: BTreeMap<String, String> =
                pg.query("SELECT key, value FROM meta", &[])?.iter().map(|r| (r.get(0), r.get(1))).collect();
            let ours = sqlite_meta(sqlite)?;
            for (key, value) in &ours {
                if theirs.get(key) != Some(value) {
                    verification.problems.push(format!(
                        "table meta: key {key} is '{value}' on SQLite, {:?} on PostgreSQL",
                        theirs.get(key)
                    ));
                }
            }
            (ours.len() as i64, theirs.len() as i64)
        } else {
            let count = format!("SELECT COUNT(*) FROM {}", quote(table));
            (sqlite.query_row(&count, [], |r| r.get(0))?, pg.query_one(&count, &[])?.get(0))
        };
        if on_sqlite != on_pg {
            verification.problems.push(format!("table {table}: {on_sqlite} rows on SQLite, {on_pg} on PostgreSQL"));
        }
        verification.tables.push(TableCount {
            table: table.clone(),
            sqlite: on_sqlite.max(0) as u64,
            postgres: on_pg.max(0) as u64,
        });
    }
    // The stored running digests, which PostgreSQL will keep updating from here.
    let ours: BTreeMap<String, (i64, Vec<u8>)> = {
        let mut stmt = sqlite.prepare("SELECT scope, doc_count, xor FROM scope_digests")?;
        stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?.collect::<Result<_, _>>()?
    };
    let theirs: BTreeMap<String, (i64, Vec<u8>)> = pg
        .query("SELECT scope, doc_count, xor FROM scope_digests", &[])?
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    for scope in ours.keys().chain(theirs.keys()).collect::<BTreeSet<_>>() {
        if ours.get(scope) != theirs.get(scope) {
            verification.problems.push(format!("table scope_digests: scope {scope} differs"));
        }
    }
    let (ours, mut problems) = sqlite_sums(sqlite)?;
    let (theirs, their_problems) = pg_sums(pg)?;
    problems.extend(their_problems);
    verification.problems.extend(problems);
    let heads = |sums: &BTreeMap<String, ScopeSums>| sums.values().filter(|s| s.head > 0).count() as u64;
    verification.tables.push(TableCount {
        table: "scope_heads".into(),
        sqlite: heads(&ours),
        postgres: heads(&theirs),
    });
    let scopes: BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    verification.scopes = scopes.len();
    let empty = ScopeSums::default();
    for scope in scopes {
        let (a, b) = (ours.get(scope).unwrap_or(&empty), theirs.get(scope).unwrap_or(&empty));
        if a.digest != b.digest || a.content != b.content {
            verification.problems.push(format!(
                "scope {scope}: documents differ (SQLite {} documents, digest {}; PostgreSQL {} documents, digest {}{})",
                a.digest.count,
                a.digest.display(),
                b.digest.count,
                b.digest.display(),
                if a.digest == b.digest { ", same heads but different bytes" } else { "" }
            ));
        }
        if (a.log_entries, a.log_max, a.log_hash) != (b.log_entries, b.log_max, b.log_hash) {
            verification.problems.push(format!(
                "scope {scope}: log differs (SQLite {} entries up to seq {}, PostgreSQL {} entries up to seq {}{})",
                a.log_entries,
                a.log_max,
                b.log_entries,
                b.log_max,
                if (a.log_entries, a.log_max) == (b.log_entries, b.log_max) { ", different entries" } else { "" }
            ));
        }
        if a.head != b.head {
            verification
                .problems
                .push(format!("scope {scope}: head is {} on SQLite, {} in PostgreSQL's scope_heads", a.head, b.head));
        }
    }
    Ok(verification)
}

fn human_bytes(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}
