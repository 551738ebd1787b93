//! The push half of a sync: each pushed change, in request order, is parsed, checked against
//! the device's actor, de-duplicated by hash, applied to the server's copy of its document,
//! validated with the shared validator, and stored with its scope-log entries. A rejected
//! change does not stop the batch.

use std::collections::{BTreeSet, HashMap};

use automerge::AutoCommit;
use gridlink_shared::protocol::{Ack, AckStatus, SyncRequest};
use gridlink_shared::time::Millis;
use gridlink_shared::validate::check_edit;
use gridlink_shared::{AnyDoc, DocId, RejectCode, Scope, ValidationError, doc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{AuthedDevice, StoreError};

/// What the push half hands to the pull half.
#[derive(Debug, Default)]
pub(super) struct Pushed {
    pub acks: Vec<Ack>,
    /// Documents that had a change rejected, for the repair list.
    pub rejected_docs: BTreeSet<DocId>,
}

/// Appends to per-scope logs, remembering each scope's head within one transaction.
#[derive(Debug, Default)]
pub(super) struct LogAppender {
    heads: HashMap<Scope, u64>,
    pub appended: usize,
}

impl LogAppender {
    /// Appends one entry and returns its sequence number (gapless, from 1).
    pub fn append(&mut self, conn: &Connection, scope: Scope, hash: &str, doc_id: DocId) -> Result<u64, StoreError> {
        let seq = match self.heads.get(&scope) {
            Some(head) => head + 1,
            None => scope_head(conn, scope)? + 1,
        };
        conn.prepare_cached("INSERT INTO scope_log (scope, seq, change_hash, doc_id) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![scope.to_string(), seq, hash, doc_id.to_string()])?;
        self.heads.insert(scope, seq);
        self.appended += 1;
        Ok(seq)
    }
}

/// The last sequence number of a scope's log (0 when empty).
pub(super) fn scope_head(conn: &Connection, scope: Scope) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM scope_log WHERE scope = ?1")?
        .query_row([scope.to_string()], |r| r.get(0))?)
}

pub(super) fn insert_change(
    conn: &Connection,
    hash: &str,
    doc_id: DocId,
    bytes: &[u8],
    actor: &str,
    now: Millis,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO changes (hash, doc_id, bytes, actor, accepted_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![hash, doc_id.to_string(), bytes, actor, now])?;
    Ok(())
}

/// Writes a document's saved bytes, its scopes and its query-table row.
pub(super) fn write_doc(conn: &Connection, any: &AnyDoc, bytes: &[u8], now: Millis) -> Result<(), StoreError> {
    let id = any.doc_id().to_string();
    let p = any.placement();
    conn.prepare_cached(
        "INSERT INTO docs (id, doc_type, bytes, street, community, grid, building, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET doc_type = excluded.doc_type, bytes = excluded.bytes,
            street = excluded.street, community = excluded.community, grid = excluded.grid,
            building = excluded.building, updated_at = excluded.updated_at",
    )?
    .execute(params![
        id,
        any.doc_type().code(),
        bytes,
        p.street.to_string(),
        p.community.to_string(),
        p.grid.to_string(),
        p.building.map(|b| b.to_string()),
        now
    ])?;
    conn.prepare_cached("DELETE FROM doc_scopes WHERE doc_id = ?1")?.execute([&id])?;
    for scope in any.scopes() {
        conn.prepare_cached("INSERT INTO doc_scopes (scope, doc_id) VALUES (?1, ?2)")?
            .execute(params![scope.to_string(), id])?;
    }
    match any {
        AnyDoc::Household(h) => {
            let tags: Vec<&str> = h.tags.keys().map(|t| t.code()).collect();
            let needs: Vec<&str> = h.needs.keys().map(|n| n.code()).collect();
            let last_visit = h.visits.values().map(|v| v.at).max();
            conn.prepare_cached(
                "INSERT OR REPLACE INTO household_rows (id, grid, building, address, head, phone, status, tags, needs,
                    residents, visits, last_visit_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                id,
                p.grid.to_string(),
                p.building.map(|b| b.to_string()),
                h.address(),
                h.head,
                h.phone,
                h.status.code(),
                serde_json::to_string(&tags)?,
                serde_json::to_string(&needs)?,
                h.residents.len(),
                h.visits.len(),
                last_visit,
                now
            ])?;
        }
        AnyDoc::Case(c) => {
            let (responsible, responsible_name) = c.responsible();
            conn.prepare_cached(
                "INSERT OR REPLACE INTO case_rows (id, grid, building, household, kind, title, status, reporter,
                    responsible, responsible_name, reported_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                id,
                p.grid.to_string(),
                p.building.map(|b| b.to_string()),
                c.household.map(|h| h.to_string()),
                c.kind.to_string(),
                c.title,
                c.status().code(),
                c.reporter.to_string(),
                responsible.to_string(),
                responsible_name,
                c.reported_at,
                now
            ])?;
        }
    }
    Ok(())
}

/// The server's copy of a document, if it has one.
pub(super) fn load_doc(conn: &Connection, id: DocId) -> Result<Option<AutoCommit>, StoreError> {
    let bytes: Option<Vec<u8>> = conn
        .prepare_cached("SELECT bytes FROM docs WHERE id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?;
    bytes
        .map(|b| doc::load(&b).map_err(|e| StoreError::Backend(format!("stored document {id} does not load: {e}"))))
        .transpose()
}

/// How long a scope taken from a user still accepts the changes their phones made before.
pub const SCOPE_GRACE_MS: Millis = 30 * gridlink_shared::time::DAY_MS;

/// The principal with the scopes they lost within [`SCOPE_GRACE_MS`] added back, for a change
/// stamped before the loss; `None` when no lost scope qualifies. The stamp is the phone's
/// clock, but only a device the user enrolled can sign, and the audit log keeps both times.
fn principal_with_grace(
    conn: &Connection,
    principal: &gridlink_shared::Principal,
    change_time: Millis,
    now: Millis,
) -> Result<Option<gridlink_shared::Principal>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT scope FROM scope_grace WHERE user_id = ?1 AND removed_at >= ?2 AND removed_at >= ?3")?;
    let lost: Vec<String> = stmt
        .query_map(params![principal.user.to_string(), now - SCOPE_GRACE_MS, change_time], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if lost.is_empty() {
        return Ok(None);
    }
    let mut former = principal.clone();
    for scope in lost {
        former.scopes.push(scope.parse().map_err(|e| StoreError::Backend(format!("stored scope: {e}")))?);
    }
    Ok(Some(former))
}

/// A document touched in this request.
struct Working {
    doc: AutoCommit,
    /// The document is on the server (stored before, or created by an accepted change).
    exists: bool,
    /// Hydrated state after the last accepted change, when one was accepted.
    accepted: Option<AnyDoc>,
}

fn reject(code: RejectCode, message: impl Into<String>) -> AckStatus {
    AckStatus::Rejected { code, message: message.into() }
}

/// Runs the push half inside the caller's transaction.
pub(super) fn push(
    conn: &Connection,
    device: &AuthedDevice,
    request: &SyncRequest,
    now: Millis,
) -> Result<Pushed, StoreError> {
    let mut pushed = Pushed::default();
    let mut working: HashMap<DocId, Working> = HashMap::new();
    let mut log = LogAppender::default();
    for change in &request.changes {
        let (hash, status) = push_one(conn, device, request, change, &mut working, &mut log, now)?;
        if matches!(status, AckStatus::Rejected { .. }) {
            pushed.rejected_docs.insert(change.doc);
        }
        pushed.acks.push(Ack { doc: change.doc, hash, status });
    }
    for work in working.into_values() {
        if let Some(after) = work.accepted {
            let mut doc = work.doc;
            write_doc(conn, &after, &doc.save(), now)?;
        }
    }
    Ok(pushed)
}

fn push_one(
    conn: &Connection,
    device: &AuthedDevice,
    request: &SyncRequest,
    pushed: &gridlink_shared::protocol::PushChange,
    working: &mut HashMap<DocId, Working>,
    log: &mut LogAppender,
    now: Millis,
) -> Result<(String, AckStatus), StoreError> {
    let change = match doc::parse_change(&pushed.bytes) {
        Ok(change) => change,
        Err(e) => return Ok((String::new(), reject(RejectCode::CorruptChange, e.to_string()))),
    };
    let hash = change.hash().to_string();
    if change.actor_id().to_hex_string() != device.actor {
        let message = format!("change is signed by actor {}, not by this device", change.actor_id().to_hex_string());
        return Ok((hash, reject(RejectCode::ForgedActor, message)));
    }
    let known: Option<i64> =
        conn.prepare_cached("SELECT 1 FROM changes WHERE hash = ?1")?.query_row([&hash], |r| r.get(0)).optional()?;
    if known.is_some() {
        return Ok((hash, AckStatus::Duplicate));
    }
    let work = match working.entry(pushed.doc) {
        std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
        std::collections::hash_map::Entry::Vacant(entry) => {
            let stored = load_doc(conn, pushed.doc)?;
            let exists = stored.is_some();
            entry.insert(Working { doc: stored.unwrap_or_default(), exists, accepted: None })
        }
    };
    // Already inside the document (for instance merged in by the import): nothing to do.
    if work.doc.get_change_by_hash(&change.hash()).is_some() {
        return Ok((hash, AckStatus::Duplicate));
    }
    let missing = change.deps().iter().filter(|dep| work.doc.get_change_by_hash(dep).is_none()).count();
    if missing > 0 {
        let message = format!("{missing} earlier change(s) of this document are not on the server; push them first");
        return Ok((hash, reject(RejectCode::MissingDependencies, message)));
    }
    // A stored document that no longer reads (possible only through a merge) is treated as
    // new, so the author must still cover the place the document says it is in.
    let before = match (&work.accepted, work.exists) {
        (Some(accepted), _) => Some(accepted.clone()),
        (None, true) => doc::read_any(&work.doc).ok(),
        (None, false) => None,
    };
    let mut candidate = work.doc.clone();
    if let Err(e) = candidate.apply_changes([change.clone()]) {
        return Ok((hash, reject(RejectCode::CorruptChange, format!("change does not apply: {e}"))));
    }
    let after = match doc::read_any(&candidate) {
        Ok(after) => after,
        Err(e) => return Ok((hash, reject(RejectCode::InvalidDocument, e.to_string()))),
    };
    if after.doc_id() != pushed.doc {
        let message = format!("the change writes document {}, but was pushed for {}", after.doc_id(), pushed.doc);
        return Ok((hash, reject(RejectCode::InvalidDocument, message)));
    }
    if let Err(ValidationError { code, message }) = check_edit(before.as_ref(), &after, &device.principal) {
        let within_grace = code == RejectCode::OutOfScope
            && principal_with_grace(conn, &device.principal, change.timestamp(), now)?
                .is_some_and(|former| check_edit(before.as_ref(), &after, &former).is_ok());
        if !within_grace {
            return Ok((hash, reject(code, message)));
        }
    }
    insert_change(conn, &hash, pushed.doc, &pushed.bytes, &device.actor, now)?;
    conn.prepare_cached(
        "INSERT INTO audit (change_hash, doc_id, user_id, device_id, server_time, device_time, change_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        hash,
        pushed.doc.to_string(),
        device.principal.user.to_string(),
        device.device.to_string(),
        now,
        request.device_time,
        change.timestamp()
    ])?;
    // Log the change wherever the document was or now is, so devices that lose sight of a
    // document still see the change that moved it.
    let mut scopes: BTreeSet<Scope> = after.scopes().into_iter().collect();
    if let Some(before) = &before {
        scopes.extend(before.scopes());
    }
    for scope in scopes {
        log.append(conn, scope, &hash, pushed.doc)?;
    }
    work.doc = candidate;
    work.exists = true;
    work.accepted = Some(after);
    Ok((hash, AckStatus::Accepted))
}
