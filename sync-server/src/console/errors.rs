//! Console failures and the pages that show them. A handler returns [`ConsoleError`]; it
//! leaves the response bare (a status and the message in an extension) and the [`guard`]
//! renders it as a page in the request's language, so errors raised before the language is
//! known (or by layers outside the console) look the same. Internals never reach a page: a
//! fault is logged and answered with a generic message.
//!
//! [`guard`]: super::guard

use std::borrow::Cow;

use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gridlink_shared::Lang;
use maud::{Markup, html};

use super::layout::{self, t};
use crate::store::StoreError;

/// A console failure: an error page, or a redirect to the login page.
#[derive(Clone, Debug)]
pub struct ConsoleError {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Page(ErrorMessage),
    SignIn { next: Option<String>, clear_cookie: bool },
}

/// The message of an error page, carried in the response's extensions until the guard
/// renders it.
#[derive(Clone, Debug)]
pub struct ErrorMessage {
    pub status: StatusCode,
    pub zh: Cow<'static, str>,
    pub en: Cow<'static, str>,
}

impl ConsoleError {
    /// An error page with this status and message in both languages.
    pub fn new(status: StatusCode, zh: impl Into<Cow<'static, str>>, en: impl Into<Cow<'static, str>>) -> Self {
        ConsoleError { kind: Kind::Page(ErrorMessage { status, zh: zh.into(), en: en.into() }) }
    }

    /// 404: no such page, or a record outside the user's scopes. The two answer the same, so
    /// a page never tells whether something exists where the user may not look.
    pub fn not_found() -> Self {
        ConsoleError::new(
            StatusCode::NOT_FOUND,
            "找不到这个页面，或不在你的管辖范围内。",
            "This page does not exist or is outside your area.",
        )
    }

    /// 403: the page is for admins (or another role) only.
    pub fn forbidden() -> Self {
        ConsoleError::new(StatusCode::FORBIDDEN, "你的账号无权打开这个页面。", "Your account may not open this page.")
    }

    /// 403: a form without the right CSRF token (stale, or posted from another site).
    pub fn csrf() -> Self {
        ConsoleError::new(
            StatusCode::FORBIDDEN,
            "表单已过期或不是从本系统提交的。请返回，刷新页面后重试。",
            "This form has expired or was not sent from this console. Go back, reload the page and try again.",
        )
    }

    /// 413: a form body over the limit; refused before it is read further or anything hashed.
    pub fn too_large() -> Self {
        ConsoleError::new(StatusCode::PAYLOAD_TOO_LARGE, "提交的内容过长。", "What was sent is too long.")
    }

    /// 503: this server serves the phones' API only (`AppState::sync_only`), not the console.
    pub fn unavailable() -> Self {
        ConsoleError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "此服务器未开启网页控制台。手机同步不受影响。",
            "This server does not serve the web console. Phone sync works as usual.",
        )
    }

    /// 400 with a message for the person.
    pub fn bad_request(zh: impl Into<Cow<'static, str>>, en: impl Into<Cow<'static, str>>) -> Self {
        ConsoleError::new(StatusCode::BAD_REQUEST, zh, en)
    }

    /// 500: the detail goes to the log, the page says only that something failed.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "console: internal error");
        ConsoleError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "服务器出错了，请稍后再试；如果一直出现，请联系管理员。",
            "Something went wrong on the server. Try again later; if it keeps happening, tell your admin.",
        )
    }

    /// A redirect to the login page, coming back to `next` afterwards. `clear_cookie` drops a
    /// session cookie that no longer names a session.
    pub(crate) fn sign_in(next: Option<String>, clear_cookie: bool) -> Self {
        ConsoleError { kind: Kind::SignIn { next, clear_cookie } }
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        match &self.kind {
            Kind::Page(message) => message.status,
            Kind::SignIn { .. } => StatusCode::SEE_OTHER,
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self.kind {
            Kind::Page(message) => {
                // Bare: the guard renders it in the request's language.
                let mut response = message.status.into_response();
                response.extensions_mut().insert(message);
                response
            }
            Kind::SignIn { next, clear_cookie } => {
                let location = match next {
                    Some(next) => format!("/console/login?next={}", encode_query_value(&next)),
                    None => "/console/login".to_string(),
                };
                let mut response = StatusCode::SEE_OTHER.into_response();
                if let Ok(value) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(LOCATION, value);
                }
                if clear_cookie {
                    response
                        .headers_mut()
                        .append(SET_COOKIE, super::session::clear_cookie(super::session::SESSION_COOKIE));
                }
                response
            }
        }
    }
}

impl From<StoreError> for ConsoleError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(_) => ConsoleError::not_found(),
            StoreError::Invalid(message) => ConsoleError::bad_request(message.clone(), message),
            other => ConsoleError::internal(other),
        }
    }
}

/// The error page for `status` (with `message`, or the status's own words).
pub(crate) fn page(status: StatusCode, message: Option<&ErrorMessage>, lang: Lang) -> Markup {
    let (zh, en) = match message {
        Some(message) => (message.zh.as_ref(), message.en.as_ref()),
        None => default_words(status),
    };
    let heading = match status {
        StatusCode::NOT_FOUND => t(lang, "找不到页面", "Not found"),
        StatusCode::FORBIDDEN => t(lang, "无权访问", "Not allowed"),
        StatusCode::SERVICE_UNAVAILABLE => t(lang, "暂不可用", "Not available"),
        s if s.is_server_error() => t(lang, "服务器出错", "Server error"),
        _ => t(lang, "无法完成请求", "Request refused"),
    };
    layout::bare_page(
        lang,
        heading,
        html! {
            div.card.error-card {
                h1 { (heading) }
                p.lead { (t(lang, zh, en)) }
                p.muted { (status.as_u16()) }
                p.actions {
                    a.btn.primary href="/console" { (t(lang, "返回工作台", "Back to the dashboard")) }
                    a.btn href="/console/login" { (t(lang, "登录", "Sign in")) }
                }
            }
        },
    )
}

fn default_words(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::NOT_FOUND => {
            ("找不到这个页面，或不在你的管辖范围内。", "This page does not exist or is outside your area.")
        }
        StatusCode::FORBIDDEN => ("你的账号无权打开这个页面。", "Your account may not open this page."),
        StatusCode::METHOD_NOT_ALLOWED => ("这个页面不支持这种操作。", "This page does not support that action."),
        StatusCode::PAYLOAD_TOO_LARGE => ("提交的内容过长。", "What was sent is too long."),
        StatusCode::REQUEST_TIMEOUT => ("请求超时，请重试。", "The request took too long; try again."),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("提交的格式不对。", "What was sent is not a form."),
        StatusCode::TOO_MANY_REQUESTS => ("尝试过于频繁，请稍后再试。", "Too many attempts; try again later."),
        s if s.is_server_error() => (
            "服务器出错了，请稍后再试；如果一直出现，请联系管理员。",
            "Something went wrong on the server. Try again later; if it keeps happening, tell your admin.",
        ),
        _ => ("请求无法完成。", "The request could not be completed."),
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
pub(crate) fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_say_nothing_inside_and_redirects_keep_the_way_back() {
        let fault = ConsoleError::from(StoreError::Backend("disk I/O error at /srv/gridlink/server.db".into()));
        assert_eq!(fault.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let html = page(fault.status(), None, Lang::Zh).into_string();
        assert!(!html.contains("/srv"));
        let redirect = ConsoleError::sign_in(Some("/console/cases?grid=a b".into()), false).into_response();
        assert_eq!(redirect.headers()[LOCATION], "/console/login?next=/console/cases%3Fgrid%3Da%20b");
    }
}
