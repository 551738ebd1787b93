//! The household file (一户一档): one automerge document per household.
//!
//! Collections are maps keyed by id or code, never lists, so that two workers adding a visit,
//! a resident or a tag while offline merge into both entries instead of a positional clash.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::codes::{HelpNeed, HouseholdStatus, MustVisitTag, ResidentFlag, Sex, VisitOutcome, code_enum};
use crate::doc::{DocType, SCHEMA_VERSION};
use crate::ids::{HouseholdId, ResidentId, UserId, VisitId};
use crate::org::Placement;
use crate::time::Millis;

/// One household's file.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct HouseholdFile {
    /// Document schema version; see [`SCHEMA_VERSION`].
    pub schema: u64,
    /// Always [`DocType::Household`]; lets a reader tell documents apart from their bytes.
    pub doc_type: DocType,
    pub id: HouseholdId,
    /// Street, community, grid and building of the address.
    pub placement: Placement,
    /// Building name as shown to people, e.g. "滨湖小区7栋".
    pub building_name: String,
    /// Unit (单元), e.g. "2".
    pub unit: String,
    /// Room, e.g. "302".
    pub room: String,
    /// Head of household (户主).
    pub head: String,
    pub phone: String,
    #[autosurgeon(with = "autosurgeon::map_with_parseable_keys")]
    pub residents: BTreeMap<ResidentId, Resident>,
    /// Residents who moved out or passed away, by resident. They stay in `residents` so the
    /// file keeps its history (who lived here, who was met on which visit); this map says
    /// who has left, how and when. Files written before it existed read it as empty.
    #[autosurgeon(with = "autosurgeon::map_with_parseable_keys", missing = "BTreeMap::new")]
    #[serde(default)]
    pub departures: BTreeMap<ResidentId, Departure>,
    /// The four must-visit tags (四必访) currently on the household, with their start dates.
    #[autosurgeon(with = "autosurgeon::map_with_parseable_keys")]
    pub tags: BTreeMap<MustVisitTag, TagEntry>,
    /// Help needs (五助) currently open.
    #[autosurgeon(with = "autosurgeon::map_with_parseable_keys")]
    pub needs: BTreeMap<HelpNeed, NeedEntry>,
    #[autosurgeon(with = "autosurgeon::map_with_parseable_keys")]
    pub visits: BTreeMap<VisitId, Visit>,
    pub status: HouseholdStatus,
    #[autosurgeon(with = "crate::time::opt_date")]
    pub moved_out_on: Option<NaiveDate>,
    pub notes: String,
    pub created_at: Millis,
}

/// A person living in the household.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Resident {
    pub id: ResidentId,
    pub name: String,
    pub sex: Sex,
    pub birth_year: u16,
    /// Relation to the head, e.g. "户主", "配偶", "子女".
    pub relation: String,
    pub phone: String,
    /// Resident ID number. Stored in full; only ever shown through [`mask_id_number`].
    pub id_number: String,
    #[autosurgeon(with = "autosurgeon::map_with_parseable_keys")]
    pub flags: BTreeMap<ResidentFlag, bool>,
}

code_enum!(
    /// How a resident left the household.
    DepartureKind {
        MovedOut => ("moved-out", "已迁出", "Moved out"),
        Deceased => ("deceased", "已故", "Deceased"),
    }
);

/// A resident's leaving: moved out or passed away, on a date, recorded by a worker.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Departure {
    pub kind: DepartureKind,
    #[autosurgeon(with = "crate::time::date")]
    pub on: NaiveDate,
    pub recorded_by: UserId,
    pub note: String,
}

/// A must-visit tag on a household.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct TagEntry {
    #[autosurgeon(with = "crate::time::date")]
    pub since: NaiveDate,
    pub added_by: UserId,
    pub note: String,
}

/// A help need on a household.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct NeedEntry {
    #[autosurgeon(with = "crate::time::date")]
    pub since: NaiveDate,
    pub note: String,
}

/// One visit (走访) to the household.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Visit {
    pub id: VisitId,
    pub visitor: UserId,
    pub visitor_name: String,
    /// When the visit happened (may be earlier than when it was recorded).
    pub at: Millis,
    /// When it was typed in on the device.
    pub recorded_at: Millis,
    pub outcome: VisitOutcome,
    pub notes: String,
    /// Needs found at the door.
    pub needs_found: Vec<HelpNeed>,
    #[autosurgeon(with = "crate::time::opt_date")]
    pub follow_up: Option<NaiveDate>,
    /// Residents met in person.
    pub residents_present: Vec<ResidentId>,
}

impl HouseholdFile {
    /// A new, empty household file for an address.
    pub fn new(
        id: HouseholdId,
        placement: Placement,
        building_name: &str,
        unit: &str,
        room: &str,
        head: &str,
        created_at: Millis,
    ) -> Self {
        HouseholdFile {
            schema: SCHEMA_VERSION,
            doc_type: DocType::Household,
            id,
            placement,
            building_name: building_name.to_string(),
            unit: unit.to_string(),
            room: room.to_string(),
            head: head.to_string(),
            phone: String::new(),
            residents: BTreeMap::new(),
            departures: BTreeMap::new(),
            tags: BTreeMap::new(),
            needs: BTreeMap::new(),
            visits: BTreeMap::new(),
            status: HouseholdStatus::Active,
            moved_out_on: None,
            notes: String::new(),
            created_at,
        }
    }

    /// The address as people say it: "滨湖小区7栋2单元302室".
    pub fn address(&self) -> String {
        format!("{}{}单元{}室", self.building_name, self.unit, self.room)
    }

    /// Whether a resident still lives here (is on the file and has not left).
    pub fn is_living_here(&self, resident: ResidentId) -> bool {
        self.residents.contains_key(&resident) && !self.departures.contains_key(&resident)
    }

    /// Visits, newest first (ties broken by id so every replica lists them alike).
    pub fn visits_newest_first(&self) -> Vec<&Visit> {
        let mut visits: Vec<&Visit> = self.visits.values().collect();
        visits.sort_by(|a, b| b.at.cmp(&a.at).then(b.id.cmp(&a.id)));
        visits
    }
}

/// Masks an ID number for display: the first 4 and last 4 characters stay, the rest become `*`.
pub fn mask_id_number(id_number: &str) -> String {
    let chars: Vec<char> = id_number.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    chars.iter().enumerate().map(|(i, c)| if i < 4 || i >= chars.len() - 4 { *c } else { '*' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_written_before_departures_existed_reads_them_as_empty() {
        use crate::ids::{BuildingId, CommunityId, GridId, StreetId};
        use automerge::transaction::Transactable;
        let placement = Placement {
            street: StreetId::new(),
            community: CommunityId::new(),
            grid: GridId::new(),
            building: Some(BuildingId::new()),
        };
        let mut file = HouseholdFile::new(HouseholdId::new(), placement, "滨湖小区7栋", "2", "302", "王建国", 1);
        file.departures.insert(
            ResidentId::new(),
            Departure {
                kind: DepartureKind::Deceased,
                on: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
                recorded_by: UserId::new(),
                note: String::new(),
            },
        );
        let mut doc = automerge::AutoCommit::new();
        autosurgeon::reconcile(&mut doc, &file).unwrap();
        let back: HouseholdFile = autosurgeon::hydrate(&doc).unwrap();
        assert_eq!(back, file);
        doc.delete(automerge::ROOT, "departures").unwrap();
        let old: HouseholdFile = autosurgeon::hydrate(&doc).unwrap();
        assert!(old.departures.is_empty());
        assert_eq!(old.head, "王建国");
    }

    #[test]
    fn id_numbers_are_masked_in_the_middle() {
        assert_eq!(mask_id_number("420704195503120021"), "4207**********0021");
        assert_eq!(mask_id_number("1234"), "****");
        assert_eq!(mask_id_number(""), "");
    }
}
