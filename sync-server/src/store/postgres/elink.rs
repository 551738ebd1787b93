//! The residents' e-link on PostgreSQL: the buildings' links (`building link --database`) and
//! the help requests filed through them, on the tables of migration 4. The case document, the
//! checks and the outcomes are `store/elink.rs`'s, shared with SQLite; a request's case goes
//! through this backend's push executor (`PgPush`), exactly as a phone's change does: logged
//! in its scopes under the log counters' locks, audited, and pulled by the grid worker's phone
//! at its next sync.
//!
//! Several server processes file at once, so a filing transaction (READ COMMITTED) first
//! takes two transaction-scoped advisory locks, in this order, before it reads anything of
//! the e-link: the form's **nonce** (hashed into slots), then the building's **grid**. Under
//! the nonce lock the second of two posts of one form (a double tap that reached two
//! processes) finds the first one's committed row and answers its reference; under the grid
//! lock the per-building hourly count is exact across processes, and the grid's e-link
//! account and its device are created once. Both are taken before the push's own locks
//! (documents, then log counters; `push.rs`), and no other transaction takes them; a new
//! account bumps the roster's reference version (the `meta` row) after those, as an import
//! does, so the global lock order holds. The unique key on `elink_requests.nonce` is the last
//! guard.

use gridlink_shared::time::Millis;
use gridlink_shared::{BuildingId, CaseId, GridId, Role, Staff, UserId, elink};
use postgres::{Client, GenericClient, Transaction};

use super::push::PgPush;
use super::{PUSH_ATTEMPTS, PgStore, load_staff, roster};
use crate::elink::ElinkStore;
use crate::secrets;
use crate::store::elink::{
    BuildingLink, CAP_WINDOW_MS, ELINK_ACCOUNT_NAME, ELINK_TOKEN_PREFIX, FileOutcome, HelpRequest, LINKS_SQL,
    RequestStatus, account_scopes_json, building_link, demo_nonce, help_case_push, links_in_order, new_reference,
    refusal, replayed, status_of,
};
use crate::store::sqlite::parse_id;
use crate::store::{PushLimits, StoreError};
use gridlink_shared::demo::DemoElinkRequest;
use gridlink_shared::org::Placement;

/// First keys of the two advisory locks of a filing (the two-key form: class, slot); the
/// documents' locks use 0x6764.
const NONCE_LOCK_CLASS: i32 = 0x656e; // "en"
const GRID_LOCK_CLASS: i32 = 0x6567; // "eg"

/// Nonces and grids are hashed into this many lock keys; a collision only serializes two
/// filings that did not need it.
const LOCK_SLOTS: u32 = 4096;

fn lock_slot(key: &str) -> i32 {
    // FNV-1a: stable across processes and builds.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in key.bytes() {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    (hash % LOCK_SLOTS) as i32
}

impl PgStore {
    /// The building's link, created on first use; with `rotate`, a new token replaces the old
    /// (the old URL and QR code stop working at once, in every process). `NotFound` when there
    /// is no such building.
    pub fn elink_link(&self, building: BuildingId, rotate: bool, now: Millis) -> Result<BuildingLink, StoreError> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let building_name: String = tx
            .query_opt("SELECT name FROM buildings WHERE id = $1", &[&building.to_string()])?
            .ok_or_else(|| StoreError::NotFound(format!("building {building}")))?
            .get(0);
        // Stored as is, not hashed, as on SQLite: the URL is printed on a notice board.
        let fresh = secrets::new_actor_hex();
        let sql = if rotate {
            "INSERT INTO elink_links (building, token, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (building) DO UPDATE SET token = excluded.token, created_at = excluded.created_at"
        } else {
            // Two first calls at once agree on one token: the loser's insert does nothing.
            "INSERT INTO elink_links (building, token, created_at) VALUES ($1, $2, $3) ON CONFLICT (building) DO NOTHING"
        };
        tx.execute(sql, &[&building.to_string(), &fresh, &now])?;
        let token: String =
            tx.query_one("SELECT token FROM elink_links WHERE building = $1", &[&building.to_string()])?.get(0);
        tx.commit()?;
        Ok(BuildingLink { building, building_name, token })
    }

    /// Revokes the building's link, as [`crate::store::SqliteStore::elink_revoke`] does; every
    /// server process refuses its token from the commit on.
    pub fn elink_revoke(&self, building: BuildingId) -> Result<bool, StoreError> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        if tx.query_opt("SELECT 1 FROM buildings WHERE id = $1", &[&building.to_string()])?.is_none() {
            return Err(StoreError::NotFound(format!("building {building}")));
        }
        let removed = tx.execute("DELETE FROM elink_links WHERE building = $1", &[&building.to_string()])?;
        tx.commit()?;
        Ok(removed > 0)
    }

    /// Every building's link, by building name then id, as SQLite lists them.
    pub fn elink_links(&self) -> Result<Vec<BuildingLink>, StoreError> {
        let mut client = self.client()?;
        let rows = client.query(LINKS_SQL, &[])?;
        links_in_order(rows.iter().map(|r| building_link(r.get(0), r.get(1), r.get(2))))
    }

    /// The building a link token opens, with its name; `None` for an unknown token.
    pub fn elink_building(&self, token: &str) -> Result<Option<(BuildingId, String)>, StoreError> {
        let mut client = self.client()?;
        let row = client.query_opt(
            "SELECT b.id, b.name FROM elink_links l JOIN buildings b ON b.id = l.building WHERE l.token = $1",
            &[&token],
        )?;
        row.map(|r| Ok((parse_id(r.get::<_, &str>(0))?, r.get(1)))).transpose()
    }

    /// Files `request` as a help case in `building`, at `now`, as
    /// [`crate::store::SqliteStore::elink_file`] does: at most `per_building_hour` requests per
    /// building in the last hour, counted in the database across every server process, and
    /// one case per nonce however many processes the posts reach (see the module header).
    pub fn elink_file(
        &self,
        building: BuildingId,
        request: &HelpRequest,
        per_building_hour: u32,
        now: Millis,
    ) -> Result<FileOutcome, StoreError> {
        let mut client = self.client()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match file_once(&mut client, building, request, per_building_hour, now) {
                Err(StoreError::Retryable(message)) if attempt < PUSH_ATTEMPTS => {
                    tracing::warn!(%building, attempt, %message, "e-link filing aborted by PostgreSQL; retrying");
                }
                other => return other,
            }
        }
    }

    /// The status of the request with this reference number and phone number, in this
    /// building; `None` when any of them does not match (one answer for all three).
    pub fn elink_status(
        &self,
        building: BuildingId,
        reference: &str,
        phone: &str,
    ) -> Result<Option<RequestStatus>, StoreError> {
        let mut client = self.client()?;
        // One snapshot for the request row and its case.
        let mut tx = client.build_transaction().read_only(true).start()?;
        let row = tx.query_opt(
            "SELECT case_id, created_at FROM elink_requests WHERE reference = $1 AND phone = $2 AND building = $3",
            &[&reference, &phone, &building.to_string()],
        )?;
        let Some(row) = row else { return Ok(None) };
        let case_id: CaseId = parse_id(row.get::<_, &str>(0))?;
        let bytes: Option<Vec<u8>> =
            tx.query_opt("SELECT bytes FROM docs WHERE id = $1", &[&case_id.to_string()])?.map(|r| r.get(0));
        let status = status_of(reference, row.get(1), case_id, bytes)?;
        tx.commit()?;
        Ok(Some(status))
    }
}

impl ElinkStore for PgStore {
    fn building_for_token(&self, token: &str) -> Result<Option<(BuildingId, String)>, StoreError> {
        self.elink_building(token)
    }
    fn file_request(
        &self,
        building: BuildingId,
        request: &HelpRequest,
        per_building_hour: u32,
        now: Millis,
    ) -> Result<FileOutcome, StoreError> {
        self.elink_file(building, request, per_building_hour, now)
    }
    fn request_status(
        &self,
        building: BuildingId,
        reference: &str,
        phone: &str,
    ) -> Result<Option<RequestStatus>, StoreError> {
        self.elink_status(building, reference, phone)
    }
}

/// One filing transaction; `Retryable` when PostgreSQL aborted it (nothing was written).
fn file_once(
    client: &mut Client,
    building: BuildingId,
    request: &HelpRequest,
    per_building_hour: u32,
    now: Millis,
) -> Result<FileOutcome, StoreError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&NONCE_LOCK_CLASS, &lock_slot(&request.nonce)])?;
    let placement = building_placement(&mut tx, building)?;
    tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&GRID_LOCK_CLASS, &lock_slot(&placement.grid.to_string())])?;
    // READ COMMITTED: each statement from here sees every filing committed before the locks
    // were granted.
    let earlier = tx.query_opt("SELECT reference, phone FROM elink_requests WHERE nonce = $1", &[&request.nonce])?;
    if let Some(row) = earlier {
        return Ok(replayed(row.get(0), row.get::<_, &str>(1), request));
    }
    let recent: i64 = tx
        .query_one(
            "SELECT COUNT(*) FROM elink_requests WHERE building = $1 AND created_at > $2",
            &[&building.to_string(), &(now - CAP_WINDOW_MS)],
        )?
        .get(0);
    if recent >= i64::from(per_building_hour) {
        return Ok(FileOutcome::BuildingBusy);
    }
    let Some(worker) = super::facts::grid_workers(&mut tx, placement.grid)?.into_iter().next() else {
        return Ok(FileOutcome::NoGridWorker);
    };
    let (account, created) = elink_account(&mut tx, placement.grid, now)?;
    // The account's device: a token hash no token can have (`elink:` and random hex).
    let device = super::console_write::server_device(&mut tx, account.id, ELINK_TOKEN_PREFIX, ELINK_ACCOUNT_NAME, now)?;
    let (case_id, sync_request) = help_case_push(request, placement, &account, &worker, &device, now)?;
    let mut target = PgPush::new(&mut tx);
    target.lock_documents(std::iter::once(case_id.into()))?;
    let pushed = crate::store::push::execute(&mut target, &device, &sync_request, &PushLimits::default(), now)?;
    if created {
        // After the push's locks, as an import bumps it after its own: one order, no deadlock.
        roster::bump_reference_version(&mut tx)?;
    }
    if let Some(message) = refusal(&pushed) {
        // The refusal row is kept, as for a phone.
        tx.commit()?;
        return Ok(FileOutcome::Refused { message });
    }
    let reference = loop {
        let candidate = new_reference();
        let taken = tx.query_opt("SELECT 1 FROM elink_requests WHERE reference = $1", &[&candidate])?.is_some();
        if !taken {
            break candidate;
        }
    };
    tx.execute(
        "INSERT INTO elink_requests (reference, nonce, building, case_id, phone, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&reference, &request.nonce, &building.to_string(), &case_id.to_string(), &request.phone, &now],
    )?;
    tx.commit()?;
    Ok(FileOutcome::Filed { reference })
}

fn building_placement(client: &mut impl GenericClient, building: BuildingId) -> Result<Placement, StoreError> {
    let row = client
        .query_opt(
            "SELECT c.street, g.community, b.grid FROM buildings b JOIN grids g ON g.id = b.grid
             JOIN communities c ON c.id = g.community WHERE b.id = $1",
            &[&building.to_string()],
        )?
        .ok_or_else(|| StoreError::NotFound(format!("building {building}")))?;
    Ok(Placement {
        street: parse_id(row.get::<_, &str>(0))?,
        community: parse_id(row.get::<_, &str>(1))?,
        grid: parse_id(row.get::<_, &str>(2))?,
        building: Some(building),
    })
}

/// The grid's e-link account, created on first use, found as SQLite finds it (by name, role
/// and scopes), so a demo roster's or a migrated store's accounts are reused; and whether it
/// was created now (the caller then bumps the roster's reference version).
fn elink_account(tx: &mut Transaction<'_>, grid: GridId, now: Millis) -> Result<(Staff, bool), StoreError> {
    let found = tx.query_opt(
        "SELECT id FROM users WHERE name = $1 AND role = $2 AND scopes = $3 ORDER BY created_at, id LIMIT 1",
        &[&ELINK_ACCOUNT_NAME, &Role::Volunteer.code(), &account_scopes_json(grid)?],
    )?;
    let (id, created) = match found {
        Some(row) => (parse_id(row.get::<_, &str>(0))?, false),
        None => {
            let staff = elink::elink_account(UserId::new(), grid);
            roster::insert_staff(tx, &staff, now)?;
            (staff.id, true)
        }
    };
    let staff = load_staff(tx, id)?.ok_or_else(|| StoreError::Backend("the e-link account vanished".into()))?;
    Ok((staff, created))
}

/// Stores a demo's e-link requests beside their cases, as SQLite's `insert_demo_requests`
/// does: those whose case is among `cases`. Returns how many.
pub(super) fn insert_demo_requests(
    tx: &mut Transaction<'_>,
    requests: &[DemoElinkRequest],
    cases: &std::collections::BTreeSet<CaseId>,
) -> Result<usize, StoreError> {
    let insert = tx.prepare(
        "INSERT INTO elink_requests (reference, nonce, building, case_id, phone, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )?;
    let mut inserted = 0;
    for request in requests.iter().filter(|r| cases.contains(&r.case)) {
        tx.execute(
            &insert,
            &[
                &request.reference,
                &demo_nonce(&request.reference),
                &request.building.to_string(),
                &request.case.to_string(),
                &request.phone,
                &request.filed_at,
            ],
        )?;
        inserted += 1;
    }
    Ok(inserted)
}
