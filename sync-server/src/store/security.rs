//! The security audit: who did what to whom, when and from where, for enrolments, console
//! logins and admin actions (table `security_audit`), and the one listing `audit` prints,
//! which merges it with the accepted changes (`audit`) and the refused pushes (`refusals`).
//!
//! Events are recorded by their callers (the admin CLI's commands, the console's handlers,
//! enrolment), so a store function called from both places is audited once with its origin.
//! The listing's query and the making of its entries ([`audit_query`], [`AuditRow`]) serve
//! both backends; PostgreSQL's `audit_log` is in `store/postgres/admin.rs`.

use gridlink_shared::time::Millis;
use gridlink_shared::{DeviceId, UserId};
use rusqlite::{Connection, params};
use serde::Serialize;

use super::{SqliteStore, StoreError};

/// The kinds of security event, with the code stored and typed on the CLI (`--kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityKind {
    /// A device enrolled with a valid code.
    Enrol,
    /// An enrolment refused: a wrong, expired or used code.
    EnrolRefused,
    ConsoleLogin,
    ConsoleLoginFailed,
    UserAdd,
    CodeIssued,
    ScopesSet,
    RosterImport,
    Revoke,
    Wipe,
    /// A device marked for wipe was told so (its first 410 answer).
    WipeDelivered,
    RecoveryKeyShown,
    Compact,
    UserPassword,
}

impl SecurityKind {
    pub const ALL: &'static [SecurityKind] = &[
        SecurityKind::Enrol,
        SecurityKind::EnrolRefused,
        SecurityKind::ConsoleLogin,
        SecurityKind::ConsoleLoginFailed,
        SecurityKind::UserAdd,
        SecurityKind::CodeIssued,
        SecurityKind::ScopesSet,
        SecurityKind::RosterImport,
        SecurityKind::Revoke,
        SecurityKind::Wipe,
        SecurityKind::WipeDelivered,
        SecurityKind::RecoveryKeyShown,
        SecurityKind::Compact,
        SecurityKind::UserPassword,
    ];

    pub fn code(self) -> &'static str {
        match self {
            SecurityKind::Enrol => "enrol",
            SecurityKind::EnrolRefused => "enrol-refused",
            SecurityKind::ConsoleLogin => "console-login",
            SecurityKind::ConsoleLoginFailed => "console-login-failed",
            SecurityKind::UserAdd => "user-add",
            SecurityKind::CodeIssued => "code-issued",
            SecurityKind::ScopesSet => "scopes-set",
            SecurityKind::RosterImport => "roster-import",
            SecurityKind::Revoke => "revoke",
            SecurityKind::Wipe => "wipe",
            SecurityKind::WipeDelivered => "wipe-delivered",
            SecurityKind::RecoveryKeyShown => "recovery-key-shown",
            SecurityKind::Compact => "compact",
            SecurityKind::UserPassword => "user-password",
        }
    }

    /// A label for people, Chinese first.
    pub fn zh(self) -> &'static str {
        match self {
            SecurityKind::Enrol => "设备登记",
            SecurityKind::EnrolRefused => "登记码错误",
            SecurityKind::ConsoleLogin => "后台登录",
            SecurityKind::ConsoleLoginFailed => "后台登录失败",
            SecurityKind::UserAdd => "添加用户",
            SecurityKind::CodeIssued => "签发登记码",
            SecurityKind::ScopesSet => "修改管辖范围",
            SecurityKind::RosterImport => "导入花名册",
            SecurityKind::Revoke => "吊销设备",
            SecurityKind::Wipe => "远程清除设备",
            SecurityKind::WipeDelivered => "清除指令已送达",
            SecurityKind::RecoveryKeyShown => "查看恢复密钥",
            SecurityKind::Compact => "压缩日志",
            SecurityKind::UserPassword => "设置后台密码",
        }
    }
}

/// Codes of the two kinds the listing takes from the other tables.
pub const CHANGE_ACCEPTED: &str = "change-accepted";
pub const PUSH_REFUSED: &str = "push-refused";

impl std::str::FromStr for SecurityKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SecurityKind::ALL.iter().copied().find(|k| k.code() == s).ok_or_else(|| {
            let codes: Vec<&str> = SecurityKind::ALL.iter().map(|k| k.code()).collect();
            format!("unknown kind '{s}': expected one of {}, {CHANGE_ACCEPTED}, {PUSH_REFUSED}", codes.join(", "))
        })
    }
}

/// Where an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The admin CLI on the server.
    Cli,
    /// The web console, signed in as this user.
    Console(UserId),
    /// A device's own request (with its token).
    Device(DeviceId),
    /// `POST /v1/enroll`: no device or session yet.
    Enrolment,
    /// The console's sign-in form, before any session (a login that names no account).
    ConsoleSignIn,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Cli => f.write_str("cli"),
            Origin::Console(user) => write!(f, "console:{user}"),
            Origin::Device(device) => write!(f, "device:{device}"),
            Origin::Enrolment => f.write_str("enrol"),
            Origin::ConsoleSignIn => f.write_str("console"),
        }
    }
}

/// One security event to record.
#[derive(Clone, Debug)]
pub struct SecurityEvent {
    pub kind: SecurityKind,
    /// The user it concerns (the subject of an admin action, the one signing in).
    pub user: Option<UserId>,
    /// The device it concerns.
    pub device: Option<DeviceId>,
    pub origin: Origin,
    /// Details as JSON (never secrets: no codes, tokens, passwords or keys).
    pub detail: serde_json::Value,
}

impl SecurityEvent {
    pub fn new(kind: SecurityKind, origin: Origin) -> Self {
        SecurityEvent { kind, user: None, device: None, origin, detail: serde_json::Value::Null }
    }

    pub fn user(mut self, user: UserId) -> Self {
        self.user = Some(user);
        self
    }

    pub fn device(mut self, device: DeviceId) -> Self {
        self.device = Some(device);
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// Longest detail stored; hostile input (a device name, a typed login) cannot grow a row past it.
const MAX_DETAIL_BYTES: usize = 4096;

pub(super) fn record(conn: &Connection, event: &SecurityEvent, now: Millis) -> Result<(), StoreError> {
    let mut detail = event.detail.to_string();
    if detail.len() > MAX_DETAIL_BYTES {
        detail = serde_json::json!({ "truncated": detail.chars().take(MAX_DETAIL_BYTES / 4).collect::<String>() })
            .to_string();
    }
    conn.prepare_cached(
        "INSERT INTO security_audit (at, kind, user_id, device_id, origin, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        now,
        event.kind.code(),
        event.user.map(|u| u.to_string()),
        event.device.map(|d| d.to_string()),
        event.origin.to_string(),
        detail
    ])?;
    Ok(())
}

/// What `audit` lists: any of these narrow it.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub user: Option<UserId>,
    pub device: Option<DeviceId>,
    /// Only events at or after this instant.
    pub since: Option<Millis>,
    /// A [`SecurityKind`] code, `change-accepted` or `push-refused`.
    pub kind: Option<String>,
    /// At most this many, newest first.
    pub limit: u64,
}

/// One line of `audit`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    pub at: Millis,
    /// `security`, `change` or `refusal`: the table it comes from.
    pub source: String,
    pub kind: String,
    pub user: Option<String>,
    pub device: Option<String>,
    /// `cli`, `console:USER`, `console` (sign-in form), `device:DEVICE` or `enrol`.
    pub origin: String,
    pub detail: serde_json::Value,
}

impl SqliteStore {
    /// Records one security event.
    pub fn record_security(&self, event: &SecurityEvent, now: Millis) -> Result<(), StoreError> {
        self.with_conn(|conn| record(conn, event, now))
    }

    /// The security events, accepted changes and refused pushes that match `filter`, newest
    /// first.
    pub fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        check_filter(filter)?;
        self.read(|conn| {
            let mut stmt = conn.prepare(&audit_query(|n| format!("?{n}")))?;
            let rows = stmt.query_map(
                params![
                    filter.user.map(|u| u.to_string()),
                    filter.device.map(|d| d.to_string()),
                    filter.since,
                    filter.kind,
                    limit_of(filter)
                ],
                |r| {
                    Ok(AuditRow {
                        at: r.get(0)?,
                        source: r.get(1)?,
                        kind: r.get(2)?,
                        user: r.get(3)?,
                        device: r.get(4)?,
                        origin: r.get(5)?,
                        detail: r.get(6)?,
                        change_hash: r.get(7)?,
                        doc_id: r.get(8)?,
                        device_time: r.get(9)?,
                        change_time: r.get(10)?,
                        code: r.get(11)?,
                        message: r.get(12)?,
                        bytes_len: r.get(13)?,
                    })
                },
            )?;
            rows.map(|row| Ok(row?.entry())).collect()
        })
    }
}

/// Refuses a `--kind` that names nothing, before any query.
pub(super) fn check_filter(filter: &AuditFilter) -> Result<(), StoreError> {
    if let Some(kind) = &filter.kind
        && kind != CHANGE_ACCEPTED
        && kind != PUSH_REFUSED
    {
        kind.parse::<SecurityKind>().map_err(StoreError::Invalid)?;
    }
    Ok(())
}

pub(super) fn limit_of(filter: &AuditFilter) -> i64 {
    i64::try_from(filter.limit).unwrap_or(i64::MAX)
}

/// The listing's query, the same on both backends but for how a parameter is written
/// (`placeholder(n)`: `?n` in SQLite, `$n` in PostgreSQL). Parameters: user, device, since,
/// kind, limit. The three sources are one row set with each source's columns (the others
/// NULL, typed in the first branch: PostgreSQL types a UNION's columns pair by pair);
/// [`AuditRow::entry`] makes the detail of each.
pub(super) fn audit_query(placeholder: impl Fn(usize) -> String) -> String {
    let [user, device, since, kind, limit] = [1, 2, 3, 4, 5].map(placeholder);
    format!(
        "SELECT at, source, kind, user_id, device_id, origin, detail, change_hash, doc_id, device_time, change_time,
                code, message, bytes_len
         FROM (
            SELECT id, at, 'security' AS source, kind, user_id, device_id, origin, detail,
                   CAST(NULL AS TEXT) AS change_hash, CAST(NULL AS TEXT) AS doc_id,
                   CAST(NULL AS BIGINT) AS device_time, CAST(NULL AS BIGINT) AS change_time,
                   CAST(NULL AS TEXT) AS code, CAST(NULL AS TEXT) AS message, CAST(NULL AS BIGINT) AS bytes_len
            FROM security_audit
            UNION ALL
            SELECT id, server_time, 'change', '{CHANGE_ACCEPTED}', user_id, device_id, 'device:' || device_id, NULL,
                   change_hash, doc_id, device_time, change_time, NULL, NULL, NULL
            FROM audit
            UNION ALL
            SELECT id, server_time, 'refusal', '{PUSH_REFUSED}', user_id, device_id, 'device:' || device_id, NULL,
                   change_hash, doc_id, NULL, NULL, code, message, bytes_len
            FROM refusals
         ) AS merged
         WHERE (CAST({user} AS TEXT) IS NULL OR user_id = {user})
           AND (CAST({device} AS TEXT) IS NULL OR device_id = {device})
           AND (CAST({since} AS BIGINT) IS NULL OR at >= {since})
           AND (CAST({kind} AS TEXT) IS NULL OR kind = {kind})
         ORDER BY at DESC, source DESC, id DESC
         LIMIT {limit}"
    )
}

/// One row of [`audit_query`], as either backend reads it.
pub(super) struct AuditRow {
    pub at: Millis,
    pub source: String,
    pub kind: String,
    pub user: Option<String>,
    pub device: Option<String>,
    pub origin: String,
    /// A security event's stored detail (JSON text).
    pub detail: Option<String>,
    pub change_hash: Option<String>,
    pub doc_id: Option<String>,
    pub device_time: Option<i64>,
    pub change_time: Option<i64>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub bytes_len: Option<i64>,
}

impl AuditRow {
    pub fn entry(self) -> AuditEntry {
        let detail = match self.source.as_str() {
            "change" => serde_json::json!({
                "change_hash": self.change_hash, "doc_id": self.doc_id,
                "device_time": self.device_time, "change_time": self.change_time,
            }),
            "refusal" => serde_json::json!({
                "change_hash": self.change_hash, "doc_id": self.doc_id, "code": self.code,
                "message": self.message, "bytes_len": self.bytes_len,
            }),
            _ => {
                let text = self.detail.unwrap_or_default();
                serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
            }
        };
        AuditEntry {
            at: self.at,
            source: self.source,
            kind: self.kind,
            user: self.user,
            device: self.device,
            origin: self.origin,
            detail,
        }
    }
}
