//! The server's half of divergence detection: each document's digest entry (`docs.
//! digest_entry`, with the scopes it is counted in, `docs.digest_scopes`) and one running
//! digest per scope (`scope_digests`), kept up to date by [`record_write`] inside the
//! transaction of every document write (`push::write_doc` calls it), the scope digests sent
//! with complete pages ([`scope_digest`]), and the answers to a device's verify list
//! ([`answer_verify`]).
//!
//! The index is derived from the documents, so it can always be derived again: [`backfill`]
//! counts documents written before the columns existed (at open), and `gridlink-server check
//! --repair` re-derives delivery scopes, entries and digests from the stored documents
//! (`store/check.rs`, from each document's [`DerivedIndex`]) after a row was lost or restored
//! by hand.

use std::collections::{BTreeMap, BTreeSet};

use gridlink_shared::digest::{DocEntry, ScopeDigest, saved_heads};
use gridlink_shared::protocol::{DocSnapshot, MAX_VERIFY_DOCS, MAX_VERIFY_SCOPES, SyncRequest, VerifyAnswer};
use gridlink_shared::{AnyDoc, DocId, DocType, Scope, doc};
use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::pull::PullSource;
use super::sqlite::{parse_code, parse_id};

/// The entry of a stored document from its saved bytes: the heads are read from the chunk
/// header; bytes that are not a plain saved document are loaded by automerge (panics
/// contained).
pub(super) fn entry_of_saved(id: DocId, bytes: &[u8]) -> Result<DocEntry, StoreError> {
    if let Ok(heads) = saved_heads(bytes) {
        return Ok(DocEntry::of(id, &heads));
    }
    let heads = doc::guarded("reading the heads of a stored document", || {
        Ok(doc::load(bytes)?.get_heads().iter().map(|h| h.0).collect::<Vec<_>>())
    })
    .map_err(|e| StoreError::Backend(format!("document {id} has no readable heads: {e}")))?;
    Ok(DocEntry::of(id, &heads))
}

fn read_digest(conn: &Connection, scope: &str) -> Result<ScopeDigest, StoreError> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT doc_count, xor FROM scope_digests WHERE scope = ?1")?
        .query_row([scope], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((count, xor)) => ScopeDigest {
            count: count.max(0) as u64,
            xor: xor.try_into().map_err(|_| StoreError::Backend(format!("digest of {scope} is not 32 bytes")))?,
        },
        None => ScopeDigest::default(),
    })
}

fn write_digest(conn: &Connection, scope: &str, digest: &ScopeDigest) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO scope_digests (scope, doc_count, xor) VALUES (?1, ?2, ?3)
         ON CONFLICT (scope) DO UPDATE SET doc_count = excluded.doc_count, xor = excluded.xor",
    )?
    .execute(params![scope, digest.count as i64, digest.xor.as_slice()])?;
    Ok(())
}

/// The digest entry and scopes (JSON) a document row is counted with, when it has a row.
pub(super) type Counted = Option<(Option<Vec<u8>>, Option<String>)>;

/// The rows the running digests live in, for [`count_in`] on either backend.
pub(super) trait DigestRows {
    /// The entry and scopes (JSON) a document is counted with, if it has a row.
    fn counted(&mut self, id: &str) -> Result<Counted, StoreError>;
    /// A scope's digest, for an update in this transaction (PostgreSQL locks its row).
    fn digest_for_update(&mut self, scope: &str) -> Result<ScopeDigest, StoreError>;
    fn write_digest(&mut self, scope: &str, digest: &ScopeDigest) -> Result<(), StoreError>;
    /// Remembers on the document's row what it is now counted with.
    fn set_counted(&mut self, id: &str, entry: &DocEntry, scopes_json: &str) -> Result<(), StoreError>;
}

struct SqliteDigestRows<'a>(&'a Connection);

impl DigestRows for SqliteDigestRows<'_> {
    fn counted(&mut self, id: &str) -> Result<Counted, StoreError> {
        Ok(self
            .0
            .prepare_cached("SELECT digest_entry, digest_scopes FROM docs WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    fn digest_for_update(&mut self, scope: &str) -> Result<ScopeDigest, StoreError> {
        read_digest(self.0, scope)
    }

    fn write_digest(&mut self, scope: &str, digest: &ScopeDigest) -> Result<(), StoreError> {
        write_digest(self.0, scope, digest)
    }

    fn set_counted(&mut self, id: &str, entry: &DocEntry, scopes_json: &str) -> Result<(), StoreError> {
        self.0
            .prepare_cached("UPDATE docs SET digest_entry = ?1, digest_scopes = ?2 WHERE id = ?3")?
            .execute(params![entry.0.as_slice(), scopes_json, id])?;
        Ok(())
    }
}

fn count_document(conn: &Connection, id: &str, entry: &DocEntry, scopes: &[String]) -> Result<(), StoreError> {
    count_in(&mut SqliteDigestRows(conn), id, entry, scopes)
}

/// Moves a document's entry in the scope digests: out of the scopes it was counted in, into
/// `scopes` with `entry`, and remembers both on its row.
pub(super) fn count_in(
    rows: &mut impl DigestRows,
    id: &str,
    entry: &DocEntry,
    scopes: &[String],
) -> Result<(), StoreError> {
    if let Some((Some(old_entry), Some(old_scopes))) = rows.counted(id)? {
        let old_entry = DocEntry::from_slice(&old_entry)
            .ok_or_else(|| StoreError::Backend(format!("digest entry of {id} is not 32 bytes")))?;
        let old_scopes: Vec<String> = serde_json::from_str(&old_scopes)?;
        for scope in &old_scopes {
            let mut digest = rows.digest_for_update(scope)?;
            digest.remove(&old_entry);
            rows.write_digest(scope, &digest)?;
        }
    }
    for scope in scopes {
        let mut digest = rows.digest_for_update(scope)?;
        digest.add(entry);
        rows.write_digest(scope, &digest)?;
    }
    rows.set_counted(id, entry, &serde_json::to_string(scopes)?)
}

/// Called by `write_doc` after it stored a document: its new entry replaces the old one in
/// every scope digest, in the same transaction.
pub(super) fn record_write(conn: &Connection, any: &AnyDoc, bytes: &[u8]) -> Result<(), StoreError> {
    let id = any.doc_id();
    let entry = entry_of_saved(id, bytes)?;
    let scopes: Vec<String> = any.scopes().iter().map(Scope::to_string).collect();
    count_document(conn, &id.to_string(), &entry, &scopes)
}

/// Counts the documents written before digests existed (no entry yet; the entry and its
/// scopes are always written together), in the scopes the store delivers them to. Returns how
/// many. Run at open; cheap when there is nothing to do.
pub(super) fn backfill(conn: &Connection) -> Result<usize, StoreError> {
    let missing: Vec<(String, Vec<u8>)> = {
        // Through the partial index `docs_without_digest`: no scan when nothing is missing.
        let mut stmt = conn.prepare("SELECT id, bytes FROM docs WHERE digest_entry IS NULL")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?
    };
    if missing.is_empty() {
        return Ok(0);
    }
    let tx = conn.unchecked_transaction()?;
    for (id, bytes) in &missing {
        let entry = entry_of_saved(parse_id(id)?, bytes)?;
        let scopes = delivery_scopes(&tx, id)?;
        count_document(&tx, id, &entry, &scopes)?;
    }
    tx.commit()?;
    tracing::info!(documents = missing.len(), "digest entries computed for documents stored before digests");
    Ok(missing.len())
}

fn delivery_scopes(conn: &Connection, id: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT scope FROM doc_scopes WHERE doc_id = ?1 ORDER BY scope")?;
    Ok(stmt.query_map([id], |r| r.get(0))?.collect::<Result<_, _>>()?)
}

/// The current digest of a scope.
pub(super) fn scope_digest(conn: &Connection, scope: Scope) -> Result<ScopeDigest, StoreError> {
    read_digest(conn, &scope.to_string())
}

/// A document as `check` read it from its stored bytes: where it belongs and its entry.
#[derive(Debug)]
pub(super) struct DerivedIndex {
    pub doc: DocId,
    pub scopes: Vec<String>,
    pub entry: DocEntry,
}

impl DerivedIndex {
    pub fn of(any: &AnyDoc, bytes: &[u8]) -> Result<DerivedIndex, StoreError> {
        let mut scopes: Vec<String> = any.scopes().iter().map(Scope::to_string).collect();
        scopes.sort();
        Ok(DerivedIndex { doc: any.doc_id(), scopes, entry: entry_of_saved(any.doc_id(), bytes)? })
    }
}

/// What answering the verify lists added to the response.
#[derive(Debug, Default)]
pub(super) struct VerifyOutcome {
    pub answers: Vec<VerifyAnswer>,
    pub repairs: Vec<DocSnapshot>,
}

/// Answers a request's verify lists: for each held scope asked about, the server's copy of
/// every document whose entry differs from the device's or that the device lacks, and the
/// listed documents the server does not hold for this principal. Bounded before any work (at
/// most [`MAX_VERIFY_SCOPES`] scopes and [`MAX_VERIFY_DOCS`] documents, else nothing is
/// answered); copies stop at `byte_budget` (at least one goes), the answer then says
/// `complete: false`. `skip` are documents already repaired in this response or damaged.
pub(super) fn answer_verify(
    conn: &mut impl PullSource,
    held: &BTreeSet<Scope>,
    request: &SyncRequest,
    skip: &BTreeSet<DocId>,
    mut byte_budget: u64,
) -> Result<VerifyOutcome, StoreError> {
    let mut outcome = VerifyOutcome::default();
    if request.verify.is_empty() {
        return Ok(outcome);
    }
    let listed: usize = request.verify.iter().map(|v| v.docs.len()).sum();
    if request.verify.len() > MAX_VERIFY_SCOPES || listed > MAX_VERIFY_DOCS {
        tracing::warn!(scopes = request.verify.len(), docs = listed, "verify list over its bounds; not answered");
        return Ok(outcome);
    }
    let mut sent: BTreeSet<DocId> = BTreeSet::new();
    let mut answered: BTreeSet<Scope> = BTreeSet::new();
    for asked in &request.verify {
        if !held.contains(&asked.scope) || !answered.insert(asked.scope) {
            tracing::warn!(scope = %asked.scope, "verify list for a scope not held (or twice); ignored");
            continue;
        }
        let device: BTreeMap<DocId, DocEntry> = asked.docs.iter().map(|d| (d.doc, d.entry)).collect();
        let mut answer = VerifyAnswer { scope: asked.scope, differing: vec![], absent: vec![], complete: true };
        let mut on_server: BTreeSet<DocId> = BTreeSet::new();
        let rows = conn.scope_entries(asked.scope)?;
        let mut differing: Vec<DocId> = Vec::new();
        for (id, entry) in rows {
            let id: DocId = parse_id(&id)?;
            on_server.insert(id);
            let same = match (device.get(&id), entry.as_deref().and_then(DocEntry::from_slice)) {
                (Some(theirs), Some(ours)) => *theirs == ours,
                _ => false,
            };
            if !same {
                differing.push(id);
            }
        }
        // Listed but not in this scope on the server: still the device's if another held
        // scope delivers it (its copy then goes back, with the scopes it has now).
        for id in device.keys().filter(|id| !on_server.contains(id)) {
            if readable_elsewhere(conn, *id, held)? {
                differing.push(*id);
            } else {
                answer.absent.push(*id);
            }
        }
        for id in differing {
            if skip.contains(&id) {
                continue;
            }
            if sent.contains(&id) {
                answer.differing.push(id);
                continue;
            }
            let Some((doc_type, bytes)) = stored_copy(conn, id)? else { continue };
            if !outcome.repairs.is_empty() && bytes.len() as u64 > byte_budget {
                answer.complete = false;
                break;
            }
            byte_budget = byte_budget.saturating_sub(bytes.len() as u64);
            sent.insert(id);
            answer.differing.push(id);
            outcome.repairs.push(DocSnapshot { doc: id, doc_type, bytes });
        }
        outcome.answers.push(answer);
    }
    Ok(outcome)
}

fn readable_elsewhere(conn: &mut impl PullSource, id: DocId, held: &BTreeSet<Scope>) -> Result<bool, StoreError> {
    let scopes = conn.doc_scopes(id)?;
    Ok(scopes.iter().filter_map(|s| s.parse::<Scope>().ok()).any(|s| held.contains(&s)))
}

fn stored_copy(conn: &mut impl PullSource, id: DocId) -> Result<Option<(DocType, Vec<u8>)>, StoreError> {
    conn.stored_copy(id)?.map(|(doc_type, bytes)| Ok((parse_code(&doc_type)?, bytes))).transpose()
}
