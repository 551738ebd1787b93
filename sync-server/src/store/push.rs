//! The push half of a sync: each pushed change, in request order, is read with bounded work
//! ([`inspect_change`]: sizes, op counts, no compressed chunks), checked against the device's
//! actor before anything expensive, de-duplicated by hash, checked against the document it
//! extends (dependencies, seq, op counters, time), applied to the server's copy of its
//! document with panics contained, validated with the shared validator, and stored with its
//! scope-log entries. A rejected change does not stop the batch; every refusal is audited.

use std::collections::{BTreeSet, HashMap};

use automerge::AutoCommit;
use gridlink_shared::change_bytes::{
    ChangeHeader, ChangeIndex, ChangeRefusal, ContextRefusal, check_time, inspect_change,
};
use gridlink_shared::protocol::{Ack, AckStatus, PushChange, SyncRequest};
use gridlink_shared::time::Millis;
use gridlink_shared::validate::check_edit;
use gridlink_shared::{AnyDoc, DocError, DocId, RejectCode, Scope, ValidationError, doc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{AuthedDevice, PushLimits, StoreError};

/// What the push half hands to the pull half.
#[derive(Debug, Default)]
pub(super) struct Pushed {
    pub acks: Vec<Ack>,
    /// Documents that had a change rejected, for the repair list.
    pub rejected_docs: BTreeSet<DocId>,
    /// Documents whose stored copy does not load: never sent as a repair, which would only
    /// hand the phone the damage (`gridlink-server check --repair` mends them).
    pub damaged_docs: BTreeSet<DocId>,
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

/// The last sequence number of a scope's log (0 when it never had one). Compaction may
/// delete every entry: the compaction point then still counts, or the log would start again
/// at 1 and a device whose cursor is past those numbers would silently skip the new entries.
pub(super) fn scope_head(conn: &Connection, scope: Scope) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT MAX(COALESCE((SELECT MAX(seq) FROM scope_log WHERE scope = ?1), 0),
                        COALESCE((SELECT floor FROM scope_floor WHERE scope = ?1), 0))",
        )?
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
    super::facts::write(conn, any)
}

/// The server's stored bytes of a document, if it has one.
pub(super) fn doc_bytes(conn: &Connection, id: DocId) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT bytes FROM docs WHERE id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?)
}

/// How long a scope taken from a user still accepts the changes their phones made before.
pub const SCOPE_GRACE_MS: Millis = 30 * gridlink_shared::time::DAY_MS;

/// The principal with the scopes they lost within [`SCOPE_GRACE_MS`] added back, for a change
/// stamped before the loss by a device enrolled before it; `None` when no lost scope
/// qualifies. The stamp is the phone's clock, but only a device that held the scope can
/// claim it (a phone enrolled after the move never did), and the audit log keeps both times.
fn principal_with_grace(
    conn: &Connection,
    device: &AuthedDevice,
    change_time: Millis,
    now: Millis,
) -> Result<Option<gridlink_shared::Principal>, StoreError> {
    let principal = &device.principal;
    let mut stmt = conn.prepare_cached(
        "SELECT scope FROM scope_grace
         WHERE user_id = ?1 AND removed_at >= ?2 AND removed_at >= ?3 AND removed_at > ?4",
    )?;
    let lost: Vec<String> = stmt
        .query_map(params![principal.user.to_string(), now - SCOPE_GRACE_MS, change_time, device.enrolled_at], |r| {
            r.get(0)
        })?
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
    /// Seqs and op counters already in `doc`, to check each new change's numbering.
    index: ChangeIndex,
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
    limits: &PushLimits,
    now: Millis,
) -> Result<Pushed, StoreError> {
    let mut pushed = Pushed::default();
    let mut working: HashMap<DocId, Working> = HashMap::new();
    let mut log = LogAppender::default();
    let mut ops_budget = limits.max_request_ops;
    for change in &request.changes {
        let outcome = push_one(conn, device, request, change, limits, &mut ops_budget, &mut working, &mut log, now)?;
        if outcome.as_ref().is_some_and(|(_, status)| is_damaged(status)) {
            pushed.damaged_docs.insert(change.doc);
        }
        let Some((hash, status)) = outcome else {
            // Over this request's op budget: no ack, so the phone sends it again next round.
            break;
        };
        if let AckStatus::Rejected { code, message } = &status {
            pushed.rejected_docs.insert(change.doc);
            audit_refusal(conn, device, change, &hash, *code, message, now)?;
        }
        pushed.acks.push(Ack { doc: change.doc, hash, status });
    }
    for (id, work) in working {
        if let Some(after) = work.accepted {
            let mut doc = work.doc;
            let saved = doc::guarded("saving the document", || Ok(doc.save()))
                .map_err(|e| StoreError::Backend(format!("document {id} does not save: {e}")))?;
            write_doc(conn, &after, &saved, now)?;
        }
    }
    Ok(pushed)
}

/// Records a refused change: who, when, which code. Not its bytes: a hostile phone must not be
/// able to fill the disk through its refusals.
fn audit_refusal(
    conn: &Connection,
    device: &AuthedDevice,
    change: &PushChange,
    hash: &str,
    code: RejectCode,
    message: &str,
    now: Millis,
) -> Result<(), StoreError> {
    tracing::warn!(device = %device.device, doc = %change.doc, %code, message, "change refused");
    conn.prepare_cached(
        "INSERT INTO refusals (change_hash, doc_id, user_id, device_id, code, message, bytes_len, server_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        hash,
        change.doc.to_string(),
        device.principal.user.to_string(),
        device.device.to_string(),
        code.code(),
        message.chars().take(500).collect::<String>(),
        change.bytes.len(),
        now
    ])?;
    Ok(())
}

const DAMAGED: &str = "the server's copy of this record is damaged; an administrator must repair it";

fn is_damaged(status: &AckStatus) -> bool {
    matches!(status, AckStatus::Rejected { message, .. } if message == DAMAGED)
}

/// The reject code for a change that does not fit its document.
pub(super) fn context_reject(refusal: ContextRefusal) -> AckStatus {
    let code = match refusal {
        ContextRefusal::MissingDependencies(_) => RejectCode::MissingDependencies,
        ContextRefusal::OutOfOrder(_) => RejectCode::OutOfOrder,
        ContextRefusal::BadTime(_) => RejectCode::BadTime,
    };
    reject(code, refusal.to_string())
}

/// The server's copy of a document with its change index, loaded with panics contained.
fn load_working(conn: &Connection, id: DocId) -> Result<Result<Working, DocError>, StoreError> {
    let Some(bytes) = doc_bytes(conn, id)? else {
        return Ok(Ok(Working {
            doc: AutoCommit::new(),
            index: ChangeIndex::default(),
            exists: false,
            accepted: None,
        }));
    };
    Ok(doc::guarded("loading the stored document", || {
        let mut doc = doc::load(&bytes)?;
        let index = ChangeIndex::of(&mut doc);
        Ok(Working { doc, index, exists: true, accepted: None })
    }))
}

/// Decides one change; `None` when it does not fit this request's op budget.
#[allow(clippy::too_many_arguments)]
fn push_one(
    conn: &Connection,
    device: &AuthedDevice,
    request: &SyncRequest,
    pushed: &PushChange,
    limits: &PushLimits,
    ops_budget: &mut u64,
    working: &mut HashMap<DocId, Working>,
    log: &mut LogAppender,
    now: Millis,
) -> Result<Option<(String, AckStatus)>, StoreError> {
    // Bounded work first: nothing below runs on bytes that fail these checks.
    let header: ChangeHeader = match inspect_change(&pushed.bytes, &limits.change) {
        Ok(header) => header,
        Err(ChangeRefusal::TooLarge(m)) => return Ok(Some((String::new(), reject(RejectCode::TooLarge, m)))),
        Err(ChangeRefusal::Malformed(m)) => return Ok(Some((String::new(), reject(RejectCode::CorruptChange, m)))),
    };
    let hash = header.hash.to_string();
    let done = |status: AckStatus| Ok(Some((hash.clone(), status)));
    if header.actor.to_hex_string() != device.actor {
        let message = format!("change is signed by actor {}, not by this device", header.actor.to_hex_string());
        return done(reject(RejectCode::ForgedActor, message));
    }
    let known: Option<i64> =
        conn.prepare_cached("SELECT 1 FROM changes WHERE hash = ?1")?.query_row([&hash], |r| r.get(0)).optional()?;
    if known.is_some() {
        return done(AckStatus::Duplicate);
    }
    if header.ops > *ops_budget && *ops_budget < limits.max_request_ops {
        return Ok(None);
    }
    *ops_budget = ops_budget.saturating_sub(header.ops);
    if let Err(refusal) = check_time(header.time, now) {
        return done(context_reject(refusal));
    }
    let work = match working.entry(pushed.doc) {
        std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
        std::collections::hash_map::Entry::Vacant(entry) => match load_working(conn, pushed.doc)? {
            Ok(work) => entry.insert(work),
            Err(e) => {
                // A stored document automerge cannot load: `gridlink-server check --repair`
                // rebuilds it. Until then nothing is added to it.
                tracing::error!(doc = %pushed.doc, error = %e, "stored document does not load; run `gridlink-server check`");
                return done(reject(RejectCode::InvalidDocument, DAMAGED));
            }
        },
    };
    // Already inside the document (for instance merged in by the import): nothing to do.
    if work.index.contains(&header.hash) {
        return done(AckStatus::Duplicate);
    }
    if let Err(refusal) = work.index.check(&header) {
        return done(context_reject(refusal));
    }
    // A stored document that no longer reads (possible only through a merge) is treated as
    // new, so the author must still cover the place the document says it is in.
    let before = match (&work.accepted, work.exists) {
        (Some(accepted), _) => Some(accepted.clone()),
        (None, true) => doc::guarded("reading the stored document", || doc::read_any(&work.doc)).ok(),
        (None, false) => None,
    };
    // automerge's own parse and apply run only now, on bounded bytes, on a copy, with panics
    // contained: whatever still goes wrong fails this change alone.
    let applied = doc::guarded("applying the change", || {
        let change = doc::parse_change(&pushed.bytes)?;
        let mut candidate = work.doc.clone();
        candidate.apply_changes([change])?;
        Ok(candidate)
    });
    let mut candidate = match applied {
        Ok(candidate) => candidate,
        Err(e) => return done(reject(RejectCode::CorruptChange, format!("change does not apply: {e}"))),
    };
    let after = match doc::guarded("reading the document", || doc::read_any(&candidate)) {
        Ok(after) => after,
        Err(e) => return done(reject(RejectCode::InvalidDocument, e.to_string())),
    };
    if after.doc_id() != pushed.doc {
        let message = format!("the change writes document {}, but was pushed for {}", after.doc_id(), pushed.doc);
        return done(reject(RejectCode::InvalidDocument, message));
    }
    if let Err(ValidationError { code, message }) = check_edit(before.as_ref(), &after, &device.principal) {
        let within_grace = code == RejectCode::OutOfScope
            && principal_with_grace(conn, device, header.time, now)?
                .is_some_and(|former| check_edit(before.as_ref(), &after, &former).is_ok());
        if !within_grace {
            return done(reject(code, message));
        }
    }
    // What a fresh phone will do with this document: save it and load the saved bytes. A
    // change that survives the apply but breaks that is refused here, before it is stored.
    if let Err(e) = doc::guarded("saving and reloading the document", || doc::load(&candidate.save()).map(drop)) {
        return done(reject(RejectCode::CorruptChange, format!("the document would not load with this change: {e}")));
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
        header.time
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
    work.index.record(&header);
    work.doc = candidate;
    work.exists = true;
    work.accepted = Some(after);
    done(AckStatus::Accepted)
}
