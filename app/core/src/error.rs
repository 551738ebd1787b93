//! One error type for the client core, with plain-words messages in Chinese and English and
//! [`Error::is_retryable`] for the sync engine and the UI's "try again" button.

use gridlink_shared::protocol::ErrorCode;
use gridlink_shared::{DocError, ValidationError};

use crate::views::PlainWords;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The local database cannot be opened with this key (wrong key, or not a database).
    #[error(
        "the local database {path} cannot be read with this key (wrong key or corrupt file); \
         nothing was changed. Restore the key (GRIDLINK_DB_KEY or db.key), or move the data \
         directory away and enrol again: synced data comes back, unsynced changes are lost"
    )]
    WrongKey { path: String },
    #[error("database key is invalid: {0}")]
    BadKey(String),
    #[error("local database error: {0}")]
    Store(#[from] rusqlite::Error),
    #[error("document error: {0}")]
    Doc(Box<DocError>),
    #[error("refused before saving: {0}")]
    Invalid(#[from] ValidationError),
    #[error("{0}")]
    Input(String),
    #[error("{what} {id} is not on this device")]
    NotFound { what: &'static str, id: String },
    /// The document's data could not be read (automerge failed or panicked on it): it is set
    /// aside in quarantine until the server's copy repairs it.
    #[error(
        "{what} {id} has damaged data; it is set aside (quarantined) and its repair is asked from the server \
         at the next sync; unsent changes are kept"
    )]
    Quarantined { what: &'static str, id: String },
    #[error("this device is not enrolled yet: run enroll with a code from your administrator")]
    NotEnrolled,
    #[error("this device was revoked by the administrator; sync is stopped and unsynced data is kept encrypted on it")]
    Revoked,
    #[error(
        "{unsent} change(s) are not yet on the server and {rejected} are kept aside; sync first, or force to lose them"
    )]
    Unsent { unsent: usize, rejected: usize },
    #[error("cannot reach the server: {0}")]
    Connect(String),
    #[error("the server did not answer in time: {0}")]
    Timeout(String),
    #[error("server answered {status}{}: {message}", code.map(|c| format!(" {c}")).unwrap_or_default())]
    Server { status: u16, code: Option<ErrorCode>, message: String },
    #[error("the server's answer breaks the protocol: {0}")]
    Protocol(String),
    /// A file of the data directory could not be created, read, written or removed.
    #[error("{what}: {source}")]
    File {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Something read back from the local store or data directory does not parse (an id, a
    /// cursor, a stored JSON value, a key file): the data is damaged or was not written by
    /// this app. Nothing is changed.
    #[error("the local data is unreadable: {0}")]
    Corrupt(String),
    /// A value could not be encoded to be stored or sent (a bug, not bad input).
    #[error("cannot encode {0}")]
    Encode(String),
    #[error("the local database was written by a newer app (schema {found}, this app knows {known}); update the app")]
    NewerSchema { found: usize, known: usize },
    /// A background task (the sync running off the UI thread) stopped before finishing.
    #[error("the background task stopped: {0}")]
    Task(String),
    /// The HTTPS connection could not be set up safely: a bad CA file, or a server certificate
    /// not signed by the CA this device trusts for its server. Not retried.
    #[error("TLS: {0}")]
    Tls(String),
    /// The administrator wiped this device (`gridlink-server device wipe`): the local store,
    /// its key files and wrapped keys have been deleted.
    #[error(
        "this device was wiped by the administrator: the local store and its keys have been erased; \
         ask the administrator for a new enrolment code to use it again"
    )]
    Wiped,
    /// The store is locked with a PIN and neither the PIN nor `GRIDLINK_DB_KEY` was given.
    #[error(
        "the local store is locked with a PIN: give the PIN (GRIDLINK_PIN for the CLI) or the key (GRIDLINK_DB_KEY)"
    )]
    PinRequired,
    /// A wrong PIN; after [`crate::keys::MAX_PIN_FAILURES`] in a row the data is locked for
    /// the administrator.
    #[error(
        "wrong PIN: {left} more wrong PIN(s) lock the data for the administrator{}",
        wait_phrase(*wait_ms)
    )]
    WrongPin { left: u32, wait_ms: i64 },
    /// Too many wrong PINs lately: the next try is allowed in `wait_ms`.
    #[error("too many wrong PINs: try again in {} s", secs(*wait_ms))]
    PinWait { wait_ms: i64 },
    /// Ten wrong PINs in a row: the PIN-wrapped key was destroyed. Only the administrator's
    /// recovery key opens the store now (`gridlink recover`).
    #[error(
        "{} wrong PINs in a row: the PIN key on this device was destroyed and the data is locked for the \
         administrator, who can recover unsent changes with `gridlink recover --recovery-key`",
        crate::keys::MAX_PIN_FAILURES
    )]
    PinLockedOut,
}

/// Whole seconds, rounded up, of a wait in milliseconds.
fn secs(wait_ms: i64) -> i64 {
    (wait_ms.max(0) + 999) / 1000
}

fn wait_phrase(wait_ms: i64) -> String {
    if wait_ms > 0 { format!("; next try in {} s", secs(wait_ms)) } else { String::new() }
}

impl Error {
    /// An [`Error::File`] for an I/O failure on `path`.
    pub fn file(what: &str, path: &std::path::Path, source: std::io::Error) -> Error {
        Error::File { what: format!("{what} {}", path.display()), source }
    }
}

impl From<DocError> for Error {
    fn from(e: DocError) -> Self {
        Error::Doc(Box::new(e))
    }
}

impl Error {
    /// Whether trying again later may succeed: connection problems, timeouts, server errors
    /// (5xx) and rate limiting (429).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connect(_) | Error::Timeout(_) => true,
            Error::Server { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            // A garbled page (cut connection mid-body) is retried; the server re-sends it.
            Error::Protocol(_) => true,
            _ => false,
        }
    }

    /// The message for people, in both languages.
    pub fn plain(&self) -> PlainWords {
        let (zh, en): (String, String) = match self {
            Error::WrongKey { .. } | Error::BadKey(_) => (
                "本机数据无法用当前密钥打开。请恢复密钥，或重新注册设备（已同步的数据会重新下载，未同步的修改会丢失）。".into(),
                "The local data cannot be opened with this key. Restore the key, or enrol again (synced data comes back, unsynced changes are lost).".into(),
            ),
            Error::Store(e) => (format!("本机数据库出错：{e}"), format!("Local database error: {e}")),
            Error::Doc(e) => (format!("记录数据有误：{e}"), format!("Record data error: {e}")),
            Error::Invalid(v) => (format!("未保存：{}（{}）", v.code.zh(), v.message), format!("Not saved: {} ({})", v.code.en(), v.message)),
            Error::Input(m) => (format!("输入有误：{m}"), m.clone()),
            Error::NotFound { what, id } => (format!("本机没有此记录（{what} {id}）"), format!("{what} {id} is not on this device")),
            Error::Quarantined { what, .. } => {
                let zh_what = match *what {
                    "household" => "住户档案",
                    "case" => "事件",
                    _ => "记录",
                };
                (
                    format!("这条{zh_what}数据异常，已隔离，正在向服务器请求修复。请同步后再试；本机未上传的修改不会丢失。"),
                    format!("This {what} record is damaged. It has been set aside and a repair was asked from the server; sync and try again. Unsent changes on this phone are kept."),
                )
            }
            Error::NotEnrolled => ("设备尚未注册，请输入管理员提供的注册码。".into(), "This device is not enrolled yet; enter the code from your administrator.".into()),
            Error::Revoked => (
                "此设备已被管理员停用，同步已停止；未同步的数据仍加密保存在本机。".into(),
                "This device was revoked by the administrator. Sync has stopped; unsynced data stays encrypted on this device.".into(),
            ),
            Error::Unsent { unsent, rejected } => (
                format!("还有 {unsent} 条修改未同步、{rejected} 条被退回，请先同步。"),
                format!("{unsent} change(s) are not synced and {rejected} were refused; sync first."),
            ),
            Error::Connect(_) => ("无法连接服务器，已离线保存，稍后自动重试。".into(), "Cannot reach the server. Saved offline; will retry.".into()),
            Error::Timeout(_) => ("服务器响应超时，稍后自动重试。".into(), "The server did not answer in time; will retry.".into()),
            Error::Server { status, code, message } => match code {
                Some(code) => (format!("服务器：{}（{message}）", code.zh()), format!("Server: {} ({message})", code.en())),
                None => (format!("服务器错误 {status}，稍后重试。"), format!("Server error {status}; will retry.")),
            },
            Error::Protocol(m) => (format!("收到的数据不完整，将重新同步：{m}"), format!("Incomplete data received; will sync again: {m}")),
            Error::File { what, source } => (format!("本机文件读写出错（{what}）：{source}"), format!("Local file error ({what}): {source}")),
            Error::Corrupt(m) => (format!("本机数据无法读取（可能已损坏）：{m}"), format!("Local data is unreadable (damaged?): {m}")),
            Error::Encode(m) => (format!("内部错误，无法编码：{m}"), format!("Internal error, cannot encode: {m}")),
            Error::NewerSchema { .. } => ("本机数据由更新版本的应用写入，请先升级应用。".into(), "The local data was written by a newer version of the app; update the app.".into()),
            Error::Task(m) => (format!("后台任务意外停止，请重试：{m}"), format!("A background task stopped; try again: {m}")),
            Error::Tls(m) => (
                format!("服务器证书不受信任，已拒绝连接（未发送任何数据）。请联系管理员：{m}"),
                format!("The server's certificate is not trusted; the connection was refused before anything was sent. Contact your administrator: {m}"),
            ),
            Error::Wiped => (
                "此设备已被管理员远程清除：本机数据和密钥已删除。如需继续使用，请向管理员申请新的注册码。".into(),
                "This device was wiped by the administrator: its local data and keys have been erased. Ask your administrator for a new enrolment code to use it again.".into(),
            ),
            Error::PinRequired => ("本机数据已用 PIN 码加锁，请输入 PIN 码。".into(), "The local data is locked with a PIN; enter the PIN.".into()),
            Error::WrongPin { left, wait_ms } => {
                let wait = secs(*wait_ms);
                if wait > 0 {
                    (
                        format!("PIN 码不正确。请 {wait} 秒后再试；再输错 {left} 次，本机数据将锁定，只能由管理员恢复。"),
                        format!("Wrong PIN. Try again in {wait} s; {left} more wrong PIN(s) lock the data for the administrator."),
                    )
                } else {
                    (
                        format!("PIN 码不正确。再输错 {left} 次，本机数据将锁定，只能由管理员恢复。"),
                        format!("Wrong PIN. {left} more wrong PIN(s) lock the data for the administrator."),
                    )
                }
            }
            Error::PinWait { wait_ms } => {
                let wait = secs(*wait_ms);
                (format!("PIN 码输错次数过多，请 {wait} 秒后再试。"), format!("Too many wrong PINs. Try again in {wait} s."))
            }
            Error::PinLockedOut => (
                "PIN 码已连续输错 10 次，本机数据已锁定，只能由管理员恢复。请联系管理员。".into(),
                "10 wrong PINs in a row: the data on this device is locked and only your administrator can recover it. Contact your administrator.".into(),
            ),
        };
        PlainWords { zh, en }
    }
}
