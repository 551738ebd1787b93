//! The supervisors' figures (督导统计), defined once: must-visit coverage (四必访覆盖), must-arrive
//! timeliness (四必到), case completion (办结率, 限时办结率), satisfaction (满意度), visits and weekly
//! trends, as pure functions over plain rows ("facts"), with a drill-down for every number.
//!
//! The server materialises the facts whenever it writes a document
//! ([`HouseholdFacts::from_file`], [`CaseFacts::from_case`]); its SQL only fetches rows; the
//! console, the Excel ledgers and (later) the phone call these functions, so all show the same
//! numbers. Every rule comes from [`crate::policy`]: the same functions decide what is due,
//! late or done for a document and for its facts.
//!
//! # Definitions
//!
//! * **Clocks.** Instants are UTC milliseconds; days and weeks are Asia/Shanghai calendar days
//!   and Monday-to-Sunday weeks. A [`Period`] is half-open, `[from, to)`. `now` decides what is
//!   overdue; the facts are taken as they stand (a period that ended last month still counts a
//!   case completed this morning as completed).
//! * **Must-visit coverage 四必访覆盖** (at `now`, no period): per tag, the *active* households
//!   carrying it (tagged 在册), split into covered 已覆盖 (met on or after the tag's start date,
//!   and the next visit is not yet overdue: due today still counts as covered), pending 待首访
//!   (not met since the tag started, first window still open) and overdue 逾期 (due date before
//!   today). Only a visit that *met* the household counts; "not home" and "refused" do not. A
//!   visit stamped later than `now` counts as `now`. A visit before the tag's start date does
//!   not count towards that tag. A new arrival (新迁入) with its one visit is covered.
//!   Moved-out households are left out; tags without a configured cadence are left out.
//! * **Must-arrive 四必到** (events reported in the period): on time 按时到场 (first arrival at or
//!   before the arrival deadline), late 迟到 (after it), not yet 未到场 (no arrival recorded),
//!   of which past the deadline 超时未到. An event closed without an arrival stays "not yet".
//!   The median minutes to arrive 到场用时中位数 is over arrived events, from report to first
//!   arrival (an arrival stamped before the report counts as 0). On-time rate 到场及时率 = on
//!   time / (events − not yet but still within the deadline).
//! * **Cases 事件** (reported in the period, by `reported_at`): completed 已办结 (resolved or
//!   closed now), 办结率 = completed / opened; completed on time 按时办结 (completed at or before
//!   the completion deadline), 限时办结率 = on time / completed; a case completed after its
//!   deadline is completed but late 超时办结; overdue now 逾期未办结 = open with the deadline
//!   passed. A reopened case 重新打开 gets a fresh completion window from the (last) reopening,
//!   and counts as open until it is completed again. Broken down by [`CaseKind`].
//! * **Satisfaction 满意度** (cases reported in the period): the score given at the latest close
//!   that moved the status, as [`CaseFile::satisfaction`] says; a case reopened after a scored
//!   close keeps that score until it is closed again. Average and distribution over 1–5.
//! * **Micro-wishes 微心愿** (posted in the period): claimed 已认领, fulfilled 已实现, thanked 已致谢
//!   now, from the derived status; each count includes the later stages.
//! * **Visits 走访** (visits whose counted time falls in the period): all, met 已见面, not home
//!   不在家, refused 拒绝.
//! * **Weekly trends 周趋势**: the case, must-arrive, satisfaction and visit figures per
//!   Asia/Shanghai week of the period, each week clipped to the period, so weeks sum to the
//!   period's counts.
//! * **Groups.** Rows belong to the street, community and grid of their grid as the roster
//!   says (a grid the roster does not know falls back to the row's own placement), and to a
//!   grid worker through the workers of their grid (staff with a `grid:` scope). A grid with
//!   two workers counts under both; a grid without one counts only in the total.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::case::{CaseFile, CaseKind};
use crate::codes::{CaseStatus, HelpNeed, HouseholdStatus, MustArriveKind, MustVisitTag, Role, VisitOutcome};
use crate::household::{HouseholdFile, Visit};
use crate::ids::{BuildingId, CaseId, CommunityId, GridId, HouseholdId, StreetId, UserId, VisitId};
use crate::org::{Placement, Roster, Scope};
use crate::policy::{self, ArrivalState, CaseTally, CompletionState, PolicyConfig, VisitDue};
use crate::time::{MINUTE_MS, Millis, local_date, start_of_local_day};

// ---------------------------------------------------------------------------------------------
// Facts: plain rows, materialised from the documents.

/// One household as a plain row (一户一档 without the residents' personal data).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HouseholdFacts {
    pub id: HouseholdId,
    pub placement: Placement,
    /// "滨湖小区7栋2单元302室".
    pub address: String,
    /// Head of household (户主).
    pub head: String,
    pub status: HouseholdStatus,
    pub moved_out_on: Option<NaiveDate>,
    /// Must-visit tags (四必访) with their start dates.
    pub tags: BTreeMap<MustVisitTag, NaiveDate>,
    /// Open help needs (五助).
    pub needs: Vec<HelpNeed>,
    pub created_at: Millis,
}

/// One visit (走访) as a plain row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VisitFacts {
    pub id: VisitId,
    pub household: HouseholdId,
    /// The household's placement (its grid decides the group).
    pub placement: Placement,
    pub visitor: UserId,
    pub visitor_name: String,
    /// When it happened, as the phone stamped it.
    pub at: Millis,
    /// When it was typed in.
    pub recorded_at: Millis,
    pub outcome: VisitOutcome,
}

/// One case (事件) as a plain row: its timeline folded into the instants the figures need.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseFacts {
    pub id: CaseId,
    pub placement: Placement,
    pub household: Option<HouseholdId>,
    pub kind: CaseKind,
    pub title: String,
    /// Status now, derived from the timeline.
    pub status: CaseStatus,
    pub reported_at: Millis,
    pub reporter: UserId,
    pub reporter_name: String,
    /// The person responsible now (首问负责, after any reassignment).
    pub responsible: UserId,
    pub responsible_name: String,
    /// Must-arrive (四必到) deadline; `None` for other kinds.
    pub arrival_deadline: Option<Millis>,
    /// First arrival on site, in causal order.
    pub first_arrival: Option<Millis>,
    /// Completion deadline (限时办结), restarted by the last reopening.
    pub completion_deadline: Millis,
    /// When the case was last completed (resolved or closed), if it is done now.
    pub completed_at: Option<Millis>,
    /// Score at the latest close that moved the status.
    pub satisfaction: Option<u8>,
    /// Times reopened.
    pub reopened: usize,
}

impl HouseholdFacts {
    /// The household row and one row per visit, from the household file.
    pub fn from_file(file: &HouseholdFile) -> (HouseholdFacts, Vec<VisitFacts>) {
        let facts = HouseholdFacts {
            id: file.id,
            placement: file.placement,
            address: file.address(),
            head: file.head.clone(),
            status: file.status,
            moved_out_on: file.moved_out_on,
            tags: file.tags.iter().map(|(tag, entry)| (*tag, entry.since)).collect(),
            needs: file.needs.keys().copied().collect(),
            created_at: file.created_at,
        };
        let visits = file.visits.values().map(|v| VisitFacts::from_visit(file, v)).collect();
        (facts, visits)
    }

    /// Whether the household still lives here (moved-out households have no obligations).
    pub fn is_active(&self) -> bool {
        policy::has_visit_obligations(self.status)
    }
}

impl VisitFacts {
    pub fn from_visit(file: &HouseholdFile, visit: &Visit) -> VisitFacts {
        VisitFacts {
            id: visit.id,
            household: file.id,
            placement: file.placement,
            visitor: visit.visitor,
            visitor_name: visit.visitor_name.clone(),
            at: visit.at,
            recorded_at: visit.recorded_at,
            outcome: visit.outcome,
        }
    }
}

impl CaseFacts {
    /// The case row, with deadlines from `config` (the case's community's policy).
    pub fn from_case(case: &CaseFile, config: &PolicyConfig) -> CaseFacts {
        let (responsible, responsible_name) = case.responsible();
        CaseFacts {
            id: case.id,
            placement: case.placement,
            household: case.household,
            kind: case.kind,
            title: case.title.clone(),
            status: case.status(),
            reported_at: case.reported_at,
            reporter: case.reporter,
            reporter_name: case.reporter_name.clone(),
            responsible,
            responsible_name,
            arrival_deadline: policy::arrival_deadline(case, config),
            first_arrival: policy::first_arrival(case),
            completion_deadline: policy::completion_deadline(case, config),
            completed_at: policy::completed_at(case),
            satisfaction: case.satisfaction(),
            reopened: policy::times_reopened(case),
        }
    }

    /// As [`policy::completion_state`] says for the document.
    pub fn completion_state(&self, now: Millis) -> CompletionState {
        policy::completion_state_at(self.completion_deadline, self.completed_at, now)
    }

    /// As [`policy::arrival_state`] says for the document; `None` unless a must-arrive event.
    pub fn arrival_state(&self, now: Millis) -> Option<ArrivalState> {
        Some(policy::arrival_state_at(self.arrival_deadline?, self.first_arrival, now))
    }

    /// Minutes from report to first arrival (0 when the arrival is stamped before the report).
    pub fn minutes_to_arrive(&self) -> Option<f64> {
        self.first_arrival.map(|at| millis_to_minutes((at - self.reported_at).max(0)))
    }
}

fn millis_to_minutes(ms: Millis) -> f64 {
    ms as f64 / MINUTE_MS as f64
}

/// All the rows of a dataset, owned.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub households: Vec<HouseholdFacts>,
    pub visits: Vec<VisitFacts>,
    pub cases: Vec<CaseFacts>,
}

impl Facts {
    /// These rows brought up to date with `changed`: changed households (with *all* their
    /// visits) and changed cases replace their older copies, in id order. This is how a cache
    /// of a scope's rows follows the store without reading every row again.
    pub fn with_changes(&self, changed: Facts) -> Facts {
        let households: std::collections::HashSet<HouseholdId> = changed.households.iter().map(|h| h.id).collect();
        let cases: std::collections::HashSet<CaseId> = changed.cases.iter().map(|c| c.id).collect();
        let mut merged = Facts {
            households: self.households.iter().filter(|h| !households.contains(&h.id)).cloned().collect(),
            visits: self.visits.iter().filter(|v| !households.contains(&v.household)).cloned().collect(),
            cases: self.cases.iter().filter(|c| !cases.contains(&c.id)).cloned().collect(),
        };
        merged.households.extend(changed.households);
        merged.visits.extend(changed.visits);
        merged.cases.extend(changed.cases);
        merged.households.sort_by_key(|h| h.id);
        merged.visits.sort_by_key(|v| v.id);
        merged.cases.sort_by_key(|c| c.id);
        merged
    }

    /// The rows of these documents, in their order.
    pub fn from_documents(households: &[HouseholdFile], cases: &[CaseFile], config: &PolicyConfig) -> Facts {
        let mut facts = Facts::default();
        for file in households {
            let (household, visits) = HouseholdFacts::from_file(file);
            facts.households.push(household);
            facts.visits.extend(visits);
        }
        facts.cases = cases.iter().map(|c| CaseFacts::from_case(c, config)).collect();
        facts
    }
}

// ---------------------------------------------------------------------------------------------
// Periods: Asia/Shanghai days and weeks.

/// A span of time, `[from, to)` in UTC milliseconds, usually whole Asia/Shanghai days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Period {
    pub from: Millis,
    pub to: Millis,
}

impl Period {
    /// The Asia/Shanghai days `first` to `last`, both included.
    pub fn days(first: NaiveDate, last: NaiveDate) -> Period {
        Period { from: start_of_local_day(first), to: start_of_local_day(last + chrono::Duration::days(1)) }
    }

    /// The Monday-to-Sunday week (Asia/Shanghai) containing `date`.
    pub fn week_of(date: NaiveDate) -> Period {
        let monday = monday_of(date);
        Period::days(monday, monday + chrono::Duration::days(6))
    }

    /// The calendar month (Asia/Shanghai) containing `date`.
    pub fn month_of(date: NaiveDate) -> Period {
        let first = date.with_day(1).unwrap_or(date);
        let next = first.checked_add_months(chrono::Months::new(1)).unwrap_or(first);
        Period { from: start_of_local_day(first), to: start_of_local_day(next) }
    }

    /// This week in Asia/Shanghai, to its end (next Monday 00:00), not just to `now`.
    pub fn this_week(now: Millis) -> Period {
        Period::week_of(local_date(now))
    }

    /// This month in Asia/Shanghai, to its end.
    pub fn this_month(now: Millis) -> Period {
        Period::month_of(local_date(now))
    }

    pub fn contains(&self, at: Millis) -> bool {
        self.from <= at && at < self.to
    }

    /// The Asia/Shanghai weeks overlapping the period, each clipped to it, in order.
    pub fn weeks(&self) -> Vec<Period> {
        let mut weeks = Vec::new();
        if self.from >= self.to {
            return weeks;
        }
        let mut monday = monday_of(local_date(self.from));
        loop {
            let start = start_of_local_day(monday);
            if start >= self.to {
                return weeks;
            }
            monday += chrono::Duration::days(7);
            weeks.push(Period { from: start.max(self.from), to: start_of_local_day(monday).min(self.to) });
        }
    }

    /// Which of [`Period::weeks`] an instant inside the period falls in.
    fn week_index(&self, at: Millis) -> usize {
        let first = monday_of(local_date(self.from));
        usize::try_from((monday_of(local_date(at)) - first).num_days() / 7).unwrap_or(0)
    }
}

fn monday_of(date: NaiveDate) -> NaiveDate {
    date - chrono::Duration::days(i64::from(date.weekday().num_days_from_monday()))
}

// ---------------------------------------------------------------------------------------------
// Groups: street, community, grid, grid worker, resolved through the roster.

/// What the figures are broken down by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupBy {
    Street,
    Community,
    Grid,
    /// Grid workers (网格员), through the grids on their scopes.
    Worker,
}

/// One group. Written `street:<uuid>`, `community:<uuid>`, `grid:<uuid>`, `worker:<uuid>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupKey {
    Street(StreetId),
    Community(CommunityId),
    Grid(GridId),
    Worker(UserId),
}

impl std::fmt::Display for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupKey::Street(id) => write!(f, "street:{id}"),
            GroupKey::Community(id) => write!(f, "community:{id}"),
            GroupKey::Grid(id) => write!(f, "grid:{id}"),
            GroupKey::Worker(id) => write!(f, "worker:{id}"),
        }
    }
}

/// A group key string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid group '{0}': expected street:ID, community:ID, grid:ID or worker:ID")]
pub struct InvalidGroupKey(pub String);

impl std::str::FromStr for GroupKey {
    type Err = InvalidGroupKey;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidGroupKey(s.to_string());
        let (kind, id) = s.split_once(':').ok_or_else(bad)?;
        Ok(match kind {
            "street" => GroupKey::Street(id.parse().map_err(|_| bad())?),
            "community" => GroupKey::Community(id.parse().map_err(|_| bad())?),
            "grid" => GroupKey::Grid(id.parse().map_err(|_| bad())?),
            "worker" => GroupKey::Worker(id.parse().map_err(|_| bad())?),
            _ => return Err(bad()),
        })
    }
}

impl Serialize for GroupKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GroupKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a grid sits and who works it, per the roster.
#[derive(Clone, Debug)]
struct GridInfo {
    street: StreetId,
    community: CommunityId,
    workers: Vec<UserId>,
}

/// A row's place once resolved through the roster.
struct Resolved<'g> {
    street: StreetId,
    community: CommunityId,
    grid: GridId,
    workers: &'g [UserId],
}

/// The roster, indexed once for grouping rows: grid → community → street, grid → workers,
/// group names, and optionally a scope that rows must fall within.
#[derive(Clone, Debug)]
pub struct Grouping {
    by: GroupBy,
    scope: Option<Scope>,
    grids: HashMap<GridId, GridInfo>,
    /// Every group of the roster (within the scope), so empty groups show as zeros.
    keys: Vec<GroupKey>,
    labels: HashMap<GroupKey, String>,
}

impl Grouping {
    /// Groups over the whole roster.
    pub fn new(roster: &Roster, by: GroupBy) -> Grouping {
        Grouping::build(roster, by, None)
    }

    /// Groups within `scope` only: rows outside it are left out of every figure and list, and
    /// only the groups with a grid inside it are listed.
    pub fn within(roster: &Roster, by: GroupBy, scope: Scope) -> Grouping {
        Grouping::build(roster, by, Some(scope))
    }

    fn build(roster: &Roster, by: GroupBy, scope: Option<Scope>) -> Grouping {
        let streets_of: HashMap<CommunityId, StreetId> = roster.communities.iter().map(|c| (c.id, c.street)).collect();
        let mut grids: HashMap<GridId, GridInfo> = roster
            .grids
            .iter()
            .filter_map(|g| {
                let street = *streets_of.get(&g.community)?;
                Some((g.id, GridInfo { street, community: g.community, workers: Vec::new() }))
            })
            .collect();
        for staff in roster.staff.iter().filter(|s| s.role == Role::GridWorker) {
            for scope in &staff.scopes {
                if let Scope::Grid(grid) = scope
                    && let Some(info) = grids.get_mut(grid)
                    && !info.workers.contains(&staff.id)
                {
                    info.workers.push(staff.id);
                }
            }
        }
        let building_grid: HashMap<BuildingId, GridId> = roster.buildings.iter().map(|b| (b.id, b.grid)).collect();
        let mut grouping = Grouping { by, scope, grids, keys: Vec::new(), labels: HashMap::new() };
        let mut keys = std::collections::BTreeSet::new();
        for grid in &roster.grids {
            let Some(info) = grouping.grids.get(&grid.id) else { continue };
            let in_scope = match scope {
                None => true,
                Some(Scope::Building(b)) => building_grid.get(&b) == Some(&grid.id),
                Some(scope) => {
                    Placement { street: info.street, community: info.community, grid: grid.id, building: None }
                        .is_within(&scope)
                }
            };
            if in_scope {
                let resolved =
                    Resolved { street: info.street, community: info.community, grid: grid.id, workers: &info.workers };
                keys.extend(grouping.keys_of(&resolved));
            }
        }
        grouping.keys = keys.into_iter().collect();
        let names = roster
            .streets
            .iter()
            .map(|s| (GroupKey::Street(s.id), &s.name))
            .chain(roster.communities.iter().map(|c| (GroupKey::Community(c.id), &c.name)))
            .chain(roster.grids.iter().map(|g| (GroupKey::Grid(g.id), &g.name)))
            .chain(
                roster.staff.iter().filter(|s| s.role == Role::GridWorker).map(|s| (GroupKey::Worker(s.id), &s.name)),
            );
        grouping.labels = names.map(|(key, name)| (key, name.clone())).collect();
        grouping
    }

    pub fn by(&self) -> GroupBy {
        self.by
    }

    /// The groups listed in every figure (all of the roster's, within the scope), in key order.
    pub fn keys(&self) -> &[GroupKey] {
        &self.keys
    }

    /// The roster's name for a group: street, community, grid or worker name.
    pub fn label(&self, key: &GroupKey) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// The row's street, community, grid and workers, or `None` when outside the scope.
    fn resolve(&self, placement: &Placement) -> Option<Resolved<'_>> {
        let resolved = match self.grids.get(&placement.grid) {
            Some(info) => Resolved {
                street: info.street,
                community: info.community,
                grid: placement.grid,
                workers: &info.workers,
            },
            // A grid the roster no longer knows: trust the row, with no workers.
            None => Resolved {
                street: placement.street,
                community: placement.community,
                grid: placement.grid,
                workers: &[],
            },
        };
        let within = self.scope.is_none_or(|scope| {
            Placement {
                street: resolved.street,
                community: resolved.community,
                grid: resolved.grid,
                building: placement.building,
            }
            .is_within(&scope)
        });
        within.then_some(resolved)
    }

    /// The groups of a resolved row under [`Grouping::by`].
    fn keys_of<'g>(&self, row: &Resolved<'g>) -> impl Iterator<Item = GroupKey> + 'g {
        let single = match self.by {
            GroupBy::Street => Some(GroupKey::Street(row.street)),
            GroupBy::Community => Some(GroupKey::Community(row.community)),
            GroupBy::Grid => Some(GroupKey::Grid(row.grid)),
            GroupBy::Worker => None,
        };
        let workers: &'g [UserId] = if self.by == GroupBy::Worker { row.workers } else { &[] };
        single.into_iter().chain(workers.iter().map(|w| GroupKey::Worker(*w)))
    }

    /// The groups (under [`Grouping::by`]) a row with this placement counts in; empty when
    /// outside the scope.
    pub fn groups_of(&self, placement: &Placement) -> Vec<GroupKey> {
        self.resolve(placement).map(|row| self.keys_of(&row).collect()).unwrap_or_default()
    }

    /// Whether a row with this placement belongs to `group` (any kind of key, whatever
    /// [`Grouping::by`] is), or to the whole scope when `group` is `None`.
    pub fn includes(&self, group: Option<&GroupKey>, placement: &Placement) -> bool {
        let Some(row) = self.resolve(placement) else { return false };
        match group {
            None => true,
            Some(GroupKey::Street(id)) => row.street == *id,
            Some(GroupKey::Community(id)) => row.community == *id,
            Some(GroupKey::Grid(id)) => row.grid == *id,
            Some(GroupKey::Worker(id)) => row.workers.contains(id),
        }
    }
}

/// A figure for the whole scope and for each group. The total counts every row once, so it is
/// not always the sum of the groups (a grid with two workers, a grid with none).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grouped<T> {
    pub total: T,
    pub groups: BTreeMap<GroupKey, T>,
}

/// Accumulates one tally for the total and one per group.
struct GroupedTally<A> {
    total: A,
    groups: BTreeMap<GroupKey, A>,
}

impl<A: Clone> GroupedTally<A> {
    fn new(grouping: &Grouping, empty: A) -> Self {
        let groups = grouping.keys().iter().map(|k| (*k, empty.clone())).collect();
        GroupedTally { total: empty, groups }
    }

    /// Adds a row to the total and its groups; a row outside the scope is skipped.
    fn add(&mut self, grouping: &Grouping, placement: &Placement, empty: &A, mut add: impl FnMut(&mut A)) {
        let Some(row) = grouping.resolve(placement) else { return };
        add(&mut self.total);
        for key in grouping.keys_of(&row) {
            add(self.groups.entry(key).or_insert_with(|| empty.clone()));
        }
    }

    fn finish<T>(self, finish: impl Fn(A) -> T) -> Grouped<T> {
        Grouped { total: finish(self.total), groups: self.groups.into_iter().map(|(k, a)| (k, finish(a))).collect() }
    }
}

// ---------------------------------------------------------------------------------------------
// Must-visit coverage (四必访覆盖).

/// Where one must-visit tag of a household stands at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Standing {
    /// 已覆盖: met since the tag started, next visit not overdue (or a new arrival's one visit done).
    Covered,
    /// 待首访: not met since the tag started, but its first window is still open.
    Pending,
    /// 逾期: the due date is before today.
    Overdue,
}

/// The standing of one tag given the household's met-visit times
/// ([`policy::met_visit_times`]); `None` when the configuration sets no cadence for the tag.
/// The due date is `None` for a new arrival that has had its visit.
pub fn tag_standing(
    tag: MustVisitTag,
    since: NaiveDate,
    met_times: &[Millis],
    now: Millis,
    config: &PolicyConfig,
) -> Option<(Standing, Option<VisitDue>)> {
    config.visit_every_days.get(&tag)?;
    let due = policy::tag_due(tag, since, policy::last_met_since(met_times, since), now, config);
    let standing = match &due {
        None => Standing::Covered,
        Some(d) if matches!(d.state, policy::DueState::Overdue { .. }) => Standing::Overdue,
        Some(d) if d.last_met.is_some() => Standing::Covered,
        Some(_) => Standing::Pending,
    };
    Some((standing, due))
}

/// Counts for one must-visit tag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TagCoverage {
    /// 在册: active households carrying the tag.
    pub tagged: usize,
    pub covered: usize,
    pub pending: usize,
    pub overdue: usize,
    /// 覆盖率: covered / tagged (1.0 when none are tagged).
    pub coverage_rate: f64,
}

/// Must-visit coverage at `now`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CoverageFigures {
    /// Every tag with a configured cadence, even when no household carries it.
    pub by_tag: BTreeMap<MustVisitTag, TagCoverage>,
    /// Active households with at least one tag (each counted once).
    pub households_tagged: usize,
    /// Active households with at least one overdue tag (each counted once).
    pub households_overdue: usize,
}

/// The household behind a coverage figure: the figure's tag (for a per-household figure, the
/// most urgent tag) and where it stands.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CoverageRow<'a> {
    pub household: &'a HouseholdFacts,
    pub tag: MustVisitTag,
    pub standing: Standing,
    /// `None` for a new arrival that has had its one visit.
    pub due: Option<VisitDue>,
}

/// The coverage figures a drill-down can list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "figure", content = "tag")]
pub enum HouseholdFigure {
    Tagged(MustVisitTag),
    Covered(MustVisitTag),
    Pending(MustVisitTag),
    Overdue(MustVisitTag),
    HouseholdsTagged,
    HouseholdsOverdue,
}

/// One household's tags and their standings: the one classification behind the coverage
/// counts and the coverage lists.
struct HouseholdClass {
    /// In tag order.
    standings: Vec<(MustVisitTag, Standing, Option<VisitDue>)>,
}

impl HouseholdClass {
    fn of(household: &HouseholdFacts, met_times: &[Millis], now: Millis, config: &PolicyConfig) -> Option<Self> {
        if !household.is_active() {
            return None;
        }
        let standings = household
            .tags
            .iter()
            .filter_map(|(tag, since)| {
                let (standing, due) = tag_standing(*tag, *since, met_times, now, config)?;
                Some((*tag, standing, due))
            })
            .collect();
        Some(HouseholdClass { standings })
    }

    fn tag(&self, tag: MustVisitTag) -> Option<&(MustVisitTag, Standing, Option<VisitDue>)> {
        self.standings.iter().find(|(t, _, _)| *t == tag)
    }

    /// The most urgent tag: overdue first, then the earliest due date; done new arrivals last.
    fn most_urgent(&self, overdue_only: bool) -> Option<&(MustVisitTag, Standing, Option<VisitDue>)> {
        self.standings.iter().filter(|(_, s, _)| !overdue_only || *s == Standing::Overdue).min_by_key(
            |(tag, standing, due)| {
                (*standing != Standing::Overdue, due.is_none(), due.as_ref().map(|d| d.due_on), *tag)
            },
        )
    }

    /// The row behind `figure`, if this household is one.
    fn row<'a>(&self, household: &'a HouseholdFacts, figure: HouseholdFigure) -> Option<CoverageRow<'a>> {
        let entry = match figure {
            HouseholdFigure::Tagged(tag) => self.tag(tag),
            HouseholdFigure::Covered(tag) => self.tag(tag).filter(|e| e.1 == Standing::Covered),
            HouseholdFigure::Pending(tag) => self.tag(tag).filter(|e| e.1 == Standing::Pending),
            HouseholdFigure::Overdue(tag) => self.tag(tag).filter(|e| e.1 == Standing::Overdue),
            HouseholdFigure::HouseholdsTagged => self.most_urgent(false),
            HouseholdFigure::HouseholdsOverdue => self.most_urgent(true),
        }?;
        Some(CoverageRow { household, tag: entry.0, standing: entry.1, due: entry.2.clone() })
    }
}

/// Met-visit times per household, from one pass over the visits.
fn met_times_by_household(visits: &[VisitFacts], now: Millis) -> HashMap<HouseholdId, Vec<Millis>> {
    let mut by_household: HashMap<HouseholdId, Vec<(Millis, VisitOutcome)>> = HashMap::new();
    for v in visits {
        by_household.entry(v.household).or_default().push((v.at, v.outcome));
    }
    by_household.into_iter().map(|(id, visits)| (id, policy::met_visit_times(visits, now))).collect()
}

/// Must-visit coverage (四必访覆盖) at `now`, per tag. See the module docs for the rules.
pub fn must_visit_coverage(
    households: &[HouseholdFacts],
    visits: &[VisitFacts],
    now: Millis,
    config: &PolicyConfig,
    grouping: &Grouping,
) -> Grouped<CoverageFigures> {
    let met = met_times_by_household(visits, now);
    let empty = CoverageFigures {
        by_tag: config.visit_every_days.keys().map(|t| (*t, TagCoverage::default())).collect(),
        ..CoverageFigures::default()
    };
    let mut tally = GroupedTally::new(grouping, empty.clone());
    for household in households {
        let met_times = met.get(&household.id).map(Vec::as_slice).unwrap_or(&[]);
        let Some(class) = HouseholdClass::of(household, met_times, now, config) else { continue };
        tally.add(grouping, &household.placement, &empty, |figures| {
            for (tag, standing, _) in &class.standings {
                let counts = figures.by_tag.entry(*tag).or_default();
                counts.tagged += 1;
                match standing {
                    Standing::Covered => counts.covered += 1,
                    Standing::Pending => counts.pending += 1,
                    Standing::Overdue => counts.overdue += 1,
                }
            }
            figures.households_tagged += usize::from(!class.standings.is_empty());
            figures.households_overdue += usize::from(class.standings.iter().any(|s| s.1 == Standing::Overdue));
        });
    }
    tally.finish(|mut figures| {
        for counts in figures.by_tag.values_mut() {
            counts.coverage_rate = policy::ratio(counts.covered, counts.tagged);
        }
        figures
    })
}

/// The households behind a coverage figure of `group` (or of the whole scope), most urgent
/// first: `rows.len()` is the figure.
pub fn coverage_rows<'a>(
    households: &'a [HouseholdFacts],
    visits: &[VisitFacts],
    figure: HouseholdFigure,
    group: Option<&GroupKey>,
    now: Millis,
    config: &PolicyConfig,
    grouping: &Grouping,
) -> Vec<CoverageRow<'a>> {
    let met = met_times_by_household(visits, now);
    let mut rows: Vec<CoverageRow<'a>> = households
        .iter()
        .filter(|h| grouping.includes(group, &h.placement))
        .filter_map(|h| {
            let met_times = met.get(&h.id).map(Vec::as_slice).unwrap_or(&[]);
            HouseholdClass::of(h, met_times, now, config)?.row(h, figure)
        })
        .collect();
    rows.sort_by(|a, b| {
        let key = |r: &CoverageRow<'_>| (r.due.as_ref().map(|d| d.due_on), r.tag, r.household.id);
        (a.due.is_none(), key(a)).cmp(&(b.due.is_none(), key(b)))
    });
    rows
}

// ---------------------------------------------------------------------------------------------
// Cases: must-arrive, completion, satisfaction.

/// The case figures a drill-down can list. Every one is over cases reported in the period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "figure", content = "score")]
pub enum CaseFigure {
    /// 受理: reported in the period.
    Opened,
    /// 已办结: resolved or closed now.
    Completed,
    /// 按时办结: completed at or before the completion deadline.
    CompletedOnTime,
    /// 超时办结: completed after the deadline.
    CompletedLate,
    /// 未办结: not completed now.
    Open,
    /// 逾期未办结: open with the completion deadline passed.
    OpenOverdue,
    /// 重新打开: reopened at least once.
    Reopened,
    /// 四必到: must-arrive events.
    MustArrive,
    /// 按时到场.
    ArrivedOnTime,
    /// 迟到: arrived after the arrival deadline.
    ArrivedLate,
    /// 未到场: no arrival recorded.
    NotYetArrived,
    /// 超时未到: no arrival recorded and the arrival deadline passed.
    NotYetArrivedOverdue,
    /// 已评价: has a satisfaction score.
    Scored,
    /// Scored exactly this (1-5).
    Score(u8),
}

impl CaseFigure {
    /// Whether the case (reported in the period) is behind this figure at `now`: the one
    /// classification behind the case counts and the case lists.
    pub fn holds(self, case: &CaseFacts, now: Millis) -> bool {
        let completion = case.completion_state(now);
        let arrival = case.arrival_state(now);
        match self {
            CaseFigure::Opened => true,
            CaseFigure::Completed => matches!(completion, CompletionState::Done { .. }),
            CaseFigure::CompletedOnTime => completion == CompletionState::Done { on_time: true },
            CaseFigure::CompletedLate => completion == CompletionState::Done { on_time: false },
            CaseFigure::Open => matches!(completion, CompletionState::Open { .. }),
            CaseFigure::OpenOverdue => matches!(completion, CompletionState::Open { overdue: true, .. }),
            CaseFigure::Reopened => case.reopened > 0,
            CaseFigure::MustArrive => arrival.is_some(),
            CaseFigure::ArrivedOnTime => arrival == Some(ArrivalState::Arrived { on_time: true }),
            CaseFigure::ArrivedLate => arrival == Some(ArrivalState::Arrived { on_time: false }),
            CaseFigure::NotYetArrived => matches!(arrival, Some(ArrivalState::Waiting { .. })),
            CaseFigure::NotYetArrivedOverdue => {
                matches!(arrival, Some(ArrivalState::Waiting { remaining_ms, .. }) if remaining_ms < 0)
            }
            CaseFigure::Scored => valid_score(case.satisfaction).is_some(),
            CaseFigure::Score(score) => valid_score(case.satisfaction) == Some(score),
        }
    }
}

fn valid_score(score: Option<u8>) -> Option<u8> {
    score.filter(|s| (1..=5).contains(s))
}

/// Completion counts over cases reported in the period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseCounts {
    pub opened: usize,
    pub completed: usize,
    pub completed_on_time: usize,
    pub completed_late: usize,
    pub open: usize,
    pub open_overdue: usize,
    pub reopened: usize,
    /// 办结率: completed / opened (1.0 when none were opened), as [`policy::case_rates`].
    pub completion_rate: f64,
    /// 限时办结率: completed on time / completed (1.0 when none were completed).
    pub on_time_rate: f64,
}

/// Case figures, overall and per kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseFigures {
    pub all: CaseCounts,
    /// Every kind (8 help categories, 4 must-arrive events, 4 report roles, disputes,
    /// micro-wishes, opinions), zeros included.
    pub by_kind: BTreeMap<CaseKind, CaseCounts>,
    /// The micro-wishes (微心愿) among them, by how far they got.
    #[serde(default)]
    pub micro_wishes: WishCounts,
}

/// Micro-wishes (微心愿) posted in the period and how far they got now, read off the derived
/// status (a claim accepts, a fulfilment resolves, thanks close): each count includes the
/// later stages, so `fulfilled` is the report's "660+ fulfilled" and also the wishes' 办结.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WishCounts {
    /// 已发布: posted in the period.
    pub posted: usize,
    /// 已认领: claimed (or further along).
    pub claimed: usize,
    /// 已实现: fulfilled (or thanked).
    pub fulfilled: usize,
    /// 已致谢: the resident's thanks recorded.
    pub thanked: usize,
}

impl WishCounts {
    fn add(&mut self, case: &CaseFacts) {
        if case.kind != CaseKind::MicroWish {
            return;
        }
        self.posted += 1;
        self.claimed += usize::from(case.status != CaseStatus::Reported);
        self.fulfilled += usize::from(matches!(case.status, CaseStatus::Resolved | CaseStatus::Closed));
        self.thanked += usize::from(case.status == CaseStatus::Closed);
    }
}

/// Satisfaction (满意度) over cases reported in the period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SatisfactionFigures {
    pub scored: usize,
    /// Mean score, `None` when none was given.
    pub mean: Option<f64>,
    /// How many gave 1, 2, 3, 4, 5.
    pub distribution: [usize; 5],
}

/// Must-arrive (四必到) counts over events reported in the period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArrivalCounts {
    pub events: usize,
    pub on_time: usize,
    pub late: usize,
    pub not_yet: usize,
    /// Of `not_yet`, those past the arrival deadline.
    pub not_yet_overdue: usize,
    /// 到场及时率: on time / (events − not yet but still within the deadline); 1.0 when none
    /// is decided.
    pub on_time_rate: f64,
    /// Median minutes from report to first arrival over arrived events.
    pub median_minutes: Option<f64>,
}

/// Must-arrive figures, overall and per event kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArrivalFigures {
    pub all: ArrivalCounts,
    /// Every must-arrive kind, zeros included.
    pub by_kind: BTreeMap<MustArriveKind, ArrivalCounts>,
}

/// Adds cases into [`CaseCounts`] and [`SatisfactionFigures`], with the rates from
/// [`policy::CaseTally`].
#[derive(Clone, Debug, Default)]
struct CaseTallies {
    tally: CaseTally,
    reopened: usize,
    distribution: [usize; 5],
}

impl CaseTallies {
    fn add(&mut self, case: &CaseFacts, now: Millis) {
        self.tally.add(case.completion_state(now), case.satisfaction);
        self.reopened += usize::from(CaseFigure::Reopened.holds(case, now));
        if let Some(score) = valid_score(case.satisfaction) {
            self.distribution[usize::from(score - 1)] += 1;
        }
    }

    fn counts(&self) -> CaseCounts {
        let rates = self.tally.rates();
        CaseCounts {
            opened: rates.total,
            completed: rates.completed,
            completed_on_time: rates.completed_on_time,
            completed_late: rates.completed - rates.completed_on_time,
            open: rates.total - rates.completed,
            open_overdue: rates.overdue_open,
            reopened: self.reopened,
            completion_rate: rates.completion_rate,
            on_time_rate: rates.on_time_rate,
        }
    }

    fn satisfaction(&self) -> SatisfactionFigures {
        SatisfactionFigures {
            scored: self.distribution.iter().sum(),
            mean: self.tally.rates().mean_satisfaction,
            distribution: self.distribution,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct ArrivalTally {
    counts: ArrivalCounts,
    minutes: Vec<f64>,
}

impl ArrivalTally {
    fn add(&mut self, case: &CaseFacts, now: Millis) {
        let holds = |figure: CaseFigure| usize::from(figure.holds(case, now));
        self.counts.events += 1;
        self.counts.on_time += holds(CaseFigure::ArrivedOnTime);
        self.counts.late += holds(CaseFigure::ArrivedLate);
        self.counts.not_yet += holds(CaseFigure::NotYetArrived);
        self.counts.not_yet_overdue += holds(CaseFigure::NotYetArrivedOverdue);
        self.minutes.extend(case.minutes_to_arrive());
    }

    fn finish(mut self) -> ArrivalCounts {
        let c = &mut self.counts;
        let still_in_window = c.not_yet - c.not_yet_overdue;
        c.on_time_rate = policy::ratio(c.on_time, c.events - still_in_window);
        c.median_minutes = median(&mut self.minutes);
        self.counts
    }
}

/// The median (the mean of the middle two for an even count).
fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn in_period(cases: &[CaseFacts], period: Period) -> impl Iterator<Item = &CaseFacts> {
    cases.iter().filter(move |c| period.contains(c.reported_at))
}

/// Case figures (办结率, 限时办结率, overdue) over cases reported in `period`, per kind.
pub fn case_figures(cases: &[CaseFacts], period: Period, now: Millis, grouping: &Grouping) -> Grouped<CaseFigures> {
    #[derive(Clone)]
    struct Tally {
        all: CaseTallies,
        by_kind: BTreeMap<CaseKind, CaseTallies>,
        wishes: WishCounts,
    }
    let empty = Tally {
        all: CaseTallies::default(),
        by_kind: CaseKind::all().into_iter().map(|k| (k, CaseTallies::default())).collect(),
        wishes: WishCounts::default(),
    };
    let mut tally = GroupedTally::new(grouping, empty.clone());
    for case in in_period(cases, period) {
        tally.add(grouping, &case.placement, &empty, |t| {
            t.all.add(case, now);
            t.by_kind.entry(case.kind).or_default().add(case, now);
            t.wishes.add(case);
        });
    }
    tally.finish(|t| CaseFigures {
        all: t.all.counts(),
        by_kind: t.by_kind.iter().map(|(k, t)| (*k, t.counts())).collect(),
        micro_wishes: t.wishes,
    })
}

/// Satisfaction (满意度) over cases reported in `period`.
pub fn satisfaction_figures(
    cases: &[CaseFacts],
    period: Period,
    now: Millis,
    grouping: &Grouping,
) -> Grouped<SatisfactionFigures> {
    let mut tally = GroupedTally::new(grouping, CaseTallies::default());
    let empty = CaseTallies::default();
    for case in in_period(cases, period) {
        tally.add(grouping, &case.placement, &empty, |t| t.add(case, now));
    }
    tally.finish(|t| t.satisfaction())
}

/// Must-arrive (四必到) figures over events reported in `period`, per event kind.
pub fn must_arrive_figures(
    cases: &[CaseFacts],
    period: Period,
    now: Millis,
    grouping: &Grouping,
) -> Grouped<ArrivalFigures> {
    #[derive(Clone)]
    struct Tally {
        all: ArrivalTally,
        by_kind: BTreeMap<MustArriveKind, ArrivalTally>,
    }
    let empty = Tally {
        all: ArrivalTally::default(),
        by_kind: MustArriveKind::ALL.iter().map(|k| (*k, ArrivalTally::default())).collect(),
    };
    let mut tally = GroupedTally::new(grouping, empty.clone());
    for case in in_period(cases, period).filter(|c| CaseFigure::MustArrive.holds(c, now)) {
        tally.add(grouping, &case.placement, &empty, |t| {
            t.all.add(case, now);
            if let CaseKind::MustArrive(kind) = case.kind {
                t.by_kind.entry(kind).or_default().add(case, now);
            }
        });
    }
    tally.finish(|t| ArrivalFigures {
        all: t.all.finish(),
        by_kind: t.by_kind.into_iter().map(|(k, t)| (k, t.finish())).collect(),
    })
}

/// The cases behind a case figure: reported in `period`, of `kind` if given, in `group` if
/// given, oldest report first. `rows.len()` is the figure.
pub fn case_rows<'a>(
    cases: &'a [CaseFacts],
    figure: CaseFigure,
    kind: Option<CaseKind>,
    group: Option<&GroupKey>,
    period: Period,
    now: Millis,
    grouping: &Grouping,
) -> Vec<&'a CaseFacts> {
    let mut rows: Vec<&CaseFacts> = in_period(cases, period)
        .filter(|c| kind.is_none_or(|k| c.kind == k))
        .filter(|c| grouping.includes(group, &c.placement))
        .filter(|c| figure.holds(c, now))
        .collect();
    rows.sort_by_key(|c| (c.reported_at, c.id));
    rows
}

// ---------------------------------------------------------------------------------------------
// Visits (走访).

/// Visits whose counted time ([`policy::counted_visit_time`]) falls in the period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitCounts {
    pub visits: usize,
    pub met: usize,
    pub not_home: usize,
    pub refused: usize,
}

/// The visit figures a drill-down can list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VisitFigure {
    All,
    Met,
    NotHome,
    Refused,
}

impl VisitFigure {
    pub fn holds(self, visit: &VisitFacts) -> bool {
        match self {
            VisitFigure::All => true,
            VisitFigure::Met => visit.outcome == VisitOutcome::Met,
            VisitFigure::NotHome => visit.outcome == VisitOutcome::NotHome,
            VisitFigure::Refused => visit.outcome == VisitOutcome::Refused,
        }
    }
}

impl VisitCounts {
    fn add(&mut self, visit: &VisitFacts) {
        self.visits += 1;
        self.met += usize::from(VisitFigure::Met.holds(visit));
        self.not_home += usize::from(VisitFigure::NotHome.holds(visit));
        self.refused += usize::from(VisitFigure::Refused.holds(visit));
    }
}

fn visits_in_period(visits: &[VisitFacts], period: Period, now: Millis) -> impl Iterator<Item = &VisitFacts> {
    visits.iter().filter(move |v| period.contains(policy::counted_visit_time(v.at, now)))
}

/// Visits (走访) in `period`, by outcome.
pub fn visit_figures(visits: &[VisitFacts], period: Period, now: Millis, grouping: &Grouping) -> Grouped<VisitCounts> {
    let mut tally = GroupedTally::new(grouping, VisitCounts::default());
    for visit in visits_in_period(visits, period, now) {
        tally.add(grouping, &visit.placement, &VisitCounts::default(), |t| t.add(visit));
    }
    tally.finish(|t| t)
}

/// The visits behind a visit figure, oldest first. `rows.len()` is the figure.
pub fn visit_rows<'a>(
    visits: &'a [VisitFacts],
    figure: VisitFigure,
    group: Option<&GroupKey>,
    period: Period,
    now: Millis,
    grouping: &Grouping,
) -> Vec<&'a VisitFacts> {
    let mut rows: Vec<&VisitFacts> = visits_in_period(visits, period, now)
        .filter(|v| grouping.includes(group, &v.placement) && figure.holds(v))
        .collect();
    rows.sort_by_key(|v| (policy::counted_visit_time(v.at, now), v.id));
    rows
}

// ---------------------------------------------------------------------------------------------
// Weekly trends (周趋势).

/// One Asia/Shanghai week of the period. Drill down with `period` = [`WeekFigures::week`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeekFigures {
    /// The Monday the week starts on.
    pub monday: NaiveDate,
    /// The week, clipped to the period.
    pub week: Period,
    pub cases: CaseCounts,
    pub must_arrive: ArrivalCounts,
    pub satisfaction: SatisfactionFigures,
    pub visits: VisitCounts,
}

/// The case, must-arrive, satisfaction and visit figures per week of `period`.
pub fn weekly_trends(
    cases: &[CaseFacts],
    visits: &[VisitFacts],
    period: Period,
    now: Millis,
    grouping: &Grouping,
) -> Grouped<Vec<WeekFigures>> {
    #[derive(Clone, Default)]
    struct Week {
        cases: CaseTallies,
        arrival: ArrivalTally,
        visits: VisitCounts,
    }
    let weeks = period.weeks();
    let empty = vec![Week::default(); weeks.len()];
    let mut tally = GroupedTally::new(grouping, empty.clone());
    for case in in_period(cases, period) {
        let index = period.week_index(case.reported_at);
        let must_arrive = CaseFigure::MustArrive.holds(case, now);
        tally.add(grouping, &case.placement, &empty, |w| {
            w[index].cases.add(case, now);
            if must_arrive {
                w[index].arrival.add(case, now);
            }
        });
    }
    for visit in visits_in_period(visits, period, now) {
        let index = period.week_index(policy::counted_visit_time(visit.at, now));
        tally.add(grouping, &visit.placement, &empty, |w| w[index].visits.add(visit));
    }
    tally.finish(|tallies| {
        tallies
            .into_iter()
            .zip(&weeks)
            .map(|(t, week)| WeekFigures {
                monday: monday_of(local_date(week.from)),
                week: *week,
                cases: t.cases.counts(),
                must_arrive: t.arrival.finish(),
                satisfaction: t.cases.satisfaction(),
                visits: t.visits,
            })
            .collect()
    })
}

// ---------------------------------------------------------------------------------------------
// The dashboard: every figure for one period.

/// Every figure of the console's dashboard for one period, grouped one way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub period: Period,
    pub now: Millis,
    pub by: GroupBy,
    pub coverage: Grouped<CoverageFigures>,
    pub must_arrive: Grouped<ArrivalFigures>,
    pub cases: Grouped<CaseFigures>,
    pub satisfaction: Grouped<SatisfactionFigures>,
    pub visits: Grouped<VisitCounts>,
    pub weeks: Grouped<Vec<WeekFigures>>,
}

/// Computes the dashboard: each figure is one linear pass over its rows.
pub fn dashboard(facts: &Facts, period: Period, now: Millis, config: &PolicyConfig, grouping: &Grouping) -> Dashboard {
    Dashboard {
        period,
        now,
        by: grouping.by(),
        coverage: must_visit_coverage(&facts.households, &facts.visits, now, config, grouping),
        must_arrive: must_arrive_figures(&facts.cases, period, now, grouping),
        cases: case_figures(&facts.cases, period, now, grouping),
        satisfaction: satisfaction_figures(&facts.cases, period, now, grouping),
        visits: visit_figures(&facts.visits, period, now, grouping),
        weeks: weekly_trends(&facts.cases, &facts.visits, period, now, grouping),
    }
}
