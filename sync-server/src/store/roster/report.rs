//! `roster --json`: the org tree as stored, with household and open-case counts.
use std::collections::HashMap;

use gridlink_shared::{BuildingId, CommunityId, GridId, StreetId};
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

impl SqliteStore {
    /// `roster --json`.
    pub fn roster_report(&self) -> Result<RosterReport, StoreError> {
        self.read(|conn| {
            let roster = load_roster(conn)?;
            let count_by = |sql: &str| -> Result<HashMap<String, u64>, StoreError> {
                let mut stmt = conn.prepare(sql)?;
                let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
                Ok(rows.collect::<Result<_, _>>()?)
            };
            let per_grid = count_by("SELECT grid, COUNT(*) FROM household_rows GROUP BY grid")?;
            let moved_out =
                count_by("SELECT grid, COUNT(*) FROM household_rows WHERE status != 'active' GROUP BY grid")?;
            let per_building =
                count_by("SELECT building, COUNT(*) FROM household_rows WHERE building IS NOT NULL GROUP BY building")?;
            let open = count_by("SELECT grid, COUNT(*) FROM case_rows WHERE status != 'closed' GROUP BY grid")?;
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
                                    households: per_grid.get(&g.id.to_string()).copied().unwrap_or(0),
                                    moved_out: moved_out.get(&g.id.to_string()).copied().unwrap_or(0),
                                    open_cases: open.get(&g.id.to_string()).copied().unwrap_or(0),
                                    buildings: roster
                                        .buildings
                                        .iter()
                                        .filter(|b| b.grid == g.id)
                                        .map(|b| BuildingReport {
                                            id: b.id,
                                            name: b.name.clone(),
                                            households: per_building.get(&b.id.to_string()).copied().unwrap_or(0),
                                        })
                                        .collect(),
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect();
            Ok(RosterReport { reference_version: reference_version(conn)?, streets })
        })
    }
}
