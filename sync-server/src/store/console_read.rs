//! What the console's case and household pages read beyond the supervisors' rows: one
//! document whole (a case with its timeline, a household file with its residents and visits),
//! the household phone numbers the list searches (the rows leave them out), and the grid
//! workers a case may be reassigned to. Scope checks are the caller's: these answer for
//! anything stored.

use std::collections::HashMap;

use gridlink_shared::{
    CaseFile, CaseId, DocId, GridDocument, GridId, HouseholdFile, HouseholdId, Placement, Role, Scope, UserId, doc,
};
use rusqlite::Connection;

use super::push::doc_bytes;
use super::sqlite::parse_id;
use super::{SqliteStore, StoreError};

impl SqliteStore {
    /// The case as stored, or `None` if there is no case with this id (a household's id
    /// included).
    pub fn case_file(&self, id: CaseId) -> Result<Option<CaseFile>, StoreError> {
        self.with_conn(|conn| read_doc(conn, id.into()))
    }

    /// The household file as stored, or `None` if there is no household with this id.
    pub fn household_file(&self, id: HouseholdId) -> Result<Option<HouseholdFile>, StoreError> {
        self.with_conn(|conn| read_doc(conn, id.into()))
    }

    /// Phone numbers of the households in `grids` (whole grids, as `CoveredArea::grids`), by
    /// household id.
    pub fn household_phones(&self, grids: &[GridId]) -> Result<HashMap<HouseholdId, String>, StoreError> {
        self.with_conn(|conn| {
            let mut out = HashMap::new();
            let mut stmt = conn.prepare_cached("SELECT id, phone FROM household_rows WHERE grid = ?1")?;
            for grid in grids {
                let rows =
                    stmt.query_map([grid.to_string()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
                for row in rows {
                    let (id, phone) = row?;
                    out.insert(parse_id(&id)?, phone);
                }
            }
            Ok(out)
        })
    }

    /// The grid workers of `grid` (staff with a `grid:` scope on it), by name.
    pub fn grid_workers(&self, grid: GridId) -> Result<Vec<(UserId, String)>, StoreError> {
        self.with_conn(|conn| grid_workers(conn, grid))
    }

    /// Every stored document of `doc_type` with its placement, in id order; documents whose
    /// placement columns do not parse are left out.
    pub fn docs_of_type(&self, doc_type: &str) -> Result<Vec<(Placement, Vec<u8>)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare("SELECT street, community, grid, building, bytes FROM docs WHERE doc_type = ?1 ORDER BY id")?;
            let rows = stmt.query_map([doc_type], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (street, community, grid, building, bytes) = row?;
                if let Some(placement) = placement_of(&street, &community, &grid, building.as_deref()) {
                    out.push((placement, bytes));
                }
            }
            Ok(out)
        })
    }
}

/// A placement from a `docs` row's columns, if they parse.
pub(super) fn placement_of(street: &str, community: &str, grid: &str, building: Option<&str>) -> Option<Placement> {
    Some(Placement {
        street: street.parse().ok()?,
        community: community.parse().ok()?,
        grid: grid.parse().ok()?,
        building: match building {
            Some(building) => Some(building.parse().ok()?),
            None => None,
        },
    })
}

/// The grid workers of `grid`, by name then id.
pub(super) fn grid_workers(conn: &Connection, grid: GridId) -> Result<Vec<(UserId, String)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT id, name, scopes FROM users WHERE role = ?1")?;
    let rows: Vec<(String, String, String)> = stmt
        .query_map([Role::GridWorker.code()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    workers_of(rows, grid)
}

/// Of the grid workers' `(id, name, scopes JSON)` rows, those with a `grid:` scope on `grid`,
/// by name then id (both backends).
pub(super) fn workers_of(
    rows: impl IntoIterator<Item = (String, String, String)>,
    grid: GridId,
) -> Result<Vec<(UserId, String)>, StoreError> {
    let mut out: Vec<(UserId, String)> = Vec::new();
    for (id, name, scopes) in rows {
        let scopes: Vec<Scope> = serde_json::from_str(&scopes)?;
        if scopes.contains(&Scope::Grid(grid)) {
            out.push((parse_id(&id)?, name));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    Ok(out)
}

/// A stored document read as `T`; `None` when missing or of the other kind.
fn read_doc<T: GridDocument>(conn: &Connection, id: DocId) -> Result<Option<T>, StoreError> {
    typed_doc(id, doc_bytes(conn, id)?)
}

/// Stored bytes (if any) read as `T`; `None` when missing or of the other kind. A stored
/// document that does not load is a fault (logged by the caller's error page), never shown
/// half-read. Both backends.
pub(super) fn typed_doc<T: GridDocument>(id: DocId, bytes: Option<Vec<u8>>) -> Result<Option<T>, StoreError> {
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    let kind = doc::guarded("reading a stored document", || {
        let loaded = doc::load(&bytes)?;
        Ok((doc::doc_type_of(&loaded)?, loaded))
    })
    .map_err(|e| StoreError::Backend(format!("stored document {id} does not load: {e}")))?;
    if kind.0 != T::TYPE {
        return Ok(None);
    }
    doc::guarded("reading a stored document", || doc::read::<T>(&kind.1))
        .map(Some)
        .map_err(|e| StoreError::Backend(format!("stored document {id} does not read: {e}")))
}
