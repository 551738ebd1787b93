//! Policies: pure functions of (document, now, configuration). Overdue lists and SLA rates are
//! computed from these on the phone, offline, and on the server for supervisors.
//!
//! Defaults (see [`PolicyConfig::default`]), overridable per community:
//!
//! | rule | default |
//! |---|---|
//! | 新迁入 newly moved-in | one visit within 7 days of moving in |
//! | 空巢老人 empty-nest elderly | every 7 days |
//! | 问题家庭 problem family | every 14 days |
//! | 贫困家庭 poor family | every 30 days |
//! | 四必到 arrival: emergency / dispute / discontent / wedding-funeral | 30 min / 2 h / 24 h / 72 h |
//! | 限时办结 completion: must-arrive / help / report / dispute / micro-wish / opinion | 3 / 3 / 5 / 7 / 30 / 15 days |
//!
//! Only a visit where the worker met the household (`met`) counts; "not home" and "refused"
//! are recorded but the household stays due. A visit time later than `now` (a phone clock
//! running fast) counts as `now`, so a wrong clock cannot push a due date into the future.
//! "Today" is the calendar day in Asia/Shanghai.
//!
//! Each rule also has a form over plain parts ([`visits_due_from`], [`tag_due`],
//! [`arrival_state_at`], [`completion_state_at`], [`CaseTally`]): the document functions
//! delegate to them, and [`crate::figures`] applies them to the server's plain rows, so a
//! document and its rows can never disagree.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::case::{CaseFile, CaseKind};
use crate::codes::{ActionKind, CaseStatus, HouseholdStatus, MustArriveKind, MustVisitTag, VisitOutcome};
use crate::household::HouseholdFile;
use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS, Millis, local_date};

/// Policy settings of one community.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyConfig {
    /// Days between visits per must-visit tag. For `new-arrival` it is the window for the one
    /// required first visit.
    pub visit_every_days: BTreeMap<MustVisitTag, i64>,
    /// Minutes from report to arrival for each must-arrive event.
    pub arrive_within_minutes: BTreeMap<MustArriveKind, i64>,
    /// Hours from report (or reopening) to resolution per kind group.
    pub complete_within_hours: CompletionHours,
    /// How many days ahead the "due soon" list looks.
    pub due_soon_days: i64,
}

/// Completion windows (限时办结) by kind of case, in hours.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionHours {
    pub must_arrive: i64,
    pub help: i64,
    pub report: i64,
    pub dispute: i64,
    pub micro_wish: i64,
    pub opinion: i64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            visit_every_days: BTreeMap::from([
                (MustVisitTag::NewArrival, 7),
                (MustVisitTag::EmptyNest, 7),
                (MustVisitTag::ProblemFamily, 14),
                (MustVisitTag::PoorFamily, 30),
            ]),
            arrive_within_minutes: BTreeMap::from([
                (MustArriveKind::Emergency, 30),
                (MustArriveKind::Dispute, 120),
                (MustArriveKind::Discontent, 24 * 60),
                (MustArriveKind::WeddingFuneral, 72 * 60),
            ]),
            complete_within_hours: CompletionHours {
                must_arrive: 72,
                help: 72,
                report: 5 * 24,
                dispute: 7 * 24,
                micro_wish: 30 * 24,
                opinion: 15 * 24,
            },
            due_soon_days: 2,
        }
    }
}

/// How urgent a must-visit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum DueState {
    /// Past the due date by this many days.
    Overdue { days: i64 },
    /// Due today.
    DueToday,
    /// Due within the look-ahead window, in this many days.
    DueSoon { days: i64 },
    /// Not due yet.
    NotDue { days: i64 },
}

/// One tag's visit obligation on one household.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitDue {
    pub tag: MustVisitTag,
    pub due_on: NaiveDate,
    pub state: DueState,
    /// When the household was last met in person, if ever.
    pub last_met: Option<Millis>,
}

impl VisitDue {
    /// Whether this belongs on today's list (overdue, due today, or due soon).
    pub fn is_actionable(&self) -> bool {
        !matches!(self.state, DueState::NotDue { .. })
    }
}

/// The time a visit counts at: its own time, or `now` when the phone's clock ran fast and
/// stamped it later than `now`, so a wrong clock cannot push a due date into the future.
pub fn counted_visit_time(at: Millis, now: Millis) -> Millis {
    at.min(now)
}

/// Whether a household in this status has visit obligations at all (a moved-out one has none).
pub fn has_visit_obligations(status: HouseholdStatus) -> bool {
    status != HouseholdStatus::MovedOut
}

/// The counted times ([`counted_visit_time`]) of the visits that met the household. "Not
/// home" and "refused" are recorded but never count. `visits` are `(at, outcome)` pairs in any
/// order, from a [`HouseholdFile`] or from plain rows.
pub fn met_visit_times(visits: impl IntoIterator<Item = (Millis, VisitOutcome)>, now: Millis) -> Vec<Millis> {
    visits
        .into_iter()
        .filter(|(_, outcome)| *outcome == VisitOutcome::Met)
        .map(|(at, _)| counted_visit_time(at, now))
        .collect()
}

/// The last time the household was met on or after a tag's start date (Asia/Shanghai days):
/// a visit before the household was tagged does not count towards that tag.
pub fn last_met_since(met_times: &[Millis], since: NaiveDate) -> Option<Millis> {
    met_times.iter().copied().filter(|t| local_date(*t) >= since).max()
}

/// Where a due date stands on the Asia/Shanghai calendar day of `now`.
pub fn due_state(due_on: NaiveDate, now: Millis, config: &PolicyConfig) -> DueState {
    match (due_on - local_date(now)).num_days() {
        d if d < 0 => DueState::Overdue { days: -d },
        0 => DueState::DueToday,
        d if d <= config.due_soon_days => DueState::DueSoon { days: d },
        d => DueState::NotDue { days: d },
    }
}

/// One tag's visit obligation, given when the household was last met since the tag's start
/// ([`last_met_since`]). `None` when the configuration sets no cadence for the tag, or for a
/// new arrival that has had its one visit.
pub fn tag_due(
    tag: MustVisitTag,
    since: NaiveDate,
    last_met: Option<Millis>,
    now: Millis,
    config: &PolicyConfig,
) -> Option<VisitDue> {
    let every = *config.visit_every_days.get(&tag)?;
    let due_on = match (tag, last_met) {
        (MustVisitTag::NewArrival, Some(_)) => return None,
        (_, Some(t)) => local_date(t) + chrono::Duration::days(every),
        (_, None) => since + chrono::Duration::days(every),
    };
    Some(VisitDue { tag, due_on, state: due_state(due_on, now, config), last_met })
}

/// The visit obligations of a household at `now`, most urgent first. A moved-out household
/// has none; a satisfied new-arrival visit is not listed.
pub fn visits_due(household: &HouseholdFile, now: Millis, config: &PolicyConfig) -> Vec<VisitDue> {
    visits_due_from(
        household.status,
        household.tags.iter().map(|(tag, entry)| (*tag, entry.since)),
        household.visits.values().map(|v| (v.at, v.outcome)),
        now,
        config,
    )
}

/// [`visits_due`] over the parts of a household: its status, its tags with their start dates
/// and its visits as `(at, outcome)` pairs. The one implementation behind the household file
/// and the plain rows of [`crate::figures`].
pub fn visits_due_from(
    status: HouseholdStatus,
    tags: impl IntoIterator<Item = (MustVisitTag, NaiveDate)>,
    visits: impl IntoIterator<Item = (Millis, VisitOutcome)>,
    now: Millis,
    config: &PolicyConfig,
) -> Vec<VisitDue> {
    if !has_visit_obligations(status) {
        return Vec::new();
    }
    let met_times = met_visit_times(visits, now);
    let mut dues: Vec<VisitDue> = tags
        .into_iter()
        .filter_map(|(tag, since)| tag_due(tag, since, last_met_since(&met_times, since), now, config))
        .collect();
    dues.sort_by_key(|d| (d.due_on, d.tag));
    dues
}

/// The arrival deadline of a must-arrive event, or `None` for other kinds.
pub fn arrival_deadline(case: &CaseFile, config: &PolicyConfig) -> Option<Millis> {
    let CaseKind::MustArrive(kind) = case.kind else { return None };
    let minutes = config.arrive_within_minutes.get(&kind).copied()?;
    Some(case.reported_at + minutes * MINUTE_MS)
}

/// When someone first arrived on site, if anyone has.
pub fn first_arrival(case: &CaseFile) -> Option<Millis> {
    case.ordered_timeline().into_iter().find(|a| a.kind == ActionKind::Arrive).map(|a| a.at)
}

/// Arrival outcome of a must-arrive event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ArrivalState {
    /// Nobody has arrived; `remaining_ms` until the deadline (negative when late).
    Waiting {
        deadline: Millis,
        remaining_ms: Millis,
    },
    Arrived {
        on_time: bool,
    },
}

/// Whether the must-arrive deadline was (or is being) met; `None` for other kinds.
pub fn arrival_state(case: &CaseFile, now: Millis, config: &PolicyConfig) -> Option<ArrivalState> {
    let deadline = arrival_deadline(case, config)?;
    Some(arrival_state_at(deadline, first_arrival(case), now))
}

/// [`arrival_state`] from an arrival deadline and the first arrival: an arrival at the
/// deadline itself is on time.
pub fn arrival_state_at(deadline: Millis, first_arrival: Option<Millis>, now: Millis) -> ArrivalState {
    match first_arrival {
        Some(at) => ArrivalState::Arrived { on_time: at <= deadline },
        None => ArrivalState::Waiting { deadline, remaining_ms: deadline - now },
    }
}

/// Hours allowed to resolve a case of this kind.
pub fn completion_window_hours(kind: CaseKind, config: &PolicyConfig) -> i64 {
    let h = &config.complete_within_hours;
    match kind {
        CaseKind::MustArrive(_) => h.must_arrive,
        CaseKind::Help(_) => h.help,
        CaseKind::Report(_) => h.report,
        CaseKind::Dispute => h.dispute,
        CaseKind::MicroWish => h.micro_wish,
        CaseKind::Opinion => h.opinion,
    }
}

/// The completion deadline (限时办结). The clock starts at the report and restarts when a
/// case is reopened: a reopened case gets a fresh window.
pub fn completion_deadline(case: &CaseFile, config: &PolicyConfig) -> Millis {
    let start = case
        .status_history()
        .into_iter()
        .filter(|(a, _)| a.kind == ActionKind::Reopen)
        .map(|(a, _)| a.at)
        .next_back()
        .unwrap_or(case.reported_at);
    start + completion_window_hours(case.kind, config) * HOUR_MS
}

/// When the case reached resolved or closed for the current (last) time, if it is done.
pub fn completed_at(case: &CaseFile) -> Option<Millis> {
    let history = case.status_history();
    let (_, last) = history.last()?;
    if !matches!(last, CaseStatus::Resolved | CaseStatus::Closed) {
        return None;
    }
    // The first of the trailing run of done states: resolve then close counts from resolve.
    history
        .iter()
        .rev()
        .take_while(|(_, s)| matches!(s, CaseStatus::Resolved | CaseStatus::Closed))
        .last()
        .map(|(a, _)| a.at)
}

/// Completion outcome of a case at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum CompletionState {
    Open { deadline: Millis, overdue: bool },
    Done { on_time: bool },
}

pub fn completion_state(case: &CaseFile, now: Millis, config: &PolicyConfig) -> CompletionState {
    completion_state_at(completion_deadline(case, config), completed_at(case), now)
}

/// [`completion_state`] from a completion deadline and the completion time: done at the
/// deadline itself is on time; an open case is overdue once `now` is past the deadline.
pub fn completion_state_at(deadline: Millis, completed_at: Option<Millis>, now: Millis) -> CompletionState {
    match completed_at {
        Some(at) => CompletionState::Done { on_time: at <= deadline },
        None => CompletionState::Open { deadline, overdue: now > deadline },
    }
}

/// How many times the case was reopened (reopen actions that moved the status).
pub fn times_reopened(case: &CaseFile) -> usize {
    case.status_history().iter().filter(|(a, _)| a.kind == ActionKind::Reopen).count()
}

/// Rates over a set of cases, as supervisors report them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseRates {
    pub total: usize,
    pub completed: usize,
    pub completed_on_time: usize,
    pub overdue_open: usize,
    /// 办结率: completed / total (1.0 for an empty set).
    pub completion_rate: f64,
    /// 限时办结率: completed on time / completed (1.0 when none completed).
    pub on_time_rate: f64,
    /// Mean resident satisfaction over closed cases that recorded one.
    pub mean_satisfaction: Option<f64>,
}

pub fn case_rates<'a>(cases: impl IntoIterator<Item = &'a CaseFile>, now: Millis, config: &PolicyConfig) -> CaseRates {
    let mut tally = CaseTally::default();
    for case in cases {
        tally.add(completion_state(case, now, config), case.satisfaction());
    }
    tally.rates()
}

/// The counts behind [`CaseRates`], added one case at a time: the one implementation of the
/// rates for documents ([`case_rates`]) and for plain rows ([`crate::figures`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseTally {
    pub total: usize,
    pub completed: usize,
    pub completed_on_time: usize,
    pub overdue_open: usize,
    pub satisfaction_sum: u64,
    pub satisfaction_count: u64,
}

impl CaseTally {
    /// Adds one case: its completion state at `now` and its satisfaction score, if any. A
    /// score outside 1-5 (the validator refuses those) is ignored.
    pub fn add(&mut self, completion: CompletionState, satisfaction: Option<u8>) {
        self.total += 1;
        match completion {
            CompletionState::Done { on_time } => {
                self.completed += 1;
                self.completed_on_time += usize::from(on_time);
            }
            CompletionState::Open { overdue, .. } => self.overdue_open += usize::from(overdue),
        }
        if let Some(score) = satisfaction.filter(|s| (1..=5).contains(s)) {
            self.satisfaction_sum += u64::from(score);
            self.satisfaction_count += 1;
        }
    }

    pub fn rates(&self) -> CaseRates {
        CaseRates {
            total: self.total,
            completed: self.completed,
            completed_on_time: self.completed_on_time,
            overdue_open: self.overdue_open,
            completion_rate: ratio(self.completed, self.total),
            on_time_rate: ratio(self.completed_on_time, self.completed),
            mean_satisfaction: (self.satisfaction_count > 0)
                .then(|| self.satisfaction_sum as f64 / self.satisfaction_count as f64),
        }
    }
}

/// `part / whole` as reported rates are: 1.0 when `whole` is 0 (nothing to do, nothing missed).
pub fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 { 1.0 } else { part as f64 / whole as f64 }
}

/// Whole days between two instants, for "3 days overdue" labels.
pub fn days_between(from: Millis, to: Millis) -> i64 {
    (to - from).div_euclid(DAY_MS)
}
