//! `roster --json`: the org tree as stored, with household and open-case counts, built by
//! [`build_report`] for both backends from the roster and the backend's [`DocCounts`].
use std::collections::HashMap;

use gridlink_shared::{BuildingId, CommunityId, GridId, Roster, StreetId};
use serde::Serialize;

use super::{load_roster, reference_version};
use crate::store::{SqliteStore, StoreError};

/// `roster --json`: the org tree with household counts.
#[derive(Clone, Debug, Serialize)]
pub struct RosterReport {
    pub reference_version: u64,
    pub streets: Vec<StreetReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StreetReport {
    pub id: StreetId,
    pub name: String,
    pub communities: Vec<CommunityReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CommunityReport {
    pub id: CommunityId,
    pub name: String,
    pub grids: Vec<GridReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GridReport {
    pub id: GridId,
    pub name: String,
    /// Household files in the grid, moved-out households included.
    pub households: u64,
    pub moved_out: u64,
    pub open_cases: u64,
    pub buildings: Vec<BuildingReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BuildingReport {
    pub id: BuildingId,
    pub name: String,
    pub households: u64,
}

/// What the report counts from the stored documents, keyed by grid or building id (text):
/// both backends count it from their query rows ([`DocCounts::from_rows`]), and the report is
/// built from it by the same [`build_report`].
#[derive(Debug, Default, PartialEq, Eq)]
pub(in crate::store) struct DocCounts {
    /// Household files per grid, moved-out households included.
    pub households: HashMap<String, u64>,
    /// Households per grid whose status is not active.
    pub moved_out: HashMap<String, u64>,
    /// Household files per building.
    pub building_households: HashMap<String, u64>,
    /// Cases per grid that are not closed.
    pub open_cases: HashMap<String, u64>,
}

impl DocCounts {
    /// Counts from the supervisors' query rows (`household_rows`, `case_rows`), which both
    /// backends keep with every document write: `count_by(sql)` runs one of these `GROUP BY`
    /// queries (no parameters, the same text on both) and returns its (key, count) pairs.
    pub(in crate::store) fn from_rows(
        mut count_by: impl FnMut(&str) -> Result<HashMap<String, u64>, StoreError>,
    ) -> Result<DocCounts, StoreError> {
        Ok(DocCounts {
            households: count_by("SELECT grid, COUNT(*) FROM household_rows GROUP BY grid")?,
            moved_out: count_by("SELECT grid, COUNT(*) FROM household_rows WHERE status != 'active' GROUP BY grid")?,
            building_households: count_by(
                "SELECT building, COUNT(*) FROM household_rows WHERE building IS NOT NULL GROUP BY building",
            )?,
            open_cases: count_by("SELECT grid, COUNT(*) FROM case_rows WHERE status != 'closed' GROUP BY grid")?,
        })
    }
}

/// The org tree of `roster` with the counts of `counts` (zero where it has none).
pub(in crate::store) fn build_report(roster: &Roster, reference_version: u64, counts: &DocCounts) -> RosterReport {
    let count = |map: &HashMap<String, u64>, id: String| map.get(&id).copied().unwrap_or(0);
    let streets = roster
        .streets
        .iter()
        .map(|s| StreetReport {
            id: s.id,
            name: s.name.clone(),
            communities: roster
                .communities
                .iter()
                .filter(|c| c.street == s.id)
                .map(|c| CommunityReport {
                    id: c.id,
                    name: c.name.clone(),
                    grids: roster
                        .grids
                        .iter()
                        .filter(|g| g.community == c.id)
                        .map(|g| GridReport {
                            id: g.id,
                            name: g.name.clone(),
                            households: count(&counts.households, g.id.to_string()),
                            moved_out: count(&counts.moved_out, g.id.to_string()),
                            open_cases: count(&counts.open_cases, g.id.to_string()),
                            buildings: roster
                                .buildings
                                .iter()
                                .filter(|b| b.grid == g.id)
                                .map(|b| BuildingReport {
                                    id: b.id,
                                    name: b.name.clone(),
                                    households: count(&counts.building_households, b.id.to_string()),
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    RosterReport { reference_version, streets }
}

impl SqliteStore {
    /// `roster --json`.
    pub fn roster_report(&self) -> Result<RosterReport, StoreError> {
        self.read(|conn| {
            let count_by = |sql: &str| -> Result<HashMap<String, u64>, StoreError> {
                let mut stmt = conn.prepare(sql)?;
                let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
                Ok(rows.collect::<Result<_, _>>()?)
            };
            let counts = DocCounts::from_rows(count_by)?;
            Ok(build_report(&load_roster(conn)?, reference_version(conn)?, &counts))
        })
    }
}
