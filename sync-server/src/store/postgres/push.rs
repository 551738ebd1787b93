//! The PostgreSQL side of the push executor (`store/push.rs` decides, this stores), and the
//! document write with its digest update.
//!
//! Several server processes may push at once, so the push transaction (READ COMMITTED) takes
//! its locks in one global order, which rules out deadlocks between pushers:
//!
//! 1. **Documents**, before anything is read: a transaction-scoped advisory lock per document
//!    the request pushes to (hashed into [`DOC_LOCK_SLOTS`] keys, taken in ascending order).
//!    The server's copy is then read after any other push to it committed, so no change is
//!    applied to a stale copy, and a change that another server stored meanwhile is found
//!    (in `changes` or in the document itself) and acked as a duplicate: the same request
//!    reaching two servers at once is stored once. The unique key on `changes.hash` is the
//!    last guard; a violation aborts the transaction and the phone's retry is a duplicate.
//! 2. **Log counters**, after every change is decided: per scope, in scope order, one
//!    `UPDATE` of the scope's `scope_heads` row hands out the next block of sequence numbers
//!    and keeps the row locked until commit. The numbers are therefore gapless, and a scope's
//!    entries become visible in the order of their numbers: a later number is only handed out
//!    after the transaction holding the earlier one committed, so a reader that sees seq n
//!    also sees every seq below n and never skips a change that commits later with a lower
//!    number. (A SEQUENCE would leave gaps on rollback and commit out of order; an advisory
//!    lock per scope would work too, but the counter row is also where the head is read.)
//! 3. **Digest rows** of the scopes the documents are counted in, when the documents are
//!    written (in document order): covered by the counter locks of the same scopes.
//!
//! Pull-only syncs take none of these.

use std::collections::BTreeMap;

use gridlink_shared::digest::{DocEntry, ScopeDigest};
use gridlink_shared::time::Millis;
use gridlink_shared::{AnyDoc, DocId, Scope};
use postgres::{GenericClient, Transaction};

use crate::store::digest::{self, Counted, DigestRows};
use crate::store::push::{LostScope, PushTarget, Refusal, SCOPE_GRACE_MS, StoredChange};
use crate::store::{AuthedDevice, StoreError};

/// Document locks are hashed into this many keys: a request touching many documents takes at
/// most this many locks (the shared lock table is finite); a collision only serializes two
/// pushes that did not need it.
const DOC_LOCK_SLOTS: u32 = 4096;

/// First key of the advisory locks on documents (the two-key form: class, slot).
const DOC_LOCK_CLASS: i32 = 0x6764; // "gd"

/// The push executor's PostgreSQL target, on the push transaction.
pub(super) struct PgPush<'a, 'b> {
    tx: &'a mut Transaction<'b>,
    /// Log entries of accepted changes, numbered by [`Self::number_queued_entries`].
    queue: Vec<(Scope, String, DocId)>,
}

impl<'a, 'b> PgPush<'a, 'b> {
    pub fn new(tx: &'a mut Transaction<'b>) -> Self {
        PgPush { tx, queue: Vec::new() }
    }

    pub fn tx(&mut self) -> &mut Transaction<'b> {
        self.tx
    }

    /// Locks the documents a request pushes to (see the module header, step 1).
    pub fn lock_documents(&mut self, docs: impl Iterator<Item = DocId>) -> Result<(), StoreError> {
        let mut slots: Vec<i32> = docs.map(doc_lock_slot).collect();
        slots.sort_unstable();
        slots.dedup();
        for slot in slots {
            self.tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&DOC_LOCK_CLASS, &slot])?;
        }
        Ok(())
    }

    pub fn insert_change(
        &mut self,
        hash: &str,
        doc: DocId,
        bytes: &[u8],
        actor: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO changes (hash, doc_id, bytes, actor, accepted_at) VALUES ($1, $2, $3, $4, $5)",
            &[&hash, &doc.to_string(), &bytes, &actor, &now],
        )?;
        Ok(())
    }

    pub fn queue_log_entry(&mut self, scope: Scope, hash: &str, doc: DocId) {
        self.queue.push((scope, hash.to_string(), doc));
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Numbers the queued entries (see the module header, step 2) and inserts them.
    pub fn number_queued_entries(&mut self) -> Result<(), StoreError> {
        let mut by_scope: BTreeMap<Scope, Vec<(String, DocId)>> = BTreeMap::new();
        for (scope, hash, doc) in self.queue.drain(..) {
            by_scope.entry(scope).or_default().push((hash, doc));
        }
        for (scope, entries) in by_scope {
            let key = scope.to_string();
            let count = entries.len() as i64;
            let head: i64 = self
                .tx
                .query_one(
                    "INSERT INTO scope_heads (scope, head) VALUES ($1, $2)
                     ON CONFLICT (scope) DO UPDATE SET head = scope_heads.head + excluded.head
                     RETURNING head",
                    &[&key, &count],
                )?
                .get(0);
            let insert =
                self.tx.prepare("INSERT INTO scope_log (scope, seq, change_hash, doc_id) VALUES ($1, $2, $3, $4)")?;
            for (i, (hash, doc)) in entries.iter().enumerate() {
                let seq = head - count + 1 + i as i64;
                self.tx.execute(&insert, &[&key, &seq, hash, &doc.to_string()])?;
            }
        }
        Ok(())
    }
}

fn doc_lock_slot(doc: DocId) -> i32 {
    // FNV-1a over the id's text: stable across processes and builds.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in doc.to_string().bytes() {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    (hash % DOC_LOCK_SLOTS) as i32
}

impl PushTarget for PgPush<'_, '_> {
    fn is_stored(&mut self, hash: &str) -> Result<bool, StoreError> {
        Ok(self.tx.query_opt("SELECT 1 FROM changes WHERE hash = $1", &[&hash])?.is_some())
    }

    fn doc_bytes(&mut self, id: DocId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tx.query_opt("SELECT bytes FROM docs WHERE id = $1", &[&id.to_string()])?.map(|r| r.get(0)))
    }

    fn lost_scopes(&mut self, device: &AuthedDevice, now: Millis) -> Result<Vec<LostScope>, StoreError> {
        let rows = self.tx.query(
            "SELECT scope, removed_at FROM scope_grace WHERE user_id = $1 AND removed_at >= $2 AND removed_at > $3",
            &[&device.principal.user.to_string(), &(now - SCOPE_GRACE_MS), &device.enrolled_at],
        )?;
        rows.iter()
            .map(|r| {
                let scope =
                    r.get::<_, &str>(0).parse().map_err(|e| StoreError::Backend(format!("stored scope: {e}")))?;
                Ok(LostScope { scope, removed_at: r.get(1) })
            })
            .collect()
    }

    fn store_accepted(&mut self, change: &StoredChange<'_>) -> Result<(), StoreError> {
        let StoredChange { device, request, pushed, hash, change_time, log_scopes, now } = *change;
        self.insert_change(hash, pushed.doc, &pushed.bytes, &device.actor, now)?;
        self.tx.execute(
            "INSERT INTO audit (change_hash, doc_id, user_id, device_id, server_time, device_time, change_time)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &hash,
                &pushed.doc.to_string(),
                &device.principal.user.to_string(),
                &device.device.to_string(),
                &now,
                &request.device_time,
                &change_time,
            ],
        )?;
        for scope in log_scopes {
            self.queue_log_entry(*scope, hash, pushed.doc);
        }
        Ok(())
    }

    fn audit_refusal(&mut self, refusal: &Refusal<'_>) -> Result<(), StoreError> {
        let Refusal { device, change, hash, code, message, now } = *refusal;
        self.tx.execute(
            "INSERT INTO refusals (change_hash, doc_id, user_id, device_id, code, message, bytes_len, server_time)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &hash,
                &change.doc.to_string(),
                &device.principal.user.to_string(),
                &device.device.to_string(),
                &code.code(),
                // The message may quote the phone's text; PostgreSQL text holds no NUL.
                &message.chars().take(500).map(|c| if c == '\0' { '\u{FFFD}' } else { c }).collect::<String>(),
                &(change.bytes.len() as i64),
                &now,
            ],
        )?;
        Ok(())
    }

    fn mark(&mut self) -> Result<(), StoreError> {
        Ok(self.tx.batch_execute("SAVEPOINT gridlink_push")?)
    }

    fn undo_to_mark(&mut self) -> Result<(), StoreError> {
        // Also undoes this push's facts generation (`SET LOCAL` is undone with the savepoint).
        self.tx.batch_execute("ROLLBACK TO SAVEPOINT gridlink_push")?;
        self.queue.clear();
        Ok(())
    }

    fn release_mark(&mut self) -> Result<(), StoreError> {
        Ok(self.tx.batch_execute("RELEASE SAVEPOINT gridlink_push")?)
    }

    fn finish_changes(&mut self) -> Result<(), StoreError> {
        self.number_queued_entries()
    }

    fn write_doc(&mut self, any: &AnyDoc, bytes: &[u8], now: Millis) -> Result<(), StoreError> {
        write_doc(self.tx, any, bytes, now)
    }
}

/// Writes a document's saved bytes, its delivery scopes, its digest entry and its query and
/// facts rows (`postgres/facts.rs`).
pub(super) fn write_doc(tx: &mut Transaction<'_>, any: &AnyDoc, bytes: &[u8], now: Millis) -> Result<(), StoreError> {
    let id = any.doc_id().to_string();
    let p = any.placement();
    tx.execute(
        "INSERT INTO docs (id, doc_type, bytes, street, community, grid, building, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id) DO UPDATE SET doc_type = excluded.doc_type, bytes = excluded.bytes,
            street = excluded.street, community = excluded.community, grid = excluded.grid,
            building = excluded.building, updated_at = excluded.updated_at",
        &[
            &id,
            &any.doc_type().code(),
            &bytes,
            &p.street.to_string(),
            &p.community.to_string(),
            &p.grid.to_string(),
            &p.building.map(|b| b.to_string()),
            &now,
        ],
    )?;
    tx.execute("DELETE FROM doc_scopes WHERE doc_id = $1", &[&id])?;
    for scope in any.scopes() {
        tx.execute("INSERT INTO doc_scopes (scope, doc_id) VALUES ($1, $2)", &[&scope.to_string(), &id])?;
    }
    let entry = digest::entry_of_saved(any.doc_id(), bytes)?;
    let scopes: Vec<String> = any.scopes().iter().map(Scope::to_string).collect();
    digest::count_in(&mut PgDigestRows(tx), &id, &entry, &scopes)?;
    super::facts::write(tx, any, now)
}

struct PgDigestRows<'a, 'b>(&'a mut Transaction<'b>);

impl DigestRows for PgDigestRows<'_, '_> {
    fn counted(&mut self, id: &str) -> Result<Counted, StoreError> {
        Ok(self
            .0
            .query_opt("SELECT digest_entry, digest_scopes FROM docs WHERE id = $1", &[&id])?
            .map(|r| (r.get(0), r.get(1))))
    }

    fn digest_for_update(&mut self, scope: &str) -> Result<ScopeDigest, StoreError> {
        read_digest(self.0, scope, true)
    }

    fn write_digest(&mut self, scope: &str, digest: &ScopeDigest) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT INTO scope_digests (scope, doc_count, xor) VALUES ($1, $2, $3)
             ON CONFLICT (scope) DO UPDATE SET doc_count = excluded.doc_count, xor = excluded.xor",
            &[&scope, &(digest.count as i64), &digest.xor.as_slice()],
        )?;
        Ok(())
    }

    fn set_counted(&mut self, id: &str, entry: &DocEntry, scopes_json: &str) -> Result<(), StoreError> {
        self.0.execute(
            "UPDATE docs SET digest_entry = $1, digest_scopes = $2 WHERE id = $3",
            &[&entry.0.as_slice(), &scopes_json, &id],
        )?;
        Ok(())
    }
}

/// A scope's running digest; `for_update` locks its row until commit.
pub(super) fn read_digest(
    client: &mut impl GenericClient,
    scope: &str,
    for_update: bool,
) -> Result<ScopeDigest, StoreError> {
    let sql = if for_update {
        "SELECT doc_count, xor FROM scope_digests WHERE scope = $1 FOR UPDATE"
    } else {
        "SELECT doc_count, xor FROM scope_digests WHERE scope = $1"
    };
    Ok(match client.query_opt(sql, &[&scope])? {
        Some(row) => {
            let xor: Vec<u8> = row.get(1);
            ScopeDigest {
                count: row.get::<_, i64>(0).max(0) as u64,
                xor: xor.try_into().map_err(|_| StoreError::Backend(format!("digest of {scope} is not 32 bytes")))?,
            }
        }
        None => ScopeDigest::default(),
    })
}
