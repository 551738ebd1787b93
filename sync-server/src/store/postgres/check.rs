//! `gridlink-server check [--repair]` on PostgreSQL: the checks and the repair are
//! `store/check.rs`'s ([`check`]); this is where they read and write ([`PgCheck`]).
//!
//! Other server processes keep serving while it runs. A plain check reads one consistent
//! snapshot (a read-only REPEATABLE READ transaction) and takes no lock. A repair first checks
//! that way, then, if there is anything to mend, checks again and mends in one transaction
//! that takes the pushers' locks in the pushers' order (`postgres/push.rs`): the document
//! locks of the documents it found bad, then `scope_heads` whole (EXCLUSIVE mode, which
//! every log write must pass and no read takes). A push to a document being rebuilt therefore
//! waits and then applies its change to the rebuilt copy, no push logs or counts a digest
//! while the digests are recounted, repair entries are numbered after every entry committed
//! before them, and phones keep pulling throughout.

use std::collections::BTreeMap;

use gridlink_shared::digest::ScopeDigest;
use gridlink_shared::time::Millis;
use gridlink_shared::{AnyDoc, DocId, Scope};
use postgres::{IsolationLevel, Transaction};

use super::PgStore;
use super::push::{PgPush, write_doc};
use crate::store::StoreError;
use crate::store::check::{CheckReport, CheckStore, Indexed, check};
use crate::store::digest::DerivedIndex;
use crate::store::sqlite::parse_id;

/// Rows per batch of a scan: whole documents, or changes.
const SCAN_BATCH: i64 = 256;

struct PgCheck<'a, 'b> {
    tx: &'a mut Transaction<'b>,
}

/// Accepted order on PostgreSQL: `changes` has no row id, so by acceptance time, then hash.
/// Repair does not depend on it (it goes round until nothing more applies).
const CHANGE_ORDER: &str = "accepted_at, hash COLLATE \"C\"";

impl CheckStore for PgCheck<'_, '_> {
    fn stored_count(&mut self) -> Result<usize, StoreError> {
        let n: i64 =
            self.tx.query_one("SELECT (SELECT COUNT(*) FROM docs) + (SELECT COUNT(*) FROM changes)", &[])?.get(0);
        Ok(n.max(0) as usize)
    }

    fn scan_docs(&mut self, visit: &mut dyn FnMut(DocId, Vec<u8>) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let query = self.tx.prepare("SELECT id, bytes FROM docs WHERE id > $1 ORDER BY id LIMIT $2")?;
        let mut last = String::new();
        loop {
            let rows = self.tx.query(&query, &[&last, &SCAN_BATCH])?;
            for row in &rows {
                last = row.get(0);
                visit(parse_id(&last)?, row.get(1))?;
            }
            if (rows.len() as i64) < SCAN_BATCH {
                return Ok(());
            }
        }
    }

    fn scan_changes(
        &mut self,
        visit: &mut dyn FnMut(String, DocId, Vec<u8>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let query = self.tx.prepare(&format!(
            "SELECT hash, doc_id, bytes, accepted_at FROM changes
             WHERE (accepted_at, hash COLLATE \"C\") > ($1, $2 COLLATE \"C\") ORDER BY {CHANGE_ORDER} LIMIT $3"
        ))?;
        let (mut at, mut hash) = (i64::MIN, String::new());
        loop {
            let rows = self.tx.query(&query, &[&at, &hash, &SCAN_BATCH])?;
            for row in &rows {
                (hash, at) = (row.get(0), row.get(3));
                visit(hash.clone(), parse_id(row.get::<_, &str>(1))?, row.get(2))?;
            }
            if (rows.len() as i64) < SCAN_BATCH {
                return Ok(());
            }
        }
    }

    fn indexed(&mut self, id: DocId) -> Result<Indexed, StoreError> {
        let id = id.to_string();
        let row = self.tx.query_one("SELECT digest_entry, digest_scopes FROM docs WHERE id = $1", &[&id])?;
        let delivered =
            self.tx.query("SELECT scope FROM doc_scopes WHERE doc_id = $1 ORDER BY scope COLLATE \"C\"", &[&id])?;
        Ok((row.get(0), row.get(1), delivered.iter().map(|r| r.get(0)).collect()))
    }

    fn reindex(&mut self, doc: &DerivedIndex) -> Result<(), StoreError> {
        let id = doc.doc.to_string();
        self.tx.execute("DELETE FROM doc_scopes WHERE doc_id = $1", &[&id])?;
        for scope in &doc.scopes {
            self.tx.execute("INSERT INTO doc_scopes (scope, doc_id) VALUES ($1, $2)", &[scope, &id])?;
        }
        self.tx.execute(
            "UPDATE docs SET digest_entry = $1, digest_scopes = $2 WHERE id = $3",
            &[&doc.entry.0.as_slice(), &serde_json::to_string(&doc.scopes)?, &id],
        )?;
        Ok(())
    }

    fn scan_counted(
        &mut self,
        visit: &mut dyn FnMut(Vec<u8>, String) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // Entries are 32 bytes: one query holds even a district's in memory easily.
        let rows = self.tx.query(
            "SELECT digest_entry, digest_scopes FROM docs WHERE digest_entry IS NOT NULL AND digest_scopes IS NOT NULL",
            &[],
        )?;
        rows.iter().try_for_each(|r| visit(r.get(0), r.get(1)))
    }

    fn replace_digests(&mut self, digests: &BTreeMap<String, ScopeDigest>) -> Result<(), StoreError> {
        self.tx.execute("DELETE FROM scope_digests", &[])?;
        for (scope, digest) in digests {
            self.tx.execute(
                "INSERT INTO scope_digests (scope, doc_count, xor) VALUES ($1, $2, $3)",
                &[scope, &(digest.count as i64), &digest.xor.as_slice()],
            )?;
        }
        Ok(())
    }

    fn changes_of(&mut self, id: DocId) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let rows = self.tx.query(
            &format!("SELECT hash, bytes FROM changes WHERE doc_id = $1 ORDER BY {CHANGE_ORDER}"),
            &[&id.to_string()],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn quarantine(&mut self, hash: &str, reason: &str, now: Millis) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO quarantine (hash, doc_id, bytes, actor, accepted_at, reason, quarantined_at)
             SELECT hash, doc_id, bytes, actor, accepted_at, $2, $3 FROM changes WHERE hash = $1
             ON CONFLICT (hash) DO NOTHING",
            &[&hash, &reason, &now],
        )?;
        self.tx.execute("DELETE FROM changes WHERE hash = $1", &[&hash])?;
        Ok(())
    }

    fn write_doc(&mut self, any: &AnyDoc, bytes: &[u8], now: Millis) -> Result<(), StoreError> {
        write_doc(self.tx, any, bytes, now)
    }

    fn last_change(&mut self, id: DocId) -> Result<Option<String>, StoreError> {
        Ok(self
            .tx
            .query_opt(
                "SELECT hash FROM changes WHERE doc_id = $1 ORDER BY accepted_at DESC, hash COLLATE \"C\" DESC LIMIT 1",
                &[&id.to_string()],
            )?
            .map(|r| r.get(0)))
    }

    fn delivery_scopes(&mut self, id: DocId) -> Result<Vec<Scope>, StoreError> {
        let rows = self.tx.query("SELECT scope FROM doc_scopes WHERE doc_id = $1", &[&id.to_string()])?;
        rows.iter()
            .map(|r| r.get::<_, &str>(0).parse().map_err(|e| StoreError::Backend(format!("stored scope: {e}"))))
            .collect()
    }

    fn append_repair(&mut self, scope: Scope, hash: &str, id: DocId) -> Result<(), StoreError> {
        // The next number of the scope's counter, as a push takes it (and under the table lock
        // the repair holds, after every entry committed before).
        let key = scope.to_string();
        let seq: i64 = self
            .tx
            .query_one(
                "INSERT INTO scope_heads (scope, head) VALUES ($1, 1)
                 ON CONFLICT (scope) DO UPDATE SET head = scope_heads.head + 1 RETURNING head",
                &[&key],
            )?
            .get(0);
        self.tx.execute(
            "INSERT INTO scope_log (scope, seq, change_hash, doc_id) VALUES ($1, $2, $3, $4)",
            &[&key, &seq, &hash, &id.to_string()],
        )?;
        self.tx.execute(
            "INSERT INTO repair_marks (scope, seq, doc_id) VALUES ($1, $2, $3)",
            &[&key, &seq, &id.to_string()],
        )?;
        Ok(())
    }
}

impl PgStore {
    /// Checks every stored document and change; with `repair`, mends what it can in one
    /// transaction (see the module header for how it runs beside serving processes).
    pub fn check(
        &self,
        repair: bool,
        now: Millis,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<CheckReport, StoreError> {
        let mut client = self.client()?;
        let found = {
            let mut tx =
                client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
            let report = check(&mut PgCheck { tx: &mut tx }, false, now, progress)?;
            tx.commit()?;
            report
        };
        let clean = found.bad_documents.is_empty() && found.bad_changes.is_empty() && found.index_mismatches.is_empty();
        if !repair || clean {
            return Ok(found);
        }
        let mut tx = client.transaction()?;
        let bad = found.bad_documents.iter().chain(&found.bad_changes).map(|p| p.doc);
        PgPush::new(&mut tx).lock_documents(bad)?;
        tx.execute("LOCK TABLE scope_heads IN EXCLUSIVE MODE", &[])?;
        let report = check(&mut PgCheck { tx: &mut tx }, true, now, progress)?;
        tx.commit()?;
        Ok(report)
    }
}
