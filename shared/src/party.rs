//! The "1" and two of the "3" of the 1234 method on the roster: grid party branches (网格党支部)
//! at the core, the building party groups (楼栋党小组) under them, the party members living in
//! the grid who reported to the community (在职党员进社区), and the volunteers (志愿者) with
//! their skills.
//!
//! These are reference data like the rest of the roster: written by the server's CSV import,
//! sent to the phones whose scopes reach into their community, never edited on a phone. A
//! party member or volunteer here has no login; one who uses the app is also on the staff
//! list (role `volunteer`).
//!
//! [`directory`] groups them for the phone's 党群 list: each branch with its groups and
//! members, then the volunteers.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ids::{BuildingId, CommunityId, GridId, PartyBranchId, PartyGroupId, PartyMemberId, VolunteerId};
use crate::org::Roster;
use crate::search::pinyin_forms;

/// A grid party branch (网格党支部): the core of its grid's work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyBranch {
    pub id: PartyBranchId,
    pub grid: GridId,
    /// For example "凤凰社区第3网格党支部".
    pub name: String,
    /// The branch's contact phone (often the secretary's); may be empty.
    pub phone: String,
}

/// A building party group (楼栋党小组) of a branch, for one building of the branch's grid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyGroup {
    pub id: PartyGroupId,
    pub branch: PartyBranchId,
    pub building: BuildingId,
    /// For example "滨湖小区7栋党小组".
    pub name: String,
}

/// A party member living in the grid who reported to the community (在职党员进社区报到).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyMember {
    pub id: PartyMemberId,
    pub branch: PartyBranchId,
    /// The building they live in, when known (a building of the branch's grid).
    pub building: Option<BuildingId>,
    pub name: String,
    pub phone: String,
    /// The day they reported to the community.
    pub reported_at: NaiveDate,
}

/// A volunteer (志愿者) on a community's register, with what they can do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volunteer {
    pub id: VolunteerId,
    pub community: CommunityId,
    pub name: String,
    pub phone: String,
    /// For example "助老", "家电维修", "法律咨询".
    pub skills: Vec<String>,
}

/// Most skills one volunteer may list, and the longest skill, in characters.
pub const MAX_SKILLS: usize = 10;
pub const MAX_SKILL_CHARS: usize = 20;

/// A skills list that cannot be accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SkillsError {
    #[error("more than {MAX_SKILLS} skills")]
    TooMany,
    #[error("the skill '{0}' is longer than {MAX_SKILL_CHARS} characters")]
    TooLong(String),
    #[error("a skill contains a control character")]
    Control,
}

impl SkillsError {
    /// The same in Chinese.
    pub fn zh(&self) -> String {
        match self {
            SkillsError::TooMany => format!("特长不能超过 {MAX_SKILLS} 项"),
            SkillsError::TooLong(skill) => format!("特长“{skill}”超过 {MAX_SKILL_CHARS} 个字"),
            SkillsError::Control => "特长中含有换行、制表符等控制字符".to_string(),
        }
    }
}

/// Splits a skills cell written as `助老;家电维修`, `助老、家电维修` or `助老，家电维修`
/// into its skills, trimmed, empty ones dropped, repeats kept once (first spelling wins).
pub fn parse_skills(text: &str) -> Result<Vec<String>, SkillsError> {
    if text.chars().any(char::is_control) {
        return Err(SkillsError::Control);
    }
    let mut skills: Vec<String> = Vec::new();
    for skill in text.split([';', '；', '、', ',', '，']).map(str::trim).filter(|s| !s.is_empty()) {
        if skill.chars().count() > MAX_SKILL_CHARS {
            return Err(SkillsError::TooLong(skill.to_string()));
        }
        if !skills.iter().any(|s| s == skill) {
            skills.push(skill.to_string());
        }
    }
    if skills.len() > MAX_SKILLS {
        return Err(SkillsError::TooMany);
    }
    Ok(skills)
}

/// One branch as the phone lists it: its groups (with their building's name, sorted by name)
/// and members (with the name of the building they live in, in pinyin order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchEntry {
    pub branch: PartyBranch,
    pub grid_name: String,
    pub groups: Vec<(PartyGroup, String)>,
    pub members: Vec<(PartyMember, String)>,
}

/// The 党群 list of one roster slice: branches by grid name, then volunteers in pinyin order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartyDirectory {
    pub branches: Vec<BranchEntry>,
    pub volunteers: Vec<Volunteer>,
}

impl PartyDirectory {
    pub fn is_empty(&self) -> bool {
        self.branches.is_empty() && self.volunteers.is_empty()
    }

    /// Party members over all branches.
    pub fn member_count(&self) -> usize {
        self.branches.iter().map(|b| b.members.len()).sum()
    }
}

/// Groups a roster's party branches, groups, members and volunteers for the 党群 list.
/// Members and groups of a branch that is not in the roster are left out (they cannot be
/// shown under anything).
pub fn directory(roster: &Roster) -> PartyDirectory {
    let grid_names: BTreeMap<GridId, &str> = roster.grids.iter().map(|g| (g.id, g.name.as_str())).collect();
    let building_names: BTreeMap<BuildingId, &str> = roster.buildings.iter().map(|b| (b.id, b.name.as_str())).collect();
    let building_name = |id: Option<BuildingId>| -> String {
        id.and_then(|b| building_names.get(&b).copied()).unwrap_or_default().to_string()
    };
    let mut branches: Vec<BranchEntry> = roster
        .party_branches
        .iter()
        .map(|branch| {
            let mut groups: Vec<(PartyGroup, String)> = roster
                .party_groups
                .iter()
                .filter(|g| g.branch == branch.id)
                .map(|g| (g.clone(), building_name(Some(g.building))))
                .collect();
            groups.sort_by(|a, b| (&a.0.name, a.0.id).cmp(&(&b.0.name, b.0.id)));
            let mut members: Vec<(PartyMember, String)> = roster
                .party_members
                .iter()
                .filter(|m| m.branch == branch.id)
                .map(|m| (m.clone(), building_name(m.building)))
                .collect();
            members.sort_by_cached_key(|(m, _)| (pinyin_forms(&m.name).0, m.id));
            BranchEntry {
                branch: branch.clone(),
                grid_name: grid_names.get(&branch.grid).copied().unwrap_or_default().to_string(),
                groups,
                members,
            }
        })
        .collect();
    branches
        .sort_by(|a, b| (&a.grid_name, &a.branch.name, a.branch.id).cmp(&(&b.grid_name, &b.branch.name, b.branch.id)));
    let mut volunteers = roster.volunteers.clone();
    volunteers.sort_by_cached_key(|v| (pinyin_forms(&v.name).0, v.id));
    PartyDirectory { branches, volunteers }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::{Building, Grid};

    #[test]
    fn skills_split_on_any_common_separator_and_keep_each_once() {
        assert_eq!(
            parse_skills("助老; 家电维修、法律咨询，助老,理发").unwrap(),
            ["助老", "家电维修", "法律咨询", "理发"]
        );
        assert_eq!(parse_skills("").unwrap(), Vec::<String>::new());
        assert_eq!(parse_skills(" ; 、 ").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn skills_refuse_too_many_too_long_and_control_characters() {
        let eleven: Vec<String> = (1..=11).map(|n| format!("特长{n}")).collect();
        assert_eq!(parse_skills(&eleven.join(";")), Err(SkillsError::TooMany));
        let long = "修".repeat(MAX_SKILL_CHARS + 1);
        assert_eq!(parse_skills(&format!("助老;{long}")), Err(SkillsError::TooLong(long)));
        assert_eq!(parse_skills("助老\n理发"), Err(SkillsError::Control));
        assert!(SkillsError::TooMany.zh().contains("10"));
    }

    #[test]
    fn the_directory_puts_groups_and_members_under_their_branch_sorted_by_name() {
        let community = CommunityId::from_u128(1);
        let (g1, g2) = (GridId::from_u128(11), GridId::from_u128(12));
        let building = BuildingId::from_u128(21);
        let (b1, b2) = (PartyBranchId::from_u128(31), PartyBranchId::from_u128(32));
        let date = NaiveDate::from_ymd_opt(2019, 3, 12).unwrap();
        let member = |n: u128, name: &str, branch, building| PartyMember {
            id: PartyMemberId::from_u128(n),
            branch,
            building,
            name: name.to_string(),
            phone: "13907140001".to_string(),
            reported_at: date,
        };
        let roster = Roster {
            grids: vec![
                Grid { id: g2, community, name: "凤凰社区第2网格".into() },
                Grid { id: g1, community, name: "凤凰社区第1网格".into() },
            ],
            buildings: vec![Building {
                id: building,
                grid: g1,
                name: "滨湖小区7栋".into(),
                units: 2,
                floors: 6,
                rooms_per_floor: 2,
            }],
            party_branches: vec![
                PartyBranch { id: b2, grid: g2, name: "第2网格党支部".into(), phone: String::new() },
                PartyBranch { id: b1, grid: g1, name: "第1网格党支部".into(), phone: "0711-3220001".into() },
            ],
            party_groups: vec![PartyGroup {
                id: PartyGroupId::from_u128(41),
                branch: b1,
                building,
                name: "7栋党小组".into(),
            }],
            party_members: vec![
                member(51, "郑晓燕", b1, None),
                member(52, "陈志刚", b1, Some(building)),
                member(53, "胡德明", b2, None),
                member(54, "无支部", PartyBranchId::from_u128(99), None),
            ],
            volunteers: vec![
                Volunteer {
                    id: VolunteerId::from_u128(61),
                    community,
                    name: "王秀英".into(),
                    phone: "13907140061".into(),
                    skills: vec!["助老".into()],
                },
                Volunteer {
                    id: VolunteerId::from_u128(62),
                    community,
                    name: "李卫东".into(),
                    phone: "13907140062".into(),
                    skills: vec![],
                },
            ],
            ..Roster::default()
        };
        let found = directory(&roster);
        let branches: Vec<&str> = found.branches.iter().map(|b| b.branch.name.as_str()).collect();
        assert_eq!(branches, ["第1网格党支部", "第2网格党支部"], "by grid name");
        let first = &found.branches[0];
        assert_eq!(first.grid_name, "凤凰社区第1网格");
        assert_eq!(first.groups[0].1, "滨湖小区7栋");
        let members: Vec<(&str, &str)> = first.members.iter().map(|(m, b)| (m.name.as_str(), b.as_str())).collect();
        assert_eq!(members, [("陈志刚", "滨湖小区7栋"), ("郑晓燕", "")]);
        assert_eq!(found.member_count(), 3, "a member of an unknown branch is not listed");
        let volunteers: Vec<&str> = found.volunteers.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(volunteers, ["李卫东", "王秀英"]);
        assert!(!found.is_empty() && directory(&Roster::default()).is_empty());
    }
}
