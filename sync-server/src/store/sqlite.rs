//! The SQLite backend: one file in the data directory, one writing connection per process
//! behind a mutex (SQLite has one writer anyway), every sync that pushes in one `BEGIN
//! IMMEDIATE` transaction. Syncs with nothing to push and token checks read on connections of
//! their own ([`Readers`]): in WAL mode a read transaction is one consistent snapshot that
//! takes no lock, so a phone that only pulls never waits behind another phone's push (nor
//! behind an admin command writing from another process). Their last-sync bookkeeping is
//! written right away when the writer is free, else by the next write (`pending_seen`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use automerge::ActorId;
use gridlink_shared::demo::{self, DemoData, DemoSize};
use gridlink_shared::protocol::{EnrollRequest, EnrollResponse, SyncRequest, SyncResponse};
use gridlink_shared::time::Millis;
use gridlink_shared::{AnyDoc, DeviceId, Role, Scope, Staff, UserId, doc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::push::{LogAppender, insert_change, write_doc};
use super::security::{Origin, SecurityEvent, SecurityKind};
use super::{AuthedDevice, PushLimits, Store, StoreError, roster, schema};
use crate::secrets;

/// The SQLite store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    // Boxed: the store sits in enums beside other backends and stays pointer-sized there.
    readers: Box<Readers>,
    /// What pull-only syncs reported while the writer was busy, by device: written by the next
    /// transaction that gets the writer.
    pending_seen: Box<Mutex<HashMap<DeviceId, Seen>>>,
}

/// Read-only connections to the database file, opened on demand and kept for reuse.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// Idle read connections kept open; more are opened while needed and closed after.
const IDLE_READERS: usize = 8;

impl Readers {
    fn new(data_dir: &Path) -> Readers {
        Readers { path: data_dir.join(super::DB_FILE), idle: Mutex::default() }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => {
                let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let conn = Connection::open_with_flags(&self.path, flags)?;
                // WAL readers rarely see SQLITE_BUSY (a checkpoint's recovery), but may.
                conn.busy_timeout(Duration::from_secs(10))?;
                conn.set_prepared_statement_cache_capacity(schema::STATEMENT_CACHE);
                conn
            }
        };
        if !conn.is_autocommit() {
            conn.execute_batch("ROLLBACK")?;
        }
        let result = f(&mut conn);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }
}

/// A device's last sync as a pull-only sync saw it.
#[derive(Clone, Debug)]
struct Seen {
    at: Millis,
    device_time: Millis,
    health: Option<gridlink_shared::protocol::DeviceHealth>,
}

impl Seen {
    fn of(request: &SyncRequest, now: Millis) -> Seen {
        Seen { at: now, device_time: request.device_time, health: request.health.clone() }
    }

    fn write(&self, conn: &Connection, device: DeviceId) -> Result<(), StoreError> {
        conn.prepare_cached("UPDATE devices SET last_sync_at = ?1, last_device_time = ?2 WHERE id = ?3")?
            .execute(params![self.at, self.device_time, device.to_string()])?;
        if let Some(health) = &self.health {
            conn.prepare_cached(
                "UPDATE devices SET app_version = ?1, unsent = ?2, rejected = ?3, quarantined = ?4 WHERE id = ?5",
            )?
            .execute(params![
                super::reported_app_version(&health.app_version),
                health.unsent.min(i64::MAX as u64) as i64,
                health.rejected.min(i64::MAX as u64) as i64,
                health.quarantined.min(i64::MAX as u64) as i64,
                device.to_string()
            ])?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

/// What `init` did.
#[derive(Clone, Debug, Serialize)]
pub struct InitSummary {
    pub communities: usize,
    pub grids: usize,
    pub buildings: usize,
    pub staff: usize,
    pub households: usize,
    pub cases: usize,
    pub changes: usize,
    pub log_entries: usize,
    /// Generating the dataset.
    pub generate_ms: u128,
    /// Building the automerge documents (part of `store_ms`).
    pub build_ms: u128,
    /// Building and writing everything, in one transaction.
    pub store_ms: u128,
}

/// A user as `user list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct UserRow {
    pub id: UserId,
    pub name: String,
    pub role: Role,
    pub phone: String,
    pub scopes: Vec<Scope>,
    pub active_devices: u64,
}

/// A device as `device list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceRow {
    pub id: DeviceId,
    pub user: UserId,
    pub user_name: String,
    pub name: String,
    pub actor: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
    pub last_sync_at: Option<Millis>,
    pub last_device_time: Option<Millis>,
    /// What the device reported at its last sync; `None` from apps that do not report it.
    pub health: Option<gridlink_shared::protocol::DeviceHealth>,
    /// A server-side device that signs the console's or the e-link's writes: not a phone, never
    /// syncs.
    pub console: bool,
    /// When an admin asked for a remote wipe (`device wipe`).
    pub wipe_requested_at: Option<Millis>,
    /// When the device was first told to wipe (answered 410 device-wiped).
    pub wipe_delivered_at: Option<Millis>,
}

/// Default lifetime of an enrolment code.
pub const DEFAULT_CODE_HOURS: i64 = 72;

impl SqliteStore {
    /// Opens the store in `data_dir`, creating directory and schema if needed.
    pub fn create(data_dir: &Path) -> Result<Self, StoreError> {
        let mut conn = schema::open(data_dir, true)?;
        super::facts::ensure(&mut conn)?;
        Ok(SqliteStore::with_writer(conn, data_dir))
    }

    /// Opens an existing store; a clear error if `init` was never run there.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let mut conn = schema::open(data_dir, false)?;
        super::facts::ensure(&mut conn)?;
        Ok(SqliteStore::with_writer(conn, data_dir))
    }

    fn with_writer(conn: Connection, data_dir: &Path) -> SqliteStore {
        SqliteStore { conn: Mutex::new(conn), readers: Box::new(Readers::new(data_dir)), pending_seen: Box::default() }
    }

    /// Records a pull-only sync: now if the writer is free this instant, else later by the
    /// next write. Never waits for a lock.
    fn record_seen(&self, device: DeviceId, seen: Seen) {
        self.pending_seen.lock().unwrap_or_else(|p| p.into_inner()).insert(device, seen);
        // A busy (or poisoned) writer: the next write flushes; `with_conn` recovers a poison.
        let Ok(mut conn) = self.conn.try_lock() else { return };
        if !conn.is_autocommit() {
            return;
        }
        // Another process (an admin command) may hold the file's write lock: do not wait.
        let flushed = conn.busy_timeout(Duration::ZERO).map_err(StoreError::from).and_then(|()| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let written = self.flush_seen(&tx)?;
            tx.commit().map_err(|e| {
                self.restore_seen(written);
                StoreError::from(e)
            })
        });
        if let Err(error) = conn.busy_timeout(Duration::from_secs(10)) {
            tracing::error!(%error, "cannot restore the busy timeout");
        }
        if let Err(error) = flushed {
            tracing::debug!(%error, "last-sync bookkeeping deferred to the next write");
        }
    }

    /// Writes the pending pull-only bookkeeping inside `tx` and returns what it wrote, for
    /// [`restore_seen`](Self::restore_seen) should `tx` not commit.
    fn flush_seen(&self, tx: &Connection) -> Result<HashMap<DeviceId, Seen>, StoreError> {
        let pending = std::mem::take(&mut *self.pending_seen.lock().unwrap_or_else(|p| p.into_inner()));
        for (device, seen) in &pending {
            if let Err(error) = seen.write(tx, *device) {
                self.restore_seen(pending);
                return Err(error);
            }
        }
        Ok(pending)
    }

    /// Puts back bookkeeping whose transaction did not commit; a newer record taken meanwhile wins.
    fn restore_seen(&self, taken: HashMap<DeviceId, Seen>) {
        let mut pending = self.pending_seen.lock().unwrap_or_else(|p| p.into_inner());
        for (device, seen) in taken {
            pending.entry(device).or_insert(seen);
        }
    }

    /// Runs `f` on the connection. A panic elsewhere while the lock was held must not take the
    /// store down with it: the lock is recovered, and any transaction the panic left open is
    /// rolled back before the connection is used again.
    pub(super) fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|poisoned| {
            tracing::error!("a request panicked while holding the database; recovering the connection");
            self.conn.clear_poison();
            poisoned.into_inner()
        });
        if !conn.is_autocommit() {
            conn.execute_batch("ROLLBACK")?;
        }
        f(&mut conn)
    }

    /// Adds a user and returns their id and a first enrolment code.
    pub fn add_user(
        &self,
        name: &str,
        role: Role,
        scopes: &[Scope],
        phone: &str,
        now: Millis,
        code_hours: i64,
    ) -> Result<(UserId, String), StoreError> {
        let name = super::check_new_user(name, scopes)?;
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            roster::check_scopes_exist(&tx, scopes)?;
            let staff = Staff {
                id: UserId::new(),
                name: name.to_string(),
                role,
                phone: phone.to_string(),
                scopes: scopes.to_vec(),
                pledge: String::new(),
            };
            roster::insert_staff(&tx, &staff, now)?;
            let code = issue_code(&tx, staff.id, now, code_hours)?;
            roster::bump_reference_version(&tx)?;
            tx.commit()?;
            Ok((staff.id, code))
        })
    }

    /// Issues a new one-time enrolment code for an existing user.
    pub fn new_code(&self, user: UserId, now: Millis, code_hours: i64) -> Result<String, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if load_staff(&tx, user)?.is_none() {
                return Err(StoreError::NotFound(format!("user {user}")));
            }
            let code = issue_code(&tx, user, now, code_hours)?;
            tx.commit()?;
            Ok(code)
        })
    }

    /// Replaces a user's scopes (a worker moved to another grid). Their devices drop the old
    /// scopes at their next sync.
    pub fn set_scopes(&self, user: UserId, scopes: &[Scope]) -> Result<(), StoreError> {
        if scopes.is_empty() {
            return Err(StoreError::Invalid("give at least one --scope".into()));
        }
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            roster::check_scopes_exist(&tx, scopes)?;
            let previous: Option<String> =
                tx.query_row("SELECT scopes FROM users WHERE id = ?1", [user.to_string()], |r| r.get(0)).optional()?;
            let previous: Vec<Scope> = match previous {
                Some(json) => serde_json::from_str(&json)?,
                None => return Err(StoreError::NotFound(format!("user {user}"))),
            };
            tx.execute("UPDATE users SET scopes = ?1 WHERE id = ?2", params![scopes_json(scopes)?, user.to_string()])?;
            // Their web console sessions end: they sign in again under the new scopes.
            tx.execute("DELETE FROM console_sessions WHERE user_id = ?1", [user.to_string()])?;
            let removed_at = gridlink_shared::time::now_millis();
            for scope in previous.iter().filter(|s| !scopes.contains(s)) {
                tx.execute(
                    "INSERT OR REPLACE INTO scope_grace (user_id, scope, removed_at) VALUES (?1, ?2, ?3)",
                    params![user.to_string(), scope.to_string(), removed_at],
                )?;
            }
            for scope in scopes {
                tx.execute(
                    "DELETE FROM scope_grace WHERE user_id = ?1 AND scope = ?2",
                    params![user.to_string(), scope.to_string()],
                )?;
            }
            roster::bump_reference_version(&tx)?;
            tx.commit()?;
            Ok(())
        })
    }

    pub fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare(
                "SELECT u.id, u.name, u.role, u.phone, u.scopes,
                        (SELECT COUNT(*) FROM devices d
                         WHERE d.user_id = u.id AND d.revoked_at IS NULL
                           AND d.token_hash NOT LIKE 'console:%' AND d.token_hash NOT LIKE 'elink:%')
                 FROM users u ORDER BY u.role, u.name, u.id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, u64>(5)?,
                ))
            })?;
            let mut users = Vec::new();
            for row in rows {
                let (id, name, role, phone, scopes, active_devices) = row?;
                users.push(UserRow {
                    id: parse_id(&id)?,
                    name,
                    role: parse_code(&role)?,
                    phone,
                    scopes: serde_json::from_str(&scopes)?,
                    active_devices,
                });
            }
            Ok(users)
        })
    }

    pub fn list_devices(&self) -> Result<Vec<DeviceRow>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare(
                "SELECT d.id, d.user_id, u.name, d.name, d.actor, d.created_at, d.revoked_at, d.last_sync_at,
                        d.last_device_time, d.app_version, d.unsent, d.rejected, d.quarantined,
                        d.token_hash LIKE 'console:%' OR d.token_hash LIKE 'elink:%',
                        d.wipe_requested_at, d.wipe_delivered_at
                 FROM devices d JOIN users u ON u.id = d.user_id ORDER BY d.created_at, d.id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                    reported_health(r)?,
                    r.get::<_, bool>(13)?,
                    r.get::<_, Option<i64>>(14)?,
                    r.get::<_, Option<i64>>(15)?,
                ))
            })?;
            let mut devices = Vec::new();
            for row in rows {
                let (
                    id,
                    user,
                    user_name,
                    name,
                    actor,
                    created_at,
                    revoked_at,
                    last_sync_at,
                    last_device_time,
                    health,
                    console,
                    wipe_requested_at,
                    wipe_delivered_at,
                ) = row?;
                devices.push(DeviceRow {
                    id: parse_id(&id)?,
                    user: parse_id(&user)?,
                    user_name,
                    name,
                    actor,
                    created_at,
                    revoked_at,
                    last_sync_at,
                    last_device_time,
                    health,
                    console,
                    wipe_requested_at,
                    wipe_delivered_at,
                });
            }
            Ok(devices)
        })
    }

    /// Revokes one device. Its token stops working at once.
    pub fn revoke_device(&self, device: DeviceId, now: Millis) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            let exists: Option<Option<i64>> = conn
                .query_row("SELECT revoked_at FROM devices WHERE id = ?1", [device.to_string()], |r| r.get(0))
                .optional()?;
            match exists {
                None => Err(StoreError::NotFound(format!("device {device}"))),
                Some(Some(_)) => Ok(()),
                Some(None) => {
                    conn.execute("UPDATE devices SET revoked_at = ?1 WHERE id = ?2", params![now, device.to_string()])?;
                    Ok(())
                }
            }
        })
    }

    /// Revokes every device of a user; returns how many were still active.
    pub fn revoke_user_devices(&self, user: UserId, now: Millis) -> Result<usize, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if load_staff(&tx, user)?.is_none() {
                return Err(StoreError::NotFound(format!("user {user}")));
            }
            let n = tx.execute(
                "UPDATE devices SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL",
                params![now, user.to_string()],
            )?;
            // A lost phone may have had the console open: its sessions end too.
            tx.execute("DELETE FROM console_sessions WHERE user_id = ?1", [user.to_string()])?;
            // Unused codes of the user die too: a lost phone's owner gets a fresh code.
            tx.execute(
                "UPDATE enrol_codes SET expires_at = MIN(expires_at, ?1) WHERE user_id = ?2 AND used_at IS NULL",
                params![now, user.to_string()],
            )?;
            tx.commit()?;
            Ok(n)
        })
    }

    /// Loads a generated demo dataset: roster, staff, and one document per household and
    /// case, each logged as a change in its scopes. One transaction.
    pub fn load_demo(&self, size: DemoSize, seed: u64, now: Millis) -> Result<InitSummary, StoreError> {
        let started = Instant::now();
        let data = demo::generate(size, seed, now);
        let generate_ms = started.elapsed().as_millis();
        Ok(InitSummary { generate_ms, ..self.load_data(&data, now)? })
    }

    /// Loads a dataset the way [`SqliteStore::load_demo`] does (an empty store only): the
    /// simulation and tests load small hand-cut worlds with it. The residents' e-link requests
    /// go to `elink_requests` (their reporter, the grid's e-link account, is on the roster).
    pub fn load_data(&self, data: &DemoData, now: Millis) -> Result<InitSummary, StoreError> {
        let generate_ms = 0;
        let started = Instant::now();
        let actor = import_actor(self)?;
        let (changes, log_entries, build_ms) = self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let existing: i64 = tx.query_row("SELECT COUNT(*) FROM docs", [], |r| r.get(0))?;
            if existing > 0 {
                return Err(StoreError::Invalid("this data directory already holds documents; use a new one".into()));
            }
            roster::insert_roster(&tx, &data.roster, now)?;
            let mut log = LogAppender::default();
            let mut changes = 0;
            let docs: Vec<AnyDoc> = data
                .households
                .iter()
                .map(|h| AnyDoc::Household(h.clone()))
                .chain(data.cases.iter().map(|c| AnyDoc::Case(c.clone())))
                .chain(data.activities.iter().map(|a| AnyDoc::Activity(a.clone())))
                .collect();
            // Building automerge documents is the slow part: it runs on every core, a chunk
            // at a time, and this thread writes each chunk.
            let mut build_time = std::time::Duration::ZERO;
            for chunk in docs.chunks(2048) {
                let building = Instant::now();
                let built_chunk = build_docs(chunk, &actor)?;
                build_time += building.elapsed();
                for built in built_chunk {
                    insert_change(&tx, &built.hash, built.doc.doc_id(), &built.change, &actor.to_hex_string(), now)?;
                    for scope in built.doc.scopes() {
                        log.append(&tx, scope, &built.hash, built.doc.doc_id())?;
                    }
                    write_doc(&tx, built.doc, &built.saved, now)?;
                    changes += 1;
                }
            }
            let case_ids: std::collections::BTreeSet<gridlink_shared::CaseId> =
                data.cases.iter().map(|c| c.id).collect();
            super::elink::insert_demo_requests(&tx, &data.elink_requests, &case_ids)?;
            roster::bump_reference_version(&tx)?;
            tx.commit()?;
            Ok((changes, log.appended, build_time.as_millis()))
        })?;
        Ok(InitSummary {
            communities: data.roster.communities.len(),
            grids: data.roster.grids.len(),
            buildings: data.roster.buildings.len(),
            staff: data.roster.staff.len(),
            households: data.households.len(),
            cases: data.cases.len(),
            changes,
            log_entries,
            generate_ms,
            build_ms,
            store_ms: started.elapsed().as_millis(),
        })
    }

    /// Runs `f` on the connection, for the web console's own tables and queries
    /// (`crate::console::store`), under the same lock and recovery as every other call.
    pub(crate) fn with_connection<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_conn(f)
    }

    /// Runs a read-only closure on the connection (tests and reports).
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.with_conn(|conn| f(conn))
    }
}

/// The health a device reported (columns 9 to 12 of the device query), if it reported any.
fn reported_health(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<gridlink_shared::protocol::DeviceHealth>> {
    let app_version: Option<String> = r.get(9)?;
    Ok(app_version.map(|app_version| gridlink_shared::protocol::DeviceHealth {
        app_version,
        unsent: r.get::<_, Option<i64>>(10).ok().flatten().unwrap_or(0) as u64,
        rejected: r.get::<_, Option<i64>>(11).ok().flatten().unwrap_or(0) as u64,
        quarantined: r.get::<_, Option<i64>>(12).ok().flatten().unwrap_or(0) as u64,
    }))
}

/// An imported document, ready to store (by either backend's load).
pub(super) struct BuiltDoc<'a> {
    pub doc: &'a AnyDoc,
    pub hash: String,
    pub change: Vec<u8>,
    pub saved: Vec<u8>,
}

fn build_one<'a>(any: &'a AnyDoc, actor: &ActorId) -> Result<BuiltDoc<'a>, StoreError> {
    let created = match any {
        AnyDoc::Household(h) => doc::create(h, actor.clone(), h.created_at),
        AnyDoc::Case(c) => doc::create(c, actor.clone(), c.reported_at),
        AnyDoc::Activity(a) => doc::create(a, actor.clone(), a.recorded_at),
    };
    let mut automerge_doc = created.map_err(|e| StoreError::Backend(format!("demo document: {e}")))?;
    let change = automerge_doc
        .get_last_local_change()
        .ok_or_else(|| StoreError::Backend("demo document has no change".into()))?;
    Ok(BuiltDoc {
        doc: any,
        hash: change.hash().to_string(),
        change: change.raw_bytes().to_vec(),
        saved: automerge_doc.save(),
    })
}

/// Builds documents on all cores, keeping their order.
pub(super) fn build_docs<'a>(docs: &'a [AnyDoc], actor: &ActorId) -> Result<Vec<BuiltDoc<'a>>, StoreError> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).max(1);
    let per_thread = docs.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = docs
            .chunks(per_thread)
            .map(|part| scope.spawn(move || part.iter().map(|d| build_one(d, actor)).collect::<Result<Vec<_>, _>>()))
            .collect();
        let mut out = Vec::with_capacity(docs.len());
        for handle in handles {
            out.extend(handle.join().map_err(|_| StoreError::Backend("document builder panicked".into()))??);
        }
        Ok(out)
    })
}

/// The actor id the server signs imported documents with, created once per data directory.
pub fn import_actor(store: &SqliteStore) -> Result<ActorId, StoreError> {
    store.with_conn(|conn| {
        let found: Option<String> =
            conn.query_row("SELECT value FROM meta WHERE key = 'import_actor'", [], |r| r.get(0)).optional()?;
        let hex_actor = match found {
            Some(actor) => actor,
            None => {
                let actor = secrets::new_actor_hex();
                conn.execute("INSERT INTO meta (key, value) VALUES ('import_actor', ?1)", [&actor])?;
                actor
            }
        };
        let bytes = hex::decode(&hex_actor).map_err(|e| StoreError::Backend(format!("import actor: {e}")))?;
        Ok(ActorId::from(bytes))
    })
}

fn issue_code(conn: &Connection, user: UserId, now: Millis, code_hours: i64) -> Result<String, StoreError> {
    if code_hours <= 0 {
        return Err(StoreError::Invalid("a code must be valid for at least one hour".into()));
    }
    let code = secrets::new_enrol_code();
    let canonical = secrets::normalize_enrol_code(&code).expect("generated codes are valid");
    conn.execute(
        "INSERT INTO enrol_codes (code_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![secrets::sha256_hex(&canonical), user.to_string(), now, now + code_hours * 3_600_000],
    )?;
    Ok(code)
}

pub(super) fn scopes_json(scopes: &[Scope]) -> Result<String, StoreError> {
    Ok(serde_json::to_string(scopes)?)
}

pub(super) fn parse_id<T: std::str::FromStr>(raw: &str) -> Result<T, StoreError> {
    raw.parse().map_err(|_| StoreError::Backend(format!("stored id '{raw}' is not a UUID")))
}

pub(super) fn parse_code<T: std::str::FromStr>(raw: &str) -> Result<T, StoreError> {
    raw.parse().map_err(|_| StoreError::Backend(format!("stored code '{raw}' is unknown")))
}

/// A staff member as the roster says now.
pub(super) fn load_staff(conn: &Connection, user: UserId) -> Result<Option<Staff>, StoreError> {
    let row = conn
        .prepare_cached("SELECT name, role, phone, pledge, scopes FROM users WHERE id = ?1")?
        .query_row([user.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .optional()?;
    row.map(|(name, role, phone, pledge, scopes)| {
        Ok(Staff { id: user, name, role: parse_code(&role)?, phone, pledge, scopes: serde_json::from_str(&scopes)? })
    })
    .transpose()
}

/// The device and principal behind a device id, refusing wiped and revoked devices.
pub(super) fn load_device(conn: &Connection, device: DeviceId) -> Result<AuthedDevice, StoreError> {
    // A wipe outranks a revocation: a revoked phone marked for wipe must still wipe.
    let row: Option<(String, String, Millis, String)> = conn
        .prepare_cached(
            "SELECT user_id, actor, created_at,
                    CASE WHEN wipe_requested_at IS NOT NULL THEN 'wiped'
                         WHEN revoked_at IS NOT NULL THEN 'revoked' ELSE 'active' END
             FROM devices WHERE id = ?1",
        )?
        .query_row([device.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let (user, actor, enrolled_at, state) = row.ok_or(StoreError::Unauthorized)?;
    match state.as_str() {
        "wiped" => return Err(StoreError::DeviceWiped),
        "revoked" => return Err(StoreError::DeviceRevoked),
        _ => {}
    }
    let staff = load_staff(conn, parse_id(&user)?)?.ok_or(StoreError::Unauthorized)?;
    Ok(AuthedDevice { device, actor, enrolled_at, principal: staff.principal() })
}

impl Store for SqliteStore {
    fn authenticate(&self, token: &str) -> Result<AuthedDevice, StoreError> {
        if token.is_empty() || token.len() > 200 {
            return Err(StoreError::Unauthorized);
        }
        let hash = secrets::sha256_hex(token);
        let (device, wiped) = self.readers.with(|conn| {
            let found: Option<(String, bool)> = conn
                .prepare_cached("SELECT id, wipe_requested_at IS NOT NULL FROM devices WHERE token_hash = ?1")?
                .query_row([&hash], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            found.ok_or(StoreError::Unauthorized)
        })?;
        if wiped {
            // A wiped device is told so before anything else (also when it was revoked too);
            // the first telling is recorded, on the writer.
            self.with_conn(|conn| super::wipe::refuse_if_wiped(conn, &device, gridlink_shared::time::now_millis()))?;
        }
        self.readers.with(|conn| load_device(conn, parse_id(&device)?))
    }

    fn enroll(&self, request: &EnrollRequest, now: Millis) -> Result<EnrollResponse, StoreError> {
        let device_name = super::check_device_name(&request.device_name)?;
        let refused = |error: StoreError, user: Option<UserId>| {
            let mut event = SecurityEvent::new(SecurityKind::EnrolRefused, Origin::Enrolment)
                .detail(serde_json::json!({ "reason": error.to_string(), "device_name": device_name }));
            event.user = user;
            // The refusal stands even if it cannot be recorded; the failure is logged.
            if let Err(failure) = self.record_security(&event, now) {
                tracing::error!(%failure, "could not record a refused enrolment");
            }
            error
        };
        let Some(canonical) = secrets::normalize_enrol_code(&request.code) else {
            return Err(refused(StoreError::CodeInvalid, None));
        };
        let code_hash = secrets::sha256_hex(&canonical);
        let outcome = self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let row: Option<(String, i64, Option<i64>)> = tx
                .query_row(
                    "SELECT user_id, expires_at, used_at FROM enrol_codes WHERE code_hash = ?1",
                    [&code_hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((user, expires_at, used_at)) = row else {
                return Ok(Err((StoreError::CodeInvalid, None)));
            };
            let user: UserId = parse_id(&user)?;
            if used_at.is_some() {
                return Ok(Err((StoreError::CodeUsed, Some(user))));
            }
            if expires_at <= now {
                return Ok(Err((StoreError::CodeExpired, Some(user))));
            }
            let Some(staff) = load_staff(&tx, user)? else {
                return Ok(Err((StoreError::CodeInvalid, Some(user))));
            };
            let device = DeviceId::new();
            let token = secrets::new_token();
            let actor = secrets::new_actor_hex();
            let recovery_secret = secrets::new_recovery_secret();
            tx.execute(
                "INSERT INTO devices (id, user_id, name, token_hash, actor, created_at, recovery_secret)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    device.to_string(),
                    user.to_string(),
                    device_name,
                    secrets::sha256_hex(&token),
                    actor,
                    now,
                    recovery_secret
                ],
            )?;
            tx.execute(
                "UPDATE enrol_codes SET used_at = ?1, device_id = ?2 WHERE code_hash = ?3",
                params![now, device.to_string(), code_hash],
            )?;
            let event = SecurityEvent::new(SecurityKind::Enrol, Origin::Enrolment)
                .user(user)
                .device(device)
                .detail(serde_json::json!({ "device_name": device_name }));
            super::security::record(&tx, &event, now)?;
            tx.commit()?;
            Ok(Ok(EnrollResponse {
                device,
                token,
                actor,
                principal: staff.principal(),
                recovery_secret: Some(recovery_secret),
            }))
        })?;
        outcome.map_err(|(error, user)| refused(error, user))
    }

    fn sync(
        &self,
        device: DeviceId,
        request: &SyncRequest,
        limits: &PushLimits,
        now: Millis,
    ) -> Result<SyncResponse, StoreError> {
        if request.changes.is_empty() {
            // Nothing to push: a read snapshot on a reader, no write lock.
            let response = self.readers.with(|conn| {
                let tx = conn.transaction()?;
                let authed = load_device(&tx, device)?;
                let response = super::pull::respond(&tx, &authed, request, super::push::Pushed::default(), now)?;
                tx.commit()?;
                Ok(response)
            })?;
            self.record_seen(device, Seen::of(request, now));
            return Ok(response);
        }
        let mut flushed = None;
        let result = self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let authed = load_device(&tx, device)?;
            let pushed = super::push::push(&tx, &authed, request, limits, now)?;
            let response = super::pull::respond(&tx, &authed, request, pushed, now)?;
            // Older pull-only records first: this sync's own is the newest.
            flushed = Some(self.flush_seen(&tx)?);
            Seen::of(request, now).write(&tx, device)?;
            // Committed before the reply is built into HTTP: an ack means durable.
            tx.commit()?;
            Ok(response)
        });
        if let (Err(_), Some(taken)) = (&result, flushed) {
            self.restore_seen(taken);
        }
        result
    }

    fn health(&self) -> Result<(), StoreError> {
        // Takes the connection lock like a request would, so a stuck lock shows up too.
        self.with_conn(|conn| Ok(conn.query_row("SELECT 1 FROM meta LIMIT 1", [], |_| Ok(()))?))
    }
}
