//! `gridlink-server check`: finds stored documents and changes that a phone could not load, and
//! with `--repair` mends them.
//!
//! A document is sound when it loads, reads as a Gridlink document, saves, and loads again
//! from what it saved (what a freshly enrolled phone does with its snapshot), all with panics
//! contained. A change is sound when its bytes pass the same bounded checks as a push and
//! automerge parses it. Repair rebuilds each bad document from its stored changes in the order
//! they were accepted, applying each with the same checks as a push; a change that fails moves
//! to the `quarantine` table (kept, never deleted). Then every scope of the document gets a new
//! log entry marked as a repair, so each device pulls the repaired copy whole, replacing its
//! own.
//!
//! The checks, the repair and the index comparison are written once ([`check`], over a
//! [`CheckStore`]); SQLite's store is here ([`SqliteCheck`], the whole run in one `BEGIN
//! IMMEDIATE` transaction), PostgreSQL's in `store/postgres/check.rs`.

use std::collections::{BTreeMap, BTreeSet};

use automerge::AutoCommit;
use gridlink_shared::change_bytes::{ChangeIndex, ChangeLimits, inspect_change};
use gridlink_shared::digest::{DocEntry, ScopeDigest};
use gridlink_shared::time::Millis;
use gridlink_shared::{AnyDoc, DocError, DocId, Scope, doc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::digest::DerivedIndex;
use super::push::{LogAppender, write_doc};
use super::sqlite::parse_id;
use super::{SqliteStore, StoreError};

/// Stored changes were accepted under whatever limits applied then (the import writes whole
/// households in one change), so the check only refuses what could never load.
const STORED_CHANGE_LIMITS: ChangeLimits = ChangeLimits {
    max_bytes: 64 * 1024 * 1024,
    max_ops: 4_000_000,
    max_column_rows: 16_000_000,
    max_deps: 4096,
    max_other_actors: 4096,
    max_actor_bytes: 64,
    max_message_bytes: 1024 * 1024,
    max_columns: 64,
};

/// A stored item that failed the check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub doc: DocId,
    /// The change's hash, for a bad change.
    pub change: Option<String>,
    pub reason: String,
}

/// What `check` found and, with `--repair`, did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckReport {
    pub documents: usize,
    pub changes: usize,
    pub bad_documents: Vec<Problem>,
    pub bad_changes: Vec<Problem>,
    /// Documents rebuilt and re-announced to devices.
    pub repaired: Vec<DocId>,
    /// Changes moved to the quarantine table by the repair.
    pub quarantined: Vec<Problem>,
    /// Documents the repair could not rebuild, with why (left as they were).
    pub unrepaired: Vec<Problem>,
    /// Documents whose delivery scopes (`doc_scopes`) or divergence digest entry disagree with
    /// their stored bytes (a row lost or restored by hand). `--repair` re-derives the index
    /// from the documents and recomputes every scope digest.
    pub index_mismatches: Vec<DocId>,
    /// Whether the index was re-derived (`--repair` with mismatches).
    pub index_rebuilt: bool,
}

impl CheckReport {
    /// Whether anything bad is left in the store.
    pub fn is_clean(&self) -> bool {
        let found = self.bad_documents.len() + self.bad_changes.len();
        let index_clean = self.index_mismatches.is_empty() || self.index_rebuilt;
        index_clean && (found == 0 || (!self.repaired.is_empty() && self.unrepaired.is_empty()))
    }
}

/// Checks a stored document the way a fresh phone would use it.
pub fn check_document(bytes: &[u8]) -> Result<AnyDoc, DocError> {
    doc::guarded("checking the document", || {
        let mut loaded = doc::load(bytes)?;
        let any = doc::read_any(&loaded)?;
        doc::load(&loaded.save())?;
        Ok(any)
    })
}

fn check_change(bytes: &[u8]) -> Result<(), String> {
    inspect_change(bytes, &STORED_CHANGE_LIMITS).map_err(|e| e.to_string())?;
    doc::guarded("parsing the change", || doc::parse_change(bytes).map(drop)).map_err(|e| e.to_string())
}

/// How a document is indexed now: its digest entry and the scopes it is counted in (JSON),
/// as on its row, and its delivery scopes (`doc_scopes`, sorted).
pub(super) type Indexed = (Option<Vec<u8>>, Option<String>, Vec<String>);

/// What `check` reads and, with `--repair`, writes, inside one transaction of its backend.
/// The scans hand each row to `visit` in order: documents by id, changes in the order they
/// were accepted.
pub(super) trait CheckStore {
    /// Documents plus changes, for the progress line.
    fn stored_count(&mut self) -> Result<usize, StoreError>;
    fn scan_docs(&mut self, visit: &mut dyn FnMut(DocId, Vec<u8>) -> Result<(), StoreError>) -> Result<(), StoreError>;
    fn scan_changes(
        &mut self,
        visit: &mut dyn FnMut(String, DocId, Vec<u8>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    fn indexed(&mut self, id: DocId) -> Result<Indexed, StoreError>;
    /// Sets a document's delivery scopes, entry and counted scopes to what its bytes say.
    fn reindex(&mut self, doc: &DerivedIndex) -> Result<(), StoreError>;
    /// Every document's entry and counted scopes (JSON), for recounting the digests.
    fn scan_counted(
        &mut self,
        visit: &mut dyn FnMut(Vec<u8>, String) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Replaces every scope digest with these.
    fn replace_digests(&mut self, digests: &BTreeMap<String, ScopeDigest>) -> Result<(), StoreError>;
    /// A document's stored changes (hash, bytes) in the order they were accepted.
    fn changes_of(&mut self, id: DocId) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Moves a stored change to the quarantine table (kept, never deleted).
    fn quarantine(&mut self, hash: &str, reason: &str, now: Millis) -> Result<(), StoreError>;
    /// Writes a document's bytes with its scopes, digest entry and query rows, as a push does.
    fn write_doc(&mut self, any: &AnyDoc, bytes: &[u8], now: Millis) -> Result<(), StoreError>;
    /// The hash of the document's last stored change, if any is left.
    fn last_change(&mut self, id: DocId) -> Result<Option<String>, StoreError>;
    fn delivery_scopes(&mut self, id: DocId) -> Result<Vec<Scope>, StoreError>;
    /// Appends a log entry to `scope` marked as a repair of `id` (`repair_marks`).
    fn append_repair(&mut self, scope: Scope, hash: &str, id: DocId) -> Result<(), StoreError>;
}

/// Checks every stored document and change; with `repair`, mends what it can through
/// `store`, whose transaction the caller commits. `progress(done, total)` is called as
/// documents and changes are checked.
pub(super) fn check(
    store: &mut impl CheckStore,
    repair: bool,
    now: Millis,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<CheckReport, StoreError> {
    let mut report = CheckReport::default();
    let total = store.stored_count()?;
    let mut done = 0;
    let mut derived = Vec::new();
    store.scan_docs(&mut |id, bytes| {
        report.documents += 1;
        match check_document(&bytes) {
            Ok(any) if any.doc_id() == id => derived.push(DerivedIndex::of(&any, &bytes)?),
            Ok(_) => {}
            Err(e) => report.bad_documents.push(Problem { doc: id, change: None, reason: e.to_string() }),
        }
        done += 1;
        progress(done, total);
        Ok(())
    })?;
    store.scan_changes(&mut |hash, id, bytes| {
        report.changes += 1;
        if let Err(reason) = check_change(&bytes) {
            report.bad_changes.push(Problem { doc: id, change: Some(hash), reason });
        }
        done += 1;
        progress(done, total);
        Ok(())
    })?;
    report.index_mismatches = find_index_mismatches(store, &derived)?;
    if repair && !report.index_mismatches.is_empty() {
        rebuild_index(store, &derived)?;
        report.index_rebuilt = true;
    }
    if repair {
        let bad_docs: BTreeSet<DocId> = report.bad_documents.iter().map(|p| p.doc).collect();
        let docs_with_bad_changes: BTreeSet<DocId> =
            report.bad_changes.iter().map(|p| p.doc).filter(|d| !bad_docs.contains(d)).collect();
        for id in bad_docs {
            match rebuild(store, id, now)? {
                Ok(quarantined) => {
                    report.quarantined.extend(quarantined);
                    report.repaired.push(id);
                }
                Err(reason) => report.unrepaired.push(Problem { doc: id, change: None, reason }),
            }
        }
        // The document is sound but a stored change is not: take the change out (devices
        // that pull it would fail on it) and hand every device the document whole.
        for problem in report.bad_changes.iter().filter(|p| docs_with_bad_changes.contains(&p.doc)) {
            let hash = problem.change.as_deref().unwrap_or_default();
            store.quarantine(hash, &problem.reason, now)?;
            report.quarantined.push(problem.clone());
        }
        for id in docs_with_bad_changes {
            announce_repair(store, id)?;
            report.repaired.push(id);
        }
    }
    Ok(report)
}

/// Documents whose delivery scopes (`doc_scopes`) or digest entry disagree with what their
/// stored bytes say.
fn find_index_mismatches(store: &mut impl CheckStore, derived: &[DerivedIndex]) -> Result<Vec<DocId>, StoreError> {
    let mut mismatched = Vec::new();
    for doc in derived {
        let (entry, counted, delivered) = store.indexed(doc.doc)?;
        let mut counted: Vec<String> = counted.map(|c| serde_json::from_str(&c)).transpose()?.unwrap_or_default();
        counted.sort();
        let entry_ok = entry.as_deref() == Some(doc.entry.0.as_slice());
        if !entry_ok || counted != doc.scopes || delivered != doc.scopes {
            mismatched.push(doc.doc);
        }
    }
    Ok(mismatched)
}

/// Re-derives the index from the documents: delivery scopes and entries of `derived` as their
/// bytes say, then every scope digest recomputed from scratch.
fn rebuild_index(store: &mut impl CheckStore, derived: &[DerivedIndex]) -> Result<(), StoreError> {
    for doc in derived {
        store.reindex(doc)?;
    }
    let mut digests: BTreeMap<String, ScopeDigest> = BTreeMap::new();
    store.scan_counted(&mut |entry, scopes| {
        let entry =
            DocEntry::from_slice(&entry).ok_or_else(|| StoreError::Backend("a digest entry is not 32 bytes".into()))?;
        for scope in serde_json::from_str::<Vec<String>>(&scopes)? {
            digests.entry(scope).or_default().add(&entry);
        }
        Ok(())
    })?;
    store.replace_digests(&digests)
}

/// Rebuilds one document from its stored changes; returns the changes it quarantined, or why
/// it could not be rebuilt (nothing is changed then).
fn rebuild(store: &mut impl CheckStore, id: DocId, now: Millis) -> Result<Result<Vec<Problem>, String>, StoreError> {
    let rows = store.changes_of(id)?;
    let mut rebuilt = AutoCommit::new();
    let mut index = ChangeIndex::default();
    let mut bad: Vec<Problem> = Vec::new();
    let mut waiting: Vec<(String, Vec<u8>)> = rows;
    // Accepted order is causal order, but go round until nothing more applies, in case an
    // earlier change was quarantined and a later one can still stand on the rest.
    loop {
        let mut progressed = false;
        let mut still_waiting = Vec::new();
        for (hash, bytes) in waiting {
            let header = match inspect_change(&bytes, &STORED_CHANGE_LIMITS) {
                Ok(header) => header,
                Err(e) => {
                    bad.push(Problem { doc: id, change: Some(hash), reason: e.to_string() });
                    continue;
                }
            };
            if index.contains(&header.hash) {
                continue;
            }
            if let Err(e) = index.check(&header) {
                if matches!(e, gridlink_shared::change_bytes::ContextRefusal::MissingDependencies(_)) {
                    still_waiting.push((hash, bytes));
                } else {
                    bad.push(Problem { doc: id, change: Some(hash), reason: e.to_string() });
                }
                continue;
            }
            let applied = doc::guarded("applying a stored change", || {
                let mut candidate = rebuilt.clone();
                candidate.apply_changes([doc::parse_change(&bytes)?])?;
                doc::load(&candidate.save())?;
                Ok(candidate)
            });
            match applied {
                Ok(candidate) => {
                    rebuilt = candidate;
                    index.record(&header);
                    progressed = true;
                }
                Err(e) => bad.push(Problem { doc: id, change: Some(hash), reason: e.to_string() }),
            }
        }
        waiting = still_waiting;
        if !progressed || waiting.is_empty() {
            break;
        }
    }
    // Changes still waiting stand on a quarantined change, or on history compacted away.
    let quarantined_hashes: BTreeSet<&str> = bad.iter().filter_map(|p| p.change.as_deref()).collect();
    if !waiting.is_empty() && quarantined_hashes.is_empty() {
        return Ok(Err(format!(
            "{} stored change(s) depend on history that was compacted away; restore a backup from before the damage",
            waiting.len()
        )));
    }
    for (hash, _) in waiting {
        bad.push(Problem { doc: id, change: Some(hash), reason: "depends on a quarantined change".into() });
    }
    let any = match doc::guarded("reading the rebuilt document", || doc::read_any(&rebuilt)) {
        Ok(any) if any.doc_id() == id => any,
        Ok(other) => return Ok(Err(format!("the rebuilt document says it is {}", other.doc_id()))),
        Err(e) => return Ok(Err(format!("the rebuilt document does not read: {e}"))),
    };
    let saved = rebuilt.save();
    for problem in &bad {
        store.quarantine(problem.change.as_deref().unwrap_or_default(), &problem.reason, now)?;
    }
    store.write_doc(&any, &saved, now)?;
    announce_repair(store, id)?;
    Ok(Ok(bad))
}

/// Appends a log entry to every scope of the document, marked so that whoever pulls it also
/// receives the document whole. The entry carries the document's last sound change (already
/// held by most devices, so applying it is a no-op).
fn announce_repair(store: &mut impl CheckStore, id: DocId) -> Result<(), StoreError> {
    let Some(last) = store.last_change(id)? else {
        return Ok(()); // nothing left to announce with: devices repair on their own request
    };
    for scope in store.delivery_scopes(id)? {
        store.append_repair(scope, &last, id)?;
    }
    Ok(())
}

/// SQLite's side of [`check`], on one `BEGIN IMMEDIATE` transaction: every other writer
/// waits until it commits.
struct SqliteCheck<'a> {
    conn: &'a Connection,
    log: LogAppender,
}

impl CheckStore for SqliteCheck<'_> {
    fn stored_count(&mut self) -> Result<usize, StoreError> {
        Ok(self.conn.query_row("SELECT (SELECT COUNT(*) FROM docs) + (SELECT COUNT(*) FROM changes)", [], |r| {
            r.get::<_, i64>(0)
        })? as usize)
    }

    fn scan_docs(&mut self, visit: &mut dyn FnMut(DocId, Vec<u8>) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare("SELECT id, bytes FROM docs ORDER BY id")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            visit(parse_id(&row.get::<_, String>(0)?)?, row.get(1)?)?;
        }
        Ok(())
    }

    fn scan_changes(
        &mut self,
        visit: &mut dyn FnMut(String, DocId, Vec<u8>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare("SELECT hash, doc_id, bytes FROM changes ORDER BY rowid")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            visit(row.get(0)?, parse_id(&row.get::<_, String>(1)?)?, row.get(2)?)?;
        }
        Ok(())
    }

    fn indexed(&mut self, id: DocId) -> Result<Indexed, StoreError> {
        let id = id.to_string();
        let (entry, counted) = self
            .conn
            .prepare_cached("SELECT digest_entry, digest_scopes FROM docs WHERE id = ?1")?
            .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let mut stmt = self.conn.prepare_cached("SELECT scope FROM doc_scopes WHERE doc_id = ?1 ORDER BY scope")?;
        let delivered = stmt.query_map([&id], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok((entry, counted, delivered))
    }

    fn reindex(&mut self, doc: &DerivedIndex) -> Result<(), StoreError> {
        let id = doc.doc.to_string();
        self.conn.prepare_cached("DELETE FROM doc_scopes WHERE doc_id = ?1")?.execute([&id])?;
        for scope in &doc.scopes {
            self.conn
                .prepare_cached("INSERT INTO doc_scopes (scope, doc_id) VALUES (?1, ?2)")?
                .execute(params![scope, id])?;
        }
        self.conn
            .prepare_cached("UPDATE docs SET digest_entry = ?1, digest_scopes = ?2 WHERE id = ?3")?
            .execute(params![doc.entry.0.as_slice(), serde_json::to_string(&doc.scopes)?, id])?;
        Ok(())
    }

    fn scan_counted(
        &mut self,
        visit: &mut dyn FnMut(Vec<u8>, String) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT digest_entry, digest_scopes FROM docs WHERE digest_entry IS NOT NULL AND digest_scopes IS NOT NULL",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            visit(row.get(0)?, row.get(1)?)?;
        }
        Ok(())
    }

    fn replace_digests(&mut self, digests: &BTreeMap<String, ScopeDigest>) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM scope_digests", [])?;
        for (scope, digest) in digests {
            self.conn.execute(
                "INSERT INTO scope_digests (scope, doc_count, xor) VALUES (?1, ?2, ?3)",
                params![scope, digest.count as i64, digest.xor.as_slice()],
            )?;
        }
        Ok(())
    }

    fn changes_of(&mut self, id: DocId) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT hash, bytes FROM changes WHERE doc_id = ?1 ORDER BY rowid")?;
        Ok(stmt.query_map([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?)
    }

    fn quarantine(&mut self, hash: &str, reason: &str, now: Millis) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO quarantine (hash, doc_id, bytes, actor, accepted_at, reason, quarantined_at)
             SELECT hash, doc_id, bytes, actor, accepted_at, ?2, ?3 FROM changes WHERE hash = ?1",
            params![hash, reason, now],
        )?;
        self.conn.execute("DELETE FROM changes WHERE hash = ?1", [hash])?;
        Ok(())
    }

    fn write_doc(&mut self, any: &AnyDoc, bytes: &[u8], now: Millis) -> Result<(), StoreError> {
        write_doc(self.conn, any, bytes, now)
    }

    fn last_change(&mut self, id: DocId) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT hash FROM changes WHERE doc_id = ?1 ORDER BY rowid DESC LIMIT 1",
                [id.to_string()],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn delivery_scopes(&mut self, id: DocId) -> Result<Vec<Scope>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT scope FROM doc_scopes WHERE doc_id = ?1")?;
        let scopes: Vec<String> = stmt.query_map([id.to_string()], |r| r.get(0))?.collect::<Result<_, _>>()?;
        scopes.iter().map(|s| s.parse().map_err(|e| StoreError::Backend(format!("stored scope: {e}")))).collect()
    }

    fn append_repair(&mut self, scope: Scope, hash: &str, id: DocId) -> Result<(), StoreError> {
        let seq = self.log.append(self.conn, scope, hash, id)?;
        self.conn.execute(
            "INSERT INTO repair_marks (scope, seq, doc_id) VALUES (?1, ?2, ?3)",
            params![scope.to_string(), seq, id.to_string()],
        )?;
        Ok(())
    }
}

impl SqliteStore {
    /// Checks every stored document and change; with `repair`, mends what it can in one
    /// transaction. `progress(done, total)` is called as documents and changes are checked.
    pub fn check(
        &self,
        repair: bool,
        now: Millis,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<CheckReport, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let report = check(&mut SqliteCheck { conn: &tx, log: LogAppender::default() }, repair, now, progress)?;
            tx.commit()?;
            Ok(report)
        })
    }
}
