//! The SQLite schema and connection settings.
//!
//! Durability first: WAL with `synchronous=FULL`, so a change acknowledged to a phone is on
//! disk before the reply leaves. `busy_timeout` lets the admin CLI write while `serve` runs.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::StoreError;

/// Version of this schema, kept in `meta`.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The roster. Written by the admin CLI only.
CREATE TABLE IF NOT EXISTS streets (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS communities (
    id     TEXT PRIMARY KEY,
    street TEXT NOT NULL REFERENCES streets(id),
    name   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS grids (
    id        TEXT PRIMARY KEY,
    community TEXT NOT NULL REFERENCES communities(id),
    name      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS buildings (
    id              TEXT PRIMARY KEY,
    grid            TEXT NOT NULL REFERENCES grids(id),
    name            TEXT NOT NULL,
    units           INTEGER NOT NULL,
    floors          INTEGER NOT NULL,
    rooms_per_floor INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outlets (
    id        TEXT PRIMARY KEY,
    community TEXT NOT NULL REFERENCES communities(id),
    category  TEXT NOT NULL,
    name      TEXT NOT NULL,
    phone     TEXT NOT NULL,
    address   TEXT NOT NULL,
    hours     TEXT NOT NULL
);
-- Staff: everyone who may enrol a device. `scopes` is a JSON array of scope strings.
CREATE TABLE IF NOT EXISTS users (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    phone      TEXT NOT NULL,
    pledge     TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Auth. Secrets are stored only as SHA-256 hashes.
CREATE TABLE IF NOT EXISTS enrol_codes (
    code_hash  TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    device_id  TEXT
);
CREATE TABLE IF NOT EXISTS devices (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users(id),
    name             TEXT NOT NULL,
    token_hash       TEXT NOT NULL UNIQUE,
    actor            TEXT NOT NULL UNIQUE,
    created_at       INTEGER NOT NULL,
    revoked_at       INTEGER,
    last_sync_at     INTEGER,
    last_device_time INTEGER,
    -- What the device reported at its last sync (NULL for apps that do not report it).
    app_version      TEXT,
    unsent           INTEGER,
    rejected         INTEGER,
    quarantined      INTEGER,
    wipe_requested_at INTEGER,
    wipe_delivered_at INTEGER,
    recovery_secret  TEXT
);
-- wipe_requested_at, wipe_delivered_at: remote wipe (`device wipe`), when an admin asked for
-- it and when the device was first told (410 device-wiped; it is told at every request).
-- recovery_secret: 32 random bytes (hex) the device wraps a second copy of its database key
-- with; shown to an admin by `device recovery-key` (audited). NULL if enrolled before it.
CREATE INDEX IF NOT EXISTS devices_by_user ON devices(user_id);

-- The supervisors' web console (`console/store.rs`). Passwords as Argon2id PHC strings; login
-- throttling keyed by account, or by the typed login when it names no account (so an unknown
-- login is slowed and locked the same way); sessions by the SHA-256 of their cookie token.
CREATE TABLE IF NOT EXISTS console_passwords (
    user_id TEXT PRIMARY KEY REFERENCES users(id),
    hash    TEXT NOT NULL,
    set_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS console_throttle (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    not_before   INTEGER NOT NULL,
    locked_until INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS console_throttle_by_age ON console_throttle(updated_at);
CREATE TABLE IF NOT EXISTS console_sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    csrf         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_by_user ON console_sessions(user_id);

-- Documents: the automerge save() of each, its placement and the scopes it is delivered to.
CREATE TABLE IF NOT EXISTS docs (
    id         TEXT PRIMARY KEY,
    doc_type   TEXT NOT NULL,
    bytes      BLOB NOT NULL,
    street     TEXT NOT NULL,
    community  TEXT NOT NULL,
    grid       TEXT NOT NULL,
    building   TEXT,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS doc_scopes (
    scope  TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    PRIMARY KEY (scope, doc_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS doc_scopes_by_doc ON doc_scopes(doc_id);
-- Divergence digests (`store/digest.rs`): per scope, the XOR of its documents' digest entries
-- and their count, kept up to date with every document write. Each document's entry and the
-- scopes it is counted in are on its `docs` row (digest_entry, digest_scopes).
CREATE TABLE IF NOT EXISTS scope_digests (
    scope     TEXT PRIMARY KEY,
    doc_count INTEGER NOT NULL,
    xor       BLOB NOT NULL
);
-- Every accepted change, by hash: pushes are idempotent on this key.
CREATE TABLE IF NOT EXISTS changes (
    hash        TEXT PRIMARY KEY,
    doc_id      TEXT NOT NULL,
    bytes       BLOB NOT NULL,
    actor       TEXT NOT NULL,
    accepted_at INTEGER NOT NULL
);
-- Per-scope append-only log with a gapless sequence starting at 1.
CREATE TABLE IF NOT EXISTS scope_log (
    scope       TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    change_hash TEXT NOT NULL,
    doc_id      TEXT NOT NULL,
    PRIMARY KEY (scope, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS scope_log_by_change ON scope_log(change_hash);
-- Compaction point per scope: a cursor below it gets snapshots instead of history.
CREATE TABLE IF NOT EXISTS scope_floor (
    scope TEXT PRIMARY KEY,
    floor INTEGER NOT NULL
);
-- Who pushed what, when by the server's clock and when by the device's.
CREATE TABLE IF NOT EXISTS audit (
    id          INTEGER PRIMARY KEY,
    change_hash TEXT NOT NULL,
    doc_id      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    server_time INTEGER NOT NULL,
    device_time INTEGER NOT NULL,
    change_time INTEGER NOT NULL
);

-- Query tables for supervisors, rewritten from the document in the same transaction.
CREATE TABLE IF NOT EXISTS household_rows (
    id            TEXT PRIMARY KEY,
    grid          TEXT NOT NULL,
    building      TEXT,
    address       TEXT NOT NULL,
    head          TEXT NOT NULL,
    phone         TEXT NOT NULL,
    status        TEXT NOT NULL,
    tags          TEXT NOT NULL,
    needs         TEXT NOT NULL,
    residents     INTEGER NOT NULL,
    visits        INTEGER NOT NULL,
    last_visit_at INTEGER,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS household_rows_by_grid ON household_rows(grid);
CREATE TABLE IF NOT EXISTS case_rows (
    id               TEXT PRIMARY KEY,
    grid             TEXT NOT NULL,
    building         TEXT,
    household        TEXT,
    kind             TEXT NOT NULL,
    title            TEXT NOT NULL,
    status           TEXT NOT NULL,
    reporter         TEXT NOT NULL,
    responsible      TEXT NOT NULL,
    responsible_name TEXT NOT NULL,
    reported_at      INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS case_rows_by_grid ON case_rows(grid, status);

-- Changes refused at push, for the audit (never their bytes: a hostile phone must not be able
-- to fill the disk through refusals).
CREATE TABLE IF NOT EXISTS refusals (
    id          INTEGER PRIMARY KEY,
    change_hash TEXT NOT NULL,
    doc_id      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    code        TEXT NOT NULL,
    message     TEXT NOT NULL,
    bytes_len   INTEGER NOT NULL,
    server_time INTEGER NOT NULL
);
-- Stored changes that `check --repair` took out of their document: kept, never deleted. Their
-- log entries stay (the logs are gapless) and are served as byte-less placeholders.
CREATE TABLE IF NOT EXISTS quarantine (
    hash           TEXT PRIMARY KEY,
    doc_id         TEXT NOT NULL,
    bytes          BLOB NOT NULL,
    actor          TEXT NOT NULL,
    accepted_at    INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    quarantined_at INTEGER NOT NULL
);
-- Log entries added by a repair: a device that pulls one also gets the repaired document
-- whole (as a repair), replacing whatever copy it had.
CREATE TABLE IF NOT EXISTS repair_marks (
    scope  TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    doc_id TEXT NOT NULL,
    PRIMARY KEY (scope, seq)
);

-- The supervisors' rows (gridlink_shared::figures facts as JSON), rewritten with each document.
CREATE TABLE IF NOT EXISTS household_facts (
    id        TEXT PRIMARY KEY,
    street    TEXT NOT NULL,
    community TEXT NOT NULL,
    grid      TEXT NOT NULL,
    facts     TEXT NOT NULL,
    -- The facts generation that wrote the row (meta 'facts_generation'): caches fetch what changed.
    generation INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS household_facts_by_grid ON household_facts(grid);
CREATE INDEX IF NOT EXISTS household_facts_by_community ON household_facts(community);
CREATE INDEX IF NOT EXISTS household_facts_by_street ON household_facts(street);
CREATE TABLE IF NOT EXISTS visit_facts (
    id        TEXT PRIMARY KEY,
    household TEXT NOT NULL,
    street    TEXT NOT NULL,
    community TEXT NOT NULL,
    grid      TEXT NOT NULL,
    at        INTEGER NOT NULL,
    facts     TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS visit_facts_by_household ON visit_facts(household);
CREATE INDEX IF NOT EXISTS visit_facts_by_grid ON visit_facts(grid);
CREATE INDEX IF NOT EXISTS visit_facts_by_community ON visit_facts(community);
CREATE INDEX IF NOT EXISTS visit_facts_by_street ON visit_facts(street);
CREATE TABLE IF NOT EXISTS case_facts (
    id          TEXT PRIMARY KEY,
    street      TEXT NOT NULL,
    community   TEXT NOT NULL,
    grid        TEXT NOT NULL,
    reported_at INTEGER NOT NULL,
    facts       TEXT NOT NULL,
    generation  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS case_facts_by_grid ON case_facts(grid);
CREATE INDEX IF NOT EXISTS case_facts_by_community ON case_facts(community);
CREATE INDEX IF NOT EXISTS case_facts_by_street ON case_facts(street);

-- Scopes taken from a user (moved to another grid). For a grace period, changes their phones
-- made while they still held the scope are accepted when pushed afterwards, so a worker's
-- last offline visits in the old grid are not refused.
CREATE TABLE IF NOT EXISTS scope_grace (
    user_id    TEXT NOT NULL,
    scope      TEXT NOT NULL,
    removed_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, scope)
);

-- Security events (`store/security.rs`): enrolments and wrong codes, console logins, admin
-- actions. `origin` is `cli`, `console:USER`, `device:DEVICE` or `enrol`; `detail` is JSON and
-- never holds a secret.
CREATE TABLE IF NOT EXISTS security_audit (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    user_id   TEXT,
    device_id TEXT,
    origin    TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS security_audit_by_at ON security_audit(at);
CREATE INDEX IF NOT EXISTS security_audit_by_user ON security_audit(user_id, at);
CREATE INDEX IF NOT EXISTS security_audit_by_device ON security_audit(device_id, at);
"#;

/// Prepared statements kept per connection. One sync runs some 40 distinct statements
/// (push, log, rows, facts, digest, pull); rusqlite's default of 16 made most of them miss the
/// cache and be compiled again on every sync, a quarter of the server's CPU per sync.
pub(super) const STATEMENT_CACHE: usize = 128;

/// Opens (creating if asked) the database in `data_dir` with the durability settings.
pub fn open(data_dir: &Path, create: bool) -> Result<Connection, StoreError> {
    let path = data_dir.join(super::DB_FILE);
    if !create && !path.exists() {
        return Err(StoreError::NotFound(format!(
            "no server database at {}; run `gridlink-server init --data {}` first",
            path.display(),
            data_dir.display()
        )));
    }
    if create {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Invalid(format!("cannot create data directory {}: {e}", data_dir.display())))?;
    }
    let conn = Connection::open(&path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // 64 MiB of page cache: a street-sized import is one large transaction.
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(super::roster::PARTY_SCHEMA)?;
    add_missing_columns(&conn)?;
    super::digest::backfill(&conn)?;
    let found: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).ok();
    match found {
        None => {
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?1), ('reference_version', '1')",
                [SCHEMA_VERSION.to_string()],
            )?;
        }
        Some(v) if v == SCHEMA_VERSION.to_string() => {}
        Some(v) => {
            return Err(StoreError::Invalid(format!(
                "database schema version {v} is not {SCHEMA_VERSION}; use the matching gridlink-server"
            )));
        }
    }
    Ok(conn)
}

/// Columns added to existing tables after a data directory was created: `CREATE TABLE IF NOT
/// EXISTS` leaves an existing table as it was, so they are added here, once.
fn add_missing_columns(conn: &Connection) -> Result<(), StoreError> {
    const ADDED: &[(&str, &str, &str)] = &[
        ("devices", "app_version", "TEXT"),
        ("devices", "unsent", "INTEGER"),
        ("devices", "rejected", "INTEGER"),
        ("devices", "quarantined", "INTEGER"),
        ("devices", "wipe_requested_at", "INTEGER"),
        ("devices", "wipe_delivered_at", "INTEGER"),
        ("devices", "recovery_secret", "TEXT"),
        ("household_facts", "generation", "INTEGER NOT NULL DEFAULT 0"),
        ("visit_facts", "generation", "INTEGER NOT NULL DEFAULT 0"),
        ("case_facts", "generation", "INTEGER NOT NULL DEFAULT 0"),
        // Divergence digests: the document's entry (32 bytes) and the scopes (JSON) it is
        // counted in. NULL until computed (at open for documents stored before them).
        ("docs", "digest_entry", "BLOB"),
        ("docs", "digest_scopes", "TEXT"),
    ];
    for (table, column, kind) in ADDED {
        let present: bool = conn.query_row(
            &format!("SELECT COUNT(*) > 0 FROM pragma_table_info('{table}') WHERE name = ?1"),
            [column],
            |r| r.get(0),
        )?;
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
        }
    }
    // Indexes on added columns, once the columns exist.
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS household_facts_by_generation ON household_facts(generation);
         CREATE INDEX IF NOT EXISTS visit_facts_by_generation ON visit_facts(generation);
         CREATE INDEX IF NOT EXISTS case_facts_by_generation ON case_facts(generation);
         CREATE INDEX IF NOT EXISTS docs_without_digest ON docs(id) WHERE digest_entry IS NULL;",
    )?;
    Ok(())
}
