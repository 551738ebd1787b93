//! The residents' grid e-link (社区网格e通): per-building links and the help requests filed
//! through them, stored as ordinary cases.
//!
//! A building's link carries a random token (`elink_links`); `building link --rotate` replaces
//! it, and the old notice-board QR code stops working. A request becomes a help case
//! (`CaseKind::Help`) built on the server and pushed through `store::push::push`, the sync
//! endpoint's own function, exactly as the console's actions are (see `console_write.rs`):
//! same validator, same scope log (the grid worker's phone pulls it at its next sync), same
//! audit row. Its author is the grid's *e-link account*: a `users` row with the volunteer role
//! (the least a case author can be) scoped to that grid only, whose device has a token hash no
//! token can have (`elink:` and random hex), so nobody can sync as it.
//!
//! `elink_requests` maps the resident's short reference number and phone number to the case,
//! and the form's one-time nonce to the reference, so a double tap files one case.
//!
//! What both backends share lives here as plain functions: the outcome of a replayed nonce
//! (`replayed`), the help case and the sync request that pushes it (`help_case_push`), the
//! refusal among the acks (`refusal`), the resident's view of the case (`status_of`) and
//! the e-link account's identity. Each backend keeps only its SQL and its locking: SQLite here
//! (one `BEGIN IMMEDIATE` transaction excludes every other writer), PostgreSQL in
//! `postgres/elink.rs` (advisory locks, so several server processes file one case per nonce
//! and count one hourly cap).

use std::collections::{BTreeMap, BTreeSet};

use automerge::ActorId;
use gridlink_shared::codes::{CaseStatus, Role, ServiceCategory};
use gridlink_shared::demo::DemoElinkRequest;
use gridlink_shared::org::{Placement, Scope, Staff};
use gridlink_shared::protocol::{AckStatus, PROTOCOL_VERSION, PushChange, SyncRequest};
use gridlink_shared::time::Millis;
use gridlink_shared::{BuildingId, CaseFile, CaseId, CaseKind, GridId, UserId, doc, elink};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::console_read::grid_workers;
use super::push::{Pushed, doc_bytes, push};
use super::sqlite::{load_staff, parse_id};
use super::{AuthedDevice, PushLimits, SqliteStore, StoreError, roster};
use crate::secrets;

/// The name of each grid's e-link account and of its device, the reference number's format and
/// the case text: one definition in `gridlink_shared::elink`, which the demo data uses too.
pub use gridlink_shared::elink::{ELINK_ACCOUNT_NAME, REFERENCE_CHARS, normalize_reference};

/// Prefix of an e-link device's token hash: SHA-256 hashes are plain hex, so no token ever
/// matches one.
pub const ELINK_TOKEN_PREFIX: &str = "elink:";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS elink_links (
    building   TEXT PRIMARY KEY REFERENCES buildings(id),
    token      TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS elink_requests (
    reference  TEXT PRIMARY KEY,
    nonce      TEXT NOT NULL UNIQUE,
    building   TEXT NOT NULL,
    case_id    TEXT NOT NULL,
    phone      TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS elink_requests_by_building ON elink_requests(building, created_at);
";

/// A building's link as the notice board shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildingLink {
    pub building: BuildingId,
    pub building_name: String,
    /// The path segment after `/e/`: 32 random hex characters.
    pub token: String,
}

/// What a resident typed, checked by the web layer (lengths, characters, category).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelpRequest {
    pub category: ServiceCategory,
    pub description: String,
    pub room: String,
    pub name: String,
    /// Digits only.
    pub phone: String,
    /// The form's one-time nonce (32 hex characters).
    pub nonce: String,
}

/// The result of filing a request ([`SqliteStore::elink_file`], `PgStore::elink_file`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileOutcome {
    /// A new case; the resident's reference number.
    Filed { reference: String },
    /// The same form was sent before (a double tap or a resend): its reference, no new case.
    AlreadyFiled { reference: String },
    /// The nonce was used by a different request (other phone number): the form must be
    /// shown again with a fresh nonce.
    NonceSpent,
    /// The building's grid has no grid worker to be responsible.
    NoGridWorker,
    /// The building has taken its hourly share of requests.
    BuildingBusy,
    /// The push path refused the case (a bug or a roster change, never the resident's fault).
    Refused { message: String },
}

/// What a resident may see of their request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestStatus {
    pub reference: String,
    pub category: Option<ServiceCategory>,
    pub status: CaseStatus,
    pub filed_at: Millis,
    /// When the status last moved (the filing time if never).
    pub updated_at: Millis,
}

/// The window of the per-building cap on filed requests.
pub const CAP_WINDOW_MS: Millis = 3_600_000;

fn ensure_schema(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA)?;
    Ok(())
}

/// A fresh reference number.
pub fn new_reference() -> String {
    elink::random_reference(&mut rand::rng())
}

impl SqliteStore {
    /// The building's link, created on first use; with `rotate`, a new token replaces the old.
    /// `NotFound` when there is no such building.
    pub fn elink_link(&self, building: BuildingId, rotate: bool, now: Millis) -> Result<BuildingLink, StoreError> {
        self.with_conn(|conn| {
            ensure_schema(conn)?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let building_name: String = tx
                .query_row("SELECT name FROM buildings WHERE id = ?1", [building.to_string()], |r| r.get(0))
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("building {building}")))?;
            let existing: Option<String> = tx
                .query_row("SELECT token FROM elink_links WHERE building = ?1", [building.to_string()], |r| r.get(0))
                .optional()?;
            let token = match existing {
                Some(token) if !rotate => token,
                _ => {
                    // The token is stored as is, not hashed: it is printed on a notice board,
                    // and `building link` prints the same URL again. It only keeps strangers
                    // from enumerating buildings.
                    let token = secrets::new_actor_hex();
                    tx.execute(
                        "INSERT INTO elink_links (building, token, created_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT(building) DO UPDATE SET token = excluded.token, created_at = excluded.created_at",
                        params![building.to_string(), token, now],
                    )?;
                    token
                }
            };
            tx.commit()?;
            Ok(BuildingLink { building, building_name, token })
        })
    }

    /// Revokes the building's link: its URL and QR code answer "链接无效" from now on, and the
    /// next [`Self::elink_link`] makes a new one. False when it had none; `NotFound` when there
    /// is no such building. Requests filed through it stay cases, and their residents look
    /// them up through the building's next link (the lookup is per building).
    pub fn elink_revoke(&self, building: BuildingId) -> Result<bool, StoreError> {
        self.with_conn(|conn| {
            ensure_schema(conn)?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let exists: bool =
                tx.query_row("SELECT EXISTS(SELECT 1 FROM buildings WHERE id = ?1)", [building.to_string()], |r| {
                    r.get(0)
                })?;
            if !exists {
                return Err(StoreError::NotFound(format!("building {building}")));
            }
            let removed = tx.execute("DELETE FROM elink_links WHERE building = ?1", [building.to_string()])?;
            tx.commit()?;
            Ok(removed > 0)
        })
    }

    /// Every building's link, by building name then id.
    pub fn elink_links(&self) -> Result<Vec<BuildingLink>, StoreError> {
        self.with_conn(|conn| {
            ensure_schema(conn)?;
            let mut stmt = conn.prepare(LINKS_SQL)?;
            let rows: Vec<(String, String, String)> =
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
            links_in_order(rows.into_iter().map(|(id, name, token)| building_link(&id, name, token)))
        })
    }

    /// The building a link token opens, with its name; `None` for an unknown token.
    pub fn elink_building(&self, token: &str) -> Result<Option<(BuildingId, String)>, StoreError> {
        self.with_conn(|conn| {
            ensure_schema(conn)?;
            let row: Option<(String, String)> = conn
                .query_row(
                    "SELECT b.id, b.name FROM elink_links l JOIN buildings b ON b.id = l.building WHERE l.token = ?1",
                    [token],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            row.map(|(id, name)| Ok((parse_id(&id)?, name))).transpose()
        })
    }

    /// Files `request` as a help case in `building`, at `now`. At most `per_building_hour`
    /// requests per building in the last hour (counted in the database, so restarts and
    /// several server processes share the count).
    pub fn elink_file(
        &self,
        building: BuildingId,
        request: &HelpRequest,
        per_building_hour: u32,
        now: Millis,
    ) -> Result<FileOutcome, StoreError> {
        self.with_conn(|conn| {
            ensure_schema(conn)?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let earlier: Option<(String, String)> = tx
                .query_row("SELECT reference, phone FROM elink_requests WHERE nonce = ?1", [&request.nonce], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            if let Some((reference, phone)) = earlier {
                return Ok(replayed(reference, &phone, request));
            }
            let recent: u32 = tx.query_row(
                "SELECT COUNT(*) FROM elink_requests WHERE building = ?1 AND created_at > ?2",
                params![building.to_string(), now - CAP_WINDOW_MS],
                |r| r.get(0),
            )?;
            if recent >= per_building_hour {
                return Ok(FileOutcome::BuildingBusy);
            }
            let placement = building_placement(&tx, building)?;
            let Some(worker) = grid_workers(&tx, placement.grid)?.into_iter().next() else {
                return Ok(FileOutcome::NoGridWorker);
            };
            let account = elink_account(&tx, placement.grid, now)?;
            let device = elink_device(&tx, account.id, now)?;
            let (case_id, sync_request) = help_case_push(request, placement, &account, &worker, &device, now)?;
            let pushed = push(&tx, &device, &sync_request, &PushLimits::default(), now)?;
            if let Some(message) = refusal(&pushed) {
                // The refusal row is kept, as for a phone.
                tx.commit()?;
                return Ok(FileOutcome::Refused { message });
            }
            let reference = loop {
                let candidate = new_reference();
                let taken: bool = tx.query_row(
                    "SELECT EXISTS(SELECT 1 FROM elink_requests WHERE reference = ?1)",
                    [&candidate],
                    |r| r.get(0),
                )?;
                if !taken {
                    break candidate;
                }
            };
            tx.execute(
                "INSERT INTO elink_requests (reference, nonce, building, case_id, phone, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![reference, request.nonce, building.to_string(), case_id.to_string(), request.phone, now],
            )?;
            tx.commit()?;
            Ok(FileOutcome::Filed { reference })
        })
    }

    /// The status of the request with this reference number and phone number, in this
    /// building; `None` when any of them does not match (one answer for all three).
    pub fn elink_status(
        &self,
        building: BuildingId,
        reference: &str,
        phone: &str,
    ) -> Result<Option<RequestStatus>, StoreError> {
        self.with_conn(|conn| {
            ensure_schema(conn)?;
            let row: Option<(String, i64)> = conn
                .query_row(
                    "SELECT case_id, created_at FROM elink_requests WHERE reference = ?1 AND phone = ?2 AND building = ?3",
                    params![reference, phone, building.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((case_id, filed_at)) = row else { return Ok(None) };
            let case_id: CaseId = parse_id(&case_id)?;
            status_of(reference, filed_at, case_id, doc_bytes(conn, case_id.into())?).map(Some)
        })
    }
}

/// Every link with its building (the same text in both dialects).
pub(super) const LINKS_SQL: &str =
    "SELECT b.id, b.name, l.token FROM elink_links l JOIN buildings b ON b.id = l.building";

/// A listed link from its stored columns.
pub(super) fn building_link(id: &str, building_name: String, token: String) -> Result<BuildingLink, StoreError> {
    Ok(BuildingLink { building: parse_id(id)?, building_name, token })
}

/// The links by building name then id, in byte order whatever the database's collation.
pub(super) fn links_in_order(
    links: impl Iterator<Item = Result<BuildingLink, StoreError>>,
) -> Result<Vec<BuildingLink>, StoreError> {
    let mut links: Vec<BuildingLink> = links.collect::<Result<_, _>>()?;
    links.sort_by_cached_key(|l| (l.building_name.clone(), l.building.to_string()));
    Ok(links)
}

/// The answer to a form whose nonce filed `reference` (with `phone`) before: the same
/// receipt for the same phone (a double tap, a refresh), else the form again.
pub(super) fn replayed(reference: String, phone: &str, request: &HelpRequest) -> FileOutcome {
    if phone == request.phone { FileOutcome::AlreadyFiled { reference } } else { FileOutcome::NonceSpent }
}

/// The help case a request becomes, reported by the grid's e-link `account` with `worker`
/// responsible (首问负责), and the sync request that pushes it as the account's `device`, as a
/// phone would: the backend runs it through its push path.
pub(super) fn help_case_push(
    request: &HelpRequest,
    placement: Placement,
    account: &Staff,
    worker: &(UserId, String),
    device: &AuthedDevice,
    now: Millis,
) -> Result<(CaseId, SyncRequest), StoreError> {
    let actor = hex::decode(&device.actor).map_err(|e| StoreError::Backend(format!("e-link device actor: {e}")))?;
    let case_id = CaseId::new();
    let title = elink::case_title(request.category, &request.room);
    let description = elink::case_description(&request.description, &request.name, &request.room, &request.phone);
    let case = CaseFile::new(
        case_id,
        CaseKind::Help(request.category),
        placement,
        None,
        &title,
        &description,
        (account.id, &account.name),
        (worker.0, &worker.1),
        now,
    );
    let mut automerge_doc = doc::guarded("creating the help case", || doc::create(&case, ActorId::from(actor), now))
        .map_err(|e| StoreError::Backend(format!("building the e-link case: {e}")))?;
    let changes: Vec<PushChange> = automerge_doc
        .get_changes(&[])
        .into_iter()
        .map(|change| PushChange { doc: case_id.into(), bytes: change.raw_bytes().to_vec() })
        .collect();
    let sync_request = SyncRequest {
        protocol: PROTOCOL_VERSION,
        cursors: BTreeMap::new(),
        changes,
        page_bytes: None,
        repair: Vec::new(),
        reference_version: None,
        device_time: now,
        health: None,
        verify: Vec::new(),
        compact_acks: false,
    };
    Ok((case_id, sync_request))
}

/// The first change of the case the push path refused, as `code: message`.
pub(super) fn refusal(pushed: &Pushed) -> Option<String> {
    pushed.acks.iter().find_map(|ack| match &ack.status {
        AckStatus::Rejected { code, message } => Some(format!("{}: {message}", code.code())),
        _ => None,
    })
}

/// What the resident may see of the request filed at `filed_at` as case `case_id`, from the
/// case's stored `bytes`. A missing or unreadable case is a fault, never a half answer.
pub(super) fn status_of(
    reference: &str,
    filed_at: Millis,
    case_id: CaseId,
    bytes: Option<Vec<u8>>,
) -> Result<RequestStatus, StoreError> {
    let bytes = bytes.ok_or_else(|| StoreError::Backend(format!("e-link case {case_id} is missing")))?;
    let automerge_doc = doc::guarded("loading the e-link case", || doc::load(&bytes))
        .map_err(|e| StoreError::Backend(format!("e-link case {case_id} does not load: {e}")))?;
    let case: CaseFile = doc::guarded("reading the e-link case", || doc::read(&automerge_doc))
        .map_err(|e| StoreError::Backend(format!("e-link case {case_id} does not read: {e}")))?;
    let history = case.status_history();
    Ok(RequestStatus {
        reference: reference.to_string(),
        category: match case.kind {
            CaseKind::Help(category) => Some(category),
            _ => None,
        },
        status: case.status(),
        filed_at,
        updated_at: history.last().map(|(action, _)| action.at).unwrap_or(filed_at),
    })
}

/// The `scopes` column of a grid's e-link account, by which it is found on either backend.
pub(super) fn account_scopes_json(grid: GridId) -> Result<String, StoreError> {
    Ok(serde_json::to_string(&vec![Scope::Grid(grid)])?)
}

/// The nonce a demo request is stored with: `demo:` and the reference, which no form's nonce
/// (32 hex characters) can equal.
pub(super) fn demo_nonce(reference: &str) -> String {
    format!("demo:{reference}")
}

/// Stores a demo's e-link requests (`DemoData::elink_requests`) beside their cases, so the
/// status page answers each resident's reference number and phone; requests whose case is not
/// among `cases` (a dataset cut down after generation) are left out. The nonce is `demo:` and
/// the reference, which no form's nonce (32 hex characters) can equal.
pub(super) fn insert_demo_requests(
    conn: &Connection,
    requests: &[DemoElinkRequest],
    cases: &BTreeSet<CaseId>,
) -> Result<usize, StoreError> {
    ensure_schema(conn)?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO elink_requests (reference, nonce, building, case_id, phone, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut inserted = 0;
    for request in requests.iter().filter(|r| cases.contains(&r.case)) {
        insert.execute(params![
            request.reference,
            demo_nonce(&request.reference),
            request.building.to_string(),
            request.case.to_string(),
            request.phone,
            request.filed_at
        ])?;
        inserted += 1;
    }
    Ok(inserted)
}

fn building_placement(conn: &Connection, building: BuildingId) -> Result<Placement, StoreError> {
    let (street, community, grid): (String, String, String) = conn
        .query_row(
            "SELECT c.street, g.community, b.grid FROM buildings b JOIN grids g ON g.id = b.grid
             JOIN communities c ON c.id = g.community WHERE b.id = ?1",
            [building.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("building {building}")))?;
    Ok(Placement {
        street: parse_id(&street)?,
        community: parse_id(&community)?,
        grid: parse_id(&grid)?,
        building: Some(building),
    })
}

/// The grid's e-link account, created on first use: a volunteer (it may create cases and
/// nothing more) whose only scope is the grid. A demo roster brings these rows already
/// (`gridlink_shared::elink::elink_account`): the lookup finds them by name, role and scopes.
fn elink_account(conn: &Connection, grid: GridId, now: Millis) -> Result<Staff, StoreError> {
    let scopes = account_scopes_json(grid)?;
    let found: Option<String> = conn
        .query_row(
            "SELECT id FROM users WHERE name = ?1 AND role = ?2 AND scopes = ?3 ORDER BY created_at LIMIT 1",
            params![ELINK_ACCOUNT_NAME, Role::Volunteer.code(), scopes],
            |r| r.get(0),
        )
        .optional()?;
    let id = match found {
        Some(id) => parse_id(&id)?,
        None => {
            let staff = elink::elink_account(UserId::new(), grid);
            roster::insert_staff(conn, &staff, now)?;
            roster::bump_reference_version(conn)?;
            staff.id
        }
    };
    load_staff(conn, id)?.ok_or_else(|| StoreError::Backend("the e-link account vanished".into()))
}

/// The e-link account's device (the newest not revoked), created on first use.
fn elink_device(conn: &Connection, user: UserId, now: Millis) -> Result<AuthedDevice, StoreError> {
    super::console_write::server_device(conn, user, ELINK_TOKEN_PREFIX, ELINK_ACCOUNT_NAME, now)
}
