//! The pull half of a sync: scopes added and removed, the page of changes or snapshots after
//! each cursor (capped in bytes, at least one item so a sync always makes progress), the new
//! cursors, repairs and reference data, and divergence detection: the digest of every scope
//! whose page is complete, and the answers to the request's verify lists (`store/digest.rs`).

use std::collections::BTreeSet;

use gridlink_shared::digest::ScopeDigest;
use gridlink_shared::protocol::{
    Cursor, DEFAULT_PAGE_BYTES, DocSnapshot, Integrity, MAX_PAGE_BYTES, PROTOCOL_VERSION, PullItem, SyncRequest,
    SyncResponse,
};
use gridlink_shared::time::Millis;
use gridlink_shared::{DocId, DocType, Roster, Scope};
use rusqlite::{Connection, OptionalExtension};

use super::push::Pushed;
use super::sqlite::{parse_code, parse_id};
use super::{AuthedDevice, StoreError, digest, roster};

/// A stored document as a snapshot query returns it (id and type as stored text).
pub(super) struct SnapshotRow {
    pub id: String,
    pub doc_type: String,
    pub bytes: Vec<u8>,
}

/// One scope-log entry with what the page needs of its change: `bytes` and `actor` are `None`
/// for a change no longer stored (quarantined by a repair); `repair` when a repair mark asks
/// to send the document whole.
pub(super) struct LogRow {
    pub seq: u64,
    pub doc_id: String,
    pub doc_type: String,
    pub bytes: Option<Vec<u8>>,
    pub actor: Option<String>,
    pub repair: bool,
}

/// A document delivered to a scope: its id (text) and digest entry.
pub(super) type EntryRow = (String, Option<Vec<u8>>);

/// What the pull half reads, from any backend. Reads only: the page is built from one
/// consistent view (SQLite: the sync's transaction; PostgreSQL: a read-only snapshot). The
/// visitors return `false` to stop the scan once the page is full.
pub(super) trait PullSource {
    /// The last sequence number of a scope's log (0 when it never had one); compaction never
    /// lowers it.
    fn scope_head(&mut self, scope: Scope) -> Result<u64, StoreError>;
    /// The compaction point of a scope: cursors below it get snapshots.
    fn scope_floor(&mut self, scope: Scope) -> Result<u64, StoreError>;
    fn scope_digest(&mut self, scope: Scope) -> Result<ScopeDigest, StoreError>;
    /// The documents delivered to `scope` with ids after `after`, in id order.
    fn snapshots(
        &mut self,
        scope: Scope,
        after: Option<DocId>,
        visit: &mut dyn FnMut(SnapshotRow) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
    /// The log entries of `scope` after `seq`, in order.
    fn log_after(
        &mut self,
        scope: Scope,
        seq: u64,
        visit: &mut dyn FnMut(LogRow) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
    /// The scopes a document is delivered to, as stored text.
    fn doc_scopes(&mut self, id: DocId) -> Result<Vec<String>, StoreError>;
    /// A document's type (stored text) and saved bytes.
    fn stored_copy(&mut self, id: DocId) -> Result<Option<(String, Vec<u8>)>, StoreError>;
    /// Every document delivered to `scope` (id as text, in id order) with its digest entry.
    fn scope_entries(&mut self, scope: Scope) -> Result<Vec<EntryRow>, StoreError>;
    fn reference_version(&mut self) -> Result<u64, StoreError>;
    /// The whole roster, for the reference data.
    fn roster(&mut self) -> Result<Roster, StoreError>;
}

/// The SQLite side of the pull: queries on the sync's transaction.
pub(super) struct SqlitePull<'a>(pub &'a Connection);

impl PullSource for SqlitePull<'_> {
    fn scope_head(&mut self, scope: Scope) -> Result<u64, StoreError> {
        super::push::scope_head(self.0, scope)
    }

    fn scope_floor(&mut self, scope: Scope) -> Result<u64, StoreError> {
        Ok(self
            .0
            .prepare_cached("SELECT floor FROM scope_floor WHERE scope = ?1")?
            .query_row([scope.to_string()], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    fn scope_digest(&mut self, scope: Scope) -> Result<ScopeDigest, StoreError> {
        digest::scope_digest(self.0, scope)
    }

    fn snapshots(
        &mut self,
        scope: Scope,
        after: Option<DocId>,
        visit: &mut dyn FnMut(SnapshotRow) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT d.id, d.doc_type, d.bytes FROM doc_scopes s JOIN docs d ON d.id = s.doc_id
             WHERE s.scope = ?1 AND s.doc_id > ?2 ORDER BY s.doc_id",
        )?;
        let start = after.map(|a| a.to_string()).unwrap_or_default();
        let mut rows = stmt.query(rusqlite::params![scope.to_string(), start])?;
        while let Some(row) = rows.next()? {
            if !visit(SnapshotRow { id: row.get(0)?, doc_type: row.get(1)?, bytes: row.get(2)? })? {
                break;
            }
        }
        Ok(())
    }

    fn log_after(
        &mut self,
        scope: Scope,
        seq: u64,
        visit: &mut dyn FnMut(LogRow) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT l.seq, l.doc_id, d.doc_type, c.bytes, c.actor, m.doc_id IS NOT NULL
             FROM scope_log l JOIN docs d ON d.id = l.doc_id
             LEFT JOIN changes c ON c.hash = l.change_hash
             LEFT JOIN repair_marks m ON m.scope = l.scope AND m.seq = l.seq
             WHERE l.scope = ?1 AND l.seq > ?2 ORDER BY l.seq",
        )?;
        let mut rows = stmt.query(rusqlite::params![scope.to_string(), seq])?;
        while let Some(row) = rows.next()? {
            let entry = LogRow {
                seq: row.get(0)?,
                doc_id: row.get(1)?,
                doc_type: row.get(2)?,
                bytes: row.get(3)?,
                actor: row.get(4)?,
                repair: row.get(5)?,
            };
            if !visit(entry)? {
                break;
            }
        }
        Ok(())
    }

    fn doc_scopes(&mut self, id: DocId) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.0.prepare_cached("SELECT scope FROM doc_scopes WHERE doc_id = ?1")?;
        Ok(stmt.query_map([id.to_string()], |r| r.get(0))?.collect::<Result<_, _>>()?)
    }

    fn stored_copy(&mut self, id: DocId) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .0
            .prepare_cached("SELECT doc_type, bytes FROM docs WHERE id = ?1")?
            .query_row([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    fn scope_entries(&mut self, scope: Scope) -> Result<Vec<EntryRow>, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT d.id, d.digest_entry FROM doc_scopes s JOIN docs d ON d.id = s.doc_id
             WHERE s.scope = ?1 ORDER BY s.doc_id",
        )?;
        Ok(stmt.query_map([scope.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?)
    }

    fn reference_version(&mut self) -> Result<u64, StoreError> {
        roster::reference_version(self.0)
    }

    fn roster(&mut self) -> Result<Roster, StoreError> {
        roster::load_roster(self.0)
    }
}

/// Bytes left on the page.
struct Page {
    limit: u64,
    used: u64,
    items: Vec<PullItem>,
    more: bool,
    /// Documents a repair mark on this page asks to send whole.
    repairs: BTreeSet<DocId>,
}

impl Page {
    /// Whether an item of `len` bytes goes on this page; a page always takes its first item.
    fn fits(&self, len: usize) -> bool {
        self.items.is_empty() || self.used + len as u64 <= self.limit
    }

    fn push(&mut self, item: PullItem) {
        self.used += item.bytes().len() as u64;
        self.items.push(item);
    }
}

/// Where one scope's transfer stands while the page is filled.
enum Position {
    /// Sending snapshots of documents after `after` (in id order); the log resumes at `upto`.
    Snapshots { upto: u64, after: Option<DocId> },
    /// Sending logged changes after `seq`.
    Log { seq: u64 },
}

/// Builds the response, inside the same SQLite transaction as the push.
pub(super) fn respond(
    conn: &Connection,
    device: &AuthedDevice,
    request: &SyncRequest,
    pushed: Pushed,
    now: Millis,
) -> Result<SyncResponse, StoreError> {
    respond_from(&mut SqlitePull(conn), device, request, pushed, now)
}

/// Builds the response from any backend's view.
pub(super) fn respond_from(
    conn: &mut impl PullSource,
    device: &AuthedDevice,
    request: &SyncRequest,
    pushed: Pushed,
    now: Millis,
) -> Result<SyncResponse, StoreError> {
    let held: BTreeSet<Scope> = device.principal.scopes.iter().copied().collect();
    let scopes_added: Vec<Scope> = held.iter().filter(|s| !request.cursors.contains_key(s)).copied().collect();
    let scopes_removed: Vec<Scope> = request.cursors.keys().filter(|s| !held.contains(s)).copied().collect();

    let limit = request.page_bytes.unwrap_or(DEFAULT_PAGE_BYTES).clamp(1, MAX_PAGE_BYTES);
    let mut page = Page { limit, used: 0, items: Vec::new(), more: false, repairs: BTreeSet::new() };
    let mut cursors = std::collections::BTreeMap::new();
    let mut integrity = Integrity::default();
    for scope in &held {
        let cursor = request.cursors.get(scope).copied().unwrap_or(Cursor::Start);
        let cursor = pull_scope(conn, *scope, cursor, &device.actor, &mut page)?;
        // The page is complete for this scope when its cursor reached the log head: the
        // device then holds what the digest counts (once it applied this page).
        if matches!(cursor, Cursor::Seq { seq } if seq == conn.scope_head(*scope)?) {
            integrity.digests.insert(*scope, conn.scope_digest(*scope)?);
        }
        cursors.insert(*scope, cursor);
    }

    let mut repairs = Vec::new();
    let repair_ids: BTreeSet<DocId> =
        pushed.rejected_docs.iter().chain(&request.repair).chain(&page.repairs).copied().collect();
    for id in repair_ids.difference(&pushed.damaged_docs) {
        let id = *id;
        if let Some(snapshot) = readable_snapshot(conn, id, &held)? {
            repairs.push(snapshot);
        }
    }
    // Verify lists: the copies that differ share what is left of the page.
    let skip: BTreeSet<DocId> = repair_ids.union(&pushed.damaged_docs).copied().collect();
    let used = page.used + repairs.iter().map(|r| r.bytes.len() as u64).sum::<u64>();
    let verified = digest::answer_verify(conn, &held, request, &skip, page.limit.saturating_sub(used))?;
    repairs.extend(verified.repairs);
    integrity.verified = verified.answers;

    let version = conn.reference_version()?;
    let reference = (request.reference_version != Some(version))
        .then(|| Ok::<_, StoreError>(roster::reference_from(&conn.roster()?, &device.principal, version)))
        .transpose()?;

    Ok(SyncResponse {
        protocol: PROTOCOL_VERSION,
        server_time: now,
        acks: pushed.acks,
        items: page.items,
        cursors,
        more: page.more,
        scopes_added,
        scopes_removed,
        repairs,
        reference,
        integrity,
        compact_acks: None,
    })
}

/// Fills the page from one scope and returns the scope's new cursor.
/// Changes signed by `own_actor` (the requesting device) go back as [`PullItem::Echo`]: the
/// device has them already, so a month of offline visits is not downloaded again.
fn pull_scope(
    conn: &mut impl PullSource,
    scope: Scope,
    cursor: Cursor,
    own_actor: &str,
    page: &mut Page,
) -> Result<Cursor, StoreError> {
    let mut position = match cursor {
        Cursor::Start => Position::Snapshots { upto: conn.scope_head(scope)?, after: None },
        Cursor::Snapshotting { upto, after } => {
            // The log resumes at `upto` after the snapshots: it must still be there (not
            // compacted away meanwhile) and must not be past this server's head.
            if upto < conn.scope_floor(scope)? || upto > conn.scope_head(scope)? {
                tracing::warn!(%scope, upto, "snapshot cursor outside the log; restarting the scope");
                page.more = true;
                return Ok(Cursor::Start);
            }
            Position::Snapshots { upto, after: Some(after) }
        }
        Cursor::Seq { seq } => {
            let head = conn.scope_head(scope)?;
            if seq < conn.scope_floor(scope)? || seq > head {
                // History below the compaction point is gone, or the device is ahead of this
                // server (restored from a backup): start the scope over with snapshots. The
                // cursor goes back to Start on this page and snapshots follow on the next,
                // so every page still continues the device's sequence without a gap.
                tracing::warn!(%scope, seq, head, "cursor outside the log; restarting the scope with snapshots");
                page.more = true;
                return Ok(Cursor::Start);
            }
            Position::Log { seq }
        }
    };

    if let Position::Snapshots { upto, after } = &mut position {
        let mut finished = true;
        conn.snapshots(scope, *after, &mut |row| {
            if !page.fits(row.bytes.len()) {
                page.more = true;
                finished = false;
                return Ok(false);
            }
            let doc: DocId = parse_id(&row.id)?;
            let doc_type: DocType = parse_code(&row.doc_type)?;
            page.push(PullItem::Snapshot { scope, doc, doc_type, bytes: row.bytes });
            *after = Some(doc);
            Ok(true)
        })?;
        if !finished {
            return Ok(match after {
                Some(after) => Cursor::Snapshotting { upto: *upto, after: *after },
                None => cursor,
            });
        }
        position = Position::Log { seq: *upto };
    }

    let Position::Log { mut seq } = position else { unreachable!("snapshots finished above") };
    // A change that `check --repair` quarantined keeps its log entries (the log stays gapless);
    // they go out as byte-less placeholders. A repair mark also sends the document whole.
    conn.log_after(scope, seq, &mut |row| {
        let own = row.bytes.is_none() || row.actor.as_deref() == Some(own_actor);
        let bytes: Vec<u8> = if own { Vec::new() } else { row.bytes.unwrap_or_default() };
        if !page.fits(bytes.len()) {
            page.more = true;
            return Ok(false);
        }
        let next = row.seq;
        let doc: DocId = parse_id(&row.doc_id)?;
        if row.repair {
            page.repairs.insert(doc);
        }
        if own {
            page.push(PullItem::Echo { scope, seq: next, doc });
        } else {
            let doc_type: DocType = parse_code(&row.doc_type)?;
            page.push(PullItem::Change { scope, seq: next, doc, doc_type, bytes });
        }
        seq = next;
        Ok(true)
    })?;
    Ok(Cursor::Seq { seq })
}

/// The server's copy of a document, if `held` scopes may read it.
fn readable_snapshot(
    conn: &mut impl PullSource,
    id: DocId,
    held: &BTreeSet<Scope>,
) -> Result<Option<DocSnapshot>, StoreError> {
    let scopes = conn.doc_scopes(id)?;
    let readable = scopes.iter().filter_map(|s| s.parse::<Scope>().ok()).any(|s| held.contains(&s));
    if !readable {
        return Ok(None);
    }
    conn.stored_copy(id)?
        .map(|(doc_type, bytes)| Ok(DocSnapshot { doc: id, doc_type: parse_code(&doc_type)?, bytes }))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_always_takes_its_first_item_then_respects_the_cap() {
        let item = |n: usize| PullItem::Snapshot {
            scope: Scope::Grid(gridlink_shared::GridId::from_u128(1)),
            doc: DocId::from_u128(n as u128),
            doc_type: DocType::Household,
            bytes: vec![0; n],
        };
        let mut page = Page { limit: 100, used: 0, items: Vec::new(), more: false, repairs: BTreeSet::new() };
        assert!(page.fits(500), "an oversized first item still goes in");
        page.push(item(500));
        assert!(!page.fits(1));
        let mut page = Page { limit: 100, used: 0, items: Vec::new(), more: false, repairs: BTreeSet::new() };
        page.push(item(60));
        assert!(page.fits(40));
        assert!(!page.fits(41));
    }
}
