//! The middleware every console request passes, in this order:
//!
//! 1. **Language**: `?lang=zh|en` (remembered in a cookie), else the cookie, else Chinese.
//! 2. **Forms**: a request that is not GET/HEAD/OPTIONS must be a url-encoded form of at most
//!    [`ConsolePolicy::form_bytes`](super::ConsolePolicy) (413 otherwise, before anything is
//!    parsed or hashed) whose `csrf` field equals the session's token, or on the login form
//!    the pre-session token of its cookie (403 otherwise). The session is looked up here, so a
//!    POST without one goes to the login page. The file upload paths of [`upload`] take a
//!    `multipart/form-data` body within their own limit instead, with a `csrf` part.
//! 3. **Answer**: error statuses become HTML pages in the request's language, and every
//!    response gets the security headers below.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gridlink_shared::Lang;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;

use super::errors::{self, ConsoleError, ErrorMessage};
use super::form::{CSRF_FIELD, VerifiedBody, same_secret};
use super::session::{self, LANG_COOKIE, LOGIN_COOKIE, SESSION_COOKIE};
use super::upload;
use crate::api::AppState;

/// POST paths used before there is a session; their forms carry the login cookie's token.
const PRE_SESSION_POSTS: &[&str] = &["/console/login"];

/// No script may run, nothing may come from elsewhere, no other site may frame a page or be
/// the target of a form.
const CSP: &str = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub(super) async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let chosen = chosen_lang(request.uri());
    let lang = chosen.unwrap_or_else(|| lang_of(&request));
    request.extensions_mut().insert(lang);
    let response = if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        next.run(request).await
    } else {
        match check_form(&state, request, lang).await {
            Ok(request) => next.run(request).await,
            Err(error) => error.into_response(),
        }
    };
    finish(response, lang, chosen)
}

/// The language of a request: `?lang=`, else the cookie, else Chinese.
pub(crate) fn lang_of(request: &Request) -> Lang {
    chosen_lang(request.uri())
        .or_else(|| match session::read_cookie(request.headers(), LANG_COOKIE) {
            Some("en") => Some(Lang::En),
            Some("zh") => Some(Lang::Zh),
            _ => None,
        })
        .unwrap_or_default()
}

/// `?lang=en` or `?lang=zh` in the query.
fn chosen_lang(uri: &Uri) -> Option<Lang> {
    uri.query()?.split('&').find_map(|pair| match pair {
        "lang=en" => Some(Lang::En),
        "lang=zh" => Some(Lang::Zh),
        _ => None,
    })
}

#[derive(Deserialize)]
struct TokenField {
    #[serde(rename = "csrf")]
    token: Option<String>,
}

/// Step 2: reads the form within the limit and checks its token; the request comes back with
/// the body (and, after a session check, the [`ConsoleUser`](super::ConsoleUser)) in its
/// extensions.
async fn check_form(state: &AppState, request: Request, lang: Lang) -> Result<Request, ConsoleError> {
    // A file upload path has its own (larger) limit and a multipart body; every other POST is
    // a short url-encoded form.
    let upload_limit = upload::limit_for(request.uri().path());
    let limit = upload_limit.unwrap_or(state.console.policy().form_bytes);
    let (mut parts, body) = request.into_parts();
    let declared = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ConsoleError::too_large());
    }
    let right_type =
        if upload_limit.is_some() { upload::is_multipart(&parts.headers) } else { is_form(&parts.headers) };
    if !right_type {
        return Err(ConsoleError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "提交的格式不对。",
            "What was sent is not a form.",
        ));
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => return Err(ConsoleError::too_large()),
        Err(error) => {
            tracing::debug!(%error, "console: could not read a form body");
            return Err(ConsoleError::bad_request("没有收到完整的表单。", "The form did not arrive whole."));
        }
    };
    let sent = if upload_limit.is_some() {
        upload::csrf_of(&parts.headers, &bytes).await
    } else {
        serde_urlencoded::from_bytes::<TokenField>(&bytes).ok().and_then(|f| f.token).unwrap_or_default()
    };
    let path = parts.uri.path().to_string();
    let expected = if PRE_SESSION_POSTS.contains(&path.as_str()) {
        session::read_cookie(&parts.headers, LOGIN_COOKIE).unwrap_or_default().to_string()
    } else {
        match session::authenticate(&state.console, &parts.headers, lang).await? {
            Some(user) => {
                let token = user.csrf_token().to_string();
                parts.extensions.insert(user);
                token
            }
            None => {
                return Err(ConsoleError::sign_in(
                    None,
                    session::read_cookie(&parts.headers, SESSION_COOKIE).is_some(),
                ));
            }
        }
    };
    if expected.is_empty() || !same_secret(&sent, &expected) {
        tracing::warn!(%path, sent = !sent.is_empty(), "console: refused a form without the right {CSRF_FIELD} token");
        return Err(ConsoleError::csrf());
    }
    parts.extensions.insert(VerifiedBody(bytes.clone()));
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// Step 3: renders a bare error status as a page, adds the security headers and, if the
/// request chose a language, remembers it. Safe to run twice on one response.
pub(crate) fn finish(response: Response, lang: Lang, chosen: Option<Lang>) -> Response {
    let status = response.status();
    let is_html =
        response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    let mut response = if (status.is_client_error() || status.is_server_error()) && !is_html {
        if status.is_server_error() && response.extensions().get::<ErrorMessage>().is_none() {
            tracing::error!(%status, "console: answered with a server error");
        }
        let page = errors::page(status, response.extensions().get::<ErrorMessage>(), lang).into_string();
        // Keep the other headers (Allow, Set-Cookie, ...); the body is the page.
        let (mut parts, _) = response.into_parts();
        parts.headers.remove(CONTENT_LENGTH);
        parts.headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        Response::from_parts(parts, Body::from(page))
    } else {
        response
    };
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !headers.contains_key(CACHE_CONTROL) {
        // Pages show personal data: never kept by the browser or a proxy.
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(chosen) = chosen {
        let value = match chosen {
            Lang::Zh => "zh",
            Lang::En => "en",
        };
        session::set(headers, session::cookie(LANG_COOKIE, value, Some(365 * 24 * 3600)));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_comes_from_the_query_then_the_cookie() {
        let request = |uri: &str, cookie: Option<&str>| {
            let mut builder = Request::get(uri);
            if let Some(cookie) = cookie {
                builder = builder.header("cookie", cookie);
            }
            builder.body(Body::empty()).unwrap()
        };
        assert_eq!(lang_of(&request("/console", None)), Lang::Zh);
        assert_eq!(lang_of(&request("/console?lang=en", None)), Lang::En);
        assert_eq!(lang_of(&request("/console", Some("gridlink_console_lang=en"))), Lang::En);
        assert_eq!(lang_of(&request("/console?a=1&lang=zh", Some("gridlink_console_lang=en"))), Lang::Zh);
        assert_eq!(lang_of(&request("/console?lang=fr", None)), Lang::Zh);
    }

    #[test]
    fn bare_errors_become_pages_with_the_security_headers() {
        let response = finish(StatusCode::NOT_FOUND.into_response(), Lang::En, None);
        assert_eq!(response.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(response.headers()[X_FRAME_OPTIONS], "DENY");
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        assert!(response.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().starts_with("default-src 'self'"));
    }
}
