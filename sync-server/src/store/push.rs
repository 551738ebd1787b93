//! The push half of a sync: each pushed change, in request order, is read with bounded work
//! ([`inspect_change`]: sizes, op counts, no compressed chunks), checked against the device's
//! actor before anything expensive, de-duplicated by hash, checked against the document it
//! extends (dependencies, seq, op counters, time), applied to the server's copy of its
//! document with panics contained, validated with the shared validator, and stored with its
//! scope-log entries. A rejected change does not stop the batch; every refusal is audited.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

use gridlink_shared::protocol::{Ack, AckStatus, PushChange, SyncRequest};
use gridlink_shared::time::Millis;
use gridlink_shared::{AnyDoc, DocError, DocId, RejectCode, Scope, doc};
use rusqlite::{Connection, OptionalExtension, params};

pub(super) use super::push_decision::LostScope;
pub use super::push_decision::SCOPE_GRACE_MS;
use super::push_decision::{Accepted, DAMAGED, Pusher, Verdict, Working, admit, decide, read_header};
use super::rows::DocRows;
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
    let rows = super::rows::derive(any)?;
    match &rows {
        DocRows::Household { row: r, .. } => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO household_rows (id, grid, building, address, head, phone, status, tags, needs,
                    residents, visits, last_visit_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                r.id,
                r.grid,
                r.building,
                r.address,
                r.head,
                r.phone,
                r.status,
                r.tags,
                r.needs,
                r.residents,
                r.visits,
                r.last_visit_at,
                now
            ])?;
        }
        DocRows::Case { row: r, .. } => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO case_rows (id, grid, building, household, kind, title, status, reporter,
                    responsible, responsible_name, reported_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                r.id,
                r.grid,
                r.building,
                r.household,
                r.kind,
                r.title,
                r.status,
                r.reporter,
                r.responsible,
                r.responsible_name,
                r.reported_at,
                now
            ])?;
        }
        DocRows::None => {}
    }
    super::digest::record_write(conn, any, bytes)?;
    super::facts::write(conn, &rows)
}

/// The server's stored bytes of a document, if it has one.
pub(super) fn doc_bytes(conn: &Connection, id: DocId) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT bytes FROM docs WHERE id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?)
}

/// The scopes the device's user lost within [`SCOPE_GRACE_MS`], after the device was
/// enrolled (a phone enrolled after the move never held them): one lookup per request.
pub(super) fn lost_scopes(conn: &Connection, device: &AuthedDevice, now: Millis) -> Result<Vec<LostScope>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT scope, removed_at FROM scope_grace WHERE user_id = ?1 AND removed_at >= ?2 AND removed_at > ?3",
    )?;
    let rows: Vec<(String, Millis)> = stmt
        .query_map(params![device.principal.user.to_string(), now - SCOPE_GRACE_MS, device.enrolled_at], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(scope, removed_at)| {
            let scope = scope.parse().map_err(|e| StoreError::Backend(format!("stored scope: {e}")))?;
            Ok(LostScope { scope, removed_at })
        })
        .collect()
}

/// What the push executor needs from a backend, inside the sync's write transaction. The
/// SQLite implementation ([`SqlitePush`]) runs each call on the connection; the PostgreSQL one
/// (`store/postgres/push.rs`) also numbers the log entries, under its own locks, in
/// [`finish_changes`](PushTarget::finish_changes).
pub(super) trait PushTarget {
    /// Whether a change with this hash is stored (a re-push is a duplicate).
    fn is_stored(&mut self, hash: &str) -> Result<bool, StoreError>;
    /// The server's stored bytes of a document, if it has one.
    fn doc_bytes(&mut self, id: DocId) -> Result<Option<Vec<u8>>, StoreError>;
    /// The scopes the device's user lost within [`SCOPE_GRACE_MS`], after the device was
    /// enrolled (a phone enrolled after the move never held them).
    fn lost_scopes(&mut self, device: &AuthedDevice, now: Millis) -> Result<Vec<LostScope>, StoreError>;
    /// Stores an accepted change: the change itself, who pushed it and when, and its entries in
    /// the logs of every scope the document was or now is in.
    fn store_accepted(&mut self, change: &StoredChange<'_>) -> Result<(), StoreError>;
    /// Records a refused change: who, when, which code. Not its bytes: a hostile phone must not
    /// be able to fill the disk through its refusals.
    fn audit_refusal(&mut self, refusal: &Refusal<'_>) -> Result<(), StoreError>;
    /// Called once after the last change, before the documents are written.
    fn finish_changes(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Writes a document's saved bytes, its scopes, its digest entry and its query rows.
    fn write_doc(&mut self, any: &AnyDoc, bytes: &[u8], now: Millis) -> Result<(), StoreError>;
}

/// An accepted change, as [`PushTarget::store_accepted`] stores it.
pub(super) struct StoredChange<'a> {
    pub device: &'a AuthedDevice,
    pub request: &'a SyncRequest,
    pub pushed: &'a PushChange,
    pub hash: &'a str,
    /// The change's own timestamp (the phone's clock).
    pub change_time: Millis,
    pub log_scopes: &'a [Scope],
    pub now: Millis,
}

/// A refused change, as [`PushTarget::audit_refusal`] records it.
pub(super) struct Refusal<'a> {
    pub device: &'a AuthedDevice,
    pub change: &'a PushChange,
    pub hash: &'a str,
    pub code: RejectCode,
    pub message: &'a str,
    pub now: Millis,
}

/// The SQLite side of the executor: every call on the sync's `BEGIN IMMEDIATE` transaction,
/// which already excludes every other writer, so log numbers are simply the head plus one.
pub(super) struct SqlitePush<'a> {
    pub conn: &'a Connection,
    pub log: LogAppender,
}

impl PushTarget for SqlitePush<'_> {
    fn is_stored(&mut self, hash: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM changes WHERE hash = ?1")?
            .query_row([hash], |r| r.get::<_, i64>(0))
            .optional()?
            .is_some())
    }

    fn doc_bytes(&mut self, id: DocId) -> Result<Option<Vec<u8>>, StoreError> {
        doc_bytes(self.conn, id)
    }

    fn lost_scopes(&mut self, device: &AuthedDevice, now: Millis) -> Result<Vec<LostScope>, StoreError> {
        lost_scopes(self.conn, device, now)
    }

    fn store_accepted(&mut self, change: &StoredChange<'_>) -> Result<(), StoreError> {
        let StoredChange { device, request, pushed, hash, change_time, log_scopes, now } = *change;
        let conn = self.conn;
        insert_change(conn, hash, pushed.doc, &pushed.bytes, &device.actor, now)?;
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
            change_time
        ])?;
        for scope in log_scopes {
            self.log.append(conn, *scope, hash, pushed.doc)?;
        }
        Ok(())
    }

    fn audit_refusal(&mut self, refusal: &Refusal<'_>) -> Result<(), StoreError> {
        let Refusal { device, change, hash, code, message, now } = *refusal;
        self.conn
            .prepare_cached(
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

    fn write_doc(&mut self, any: &AnyDoc, bytes: &[u8], now: Millis) -> Result<(), StoreError> {
        write_doc(self.conn, any, bytes, now)
    }
}

/// Runs the push half inside the caller's SQLite transaction.
pub(super) fn push(
    conn: &Connection,
    device: &AuthedDevice,
    request: &SyncRequest,
    limits: &PushLimits,
    now: Millis,
) -> Result<Pushed, StoreError> {
    execute(&mut SqlitePush { conn, log: LogAppender::default() }, device, request, limits, now)
}

/// The executor, for any backend: for each change, the pure decision ([`push_decision`]) on
/// what `target` looks up, then its effects through `target`.
pub(super) fn execute(
    target: &mut impl PushTarget,
    device: &AuthedDevice,
    request: &SyncRequest,
    limits: &PushLimits,
    now: Millis,
) -> Result<Pushed, StoreError> {
    let mut pushed = Pushed::default();
    let mut working: HashMap<DocId, Result<Working, DocError>> = HashMap::new();
    let mut ops_budget = limits.max_request_ops;
    let lost = if request.changes.is_empty() { Vec::new() } else { target.lost_scopes(device, now)? };
    let pusher = Pusher { principal: &device.principal, lost: &lost };
    for change in &request.changes {
        let verdict = match read_header(change, &device.actor, limits) {
            Err(verdict) => verdict,
            Ok(header) => {
                let stored = target.is_stored(&header.hash.to_string())?;
                match admit(&header, stored, limits, &mut ops_budget, now) {
                    Some(verdict) => verdict,
                    None => {
                        let work = match working.entry(change.doc) {
                            Entry::Occupied(entry) => entry.into_mut(),
                            Entry::Vacant(entry) => entry.insert(load_working(target, change.doc)?),
                        };
                        if let Err(e) = &work {
                            tracing::error!(doc = %change.doc, error = %e, "stored document does not load; run `gridlink-server check`");
                        }
                        decide(change, header, work.as_ref(), &pusher)
                    }
                }
            }
        };
        let status = match verdict {
            // Over this request's op budget: no ack, so the phone sends it again next round.
            Verdict::Defer => break,
            Verdict::Duplicate { hash } => (hash, AckStatus::Duplicate),
            Verdict::Refuse { hash, status } => {
                if matches!(&status, AckStatus::Rejected { message, .. } if message == DAMAGED) {
                    pushed.damaged_docs.insert(change.doc);
                }
                if let AckStatus::Rejected { code, message } = &status {
                    tracing::warn!(device = %device.device, doc = %change.doc, %code, message, "change refused");
                    target.audit_refusal(&Refusal { device, change, hash: &hash, code: *code, message, now })?;
                }
                pushed.rejected_docs.insert(change.doc);
                (hash, status)
            }
            Verdict::Accept(accepted) => {
                let Accepted { hash, header, candidate, after, log_scopes } = *accepted;
                target.store_accepted(&StoredChange {
                    device,
                    request,
                    pushed: change,
                    hash: &hash,
                    change_time: header.time,
                    log_scopes: &log_scopes,
                    now,
                })?;
                let Some(Ok(work)) = working.get_mut(&change.doc) else {
                    unreachable!("an accepted change was decided against a loaded document")
                };
                work.index.record(&header);
                work.doc = candidate;
                work.exists = true;
                work.accepted = Some(after);
                (hash, AckStatus::Accepted)
            }
        };
        let (hash, status) = status;
        pushed.acks.push(Ack { doc: change.doc, hash, status });
    }
    target.finish_changes()?;
    // In document order, so concurrent writers (PostgreSQL) touch shared rows in one order.
    let mut written: Vec<(DocId, Result<Working, DocError>)> = working.into_iter().collect();
    written.sort_by_key(|(id, _)| *id);
    for (id, work) in written {
        if let Ok(Working { doc: mut saved_doc, accepted: Some(after), .. }) = work {
            let saved = doc::guarded("saving the document", || Ok(saved_doc.save()))
                .map_err(|e| StoreError::Backend(format!("document {id} does not save: {e}")))?;
            target.write_doc(&after, &saved, now)?;
        }
    }
    Ok(pushed)
}

/// The server's copy of a document, loaded with panics contained (a new one if not stored).
fn load_working(target: &mut impl PushTarget, id: DocId) -> Result<Result<Working, DocError>, StoreError> {
    Ok(match target.doc_bytes(id)? {
        Some(bytes) => Working::load(&bytes),
        None => Ok(Working::new_document()),
    })
}
