//! The PostgreSQL side of the pull (`store/pull.rs` builds the page, this reads), on the
//! sync's read-only REPEATABLE READ transaction: every query of one page sees the same
//! snapshot, so the log head, the entries, the snapshots and the digests agree. Scans go in
//! keyset batches, so a page that fills early reads little more than it sends.

use gridlink_shared::digest::ScopeDigest;
use gridlink_shared::{DocId, Roster, Scope};
use postgres::Transaction;

use crate::store::StoreError;
use crate::store::pull::{EntryRow, LogRow, PullSource, SnapshotRow};

/// Rows per batch: snapshots are whole documents, log entries mostly small changes.
const SNAPSHOT_BATCH: i64 = 32;
const LOG_BATCH: i64 = 256;

pub(super) struct PgPull<'a, 'b> {
    tx: &'a mut Transaction<'b>,
}

impl<'a, 'b> PgPull<'a, 'b> {
    pub fn new(tx: &'a mut Transaction<'b>) -> Self {
        PgPull { tx }
    }
}

impl PullSource for PgPull<'_, '_> {
    fn scope_head(&mut self, scope: Scope) -> Result<u64, StoreError> {
        let head: Option<i64> = self
            .tx
            .query_opt("SELECT head FROM scope_heads WHERE scope = $1", &[&scope.to_string()])?
            .map(|r| r.get(0));
        Ok(head.unwrap_or(0).max(0) as u64)
    }

    fn scope_floor(&mut self, scope: Scope) -> Result<u64, StoreError> {
        let floor: Option<i64> = self
            .tx
            .query_opt("SELECT floor FROM scope_floor WHERE scope = $1", &[&scope.to_string()])?
            .map(|r| r.get(0));
        Ok(floor.unwrap_or(0).max(0) as u64)
    }

    fn scope_digest(&mut self, scope: Scope) -> Result<ScopeDigest, StoreError> {
        super::push::read_digest(self.tx, &scope.to_string(), false)
    }

    fn snapshots(
        &mut self,
        scope: Scope,
        after: Option<DocId>,
        visit: &mut dyn FnMut(SnapshotRow) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let key = scope.to_string();
        let mut last = after.map(|a| a.to_string()).unwrap_or_default();
        let query = self.tx.prepare(
            "SELECT d.id, d.doc_type, d.bytes FROM doc_scopes s JOIN docs d ON d.id = s.doc_id
             WHERE s.scope = $1 AND s.doc_id > $2 ORDER BY s.doc_id LIMIT $3",
        )?;
        loop {
            let rows = self.tx.query(&query, &[&key, &last, &SNAPSHOT_BATCH])?;
            let full = rows.len() as i64 == SNAPSHOT_BATCH;
            for row in rows {
                last = row.get(0);
                if !visit(SnapshotRow { id: last.clone(), doc_type: row.get(1), bytes: row.get(2) })? {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn log_after(
        &mut self,
        scope: Scope,
        seq: u64,
        visit: &mut dyn FnMut(LogRow) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let key = scope.to_string();
        let mut last = seq.min(i64::MAX as u64) as i64;
        let query = self.tx.prepare(
            "SELECT l.seq, l.doc_id, d.doc_type, c.bytes, c.actor, m.doc_id IS NOT NULL
             FROM scope_log l JOIN docs d ON d.id = l.doc_id
             LEFT JOIN changes c ON c.hash = l.change_hash
             LEFT JOIN repair_marks m ON m.scope = l.scope AND m.seq = l.seq
             WHERE l.scope = $1 AND l.seq > $2 ORDER BY l.seq LIMIT $3",
        )?;
        loop {
            let rows = self.tx.query(&query, &[&key, &last, &LOG_BATCH])?;
            let full = rows.len() as i64 == LOG_BATCH;
            for row in rows {
                last = row.get(0);
                let entry = LogRow {
                    seq: last as u64,
                    doc_id: row.get(1),
                    doc_type: row.get(2),
                    bytes: row.get(3),
                    actor: row.get(4),
                    repair: row.get(5),
                };
                if !visit(entry)? {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn doc_scopes(&mut self, id: DocId) -> Result<Vec<String>, StoreError> {
        Ok(self
            .tx
            .query("SELECT scope FROM doc_scopes WHERE doc_id = $1", &[&id.to_string()])?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn stored_copy(&mut self, id: DocId) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .tx
            .query_opt("SELECT doc_type, bytes FROM docs WHERE id = $1", &[&id.to_string()])?
            .map(|r| (r.get(0), r.get(1))))
    }

    fn scope_entries(&mut self, scope: Scope) -> Result<Vec<EntryRow>, StoreError> {
        Ok(self
            .tx
            .query(
                "SELECT d.id, d.digest_entry FROM doc_scopes s JOIN docs d ON d.id = s.doc_id
                 WHERE s.scope = $1 ORDER BY s.doc_id",
                &[&scope.to_string()],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn reference_version(&mut self) -> Result<u64, StoreError> {
        super::roster::reference_version(self.tx)
    }

    fn roster(&mut self) -> Result<Roster, StoreError> {
        super::roster::load_roster(self.tx)
    }
}
