//! The supervisors' rows. Whenever a document is written, its plain facts
//! ([`gridlink_shared::figures`]: one row per household, per visit and per case) are written in
//! the same transaction, keyed by street, community and grid, so the console and the ledgers
//! fetch a scope's rows with one indexed query each and compute every figure with the shared
//! functions. A data directory from before the facts is backfilled once when opened.

use gridlink_shared::figures::Facts;
use gridlink_shared::{Scope, doc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::de::DeserializeOwned;

use super::rows::{self, DocRows};
use super::{SqliteStore, StoreError};

/// Bumped when the facts' shape changes: the next open rebuilds them from the documents.
const FACTS_VERSION: &str = "1";

/// Rewrites the facts of one document (its rows from [`rows::derive`]).
pub(super) fn write(conn: &Connection, rows: &DocRows) -> Result<(), StoreError> {
    if matches!(rows, DocRows::None) {
        return Ok(());
    }
    // Any change to the rows moves the generation on, so a cache of them knows it is stale;
    // the rows written carry it, so a cache can fetch just what changed since its copy.
    let generation: i64 = conn
        .prepare_cached(
            "INSERT INTO meta (key, value) VALUES ('facts_generation', '1')
             ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1
             RETURNING CAST(value AS INTEGER)",
        )?
        .query_row([], |r| r.get(0))?;
    match rows {
        DocRows::Household { facts, visits, .. } => {
            let k = &facts.keys;
            conn.prepare_cached(
                "INSERT OR REPLACE INTO household_facts (id, street, community, grid, facts, generation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![facts.id, k.street, k.community, k.grid, facts.facts, generation])?;
            conn.prepare_cached("DELETE FROM visit_facts WHERE household = ?1")?.execute([&facts.id])?;
            let mut insert = conn.prepare_cached(
                "INSERT OR REPLACE INTO visit_facts (id, household, street, community, grid, at, facts, generation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for visit in visits {
                let k = &visit.keys;
                insert.execute(params![
                    visit.id,
                    visit.household,
                    k.street,
                    k.community,
                    k.grid,
                    visit.at,
                    visit.facts,
                    generation
                ])?;
            }
        }
        DocRows::Case { facts, .. } => {
            let k = &facts.keys;
            conn.prepare_cached(
                "INSERT OR REPLACE INTO case_facts (id, street, community, grid, reported_at, facts, generation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                facts.id,
                k.street,
                k.community,
                k.grid,
                facts.reported_at,
                facts.facts,
                generation
            ])?;
        }
        DocRows::None => {}
    }
    Ok(())
}

/// Builds the facts of every document if this data directory has none of the current shape.
pub(super) fn ensure(conn: &mut Connection) -> Result<(), StoreError> {
    let version: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = 'facts_version'", [], |r| r.get(0)).optional()?;
    if version.as_deref() == Some(FACTS_VERSION) {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let total: i64 = tx.query_row("SELECT COUNT(*) FROM docs", [], |r| r.get(0))?;
    if total > 0 {
        tracing::info!(documents = total, "building the supervisors' rows from the stored documents (once)");
    }
    tx.execute_batch("DELETE FROM household_facts; DELETE FROM visit_facts; DELETE FROM case_facts;")?;
    {
        let mut stmt = tx.prepare("SELECT id, bytes FROM docs")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let bytes: Vec<u8> = row.get(1)?;
            // A damaged document has no rows until `check --repair` mends and rewrites it.
            match doc::guarded("reading a stored document", || doc::read_any(&doc::load(&bytes)?)) {
                Ok(any) => write(&tx, &rows::derive(&any)?)?,
                Err(e) => tracing::warn!(doc = %id, error = %e, "stored document skipped in the supervisors' rows"),
            }
        }
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('facts_version', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [FACTS_VERSION],
    )?;
    tx.commit()?;
    Ok(())
}

impl SqliteStore {
    /// The roster as it stands (streets, communities, grids, buildings, staff, outlets).
    pub fn roster(&self) -> Result<gridlink_shared::Roster, StoreError> {
        self.with_conn(|conn| super::roster::load_roster(conn))
    }

    /// A number that changes whenever any supervisors' row changes (in this process or in
    /// another on the same data directory): a cache of [`SqliteStore::facts`] keyed by it is
    /// never stale.
    pub fn facts_generation(&self) -> Result<u64, StoreError> {
        self.with_conn(|conn| {
            let value: Option<String> =
                conn.query_row("SELECT value FROM meta WHERE key = 'facts_generation'", [], |r| r.get(0)).optional()?;
            Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
        })
    }

    /// The facts within `scopes` (street, community or grid scopes; building scopes hold no
    /// household rows and are ignored). Each row once, however many scopes cover it.
    pub fn facts(&self, scopes: &[Scope]) -> Result<Facts, StoreError> {
        self.with_conn(|conn| {
            Ok(Facts {
                households: rows_within(conn, "household_facts", scopes, None)?,
                visits: rows_within(conn, "visit_facts", scopes, None)?,
                cases: rows_within(conn, "case_facts", scopes, None)?,
            })
        })
    }

    /// The rows within `scopes` written after `generation` (see
    /// [`SqliteStore::facts_generation`]): changed households with *all* their visits, and
    /// changed cases. A cache holding the rows as of `generation` replaces those households
    /// (and their visits) and cases to be current, without reading the rest again.
    pub fn facts_changed_since(&self, scopes: &[Scope], generation: u64) -> Result<Facts, StoreError> {
        let since = Some(i64::try_from(generation).unwrap_or(i64::MAX));
        self.with_conn(|conn| {
            Ok(Facts {
                households: rows_within(conn, "household_facts", scopes, since)?,
                visits: rows_within(conn, "visit_facts", scopes, since)?,
                cases: rows_within(conn, "case_facts", scopes, since)?,
            })
        })
    }
}

/// The rows of a facts table whose placement lies within any of `scopes` (and, with `since`,
/// that were written after that generation), in id order.
fn rows_within<T: DeserializeOwned>(
    conn: &Connection,
    table: &str,
    scopes: &[Scope],
    since: Option<i64>,
) -> Result<Vec<T>, StoreError> {
    rows::facts_within(scopes, |column, id| {
        // What changed since a generation is few rows: find them by generation first.
        let sql = match since {
            None => format!("SELECT id, facts FROM {table} WHERE {column} = ?1 AND ?2 IS NULL"),
            Some(_) => format!(
                "SELECT id, facts FROM {table} INDEXED BY {table}_by_generation WHERE generation > ?2 AND {column} = ?1"
            ),
        };
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![id, since], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    })
}
