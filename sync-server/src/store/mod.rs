//! Server storage behind one small, domain-level trait: authenticate a token, enrol a
//! device, run one sync. The HTTP layer talks only to [`Store`]; the SQLite backend
//! ([`SqliteStore`]) also carries the admin operations the CLI needs. The PostgreSQL backend
//! ([`PgStore`], `postgres/`) implements the sync path on the same push decision, executor and
//! pull page code (`push.rs` through `PushTarget`, `pull.rs` through `PullSource`).

mod any;
mod check;
mod compact;
mod console_read;
mod console_write;
mod digest;
pub mod elink;
mod facts;
pub mod postgres;
mod pull;
mod push;
mod push_decision;
mod roster;
mod rows;
mod schema;
mod security;
mod sqlite;
mod wipe;

use gridlink_shared::change_bytes::ChangeLimits;
use gridlink_shared::protocol::{EnrollRequest, EnrollResponse, SyncRequest, SyncResponse};
use gridlink_shared::time::Millis;
use gridlink_shared::{DeviceId, Principal};

pub use any::AnyStore;
pub use check::{CheckReport, Problem, check_document};
pub use console_write::{ActOutcome, ActProblem, CONSOLE_DEVICE_NAME, CaseAct, MAX_NOTE_CHARS};
pub use postgres::PgStore;
pub use roster::{
    CSV_COLUMNS, ImportError, ImportSummary, MAX_IMPORT_BYTES, OPTIONAL_COLUMNS, RosterReport, RowProblem,
};
pub use security::{AuditEntry, AuditFilter, CHANGE_ACCEPTED, Origin, PUSH_REFUSED, SecurityEvent, SecurityKind};
pub use sqlite::{DEFAULT_CODE_HOURS, DeviceRow, InitSummary, SqliteStore, UserRow};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "server.db";

/// An enrolled, not revoked device and the person using it, as the roster says now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthedDevice {
    pub device: DeviceId,
    /// Hex automerge actor id bound to the device at enrolment.
    pub actor: String,
    /// When the device was enrolled: it may use the grace after a scope move only if it held
    /// the scope, that is, if it was enrolled before the move.
    pub enrolled_at: Millis,
    pub principal: Principal,
}

/// Bounds on what one sync may push, checked before automerge parses anything (see
/// `docs/security.md` for the reasoning behind each default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushLimits {
    /// Limits on each change's bytes.
    pub change: ChangeLimits,
    /// Changes in one request; the app sends at most 500.
    pub max_changes: usize,
    /// Operations across one request. Changes past this budget get no ack and are simply sent
    /// again in the next round, so an honest phone loses nothing.
    pub max_request_ops: u64,
}

impl Default for PushLimits {
    fn default() -> Self {
        PushLimits { change: ChangeLimits::default(), max_changes: 1000, max_request_ops: 200_000 }
    }
}

/// The name (trimmed) of a user about to be added, if it and the scopes are acceptable: the
/// same rule on every backend.
pub(crate) fn check_new_user<'a>(name: &'a str, scopes: &[gridlink_shared::Scope]) -> Result<&'a str, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 50 || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "a user needs a name of 1 to 50 characters, none of them control characters".into(),
        ));
    }
    if scopes.is_empty() {
        return Err(StoreError::Invalid("a user needs at least one --scope".into()));
    }
    Ok(name)
}

/// The device name of an enrolment, trimmed: 1 to 100 characters, none of them control
/// characters (a NUL cannot even be stored in PostgreSQL text). Both backends check it first.
pub(crate) fn check_device_name(name: &str) -> Result<&str, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "device_name must be 1 to 100 characters, none of them control characters".into(),
        ));
    }
    Ok(name)
}

/// The app version a phone reports, as stored: at most 40 characters, control characters left
/// out (a phone's health report is shown on the console's sync page, and PostgreSQL text holds
/// no NUL).
pub(crate) fn reported_app_version(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(40).collect()
}

/// What can go wrong in storage. The auth and enrolment variants are answers, not faults;
/// `Backend` is a fault and is logged, never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("missing or invalid token")]
    Unauthorized,
    #[error("this device was revoked")]
    DeviceRevoked,
    /// Marked for remote wipe: every request with its token is answered 410 device-wiped.
    #[error("this device was wiped remotely")]
    DeviceWiped,
    #[error("enrolment code is invalid")]
    CodeInvalid,
    #[error("enrolment code has expired")]
    CodeExpired,
    #[error("enrolment code was already used")]
    CodeUsed,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("storage failure: {0}")]
    Backend(String),
    /// The database aborted the transaction to keep concurrent writers apart (a deadlock or a
    /// serialization failure, told by its SQLSTATE): nothing was written, and running the
    /// same transaction again is safe. A fault like `Backend` once the retries are spent.
    #[error("storage conflict, safe to retry: {0}")]
    Retryable(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Backend(error.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        StoreError::Backend(format!("stored JSON is unreadable: {error}"))
    }
}

/// What the HTTP layer needs from storage. Every call reads the roster afresh, so a revoked
/// device or a changed scope takes effect on the next request.
pub trait Store: Send + Sync + 'static {
    /// Finds the device a bearer token belongs to.
    fn authenticate(&self, token: &str) -> Result<AuthedDevice, StoreError>;

    /// Redeems a one-time enrolment code for a device token and actor id.
    fn enroll(&self, request: &EnrollRequest, now: Millis) -> Result<EnrollResponse, StoreError>;

    /// Stores the pushed changes durably and answers with acks and the next pull page.
    fn sync(
        &self,
        device: DeviceId,
        request: &SyncRequest,
        limits: &PushLimits,
        now: Millis,
    ) -> Result<SyncResponse, StoreError>;

    /// Checks that storage answers a trivial read; `/healthz` reports 503 when it does not.
    fn health(&self) -> Result<(), StoreError>;

    /// Wrong enrolment codes that every server process on this store has recorded since
    /// `since`, so the enrolment throttle holds across processes; `None` for a store that one
    /// process serves alone (SQLite), whose throttle counts in memory only.
    fn enroll_failures_since(&self, since: Millis) -> Result<Option<usize>, StoreError> {
        let _ = since;
        Ok(None)
    }
}
