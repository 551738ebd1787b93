//! The PostgreSQL schema as versioned migrations, run in order at open under an advisory lock
//! (several server processes may start at once), each in its own transaction and recorded in
//! `schema_migrations`. A database migrated by a newer gridlink-server is refused with a clear
//! message instead of being written with an older idea of its tables.
//!
//! The tables mirror the SQLite schema (`store/schema.rs`) for what the sync path needs, with
//! one addition: `scope_heads`, the per-scope log counter that numbers log entries under a row
//! lock (see `postgres/push.rs`). Ids and scopes are `COLLATE "C"` where they are ordered, so
//! pages come in the same byte order as from SQLite whatever the database's locale.

use postgres::Client;

use crate::store::StoreError;

/// (version, name, SQL). Append only: a released migration is never edited.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "sync path: roster, devices, documents, logs", V1),
    (2, "supervisors' rows: household and case list rows, facts", V2),
    (3, "web console: passwords, login throttle, sessions", V3),
    (4, "residents' e-link: building links and help requests", V4),
];

/// The newest schema this build knows.
pub const LATEST: i32 = 4;

/// Key of the advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x6772_6964_6c69_6e6b; // "gridlink"

const V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('reference_version', '1');

CREATE TABLE streets (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE communities (
    id     TEXT PRIMARY KEY,
    street TEXT NOT NULL REFERENCES streets(id),
    name   TEXT NOT NULL
);
CREATE TABLE grids (
    id        TEXT PRIMARY KEY,
    community TEXT NOT NULL REFERENCES communities(id),
    name      TEXT NOT NULL
);
CREATE TABLE buildings (
    id              TEXT PRIMARY KEY,
    grid            TEXT NOT NULL REFERENCES grids(id),
    name            TEXT NOT NULL,
    units           INTEGER NOT NULL,
    floors          INTEGER NOT NULL,
    rooms_per_floor INTEGER NOT NULL
);
CREATE TABLE outlets (
    id        TEXT PRIMARY KEY,
    community TEXT NOT NULL REFERENCES communities(id),
    category  TEXT NOT NULL,
    name      TEXT NOT NULL,
    phone     TEXT NOT NULL,
    address   TEXT NOT NULL,
    hours     TEXT NOT NULL
);
CREATE TABLE party_branches (
    id    TEXT PRIMARY KEY,
    grid  TEXT NOT NULL REFERENCES grids(id),
    name  TEXT NOT NULL,
    phone TEXT NOT NULL
);
CREATE TABLE party_groups (
    id       TEXT PRIMARY KEY,
    branch   TEXT NOT NULL REFERENCES party_branches(id),
    building TEXT NOT NULL REFERENCES buildings(id),
    name     TEXT NOT NULL
);
CREATE TABLE party_members (
    id          TEXT PRIMARY KEY,
    branch      TEXT NOT NULL REFERENCES party_branches(id),
    building    TEXT REFERENCES buildings(id),
    name        TEXT NOT NULL,
    phone       TEXT NOT NULL,
    reported_at TEXT NOT NULL
);
CREATE TABLE volunteers (
    id        TEXT PRIMARY KEY,
    community TEXT NOT NULL REFERENCES communities(id),
    name      TEXT NOT NULL,
    phone     TEXT NOT NULL,
    skills    TEXT NOT NULL
);
CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    phone      TEXT NOT NULL,
    pledge     TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE enrol_codes (
    code_hash  TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    device_id  TEXT
);
CREATE TABLE devices (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users(id),
    name              TEXT NOT NULL,
    token_hash        TEXT NOT NULL UNIQUE,
    actor             TEXT NOT NULL UNIQUE,
    created_at        BIGINT NOT NULL,
    revoked_at        BIGINT,
    last_sync_at      BIGINT,
    last_device_time  BIGINT,
    app_version       TEXT,
    unsent            BIGINT,
    rejected          BIGINT,
    quarantined       BIGINT,
    wipe_requested_at BIGINT,
    wipe_delivered_at BIGINT,
    recovery_secret   TEXT
);
CREATE INDEX devices_by_user ON devices(user_id);

CREATE TABLE docs (
    id            TEXT COLLATE "C" PRIMARY KEY,
    doc_type      TEXT NOT NULL,
    bytes         BYTEA NOT NULL,
    street        TEXT NOT NULL,
    community     TEXT NOT NULL,
    grid          TEXT NOT NULL,
    building      TEXT,
    updated_at    BIGINT NOT NULL,
    digest_entry  BYTEA,
    digest_scopes TEXT
);
CREATE TABLE doc_scopes (
    scope  TEXT COLLATE "C" NOT NULL,
    doc_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (scope, doc_id)
);
CREATE INDEX doc_scopes_by_doc ON doc_scopes(doc_id);
CREATE TABLE scope_digests (
    scope     TEXT PRIMARY KEY,
    doc_count BIGINT NOT NULL,
    xor       BYTEA NOT NULL
);
-- Pushes are idempotent on this key: the last guard if two servers store one change at once.
CREATE TABLE changes (
    hash        TEXT PRIMARY KEY,
    doc_id      TEXT NOT NULL,
    bytes       BYTEA NOT NULL,
    actor       TEXT NOT NULL,
    accepted_at BIGINT NOT NULL
);
-- The last sequence number given out in each scope's log (never lowered, also not by
-- compaction). Updated in the push transaction, so its row lock orders the writers of a scope.
CREATE TABLE scope_heads (
    scope TEXT PRIMARY KEY,
    head  BIGINT NOT NULL
);
CREATE TABLE scope_log (
    scope       TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    change_hash TEXT NOT NULL,
    doc_id      TEXT NOT NULL,
    PRIMARY KEY (scope, seq)
);
CREATE INDEX scope_log_by_change ON scope_log(change_hash);
CREATE TABLE scope_floor (
    scope TEXT PRIMARY KEY,
    floor BIGINT NOT NULL
);
CREATE TABLE audit (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    change_hash TEXT NOT NULL,
    doc_id      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    server_time BIGINT NOT NULL,
    device_time BIGINT NOT NULL,
    change_time BIGINT NOT NULL
);
CREATE TABLE refusals (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    change_hash TEXT NOT NULL,
    doc_id      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    code        TEXT NOT NULL,
    message     TEXT NOT NULL,
    bytes_len   BIGINT NOT NULL,
    server_time BIGINT NOT NULL
);
CREATE TABLE quarantine (
    hash           TEXT PRIMARY KEY,
    doc_id         TEXT NOT NULL,
    bytes          BYTEA NOT NULL,
    actor          TEXT NOT NULL,
    accepted_at    BIGINT NOT NULL,
    reason         TEXT NOT NULL,
    quarantined_at BIGINT NOT NULL
);
CREATE TABLE repair_marks (
    scope  TEXT NOT NULL,
    seq    BIGINT NOT NULL,
    doc_id TEXT NOT NULL,
    PRIMARY KEY (scope, seq)
);
CREATE TABLE scope_grace (
    user_id    TEXT NOT NULL,
    scope      TEXT NOT NULL,
    removed_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, scope)
);
CREATE TABLE security_audit (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    user_id   TEXT,
    device_id TEXT,
    origin    TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE INDEX security_audit_by_at ON security_audit(at);
CREATE INDEX security_audit_by_user ON security_audit(user_id, at);
CREATE INDEX security_audit_by_device ON security_audit(device_id, at);
"#;

/// The console's list rows and the supervisors' facts, as SQLite's (`store/schema.rs`), derived
/// from the documents in the transaction of each document write (`postgres/facts.rs`). The
/// facts generation is the counter row `meta.facts_generation` (see `postgres/facts.rs` for
/// why not a SEQUENCE). Ids are `COLLATE "C"` so they order as SQLite's.
const V2: &str = r#"
CREATE TABLE household_rows (
    id            TEXT COLLATE "C" PRIMARY KEY,
    grid          TEXT NOT NULL,
    building      TEXT,
    address       TEXT NOT NULL,
    head          TEXT NOT NULL,
    phone         TEXT NOT NULL,
    status        TEXT NOT NULL,
    tags          TEXT NOT NULL,
    needs         TEXT NOT NULL,
    residents     BIGINT NOT NULL,
    visits        BIGINT NOT NULL,
    last_visit_at BIGINT,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX household_rows_by_grid ON household_rows(grid);
CREATE TABLE case_rows (
    id               TEXT COLLATE "C" PRIMARY KEY,
    grid             TEXT NOT NULL,
    building         TEXT,
    household        TEXT,
    kind             TEXT NOT NULL,
    title            TEXT NOT NULL,
    status           TEXT NOT NULL,
    reporter         TEXT NOT NULL,
    responsible      TEXT NOT NULL,
    responsible_name TEXT NOT NULL,
    reported_at      BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX case_rows_by_grid ON case_rows(grid, status);
CREATE TABLE household_facts (
    id         TEXT COLLATE "C" PRIMARY KEY,
    street     TEXT NOT NULL,
    community  TEXT NOT NULL,
    grid       TEXT NOT NULL,
    facts      TEXT NOT NULL,
    generation BIGINT NOT NULL
);
CREATE INDEX household_facts_by_grid ON household_facts(grid);
CREATE INDEX household_facts_by_community ON household_facts(community);
CREATE INDEX household_facts_by_street ON household_facts(street);
CREATE INDEX household_facts_by_generation ON household_facts(generation);
CREATE TABLE visit_facts (
    id         TEXT COLLATE "C" PRIMARY KEY,
    household  TEXT NOT NULL,
    street     TEXT NOT NULL,
    community  TEXT NOT NULL,
    grid       TEXT NOT NULL,
    at         BIGINT NOT NULL,
    facts      TEXT NOT NULL,
    generation BIGINT NOT NULL
);
CREATE INDEX visit_facts_by_household ON visit_facts(household);
CREATE INDEX visit_facts_by_grid ON visit_facts(grid);
CREATE INDEX visit_facts_by_community ON visit_facts(community);
CREATE INDEX visit_facts_by_street ON visit_facts(street);
CREATE INDEX visit_facts_by_generation ON visit_facts(generation);
CREATE TABLE case_facts (
    id          TEXT COLLATE "C" PRIMARY KEY,
    street      TEXT NOT NULL,
    community   TEXT NOT NULL,
    grid        TEXT NOT NULL,
    reported_at BIGINT NOT NULL,
    facts       TEXT NOT NULL,
    generation  BIGINT NOT NULL
);
CREATE INDEX case_facts_by_grid ON case_facts(grid);
CREATE INDEX case_facts_by_community ON case_facts(community);
CREATE INDEX case_facts_by_street ON case_facts(street);
CREATE INDEX case_facts_by_generation ON case_facts(generation);
"#;

/// The web console's own tables, as SQLite's (`store/schema.rs`), used by
/// `postgres/console.rs`: Argon2id PHC strings per user; the login throttle keyed by account,
/// or by the hash of a typed login that names none; sessions by the SHA-256 of their cookie
/// token. Being in the database, a throttle count and a session hold across every server
/// process. `console_sessions.seq` is the one addition: the insertion order SQLite's rowid
/// gives, which breaks ties between sessions started in the same millisecond when a user's
/// oldest ones end.
const V3: &str = r#"
CREATE TABLE console_passwords (
    user_id TEXT PRIMARY KEY REFERENCES users(id),
    hash    TEXT NOT NULL,
    set_at  BIGINT NOT NULL
);
CREATE TABLE console_throttle (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    not_before   BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX console_throttle_by_age ON console_throttle(updated_at);
CREATE TABLE console_sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    csrf         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    seq          BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX console_sessions_by_user ON console_sessions(user_id);
"#;

/// The residents' e-link, as SQLite's (`store/elink.rs`): each building's link token, and
/// each filed request's reference, nonce and phone beside its case (a document). The nonce's
/// unique key is the last guard against a double tap filed twice; `postgres/elink.rs` takes
/// advisory locks first so two processes never race to it. The per-building index serves the
/// hourly cap's count.
const V4: &str = r#"
CREATE TABLE elink_links (
    building   TEXT PRIMARY KEY REFERENCES buildings(id),
    token      TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE elink_requests (
    reference  TEXT PRIMARY KEY,
    nonce      TEXT NOT NULL UNIQUE,
    building   TEXT NOT NULL,
    case_id    TEXT NOT NULL,
    phone      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX elink_requests_by_building ON elink_requests(building, created_at);
"#;

/// Brings the database to [`LATEST`]; refuses one that is newer. Returns the migrations run.
pub fn migrate(client: &mut Client, now: i64) -> Result<Vec<i32>, StoreError> {
    let mut tx = client.transaction()?;
    // Held to the end of this transaction: a second process waits here, then finds the work done.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    // `IF NOT EXISTS` on an existing table is a NOTICE, which every command would print.
    tx.batch_execute("SET LOCAL client_min_messages TO warning")?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at BIGINT NOT NULL
        )",
    )?;
    let current: i32 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])?.get(0);
    if current > LATEST {
        return Err(StoreError::Invalid(format!(
            "the database schema is at version {current}, newer than this gridlink-server knows ({LATEST}); \
             upgrade gridlink-server instead of running an older one on it"
        )));
    }
    let mut ran = Vec::new();
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > current) {
        // DDL is transactional in PostgreSQL: a migration applies whole or not at all.
        tx.batch_execute(sql).map_err(|e| StoreError::Backend(format!("migration {version} ({name}): {e}")))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[version, name, &now],
        )?;
        ran.push(*version);
    }
    tx.commit()?;
    Ok(ran)
}
