//! Signing in and out: `GET /console/login` (the form, and its pre-session CSRF cookie),
//! `POST /console/login` and `POST /console/logout`.
//!
//! A sign-in attempt, in order: the guard has bounded the body and checked the form's token;
//! the login and password are at most [`MAX_SECRET_BYTES`] each; the attempt is reserved
//! against the account's throttle (refused while locked or too soon after a wrong password,
//! without hashing); the password is checked outside the database lock, against a dummy hash
//! if the login names no account; the outcome is recorded (the tenth wrong password in a row
//! locks, and that is logged); only then does the role matter.
//!
//! To someone without the password, an unknown login, an account without a console password
//! and a wrong password all look the same: one message, the same time taken, the same
//! slow-down and lock. A grid worker who types their right password is told that their
//! account cannot use the console: they proved it is theirs.

use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::header::LOCATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gridlink_shared::time::{Millis, format_local, now_millis};
use gridlink_shared::{Lang, UserId};
use maud::{Markup, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::errors::{ConsoleError, encode_query_value};
use super::form::{CsrfForm, NoFields, checked_form, csrf_field};
use super::layout::{self, t};
use super::password::MAX_SECRET_BYTES;
use super::session::{self, ConsoleLang, LOGIN_COOKIE, SESSION_COOKIE};
use super::store::{LoginAttempt, is_token, may_use_console};
use crate::api::AppState;
use crate::store::{Origin, SecurityEvent, SecurityKind};

/// The one answer for an unknown login, an account without a password and a wrong password.
const WRONG: (&str, &str) = ("账号或密码错误。", "Wrong login or password.");

#[derive(Default, Deserialize)]
#[serde(default)]
struct LoginQuery {
    next: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct LoginFields {
    login: String,
    password: String,
    next: String,
}

/// A form of a page without a session (the login form), checked by the guard against the
/// login cookie.
pub(super) struct PreSessionForm<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for PreSessionForm<T> {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(PreSessionForm(checked_form(parts)?))
    }
}

/// `GET /console/login`: the form; straight on to the console if already signed in.
pub(super) async fn form(
    State(state): State<AppState>,
    ConsoleLang(lang): ConsoleLang,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ConsoleError> {
    let query: LoginQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let next = safe_next(&query.next);
    if session::authenticate(&state.console, &headers, lang).await?.is_some() {
        return Ok(redirect(next));
    }
    // One token per browser, so two open login tabs both work.
    let token = session::read_cookie(&headers, LOGIN_COOKIE)
        .filter(|t| is_token(t))
        .map(str::to_string)
        .unwrap_or_else(crate::secrets::new_token);
    let mut response = login_page(lang, &token, "", next, None).into_response();
    session::set(response.headers_mut(), session::cookie(LOGIN_COOKIE, &token, None));
    Ok(response)
}

/// `POST /console/login`.
pub(super) async fn submit(
    State(state): State<AppState>,
    ConsoleLang(lang): ConsoleLang,
    headers: HeaderMap,
    PreSessionForm(fields): PreSessionForm<LoginFields>,
) -> Result<Response, ConsoleError> {
    // The guard checked that the form's token is this cookie's.
    let token = session::read_cookie(&headers, LOGIN_COOKIE).unwrap_or_default().to_string();
    let next = safe_next(&fields.next);
    let login = fields.login.trim().to_string();
    let refuse = |status: StatusCode, message: &str| {
        (status, login_page(lang, &token, &login, next, Some(message))).into_response()
    };
    if login.is_empty() || fields.password.is_empty() {
        return Ok(refuse(StatusCode::BAD_REQUEST, t(lang, "请输入账号和密码。", "Enter your login and password.")));
    }
    if login.len() > MAX_SECRET_BYTES || fields.password.len() > MAX_SECRET_BYTES {
        return Ok(refuse(StatusCode::BAD_REQUEST, t(lang, "账号或密码过长。", "The login or password is too long.")));
    }

    let console = &state.console;
    let policy = *console.policy();
    let typed = login.clone();
    let attempt = console.blocking(move |store| store.begin_login(&typed, now_millis(), &policy)).await?;
    let (key, account) = match attempt {
        LoginAttempt::Locked { until } => {
            return Ok(refuse(StatusCode::TOO_MANY_REQUESTS, &locked_message(lang, until)));
        }
        LoginAttempt::Wait { until } => {
            let seconds = ((until - now_millis()).max(1) + 999) / 1000;
            let message = match lang {
                Lang::Zh => format!("密码错误次数较多，请 {seconds} 秒后再试。"),
                Lang::En => format!("Several wrong passwords; wait {seconds} s before trying again."),
            };
            return Ok(refuse(StatusCode::TOO_MANY_REQUESTS, &message));
        }
        LoginAttempt::Check { key, account } => (key, account),
    };
    let stored = account.as_ref().and_then(|a| a.password_hash.clone());
    let right = console.verify_password(fields.password, stored).await?;
    let recorded = key.clone();
    let locked = console.blocking(move |store| store.finish_login(&recorded, right, now_millis(), &policy)).await?;
    if let Some(until) = locked {
        tracing::warn!(
            user = ?account.as_ref().map(|a| a.user),
            login = ?key,
            until = %format_local(until),
            "console: login locked after {} wrong passwords in a row",
            policy.lock_after
        );
        record_login(&state, false, account.map(|a| a.user), &login, locked).await;
        return Ok(refuse(StatusCode::TOO_MANY_REQUESTS, &locked_message(lang, until)));
    }
    let named = account.as_ref().map(|a| a.user);
    let Some(account) = account.filter(|_| right) else {
        record_login(&state, false, named, &login, locked).await;
        return Ok(refuse(StatusCode::UNAUTHORIZED, t(lang, WRONG.0, WRONG.1)));
    };
    if !may_use_console(account.role) {
        tracing::info!(user = %account.user, role = %account.role, "console: refused a role that may not sign in");
        record_login(&state, false, Some(account.user), &login, None).await;
        let message = t(lang, "此账号不能登录管理后台。", "This account cannot sign in to the console.");
        return Ok(refuse(StatusCode::FORBIDDEN, message));
    }

    // A fresh session each time; one this browser still holds ends (no session fixation).
    if let Some(old) = session::read_cookie(&headers, SESSION_COOKIE).map(str::to_string) {
        console.blocking(move |store| store.end_session(&old)).await?;
    }
    let user = account.user;
    let created = console.blocking(move |store| store.create_session(user, now_millis(), &policy)).await?;
    tracing::info!(%user, "console: signed in");
    record_login(&state, true, Some(user), &login, None).await;
    let mut response = redirect(next);
    session::set(response.headers_mut(), session::cookie(SESSION_COOKIE, &created.token, None));
    session::set(response.headers_mut(), session::clear_cookie(LOGIN_COOKIE));
    Ok(response)
}

/// `POST /console/logout`: ends this session; the cookie is dropped too.
pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm { user, form: NoFields {} }: CsrfForm<NoFields>,
) -> Result<Response, ConsoleError> {
    if let Some(token) = session::read_cookie(&headers, SESSION_COOKIE).map(str::to_string) {
        state.console.blocking(move |store| store.end_session(&token)).await?;
    }
    tracing::info!(user = %user.id, "console: signed out");
    let mut response = redirect("/console/login");
    session::set(response.headers_mut(), session::clear_cookie(SESSION_COOKIE));
    Ok(response)
}

/// Records a console login in the security audit: who (the account, if the login named one;
/// else what was typed, cut short) and whether it worked or locked the login.
async fn record_login(state: &AppState, ok: bool, user: Option<UserId>, typed: &str, locked: Option<Millis>) {
    let kind = if ok { SecurityKind::ConsoleLogin } else { SecurityKind::ConsoleLoginFailed };
    let origin = match user {
        Some(user) => Origin::Console(user),
        None => Origin::ConsoleSignIn,
    };
    let mut event = SecurityEvent::new(kind, origin);
    event.user = user;
    event.detail = match (user, locked) {
        (Some(_), None) => serde_json::Value::Null,
        (Some(_), Some(until)) => serde_json::json!({ "locked_until": until }),
        (None, locked) => {
            let typed: String = typed.chars().filter(|c| !c.is_control()).take(40).collect();
            serde_json::json!({ "login": typed, "locked_until": locked })
        }
    };
    if let Err(error) = state.console.blocking(move |store| store.any().record_security(&event, now_millis())).await {
        tracing::error!(?error, "console: could not record a login in the security audit");
    }
}

fn locked_message(lang: Lang, until: Millis) -> String {
    let minutes = ((until - now_millis()).max(1) + 59_999) / 60_000;
    match lang {
        Lang::Zh => format!("密码错误次数过多，已暂时锁定，请 {minutes} 分钟后再试，或请管理员重设密码。"),
        Lang::En => format!(
            "Too many wrong passwords: locked for now. Try again in {minutes} min, or ask an admin to reset the password."
        ),
    }
}

/// Where to go after signing in: a console page, never another site or the login itself.
fn safe_next(next: &str) -> &str {
    let console_page = next == "/console" || next.starts_with("/console/") || next.starts_with("/console?");
    let harmless = next.len() <= 1000 && !next.contains(['\\', '\r', '\n']) && !next.starts_with("/console/log");
    if console_page && harmless { next } else { "/console" }
}

fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(LOCATION, HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/console")));
    response
}

fn login_page(lang: Lang, token: &str, login: &str, next: &str, message: Option<&str>) -> Markup {
    let keep_next = if next == "/console" { String::new() } else { format!("&next={}", encode_query_value(next)) };
    layout::bare_page(
        lang,
        t(lang, "登录", "Sign in"),
        html! {
            div.card.login-card {
                div.login-head {
                    span.logo { "网" }
                    h1 { (t(lang, "网格通管理后台", "Gridlink console")) }
                    p.muted { (t(lang, "督导和管理员登录", "For supervisors and admins")) }
                }
                @if let Some(message) = message {
                    p.form-error role="alert" { (message) }
                }
                form method="post" action="/console/login" {
                    (csrf_field(token))
                    input type="hidden" name="next" value=(next);
                    div.field {
                        label for="login" { (t(lang, "手机号或用户编号", "Phone number or user id")) }
                        input #login name="login" type="text" value=(login) autocomplete="username" required
                            autofocus[login.is_empty()];
                    }
                    div.field {
                        label for="password" { (t(lang, "密码", "Password")) }
                        input #password name="password" type="password" autocomplete="current-password" required
                            autofocus[!login.is_empty()];
                    }
                    button.btn.primary.block type="submit" { (t(lang, "登录", "Sign in")) }
                }
                p.login-foot {
                    span.muted { (t(lang, "忘记密码请联系管理员。", "Forgot your password? Ask your admin.")) }
                    (layout::lang_switch(lang, &keep_next))
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_signing_in_only_console_pages_are_destinations() {
        assert_eq!(safe_next("/console/cases?status=open"), "/console/cases?status=open");
        assert_eq!(safe_next("/console"), "/console");
        assert_eq!(safe_next("https://evil.example/"), "/console");
        assert_eq!(safe_next("//evil.example/console"), "/console");
        assert_eq!(safe_next("/consolex"), "/console");
        assert_eq!(safe_next("/console/logout"), "/console");
        assert_eq!(safe_next("/console/\\evil"), "/console");
        assert_eq!(safe_next(""), "/console");
    }
}
