//! The supervisors' and admins' web console, served by `gridlink-server serve` under
//! `/console`: server-rendered HTML (maud templates, checked at compile time), no JavaScript and
//! nothing loaded from outside the server, so it works on an office intranet.
//!
//! This module owns the foundation every console page stands on:
//!
//! | module | owns |
//! |---|---|
//! | [`store`] | the console's tables (passwords, login throttle, sessions) behind [`ConsoleStore`], and the roster look-ups pages need for scope checks |
//! | [`password`] | the rules for a new password and Argon2id hashing |
//! | [`login`] | `GET/POST /console/login` (slow-down and lockout) and `POST /console/logout` |
//! | [`session`] | the [`ConsoleUser`] extractor, [`ConsoleUser::require_admin`], scope checks, cookies |
//! | [`guard`] | the middleware every console request passes: language, bounded form bodies, the CSRF check of every POST, security headers, HTML error pages |
//! | [`form`] | [`CsrfForm`], the extractor every POST handler takes, and [`form::post_form`], the form every POST page renders |
//! | [`layout`] | the page shell (top bar, nav, print), [`layout::Section`], the stylesheet |
//! | [`errors`] | [`ConsoleError`] and the error pages |
//! | [`cases`] | `/console/cases` (事件: the list with filters and pages), `/console/cases/{id}` (one case and its timeline) and the supervisor actions on it (close with satisfaction, reopen, reassign, comment) |
//! | [`households`] | `/console/households` (住户: search by address, head, phone or pinyin initials; filters) and `/console/households/{id}` (the file with masked ID numbers and its visits) |
//! | [`dashboard`] | `/console` (工作台: the figures of the user's area for a period, by group) and the drill-downs `/console/drill/{households,cases,visits}` |
//! | [`charts`] | the dashboard's inline SVG charts (drawn on the server, no script) |
//! | [`sync_health`] | `/console/sync` (同步: devices of the user's staff, most urgent first) |
//! | [`admin`] | `/console/admin/...` for admins: users, enrolment codes (with QR), devices, roster upload |
//! | [`audit`] | `/console/admin/audit`: accepted and refused changes, filtered and paged |
//! | [`exports`] | `/console/exports`: the four ledgers as XLSX/CSV within the user's scopes |
//! | [`upload`] | the multipart file uploads (their own body limit, the `csrf` part) |
//! | [`facts_cache`] | the in-memory cache of the supervisors' rows (keyed by scope set and facts generation) |
//!
//! Adding a page: a handler that takes [`ConsoleUser`] (or [`CsrfForm`] for a POST), checks
//! scopes with [`ConsoleUser::require_covers`] or [`ConsoleUser::covered_area`], returns
//! [`layout::page`], and one `.route(...)` line in [`router`]. `docs/security.md` describes the
//! login, sessions and CSRF for reviewers.

pub mod admin;
pub mod audit;
pub mod cases;
pub mod charts;
pub mod dashboard;
pub mod errors;
pub mod exports;
pub mod facts_cache;
pub mod form;
pub mod guard;
pub mod households;
pub mod layout;
pub mod login;
pub mod password;
pub mod service_hours;
pub mod session;
pub mod store;
pub mod sync_health;
pub mod upload;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get, post};
use tokio::sync::Semaphore;

use crate::api::AppState;
use crate::store::StoreError;

pub use errors::ConsoleError;
pub use form::{CsrfForm, NoFields};
pub use session::{ConsoleLang, ConsoleUser};
pub use store::{ConsoleStore, CoveredArea, ScopeName};

/// Where the console lives. Everything under it answers in HTML, never the sync API's JSON.
pub const PREFIX: &str = "/console";

/// Whether `path` belongs to the console (`/console` or `/console/...`).
pub fn owns(path: &str) -> bool {
    path.strip_prefix(PREFIX).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The console's routes, behind its [`guard`]. Merged into the API router by `api::router`.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/console", get(dashboard::page))
        .route("/console/drill/households", get(dashboard::drill_households))
        .route("/console/drill/cases", get(dashboard::drill_cases))
        .route("/console/drill/visits", get(dashboard::drill_visits))
        .route("/console/login", get(login::form).post(login::submit))
        .route("/console/logout", post(login::logout))
        .route(layout::CSS_PATH, get(layout::stylesheet))
        .route("/console/cases", get(cases::list))
        .route("/console/cases/{id}", get(cases::page))
        .route("/console/cases/{id}/close", post(cases::close))
        .route("/console/cases/{id}/reopen", post(cases::reopen))
        .route("/console/cases/{id}/reassign", post(cases::reassign))
        .route("/console/cases/{id}/comment", post(cases::comment))
        .route("/console/households", get(households::list))
        .route("/console/households/{id}", get(households::page))
        .route("/console/sync", get(sync_health::page))
        .route(admin::PATH, get(admin::index))
        .route(admin::USERS_PATH, get(admin::users).post(admin::add_user))
        .route("/console/admin/users/{id}", get(admin::user_page))
        .route("/console/admin/users/{id}/scopes", post(admin::set_scopes))
        .route("/console/admin/users/{id}/code", post(admin::issue_code))
        .route(admin::DEVICES_PATH, get(admin::devices))
        .route(admin::REVOKE_PATH, post(admin::revoke))
        .route(admin::ROSTER_PATH, get(admin::roster).post(admin::import))
        .route(audit::PATH, get(audit::page))
        .route(exports::PATH, get(exports::page))
        .route(exports::DOWNLOAD_PATH, get(exports::download))
        .layer(middleware::from_fn_with_state(state, guard::guard))
}

/// The routes of a server whose store cannot serve the console: every console path answers
/// 503 with a page saying so, in the user's language.
pub fn unavailable_router() -> Router<AppState> {
    Router::new().route(PREFIX, any(unavailable)).route("/console/{*rest}", any(unavailable))
}

/// 503: this server does not serve the web console.
pub async fn unavailable() -> ConsoleError {
    ConsoleError::unavailable()
}

/// For `api.rs`: answers console requests that failed outside the console's own router
/// (unknown paths, the request timeout, the server-wide body limit) with HTML error pages
/// and the console's security headers instead of the sync API's JSON envelope.
pub async fn html_errors(request: Request, next: Next) -> Response {
    let lang = guard::lang_of(&request);
    let response = next.run(request).await;
    guard::finish(response, lang, None)
}

/// Timings and bounds of the console's login and sessions. The defaults are the documented
/// policy (`docs/security.md`); tests shorten them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsolePolicy {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after sign-in, however busy.
    pub lifetime: Duration,
    /// Wrong passwords in a row before each further attempt must wait.
    pub slow_after: u32,
    /// The wait after the `slow_after`-th wrong password; it doubles with each further one.
    pub first_delay: Duration,
    /// The longest wait between attempts before the lock.
    pub max_delay: Duration,
    /// Wrong passwords in a row that lock the login.
    pub lock_after: u32,
    /// How long a lock lasts. After it, one more wrong password locks again.
    pub lock_for: Duration,
    /// Largest form body a console POST may send (login, logout and every later form). The
    /// longest honest form is a case note of 2,000 Chinese characters: 6,000 bytes of UTF-8,
    /// 18,000 once percent-encoded.
    pub form_bytes: usize,
    /// Argon2 verifications running at once, server-wide. Each costs tens of milliseconds of
    /// CPU and ~19 MiB, so a flood of attempts queues here instead of starving the sync API.
    pub concurrent_hashes: usize,
}

impl Default for ConsolePolicy {
    fn default() -> Self {
        ConsolePolicy {
            idle: Duration::from_secs(8 * 3600),
            lifetime: Duration::from_secs(7 * 24 * 3600),
            slow_after: 3,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            lock_after: 10,
            lock_for: Duration::from_secs(15 * 60),
            form_bytes: 24 * 1024,
            concurrent_hashes: 2,
        }
    }
}

/// What console handlers share: the store, the policy and the gate on password hashing.
/// Lives in [`AppState::console`].
#[derive(Clone)]
pub struct Console {
    /// `None` on a server that serves the phones' API only: every page
    /// answers 503 (see [`unavailable`]).
    store: Option<Arc<dyn ConsoleStore>>,
    policy: ConsolePolicy,
    hashing: Arc<Semaphore>,
    /// The supervisors' rows of the last few scope sets (see [`facts_cache`]).
    facts: Arc<facts_cache::FactsCache>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl Console {
    pub fn new(store: Arc<dyn ConsoleStore>) -> Self {
        let policy = ConsolePolicy::default();
        Console {
            store: Some(store),
            hashing: Arc::new(Semaphore::new(policy.concurrent_hashes.max(1))),
            policy,
            facts: Arc::default(),
        }
    }

    /// The console of a server that serves the phones' API only (`AppState::sync_only`).
    pub fn unavailable() -> Self {
        let policy = ConsolePolicy::default();
        Console {
            store: None,
            hashing: Arc::new(Semaphore::new(policy.concurrent_hashes.max(1))),
            policy,
            facts: Arc::default(),
        }
    }

    /// Whether the store serves the console; if not, `/console` answers [`unavailable`].
    pub fn is_available(&self) -> bool {
        self.store.is_some()
    }

    /// The same console under another policy (tests shorten the delays and lifetimes).
    pub fn with_policy(mut self, policy: ConsolePolicy) -> Self {
        self.hashing = Arc::new(Semaphore::new(policy.concurrent_hashes.max(1)));
        self.policy = policy;
        self
    }

    pub fn policy(&self) -> &ConsolePolicy {
        &self.policy
    }

    /// The cache of the supervisors' rows, shared by every clone of this console.
    pub fn facts_cache(&self) -> Arc<facts_cache::FactsCache> {
        self.facts.clone()
    }

    /// Runs a store call on a blocking thread (the store holds the one SQLite connection).
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn ConsoleStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ConsoleError> {
        let Some(store) = self.store.clone() else {
            return Err(ConsoleError::unavailable());
        };
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|error| ConsoleError::internal(format!("console store task failed: {error}")))?
            .map_err(ConsoleError::from)
    }

    /// Checks `password` against a stored hash (or, with none, against a dummy hash so that
    /// an unknown login costs the same time), on a blocking thread, at most
    /// `concurrent_hashes` at once. Never holds the database.
    async fn verify_password(&self, password: String, hash: Option<String>) -> Result<bool, ConsoleError> {
        let _permit = self
            .hashing
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ConsoleError::internal("password hashing gate closed"))?;
        tokio::task::spawn_blocking(move || match hash {
            Some(hash) => password::verify(&password, &hash),
            None => {
                password::verify_dummy(&password);
                false
            }
        })
        .await
        .map_err(|error| ConsoleError::internal(format!("password check failed: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_owns_its_prefix_and_nothing_that_merely_starts_like_it() {
        assert!(owns("/console"));
        assert!(owns("/console/"));
        assert!(owns("/console/cases/123"));
        assert!(!owns("/consoles"));
        assert!(!owns("/v1/sync"));
        assert!(!owns("/"));
    }
}
