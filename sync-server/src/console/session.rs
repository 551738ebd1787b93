//! Who is signed in: the session cookie, the [`ConsoleUser`] extractor (a valid session, its
//! user re-read from the roster on every request, or a redirect to the login page), the admin
//! check and the scope checks every page that shows data must make.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use gridlink_shared::time::now_millis;
use gridlink_shared::{Lang, Placement, Principal, Role, Scope, UserId};

use super::errors::ConsoleError;
use super::store::{CoveredArea, ScopeName};
use super::{Console, layout};
use crate::api::AppState;

/// The session cookie: 32 random bytes, hex. The database keeps only its SHA-256.
pub const SESSION_COOKIE: &str = "gridlink_console";
/// The login form's CSRF cookie, set by `GET /console/login` before there is a session.
pub const LOGIN_COOKIE: &str = "gridlink_console_login";
/// The chosen language (`?lang=en` on any console page), kept for a year.
pub const LANG_COOKIE: &str = "gridlink_console_lang";

/// A `Set-Cookie` value for a console cookie. `HttpOnly` (no script needs it; there is none),
/// `SameSite=Strict` (never sent with a request started by another site, the first line of
/// defence against CSRF) and `Path=/console` (never sent to the sync API).
///
/// `Secure` is added by the connection when the server speaks TLS (`serve --tls-cert`, see
/// `api::secure_cookies`), so the same console also works over plain HTTP on an intranet.
pub(crate) fn cookie(name: &str, value: &str, max_age_secs: Option<u64>) -> HeaderValue {
    let max_age = max_age_secs.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    HeaderValue::from_str(&format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict{max_age}"))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// A `Set-Cookie` value that deletes a console cookie.
pub(crate) fn clear_cookie(name: &str) -> HeaderValue {
    cookie(name, "", Some(0))
}

/// The value of cookie `name` in the request's `Cookie` headers, if present.
pub(crate) fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// A signed-in supervisor or admin, as the roster says at this request.
///
/// As an extractor it needs a live session cookie; without one the request is redirected to
/// the login page (and comes back here after signing in). Take it in every console handler
/// that shows anything; POST handlers take [`CsrfForm`](super::CsrfForm), which carries it.
#[derive(Clone)]
pub struct ConsoleUser {
    pub id: UserId,
    pub name: String,
    pub role: Role,
    pub scopes: Vec<Scope>,
    /// The scopes with their roster names, for people.
    pub scope_names: Vec<ScopeName>,
    /// The language of this request's pages.
    pub lang: Lang,
    csrf: String,
    console: Console,
}

impl std::fmt::Debug for ConsoleUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the CSRF token.
        f.debug_struct("ConsoleUser")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("scopes", &self.scopes)
            .field("lang", &self.lang)
            .finish_non_exhaustive()
    }
}

impl ConsoleUser {
    /// The token every form of this session must send back (see [`super::form::post_form`]).
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// `zh` or `en`, in this user's language.
    pub fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        layout::t(self.lang, zh, en)
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// For admin pages: `Err` (403 page) unless the user is an admin.
    pub fn require_admin(&self) -> Result<(), ConsoleError> {
        if self.is_admin() { Ok(()) } else { Err(ConsoleError::forbidden()) }
    }

    /// The user as the shared validator sees them.
    pub fn principal(&self) -> Principal {
        Principal { user: self.id, name: self.name.clone(), role: self.role, scopes: self.scopes.clone() }
    }

    /// Whether the user's scopes cover something placed at `placement`.
    pub fn covers(&self, placement: &Placement) -> bool {
        self.principal().covers(placement)
    }

    /// For pages of one record: `Err` (a 404 page, the same as for a record that does not
    /// exist) unless the user's scopes cover `placement`. Check before reading anything else
    /// of the record.
    pub fn require_covers(&self, placement: &Placement) -> Result<(), ConsoleError> {
        if self.covers(placement) { Ok(()) } else { Err(ConsoleError::not_found()) }
    }

    /// For pages of one grid: the grid's placement if it exists and the user's scopes cover
    /// it, else a 404 page.
    pub async fn require_grid(&self, grid: gridlink_shared::GridId) -> Result<Placement, ConsoleError> {
        let placement = self.console.blocking(move |store| store.placement_of_grid(grid)).await?;
        let placement = placement.ok_or_else(ConsoleError::not_found)?;
        self.require_covers(&placement)?;
        Ok(placement)
    }

    /// For pages of one building (a household's): the building's placement if it exists and
    /// the user's scopes cover it, else a 404 page.
    pub async fn require_building(&self, building: gridlink_shared::BuildingId) -> Result<Placement, ConsoleError> {
        let placement = self.console.blocking(move |store| store.placement_of_building(building)).await?;
        let placement = placement.ok_or_else(ConsoleError::not_found)?;
        self.require_covers(&placement)?;
        Ok(placement)
    }

    /// For lists: the grids and buildings the user's scopes cover, with a ready SQL
    /// condition ([`CoveredArea::sql_condition`]).
    pub async fn covered_area(&self) -> Result<CoveredArea, ConsoleError> {
        let scopes = self.scopes.clone();
        self.console.blocking(move |store| store.covered_area(&scopes)).await
    }

    /// The console's store, policy and helpers, for the page's own queries.
    pub fn console(&self) -> &Console {
        &self.console
    }
}

/// The signed-in user behind the request's session cookie, if any. `Err` only for a fault.
pub(crate) async fn authenticate(
    console: &Console,
    headers: &HeaderMap,
    lang: Lang,
) -> Result<Option<ConsoleUser>, ConsoleError> {
    let Some(token) = read_cookie(headers, SESSION_COOKIE).map(str::to_string) else {
        return Ok(None);
    };
    let policy = *console.policy();
    let record = console.blocking(move |store| store.session(&token, now_millis(), &policy)).await?;
    Ok(record.map(|r| ConsoleUser {
        id: r.user,
        name: r.name,
        role: r.role,
        scopes: r.scopes,
        scope_names: r.scope_names,
        lang,
        csrf: r.csrf,
        console: console.clone(),
    }))
}

impl FromRequestParts<AppState> for ConsoleUser {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // The guard has already looked the session up for a POST.
        if let Some(user) = parts.extensions.get::<ConsoleUser>() {
            return Ok(user.clone());
        }
        let lang = ConsoleLang::of(parts);
        match authenticate(&state.console, &parts.headers, lang).await? {
            Some(user) => {
                parts.extensions.insert(user.clone());
                Ok(user)
            }
            None => {
                // Back to this page after signing in, if it was a page (not a form post).
                let next = (parts.method == Method::GET)
                    .then(|| parts.uri.path_and_query().map(|p| p.as_str().to_string()))
                    .flatten();
                Err(ConsoleError::sign_in(next, read_cookie(&parts.headers, SESSION_COOKIE).is_some()))
            }
        }
    }
}

/// The language of this request's pages, for handlers without a signed-in user (the login
/// page). Chosen by the guard: `?lang=`, else the language cookie, else Chinese.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsoleLang(pub Lang);

impl ConsoleLang {
    fn of(parts: &Parts) -> Lang {
        parts.extensions.get::<Lang>().copied().unwrap_or_default()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ConsoleLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ConsoleLang(ConsoleLang::of(parts)))
    }
}

/// Appends a `Set-Cookie` header.
pub(crate) fn set(headers: &mut HeaderMap, value: HeaderValue) {
    headers.append(SET_COOKIE, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_from_every_cookie_header_and_written_strict() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; gridlink_console_lang=en"));
        headers.append(COOKIE, HeaderValue::from_static("gridlink_console=abc"));
        assert_eq!(read_cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(read_cookie(&headers, LANG_COOKIE), Some("en"));
        assert_eq!(read_cookie(&headers, LOGIN_COOKIE), None);
        let written = cookie(SESSION_COOKIE, "abc", None);
        assert_eq!(written, "gridlink_console=abc; Path=/console; HttpOnly; SameSite=Strict");
        assert!(clear_cookie(SESSION_COOKIE).to_str().unwrap().ends_with("Max-Age=0"));
    }
}
