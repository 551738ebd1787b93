//! The roster: street > community > grid > building, the staff on it, and the scopes that say
//! which documents each person may read and write, with the service outlets and the party
//! branches, party members and volunteers ([`crate::party`]). Written by the server only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::codes::{Role, ServiceCategory};
use crate::ids::{BuildingId, CommunityId, GridId, OutletId, StreetId, UserId};
use crate::party::{PartyBranch, PartyGroup, PartyMember, Volunteer};

/// A slice of the roster that documents belong to and that users are given access to.
/// Written `grid:<uuid>`, `building:<uuid>`, `community:<uuid>` or `street:<uuid>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Street(StreetId),
    Community(CommunityId),
    Grid(GridId),
    Building(BuildingId),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Street(id) => write!(f, "street:{id}"),
            Scope::Community(id) => write!(f, "community:{id}"),
            Scope::Grid(id) => write!(f, "grid:{id}"),
            Scope::Building(id) => write!(f, "building:{id}"),
        }
    }
}

/// A scope string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope '{0}': expected grid:ID, building:ID, community:ID or street:ID")]
pub struct InvalidScope(pub String);

impl std::str::FromStr for Scope {
    type Err = InvalidScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidScope(s.to_string());
        let (kind, id) = s.split_once(':').ok_or_else(bad)?;
        Ok(match kind {
            "street" => Scope::Street(id.parse().map_err(|_| bad())?),
            "community" => Scope::Community(id.parse().map_err(|_| bad())?),
            "grid" => Scope::Grid(id.parse().map_err(|_| bad())?),
            "building" => Scope::Building(id.parse().map_err(|_| bad())?),
            _ => return Err(bad()),
        })
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a document sits in the roster. Every household file and case carries one, so the
/// validator can check access without a roster lookup and the server can index it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, autosurgeon::Reconcile, autosurgeon::Hydrate)]
pub struct Placement {
    pub street: StreetId,
    pub community: CommunityId,
    pub grid: GridId,
    pub building: Option<BuildingId>,
}

impl Placement {
    /// Whether `scope` covers this placement.
    pub fn is_within(&self, scope: &Scope) -> bool {
        match scope {
            Scope::Street(id) => *id == self.street,
            Scope::Community(id) => *id == self.community,
            Scope::Grid(id) => *id == self.grid,
            Scope::Building(id) => Some(*id) == self.building,
        }
    }
}

/// Who is acting: the user, their role and their scopes, as the server's roster says now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub user: UserId,
    pub name: String,
    pub role: Role,
    pub scopes: Vec<Scope>,
}

impl Principal {
    /// Whether any of this principal's scopes covers `placement`.
    pub fn covers(&self, placement: &Placement) -> bool {
        self.scopes.iter().any(|scope| placement.is_within(scope))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Street {
    pub id: StreetId,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Community {
    pub id: CommunityId,
    pub street: StreetId,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grid {
    pub id: GridId,
    pub community: CommunityId,
    /// For example "凤凰社区第3网格".
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Building {
    pub id: BuildingId,
    pub grid: GridId,
    /// For example "滨湖小区7栋".
    pub name: String,
    pub units: u16,
    pub floors: u16,
    pub rooms_per_floor: u16,
}

/// A person on the roster, with the identity card shown to residents (亮身份).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staff {
    pub id: UserId,
    pub name: String,
    pub role: Role,
    pub phone: String,
    pub scopes: Vec<Scope>,
    /// Service pledge printed on the identity card (服务承诺).
    pub pledge: String,
}

impl Staff {
    pub fn principal(&self) -> Principal {
        Principal { user: self.id, name: self.name.clone(), role: self.role, scopes: self.scopes.clone() }
    }
}

/// A service outlet of the grid e-link directory (便民服务网点).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outlet {
    pub id: OutletId,
    pub community: CommunityId,
    pub category: ServiceCategory,
    pub name: String,
    pub phone: String,
    pub address: String,
    pub hours: String,
}

/// The whole roster of one deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    pub streets: Vec<Street>,
    pub communities: Vec<Community>,
    pub grids: Vec<Grid>,
    pub buildings: Vec<Building>,
    pub staff: Vec<Staff>,
    pub outlets: Vec<Outlet>,
    /// Grid party branches (网格党支部). Absent from the reference data of older servers.
    #[serde(default)]
    pub party_branches: Vec<PartyBranch>,
    /// Building party groups (楼栋党小组).
    #[serde(default)]
    pub party_groups: Vec<PartyGroup>,
    /// Party members living in the grid who reported to the community (在职党员进社区).
    #[serde(default)]
    pub party_members: Vec<PartyMember>,
    /// Volunteers (志愿者) on the communities' registers.
    #[serde(default)]
    pub volunteers: Vec<Volunteer>,
}

impl Roster {
    /// The full placement of a building, if the roster knows it.
    pub fn placement_of_building(&self, building: BuildingId) -> Option<Placement> {
        let b = self.buildings.iter().find(|b| b.id == building)?;
        let mut placement = self.placement_of_grid(b.grid)?;
        placement.building = Some(building);
        Some(placement)
    }

    /// The placement of a grid (no building).
    pub fn placement_of_grid(&self, grid: GridId) -> Option<Placement> {
        let g = self.grids.iter().find(|g| g.id == grid)?;
        let c = self.communities.iter().find(|c| c.id == g.community)?;
        Some(Placement { street: c.street, community: c.id, grid, building: None })
    }

    /// Buildings per grid, for quick lookups.
    pub fn buildings_by_grid(&self) -> BTreeMap<GridId, Vec<&Building>> {
        let mut map: BTreeMap<GridId, Vec<&Building>> = BTreeMap::new();
        for b in &self.buildings {
            map.entry(b.grid).or_default().push(b);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_print_and_reject_garbage() {
        let grid = GridId::new();
        let scope: Scope = format!("grid:{grid}").parse().unwrap();
        assert_eq!(scope, Scope::Grid(grid));
        assert_eq!(scope.to_string(), format!("grid:{grid}"));
        assert!("grid:nope".parse::<Scope>().is_err());
        assert!("planet:1".parse::<Scope>().is_err());
        assert!("grid".parse::<Scope>().is_err());
    }

    #[test]
    fn a_roster_from_an_older_server_without_party_lists_still_reads() {
        let old = r#"{"streets":[],"communities":[],"grids":[],"buildings":[],"staff":[],"outlets":[]}"#;
        let roster: Roster = serde_json::from_str(old).unwrap();
        assert_eq!(roster, Roster::default());
    }

    #[test]
    fn placement_is_within_each_level() {
        let placement = Placement {
            street: StreetId::new(),
            community: CommunityId::new(),
            grid: GridId::new(),
            building: Some(BuildingId::new()),
        };
        assert!(placement.is_within(&Scope::Grid(placement.grid)));
        assert!(placement.is_within(&Scope::Community(placement.community)));
        assert!(placement.is_within(&Scope::Building(placement.building.unwrap())));
        assert!(!placement.is_within(&Scope::Grid(GridId::new())));
    }
}
