//! The supervisors' rows on PostgreSQL: the console's household and case list rows and the
//! facts rows (`household_facts`, `visit_facts`, `case_facts`), written from
//! [`rows::derive`](crate::store::rows) in the transaction of every document write, backfilled
//! at open for a database that has documents but no rows (one filled by `migrate`), and read
//! with the same answers as the SQLite store's `facts.rs` and `console_read.rs`.
//!
//! **The facts generation.** A cache keyed by [`PgStore::facts_generation`] asks for
//! [`PgStore::facts_changed_since`] its number, so a row must never commit *later* with a
//! generation at or below a number a reader has already seen. A SEQUENCE cannot promise that:
//! its numbers are handed out at `nextval` and committed in any order (transaction A takes 7,
//! B takes 8 and commits, a reader sees 8, A commits its rows as 7: missed for good). So the
//! generation is a counter row (`meta.facts_generation`), incremented with one `UPDATE` by the
//! first document write of a transaction and kept locked until that transaction ends; every
//! row the transaction writes carries that one number (kept in a transaction-local setting).
//! The next writer's `UPDATE` waits for the lock and then reads the committed value, so
//! numbers are handed out in commit order: when a reader sees generation G, every transaction
//! holding a number <= G has committed (a rolled-back number is handed out again, its rows
//! never having been visible). The cost is that document-writing transactions of different
//! streets serialize from their first document write to their commit; those of one street
//! already do (each document is logged in its street's scope, whose counter row they lock).
//! Readers take no lock. Lock order: a push holds its documents and scope counters, then the
//! generation, then writes rows; the backfill takes the generation, then the row tables.

use std::collections::HashMap;

use gridlink_shared::figures::Facts;
use gridlink_shared::{CaseFile, CaseId, GridId, HouseholdFile, HouseholdId, Placement, Scope, UserId, doc};
use postgres::{GenericClient, IsolationLevel, Transaction};
use serde::de::DeserializeOwned;

use super::PgStore;
use crate::store::StoreError;
use crate::store::console_read::{placement_of, typed_doc, workers_of};
use crate::store::rows::{self, DocRows};
use crate::store::sqlite::parse_id;

/// Bumped when the rows' shape changes: the next open rebuilds them from the documents.
const FACTS_VERSION: &str = "1";

/// Advisory lock held while the rows are rebuilt (several processes may open at once).
const BACKFILL_LOCK: i64 = 0x6772_6964_6661_6374; // "gridfact"

/// Documents read per round trip while rebuilding.
const BACKFILL_BATCH: i32 = 500;

/// This transaction's facts generation: taken (and locked) at its first call, the same number
/// after. See the module header.
fn generation(tx: &mut Transaction<'_>) -> Result<i64, StoreError> {
    let held: Option<String> = tx.query_one("SELECT current_setting('gridlink.facts_generation', true)", &[])?.get(0);
    if let Some(held) = held.filter(|h| !h.is_empty()) {
        return held.parse().map_err(|_| StoreError::Backend(format!("facts generation setting '{held}'")));
    }
    let generation: i64 = tx
        .query_one(
            "INSERT INTO meta (key, value) VALUES ('facts_generation', '1')
             ON CONFLICT (key) DO UPDATE SET value = (CAST(meta.value AS BIGINT) + 1)::text
             RETURNING CAST(value AS BIGINT)",
            &[],
        )?
        .get(0);
    tx.execute("SELECT set_config('gridlink.facts_generation', $1, true)", &[&generation.to_string()])?;
    Ok(generation)
}

/// Writes the query rows and facts rows of one document, in the caller's transaction.
pub(super) fn write(tx: &mut Transaction<'_>, any: &gridlink_shared::AnyDoc, now: i64) -> Result<(), StoreError> {
    write_rows(tx, &rows::derive(any)?, now)
}

fn write_rows(tx: &mut Transaction<'_>, rows: &DocRows, now: i64) -> Result<(), StoreError> {
    if matches!(rows, DocRows::None) {
        return Ok(());
    }
    let generation = generation(tx)?;
    match rows {
        DocRows::Household { row: r, facts, visits } => {
            tx.execute(
                "INSERT INTO household_rows (id, grid, building, address, head, phone, status, tags, needs,
                    residents, visits, last_visit_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT (id) DO UPDATE SET grid = excluded.grid, building = excluded.building,
                    address = excluded.address, head = excluded.head, phone = excluded.phone,
                    status = excluded.status, tags = excluded.tags, needs = excluded.needs,
                    residents = excluded.residents, visits = excluded.visits,
                    last_visit_at = excluded.last_visit_at, updated_at = excluded.updated_at",
                &[
                    &r.id,
                    &r.grid,
                    &r.building,
                    &r.address,
                    &r.head,
                    &r.phone,
                    &r.status,
                    &r.tags,
                    &r.needs,
                    &r.residents,
                    &r.visits,
                    &r.last_visit_at,
                    &now,
                ],
            )?;
            let k = &facts.keys;
            tx.execute(
                "INSERT INTO household_facts (id, street, community, grid, facts, generation)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET street = excluded.street, community = excluded.community,
                    grid = excluded.grid, facts = excluded.facts, generation = excluded.generation",
                &[&facts.id, &k.street, &k.community, &k.grid, &facts.facts, &generation],
            )?;
            tx.execute("DELETE FROM visit_facts WHERE household = $1", &[&facts.id])?;
            if !visits.is_empty() {
                let insert = tx.prepare(
                    "INSERT INTO visit_facts (id, household, street, community, grid, at, facts, generation)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (id) DO UPDATE SET household = excluded.household, street = excluded.street,
                        community = excluded.community, grid = excluded.grid, at = excluded.at,
                        facts = excluded.facts, generation = excluded.generation",
                )?;
                for v in visits {
                    let k = &v.keys;
                    tx.execute(
                        &insert,
                        &[&v.id, &v.household, &k.street, &k.community, &k.grid, &v.at, &v.facts, &generation],
                    )?;
                }
            }
        }
        DocRows::Case { row: r, facts } => {
            tx.execute(
                "INSERT INTO case_rows (id, grid, building, household, kind, title, status, reporter,
                    responsible, responsible_name, reported_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (id) DO UPDATE SET grid = excluded.grid, building = excluded.building,
                    household = excluded.household, kind = excluded.kind, title = excluded.title,
                    status = excluded.status, reporter = excluded.reporter, responsible = excluded.responsible,
                    responsible_name = excluded.responsible_name, reported_at = excluded.reported_at,
                    updated_at = excluded.updated_at",
                &[
                    &r.id,
                    &r.grid,
                    &r.building,
                    &r.household,
                    &r.kind,
                    &r.title,
                    &r.status,
                    &r.reporter,
                    &r.responsible,
                    &r.responsible_name,
                    &r.reported_at,
                    &now,
                ],
            )?;
            let k = &facts.keys;
            tx.execute(
                "INSERT INTO case_facts (id, street, community, grid, reported_at, facts, generation)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (id) DO UPDATE SET street = excluded.street, community = excluded.community,
                    grid = excluded.grid, reported_at = excluded.reported_at, facts = excluded.facts,
                    generation = excluded.generation",
                &[&facts.id, &k.street, &k.community, &k.grid, &facts.reported_at, &facts.facts, &generation],
            )?;
        }
        DocRows::None => {}
    }
    Ok(())
}

/// Records that every stored document has its rows (a load that wrote them all).
pub(super) fn mark_complete(tx: &mut Transaction<'_>) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('facts_version', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&FACTS_VERSION],
    )?;
    Ok(())
}

/// Builds the rows of every document if the database has documents but not the rows of the
/// current shape (filled by `migrate`, or from before the rows). Nothing is written to a
/// database without documents, so `migrate` still finds an opened, empty database empty.
/// Returns how many documents were read.
pub(super) fn ensure(client: &mut postgres::Client) -> Result<usize, StoreError> {
    let marker: Option<String> =
        client.query_opt("SELECT value FROM meta WHERE key = 'facts_version'", &[])?.map(|r| r.get(0));
    if marker.as_deref() == Some(FACTS_VERSION) {
        return Ok(0);
    }
    let any: bool = client.query_one("SELECT EXISTS (SELECT 1 FROM docs)", &[])?.get(0);
    if !any {
        return Ok(0);
    }
    let mut tx = client.transaction()?;
    // A second process opening now waits here, then finds the work done.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&BACKFILL_LOCK])?;
    let marker: Option<String> =
        tx.query_opt("SELECT value FROM meta WHERE key = 'facts_version'", &[])?.map(|r| r.get(0));
    if marker.as_deref() == Some(FACTS_VERSION) {
        return Ok(0);
    }
    // The generation first, then the tables (the writers' order): pushes of other processes
    // wait until the rebuilt rows are committed, then write theirs over them.
    generation(&mut tx)?;
    tx.batch_execute(
        "LOCK TABLE household_rows, case_rows, household_facts, visit_facts, case_facts IN EXCLUSIVE MODE;
         DELETE FROM household_rows; DELETE FROM case_rows;
         DELETE FROM household_facts; DELETE FROM visit_facts; DELETE FROM case_facts;",
    )?;
    let total: i64 = tx.query_one("SELECT COUNT(*) FROM docs", &[])?.get(0);
    tracing::info!(documents = total, "building the supervisors' rows from the stored documents (once)");
    let select = tx.prepare("SELECT id, bytes, updated_at FROM docs ORDER BY id")?;
    let portal = tx.bind(&select, &[])?;
    let mut read = 0;
    loop {
        let batch = tx.query_portal(&portal, BACKFILL_BATCH)?;
        if batch.is_empty() {
            break;
        }
        for row in &batch {
            let id: &str = row.get(0);
            let bytes: &[u8] = row.get(1);
            let updated_at: i64 = row.get(2);
            read += 1;
            // A damaged document has no rows until `check --repair` mends and rewrites it.
            match doc::guarded("reading a stored document", || doc::read_any(&doc::load(bytes)?)) {
                Ok(any) => write_rows(&mut tx, &rows::derive(&any)?, updated_at)?,
                Err(e) => tracing::warn!(doc = %id, error = %e, "stored document skipped in the supervisors' rows"),
            }
        }
    }
    drop(portal);
    mark_complete(&mut tx)?;
    tx.commit()?;
    Ok(read)
}

impl PgStore {
    /// A number that changes whenever any supervisors' row changes, in any process: a cache of
    /// [`PgStore::facts`] keyed by it is never stale, and no row commits later with a
    /// generation at or below it (see the module header).
    pub fn facts_generation(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            let value: Option<String> =
                c.query_opt("SELECT value FROM meta WHERE key = 'facts_generation'", &[])?.map(|r| r.get(0));
            Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
        })
    }

    /// The facts within `scopes` (street, community or grid scopes; building scopes hold no
    /// household rows and are ignored), each row once, in id order; one snapshot.
    pub fn facts(&self, scopes: &[Scope]) -> Result<Facts, StoreError> {
        self.facts_within(scopes, None)
    }

    /// The rows within `scopes` written after `generation` (see
    /// [`PgStore::facts_generation`]): changed households with *all* their visits, and changed
    /// cases, as the SQLite store answers.
    pub fn facts_changed_since(&self, scopes: &[Scope], generation: u64) -> Result<Facts, StoreError> {
        self.facts_within(scopes, Some(i64::try_from(generation).unwrap_or(i64::MAX)))
    }

    fn facts_within(&self, scopes: &[Scope], since: Option<i64>) -> Result<Facts, StoreError> {
        self.read(|c| {
            let mut tx =
                c.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
            let facts = Facts {
                households: rows_within(&mut tx, "household_facts", scopes, since)?,
                visits: rows_within(&mut tx, "visit_facts", scopes, since)?,
                cases: rows_within(&mut tx, "case_facts", scopes, since)?,
            };
            tx.commit()?;
            Ok(facts)
        })
    }

    /// The case as stored, or `None` if there is no case with this id.
    pub fn case_file(&self, id: CaseId) -> Result<Option<CaseFile>, StoreError> {
        self.read(|c| typed_doc(id.into(), doc_bytes(c, &id.to_string())?))
    }

    /// The household file as stored, or `None` if there is no household with this id.
    pub fn household_file(&self, id: HouseholdId) -> Result<Option<HouseholdFile>, StoreError> {
        self.read(|c| typed_doc(id.into(), doc_bytes(c, &id.to_string())?))
    }

    /// Phone numbers of the households in `grids`, by household id.
    pub fn household_phones(&self, grids: &[GridId]) -> Result<HashMap<HouseholdId, String>, StoreError> {
        self.read(|c| {
            let grids: Vec<String> = grids.iter().map(GridId::to_string).collect();
            let mut out = HashMap::new();
            for row in c.query("SELECT id, phone FROM household_rows WHERE grid = ANY($1)", &[&grids])? {
                out.insert(parse_id(row.get::<_, &str>(0))?, row.get(1));
            }
            Ok(out)
        })
    }

    /// The grid workers of `grid` (staff with a `grid:` scope on it), by name.
    pub fn grid_workers(&self, grid: GridId) -> Result<Vec<(UserId, String)>, StoreError> {
        self.read(|c| grid_workers(c, grid))
    }

    /// Every stored document of `doc_type` with its placement, in id order; documents whose
    /// placement columns do not parse are left out.
    pub fn docs_of_type(&self, doc_type: &str) -> Result<Vec<(Placement, Vec<u8>)>, StoreError> {
        self.read(|c| {
            let rows = c.query(
                "SELECT street, community, grid, building, bytes FROM docs WHERE doc_type = $1 ORDER BY id",
                &[&doc_type],
            )?;
            Ok(rows
                .iter()
                .filter_map(|r| {
                    let placement = placement_of(r.get(0), r.get(1), r.get(2), r.get(3))?;
                    Some((placement, r.get(4)))
                })
                .collect())
        })
    }
}

/// The grid workers of `grid`, by name then id.
pub(super) fn grid_workers(client: &mut impl GenericClient, grid: GridId) -> Result<Vec<(UserId, String)>, StoreError> {
    let rows = client
        .query("SELECT id, name, scopes FROM users WHERE role = $1", &[&gridlink_shared::Role::GridWorker.code()])?;
    workers_of(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, String>(1), r.get::<_, String>(2))), grid)
}

fn doc_bytes(client: &mut impl GenericClient, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(client.query_opt("SELECT bytes FROM docs WHERE id = $1", &[&id])?.map(|r| r.get(0)))
}

/// The rows of a facts table whose placement lies within any of `scopes` (and, with `since`,
/// that were written after that generation), in id order (byte order, as SQLite's).
fn rows_within<T: DeserializeOwned>(
    tx: &mut Transaction<'_>,
    table: &str,
    scopes: &[Scope],
    since: Option<i64>,
) -> Result<Vec<T>, StoreError> {
    rows::facts_within(scopes, |column, id| {
        let rows = match since {
            None => tx.query(&format!("SELECT id, facts FROM {table} WHERE {column} = $1"), &[&id])?,
            // What changed since a generation is few rows: found by generation first.
            Some(since) => tx.query(
                &format!("SELECT id, facts FROM {table} WHERE generation > $2 AND {column} = $1"),
                &[&id, &since],
            )?,
        };
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    })
}
