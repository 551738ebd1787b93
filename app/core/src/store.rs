//! The encrypted local store: one SQLCipher file, `DIR/gridlink.db`.
//!
//! Tables (schema version in `PRAGMA user_version`, see [`MIGRATIONS`]):
//!
//! * `docs`: each document's automerge bytes (`save()`), heads and delivery scopes;
//! * `outbox`: unsent changes (hash, document, bytes) in commit order;
//! * `cursors`: the protocol [`Cursor`] per scope;
//! * `rejected`: changes the server refused, with code and message, kept for the user;
//! * `repair_wanted`: documents whose server copy must be fetched;
//! * `quarantine`: documents automerge failed or panicked on, with the offending bytes and the
//!   reason, kept (never deleted) and marked resolved once a clean repair arrives (see
//!   [`crate::Client::quarantined`]);
//! * `meta`: server url, device, token, actor, principal, reference data, sync state, the CA
//!   trusted for the server (`server_ca`); the PIN is not in here but wraps the key (see
//!   [`crate::keys`]);
//! * query tables `households`, `residents`, `visits`, `household_tags`, `cases`, `timeline`,
//!   `activities`, `activity_people` (see [`crate::activities`]),
//!   rewritten from the document in the same transaction as every document write
//!   ([`save_doc`]), so lists never disagree with documents; `household_conflicts` marks the
//!   household files holding concurrent values the same way (see [`crate::conflicts`]). A
//!   household row carries its next due date and tags, and the list indexes follow the
//!   screens' orders, so the lists filter, order and page in SQL (schema 5, `LIST_MIGRATION`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use automerge::AutoCommit;
use gridlink_shared::policy::{self, PolicyConfig};
use gridlink_shared::protocol::Cursor;
use gridlink_shared::time::Millis;
use gridlink_shared::{AnyDoc, CaseFile, DocId, HouseholdFile, Principal, Roster, Scope, doc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::error::{Error, Result};
use crate::quarantine::guarded;
use crate::search;

pub const DB_FILE: &str = "gridlink.db";
pub const KEY_FILE: &str = "db.key";
pub const KEY_ENV: &str = "GRIDLINK_DB_KEY";
/// The meta key holding the CA certificate (PEM) given at enrolment with `--ca`.
pub const SERVER_CA: &str = "server_ca";

/// A far-future instant used when materializing due dates, so a visit's own time counts as
/// recorded; the read side compares due dates with the real `now`.
const MATERIALIZE_NOW: Millis = 4_102_444_800_000;

/// Schema migrations, applied in order; `user_version` is the count applied.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE docs (
    id TEXT PRIMARY KEY,
    doc_type TEXT NOT NULL,
    bytes BLOB NOT NULL,
    heads TEXT NOT NULL,
    scopes TEXT NOT NULL,
    kept_aside INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    hash TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL,
    bytes BLOB NOT NULL,
    summary TEXT NOT NULL,
    recorded_at INTEGER NOT NULL
);
CREATE INDEX outbox_doc ON outbox(doc);
CREATE TABLE cursors (scope TEXT PRIMARY KEY, cursor TEXT NOT NULL);
CREATE TABLE rejected (
    hash TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    bytes BLOB NOT NULL,
    summary TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    rejected_at INTEGER NOT NULL
);
CREATE TABLE repair_wanted (doc TEXT PRIMARY KEY);
CREATE TABLE households (
    id TEXT PRIMARY KEY,
    building_id TEXT NOT NULL,
    grid_id TEXT NOT NULL,
    building_name TEXT NOT NULL,
    unit TEXT NOT NULL,
    room TEXT NOT NULL,
    address TEXT NOT NULL,
    head TEXT NOT NULL,
    phone TEXT NOT NULL,
    moved_out INTEGER NOT NULL,
    search TEXT NOT NULL
);
CREATE INDEX households_building ON households(building_id);
CREATE TABLE residents (
    household TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    birth_year INTEGER NOT NULL,
    PRIMARY KEY (household, id)
);
CREATE TABLE visits (
    household TEXT NOT NULL,
    id TEXT NOT NULL,
    at INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    visitor TEXT NOT NULL,
    visitor_name TEXT NOT NULL,
    PRIMARY KEY (household, id)
);
CREATE TABLE household_tags (
    household TEXT NOT NULL,
    tag TEXT NOT NULL,
    since TEXT NOT NULL,
    due_on TEXT,
    last_met INTEGER,
    PRIMARY KEY (household, tag)
);
CREATE INDEX household_tags_due ON household_tags(due_on);
CREATE TABLE cases (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    is_open INTEGER NOT NULL,
    household TEXT,
    building_id TEXT,
    grid_id TEXT NOT NULL,
    responsible TEXT NOT NULL,
    responsible_name TEXT NOT NULL,
    reported_at INTEGER NOT NULL,
    arrival_deadline INTEGER,
    first_arrival INTEGER,
    completion_deadline INTEGER NOT NULL
);
CREATE TABLE timeline (
    case_id TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    by_name TEXT NOT NULL,
    at INTEGER NOT NULL,
    lamport INTEGER NOT NULL,
    PRIMARY KEY (case_id, id)
);
"#,
    r#"
CREATE INDEX cases_household ON cases(household);
CREATE INDEX cases_responsible ON cases(responsible, is_open);
CREATE INDEX cases_open_deadline ON cases(is_open, completion_deadline);
CREATE INDEX visits_household ON visits(household);
"#,
    r#"
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc TEXT NOT NULL,
    bytes BLOB NOT NULL,
    reason TEXT NOT NULL,
    quarantined_at INTEGER NOT NULL,
    resolved_at INTEGER,
    resolution TEXT
);
CREATE INDEX quarantine_doc ON quarantine(doc, resolved_at);
"#,
    crate::activities::MIGRATION,
    LIST_MIGRATION,
];

/// Schema 5: the list screens filter, order and page in SQL (street scale: 25,000 households,
/// 15,000 cases). Each household row gains its next due date and its tags; old rows are filled
/// from `household_tags` (itself derived from the documents in the same transactions), so an
/// existing phone needs no document to be loaded again. The indexes follow the lists' orders:
/// households by building, unit and room (with the search text, so a search scans this index
/// alone, in order); cases by completion deadline (then id) within each filter.
const LIST_MIGRATION: &str = r#"
ALTER TABLE households ADD COLUMN next_due TEXT;
ALTER TABLE households ADD COLUMN tags TEXT NOT NULL DEFAULT '';
UPDATE households SET
    next_due = CASE WHEN moved_out THEN NULL
        ELSE (SELECT min(t.due_on) FROM household_tags t WHERE t.household = households.id) END,
    tags = coalesce((SELECT group_concat(tag, ',') FROM
        (SELECT t.tag AS tag FROM household_tags t WHERE t.household = households.id ORDER BY t.tag)), '');
CREATE INDEX households_order ON households(building_name, unit, CAST(room AS INTEGER), room, id, search);
CREATE INDEX household_tags_tag ON household_tags(tag, household);
CREATE INDEX households_next_due ON households(next_due);
DROP INDEX households_building;
CREATE INDEX households_building ON households(building_id, building_name, unit, CAST(room AS INTEGER), room, id);
DROP INDEX cases_open_deadline;
CREATE INDEX cases_open_deadline ON cases(is_open, completion_deadline, id);
DROP INDEX cases_responsible;
CREATE INDEX cases_responsible ON cases(responsible, is_open, completion_deadline, id);
CREATE INDEX cases_deadline ON cases(completion_deadline, id);
CREATE INDEX cases_status ON cases(status, completion_deadline, id);
"#;

/// The database key for opening `dir` without a PIN; see [`crate::keys::resolve_key`].
pub fn resolve_key(dir: &Path) -> Result<[u8; 32]> {
    crate::keys::resolve_key(dir)
}

pub(crate) fn write_private_file(path: &Path, contents: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| Error::file("cannot create", path, e))?;
    file.write_all(contents).and_then(|_| file.sync_all()).map_err(|e| Error::file("cannot write", path, e))
}

/// Opens the SQLCipher database with `key`, checks the key really opens it, and migrates.
pub fn open_encrypted(path: &Path, key: &[u8; 32]) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex::encode(key)))?;
    // SQLCipher would also print its own low-level lines to stderr on a wrong key; the error
    // returned below says it in words people can act on.
    conn.execute_batch("PRAGMA cipher_log_level = NONE;")?;
    // SQLCipher only notices a wrong key at the first read.
    let readable = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0));
    if let Err(e) = readable {
        let not_a_db =
            matches!(&e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase);
        return Err(if not_a_db { Error::WrongKey { path: path.display().to_string() } } else { e.into() });
    }
    // A first sync commits pages of several megabytes; the WAL grows to hold one and would
    // keep that size on the phone's disk for good without a limit.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;
         PRAGMA journal_size_limit = 8388608;",
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // Pages stay decrypted in SQLite's cache: a street supervisor's household rows and list
    // indexes are about 15 MiB, and with the default 2 MiB every list read would decrypt
    // them again.
    conn.execute_batch("PRAGMA cache_size = -16384;")?;
    // The save path runs a dozen statements per document; a first sync saves tens of
    // thousands of documents, so each statement is compiled once per connection.
    conn.set_prepared_statement_cache_capacity(64);
    migrate(&conn)?;
    // The derived tables the save path writes (kept outside the migrations: they are caches
    // that can be dropped and rebuilt), created once here rather than at every save.
    crate::figures::create_cache(&conn)?;
    crate::conflicts::create_table(&conn)?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<()> {
    let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if version > MIGRATIONS.len() {
        return Err(Error::NewerSchema { found: version, known: MIGRATIONS.len() });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        conn.execute_batch(&format!("BEGIN; {sql}; PRAGMA user_version = {}; COMMIT;", index + 1))?;
    }
    Ok(())
}

// ----- meta ---------------------------------------------------------------------------------

pub fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
}

pub fn meta_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

pub fn meta_delete(conn: &Connection, key: &str) -> Result<()> {
    conn.execute("DELETE FROM meta WHERE key = ?1", [key])?;
    Ok(())
}

pub fn meta_json<T: serde::de::DeserializeOwned>(conn: &Connection, key: &str) -> Result<Option<T>> {
    meta_get(conn, key)?
        .map(|raw| serde_json::from_str(&raw).map_err(|e| Error::Corrupt(format!("stored {key}: {e}"))))
        .transpose()
}

pub fn meta_set_json<T: serde::Serialize>(conn: &Connection, key: &str, value: &T) -> Result<()> {
    let raw = serde_json::to_string(value).map_err(|e| Error::Encode(format!("{key}: {e}")))?;
    meta_set(conn, key, &raw)
}

pub fn principal(conn: &Connection) -> Result<Principal> {
    meta_json(conn, "principal")?.ok_or(Error::NotEnrolled)
}

pub fn roster(conn: &Connection) -> Result<Roster> {
    Ok(meta_json(conn, "roster")?.unwrap_or_default())
}

/// This device's automerge actor (given by the server at enrolment).
pub fn actor(conn: &Connection) -> Result<automerge::ActorId> {
    let hex_actor = meta_get(conn, "actor")?.ok_or(Error::NotEnrolled)?;
    let bytes = hex::decode(&hex_actor).map_err(|e| Error::Corrupt(format!("stored actor id is not hex: {e}")))?;
    Ok(automerge::ActorId::from(bytes))
}

// ----- cursors ------------------------------------------------------------------------------

pub fn cursors(conn: &Connection) -> Result<BTreeMap<Scope, Cursor>> {
    let mut stmt = conn.prepare("SELECT scope, cursor FROM cursors")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (scope, cursor) = row?;
        let scope: Scope = scope.parse().map_err(|e| Error::Corrupt(format!("stored scope: {e}")))?;
        let cursor: Cursor =
            serde_json::from_str(&cursor).map_err(|e| Error::Corrupt(format!("stored cursor: {e}")))?;
        out.insert(scope, cursor);
    }
    Ok(out)
}

pub fn set_cursor(conn: &Connection, scope: &Scope, cursor: &Cursor) -> Result<()> {
    let json = serde_json::to_string(cursor).map_err(|e| Error::Encode(format!("cursor: {e}")))?;
    conn.execute(
        "INSERT INTO cursors (scope, cursor) VALUES (?1, ?2) ON CONFLICT(scope) DO UPDATE SET cursor = excluded.cursor",
        params![scope.to_string(), json],
    )?;
    Ok(())
}

// ----- documents ----------------------------------------------------------------------------

/// Loads a document's automerge state, if held. A panic of automerge on the stored bytes is
/// returned as an error, never propagated; the client's reads, writes and sync then set the
/// document aside (see [`crate::Error::Quarantined`]).
pub fn load_doc(conn: &Connection, id: DocId) -> Result<Option<AutoCommit>> {
    let bytes: Option<Vec<u8>> =
        conn.query_row("SELECT bytes FROM docs WHERE id = ?1", [id.to_string()], |r| r.get(0)).optional()?;
    bytes.map(|b| guarded(|| Ok(doc::load(&b)?))).transpose()
}

/// Saves a document (compacted) and rewrites its query rows from `value`, in the caller's
/// transaction. `value` is `None` when the bytes do not hydrate yet (changes still waiting
/// for their dependencies); the bytes are kept and the rows left as they were.
pub fn save_doc(
    tx: &Transaction<'_>,
    id: DocId,
    doc: &mut AutoCommit,
    policy: &PolicyConfig,
) -> Result<Option<AnyDoc>> {
    write_doc(tx, id, doc, policy, false)
}

/// [`save_doc`] for a document holding bytes from outside (pulled or repaired): the saved
/// bytes are loaded back first, and stored only if they load. automerge (release builds)
/// accepts a change re-sent under another seq and saves it, but then panics loading that
/// save; this keeps such bytes out of `docs`, so the previous good state stays.
pub(crate) fn save_pulled_doc(
    tx: &Transaction<'_>,
    id: DocId,
    doc: &mut AutoCommit,
    policy: &PolicyConfig,
) -> Result<Option<AnyDoc>> {
    write_doc(tx, id, doc, policy, true)
}

/// Saves a document that arrived whole (a snapshot into an empty slot): `bytes` are what was
/// received and already loaded into `doc` (hydrating to `value`, `None` when it does not
/// hydrate; the caller may have done both on another thread), so they are stored as they are,
/// without saving the document again and proving the save loads (a first sync stores tens of
/// thousands).
pub(crate) fn save_pulled_snapshot(
    tx: &Transaction<'_>,
    id: DocId,
    doc: &mut AutoCommit,
    bytes: &[u8],
    value: Option<AnyDoc>,
    policy: &PolicyConfig,
) -> Result<Option<AnyDoc>> {
    write_rows(tx, id, doc, bytes, value, policy)
}

fn write_doc(
    tx: &Transaction<'_>,
    id: DocId,
    doc: &mut AutoCommit,
    policy: &PolicyConfig,
    check_loads: bool,
) -> Result<Option<AnyDoc>> {
    let bytes = guarded(|| Ok(doc.save()))?;
    if check_loads {
        guarded(|| Ok(doc::load(&bytes)?))?;
    }
    let value = guarded(|| Ok(doc::read_any(doc).ok()))?;
    write_rows(tx, id, doc, &bytes, value, policy)
}

/// Stores `bytes` (which load to `doc`, hydrating to `value`) and rewrites the query rows.
fn write_rows(
    tx: &Transaction<'_>,
    id: DocId,
    doc: &mut AutoCommit,
    bytes: &[u8],
    value: Option<AnyDoc>,
    policy: &PolicyConfig,
) -> Result<Option<AnyDoc>> {
    let heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    let (doc_type, scopes) = match &value {
        Some(v) => (v.doc_type().code().to_string(), v.scopes().iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        None => ("unknown".to_string(), Vec::new()),
    };
    tx.prepare_cached(
        "INSERT INTO docs (id, doc_type, bytes, heads, scopes) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(id) DO UPDATE SET doc_type = excluded.doc_type, bytes = excluded.bytes,
             heads = excluded.heads, scopes = excluded.scopes",
    )?
    .execute(params![
        id.to_string(),
        doc_type,
        bytes,
        serde_json::to_string(&heads).unwrap_or_default(),
        serde_json::to_string(&scopes).unwrap_or_default()
    ])?;
    if let Some(value) = &value {
        materialize(tx, value, policy)?;
        crate::figures::cache_facts(tx, value, policy)?;
    }
    crate::conflicts::mark(tx, id, doc, value.as_ref())?;
    Ok(value)
}

/// Deletes a document and its query rows.
pub fn delete_doc(tx: &Transaction<'_>, id: DocId) -> Result<()> {
    let id = id.to_string();
    tx.prepare_cached("DELETE FROM docs WHERE id = ?1")?.execute([&id])?;
    unmaterialize(tx, &id)?;
    tx.prepare_cached("DELETE FROM repair_wanted WHERE doc = ?1")?.execute([&id])?;
    Ok(())
}

fn unmaterialize(tx: &Transaction<'_>, id: &str) -> Result<()> {
    tx.prepare_cached("DELETE FROM households WHERE id = ?1")?.execute([id])?;
    tx.prepare_cached("DELETE FROM residents WHERE household = ?1")?.execute([id])?;
    tx.prepare_cached("DELETE FROM visits WHERE household = ?1")?.execute([id])?;
    tx.prepare_cached("DELETE FROM household_tags WHERE household = ?1")?.execute([id])?;
    tx.prepare_cached("DELETE FROM cases WHERE id = ?1")?.execute([id])?;
    tx.prepare_cached("DELETE FROM timeline WHERE case_id = ?1")?.execute([id])?;
    crate::activities::unmaterialize(tx, id)?;
    Ok(())
}

/// Rewrites the query rows of one document.
pub fn materialize(tx: &Transaction<'_>, value: &AnyDoc, policy: &PolicyConfig) -> Result<()> {
    let id = value.doc_id().to_string();
    unmaterialize(tx, &id)?;
    match value {
        AnyDoc::Household(h) => materialize_household(tx, h, policy),
        AnyDoc::Case(c) => materialize_case(tx, c, policy),
        AnyDoc::Activity(a) => crate::activities::materialize(tx, a),
    }
}

fn materialize_household(tx: &Transaction<'_>, h: &HouseholdFile, policy: &PolicyConfig) -> Result<()> {
    let id = h.id.to_string();
    let mut names: Vec<&str> = vec![&h.head];
    names.extend(h.residents.values().map(|r| r.name.as_str()));
    let search_text = search::search_text(&names, &[&h.address(), &h.phone, &h.notes]);
    let moved_out = h.status == gridlink_shared::HouseholdStatus::MovedOut;
    let dues = policy::visits_due(h, MATERIALIZE_NOW, policy);
    // The list's due filter and badge: the earliest due date over the tags; a household that
    // moved out is never due.
    let next_due = if moved_out { None } else { dues.iter().map(|d| d.due_on).min() };
    let mut tags: Vec<&str> = h.tags.keys().map(|t| t.code()).collect();
    tags.sort_unstable();
    tx.prepare_cached(
        "INSERT INTO households (id, building_id, grid_id, building_name, unit, room, address, head, phone,
             moved_out, search, next_due, tags)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        id,
        h.placement.building.map(|b| b.to_string()).unwrap_or_default(),
        h.placement.grid.to_string(),
        h.building_name,
        h.unit,
        h.room,
        h.address(),
        h.head,
        h.phone,
        moved_out,
        search_text,
        next_due.map(|d| d.to_string()),
        tags.join(",")
    ])?;
    for r in h.residents.values() {
        tx.prepare_cached("INSERT INTO residents (household, id, name, birth_year) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![id, r.id.to_string(), r.name, r.birth_year])?;
    }
    for v in h.visits.values() {
        tx.prepare_cached(
            "INSERT INTO visits (household, id, at, outcome, visitor, visitor_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            id,
            v.id.to_string(),
            v.at,
            v.outcome.code(),
            v.visitor.to_string(),
            v.visitor_name
        ])?;
    }
    for (tag, entry) in &h.tags {
        let due = dues.iter().find(|d| d.tag == *tag);
        tx.prepare_cached(
            "INSERT INTO household_tags (household, tag, since, due_on, last_met) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            id,
            tag.code(),
            entry.since.to_string(),
            due.map(|d| d.due_on.to_string()),
            due.and_then(|d| d.last_met)
        ])?;
    }
    Ok(())
}

fn materialize_case(tx: &Transaction<'_>, c: &CaseFile, policy: &PolicyConfig) -> Result<()> {
    let id = c.id.to_string();
    let (responsible, responsible_name) = c.responsible();
    tx.prepare_cached(
        "INSERT INTO cases (id, kind, title, status, is_open, household, building_id, grid_id, responsible,
             responsible_name, reported_at, arrival_deadline, first_arrival, completion_deadline)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        id,
        c.kind.to_string(),
        c.title,
        c.status().code(),
        c.is_open(),
        c.household.map(|h| h.to_string()),
        c.placement.building.map(|b| b.to_string()),
        c.placement.grid.to_string(),
        responsible.to_string(),
        responsible_name,
        c.reported_at,
        policy::arrival_deadline(c, policy),
        policy::first_arrival(c),
        policy::completion_deadline(c, policy)
    ])?;
    for a in c.timeline.values() {
        tx.prepare_cached(
            "INSERT INTO timeline (case_id, id, kind, by_name, at, lamport) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![id, a.id.to_string(), a.kind.code(), a.by_name, a.at, a.lamport as i64])?;
    }
    Ok(())
}

/// Number of outbox entries (unsent changes) of one document.
pub fn unsent_for_doc(conn: &Connection, id: DocId) -> Result<usize> {
    Ok(conn.query_row("SELECT count(*) FROM outbox WHERE doc = ?1", [id.to_string()], |r| r.get::<_, i64>(0))? as usize)
}

pub fn count(conn: &Connection, table: &str) -> Result<usize> {
    Ok(conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0))? as usize)
}

/// Fills a store with documents as if synced (fixtures, demos, UI tests): the documents are
/// created with a fresh local actor and nothing goes to the outbox.
pub fn install_documents(tx: &Transaction<'_>, principal: &Principal, roster: &Roster, docs: &[AnyDoc]) -> Result<()> {
    meta_set_json(tx, "principal", principal)?;
    meta_set_json(tx, "roster", roster)?;
    if meta_get(tx, "actor")?.is_none() {
        meta_set(tx, "actor", &automerge::ActorId::random().to_hex_string())?;
    }
    let policy = PolicyConfig::default();
    let installer = automerge::ActorId::random();
    for value in docs {
        let mut automerge_doc = match value {
            AnyDoc::Household(h) => doc::create(h, installer.clone(), h.created_at)?,
            AnyDoc::Case(c) => doc::create(c, installer.clone(), c.reported_at)?,
            AnyDoc::Activity(a) => doc::create(a, installer.clone(), a.recorded_at)?,
        };
        save_doc(tx, value.doc_id(), &mut automerge_doc, &policy)?;
    }
    Ok(())
}
