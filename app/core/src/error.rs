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
    #[error("{0}")]
    Io(String),
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
            Error::Io(m) => (format!("本机存储出错：{m}"), format!("Local storage error: {m}")),
        };
        PlainWords { zh, en }
    }
}
