//! The PostgreSQL store: the second implementation of [`Store`], for deployments that run
//! several identical server processes over one database. It owns the connection pool, the
//! migrations at open ([`schema`]), enrolment and authentication, and the two transactions
//! of a sync; the push and pull logic is the backend-neutral code of `store/push.rs`,
//! `store/push_decision.rs`, `store/pull.rs` and `store/digest.rs`, run through this
//! backend's `PgPush` and `PgPull` (in `push.rs` and `pull.rs`).
//!
//! A sync that pushes runs its push in one READ COMMITTED transaction that locks what it
//! writes (the documents it pushes to, then the log counters of the scopes it logs in; see
//! `push.rs`) and commits before the reply is built, so an ack means durable. The page is
//! then read in a second, read-only REPEATABLE READ transaction: one consistent snapshot
//! that takes no lock, so a phone with nothing to push never waits behind another's push.
//!
//! Admin operations: users, codes, scopes and loading a dataset here; listing, revoking and
//! wiping devices, recovery keys, the audit listing and compaction in `admin.rs`; the roster
//! CSV import and the roster report in `roster.rs`; `check [--repair]` in `check.rs`. Each is
//! the backend-neutral code of `store/` (`roster/import.rs`, `roster/report.rs`,
//! `security.rs`, `compact.rs`, `check.rs`) run through this backend's reads and writes, so
//! both backends give the same answers; how each runs beside serving processes is in its
//! file; `migrate.rs` copies an embedded SQLite store in and verifies it. `serve --database`
//! serves the sync API from this store. The console's list rows and the supervisors' facts
//! are written with every document and read in `facts.rs` (backfilled at open for a database
//! `migrate` filled). The console's own tables (passwords, the login throttle, sessions) are
//! kept in `console.rs`, in the database so they hold across processes; the console's case
//! actions go through the push path in `console_write.rs`. The residents' e-link (links,
//! filed requests through the push path) is in `elink.rs`. The enrolment throttle counts the
//! refused codes of every process from `security_audit`.

mod admin;
mod check;
pub mod cluster;
mod console;
mod console_write;
mod elink;
mod facts;
mod migrate;
mod pull;
mod push;
mod roster;
pub mod schema;

pub use migrate::{Migration, NotCopied, TableCopied, TableCount, Verification, migrate_sqlite, verify_migration};

use std::sync::{Condvar, Mutex};
use std::time::Instant;

use automerge::ActorId;
use gridlink_shared::demo::{self, DemoData, DemoSize};
use gridlink_shared::protocol::{EnrollRequest, EnrollResponse, SyncRequest, SyncResponse};
use gridlink_shared::time::Millis;
use gridlink_shared::{AnyDoc, DeviceId, Role, Scope, Staff, UserId};
use postgres::{Client, GenericClient, IsolationLevel, NoTls};

use super::security::{Origin, SecurityEvent, SecurityKind};
use super::sqlite::{InitSummary, parse_code, parse_id, scopes_json};
use super::{AuthedDevice, PushLimits, Store, StoreError};
use crate::secrets;

impl From<postgres::Error> for StoreError {
    fn from(error: postgres::Error) -> Self {
        use postgres::error::SqlState;
        // The error's own text is only its kind ("db error"); the server's message and SQLSTATE
        // say what went wrong.
        let text = match error.as_db_error() {
            Some(db) => format!("{error}: {} ({})", db.message(), db.code().code()),
            None => error.to_string(),
        };
        match error.code() {
            Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE => {
                StoreError::Retryable(text)
            }
            _ => StoreError::Backend(text),
        }
    }
}

/// Connections one server process opens at most: requests past it wait for a free one, so
/// several processes stay within the database's `max_connections` (100 by default).
pub const DEFAULT_POOL_SIZE: usize = 16;

/// How often a push transaction is tried when PostgreSQL aborts it as a deadlock or a
/// serialization failure (the lock order below should make both impossible; this is the net).
const PUSH_ATTEMPTS: usize = 3;

/// The PostgreSQL store.
pub struct PgStore {
    config: postgres::Config,
    pool: Mutex<Pool>,
    /// Signalled when a connection is returned or closed.
    freed: Condvar,
    max: usize,
}

/// Idle connections, and how many are open (idle or in use).
#[derive(Default)]
struct Pool {
    idle: Vec<Client>,
    open: usize,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgStore")
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Closing a blocking `postgres::Client` runs its own runtime, which panics on a thread
        // that drives async tasks (a server's state is dropped there at shutdown). So the idle
        // connections are closed on a plain thread of their own.
        let idle = std::mem::take(&mut self.pool().idle);
        if !idle.is_empty() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

/// A pooled connection, returned to the pool when dropped (unless it broke).
struct Pooled<'a> {
    store: &'a PgStore,
    client: Option<Client>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let mut pool = self.store.pool();
        match self.client.take() {
            Some(client) if !client.is_closed() => pool.idle.push(client),
            // A broken connection frees its place for a new one.
            _ => pool.open -= 1,
        }
        self.store.freed.notify_one();
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://...`, or `postgresql:///DB?host=/run/postgresql` for a
    /// Unix socket) and brings the schema up to date; refuses a newer schema.
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let config: postgres::Config =
            url.parse().map_err(|e| StoreError::Invalid(format!("database URL '{url}' does not parse: {e}")))?;
        let store = PgStore { config, pool: Mutex::default(), freed: Condvar::new(), max: DEFAULT_POOL_SIZE };
        schema::migrate(&mut *store.client()?, gridlink_shared::time::now_millis())?;
        facts::ensure(&mut *store.client()?)?;
        Ok(store)
    }

    /// Sets the most connections this store opens at once (at least 1).
    pub fn with_pool_size(mut self, max: usize) -> Self {
        self.max = max.max(1);
        self
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        // Plain bookkeeping: consistent even if a holder panicked.
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn connect(&self) -> Result<Client, StoreError> {
        self.config.connect(NoTls).map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))
    }

    /// A connection from the pool: an idle one, a new one while fewer than the cap are open,
    /// else the next one returned.
    fn client(&self) -> Result<Pooled<'_>, StoreError> {
        let mut pool = self.pool();
        loop {
            while let Some(client) = pool.idle.pop() {
                if !client.is_closed() {
                    return Ok(Pooled { store: self, client: Some(client) });
                }
                pool.open -= 1;
            }
            if pool.open < self.max {
                pool.open += 1;
                drop(pool);
                return match self.connect() {
                    Ok(client) => Ok(Pooled { store: self, client: Some(client) }),
                    Err(e) => {
                        self.pool().open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            pool = self.freed.wait(pool).unwrap_or_else(|p| p.into_inner());
        }
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
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        roster::check_scopes_exist(&mut tx, scopes)?;
        let staff = Staff {
            id: UserId::new(),
            name: name.to_string(),
            role,
            phone: phone.to_string(),
            scopes: scopes.to_vec(),
            pledge: String::new(),
        };
        roster::insert_staff(&mut tx, &staff, now)?;
        let code = issue_code(&mut tx, staff.id, now, code_hours)?;
        roster::bump_reference_version(&mut tx)?;
        tx.commit()?;
        Ok((staff.id, code))
    }

    /// Issues a new one-time enrolment code for an existing user.
    pub fn new_code(&self, user: UserId, now: Millis, code_hours: i64) -> Result<String, StoreError> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        if load_staff(&mut tx, user)?.is_none() {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        let code = issue_code(&mut tx, user, now, code_hours)?;
        tx.commit()?;
        Ok(code)
    }

    /// Replaces a user's scopes, keeping the lost ones in `scope_grace` (as SQLite does).
    pub fn set_scopes(&self, user: UserId, scopes: &[Scope]) -> Result<(), StoreError> {
        if scopes.is_empty() {
            return Err(StoreError::Invalid("give at least one --scope".into()));
        }
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        roster::check_scopes_exist(&mut tx, scopes)?;
        let previous = tx.query_opt("SELECT scopes FROM users WHERE id = $1 FOR UPDATE", &[&user.to_string()])?;
        let previous: Vec<Scope> = match previous {
            Some(row) => serde_json::from_str(row.get::<_, &str>(0))?,
            None => return Err(StoreError::NotFound(format!("user {user}"))),
        };
        tx.execute("UPDATE users SET scopes = $1 WHERE id = $2", &[&scopes_json(scopes)?, &user.to_string()])?;
        // Their web console sessions end: they sign in again under the new scopes.
        tx.execute("DELETE FROM console_sessions WHERE user_id = $1", &[&user.to_string()])?;
        let removed_at = gridlink_shared::time::now_millis();
        for scope in previous.iter().filter(|s| !scopes.contains(s)) {
            tx.execute(
                "INSERT INTO scope_grace (user_id, scope, removed_at) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id, scope) DO UPDATE SET removed_at = excluded.removed_at",
                &[&user.to_string(), &scope.to_string(), &removed_at],
            )?;
        }
        for scope in scopes {
            tx.execute(
                "DELETE FROM scope_grace WHERE user_id = $1 AND scope = $2",
                &[&user.to_string(), &scope.to_string()],
            )?;
        }
        roster::bump_reference_version(&mut tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Revokes every device of a user and expires their unused codes; returns how many
    /// devices were still active.
    pub fn revoke_user_devices(&self, user: UserId, now: Millis) -> Result<usize, StoreError> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        if load_staff(&mut tx, user)?.is_none() {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        let n = tx.execute(
            "UPDATE devices SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            &[&now, &user.to_string()],
        )?;
        // A lost phone may have had the console open: its sessions end too.
        tx.execute("DELETE FROM console_sessions WHERE user_id = $1", &[&user.to_string()])?;
        tx.execute(
            "UPDATE enrol_codes SET expires_at = LEAST(expires_at, $1) WHERE user_id = $2 AND used_at IS NULL",
            &[&now, &user.to_string()],
        )?;
        tx.commit()?;
        Ok(n as usize)
    }

    /// Loads a generated demo dataset, as [`super::SqliteStore::load_demo`] does.
    pub fn load_demo(&self, size: DemoSize, seed: u64, now: Millis) -> Result<InitSummary, StoreError> {
        let started = Instant::now();
        let data = demo::generate(size, seed, now);
        let generate_ms = started.elapsed().as_millis();
        Ok(InitSummary { generate_ms, ..self.load_data(&data, now)? })
    }

    /// Loads a dataset into an empty store in one transaction, as
    /// [`super::SqliteStore::load_data`] does: the same documents, changes and log entries.
    pub fn load_data(&self, data: &DemoData, now: Millis) -> Result<InitSummary, StoreError> {
        let started = Instant::now();
        let actor = self.import_actor()?;
        let actor_hex = actor.to_hex_string();
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let existing: i64 = tx.query_one("SELECT COUNT(*) FROM docs", &[])?.get(0);
        if existing > 0 {
            return Err(StoreError::Invalid("this database already holds documents; use a new one".into()));
        }
        roster::insert_roster(&mut tx, &data.roster, now)?;
        let docs: Vec<AnyDoc> = data
            .households
            .iter()
            .map(|h| AnyDoc::Household(h.clone()))
            .chain(data.cases.iter().map(|c| AnyDoc::Case(c.clone())))
            .chain(data.activities.iter().map(|a| AnyDoc::Activity(a.clone())))
            .collect();
        let mut target = push::PgPush::new(&mut tx);
        let mut build_time = std::time::Duration::ZERO;
        let mut changes = 0;
        for chunk in docs.chunks(2048) {
            let building = Instant::now();
            let built_chunk = super::sqlite::build_docs(chunk, &actor)?;
            build_time += building.elapsed();
            for built in built_chunk {
                target.insert_change(&built.hash, built.doc.doc_id(), &built.change, &actor_hex, now)?;
                for scope in built.doc.scopes() {
                    target.queue_log_entry(scope, &built.hash, built.doc.doc_id());
                }
                push::write_doc(target.tx(), built.doc, &built.saved, now)?;
                changes += 1;
            }
        }
        // Numbered in the order queued: the same sequence numbers SQLite's load gives.
        let log_entries = target.queued();
        target.number_queued_entries()?;
        let cases = data.cases.iter().map(|c| c.id).collect();
        elink::insert_demo_requests(&mut tx, &data.elink_requests, &cases)?;
        // Every document was written with its rows (`push::write_doc`).
        facts::mark_complete(&mut tx)?;
        roster::bump_reference_version(&mut tx)?;
        tx.commit()?;
        Ok(InitSummary {
            communities: data.roster.communities.len(),
            grids: data.roster.grids.len(),
            buildings: data.roster.buildings.len(),
            staff: data.roster.staff.len(),
            households: data.households.len(),
            cases: data.cases.len(),
            changes,
            log_entries,
            generate_ms: 0,
            build_ms: build_time.as_millis(),
            store_ms: started.elapsed().as_millis(),
        })
    }

    /// The actor id the server signs imported documents with, created once per database.
    pub fn import_actor(&self) -> Result<ActorId, StoreError> {
        let mut client = self.client()?;
        let candidate = secrets::new_actor_hex();
        // One statement, so two processes importing at once agree on one actor.
        client.execute(
            "INSERT INTO meta (key, value) VALUES ('import_actor', $1) ON CONFLICT (key) DO NOTHING",
            &[&candidate],
        )?;
        let hex_actor: String = client.query_one("SELECT value FROM meta WHERE key = 'import_actor'", &[])?.get(0);
        let bytes = hex::decode(&hex_actor).map_err(|e| StoreError::Backend(format!("import actor: {e}")))?;
        Ok(ActorId::from(bytes))
    }

    /// Runs `f` on a pooled connection (tests and reports read with it).
    pub fn read<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut client = self.client()?;
        f(&mut client)
    }

    /// The push half of a sync, in its own transaction, with its locks.
    fn push(
        &self,
        client: &mut Client,
        device: DeviceId,
        request: &SyncRequest,
        limits: &PushLimits,
        now: Millis,
    ) -> Result<(AuthedDevice, super::push::Pushed), StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = (|| {
                let mut tx = client.transaction()?;
                let authed = load_device(&mut tx, device)?;
                let mut target = push::PgPush::new(&mut tx);
                target.lock_documents(request.changes.iter().map(|c| c.doc))?;
                let pushed = super::push::execute(&mut target, &authed, request, limits, now)?;
                record_sync(&mut tx, device, request, now)?;
                tx.commit()?;
                Ok((authed, pushed))
            })();
            match result {
                Err(StoreError::Retryable(message)) if attempt < PUSH_ATTEMPTS => {
                    tracing::warn!(%device, attempt, %message, "push transaction aborted by PostgreSQL; retrying");
                }
                other => return other,
            }
        }
    }
}

/// The device's last sync and what it reported.
fn record_sync(
    client: &mut impl GenericClient,
    device: DeviceId,
    request: &SyncRequest,
    now: Millis,
) -> Result<(), StoreError> {
    client.execute(
        "UPDATE devices SET last_sync_at = $1, last_device_time = $2 WHERE id = $3",
        &[&now, &request.device_time, &device.to_string()],
    )?;
    if let Some(health) = &request.health {
        client.execute(
            "UPDATE devices SET app_version = $1, unsent = $2, rejected = $3, quarantined = $4 WHERE id = $5",
            &[
                &crate::store::reported_app_version(&health.app_version),
                &(health.unsent.min(i64::MAX as u64) as i64),
                &(health.rejected.min(i64::MAX as u64) as i64),
                &(health.quarantined.min(i64::MAX as u64) as i64),
                &device.to_string(),
            ],
        )?;
    }
    Ok(())
}

fn issue_code(
    client: &mut impl GenericClient,
    user: UserId,
    now: Millis,
    code_hours: i64,
) -> Result<String, StoreError> {
    if code_hours <= 0 {
        return Err(StoreError::Invalid("a code must be valid for at least one hour".into()));
    }
    let code = secrets::new_enrol_code();
    let canonical = secrets::normalize_enrol_code(&code).expect("generated codes are valid");
    client.execute(
        "INSERT INTO enrol_codes (code_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        &[&secrets::sha256_hex(&canonical), &user.to_string(), &now, &(now + code_hours * 3_600_000)],
    )?;
    Ok(code)
}

/// A staff member as the roster says now.
fn load_staff(client: &mut impl GenericClient, user: UserId) -> Result<Option<Staff>, StoreError> {
    let row =
        client.query_opt("SELECT name, role, phone, pledge, scopes FROM users WHERE id = $1", &[&user.to_string()])?;
    row.map(|r| {
        Ok(Staff {
            id: user,
            name: r.get(0),
            role: parse_code(r.get::<_, &str>(1))?,
            phone: r.get(2),
            pledge: r.get(3),
            scopes: serde_json::from_str(r.get::<_, &str>(4))?,
        })
    })
    .transpose()
}

/// The device and principal behind a device id, refusing wiped and revoked devices.
fn load_device(client: &mut impl GenericClient, device: DeviceId) -> Result<AuthedDevice, StoreError> {
    let row = client.query_opt(
        "SELECT user_id, actor, created_at,
                CASE WHEN wipe_requested_at IS NOT NULL THEN 'wiped'
                     WHEN revoked_at IS NOT NULL THEN 'revoked' ELSE 'active' END
         FROM devices WHERE id = $1",
        &[&device.to_string()],
    )?;
    let row = row.ok_or(StoreError::Unauthorized)?;
    match row.get::<_, &str>(3) {
        "wiped" => return Err(StoreError::DeviceWiped),
        "revoked" => return Err(StoreError::DeviceRevoked),
        _ => {}
    }
    let staff = load_staff(client, parse_id(row.get::<_, &str>(0))?)?.ok_or(StoreError::Unauthorized)?;
    Ok(AuthedDevice { device, actor: row.get(1), enrolled_at: row.get(2), principal: staff.principal() })
}

/// Longest detail stored, as in SQLite's `security::record`.
const MAX_DETAIL_BYTES: usize = 4096;

fn record_security(client: &mut impl GenericClient, event: &SecurityEvent, now: Millis) -> Result<(), StoreError> {
    let mut detail = event.detail.to_string();
    if detail.len() > MAX_DETAIL_BYTES {
        detail = serde_json::json!({ "truncated": detail.chars().take(MAX_DETAIL_BYTES / 4).collect::<String>() })
            .to_string();
    }
    client.execute(
        "INSERT INTO security_audit (at, kind, user_id, device_id, origin, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &now,
            &event.kind.code(),
            &event.user.map(|u| u.to_string()),
            &event.device.map(|d| d.to_string()),
            &event.origin.to_string(),
            &detail,
        ],
    )?;
    Ok(())
}

impl Store for PgStore {
    fn authenticate(&self, token: &str) -> Result<AuthedDevice, StoreError> {
        if token.is_empty() || token.len() > 200 {
            return Err(StoreError::Unauthorized);
        }
        let hash = secrets::sha256_hex(token);
        let mut client = self.client()?;
        let row = client
            .query_opt("SELECT id, wipe_requested_at IS NOT NULL FROM devices WHERE token_hash = $1", &[&hash])?;
        let row = row.ok_or(StoreError::Unauthorized)?;
        let device: DeviceId = parse_id(row.get::<_, &str>(0))?;
        if row.get::<_, bool>(1) {
            // Told at every request; the first delivery is recorded once, whichever process
            // answers it (the UPDATE's condition decides).
            let now = gridlink_shared::time::now_millis();
            let mut tx = client.transaction()?;
            let first = tx.query_opt(
                "UPDATE devices SET wipe_delivered_at = $1 WHERE id = $2 AND wipe_delivered_at IS NULL RETURNING user_id",
                &[&now, &device.to_string()],
            )?;
            if let Some(first) = first
                && let Ok(user) = first.get::<_, &str>(0).parse::<UserId>()
            {
                let event =
                    SecurityEvent::new(SecurityKind::WipeDelivered, Origin::Device(device)).user(user).device(device);
                record_security(&mut tx, &event, now)?;
            }
            tx.commit()?;
            return Err(StoreError::DeviceWiped);
        }
        load_device(&mut *client, device)
    }

    fn enroll(&self, request: &EnrollRequest, now: Millis) -> Result<EnrollResponse, StoreError> {
        let device_name = crate::store::check_device_name(&request.device_name)?;
        let refused = |error: StoreError, user: Option<UserId>| {
            let mut event = SecurityEvent::new(SecurityKind::EnrolRefused, Origin::Enrolment)
                .detail(serde_json::json!({ "reason": error.to_string(), "device_name": device_name }));
            event.user = user;
            let recorded = self.client().and_then(|mut client| record_security(&mut *client, &event, now));
            if let Err(failure) = recorded {
                tracing::error!(%failure, "could not record a refused enrolment");
            }
            error
        };
        let Some(canonical) = secrets::normalize_enrol_code(&request.code) else {
            return Err(refused(StoreError::CodeInvalid, None));
        };
        let code_hash = secrets::sha256_hex(&canonical);
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        // Single use across processes: the UPDATE takes the code's row lock, and a second
        // redemption waiting on it re-checks `used_at IS NULL` after the first commits.
        let claimed = tx.query_opt(
            "UPDATE enrol_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1
             RETURNING user_id",
            &[&now, &code_hash],
        )?;
        let Some(claimed) = claimed else {
            let row = tx.query_opt(
                "SELECT user_id, used_at IS NOT NULL FROM enrol_codes WHERE code_hash = $1",
                &[&code_hash],
            )?;
            drop(tx);
            drop(client);
            return Err(match row {
                None => refused(StoreError::CodeInvalid, None),
                Some(row) => {
                    let user = parse_id(row.get::<_, &str>(0)).ok();
                    let error = if row.get::<_, bool>(1) { StoreError::CodeUsed } else { StoreError::CodeExpired };
                    refused(error, user)
                }
            });
        };
        let user: UserId = parse_id(claimed.get::<_, &str>(0))?;
        let Some(staff) = load_staff(&mut tx, user)? else {
            drop(tx);
            drop(client);
            return Err(refused(StoreError::CodeInvalid, Some(user)));
        };
        let device = DeviceId::new();
        let token = secrets::new_token();
        let actor = secrets::new_actor_hex();
        let recovery_secret = secrets::new_recovery_secret();
        tx.execute(
            "INSERT INTO devices (id, user_id, name, token_hash, actor, created_at, recovery_secret)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &device.to_string(),
                &user.to_string(),
                &device_name,
                &secrets::sha256_hex(&token),
                &actor,
                &now,
                &recovery_secret,
            ],
        )?;
        tx.execute("UPDATE enrol_codes SET device_id = $1 WHERE code_hash = $2", &[&device.to_string(), &code_hash])?;
        let event = SecurityEvent::new(SecurityKind::Enrol, Origin::Enrolment)
            .user(user)
            .device(device)
            .detail(serde_json::json!({ "device_name": device_name }));
        record_security(&mut tx, &event, now)?;
        tx.commit()?;
        Ok(EnrollResponse {
            device,
            token,
            actor,
            principal: staff.principal(),
            recovery_secret: Some(recovery_secret),
        })
    }

    fn sync(
        &self,
        device: DeviceId,
        request: &SyncRequest,
        limits: &PushLimits,
        now: Millis,
    ) -> Result<SyncResponse, StoreError> {
        let mut client = self.client()?;
        let (authed, pushed) = if request.changes.is_empty() {
            // Nothing to push: no transaction and no lock but the device's own row.
            let authed = load_device(&mut *client, device)?;
            record_sync(&mut *client, device, request, now)?;
            (authed, super::push::Pushed::default())
        } else {
            self.push(&mut client, device, request, limits, now)?
        };
        let mut tx =
            client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
        let response = super::pull::respond_from(&mut pull::PgPull::new(&mut tx), &authed, request, pushed, now)?;
        tx.commit()?;
        Ok(response)
    }

    fn health(&self) -> Result<(), StoreError> {
        let mut client = self.client()?;
        client.query_one("SELECT 1", &[])?;
        Ok(())
    }

    fn enroll_failures_since(&self, since: Millis) -> Result<Option<usize>, StoreError> {
        // Every refused code is in the audit already (`enroll`), whichever process refused it.
        let mut client = self.client()?;
        let n: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM security_audit WHERE at >= $1 AND kind = $2",
                &[&since, &SecurityKind::EnrolRefused.code()],
            )?
            .get(0);
        Ok(Some(n.max(0) as usize))
    }
}
