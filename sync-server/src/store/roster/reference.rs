//! The reference data each principal receives: the communities their scopes reach into,
//! with their grids, buildings, staff, service outlets, party branches (with their groups and
//! members) and volunteers.
use std::collections::{BTreeSet, HashMap};

use gridlink_shared::protocol::ReferenceData;
use gridlink_shared::{BuildingId, CommunityId, GridId, PartyBranchId, Principal, Roster, Scope, StreetId};

/// Which community each scope reaches into, indexed once per roster.
struct CommunityIndex<'a> {
    roster: &'a Roster,
    grid_community: HashMap<GridId, CommunityId>,
    building_grid: HashMap<BuildingId, GridId>,
}

impl<'a> CommunityIndex<'a> {
    fn new(roster: &'a Roster) -> Self {
        CommunityIndex {
            roster,
            grid_community: roster.grids.iter().map(|g| (g.id, g.community)).collect(),
            building_grid: roster.buildings.iter().map(|b| (b.id, b.grid)).collect(),
        }
    }

    /// The communities a set of scopes reaches into.
    fn communities_of(&self, scopes: &[Scope]) -> BTreeSet<CommunityId> {
        let mut out = BTreeSet::new();
        for scope in scopes {
            match scope {
                Scope::Street(street) => {
                    out.extend(self.roster.communities.iter().filter(|c| c.street == *street).map(|c| c.id));
                }
                Scope::Community(c) => {
                    out.insert(*c);
                }
                Scope::Grid(g) => out.extend(self.grid_community.get(g)),
                Scope::Building(b) => out.extend(self.building_grid.get(b).and_then(|g| self.grid_community.get(g))),
            }
        }
        out
    }
}

/// The reference data a principal sees: the communities their scopes reach into, with
/// their grids, buildings, staff and service outlets.
/// The roster is read by the backend (`load_roster` for SQLite).
pub(in crate::store) fn reference_from(full: &Roster, principal: &Principal, version: u64) -> ReferenceData {
    let index = CommunityIndex::new(full);
    let visible = index.communities_of(&principal.scopes);
    let streets: BTreeSet<StreetId> =
        full.communities.iter().filter(|c| visible.contains(&c.id)).map(|c| c.street).collect();
    let grids: BTreeSet<GridId> = full.grids.iter().filter(|g| visible.contains(&g.community)).map(|g| g.id).collect();
    let roster = Roster {
        streets: full.streets.iter().filter(|s| streets.contains(&s.id)).cloned().collect(),
        communities: full.communities.iter().filter(|c| visible.contains(&c.id)).cloned().collect(),
        grids: full.grids.iter().filter(|g| grids.contains(&g.id)).cloned().collect(),
        buildings: full.buildings.iter().filter(|b| grids.contains(&b.grid)).cloned().collect(),
        staff: full
            .staff
            .iter()
            .filter(|s| s.id == principal.user || !index.communities_of(&s.scopes).is_disjoint(&visible))
            .cloned()
            .collect(),
        outlets: full.outlets.iter().filter(|o| visible.contains(&o.community)).cloned().collect(),
        party_branches: full.party_branches.iter().filter(|b| grids.contains(&b.grid)).cloned().collect(),
        party_groups: Vec::new(),
        party_members: Vec::new(),
        volunteers: full.volunteers.iter().filter(|v| visible.contains(&v.community)).cloned().collect(),
    };
    let branches: BTreeSet<PartyBranchId> = roster.party_branches.iter().map(|b| b.id).collect();
    let roster = Roster {
        party_groups: full.party_groups.iter().filter(|g| branches.contains(&g.branch)).cloned().collect(),
        party_members: full.party_members.iter().filter(|m| branches.contains(&m.branch)).cloned().collect(),
        ..roster
    };
    ReferenceData { version, roster }
}
