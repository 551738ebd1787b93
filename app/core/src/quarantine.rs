//! Quarantine: documents whose bytes automerge cannot take.
//!
//! automerge 0.12 can panic on hostile or corrupt bytes: a change re-sent with only its `seq`
//! changed carries duplicate op ids, and a document holding it panics when it is loaded,
//! saved or written; a change whose `seq` is not the next for its actor panics when applied.
//! A store poisoned earlier, or a buggy server, can send the phone such bytes, so every
//! place the client hands pulled or stored bytes to automerge runs inside [`guarded`], which
//! turns a panic into an error (the default panic hook still prints the panic to stderr; no
//! global hook is installed).
//!
//! A document that fails there is **set aside** ([`set_aside`]): a row in the `quarantine`
//! table keeps the offending bytes and the reason (rows are never deleted, only marked
//! resolved); its previous good state, if any, stays in `docs` unchanged; its unsent changes
//! stay in the outbox; and it goes on the `repair_wanted` list, so the next sync asks the
//! server for its whole copy. While it is set aside, pulled items for it are skipped (the
//! repair brings them all), reads show the previous state, and writes are refused with
//! [`Error::Quarantined`]. A repair that loads cleanly resolves the entry ([`resolve`]); one
//! that is still poisoned keeps it set aside until the next sync asks again.

use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::AutoCommit;
use gridlink_shared::time::{Millis, now_millis};
use gridlink_shared::{DocError, DocId, GridDocument, doc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};
use crate::store;
use crate::views::QuarantinedDoc;

/// Runs `f`, turning a panic (automerge on bytes it cannot handle) into a
/// [`DocError::Panicked`] error, like [`gridlink_shared::doc::guarded`] but for work that
/// also touches the store.
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(Error::from(DocError::Panicked(format!(
            "panic: {}",
            gridlink_shared::doc::panic_message(payload.as_ref())
        )))),
    }
}

/// Runs `f` guarded inside a SQL savepoint of the caller's transaction: if it fails or
/// panics, every write it made is undone and the transaction goes on.
pub(crate) fn attempt<T>(conn: &Connection, f: impl FnOnce() -> Result<T>) -> Result<T> {
    conn.execute_batch("SAVEPOINT one_document")?;
    let outcome = guarded(f);
    match outcome {
        Ok(_) => conn.execute_batch("RELEASE one_document")?,
        Err(_) => conn.execute_batch("ROLLBACK TO one_document; RELEASE one_document")?,
    }
    outcome
}

/// Whether `error` means automerge could not take a document's bytes (corrupt bytes, an
/// automerge error, or a panic caught by [`guarded`]), as opposed to a schema mismatch, a
/// refused edit or a database error.
pub(crate) fn is_damage(error: &Error) -> bool {
    matches!(
        error,
        Error::Doc(e) if matches!(**e, DocError::Corrupt(_) | DocError::Automerge(_) | DocError::Panicked(_))
    )
}

/// Sets `id` aside: records the bytes automerge failed on and why, and asks for its repair.
/// The same bytes are recorded once while the document stays set aside.
pub(crate) fn set_aside(conn: &Connection, id: DocId, bytes: &[u8], reason: &str, now: Millis) -> Result<()> {
    tracing::warn!(doc = %id, %reason, "document set aside (quarantined); asking the server for a repair");
    let id = id.to_string();
    conn.execute(
        "INSERT INTO quarantine (doc, bytes, reason, quarantined_at)
         SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS
             (SELECT 1 FROM quarantine WHERE doc = ?1 AND bytes = ?2 AND resolved_at IS NULL)",
        params![id, bytes, reason, now],
    )?;
    conn.execute("INSERT OR IGNORE INTO repair_wanted (doc) VALUES (?1)", [&id])?;
    Ok(())
}

/// Sets `id` aside because its stored copy (`docs.bytes`) is what automerge failed on.
pub(crate) fn set_aside_stored(conn: &Connection, id: DocId, reason: &str, now: Millis) -> Result<()> {
    let bytes: Option<Vec<u8>> =
        conn.query_row("SELECT bytes FROM docs WHERE id = ?1", [id.to_string()], |r| r.get(0)).optional()?;
    set_aside(conn, id, &bytes.unwrap_or_default(), &format!("stored copy: {reason}"), now)
}

/// Whether `id` is set aside (an unresolved quarantine entry).
pub(crate) fn is_quarantined(conn: &Connection, id: DocId) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM quarantine WHERE doc = ?1 AND resolved_at IS NULL LIMIT 1", [id.to_string()], |_| {
            Ok(())
        })
        .optional()?
        .is_some())
}

/// Marks `id`'s open entries resolved (`repaired`, or `purged` when the document left the
/// device). Returns whether it was set aside.
pub(crate) fn resolve(conn: &Connection, id: DocId, resolution: &str, now: Millis) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE quarantine SET resolved_at = ?2, resolution = ?3 WHERE doc = ?1 AND resolved_at IS NULL",
        params![id.to_string(), now, resolution],
    )? > 0)
}

/// The documents set aside now.
pub(crate) fn open_docs(conn: &Connection) -> Result<std::collections::BTreeSet<DocId>> {
    let mut stmt = conn.prepare("SELECT DISTINCT doc FROM quarantine WHERE resolved_at IS NULL")?;
    let ids: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    ids.iter().map(|id| id.parse().map_err(|e| Error::Protocol(format!("set-aside document id {id}: {e}")))).collect()
}

/// Documents set aside now.
pub(crate) fn open_count(conn: &Connection) -> Result<usize> {
    Ok(conn
        .query_row("SELECT count(DISTINCT doc) FROM quarantine WHERE resolved_at IS NULL", [], |r| r.get::<_, i64>(0))?
        as usize)
}

/// Every quarantine entry, resolved ones included, oldest first.
pub(crate) fn entries(conn: &Connection) -> Result<Vec<QuarantinedDoc>> {
    let mut stmt =
        conn.prepare("SELECT doc, bytes, reason, quarantined_at, resolved_at, resolution FROM quarantine ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, Option<String>>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (doc, bytes, reason, quarantined_at, resolved_at, resolution) = row?;
        let doc = doc.parse().map_err(|e| Error::Corrupt(format!("quarantined document id: {e}")))?;
        out.push(QuarantinedDoc { doc, bytes, reason, quarantined_at, resolved_at, resolution });
    }
    Ok(out)
}

/// Loads and hydrates a stored document for a read or a write, automerge guarded.
///
/// Not held: [`Error::Quarantined`] if it was set aside (it arrived damaged), else
/// [`Error::NotFound`]. When automerge fails on the stored bytes the error is a damage
/// error ([`is_damage`]); pass the result through [`on_damage`] on a connection whose
/// writes are kept, so the document is set aside.
pub(crate) fn load_stored<T: GridDocument>(
    conn: &Connection,
    what: &'static str,
    id: DocId,
) -> Result<(AutoCommit, T)> {
    let Some(automerge_doc) = store::load_doc(conn, id)? else {
        return Err(if is_quarantined(conn, id)? {
            Error::Quarantined { what, id: id.to_string() }
        } else {
            Error::NotFound { what, id: id.to_string() }
        });
    };
    let value = guarded(|| Ok(doc::read::<T>(&automerge_doc)?))?;
    Ok((automerge_doc, value))
}

/// Sets `id` aside when `result` is automerge failing on its stored copy, and turns that
/// into [`Error::Quarantined`]; any other outcome passes through.
pub(crate) fn on_damage<T>(conn: &Connection, what: &'static str, id: DocId, result: Result<T>) -> Result<T> {
    match result {
        Err(e) if is_damage(&e) => {
            set_aside_stored(conn, id, &e.to_string(), now_millis())?;
            Err(Error::Quarantined { what, id: id.to_string() })
        }
        other => other,
    }
}

/// [`load_stored`] then [`on_damage`]: for reads, which write nothing else.
pub(crate) fn read_stored<T: GridDocument>(conn: &Connection, what: &'static str, id: DocId) -> Result<T> {
    on_damage(conn, what, id, load_stored::<T>(conn, what, id)).map(|(_, value)| value)
}
