//! 工作台 `/console`: the figures of the signed-in user's area for a period, broken down by
//! group (community, grid or grid worker), and the drill-downs behind every number
//! (`/console/drill/households`, `/cases`, `/visits`), which list exactly the rows counted.
//!
//! Everything is computed by [`gridlink_shared::figures`] over the rows within the user's
//! scopes ([`facts_for`]); groups outside them never appear, and asking for one is a 404.
//! Every count on the page is a link carrying `data-figure` and `data-group` attributes (for
//! people's bookmarks and the tests), and its drill-down shows the count again as `data-rows`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::RawQuery;
use chrono::NaiveDate;
use gridlink_shared::figures::{
    self, ArrivalCounts, CaseCounts, CaseFigure, Dashboard, Facts, GroupBy, GroupKey, Grouping, HouseholdFigure,
    Period, Standing, VisitFigure,
};
use gridlink_shared::time::{DAY_MS, Millis, format_local, local_date, now_millis};
use gridlink_shared::{CaseKind, GridId, HouseholdId, Lang, MustVisitTag, PolicyConfig, Roster, Scope};
use maud::{Markup, html};
use serde::Deserialize;

use super::charts::{self, Series, Unit};
use super::errors::ConsoleError;
use super::facts_cache::facts_for;
use super::layout::{self, Section, t};
use super::session::ConsoleUser;

/// The longest custom period, so a typo cannot ask for a century of weeks.
const MAX_DAYS: i64 = 732;

/// The query every dashboard and drill-down URL may carry. Unknown keys are ignored; empty
/// values (a submitted form's blank fields) count as absent.
#[derive(Debug, Default, Deserialize)]
struct Params {
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
    by: Option<String>,
    group: Option<String>,
    figure: Option<String>,
    tag: Option<String>,
    kind: Option<String>,
    score: Option<String>,
}

fn bad(zh: &'static str, en: &'static str) -> ConsoleError {
    ConsoleError::bad_request(zh, en)
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl Params {
    fn parse(query: Option<String>) -> Result<Params, ConsoleError> {
        serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
            .map_err(|_| bad("查询参数有误。", "The query is malformed."))
    }
}

/// Which period was chosen, to mark it in the form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Choice {
    Week,
    Month,
    Days,
}

/// A resolved request: period, grouping and the groups the user may see.
struct View {
    now: Millis,
    period: Period,
    first: NaiveDate,
    last: NaiveDate,
    choice: Choice,
    by: GroupBy,
    grouping: Grouping,
    /// The groups of every kind within the user's scopes (a `group` outside these is a 404).
    visible: BTreeSet<GroupKey>,
    config: PolicyConfig,
}

fn parse_date(raw: &str) -> Result<NaiveDate, ConsoleError> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| bad("日期格式应为 YYYY-MM-DD。", "Dates are YYYY-MM-DD."))
}

/// The period asked for: `from`/`to` (both days included) if given, else `period=week`, else
/// this month, all in Asia/Shanghai days.
fn resolve_period(params: &Params, now: Millis) -> Result<(Period, Choice), ConsoleError> {
    if let (Some(from), Some(to)) = (present(&params.from), present(&params.to)) {
        let (from, to) = (parse_date(from)?, parse_date(to)?);
        if to < from || (to - from).num_days() > MAX_DAYS {
            return Err(bad(
                "统计期无效：结束日期须不早于开始日期，且不超过两年。",
                "Invalid period: the end must not precede the start, and at most two years.",
            ));
        }
        return Ok((Period::days(from, to), Choice::Days));
    }
    match present(&params.period) {
        None | Some("month") => Ok((Period::this_month(now), Choice::Month)),
        Some("week") => Ok((Period::this_week(now), Choice::Week)),
        Some(_) => Err(bad("统计期只能是本周、本月或起止日期。", "The period is week, month or from/to dates.")),
    }
}

fn parse_by(raw: &str) -> Result<GroupBy, ConsoleError> {
    match raw {
        "street" => Ok(GroupBy::Street),
        "community" => Ok(GroupBy::Community),
        "grid" => Ok(GroupBy::Grid),
        "worker" => Ok(GroupBy::Worker),
        _ => Err(bad("分组只能是社区、网格或网格员。", "Group by community, grid or worker.")),
    }
}

fn by_code(by: GroupBy) -> &'static str {
    match by {
        GroupBy::Street => "street",
        GroupBy::Community => "community",
        GroupBy::Grid => "grid",
        GroupBy::Worker => "worker",
    }
}

fn by_label(by: GroupBy, lang: Lang) -> &'static str {
    match by {
        GroupBy::Street => t(lang, "街道", "Street"),
        GroupBy::Community => t(lang, "社区", "Community"),
        GroupBy::Grid => t(lang, "网格", "Grid"),
        GroupBy::Worker => t(lang, "网格员", "Grid worker"),
    }
}

/// The level below the user's broadest scope: a street supervisor sees communities, a
/// community supervisor grids, anyone narrower grid workers.
fn default_by(scopes: &[Scope]) -> GroupBy {
    if scopes.iter().any(|s| matches!(s, Scope::Street(_))) {
        GroupBy::Community
    } else if scopes.iter().any(|s| matches!(s, Scope::Community(_))) {
        GroupBy::Grid
    } else {
        GroupBy::Worker
    }
}

/// Figures over several scopes use the whole roster's grouping (the rows are already only the
/// scopes'); only the groups within the scopes are shown.
fn grouping_for(roster: &Roster, by: GroupBy, scopes: &[Scope]) -> Grouping {
    match scopes {
        [one] => Grouping::within(roster, by, *one),
        _ => Grouping::new(roster, by),
    }
}

/// The groups a user may see: those within a scope, never one that only contains it (a
/// community supervisor does not get the street's group).
fn visible_groups(roster: &Roster, scopes: &[Scope]) -> BTreeSet<GroupKey> {
    let mut visible = BTreeSet::new();
    for scope in scopes {
        let levels: &[GroupBy] = match scope {
            Scope::Street(_) => &[GroupBy::Street, GroupBy::Community, GroupBy::Grid, GroupBy::Worker],
            Scope::Community(_) => &[GroupBy::Community, GroupBy::Grid, GroupBy::Worker],
            Scope::Grid(_) | Scope::Building(_) => &[GroupBy::Grid, GroupBy::Worker],
        };
        for by in levels {
            visible.extend(Grouping::within(roster, *by, *scope).keys().iter().copied());
        }
    }
    visible
}

impl View {
    fn resolve(user: &ConsoleUser, roster: &Roster, params: &Params) -> Result<View, ConsoleError> {
        let now = now_millis();
        let (period, choice) = resolve_period(params, now)?;
        let by = match present(&params.by) {
            Some(raw) => parse_by(raw)?,
            None => default_by(&user.scopes),
        };
        Ok(View {
            now,
            period,
            first: local_date(period.from),
            last: local_date(period.to - 1),
            choice,
            by,
            grouping: grouping_for(roster, by, &user.scopes),
            visible: visible_groups(roster, &user.scopes),
            config: PolicyConfig::default(),
        })
    }

    /// The `group` of a drill-down: `None` for the whole area; a 404 for a group outside it
    /// (or that does not exist), the same answer either way.
    fn group(&self, params: &Params) -> Result<Option<GroupKey>, ConsoleError> {
        let Some(raw) = present(&params.group) else { return Ok(None) };
        let key: GroupKey = raw.parse().map_err(|_| ConsoleError::not_found())?;
        if self.visible.contains(&key) { Ok(Some(key)) } else { Err(ConsoleError::not_found()) }
    }

    /// The shown groups, by name.
    fn groups(&self) -> Vec<(GroupKey, String)> {
        let mut groups: Vec<(GroupKey, String)> =
            self.grouping.keys().iter().filter(|k| self.visible.contains(k)).map(|k| (*k, self.label(k))).collect();
        groups.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        groups
    }

    fn label(&self, key: &GroupKey) -> String {
        self.grouping.label(key).map(str::to_string).unwrap_or_else(|| key.to_string())
    }

    /// A drill-down URL: `list` (households, cases, visits), its own fields, the group and a
    /// period (this view's unless given).
    fn href(&self, list: &str, fields: &[(&str, String)], group: Option<&GroupKey>, days: Option<Period>) -> String {
        let period = days.unwrap_or(self.period);
        let mut query: Vec<(&str, String)> = fields.to_vec();
        if let Some(group) = group {
            query.push(("group", group.to_string()));
        }
        query.push(("from", local_date(period.from).to_string()));
        query.push(("to", local_date(period.to - 1).to_string()));
        query.push(("by", by_code(self.by).to_string()));
        format!("/console/drill/{list}?{}", serde_urlencoded::to_string(&query).unwrap_or_default())
    }

    /// This view's own query (period and grouping), for the back link and the language switch.
    fn query(&self) -> String {
        let query =
            [("from", self.first.to_string()), ("to", self.last.to_string()), ("by", by_code(self.by).to_string())];
        serde_urlencoded::to_string(query).unwrap_or_default()
    }
}

fn group_attr(group: Option<&GroupKey>) -> String {
    group.map(GroupKey::to_string).unwrap_or_else(|| "total".to_string())
}

/// A count, linked to the rows behind it.
fn count(n: usize, figure: &str, group: Option<&GroupKey>, href: String) -> Markup {
    html! { a.num href=(href) data-figure=(figure) data-group=(group_attr(group)) { (n) } }
}

/// A rate or mean, linked to the rows it is computed over.
fn derived(text: String, figure: &str, group: Option<&GroupKey>, href: String) -> Markup {
    html! { a.rate href=(href) data-figure=(figure) data-group=(group_attr(group)) { (text) } }
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

fn case_figure_code(figure: CaseFigure) -> &'static str {
    match figure {
        CaseFigure::Opened => "opened",
        CaseFigure::Completed => "completed",
        CaseFigure::CompletedOnTime => "completed-on-time",
        CaseFigure::CompletedLate => "completed-late",
        CaseFigure::Open => "open",
        CaseFigure::OpenOverdue => "open-overdue",
        CaseFigure::Reopened => "reopened",
        CaseFigure::MustArrive => "must-arrive",
        CaseFigure::ArrivedOnTime => "arrived-on-time",
        CaseFigure::ArrivedLate => "arrived-late",
        CaseFigure::NotYetArrived => "not-yet-arrived",
        CaseFigure::NotYetArrivedOverdue => "not-yet-arrived-overdue",
        CaseFigure::Scored => "scored",
        CaseFigure::Score(_) => "score",
    }
}

fn case_figure_label(figure: CaseFigure, lang: Lang) -> String {
    let (zh, en) = match figure {
        CaseFigure::Opened => ("受理", "Opened"),
        CaseFigure::Completed => ("已办结", "Completed"),
        CaseFigure::CompletedOnTime => ("按时办结", "Completed on time"),
        CaseFigure::CompletedLate => ("超时办结", "Completed late"),
        CaseFigure::Open => ("未办结", "Open"),
        CaseFigure::OpenOverdue => ("逾期未办结", "Overdue now"),
        CaseFigure::Reopened => ("重新打开", "Reopened"),
        CaseFigure::MustArrive => ("四必到事件", "Must-arrive events"),
        CaseFigure::ArrivedOnTime => ("按时到场", "Arrived on time"),
        CaseFigure::ArrivedLate => ("迟到", "Arrived late"),
        CaseFigure::NotYetArrived => ("未到场", "Not yet arrived"),
        CaseFigure::NotYetArrivedOverdue => ("超时未到", "Not arrived, past deadline"),
        CaseFigure::Scored => ("已评价", "Scored"),
        CaseFigure::Score(n) => {
            return match lang {
                Lang::Zh => format!("评价为{n}分"),
                Lang::En => format!("Scored {n}"),
            };
        }
    };
    t(lang, zh, en).to_string()
}

fn parse_case_figure(params: &Params) -> Result<CaseFigure, ConsoleError> {
    let unknown = || bad("没有这个统计项。", "No such figure.");
    let figure = match present(&params.figure).ok_or_else(unknown)? {
        "opened" => CaseFigure::Opened,
        "completed" => CaseFigure::Completed,
        "completed-on-time" => CaseFigure::CompletedOnTime,
        "completed-late" => CaseFigure::CompletedLate,
        "open" => CaseFigure::Open,
        "open-overdue" => CaseFigure::OpenOverdue,
        "reopened" => CaseFigure::Reopened,
        "must-arrive" => CaseFigure::MustArrive,
        "arrived-on-time" => CaseFigure::ArrivedOnTime,
        "arrived-late" => CaseFigure::ArrivedLate,
        "not-yet-arrived" => CaseFigure::NotYetArrived,
        "not-yet-arrived-overdue" => CaseFigure::NotYetArrivedOverdue,
        "scored" => CaseFigure::Scored,
        "score" => {
            let score: u8 = present(&params.score).and_then(|s| s.parse().ok()).ok_or_else(unknown)?;
            if !(1..=5).contains(&score) {
                return Err(unknown());
            }
            CaseFigure::Score(score)
        }
        _ => return Err(unknown()),
    };
    Ok(figure)
}

fn household_figure_code(figure: HouseholdFigure) -> (&'static str, Option<MustVisitTag>) {
    match figure {
        HouseholdFigure::Tagged(tag) => ("tagged", Some(tag)),
        HouseholdFigure::Covered(tag) => ("covered", Some(tag)),
        HouseholdFigure::Pending(tag) => ("pending", Some(tag)),
        HouseholdFigure::Overdue(tag) => ("overdue", Some(tag)),
        HouseholdFigure::HouseholdsTagged => ("households-tagged", None),
        HouseholdFigure::HouseholdsOverdue => ("households-overdue", None),
    }
}

fn household_figure_label(figure: HouseholdFigure, lang: Lang) -> String {
    let (zh, en, tag) = match figure {
        HouseholdFigure::Tagged(tag) => ("在册", "Tagged", Some(tag)),
        HouseholdFigure::Covered(tag) => ("已覆盖", "Covered", Some(tag)),
        HouseholdFigure::Pending(tag) => ("待首访", "Pending first visit", Some(tag)),
        HouseholdFigure::Overdue(tag) => ("逾期未访", "Overdue", Some(tag)),
        HouseholdFigure::HouseholdsTagged => ("四必访在册户数", "Households with a must-visit tag", None),
        HouseholdFigure::HouseholdsOverdue => ("逾期户数", "Households overdue", None),
    };
    match tag {
        Some(tag) => format!("{} · {}", tag.label(lang), t(lang, zh, en)),
        None => t(lang, zh, en).to_string(),
    }
}

fn parse_household_figure(params: &Params) -> Result<HouseholdFigure, ConsoleError> {
    let unknown = || bad("没有这个统计项。", "No such figure.");
    let tag = || -> Result<MustVisitTag, ConsoleError> {
        present(&params.tag).and_then(|t| t.parse().ok()).ok_or_else(unknown)
    };
    Ok(match present(&params.figure).ok_or_else(unknown)? {
        "tagged" => HouseholdFigure::Tagged(tag()?),
        "covered" => HouseholdFigure::Covered(tag()?),
        "pending" => HouseholdFigure::Pending(tag()?),
        "overdue" => HouseholdFigure::Overdue(tag()?),
        "households-tagged" => HouseholdFigure::HouseholdsTagged,
        "households-overdue" => HouseholdFigure::HouseholdsOverdue,
        _ => return Err(unknown()),
    })
}

fn visit_figure_code(figure: VisitFigure) -> &'static str {
    match figure {
        VisitFigure::All => "all",
        VisitFigure::Met => "met",
        VisitFigure::NotHome => "not-home",
        VisitFigure::Refused => "refused",
    }
}

fn visit_figure_label(figure: VisitFigure, lang: Lang) -> &'static str {
    match figure {
        VisitFigure::All => t(lang, "走访", "Visits"),
        VisitFigure::Met => t(lang, "已见面", "Met"),
        VisitFigure::NotHome => t(lang, "不在家", "Not home"),
        VisitFigure::Refused => t(lang, "拒绝", "Refused"),
    }
}

fn parse_visit_figure(params: &Params) -> Result<VisitFigure, ConsoleError> {
    Ok(match present(&params.figure).unwrap_or("all") {
        "all" => VisitFigure::All,
        "met" => VisitFigure::Met,
        "not-home" => VisitFigure::NotHome,
        "refused" => VisitFigure::Refused,
        _ => return Err(bad("没有这个统计项。", "No such figure.")),
    })
}

fn standing_label(standing: Standing, lang: Lang) -> Markup {
    match standing {
        Standing::Covered => html! { span.badge.ok { (t(lang, "已覆盖", "Covered")) } },
        Standing::Pending => html! { span.badge.warn { (t(lang, "待首访", "Pending")) } },
        Standing::Overdue => html! { span.badge.bad { (t(lang, "逾期", "Overdue")) } },
    }
}

// ---------------------------------------------------------------------------------------------
// The dashboard page.

/// `GET /console?period=week|month|from=…&to=…&by=community|grid|worker`.
pub(super) async fn page(user: ConsoleUser, RawQuery(query): RawQuery) -> Result<Markup, ConsoleError> {
    let params = Params::parse(query)?;
    let (facts, roster) = facts_for(&user).await?;
    let view = View::resolve(&user, &roster, &params)?;
    // The figures take a few to tens of milliseconds at street scale: off the async threads.
    let dashboard = {
        let (facts, grouping, config) = (facts.clone(), view.grouping.clone(), view.config.clone());
        let (period, now) = (view.period, view.now);
        tokio::task::spawn_blocking(move || figures::dashboard(&facts, period, now, &config, &grouping))
            .await
            .map_err(|e| ConsoleError::internal(format!("dashboard task failed: {e}")))?
    };
    let hours = super::service_hours::totals_for(&user, &roster, view.first, view.last).await?;
    Ok(render(&user, &view, &dashboard, &hours))
}

fn render(user: &ConsoleUser, view: &View, d: &Dashboard, hours: &gridlink_shared::activity::ActivityTotals) -> Markup {
    let lang = user.lang;
    let groups = view.groups();
    layout::page(
        user,
        Section::Dashboard,
        user.t("工作台", "Dashboard"),
        html! {
            (controls(user, view))
            div.dashboard {
                (coverage_card(lang, view, d, &groups))
                (arrival_card(lang, view, d, &groups))
                (cases_card(lang, view, d, &groups))
                (wishes_card(lang, view, d, &groups))
                (super::service_hours::card(lang, hours))
                (satisfaction_card(lang, view, d, &groups))
                (visits_card(lang, view, d, &groups))
                (trends_card(lang, view, d))
                (comparison_card(lang, view, d, &groups))
            }
        },
    )
}

fn controls(user: &ConsoleUser, view: &View) -> Markup {
    let lang = user.lang;
    html! {
        section.card.dash-controls {
            form.dash-form method="get" action="/console" {
                div.field {
                    label for="period" { (t(lang, "统计期", "Period")) }
                    select #period name="period" {
                        option value="month" selected[view.choice == Choice::Month] { (t(lang, "本月", "This month")) }
                        option value="week" selected[view.choice == Choice::Week] { (t(lang, "本周", "This week")) }
                    }
                }
                div.field {
                    label for="from" { (t(lang, "或 从", "or from")) }
                    input #from type="date" name="from" value=[(view.choice == Choice::Days).then_some(view.first)];
                }
                div.field {
                    label for="to" { (t(lang, "至", "to")) }
                    input #to type="date" name="to" value=[(view.choice == Choice::Days).then_some(view.last)];
                }
                div.field {
                    label for="by" { (t(lang, "分组", "Group by")) }
                    select #by name="by" {
                        @for by in [GroupBy::Community, GroupBy::Grid, GroupBy::Worker] {
                            option value=(by_code(by)) selected[view.by == by] { (by_label(by, lang)) }
                        }
                    }
                }
                button.btn.primary type="submit" { (t(lang, "查看", "Show")) }
            }
            p.period-line {
                (t(lang, "统计期：", "Period: ")) strong { (view.first) " — " (view.last) }
                " · " (t(lang, "按", "by ")) (by_label(view.by, lang)) (t(lang, "分组", ""))
                " · " (t(lang, "截至 ", "as of ")) (format_local(view.now))
                " · " a href={ "/console/sync" } { (t(lang, "同步情况", "Sync health")) }
            }
        }
    }
}

fn coverage_card(lang: Lang, view: &View, d: &Dashboard, groups: &[(GroupKey, String)]) -> Markup {
    let link = |figure: HouseholdFigure, group: Option<&GroupKey>| {
        let (code, tag) = household_figure_code(figure);
        let mut fields = vec![("figure", code.to_string())];
        if let Some(tag) = tag {
            fields.push(("tag", tag.code().to_string()));
        }
        view.href("households", &fields, group, None)
    };
    let fig = |figure: HouseholdFigure| {
        let (code, tag) = household_figure_code(figure);
        match tag {
            Some(tag) => format!("coverage.{}.{code}", tag.code()),
            None => format!("coverage.{code}"),
        }
    };
    let total = &d.coverage.total;
    html! {
        section.card.dash-card #coverage {
            h2 { (t(lang, "四必访覆盖", "Must-visit coverage (四必访)")) span.muted { " · " (t(lang, "截至今日", "as of today")) } }
            table.data {
                thead { tr {
                    th { (t(lang, "对象", "Tag")) }
                    th.num { (t(lang, "在册", "Tagged")) }
                    th.num { (t(lang, "已覆盖", "Covered")) }
                    th.num { (t(lang, "待首访", "Pending")) }
                    th.num { (t(lang, "逾期", "Overdue")) }
                    th.num { (t(lang, "覆盖率", "Coverage")) }
                } }
                tbody {
                    @for (tag, c) in &total.by_tag {
                        tr {
                            th scope="row" { (tag.label(lang)) }
                            td.num { (count(c.tagged, &fig(HouseholdFigure::Tagged(*tag)), None, link(HouseholdFigure::Tagged(*tag), None))) }
                            td.num { (count(c.covered, &fig(HouseholdFigure::Covered(*tag)), None, link(HouseholdFigure::Covered(*tag), None))) }
                            td.num { (count(c.pending, &fig(HouseholdFigure::Pending(*tag)), None, link(HouseholdFigure::Pending(*tag), None))) }
                            td.num.bad[c.overdue > 0] { (count(c.overdue, &fig(HouseholdFigure::Overdue(*tag)), None, link(HouseholdFigure::Overdue(*tag), None))) }
                            td.num { (derived(percent(c.coverage_rate), &format!("coverage.{}.rate", tag.code()), None, link(HouseholdFigure::Covered(*tag), None))) }
                        }
                    }
                }
            }
            p.dash-line {
                (t(lang, "四必访在册户数 ", "Households with a tag: "))
                (count(total.households_tagged, &fig(HouseholdFigure::HouseholdsTagged), None, link(HouseholdFigure::HouseholdsTagged, None)))
                " · " (t(lang, "逾期户数 ", "households overdue: "))
                span.bad { (count(total.households_overdue, &fig(HouseholdFigure::HouseholdsOverdue), None, link(HouseholdFigure::HouseholdsOverdue, None))) }
            }
            @if !groups.is_empty() {
                h3 { (t(lang, "按", "By ")) (by_label(view.by, lang)) (t(lang, "（已覆盖 / 在册）", " (covered / tagged)")) }
                div.table-scroll { table.data.compact {
                    thead { tr {
                        th { (by_label(view.by, lang)) }
                        @for tag in total.by_tag.keys() { th.num { (tag.label(lang)) } }
                        th.num { (t(lang, "逾期户数", "Households overdue")) }
                    } }
                    tbody {
                        @for (key, label) in groups {
                            @if let Some(g) = d.coverage.groups.get(key) {
                                tr {
                                    th scope="row" { (label) }
                                    @for (tag, c) in &g.by_tag {
                                        td.num {
                                            (count(c.covered, &fig(HouseholdFigure::Covered(*tag)), Some(key), link(HouseholdFigure::Covered(*tag), Some(key))))
                                            " / "
                                            (count(c.tagged, &fig(HouseholdFigure::Tagged(*tag)), Some(key), link(HouseholdFigure::Tagged(*tag), Some(key))))
                                            @if c.overdue > 0 {
                                                " " span.badge.bad { (t(lang, "逾期 ", "overdue ")) (count(c.overdue, &fig(HouseholdFigure::Overdue(*tag)), Some(key), link(HouseholdFigure::Overdue(*tag), Some(key)))) }
                                            }
                                        }
                                    }
                                    td.num { (count(g.households_overdue, &fig(HouseholdFigure::HouseholdsOverdue), Some(key), link(HouseholdFigure::HouseholdsOverdue, Some(key)))) }
                                }
                            }
                        }
                    }
                } }
            }
        }
    }
}

fn case_link(
    view: &View,
    figure: CaseFigure,
    kind: Option<CaseKind>,
    group: Option<&GroupKey>,
    days: Option<Period>,
) -> String {
    let mut fields = vec![("figure", case_figure_code(figure).to_string())];
    if let CaseFigure::Score(n) = figure {
        fields.push(("score", n.to_string()));
    }
    if let Some(kind) = kind {
        fields.push(("kind", kind.to_string()));
    }
    view.href("cases", &fields, group, days)
}

fn arrival_cells(
    view: &View,
    c: &ArrivalCounts,
    prefix: &str,
    kind: Option<CaseKind>,
    group: Option<&GroupKey>,
) -> Markup {
    let cell = |n: usize, figure: CaseFigure, name: &str| {
        count(n, &format!("{prefix}.{name}"), group, case_link(view, figure, kind, group, None))
    };
    html! {
        td.num { (cell(c.events, CaseFigure::MustArrive, "events")) }
        td.num { (cell(c.on_time, CaseFigure::ArrivedOnTime, "on-time")) }
        td.num { (cell(c.late, CaseFigure::ArrivedLate, "late")) }
        td.num { (cell(c.not_yet, CaseFigure::NotYetArrived, "not-yet")) }
        td.num.bad[c.not_yet_overdue > 0] { (cell(c.not_yet_overdue, CaseFigure::NotYetArrivedOverdue, "not-yet-overdue")) }
        td.num { (derived(percent(c.on_time_rate), &format!("{prefix}.on-time-rate"), group, case_link(view, CaseFigure::ArrivedOnTime, kind, group, None))) }
        td.num { @match c.median_minutes { Some(m) => (format!("{m:.0}")), None => "—" } }
    }
}

fn arrival_head(lang: Lang, first: &str) -> Markup {
    html! { thead { tr {
        th { (first) }
        th.num { (t(lang, "事件", "Events")) }
        th.num { (t(lang, "按时到场", "On time")) }
        th.num { (t(lang, "迟到", "Late")) }
        th.num { (t(lang, "未到场", "Not yet")) }
        th.num { (t(lang, "其中超时", "Past deadline")) }
        th.num { (t(lang, "到场及时率", "On-time rate")) }
        th.num { (t(lang, "用时中位数（分钟）", "Median minutes")) }
    } } }
}

fn arrival_card(lang: Lang, view: &View, d: &Dashboard, groups: &[(GroupKey, String)]) -> Markup {
    let total = &d.must_arrive.total;
    html! {
        section.card.dash-card #must-arrive {
            h2 { (t(lang, "四必到", "Must-arrive (四必到)")) }
            table.data {
                (arrival_head(lang, t(lang, "事件类型", "Event")))
                tbody {
                    tr.total { th scope="row" { (t(lang, "合计", "All")) } (arrival_cells(view, &total.all, "arrive", None, None)) }
                    @for (kind, c) in &total.by_kind {
                        tr {
                            th scope="row" { (kind.label(lang)) }
                            (arrival_cells(view, c, &format!("arrive.kind.{}", kind.code()), Some(CaseKind::MustArrive(*kind)), None))
                        }
                    }
                }
            }
            @if !groups.is_empty() {
                h3 { (t(lang, "按", "By ")) (by_label(view.by, lang)) }
                div.table-scroll { table.data.compact {
                    (arrival_head(lang, by_label(view.by, lang)))
                    tbody {
                        @for (key, label) in groups {
                            @if let Some(g) = d.must_arrive.groups.get(key) {
                                tr { th scope="row" { (label) } (arrival_cells(view, &g.all, "arrive", None, Some(key))) }
                            }
                        }
                    }
                } }
            }
        }
    }
}

fn case_cells(view: &View, c: &CaseCounts, prefix: &str, kind: Option<CaseKind>, group: Option<&GroupKey>) -> Markup {
    let cell = |n: usize, figure: CaseFigure| {
        count(n, &format!("{prefix}.{}", case_figure_code(figure)), group, case_link(view, figure, kind, group, None))
    };
    html! {
        td.num { (cell(c.opened, CaseFigure::Opened)) }
        td.num { (cell(c.completed, CaseFigure::Completed)) }
        td.num { (derived(percent(c.completion_rate), &format!("{prefix}.completion-rate"), group, case_link(view, CaseFigure::Completed, kind, group, None))) }
        td.num { (cell(c.completed_on_time, CaseFigure::CompletedOnTime)) }
        td.num { (derived(percent(c.on_time_rate), &format!("{prefix}.on-time-rate"), group, case_link(view, CaseFigure::CompletedOnTime, kind, group, None))) }
        td.num.bad[c.open_overdue > 0] { (cell(c.open_overdue, CaseFigure::OpenOverdue)) }
    }
}

fn case_head(lang: Lang, first: &str) -> Markup {
    html! { thead { tr {
        th { (first) }
        th.num { (t(lang, "受理", "Opened")) }
        th.num { (t(lang, "已办结", "Completed")) }
        th.num { (t(lang, "办结率", "Completion")) }
        th.num { (t(lang, "按时办结", "On time")) }
        th.num { (t(lang, "限时办结率", "On-time rate")) }
        th.num { (t(lang, "逾期未办结", "Overdue now")) }
    } } }
}

fn cases_card(lang: Lang, view: &View, d: &Dashboard, groups: &[(GroupKey, String)]) -> Markup {
    let total = &d.cases.total;
    // Kinds with cases first (most first), then the empty ones, so the table stays complete.
    let mut kinds: Vec<(&CaseKind, &CaseCounts)> = total.by_kind.iter().collect();
    kinds.sort_by_key(|(kind, c)| (c.opened == 0, std::cmp::Reverse(c.opened), **kind));
    html! {
        section.card.dash-card #cases {
            h2 { (t(lang, "事件办结", "Cases")) }
            table.data {
                (case_head(lang, by_label(view.by, lang)))
                tbody {
                    tr.total { th scope="row" { (t(lang, "合计", "All")) } (case_cells(view, &total.all, "cases", None, None)) }
                    @for (key, label) in groups {
                        @if let Some(g) = d.cases.groups.get(key) {
                            tr { th scope="row" { (label) } (case_cells(view, &g.all, "cases", None, Some(key))) }
                        }
                    }
                }
            }
            h3 { (t(lang, "按事件类型", "By kind")) }
            div.table-scroll { table.data.compact {
                (case_head(lang, t(lang, "类型", "Kind")))
                tbody {
                    @for (kind, c) in kinds {
                        tr.empty[c.opened == 0] {
                            th scope="row" { (kind.label(lang)) }
                            (case_cells(view, c, &format!("cases.kind.{kind}"), Some(*kind), None))
                        }
                    }
                }
            } }
        }
    }
}

/// Micro-wishes (微心愿) posted in the period and how far they got; the posted and fulfilled
/// counts open the wishes behind them (a fulfilled wish is a completed case).
fn wishes_card(lang: Lang, view: &View, d: &Dashboard, groups: &[(GroupKey, String)]) -> Markup {
    let wish = Some(CaseKind::MicroWish);
    let row = |w: &figures::WishCounts, group: Option<&GroupKey>| {
        html! {
            td.num { (count(w.posted, "wishes.posted", group, case_link(view, CaseFigure::Opened, wish, group, None))) }
            td.num { span.num data-figure="wishes.claimed" data-group=(group_attr(group)) { (w.claimed) } }
            td.num { (count(w.fulfilled, "wishes.fulfilled", group, case_link(view, CaseFigure::Completed, wish, group, None))) }
            td.num { span.num data-figure="wishes.thanked" data-group=(group_attr(group)) { (w.thanked) } }
        }
    };
    html! {
        section.card.dash-card #wishes {
            h2 { (t(lang, "微心愿", "Micro-wishes")) }
            div.table-scroll { table.data.compact {
                thead { tr {
                    th { (by_label(view.by, lang)) }
                    th.num { (t(lang, "已发布", "Posted")) }
                    th.num { (t(lang, "已认领", "Claimed")) }
                    th.num { (t(lang, "已实现", "Fulfilled")) }
                    th.num { (t(lang, "已致谢", "Thanked")) }
                } }
                tbody {
                    tr.total { th scope="row" { (t(lang, "合计", "All")) } (row(&d.cases.total.micro_wishes, None)) }
                    @for (key, label) in groups {
                        @if let Some(g) = d.cases.groups.get(key) { tr { th scope="row" { (label) } (row(&g.micro_wishes, Some(key))) } }
                    }
                }
            } }
        }
    }
}

fn satisfaction_card(lang: Lang, view: &View, d: &Dashboard, groups: &[(GroupKey, String)]) -> Markup {
    let row = |s: &figures::SatisfactionFigures, group: Option<&GroupKey>| {
        html! {
            td.num { (count(s.scored, "satisfaction.scored", group, case_link(view, CaseFigure::Scored, None, group, None))) }
            td.num { @match s.mean {
                Some(mean) => (derived(format!("{mean:.2}"), "satisfaction.mean", group, case_link(view, CaseFigure::Scored, None, group, None))),
                None => "—",
            } }
            @for score in 1..=5u8 {
                td.num { (count(s.distribution[usize::from(score - 1)], &format!("satisfaction.score-{score}"), group, case_link(view, CaseFigure::Score(score), None, group, None))) }
            }
        }
    };
    html! {
        section.card.dash-card #satisfaction {
            h2 { (t(lang, "满意度", "Satisfaction")) }
            div.table-scroll { table.data.compact {
                thead { tr {
                    th { (by_label(view.by, lang)) }
                    th.num { (t(lang, "评价数", "Scored")) }
                    th.num { (t(lang, "平均分", "Mean")) }
                    @for score in 1..=5 { th.num { (score) (t(lang, "分", "★")) } }
                } }
                tbody {
                    tr.total { th scope="row" { (t(lang, "合计", "All")) } (row(&d.satisfaction.total, None)) }
                    @for (key, label) in groups {
                        @if let Some(g) = d.satisfaction.groups.get(key) { tr { th scope="row" { (label) } (row(g, Some(key))) } }
                    }
                }
            } }
        }
    }
}

fn visits_card(lang: Lang, view: &View, d: &Dashboard, groups: &[(GroupKey, String)]) -> Markup {
    let row = |v: &figures::VisitCounts, group: Option<&GroupKey>| {
        let cell = |n: usize, figure: VisitFigure| {
            let code = visit_figure_code(figure);
            count(
                n,
                &format!("visits.{code}"),
                group,
                view.href("visits", &[("figure", code.to_string())], group, None),
            )
        };
        html! {
            td.num { (cell(v.visits, VisitFigure::All)) }
            td.num { (cell(v.met, VisitFigure::Met)) }
            td.num { (cell(v.not_home, VisitFigure::NotHome)) }
            td.num { (cell(v.refused, VisitFigure::Refused)) }
        }
    };
    html! {
        section.card.dash-card #visits {
            h2 { (t(lang, "入户走访", "Visits")) }
            div.table-scroll { table.data.compact {
                thead { tr {
                    th { (by_label(view.by, lang)) }
                    th.num { (t(lang, "走访", "Visits")) }
                    th.num { (t(lang, "已见面", "Met")) }
                    th.num { (t(lang, "不在家", "Not home")) }
                    th.num { (t(lang, "拒绝", "Refused")) }
                } }
                tbody {
                    tr.total { th scope="row" { (t(lang, "合计", "All")) } (row(&d.visits.total, None)) }
                    @for (key, label) in groups {
                        @if let Some(g) = d.visits.groups.get(key) { tr { th scope="row" { (label) } (row(g, Some(key))) } }
                    }
                }
            } }
        }
    }
}

fn trends_card(lang: Lang, view: &View, d: &Dashboard) -> Markup {
    let weeks = &d.weeks.total;
    let labels: Vec<String> = weeks.iter().map(|w| local_date(w.week.from).format("%m-%d").to_string()).collect();
    let opened = t(lang, "受理", "Opened");
    let completed = t(lang, "已办结", "Completed");
    let visits = t(lang, "走访", "Visits");
    let met = t(lang, "已见面", "Met");
    let cases_chart = charts::columns(
        t(lang, "每周事件受理与办结", "Cases opened and completed per week"),
        &labels,
        &[
            Series { name: opened, values: weeks.iter().map(|w| w.cases.opened as f64).collect() },
            Series { name: completed, values: weeks.iter().map(|w| w.cases.completed as f64).collect() },
        ],
        Unit::Count,
    );
    let visits_chart = charts::columns(
        t(lang, "每周走访与见面", "Visits and households met per week"),
        &labels,
        &[
            Series { name: visits, values: weeks.iter().map(|w| w.visits.visits as f64).collect() },
            Series { name: met, values: weeks.iter().map(|w| w.visits.met as f64).collect() },
        ],
        Unit::Count,
    );
    html! {
        section.card.dash-card #trends {
            h2 { (t(lang, "周趋势", "Weekly trends")) }
            div.chart-pair {
                figure.chart-box {
                    (cases_chart)
                    figcaption { (t(lang, "每周事件受理与办结（按上报时间所在周）", "Cases opened and completed, by the week reported")) }
                }
                figure.chart-box {
                    (visits_chart)
                    figcaption { (t(lang, "每周走访与见面", "Visits and households met per week")) }
                }
            }
            details.data-table {
                summary { (t(lang, "数据表", "Data table")) }
                table.data.compact {
                    thead { tr {
                        th { (t(lang, "周（起）", "Week of")) }
                        th.num { (opened) } th.num { (completed) } th.num { (t(lang, "办结率", "Completion")) }
                        th.num { (t(lang, "四必到", "Must-arrive")) } th.num { (visits) } th.num { (met) }
                    } }
                    tbody {
                        @for w in weeks {
                            @let prefix = format!("weeks.{}", w.monday);
                            @let vlink = |figure: VisitFigure| view.href("visits", &[("figure", visit_figure_code(figure).to_string())], None, Some(w.week));
                            tr {
                                th scope="row" { (local_date(w.week.from)) " — " (local_date(w.week.to - 1)) }
                                td.num { (count(w.cases.opened, &format!("{prefix}.cases.opened"), None, case_link(view, CaseFigure::Opened, None, None, Some(w.week)))) }
                                td.num { (count(w.cases.completed, &format!("{prefix}.cases.completed"), None, case_link(view, CaseFigure::Completed, None, None, Some(w.week)))) }
                                td.num { (percent(w.cases.completion_rate)) }
                                td.num { (count(w.must_arrive.events, &format!("{prefix}.arrive.events"), None, case_link(view, CaseFigure::MustArrive, None, None, Some(w.week)))) }
                                td.num { (count(w.visits.visits, &format!("{prefix}.visits.all"), None, vlink(VisitFigure::All))) }
                                td.num { (count(w.visits.met, &format!("{prefix}.visits.met"), None, vlink(VisitFigure::Met))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Σ covered / Σ tagged over the tags: one coverage figure per group for the comparison.
fn overall_coverage(c: &figures::CoverageFigures) -> f64 {
    let tagged: usize = c.by_tag.values().map(|t| t.tagged).sum();
    let covered: usize = c.by_tag.values().map(|t| t.covered).sum();
    if tagged == 0 { 1.0 } else { covered as f64 / tagged as f64 }
}

fn comparison_card(lang: Lang, view: &View, d: &Dashboard, groups: &[(GroupKey, String)]) -> Markup {
    if groups.is_empty() {
        return html! {};
    }
    let labels: Vec<String> = groups.iter().map(|(_, l)| l.clone()).collect();
    let completion: Vec<f64> =
        groups.iter().map(|(k, _)| d.cases.groups.get(k).map_or(1.0, |c| c.all.completion_rate)).collect();
    let coverage: Vec<f64> =
        groups.iter().map(|(k, _)| d.coverage.groups.get(k).map_or(1.0, overall_coverage)).collect();
    let chart = charts::bars(
        t(lang, "各组办结率与四必访覆盖率", "Completion and must-visit coverage by group"),
        &labels,
        &[
            Series { name: t(lang, "办结率", "Completion"), values: completion.clone() },
            Series { name: t(lang, "四必访覆盖率", "Coverage"), values: coverage.clone() },
        ],
        Unit::Percent,
    );
    html! {
        section.card.dash-card #compare {
            h2 { (t(lang, "分组对比", "Groups side by side")) }
            figure.chart-box {
                (chart)
                figcaption { (t(lang, "四必访覆盖率为各类对象已覆盖之和除以在册之和。", "Coverage is the covered tags over the tagged ones, all four tags together.")) }
            }
            details.data-table {
                summary { (t(lang, "数据表", "Data table")) }
                table.data.compact {
                    thead { tr {
                        th { (by_label(view.by, lang)) }
                        th.num { (t(lang, "办结率", "Completion")) }
                        th.num { (t(lang, "四必访覆盖率", "Coverage")) }
                    } }
                    tbody {
                        @for (i, (key, label)) in groups.iter().enumerate() {
                            tr {
                                th scope="row" { (label) }
                                td.num { (derived(percent(completion[i]), "compare.completion-rate", Some(key), case_link(view, CaseFigure::Completed, None, Some(key), None))) }
                                td.num { (derived(percent(coverage[i]), "compare.coverage", Some(key), view.href("households", &[("figure", "households-tagged".to_string())], Some(key), None))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Drill-downs.

/// What every drill-down needs: the rows, the view, the group.
struct Drill {
    user: ConsoleUser,
    facts: Arc<Facts>,
    roster: Arc<Roster>,
    view: View,
    group: Option<GroupKey>,
    params: Params,
}

impl Drill {
    async fn open(user: ConsoleUser, query: Option<String>) -> Result<Drill, ConsoleError> {
        let params = Params::parse(query)?;
        let (facts, roster) = facts_for(&user).await?;
        let view = View::resolve(&user, &roster, &params)?;
        let group = view.group(&params)?;
        Ok(Drill { user, facts, roster, view, group, params })
    }

    fn page(&self, title: String, period_matters: bool, rows: usize, table: Markup) -> Markup {
        let lang = self.user.lang;
        let v = &self.view;
        let scope = match &self.group {
            Some(key) => v.label(key),
            None => self.user.scope_names.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join("、"),
        };
        layout::page(
            &self.user,
            Section::Dashboard,
            &title,
            html! {
                section.card.drill-head {
                    p {
                        a href={ "/console?" (v.query()) } { "← " (t(lang, "返回工作台", "Back to the dashboard")) }
                    }
                    p.drill-meta {
                        span { (t(lang, "范围：", "Area: ")) strong { (scope) } }
                        @if period_matters {
                            " · " span { (t(lang, "统计期：", "Period: ")) strong { (v.first) " — " (v.last) } }
                        } @else {
                            " · " span { (t(lang, "截至 ", "As of ")) (format_local(v.now)) }
                        }
                        " · " span.row-count data-rows=(rows) { (t(lang, "共 ", "")) strong { (rows) } (t(lang, " 条", " rows")) }
                    }
                }
                @if rows == 0 {
                    section.card { p.muted { (t(lang, "没有符合条件的记录。", "Nothing to list.")) } }
                } @else {
                    div.table-scroll { (table) }
                }
            },
        )
    }

    fn grid_names(&self) -> HashMap<GridId, &str> {
        self.roster.grids.iter().map(|g| (g.id, g.name.as_str())).collect()
    }
}

fn date_or_dash(ms: Option<Millis>) -> String {
    ms.map(format_local).unwrap_or_else(|| "—".to_string())
}

/// `GET /console/drill/households?figure=…&tag=…&group=…`: the households behind a coverage
/// figure, most urgent first.
pub(super) async fn drill_households(user: ConsoleUser, RawQuery(query): RawQuery) -> Result<Markup, ConsoleError> {
    let drill = Drill::open(user, query).await?;
    let figure = parse_household_figure(&drill.params)?;
    let v = &drill.view;
    let rows = figures::coverage_rows(
        &drill.facts.households,
        &drill.facts.visits,
        figure,
        drill.group.as_ref(),
        v.now,
        &v.config,
        &v.grouping,
    );
    let lang = drill.user.lang;
    let today = local_date(v.now);
    let table = html! {
        table.data.drill {
            thead { tr {
                th { (t(lang, "地址", "Address")) }
                th { (t(lang, "户主", "Head")) }
                th { (t(lang, "对象", "Tag")) }
                th { (t(lang, "状态", "Standing")) }
                th { (t(lang, "应访日期", "Due")) }
                th { (t(lang, "上次见面", "Last met")) }
            } }
            tbody {
                @for row in &rows {
                    tr {
                        td { a href={ "/console/households/" (row.household.id) } { (row.household.address) } }
                        td { (row.household.head) }
                        td { (row.tag.label(lang)) }
                        td { (standing_label(row.standing, lang)) }
                        td {
                            @match &row.due {
                                Some(due) => {
                                    (due.due_on)
                                    @if due.due_on < today { " " span.bad { "(" ((today - due.due_on).num_days()) (t(lang, "天", "d")) ")" } }
                                }
                                None => "—",
                            }
                        }
                        td { (date_or_dash(row.due.as_ref().and_then(|d| d.last_met))) }
                    }
                }
            }
        }
    };
    Ok(drill.page(household_figure_label(figure, lang), false, rows.len(), table))
}

/// `GET /console/drill/cases?figure=…&kind=…&score=…&group=…&from=…&to=…`: the cases behind
/// a case figure, oldest report first.
pub(super) async fn drill_cases(user: ConsoleUser, RawQuery(query): RawQuery) -> Result<Markup, ConsoleError> {
    let drill = Drill::open(user, query).await?;
    let figure = parse_case_figure(&drill.params)?;
    let kind = match present(&drill.params.kind) {
        Some(raw) => Some(raw.parse::<CaseKind>().map_err(|_| bad("没有这个事件类型。", "No such case kind."))?),
        None => None,
    };
    let v = &drill.view;
    let rows = figures::case_rows(&drill.facts.cases, figure, kind, drill.group.as_ref(), v.period, v.now, &v.grouping);
    let lang = drill.user.lang;
    let grids = drill.grid_names();
    let arrival = matches!(
        figure,
        CaseFigure::MustArrive
            | CaseFigure::ArrivedOnTime
            | CaseFigure::ArrivedLate
            | CaseFigure::NotYetArrived
            | CaseFigure::NotYetArrivedOverdue
    );
    let table = html! {
        table.data.drill {
            thead { tr {
                th { (t(lang, "上报时间", "Reported")) }
                th { (t(lang, "类型", "Kind")) }
                th { (t(lang, "标题", "Title")) }
                th { (t(lang, "网格", "Grid")) }
                th { (t(lang, "负责人", "Responsible")) }
                th { (t(lang, "状态", "Status")) }
                @if arrival { th { (t(lang, "到场时限", "Arrive by")) } th { (t(lang, "到场", "Arrived")) } }
                th { (t(lang, "办结时限", "Deadline")) }
                th { (t(lang, "办结时间", "Completed")) }
            } }
            tbody {
                @for case in &rows {
                    tr {
                        td.nowrap { (format_local(case.reported_at)) }
                        td { (case.kind.label(lang)) }
                        td { a href={ "/console/cases/" (case.id) } { (case.title) } }
                        td { (grids.get(&case.placement.grid).copied().unwrap_or("—")) }
                        td { (case.responsible_name) }
                        td { (case.status.label(lang)) }
                        @if arrival {
                            td.nowrap { (date_or_dash(case.arrival_deadline)) }
                            td.nowrap { (date_or_dash(case.first_arrival)) }
                        }
                        td.nowrap.bad[case.completed_at.is_none() && case.completion_deadline < v.now] { (format_local(case.completion_deadline)) }
                        td.nowrap { (date_or_dash(case.completed_at)) }
                    }
                }
            }
        }
    };
    let mut title = case_figure_label(figure, lang);
    if let Some(kind) = kind {
        title = format!("{} · {title}", kind.label(lang));
    }
    Ok(drill.page(title, true, rows.len(), table))
}

/// `GET /console/drill/visits?figure=all|met|not-home|refused&group=…&from=…&to=…`: the visits
/// behind a visit figure, oldest first.
pub(super) async fn drill_visits(user: ConsoleUser, RawQuery(query): RawQuery) -> Result<Markup, ConsoleError> {
    let drill = Drill::open(user, query).await?;
    let figure = parse_visit_figure(&drill.params)?;
    let v = &drill.view;
    let rows = figures::visit_rows(&drill.facts.visits, figure, drill.group.as_ref(), v.period, v.now, &v.grouping);
    let addresses: HashMap<HouseholdId, &str> =
        drill.facts.households.iter().map(|h| (h.id, h.address.as_str())).collect();
    let lang = drill.user.lang;
    let table = html! {
        table.data.drill {
            thead { tr {
                th { (t(lang, "走访时间", "Time")) }
                th { (t(lang, "地址", "Address")) }
                th { (t(lang, "走访人", "Visitor")) }
                th { (t(lang, "结果", "Outcome")) }
            } }
            tbody {
                @for visit in &rows {
                    tr {
                        td.nowrap { (format_local(visit.at)) @if visit.at > v.now + DAY_MS { " " span.badge.warn { (t(lang, "时间超前", "future")) } } }
                        td { a href={ "/console/households/" (visit.household) } { (addresses.get(&visit.household).copied().unwrap_or("—")) } }
                        td { (visit.visitor_name) }
                        td { (visit.outcome.label(lang)) }
                    }
                }
            }
        }
    };
    Ok(drill.page(visit_figure_label(figure, lang).to_string(), true, rows.len(), table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_default_to_this_month_and_take_inclusive_days() {
        let now = gridlink_shared::time::start_of_local_day(NaiveDate::from_ymd_opt(2026, 11, 18).unwrap());
        let (month, choice) = resolve_period(&Params::default(), now).unwrap();
        assert_eq!((month, choice), (Period::this_month(now), Choice::Month));
        let week = Params { period: Some("week".into()), ..Params::default() };
        assert_eq!(resolve_period(&week, now).unwrap().0, Period::this_week(now));
        let days = Params { from: Some("2026-11-02".into()), to: Some("2026-11-08".into()), ..Params::default() };
        let (period, _) = resolve_period(&days, now).unwrap();
        assert_eq!(
            period,
            Period::days(NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(), NaiveDate::from_ymd_opt(2026, 11, 8).unwrap())
        );
        let backwards = Params { from: Some("2026-11-08".into()), to: Some("2026-11-02".into()), ..Params::default() };
        assert!(resolve_period(&backwards, now).is_err());
        let blank = Params {
            period: Some("month".into()),
            from: Some(String::new()),
            to: Some(String::new()),
            ..Params::default()
        };
        assert_eq!(resolve_period(&blank, now).unwrap().1, Choice::Month, "a submitted form's blank dates are absent");
    }

    #[test]
    fn figures_round_trip_through_their_codes() {
        for figure in
            [CaseFigure::Opened, CaseFigure::OpenOverdue, CaseFigure::NotYetArrivedOverdue, CaseFigure::Score(4)]
        {
            let params =
                Params { figure: Some(case_figure_code(figure).into()), score: Some("4".into()), ..Params::default() };
            assert_eq!(parse_case_figure(&params).unwrap(), figure);
        }
        let figure = HouseholdFigure::Overdue(MustVisitTag::EmptyNest);
        let (code, tag) = household_figure_code(figure);
        let params = Params { figure: Some(code.into()), tag: tag.map(|t| t.code().to_string()), ..Params::default() };
        assert_eq!(parse_household_figure(&params).unwrap(), figure);
    }
}
