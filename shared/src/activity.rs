//! Activities and service hours (志愿服务、党员活动与服务时长): one automerge document per
//! record of something party members or volunteers did, in a grid, on a day, optionally for a
//! case, with each participant's hours; and the pure totals over them (per person, per party
//! branch, volunteers apart) that the phone and the console show.
//!
//! Participants are roster references ([`PersonRef`]: a party member or a volunteer), with the
//! name copied in so a record still reads after the roster changes. Hours are whole tenths
//! ([`MAX_TENTHS`] a person a record), so totals add up exactly on every device.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::codes::{UnknownCode, code_enum};
use crate::doc::{DocType, SCHEMA_VERSION};
use crate::ids::{ActivityId, CaseId, PartyBranchId, PartyMemberId, UserId, VolunteerId};
use crate::org::{Placement, Roster};
use crate::time::Millis;

/// Most hours one person may be credited with in one record: a day, in tenths.
pub const MAX_TENTHS: u16 = 240;
/// Most participants one record may list (a big clean-up day of a whole branch).
pub const MAX_PARTICIPANTS: usize = 60;
/// Longest title and notes, in characters.
pub const MAX_TITLE_CHARS: usize = 100;
pub const MAX_NOTES_CHARS: usize = 2000;

code_enum!(
    /// What kind of record: a volunteer service or a party-member activity.
    ActivityKind {
        VolunteerService => ("volunteer-service", "志愿服务", "Volunteer service"),
        PartyActivity => ("party-activity", "党员活动", "Party activity"),
    }
);

/// A participant: a party member or a volunteer of the roster. Written
/// `party-member:<uuid>` or `volunteer:<uuid>` (also as the participants' map key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PersonRef {
    PartyMember(PartyMemberId),
    Volunteer(VolunteerId),
}

impl std::fmt::Display for PersonRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PersonRef::PartyMember(id) => write!(f, "party-member:{id}"),
            PersonRef::Volunteer(id) => write!(f, "volunteer:{id}"),
        }
    }
}

impl std::str::FromStr for PersonRef {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownCode {
            vocabulary: "PersonRef",
            got: s.to_string(),
            expected: &["party-member:ID", "volunteer:ID"],
        };
        match s.split_once(':') {
            Some(("party-member", id)) => id.parse().map(PersonRef::PartyMember).map_err(|_| unknown()),
            Some(("volunteer", id)) => id.parse().map(PersonRef::Volunteer).map_err(|_| unknown()),
            _ => Err(unknown()),
        }
    }
}

impl Serialize for PersonRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PersonRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Reconcile for PersonRef {
    type Key<'a> = autosurgeon::reconcile::NoKey;
    fn reconcile<R: autosurgeon::Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.str(self.to_string())
    }
}

impl Hydrate for PersonRef {
    fn hydrate_string(s: &'_ str) -> Result<Self, autosurgeon::HydrateError> {
        s.parse().map_err(|_| autosurgeon::HydrateError::unexpected("a party member or volunteer", s.to_string()))
    }
}

/// One person's part in a record.
#[derive(Clone, Debug, PartialEq, Eq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Participant {
    pub person: PersonRef,
    /// The name as the roster gave it when recorded.
    pub name: String,
    /// Hours in tenths: 25 is 2.5 hours; 1 to [`MAX_TENTHS`].
    pub tenths: u16,
}

/// One activity or service record.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct ActivityFile {
    pub schema: u64,
    /// Always [`DocType::Activity`].
    pub doc_type: DocType,
    pub id: ActivityId,
    pub kind: ActivityKind,
    /// The grid (and building, when it happened at one) it was done in.
    pub placement: Placement,
    /// What was done, e.g. "为空巢老人上门理发".
    pub title: String,
    pub notes: String,
    /// The day it was done.
    #[autosurgeon(with = "crate::time::date")]
    pub on: NaiveDate,
    /// The case it was done for, if any.
    pub case: Option<CaseId>,
    pub recorded_by: UserId,
    pub recorded_by_name: String,
    pub recorded_at: Millis,
    #[autosurgeon(with = "autosurgeon::map_with_parseable_keys")]
    pub participants: BTreeMap<PersonRef, Participant>,
}

impl ActivityFile {
    /// A new record with no participants yet.
    #[expect(clippy::too_many_arguments, reason = "a record is born with all of these")]
    pub fn new(
        id: ActivityId,
        kind: ActivityKind,
        placement: Placement,
        title: &str,
        on: NaiveDate,
        case: Option<CaseId>,
        recorded_by: (UserId, &str),
        recorded_at: Millis,
    ) -> Self {
        ActivityFile {
            schema: SCHEMA_VERSION,
            doc_type: DocType::Activity,
            id,
            kind,
            placement,
            title: title.to_string(),
            notes: String::new(),
            on,
            case,
            recorded_by: recorded_by.0,
            recorded_by_name: recorded_by.1.to_string(),
            recorded_at,
            participants: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) one participant.
    pub fn add(&mut self, person: PersonRef, name: &str, tenths: u16) {
        self.participants.insert(person, Participant { person, name: name.to_string(), tenths });
    }

    /// Hours of all participants together, in tenths.
    pub fn total_tenths(&self) -> u32 {
        self.participants.values().map(|p| u32::from(p.tenths)).sum()
    }

    /// One entry per participant, the rows totals are made of.
    pub fn entries(&self) -> Vec<ActivityEntry> {
        self.participants
            .values()
            .map(|p| ActivityEntry {
                activity: self.id,
                on: self.on,
                person: p.person,
                name: p.name.clone(),
                tenths: u32::from(p.tenths),
            })
            .collect()
    }
}

/// Hours as people write them: "2.5", "2", "0.5" (a comma is taken as the decimal point).
pub fn parse_hours(text: &str) -> Result<u16, HoursError> {
    let text = text.trim().replace(['，', ','], ".");
    let (whole, tenth) = match text.split_once('.') {
        Some((w, t)) => (w, t),
        None => (text.as_str(), ""),
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 3 && s.chars().all(|c| c.is_ascii_digit());
    if !digits(whole) || !(tenth.is_empty() || (tenth.len() == 1 && digits(tenth))) {
        return Err(HoursError::NotANumber);
    }
    let tenths = whole.parse::<u16>().unwrap_or(u16::MAX).saturating_mul(10) + tenth.parse::<u16>().unwrap_or(0);
    match tenths {
        0 => Err(HoursError::Zero),
        t if t > MAX_TENTHS => Err(HoursError::TooMany),
        t => Ok(t),
    }
}

/// Hours that cannot be accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error("give hours like 2 or 2.5 (one decimal at most)")]
    NotANumber,
    #[error("hours must be more than 0")]
    Zero,
    #[error("at most 24 hours a person a record")]
    TooMany,
}

impl HoursError {
    /// The same in Chinese.
    pub fn zh(self) -> &'static str {
        match self {
            HoursError::NotANumber => "时长请填数字，如 2 或 2.5（最多一位小数）",
            HoursError::Zero => "时长须大于 0",
            HoursError::TooMany => "每人每次最多 24 小时",
        }
    }
}

/// Tenths of an hour as text: 25 → "2.5", 20 → "2".
pub fn hours_text(tenths: u32) -> String {
    if tenths.is_multiple_of(10) { format!("{}", tenths / 10) } else { format!("{}.{}", tenths / 10, tenths % 10) }
}

/// One participant of one record: what the totals add up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityEntry {
    pub activity: ActivityId,
    pub on: NaiveDate,
    pub person: PersonRef,
    pub name: String,
    pub tenths: u32,
}

/// One person's hours and number of records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonTotal {
    pub person: PersonRef,
    pub name: String,
    pub tenths: u32,
    pub count: usize,
}

/// A group's hours: a party branch, the volunteers, or party members whose branch this roster
/// does not hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupTotal {
    /// The branch; `None` for the volunteers and the members of unknown branches.
    pub branch: Option<PartyBranchId>,
    /// The branch's name; empty for the other two.
    pub name: String,
    pub tenths: u32,
    /// Participations (one person in one record).
    pub count: usize,
    /// Most hours first, then by name.
    pub people: Vec<PersonTotal>,
}

/// Totals over a date range.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityTotals {
    /// Every branch of the roster, in roster order, with zero when nobody served.
    pub branches: Vec<GroupTotal>,
    pub volunteers: GroupTotal,
    /// Party members the roster no longer lists (or lists under a branch it does not hold).
    pub others: GroupTotal,
}

impl ActivityTotals {
    /// Hours of everyone, in tenths.
    pub fn tenths(&self) -> u32 {
        self.branches.iter().map(|b| b.tenths).sum::<u32>() + self.volunteers.tenths + self.others.tenths
    }

    /// One person's total, wherever they are grouped.
    pub fn person(&self, person: PersonRef) -> Option<&PersonTotal> {
        self.branches
            .iter()
            .chain([&self.volunteers, &self.others])
            .flat_map(|g| &g.people)
            .find(|p| p.person == person)
    }
}

/// Hours and counts per person and per party branch over the days `from..=to`. A party
/// member counts for their branch in `roster`; volunteers are grouped apart.
pub fn totals(entries: &[ActivityEntry], roster: &Roster, from: NaiveDate, to: NaiveDate) -> ActivityTotals {
    let member_branch: BTreeMap<PartyMemberId, PartyBranchId> =
        roster.party_members.iter().map(|m| (m.id, m.branch)).collect();
    let mut people: BTreeMap<PersonRef, PersonTotal> = BTreeMap::new();
    for entry in entries.iter().filter(|e| (from..=to).contains(&e.on)) {
        let total = people.entry(entry.person).or_insert_with(|| PersonTotal {
            person: entry.person,
            name: entry.name.clone(),
            tenths: 0,
            count: 0,
        });
        total.tenths += entry.tenths;
        total.count += 1;
    }
    let mut out = ActivityTotals {
        branches: roster
            .party_branches
            .iter()
            .map(|b| GroupTotal { branch: Some(b.id), name: b.name.clone(), ..GroupTotal::default() })
            .collect(),
        ..ActivityTotals::default()
    };
    for (person, total) in people {
        let group = match person {
            PersonRef::Volunteer(_) => &mut out.volunteers,
            PersonRef::PartyMember(id) => {
                let branch = member_branch.get(&id).copied();
                match out.branches.iter_mut().find(|g| g.branch.is_some() && g.branch == branch) {
                    Some(group) => group,
                    None => &mut out.others,
                }
            }
        };
        group.tenths += total.tenths;
        group.count += total.count;
        group.people.push(total);
    }
    for group in out.branches.iter_mut().chain([&mut out.volunteers, &mut out.others]) {
        group.people.sort_by(|a, b| b.tenths.cmp(&a.tenths).then_with(|| a.name.cmp(&b.name)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CommunityId, GridId, StreetId};
    use crate::party::{PartyBranch, PartyMember};

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    #[test]
    fn person_refs_round_trip_and_garbage_is_refused() {
        let member = PersonRef::PartyMember(PartyMemberId::from_u128(7));
        let volunteer = PersonRef::Volunteer(VolunteerId::from_u128(8));
        for person in [member, volunteer] {
            assert_eq!(person.to_string().parse::<PersonRef>().unwrap(), person);
        }
        assert!("staff:00000000-0000-0000-0000-000000000007".parse::<PersonRef>().is_err());
        assert!("volunteer:nope".parse::<PersonRef>().is_err());
        assert!("volunteer".parse::<PersonRef>().is_err());
    }

    #[test]
    fn hours_parse_in_tenths_and_refuse_zero_absurd_and_garbage() {
        assert_eq!(parse_hours("2.5"), Ok(25));
        assert_eq!(parse_hours(" 3 "), Ok(30));
        assert_eq!(parse_hours("0,5"), Ok(5));
        assert_eq!(parse_hours("24"), Ok(240));
        assert_eq!(parse_hours("24.1"), Err(HoursError::TooMany));
        assert_eq!(parse_hours("999"), Err(HoursError::TooMany));
        assert_eq!(parse_hours("0"), Err(HoursError::Zero));
        for bad in ["", "-1", "2.25", "两小时", "1e3", ".5"] {
            assert_eq!(parse_hours(bad), Err(HoursError::NotANumber), "{bad}");
        }
        assert_eq!((hours_text(25), hours_text(40)), ("2.5".to_string(), "4".to_string()));
    }

    #[test]
    fn totals_group_members_by_branch_volunteers_apart_within_the_dates() {
        let grid = GridId::from_u128(3);
        let (b1, b2) = (PartyBranchId::from_u128(31), PartyBranchId::from_u128(32));
        let member = |n: u128, branch| PartyMember {
            id: PartyMemberId::from_u128(n),
            branch,
            building: None,
            name: format!("党员{n}"),
            phone: String::new(),
            reported_at: day(1),
        };
        let roster = Roster {
            party_branches: vec![
                PartyBranch { id: b1, grid, name: "第1网格党支部".into(), phone: String::new() },
                PartyBranch { id: b2, grid, name: "第2网格党支部".into(), phone: String::new() },
            ],
            party_members: vec![member(51, b1), member(52, b1)],
            ..Roster::default()
        };
        let placement =
            Placement { street: StreetId::from_u128(1), community: CommunityId::from_u128(2), grid, building: None };
        let record = |n: u128, on: NaiveDate| {
            ActivityFile::new(
                ActivityId::from_u128(n),
                ActivityKind::VolunteerService,
                placement,
                "清理楼道",
                on,
                None,
                (UserId::from_u128(9), "刘芳"),
                1,
            )
        };
        let (m51, m52, m99) = (
            PersonRef::PartyMember(PartyMemberId::from_u128(51)),
            PersonRef::PartyMember(PartyMemberId::from_u128(52)),
            PersonRef::PartyMember(PartyMemberId::from_u128(99)),
        );
        let v = PersonRef::Volunteer(VolunteerId::from_u128(61));
        let mut first = record(1, day(3));
        first.add(m51, "党员51", 20);
        first.add(v, "王秀英", 15);
        let mut second = record(2, day(10));
        second.add(m51, "党员51", 5);
        second.add(m52, "党员52", 30);
        second.add(m99, "已调离", 10);
        let mut outside = record(3, day(20));
        outside.add(m51, "党员51", 100);
        let entries: Vec<ActivityEntry> = [first, second, outside].iter().flat_map(ActivityFile::entries).collect();

        let found = totals(&entries, &roster, day(1), day(15));
        assert_eq!(found.branches.len(), 2, "every branch is listed");
        assert_eq!((found.branches[0].tenths, found.branches[0].count), (55, 3));
        assert_eq!(found.branches[0].people[0].name, "党员52", "most hours first");
        assert_eq!((found.branches[1].tenths, found.branches[1].count), (0, 0));
        assert_eq!((found.volunteers.tenths, found.volunteers.count), (15, 1));
        assert_eq!(found.others.people[0].person, m99);
        assert_eq!(found.tenths(), 80);
        assert_eq!(found.person(m51).map(|p| (p.tenths, p.count)), Some((25, 2)));
        assert_eq!(totals(&entries, &roster, day(1), day(30)).person(m51).unwrap().tenths, 125);
    }
}
