//! `gridlink-server compact`, for both backends: each scope log keeps its newest `keep`
//! entries, the compaction point (`scope_floor`) moves up to the last entry removed, and the
//! changes no log refers to any more are dropped. The decision is here ([`compact`]); the
//! reads and deletes are the backend's ([`CompactTarget`]), in one transaction.
//!
//! What keeps the phones' cursors sound (see `store/pull.rs`): a cursor below a scope's floor
//! gets snapshots instead of the removed history, one at or above it reads on after it. So
//! the floor and the deletion commit together, the floor never goes down, and the head a
//! floor is cut from is the last entry *committed* in the log, never a number handed out to
//! a push still in flight (PostgreSQL's `scope_heads` may be ahead of it): every entry at or
//! below the floor is then removed, and the log stays gapless above it. Log numbers are
//! never reused: the head counts on past the floor (`push::scope_head`, `scope_heads`).

use rusqlite::{Connection, TransactionBehavior, params};

use super::{SqliteStore, StoreError};

/// What compaction reads and deletes, inside one transaction of its backend.
pub(super) trait CompactTarget {
    /// Each scope's last committed log entry.
    fn log_heads(&mut self) -> Result<Vec<(String, u64)>, StoreError>;
    /// Deletes the scope's entries up to `floor` and raises its floor to it (never lowers
    /// it); returns the entries deleted.
    fn cut(&mut self, scope: &str, floor: u64) -> Result<usize, StoreError>;
    /// Deletes the changes no log entry refers to; returns how many. Such a change lives on
    /// inside its document's saved bytes, where a re-push of it is still found a duplicate.
    fn drop_unlogged_changes(&mut self) -> Result<usize, StoreError>;
}

/// Compacts every scope log to its newest `keep` entries. Returns (log entries removed,
/// changes removed).
pub(super) fn compact(target: &mut impl CompactTarget, keep: u64) -> Result<(usize, usize), StoreError> {
    let mut entries = 0;
    for (scope, head) in target.log_heads()? {
        let floor = head.saturating_sub(keep);
        if floor > 0 {
            entries += target.cut(&scope, floor)?;
        }
    }
    Ok((entries, target.drop_unlogged_changes()?))
}

struct SqliteCompact<'a>(&'a Connection);

impl CompactTarget for SqliteCompact<'_> {
    fn log_heads(&mut self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self.0.prepare("SELECT scope, MAX(seq) FROM scope_log GROUP BY scope")?;
        Ok(stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?)
    }

    fn cut(&mut self, scope: &str, floor: u64) -> Result<usize, StoreError> {
        let deleted = self.0.execute("DELETE FROM scope_log WHERE scope = ?1 AND seq <= ?2", params![scope, floor])?;
        self.0.execute(
            "INSERT INTO scope_floor (scope, floor) VALUES (?1, ?2)
             ON CONFLICT (scope) DO UPDATE SET floor = MAX(floor, excluded.floor)",
            params![scope, floor],
        )?;
        Ok(deleted)
    }

    fn drop_unlogged_changes(&mut self) -> Result<usize, StoreError> {
        Ok(self.0.execute(
            "DELETE FROM changes WHERE NOT EXISTS (SELECT 1 FROM scope_log l WHERE l.change_hash = changes.hash)",
            [],
        )?)
    }
}

impl SqliteStore {
    /// Compacts every scope log, keeping its last `keep` entries. Devices whose cursor falls
    /// below the new floor get snapshots at their next sync instead of the old history.
    /// Returns (log entries removed, changes removed).
    pub fn compact(&self, keep: u64) -> Result<(usize, usize), StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let removed = compact(&mut SqliteCompact(&tx), keep)?;
            tx.commit()?;
            Ok(removed)
        })
    }
}
