//! # gridlink-client
//!
//! The client core of Gridlink (网格通), shared by the Dioxus UI and the `gridlink` CLI. It has
//! no UI dependency. It owns:
//!
//! * the **encrypted local store** ([`store`]): one SQLCipher file per data directory holding
//!   every document's automerge bytes, an outbox of unsent changes, sync cursors, changes the
//!   server refused, and query tables materialized from the documents in the same transaction;
//! * **offline writes** ([`Client::record_visit`], [`Client::open_case`], ...): load the
//!   document, change the typed value, run the shared validator, commit an automerge change
//!   signed with this device's actor, store document + outbox + query rows atomically;
//! * the **sync engine** ([`sync`]): one `POST /v1/sync` per round, CBOR over gzip, with
//!   retries, page checks and one SQLite transaction per response;
//! * **view-models** ([`views`]) the screens read;
//! * the **supervisor's figures** ([`figures`]): the console's figures over the documents held
//!   locally, from a per-document fact cache;
//! * the **review queue** of concurrent edits ([`conflicts`]): household fields two offline
//!   edits left with several values, and a worker's or supervisor's pick;
//! * a **quarantine** for documents automerge fails or panics on: every call handing pulled
//!   or stored bytes to automerge is guarded, so damaged data sets one document aside
//!   (offending bytes kept, previous state kept, repair asked from the server) instead of
//!   crashing the app or stopping sync ([`Client::quarantined`], [`Error::Quarantined`]).
//!
//! Data flows one way: UI/CLI -> [`Client`] -> store (SQLite) <-> sync engine <-> server.
//! Methods that depend on time take `now: Millis`; nothing in here reads the clock except the
//! sync engine's HTTP edge (for `device_time`) and backoff sleeps.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gridlink_client::Error> {
//! use gridlink_client::Client;
//! let client = Client::open("/data/gridlink")?;
//! client.enroll("https://grid.example.cn", "ABCD-1234", "王芳的手机").await?;
//! let report = client.sync().await?;
//! println!("pulled {} changes", report.pulled_changes);
//! # Ok(()) }
//! ```

pub mod activities;
pub mod conflicts;
mod error;
pub mod figures;
pub mod fixtures;
pub mod keys;
mod party;
mod quarantine;
mod reads;
pub use gridlink_shared::search;
pub mod store;
pub mod sync;
pub mod views;
mod writes;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::NaiveDate;
use gridlink_shared::policy::PolicyConfig;
use gridlink_shared::time::Millis;
use gridlink_shared::{
    ActionKind, AnyDoc, BuildingId, CaseId, CaseKind, HelpNeed, HouseholdId, HouseholdStatus, MustVisitTag, Principal,
    ResidentFlag, ResidentId, Roster, Sex, UserId, VisitOutcome,
};
use serde::{Deserialize, Serialize};

pub use activities::{ActivityChoices, ActivityFilter, ActivityRow, GridChoice, NewActivity};
pub use conflicts::{ConflictValueView, FieldConflict, HouseholdWithConflicts};
pub use error::{Error, Result};
pub use views::*;

/// A handle on one data directory. Cheap to clone; every clone shares one SQLite connection
/// behind a mutex, so read and write methods are synchronous (milliseconds, no network) and
/// may be called from UI event handlers, while [`Client::sync`] runs on a background task.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    /// The database key, kept in memory while the store is open: a PIN set later wraps it,
    /// and enrolment wraps it under the server's recovery secret.
    key: [u8; 32],
    db: Mutex<rusqlite::Connection>,
    http: Http,
    /// One sync at a time per data directory.
    sync_gate: tokio::sync::Mutex<()>,
    policy: PolicyConfig,
    retry: Mutex<sync::RetryPolicy>,
    limits: Mutex<sync::BatchLimits>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("dir", &self.inner.dir).finish_non_exhaustive()
    }
}

/// The HTTP client of a [`Client`]: replaced when enrolment brings a CA to trust.
pub(crate) struct Http {
    client: std::sync::RwLock<reqwest::Client>,
}

impl Http {
    fn new(client: reqwest::Client) -> Http {
        Http { client: std::sync::RwLock::new(client) }
    }

    pub(crate) fn get(&self) -> reqwest::Client {
        self.client.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set(&self, client: reqwest::Client) {
        *self.client.write().unwrap_or_else(|p| p.into_inner()) = client;
    }

    pub(crate) fn post(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.get().post(url)
    }
}

/// The HTTP client: rustls with the built-in web roots (webpki-roots, the same Mozilla set on
/// every platform, phones included), or, when `ca_pem` is given, that CA only.
pub(crate) fn build_http(ca_pem: Option<&str>) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(60))
        .gzip(true);
    if let Some(pem) = ca_pem {
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(Error::Tls("the CA file holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
        }
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| Error::Tls(format!("the CA file is not a readable PEM certificate: {e}")))?;
        builder = builder.tls_built_in_root_certs(false);
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| Error::Tls(format!("cannot set up the HTTPS client: {e}")))
}

/// A visit to record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewVisit {
    pub household: HouseholdId,
    pub outcome: VisitOutcome,
    pub notes: String,
    pub needs_found: Vec<HelpNeed>,
    pub follow_up: Option<NaiveDate>,
    pub residents_present: Vec<ResidentId>,
    /// When the visit happened (may be earlier than now).
    pub at: Millis,
}

/// A household to file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewHousehold {
    pub building: BuildingId,
    pub unit: String,
    pub room: String,
    pub head: String,
    pub phone: String,
    pub notes: String,
}

/// Changes to a household file's own fields; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HouseholdEdit {
    pub head: Option<String>,
    pub phone: Option<String>,
    pub notes: Option<String>,
    /// Setting [`HouseholdStatus::MovedOut`] records `moved_out_on` (today if not given);
    /// setting `Active` clears it.
    pub status: Option<HouseholdStatus>,
    pub moved_out_on: Option<NaiveDate>,
}

/// A resident's fields, for adding or editing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResidentInput {
    pub name: String,
    pub sex: Sex,
    pub birth_year: u16,
    pub relation: String,
    pub phone: String,
    /// The full ID number. On edit, `None` keeps the stored one (the UI only ever sees it
    /// masked).
    pub id_number: Option<String>,
    pub flags: Vec<ResidentFlag>,
}

/// A case to open.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewCase {
    pub kind: CaseKind,
    /// The household it concerns; its building and grid place the case.
    pub household: Option<HouseholdId>,
    /// The building it concerns, when there is no household.
    pub building: Option<BuildingId>,
    pub title: String,
    pub note: String,
    /// When it happened or was raised.
    pub at: Millis,
}

/// An action on a case timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseAction {
    pub case: CaseId,
    pub action: ActionKind,
    pub note: String,
    /// 1..=5, only with [`ActionKind::Close`].
    pub satisfaction: Option<u8>,
    /// New responsible person, only with [`ActionKind::Reassign`].
    pub to: Option<UserId>,
}

impl Client {
    /// Opens (or creates) the store in `dir`. The database key comes from `GRIDLINK_DB_KEY`
    /// (64 hex characters) if set, else from `dir/db.key` (created with mode 0600). A store
    /// locked with a PIN is [`Error::PinRequired`] (open it with [`Client::open_with_pin`]).
    /// A wrong key or a corrupt file is an error, never a silent reset.
    pub fn open(dir: impl AsRef<Path>) -> Result<Client> {
        let key = keys::resolve_key(dir.as_ref())?;
        Self::open_with_key(dir, &key)
    }

    /// Opens a store locked with a PIN, under the wrong-PIN rule of [`keys::unlock_with_pin`]
    /// (growing delay, the key destroyed after [`keys::MAX_PIN_FAILURES`] wrong PINs).
    /// `GRIDLINK_DB_KEY`, when set, opens it without the PIN (scripts).
    pub fn open_with_pin(dir: impl AsRef<Path>, pin: &str, now: Millis) -> Result<Client> {
        let key = match std::env::var(store::KEY_ENV) {
            Ok(_) => keys::resolve_key(dir.as_ref())?,
            Err(_) => keys::unlock_with_pin(dir.as_ref(), pin, now)?,
        };
        Self::open_with_key(dir, &key)
    }

    /// Opens a store with the administrator's recovery key for this device (64 hex, printed
    /// by `gridlink-server device recovery-key`), e.g. after the PIN key was destroyed.
    pub fn open_with_recovery(dir: impl AsRef<Path>, recovery_key: &str) -> Result<Client> {
        let key = keys::unlock_with_recovery(dir.as_ref(), recovery_key)?;
        Self::open_with_key(dir, &key)
    }

    /// Opens the store with an explicit 32-byte key. This is the seam for phones: there the
    /// platform keystore (Android Keystore, iOS Keychain) holds the key and hands it over
    /// after the user authenticates (see docs/mobile.md).
    pub fn open_with_key(dir: impl AsRef<Path>, key: &[u8; 32]) -> Result<Client> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| Error::file("cannot create", &dir, e))?;
        let conn = store::open_encrypted(&dir.join(store::DB_FILE), key)?;
        let ca = store::meta_get(&conn, store::SERVER_CA)?;
        let http = Http::new(build_http(ca.as_deref())?);
        Ok(Client {
            inner: Arc::new(Inner {
                dir,
                key: *key,
                db: Mutex::new(conn),
                http,
                sync_gate: tokio::sync::Mutex::new(()),
                policy: PolicyConfig::default(),
                retry: Mutex::new(sync::RetryPolicy::default()),
                limits: Mutex::new(sync::BatchLimits::default()),
            }),
        })
    }

    /// Opens a store and fills it with documents as if they had been synced: no server, no
    /// outbox. For UI component tests, demos and fixtures; see [`fixtures`].
    pub fn open_with_documents(
        dir: impl AsRef<Path>,
        principal: Principal,
        roster: Roster,
        docs: Vec<AnyDoc>,
    ) -> Result<Client> {
        let client = Client::open(dir)?;
        client.with_tx(|tx| store::install_documents(tx, &principal, &roster, &docs))?;
        Ok(client)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The policy settings used for due dates and deadlines.
    pub fn policy(&self) -> &PolicyConfig {
        &self.inner.policy
    }

    /// How [`Client::sync`] retries transient failures.
    pub fn retry_policy(&self) -> sync::RetryPolicy {
        *self.inner.retry.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_retry_policy(&self, policy: sync::RetryPolicy) {
        *self.inner.retry.lock().unwrap_or_else(|p| p.into_inner()) = policy;
    }

    /// How many changes one sync round pushes at most.
    pub fn batch_limits(&self) -> sync::BatchLimits {
        *self.inner.limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_batch_limits(&self, limits: sync::BatchLimits) {
        *self.inner.limits.lock().unwrap_or_else(|p| p.into_inner()) = limits;
    }

    pub(crate) fn db(&self) -> MutexGuard<'_, rusqlite::Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back),
        // so a poisoned mutex is safe to keep using.
        self.inner.db.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` in one SQLite transaction, committing only if it succeeds.
    pub(crate) fn with_tx<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.db();
        let tx = conn.transaction()?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    // ----- enrolment, sync, session -------------------------------------------------------

    /// Enrols this device with a one-time code from the administrator, trusting the
    /// server's certificate through the CA remembered at an earlier enrolment, or the built-in
    /// web roots.
    pub async fn enroll(&self, server_url: &str, code: &str, device_name: &str) -> Result<Identity> {
        self.enroll_with_ca(server_url, code, device_name, None).await
    }

    /// [`Client::enroll`] trusting only the CA certificate(s) in `ca_pem` (PEM) for this
    /// server: the enrolment request already goes out under it, and the CA is remembered in
    /// the store, so from then on a certificate from any other CA is refused before a request
    /// is sent ([`Error::Tls`]).
    pub async fn enroll_with_ca(
        &self,
        server_url: &str,
        code: &str,
        device_name: &str,
        ca_pem: Option<&str>,
    ) -> Result<Identity> {
        sync::enroll(self, server_url, code, device_name, ca_pem).await?;
        self.identity()
    }

    /// The CA certificate (PEM) this device trusts for its server, if one was given at
    /// enrolment.
    pub fn server_ca(&self) -> Result<Option<String>> {
        store::meta_get(&self.db(), store::SERVER_CA)
    }

    /// Pushes unsent changes and pulls everything new, round after round until the server
    /// has nothing more. Retries transient errors with backoff.
    pub async fn sync(&self) -> Result<SyncReport> {
        sync::sync(self).await
    }

    /// Sync state for the status bar.
    pub fn status(&self) -> Result<SyncStatus> {
        reads::status(self)
    }

    /// The identity card (亮身份) of the enrolled user.
    pub fn identity(&self) -> Result<Identity> {
        reads::identity(self)
    }

    /// Sets the app-lock PIN (4 to 12 digits): the database key is wrapped under a key
    /// derived from it (Argon2id) into `db.key.pin` and the plain `db.key` is deleted, so the
    /// data directory no longer opens without the PIN (see [`keys`]).
    pub fn set_pin(&self, pin: &str) -> Result<()> {
        writes::set_pin(self, pin)
    }

    /// Checks the app-lock PIN against the wrapped key, under the wrong-PIN rule: `Ok(())`
    /// for the right PIN (or when no PIN is set), else [`Error::WrongPin`],
    /// [`Error::PinWait`] or, the tenth time in a row, [`Error::PinLockedOut`].
    pub fn verify_pin(&self, pin: &str, now: Millis) -> Result<()> {
        writes::verify_pin(self, pin, now)
    }

    /// Whether an app-lock PIN is set. An unreadable PIN file is an error: callers lock.
    pub fn has_pin(&self) -> Result<bool> {
        writes::has_pin(self)
    }

    /// Erases this device's store: key files first (the database is unreadable without
    /// them), then the database with its WAL files. The handle is left on an empty in-memory
    /// database, so nothing is written back to the directory. Used when the server says the
    /// device was wiped ([`Error::Wiped`]).
    pub fn erase(&self) -> Result<Vec<PathBuf>> {
        let mut conn = self.db();
        let empty = rusqlite::Connection::open_in_memory()?;
        // Closes the real database (and checkpoints nothing more into the directory).
        drop(std::mem::replace(&mut *conn, empty));
        keys::erase(&self.inner.dir)
    }

    /// Forgets the server session and deletes the local store. Refuses while changes are
    /// unsent or rejected changes are kept aside, unless `force` (which loses them).
    pub fn logout(&self, force: bool) -> Result<()> {
        writes::logout(self, force)
    }

    // ----- reads -----------------------------------------------------------------------------

    pub fn today(&self, now: Millis) -> Result<TodayView> {
        reads::today(self, now)
    }

    /// Households held locally, sorted by building, unit and room: every row the filter
    /// matches (exports, the CLI). Screens read [`Client::households_page`].
    pub fn households(&self, filter: &HouseholdFilter, now: Millis) -> Result<Vec<HouseholdRow>> {
        reads::households(self, filter, now)
    }

    /// One page of [`Client::households`], with the number of households the filter matches.
    /// Filtering, ordering and paging run in SQL, so a page costs about the same with 250
    /// households or 25,000.
    pub fn households_page(&self, filter: &HouseholdFilter, page: Page, now: Millis) -> Result<Paged<HouseholdRow>> {
        reads::households_page(self, filter, page, now)
    }

    pub fn household(&self, id: HouseholdId, now: Millis) -> Result<HouseholdDetail> {
        reads::household(self, id, now)
    }

    pub fn buildings(&self) -> Result<Vec<BuildingRow>> {
        reads::buildings(self)
    }

    /// Cases the filter matches, by completion deadline: every row (exports, the CLI).
    /// Screens read [`Client::cases_page`].
    pub fn cases(&self, filter: CaseFilter, now: Millis) -> Result<Vec<CaseRow>> {
        reads::cases(self, filter, now)
    }

    /// One page of [`Client::cases`], with the number of cases the filter matches.
    pub fn cases_page(&self, filter: CaseFilter, page: Page, now: Millis) -> Result<Paged<CaseRow>> {
        reads::cases_page(self, filter, page, now)
    }

    pub fn case(&self, id: CaseId, now: Millis) -> Result<CaseDetail> {
        reads::case(self, id, now)
    }

    /// The service-outlet directory, grouped by the 8 categories.
    pub fn services(&self) -> Result<Vec<OutletGroup>> {
        reads::services(self)
    }

    /// Changes the server refused, newest first.
    pub fn rejected_changes(&self) -> Result<Vec<RejectedChange>> {
        reads::rejected_changes(self)
    }

    /// Every change not on the server (unsent, then refused), with its bytes: what
    /// `gridlink recover` exports for the administrator.
    pub fn changes_not_on_server(&self) -> Result<Vec<RecoveredChange>> {
        reads::changes_not_on_server(self)
    }

    /// Removes one refused change from the kept-aside list, after the user has read it (and
    /// re-entered what still matters). Returns whether it was there. The only way a refused
    /// change ever leaves the device.
    pub fn dismiss_rejected(&self, hash: &str) -> Result<bool> {
        Ok(self.db().execute("DELETE FROM rejected WHERE hash = ?1", [hash])? > 0)
    }

    /// Documents set aside because their data is damaged, with the offending bytes and the
    /// reason; resolved entries (repaired, or gone with their scope) are kept too.
    pub fn quarantined(&self) -> Result<Vec<QuarantinedDoc>> {
        quarantine::entries(&self.db())
    }

    /// Staff on the roster, sorted by name.
    pub fn staff(&self) -> Result<Vec<gridlink_shared::Staff>> {
        reads::staff(self)
    }

    /// The staff a case may be reassigned to (grid workers, supervisors, admins), by name.
    pub fn case_handlers(&self) -> Result<Vec<gridlink_shared::Staff>> {
        reads::case_handlers(self)
    }

    /// Everything held locally as deterministic JSON: households with visits and cases with
    /// timelines, sorted by id. Two converged clients produce identical exports.
    pub fn export(&self) -> Result<serde_json::Value> {
        reads::export(self)
    }

    // ----- writes (offline, instant) ----------------------------------------------------------

    pub fn record_visit(&self, visit: NewVisit, now: Millis) -> Result<gridlink_shared::VisitId> {
        writes::record_visit(self, visit, now)
    }

    pub fn add_household(&self, household: NewHousehold, now: Millis) -> Result<HouseholdId> {
        writes::add_household(self, household, now)
    }

    pub fn edit_household(&self, id: HouseholdId, edit: HouseholdEdit, now: Millis) -> Result<()> {
        writes::edit_household(self, id, edit, now)
    }

    pub fn add_resident(&self, household: HouseholdId, resident: ResidentInput, now: Millis) -> Result<ResidentId> {
        writes::add_resident(self, household, resident, now)
    }

    pub fn edit_resident(
        &self,
        household: HouseholdId,
        resident: ResidentId,
        input: ResidentInput,
        now: Millis,
    ) -> Result<()> {
        writes::edit_resident(self, household, resident, input, now)
    }

    /// Adds (`on = true`) or removes a must-visit tag. `since` defaults to today.
    pub fn set_tag(
        &self,
        household: HouseholdId,
        tag: MustVisitTag,
        on: bool,
        since: Option<NaiveDate>,
        now: Millis,
    ) -> Result<()> {
        writes::set_tag(self, household, tag, on, since, now)
    }

    /// Adds (`on = true`) or removes a help need.
    pub fn set_need(&self, household: HouseholdId, need: HelpNeed, on: bool, note: &str, now: Millis) -> Result<()> {
        writes::set_need(self, household, need, on, note, now)
    }

    pub fn open_case(&self, case: NewCase, now: Millis) -> Result<CaseId> {
        writes::open_case(self, case, now)
    }

    pub fn act_on_case(&self, action: CaseAction, now: Millis) -> Result<()> {
        writes::act_on_case(self, action, now)
    }
}
