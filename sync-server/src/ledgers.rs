//! The four ledgers (台账) supervisors download: household roster, visit ledger, case ledger
//! and the summary per grid. Each is declared once as a [`Ledger`] layout and filled from the
//! supervisors' rows ([`gridlink_shared::figures`] facts) of a scope, so the files show the
//! same numbers as the console; [`crate::ledger`] writes them as XLSX or CSV.

use std::collections::HashMap;
use std::path::Path;

use gridlink_shared::figures::{self, Facts, GroupBy, GroupKey, Grouping, HouseholdFigure, Period, Standing};
use gridlink_shared::time::{Millis, local_date};
use gridlink_shared::{HouseholdId, Lang, PolicyConfig, Roster, Scope, VisitOutcome};

use crate::ledger::{Cell, Column, Kind, Label, Ledger, LedgerError, Row, write_csv, write_xlsx};
use crate::store::{AnyStore, StoreError};

/// Which ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LedgerKind {
    /// 住户台账: one row per household.
    Households,
    /// 走访台账: one row per visit.
    Visits,
    /// 事件台账: one row per case, with deadlines, completion and satisfaction.
    Cases,
    /// 汇总表: the dashboard's figures, one row per grid.
    Summary,
}

/// The file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Xlsx,
    Csv,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    File(#[from] LedgerError),
}

/// What to export.
#[derive(Clone, Debug)]
pub struct ExportRequest {
    pub what: LedgerKind,
    pub format: Format,
    /// The scopes whose rows go in (street, community or grid).
    pub scopes: Vec<Scope>,
    /// Visits by visit time and cases by report time within it; all when `None`. The summary
    /// needs a period (the caller picks this month by default).
    pub period: Option<Period>,
    pub lang: Lang,
}

const HOUSEHOLDS: Ledger = Ledger::new(
    Label::new("住户台账", "Household roster"),
    Label::new("住户", "Households"),
    &[
        Column::new("社区", "Community", Kind::Text),
        Column::new("网格", "Grid", Kind::Text),
        Column::new("地址", "Address", Kind::Text),
        Column::new("户主", "Head of household", Kind::Text),
        Column::new("状态", "Status", Kind::Text),
        Column::new("四必访类别", "Must-visit tags", Kind::Text),
        Column::new("帮扶需求", "Help needs", Kind::Text),
        Column::new("走访状态", "Visit standing", Kind::Text),
        Column::new("最近见面走访", "Last visit met", Kind::DateTime),
        Column::new("走访次数", "Visits", Kind::Integer),
        Column::new("建档时间", "Filed", Kind::DateTime),
    ],
);

const VISITS: Ledger = Ledger::new(
    Label::new("走访台账", "Visit ledger"),
    Label::new("走访", "Visits"),
    &[
        Column::new("走访时间", "Visit time", Kind::DateTime),
        Column::new("社区", "Community", Kind::Text),
        Column::new("网格", "Grid", Kind::Text),
        Column::new("地址", "Address", Kind::Text),
        Column::new("户主", "Head of household", Kind::Text),
        Column::new("走访人", "Visited by", Kind::Text),
        Column::new("结果", "Outcome", Kind::Text),
        Column::new("见面", "Met", Kind::YesNo),
        Column::new("录入时间", "Recorded", Kind::DateTime),
    ],
);

const CASES: Ledger = Ledger::new(
    Label::new("事件台账", "Case ledger"),
    Label::new("事件", "Cases"),
    &[
        Column::new("上报时间", "Reported", Kind::DateTime),
        Column::new("类别", "Kind", Kind::Text),
        Column::new("标题", "Title", Kind::Text),
        Column::new("社区", "Community", Kind::Text),
        Column::new("网格", "Grid", Kind::Text),
        Column::new("上报人", "Reported by", Kind::Text),
        Column::new("负责人", "Responsible", Kind::Text),
        Column::new("状态", "Status", Kind::Text),
        Column::new("到场时限", "Arrive by", Kind::DateTime),
        Column::new("到场时间", "Arrived", Kind::DateTime),
        Column::new("办结时限", "Complete by", Kind::DateTime),
        Column::new("办结时间", "Completed", Kind::DateTime),
        Column::new("按时办结", "On time", Kind::YesNo),
        Column::new("重新打开次数", "Reopened", Kind::Integer),
        Column::new("满意度", "Satisfaction", Kind::Integer),
    ],
);

const SUMMARY: Ledger = Ledger::new(
    Label::new("网格工作汇总表", "Summary per grid"),
    Label::new("汇总", "Summary"),
    &[
        Column::new("社区", "Community", Kind::Text),
        Column::new("网格", "Grid", Kind::Text),
        Column::new("四必访在册户", "Must-visit households", Kind::Integer),
        Column::new("逾期未访户", "Households overdue", Kind::Integer),
        Column::new("走访次数", "Visits", Kind::Integer),
        Column::new("见面走访", "Visits met", Kind::Integer),
        Column::new("四必到事件", "Must-arrive events", Kind::Integer),
        Column::new("按时到场", "Arrived on time", Kind::Integer),
        Column::new("迟到", "Arrived late", Kind::Integer),
        Column::new("未到场", "Not arrived", Kind::Integer),
        Column::new("到场及时率", "On-time arrival rate", Kind::Percent),
        Column::new("受理事件", "Cases opened", Kind::Integer),
        Column::new("已办结", "Completed", Kind::Integer),
        Column::new("办结率", "Completion rate", Kind::Percent),
        Column::new("按时办结", "Completed on time", Kind::Integer),
        Column::new("限时办结率", "On-time completion rate", Kind::Percent),
        Column::new("逾期未办结", "Open past deadline", Kind::Integer),
        Column::new("满意度均分", "Mean satisfaction", Kind::Decimal),
    ],
);

/// Writes one ledger to `out`; returns the number of data rows. `progress(rows)` is called as
/// rows are written.
pub fn export(
    store: AnyStore<'_>,
    request: &ExportRequest,
    out: &Path,
    now: Millis,
    progress: &mut dyn FnMut(usize),
) -> Result<usize, ExportError> {
    let roster = store.roster()?;
    let facts = store.facts(&request.scopes)?;
    let (ledger, rows) = build(&roster, &facts, request, now);
    let title = title(&ledger, request);
    let ledger = ledger.with_title(title);
    Ok(match request.format {
        Format::Xlsx => write_xlsx(&ledger, rows, out, request.lang, progress)?,
        Format::Csv => write_csv(&ledger, rows, out, request.lang, progress)?,
    })
}

/// The ledger's title with its period, e.g. "走访台账 2026-11-01 至 2026-11-30".
fn title(ledger: &Ledger, request: &ExportRequest) -> Label {
    let Some(period) = request.period else { return ledger.title.clone() };
    let (first, last) = (local_date(period.from), local_date(period.to - 1));
    match request.lang {
        Lang::Zh => Label::owned(format!("{} {first} 至 {last}", ledger.title.get(Lang::Zh)), ""),
        Lang::En => Label::owned("", format!("{} {first} to {last}", ledger.title.get(Lang::En))),
    }
}

/// The layout and rows of a ledger over `facts`.
pub fn build<'a>(
    roster: &'a Roster,
    facts: &'a Facts,
    request: &ExportRequest,
    now: Millis,
) -> (Ledger, Box<dyn Iterator<Item = Row> + 'a>) {
    let lang = request.lang;
    let names = Names::new(roster);
    let in_period = move |at: Millis| request.period.is_none_or(|p| p.contains(at));
    match request.what {
        LedgerKind::Households => (HOUSEHOLDS, Box::new(household_rows(roster, facts, names.clone(), lang, now))),
        LedgerKind::Visits => {
            let heads: HashMap<HouseholdId, (&str, &str)> =
                facts.households.iter().map(|h| (h.id, (h.address.as_str(), h.head.as_str()))).collect();
            let mut visits: Vec<_> = facts.visits.iter().filter(|v| in_period(v.at)).collect();
            visits.sort_by_key(|v| (v.at, v.id));
            let rows = visits.into_iter().map(move |v| {
                let (address, head) = heads.get(&v.household).copied().unwrap_or(("", ""));
                vec![
                    Cell::DateTime(v.at),
                    Cell::text(names.community(&v.placement)),
                    Cell::text(names.grid(&v.placement)),
                    Cell::text(address),
                    Cell::text(head),
                    Cell::text(&v.visitor_name),
                    Cell::text(v.outcome.label(lang)),
                    Cell::YesNo(v.outcome == VisitOutcome::Met),
                    Cell::DateTime(v.recorded_at),
                ]
            });
            (VISITS, Box::new(rows))
        }
        LedgerKind::Cases => {
            let mut cases: Vec<_> = facts.cases.iter().filter(|c| in_period(c.reported_at)).collect();
            cases.sort_by_key(|c| (c.reported_at, c.id));
            let rows = cases.into_iter().map(move |c| {
                let on_time = c.completed_at.map(|done| done <= c.completion_deadline);
                vec![
                    Cell::DateTime(c.reported_at),
                    Cell::text(c.kind.label(lang)),
                    Cell::text(&c.title),
                    Cell::text(names.community(&c.placement)),
                    Cell::text(names.grid(&c.placement)),
                    Cell::text(&c.reporter_name),
                    Cell::text(&c.responsible_name),
                    Cell::text(c.kind.status_label(c.status, lang)),
                    c.arrival_deadline.map_or(Cell::Empty, Cell::DateTime),
                    c.first_arrival.map_or(Cell::Empty, Cell::DateTime),
                    Cell::DateTime(c.completion_deadline),
                    c.completed_at.map_or(Cell::Empty, Cell::DateTime),
                    on_time.map_or(Cell::Empty, Cell::YesNo),
                    Cell::Integer(c.reopened as i64),
                    c.satisfaction.map_or(Cell::Empty, |s| Cell::Integer(i64::from(s))),
                ]
            });
            (CASES, Box::new(rows))
        }
        LedgerKind::Summary => {
            let period = request.period.unwrap_or_else(|| Period::this_month(now));
            let grouping = match request.scopes.as_slice() {
                [scope] => Grouping::within(roster, GroupBy::Grid, *scope),
                _ => Grouping::new(roster, GroupBy::Grid),
            };
            let board = figures::dashboard(facts, period, now, &PolicyConfig::default(), &grouping);
            let rows: Vec<Row> = grouping
                .keys()
                .iter()
                .filter_map(|key| {
                    let GroupKey::Grid(grid) = key else { return None };
                    let placement = roster.placement_of_grid(*grid)?;
                    let coverage = board.coverage.groups.get(key)?;
                    let arrive = board.must_arrive.groups.get(key)?.all;
                    let cases = board.cases.groups.get(key)?.all;
                    let satisfaction = board.satisfaction.groups.get(key)?;
                    let visits = board.visits.groups.get(key)?;
                    Some(vec![
                        Cell::text(names.community(&placement)),
                        Cell::text(names.grid(&placement)),
                        Cell::Integer(coverage.households_tagged as i64),
                        Cell::Integer(coverage.households_overdue as i64),
                        Cell::Integer(visits.visits as i64),
                        Cell::Integer(visits.met as i64),
                        Cell::Integer(arrive.events as i64),
                        Cell::Integer(arrive.on_time as i64),
                        Cell::Integer(arrive.late as i64),
                        Cell::Integer(arrive.not_yet as i64),
                        Cell::Percent(arrive.on_time_rate),
                        Cell::Integer(cases.opened as i64),
                        Cell::Integer(cases.completed as i64),
                        Cell::Percent(cases.completion_rate),
                        Cell::Integer(cases.completed_on_time as i64),
                        Cell::Percent(cases.on_time_rate),
                        Cell::Integer(cases.open_overdue as i64),
                        satisfaction.mean.map_or(Cell::Empty, Cell::Decimal),
                    ])
                })
                .collect();
            (SUMMARY, Box::new(rows.into_iter()))
        }
    }
}

fn household_rows<'a>(
    roster: &'a Roster,
    facts: &'a Facts,
    names: Names<'a>,
    lang: Lang,
    now: Millis,
) -> impl Iterator<Item = Row> + 'a {
    let config = PolicyConfig::default();
    let grouping = Grouping::new(roster, GroupBy::Grid);
    // Each tagged household's most urgent standing, from the same classification as the
    // dashboard's coverage figures.
    let standing: HashMap<HouseholdId, Standing> = figures::coverage_rows(
        &facts.households,
        &facts.visits,
        HouseholdFigure::HouseholdsTagged,
        None,
        now,
        &config,
        &grouping,
    )
    .into_iter()
    .map(|row| (row.household.id, row.standing))
    .collect();
    let mut visits: HashMap<HouseholdId, (usize, Option<Millis>)> = HashMap::new();
    for v in &facts.visits {
        let entry = visits.entry(v.household).or_default();
        entry.0 += 1;
        if v.outcome == VisitOutcome::Met {
            entry.1 = entry.1.max(Some(v.at));
        }
    }
    let mut households: Vec<_> = facts.households.iter().collect();
    households.sort_by(|a, b| {
        (names.community(&a.placement), names.grid(&a.placement), &a.address).cmp(&(
            names.community(&b.placement),
            names.grid(&b.placement),
            &b.address,
        ))
    });
    households.into_iter().map(move |h| {
        let tags: Vec<String> =
            h.tags.iter().map(|(tag, since)| format!("{}({})", tag.label(lang), since.format("%Y-%m-%d"))).collect();
        let needs: Vec<&str> = h.needs.iter().map(|n| n.label(lang)).collect();
        let separator = if lang == Lang::Zh { "、" } else { ", " };
        let standing = standing.get(&h.id).map(|s| standing_label(*s, lang)).unwrap_or_default();
        let (count, last_met) = visits.get(&h.id).copied().unwrap_or_default();
        vec![
            Cell::text(names.community(&h.placement)),
            Cell::text(names.grid(&h.placement)),
            Cell::text(&h.address),
            Cell::text(&h.head),
            Cell::text(h.status.label(lang)),
            Cell::text(tags.join(separator)),
            Cell::text(needs.join(separator)),
            Cell::text(standing),
            last_met.map_or(Cell::Empty, Cell::DateTime),
            Cell::Integer(count as i64),
            Cell::DateTime(h.created_at),
        ]
    })
}

fn standing_label(standing: Standing, lang: Lang) -> &'static str {
    match (standing, lang) {
        (Standing::Covered, Lang::Zh) => "已覆盖",
        (Standing::Pending, Lang::Zh) => "待首访",
        (Standing::Overdue, Lang::Zh) => "逾期",
        (Standing::Covered, Lang::En) => "covered",
        (Standing::Pending, Lang::En) => "first visit pending",
        (Standing::Overdue, Lang::En) => "overdue",
    }
}

/// Community and grid names from the roster.
#[derive(Clone)]
struct Names<'a> {
    communities: HashMap<gridlink_shared::CommunityId, &'a str>,
    grids: HashMap<gridlink_shared::GridId, &'a str>,
}

impl<'a> Names<'a> {
    fn new(roster: &'a Roster) -> Self {
        Names {
            communities: roster.communities.iter().map(|c| (c.id, c.name.as_str())).collect(),
            grids: roster.grids.iter().map(|g| (g.id, g.name.as_str())).collect(),
        }
    }

    fn community(&self, p: &gridlink_shared::Placement) -> &'a str {
        self.communities.get(&p.community).copied().unwrap_or("")
    }

    fn grid(&self, p: &gridlink_shared::Placement) -> &'a str {
        self.grids.get(&p.grid).copied().unwrap_or("")
    }
}
