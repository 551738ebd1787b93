//! The supervisor's home (督导工作台): this month's figures as the console shows them (must-visit
//! coverage, case completion 办结率 and on-time rate, must-arrive timeliness, satisfaction,
//! visits), computed by the client core with the shared figure functions over the documents on
//! the phone, and the lists a supervisor acts on: cases waiting to be verified and closed
//! (待核实办结), overdue cases, overdue must-visit households. Every row taps through to the
//! case or household; nothing here edits a household file, which a supervisor may not do
//! (the households with edits to confirm lead to their files, where a supervisor may pick).

use dioxus::prelude::*;
use gridlink_client::figures::{OverdueHouseholdRow, SupervisorHome as HomeView};
use gridlink_shared::figures::CaseFacts;
use gridlink_shared::time::Millis;
use gridlink_shared::{Lang, MustVisitTag};

use crate::components::badges::TagBadge;
use crate::components::page::{Empty, ErrorState, PageTitle, SectionTitle};
use crate::format;
use crate::route::Route;
use crate::state::use_ctx;
use crate::views::conflicts::ConflictList;

/// How many rows each list shows before "show all": a street has hundreds of overdue rows.
const FIRST_ROWS: usize = 20;

/// The words of this screen, one typed table per language like [`crate::i18n`]; kept here so
/// the supervisor's vocabulary lives beside the only screen that uses it.
pub struct SupervisorWords {
    pub title: &'static str,
    pub period: fn(&str, &str) -> String,
    pub coverage: &'static str,
    pub households_tagged: &'static str,
    pub households_overdue: &'static str,
    pub tag_line: fn(usize, usize, &str) -> String,
    pub cases: &'static str,
    pub opened: &'static str,
    pub completion_rate: &'static str,
    pub on_time_rate: &'static str,
    pub open_overdue: &'static str,
    pub must_arrive: &'static str,
    pub events: &'static str,
    pub arrival_rate: &'static str,
    pub not_arrived_late: &'static str,
    pub satisfaction: &'static str,
    pub mean_score: &'static str,
    pub scored: &'static str,
    pub visits: &'static str,
    pub visits_all: &'static str,
    pub visits_met: &'static str,
    pub to_verify: &'static str,
    pub none_to_verify: &'static str,
    pub resolved_at: fn(&str) -> String,
    pub overdue_cases: &'static str,
    pub no_overdue_cases: &'static str,
    pub overdue_since: fn(&str) -> String,
    pub overdue_households: &'static str,
    pub no_overdue_households: &'static str,
    pub responsible: fn(&str) -> String,
    pub show_all: fn(usize) -> String,
    /// The close button on a resolved case, for a supervisor: closing it is the verification.
    pub verify_close: &'static str,
    /// The case list's segment of resolved cases waiting for the supervisor.
    pub segment_to_verify: &'static str,
}

pub static ZH: SupervisorWords = SupervisorWords {
    title: "督导工作台",
    period: |from, to| format!("本月 {from} 至 {to}"),
    coverage: "四必访覆盖",
    households_tagged: "在册户数",
    households_overdue: "逾期户数",
    tag_line: |covered, tagged, rate| format!("已覆盖 {covered}/{tagged} · 覆盖率 {rate}"),
    cases: "事件办结",
    opened: "受理",
    completion_rate: "办结率",
    on_time_rate: "限时办结率",
    open_overdue: "逾期未办结",
    must_arrive: "四必到",
    events: "事件数",
    arrival_rate: "到场及时率",
    not_arrived_late: "超时未到",
    satisfaction: "满意度",
    mean_score: "平均分",
    scored: "已评价",
    visits: "走访",
    visits_all: "走访次数",
    visits_met: "已见面",
    to_verify: "待核实办结",
    none_to_verify: "没有待核实的事件",
    resolved_at: |at| format!("{at} 已办结，待核实"),
    overdue_cases: "逾期未办结事件",
    no_overdue_cases: "没有逾期事件",
    overdue_since: |at| format!("办结时限 {at}，已逾期"),
    overdue_households: "逾期未访户",
    no_overdue_households: "没有逾期未访的户",
    responsible: |name| format!("首问负责：{name}"),
    show_all: |n| format!("显示全部 {n} 条"),
    verify_close: "核实办结",
    segment_to_verify: "待核实",
};

pub static EN: SupervisorWords = SupervisorWords {
    title: "Supervisor's desk",
    period: |from, to| format!("This month, {from} to {to}"),
    coverage: "Must-visit coverage",
    households_tagged: "Households listed",
    households_overdue: "Households overdue",
    tag_line: |covered, tagged, rate| format!("Covered {covered}/{tagged} · coverage {rate}"),
    cases: "Case completion",
    opened: "Opened",
    completion_rate: "Completion rate",
    on_time_rate: "On-time rate",
    open_overdue: "Overdue, open",
    must_arrive: "Must-arrive events",
    events: "Events",
    arrival_rate: "Arrived on time",
    not_arrived_late: "Not arrived, late",
    satisfaction: "Satisfaction",
    mean_score: "Mean score",
    scored: "Scored",
    visits: "Visits",
    visits_all: "Visits",
    visits_met: "Met",
    to_verify: "Waiting to verify and close",
    none_to_verify: "No case is waiting for verification",
    resolved_at: |at| format!("Resolved {at}, to verify"),
    overdue_cases: "Overdue cases",
    no_overdue_cases: "No overdue case",
    overdue_since: |at| format!("Due {at}, overdue"),
    overdue_households: "Overdue must-visit households",
    no_overdue_households: "No overdue household",
    responsible: |name| format!("Responsible: {name}"),
    show_all: |n| format!("Show all {n}"),
    verify_close: "Verify and close",
    segment_to_verify: "To verify",
};

pub fn words(lang: Lang) -> &'static SupervisorWords {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

#[component]
pub fn SupervisorHome() -> Element {
    let ctx = use_ctx();
    ctx.watch();
    let lang = ctx.lang();
    // Recomputed when the store changes (a write, a sync) or the screen opens, not on every
    // minute tick: at street scale a read costs most of a second (see gridlink_client::figures),
    // and a figure that turns overdue at midnight can wait for the next change or visit.
    match ctx.client.supervisor_home(None, ctx.now_untracked()) {
        Ok(home) => rsx! { SupervisorScreen { home, lang } },
        Err(error) => rsx! {
            PageTitle { title: words(lang).title.to_string() }
            ErrorState { text: ctx.words(&error) }
        },
    }
}

#[component]
fn SupervisorScreen(home: HomeView, lang: Lang) -> Element {
    let w = words(lang);
    let d = &home.dashboard;
    let coverage = &d.coverage.total;
    let cases = &d.cases.total.all;
    let (wish, wishes) = (&d.cases.total.micro_wishes, crate::i18n::wish_words(lang));
    let arrival = &d.must_arrive.total.all;
    let satisfaction = &d.satisfaction.total;
    let visits = &d.visits.total;
    let period = (w.period)(&format::date(d.period.from), &format::date(d.period.to - 1));
    let tags: Vec<(MustVisitTag, String)> = coverage
        .by_tag
        .iter()
        .filter(|(_, c)| c.tagged > 0)
        .map(|(tag, c)| (*tag, (w.tag_line)(c.covered, c.tagged, &percent(c.coverage_rate))))
        .collect();
    let mean = satisfaction.mean.map_or("—".to_string(), |m| format!("{m:.1}"));
    rsx! {
        PageTitle { title: w.title.to_string(),
            span { class: "muted", id: "period", {period} }
        }
        SectionTitle { title: w.coverage.to_string() }
        div { class: "stat-row", id: "coverage",
            Stat { value: coverage.households_tagged.to_string(), label: w.households_tagged }
            Stat { value: coverage.households_overdue.to_string(), label: w.households_overdue, tone: if coverage.households_overdue > 0 { "bad" } else { "" } }
            Stat { value: visits.met.to_string(), label: w.visits_met }
        }
        div { class: "card",
            for (tag, line) in tags {
                div { key: "{tag.code()}", class: "row",
                    TagBadge { tag, lang }
                    span { class: "grow sub", style: "margin-left:8px", {line} }
                }
            }
        }
        SectionTitle { title: w.cases.to_string() }
        div { class: "stat-row", id: "case-figures",
            Stat { value: cases.opened.to_string(), label: w.opened }
            Stat { value: percent(cases.completion_rate), label: w.completion_rate }
            Stat { value: percent(cases.on_time_rate), label: w.on_time_rate }
        }
        div { class: "stat-row",
            Stat { value: cases.open_overdue.to_string(), label: w.open_overdue, tone: if cases.open_overdue > 0 { "bad" } else { "" } }
            Stat { value: mean, label: w.mean_score }
            Stat { value: satisfaction.scored.to_string(), label: w.scored }
        }
        SectionTitle { title: w.must_arrive.to_string() }
        div { class: "stat-row", id: "arrival-figures",
            Stat { value: arrival.events.to_string(), label: w.events }
            Stat { value: percent(arrival.on_time_rate), label: w.arrival_rate }
            Stat { value: arrival.not_yet_overdue.to_string(), label: w.not_arrived_late, tone: if arrival.not_yet_overdue > 0 { "bad" } else { "" } }
        }
        SectionTitle { title: wishes.figures_title.to_string() }
        div { class: "stat-row", id: "wish-figures",
            Stat { value: wish.posted.to_string(), label: wishes.posted }
            Stat { value: wish.claimed.to_string(), label: wishes.claimed }
            Stat { value: wish.fulfilled.to_string(), label: wishes.fulfilled }
            Stat { value: wish.thanked.to_string(), label: wishes.thanked }
        }
        SectionTitle { title: w.visits.to_string() }
        div { class: "stat-row", id: "visit-figures",
            Stat { value: visits.visits.to_string(), label: w.visits_all }
            Stat { value: visits.met.to_string(), label: w.visits_met }
            Stat { value: visits.not_home.to_string(), label: gridlink_shared::VisitOutcome::NotHome.label(lang) }
        }
        ConflictList { lang }
        CaseList {
            id: "to-verify",
            title: w.to_verify,
            empty: w.none_to_verify,
            rows: home.to_verify.clone(),
            verify: true,
            lang,
        }
        CaseList {
            id: "overdue-cases",
            title: w.overdue_cases,
            empty: w.no_overdue_cases,
            rows: home.overdue_cases.clone(),
            verify: false,
            lang,
        }
        HouseholdList { rows: home.overdue_households.clone(), lang }
    }
}

#[component]
fn Stat(value: String, #[props(into)] label: String, #[props(default, into)] tone: String) -> Element {
    rsx! {
        div { class: "stat {tone}",
            div { class: "n", {value} }
            div { class: "l", {label} }
        }
    }
}

/// A list of cases, the first rows then all on request; each row opens the case.
#[component]
fn CaseList(
    id: &'static str,
    title: &'static str,
    empty: &'static str,
    rows: Vec<CaseFacts>,
    verify: bool,
    lang: Lang,
) -> Element {
    let w = words(lang);
    let mut show_all = use_signal(|| false);
    let shown = if show_all() { rows.len() } else { rows.len().min(FIRST_ROWS) };
    rsx! {
        SectionTitle { title: title.to_string(), count: rows.len() }
        div { id,
            if rows.is_empty() {
                Empty { text: empty.to_string() }
            }
            for case in rows.iter().take(shown).cloned() {
                CaseCard { key: "{case.id}", case, verify, lang }
            }
            if shown < rows.len() {
                button { class: "btn block", onclick: move |_| show_all.set(true), {(w.show_all)(rows.len())} }
            }
        }
    }
}

#[component]
fn CaseCard(case: CaseFacts, verify: bool, lang: Lang) -> Element {
    let w = words(lang);
    let when = |at: Millis| format::date_time(at);
    let state = if verify {
        (w.resolved_at)(&case.completed_at.map(when).unwrap_or_default())
    } else {
        (w.overdue_since)(&when(case.completion_deadline))
    };
    let tone = if verify { "reason" } else { "reason overdue" };
    rsx! {
        Link { class: "card", style: "display:block;text-decoration:none;color:inherit", to: Route::CasePage { id: case.id },
            div { class: "muted", {case.kind.label(lang)} }
            div { class: "title", {case.title.clone()} }
            div { class: "sub", {(w.responsible)(&case.responsible_name)} }
            div { class: tone, {state} }
        }
    }
}

/// Overdue must-visit households at their most urgent tag; each row opens the household file
/// (read-only for a supervisor).
#[component]
fn HouseholdList(rows: Vec<OverdueHouseholdRow>, lang: Lang) -> Element {
    let w = words(lang);
    let mut show_all = use_signal(|| false);
    let shown = if show_all() { rows.len() } else { rows.len().min(FIRST_ROWS) };
    rsx! {
        SectionTitle { title: w.overdue_households.to_string(), count: rows.len() }
        div { id: "overdue-households",
            if rows.is_empty() {
                Empty { text: w.no_overdue_households.to_string() }
            }
            for row in rows.iter().take(shown).cloned() {
                Link { key: "{row.household}", class: "card", style: "display:block;text-decoration:none;color:inherit", to: Route::HouseholdPage { id: row.household },
                    div { class: "title", {row.head.clone()} }
                    div { class: "sub", {row.address.clone()} }
                    div { class: "reason {format::due_class(&row.due)}", "{row.tag.label(lang)} · {format::due_phrase(lang, &row.due)}" }
                }
            }
            if shown < rows.len() {
                button { class: "btn block", onclick: move |_| show_all.set(true), {(w.show_all)(rows.len())} }
            }
        }
    }
}
