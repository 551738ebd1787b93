//! Case review (事件): `GET /console/cases`, the cases of the user's area from the supervisors'
//! rows (so the list agrees with the dashboard) with filters and pages; `GET
//! /console/cases/{id}`, one case whole with its timeline in causal order; and the supervisor
//! actions on it, `POST /console/cases/{id}/{close,reopen,reassign,comment}`, which become
//! automerge changes through the sync path (`store/console_write.rs`).

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use gridlink_shared::codes::{ActionKind, CaseStatus};
use gridlink_shared::figures::CaseFacts;
use gridlink_shared::policy::{ArrivalState, CompletionState};
use gridlink_shared::time::{Millis, format_local, now_millis};
use gridlink_shared::{CaseFile, CaseId, CaseKind, GridId, Lang, PolicyConfig, Role, Scope, UserId};
use maud::{Markup, html};
use serde::Deserialize;

use super::errors::ConsoleError;
use super::facts_cache::facts_for;
use super::form::{CsrfForm, post_form};
use super::layout::{self, Section, t};
use super::session::ConsoleUser;
use crate::store::{ActOutcome, ActProblem, CaseAct, MAX_NOTE_CHARS};

/// Rows per page of the list.
pub const PAGE_SIZE: usize = 100;

/// The list's query, as typed: every field optional, empty meaning "any".
#[derive(Clone, Debug, Default, Deserialize)]
struct ListQuery {
    kind: Option<String>,
    status: Option<String>,
    overdue: Option<String>,
    grid: Option<String>,
    worker: Option<String>,
    from: Option<String>,
    to: Option<String>,
    page: Option<String>,
}

/// A kind filter: one kind, or a family (`must-arrive`, `help`, `report`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindFilter {
    Exact(CaseKind),
    Family(&'static str),
}

/// A status filter: one status, or `open` (not resolved or closed) or `done`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    Exact(CaseStatus),
    Open,
    Done,
}

/// The list's filters, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaseFilter {
    pub kind: Option<KindFilter>,
    pub status: Option<StatusFilter>,
    /// Open with the completion deadline passed, now.
    pub overdue: bool,
    pub grid: Option<GridId>,
    /// The person responsible now (首问负责).
    pub worker: Option<UserId>,
    /// Reported on or after this Asia/Shanghai day.
    pub from: Option<NaiveDate>,
    /// Reported on or before this Asia/Shanghai day.
    pub to: Option<NaiveDate>,
    /// From 1.
    pub page: usize,
}

fn bad_filter(zh: &str, en: &str, got: &str) -> ConsoleError {
    let shown: String = got.chars().take(40).collect();
    ConsoleError::bad_request(format!("筛选条件有误：{zh}（“{shown}”）"), format!("Bad filter: {en} ('{shown}')"))
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl CaseFilter {
    /// Parses `?kind=&status=&overdue=1&grid=&worker=&from=&to=&page=`; a value that does not
    /// parse is a 400 page naming it.
    pub fn parse(query: &str) -> Result<CaseFilter, ConsoleError> {
        let q: ListQuery = serde_urlencoded::from_str(query)
            .map_err(|_| ConsoleError::bad_request("筛选条件有误。", "The filters are malformed."))?;
        let kind = match given(&q.kind) {
            None => None,
            Some(family @ ("must-arrive" | "help" | "report")) => Some(KindFilter::Family(match family {
                "must-arrive" => "must-arrive:",
                "help" => "help:",
                _ => "report:",
            })),
            Some(raw) => Some(KindFilter::Exact(raw.parse().map_err(|_| bad_filter("类别", "kind", raw))?)),
        };
        let status = match given(&q.status) {
            None => None,
            Some("open") => Some(StatusFilter::Open),
            Some("done") => Some(StatusFilter::Done),
            Some(raw) => Some(StatusFilter::Exact(raw.parse().map_err(|_| bad_filter("状态", "status", raw))?)),
        };
        let overdue = match given(&q.overdue) {
            None | Some("0") => false,
            Some("1" | "on" | "true") => true,
            Some(raw) => return Err(bad_filter("逾期", "overdue", raw)),
        };
        let date = |value: &Option<String>, zh, en| -> Result<Option<NaiveDate>, ConsoleError> {
            given(value)
                .map(|raw| NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| bad_filter(zh, en, raw)))
                .transpose()
        };
        let page = match given(&q.page) {
            None => 1,
            Some(raw) => {
                raw.parse::<usize>().ok().filter(|p| *p >= 1).ok_or_else(|| bad_filter("页码", "page", raw))?
            }
        };
        Ok(CaseFilter {
            kind,
            status,
            overdue,
            grid: given(&q.grid).map(|raw| raw.parse().map_err(|_| bad_filter("网格", "grid", raw))).transpose()?,
            worker: given(&q.worker)
                .map(|raw| raw.parse().map_err(|_| bad_filter("负责人", "worker", raw)))
                .transpose()?,
            from: date(&q.from, "起始日期", "from date")?,
            to: date(&q.to, "截止日期", "to date")?,
            page,
        })
    }

    /// Whether a case row passes every filter at `now`.
    pub fn matches(&self, case: &CaseFacts, now: Millis) -> bool {
        let kind = match self.kind {
            None => true,
            Some(KindFilter::Exact(kind)) => case.kind == kind,
            Some(KindFilter::Family(prefix)) => case.kind.to_string().starts_with(prefix),
        };
        let done = matches!(case.status, CaseStatus::Resolved | CaseStatus::Closed);
        let status = match self.status {
            None => true,
            Some(StatusFilter::Exact(status)) => case.status == status,
            Some(StatusFilter::Open) => !done,
            Some(StatusFilter::Done) => done,
        };
        let overdue =
            !self.overdue || matches!(case.completion_state(now), CompletionState::Open { overdue: true, .. });
        let from = self.from.is_none_or(|d| case.reported_at >= gridlink_shared::time::start_of_local_day(d));
        let to = self.to.is_none_or(|d| {
            case.reported_at < gridlink_shared::time::start_of_local_day(d + chrono::Duration::days(1))
        });
        kind && status
            && overdue
            && self.grid.is_none_or(|g| case.placement.grid == g)
            && self.worker.is_none_or(|w| case.responsible == w)
            && from
            && to
    }

    /// The filters as a query string (without the page), for the pager's links.
    fn query_without_page(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match self.kind {
            Some(KindFilter::Exact(kind)) => out.push(("kind", kind.to_string())),
            Some(KindFilter::Family(prefix)) => out.push(("kind", prefix.trim_end_matches(':').to_string())),
            None => {}
        }
        match self.status {
            Some(StatusFilter::Exact(status)) => out.push(("status", status.code().to_string())),
            Some(StatusFilter::Open) => out.push(("status", "open".into())),
            Some(StatusFilter::Done) => out.push(("status", "done".into())),
            None => {}
        }
        if self.overdue {
            out.push(("overdue", "1".into()));
        }
        if let Some(grid) = self.grid {
            out.push(("grid", grid.to_string()));
        }
        if let Some(worker) = self.worker {
            out.push(("worker", worker.to_string()));
        }
        if let Some(from) = self.from {
            out.push(("from", from.to_string()));
        }
        if let Some(to) = self.to {
            out.push(("to", to.to_string()));
        }
        out
    }
}

/// `GET /console/cases`.
pub(super) async fn list(user: ConsoleUser, RawQuery(query): RawQuery) -> Result<Markup, ConsoleError> {
    let filter = CaseFilter::parse(query.as_deref().unwrap_or(""))?;
    let (facts, roster) = facts_for(&user).await?;
    let now = now_millis();
    let principal = user.principal();
    let mut rows: Vec<&CaseFacts> =
        facts.cases.iter().filter(|c| principal.covers(&c.placement) && filter.matches(c, now)).collect();
    rows.sort_by(|a, b| b.reported_at.cmp(&a.reported_at).then(b.id.cmp(&a.id)));
    let total = rows.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = filter.page.min(pages);
    let shown = &rows[((page - 1) * PAGE_SIZE).min(total)..(page * PAGE_SIZE).min(total)];

    let grids: BTreeMap<GridId, String> = roster
        .grids
        .iter()
        .filter(|g| roster.placement_of_grid(g.id).is_some_and(|p| principal.covers(&p)))
        .map(|g| (g.id, g.name.clone()))
        .collect();
    let workers: Vec<(UserId, String)> = roster
        .staff
        .iter()
        .filter(|s| s.role == Role::GridWorker)
        .filter(|s| s.scopes.iter().any(|scope| matches!(scope, Scope::Grid(g) if grids.contains_key(g))))
        .map(|s| (s.id, s.name.clone()))
        .collect();
    let lang = user.lang;
    let base = filter.query_without_page();
    let content = html! {
        section.card.filters {
            form.filter-form method="get" action="/console/cases" {
                div.field {
                    label for="kind" { (t(lang, "类别", "Kind")) }
                    select #kind name="kind" {
                        option value="" { (t(lang, "全部", "All")) }
                        @for (value, label) in kind_options(lang) {
                            option value=(value) selected[base.iter().any(|(k, v)| *k == "kind" && *v == value)] { (label) }
                        }
                    }
                }
                div.field {
                    label for="status" { (t(lang, "状态", "Status")) }
                    select #status name="status" {
                        option value="" { (t(lang, "全部", "All")) }
                        @for (value, label) in status_options(lang) {
                            option value=(value) selected[base.iter().any(|(k, v)| *k == "status" && *v == value)] { (label) }
                        }
                    }
                }
                div.field {
                    label for="grid" { (t(lang, "网格", "Grid")) }
                    select #grid name="grid" {
                        option value="" { (t(lang, "全部", "All")) }
                        @for (id, name) in &grids {
                            option value=(id) selected[filter.grid == Some(*id)] { (name) }
                        }
                    }
                }
                div.field {
                    label for="worker" { (t(lang, "负责人", "Responsible")) }
                    select #worker name="worker" {
                        option value="" { (t(lang, "全部", "All")) }
                        @for (id, name) in &workers {
                            option value=(id) selected[filter.worker == Some(*id)] { (name) }
                        }
                    }
                }
                div.field {
                    label for="from" { (t(lang, "上报自", "Reported from")) }
                    input #from type="date" name="from" value=[filter.from.map(|d| d.to_string())];
                }
                div.field {
                    label for="to" { (t(lang, "上报至", "Reported to")) }
                    input #to type="date" name="to" value=[filter.to.map(|d| d.to_string())];
                }
                div.field.check {
                    label {
                        input type="checkbox" name="overdue" value="1" checked[filter.overdue];
                        " " (t(lang, "只看逾期未办结", "Overdue only"))
                    }
                }
                div.actions {
                    button.btn.primary type="submit" { (t(lang, "筛选", "Filter")) }
                    a.btn href="/console/cases" { (t(lang, "清除", "Clear")) }
                }
            }
        }
        p.list-count {
            (t(lang, "共 ", "")) span.total { (total) } (t(lang, " 件事件", " cases"))
            @if pages > 1 { " · " (t(lang, "第", "page ")) (page) "/" (pages) (t(lang, "页", "")) }
        }
        @if shown.is_empty() {
            section.card { p.muted { (t(lang, "没有符合条件的事件。", "No cases match.")) } }
        } @else {
            table.data.case-list {
                thead { tr {
                    th { (t(lang, "上报时间", "Reported")) }
                    th { (t(lang, "类别", "Kind")) }
                    th { (t(lang, "标题", "Title")) }
                    th { (t(lang, "网格", "Grid")) }
                    th { (t(lang, "首问负责", "Responsible")) }
                    th { (t(lang, "状态", "Status")) }
                    th { (t(lang, "办结时限", "Complete by")) }
                    th { (t(lang, "到场", "Arrival")) }
                } }
                tbody {
                    @for case in shown {
                        tr.case-row {
                            td.nowrap { (format_local(case.reported_at)) }
                            td { (case.kind.label(lang)) }
                            td { a href={ "/console/cases/" (case.id) } { (case.title) } }
                            td { (grids.get(&case.placement.grid).map(String::as_str).unwrap_or("—")) }
                            td { (case.responsible_name) }
                            td { (status_badge(case.kind, case.status, lang)) }
                            td.nowrap { (completion_cell(case, now, lang)) }
                            td.nowrap { (arrival_cell(case, now, lang)) }
                        }
                    }
                }
            }
        }
        (layout::pager(lang, "/console/cases", &base, page, pages))
    };
    Ok(layout::page(&user, Section::Cases, user.t("事件", "Cases"), content))
}

fn kind_options(lang: Lang) -> Vec<(String, String)> {
    let mut out = vec![
        ("must-arrive".to_string(), t(lang, "四必到（全部）", "Must-arrive (all)").to_string()),
        ("help".to_string(), t(lang, "求助（全部）", "Help (all)").to_string()),
        ("report".to_string(), t(lang, "楼栋长上报（全部）", "Reports (all)").to_string()),
    ];
    out.extend(CaseKind::all().into_iter().map(|k| (k.to_string(), k.label(lang))));
    out
}

fn status_options(lang: Lang) -> Vec<(String, String)> {
    let mut out = vec![
        ("open".to_string(), t(lang, "未办结", "Open").to_string()),
        ("done".to_string(), t(lang, "已办结或关闭", "Done").to_string()),
    ];
    out.extend(CaseStatus::ALL.iter().map(|s| (s.code().to_string(), s.label(lang).to_string())));
    out
}

/// A status as people say it for the kind (a micro-wish is 待认领 … 已致谢, see
/// [`CaseKind::status_label`]); `data-status` keeps the one code for every kind.
fn status_badge(kind: CaseKind, status: CaseStatus, lang: Lang) -> Markup {
    let class = match status {
        CaseStatus::Reported => "badge warn",
        CaseStatus::Accepted | CaseStatus::OnSite | CaseStatus::InProgress => "badge info",
        CaseStatus::Resolved | CaseStatus::Closed => "badge ok",
    };
    html! { span class=(class) data-status=(status.code()) { (kind.status_label(status, lang)) } }
}

fn completion_cell(case: &CaseFacts, now: Millis, lang: Lang) -> Markup {
    match case.completion_state(now) {
        CompletionState::Open { deadline, overdue: true } => html! {
            span.overdue title=(t(lang, "逾期未办结", "Overdue")) { (format_local(deadline)) " " (t(lang, "已逾期", "overdue")) }
        },
        CompletionState::Open { deadline, overdue: false } => html! { (format_local(deadline)) },
        CompletionState::Done { on_time } => html! {
            (format_local(case.completion_deadline))
            " "
            @if on_time { span.badge.ok { (t(lang, "按时办结", "on time")) } }
            @else { span.badge.bad { (t(lang, "超时办结", "late")) } }
        },
    }
}

fn arrival_cell(case: &CaseFacts, now: Millis, lang: Lang) -> Markup {
    match (case.arrival_state(now), case.first_arrival) {
        (None, _) => html! { span.muted { "—" } },
        (Some(ArrivalState::Arrived { on_time }), Some(at)) => html! {
            (format_local(at)) " "
            @if on_time { span.badge.ok { (t(lang, "按时", "on time")) } }
            @else { span.badge.bad { (t(lang, "迟到", "late")) } }
        },
        (Some(ArrivalState::Waiting { deadline, remaining_ms }), _) if remaining_ms < 0 => html! {
            span.overdue { (t(lang, "超时未到", "Not arrived, late")) " · " (format_local(deadline)) }
        },
        (Some(ArrivalState::Waiting { deadline, .. }), _) => html! {
            span.badge.warn { (t(lang, "未到场", "Not yet")) } " " (t(lang, "时限 ", "by ")) (format_local(deadline))
        },
        (Some(ArrivalState::Arrived { .. }), None) => html! { "—" },
    }
}

// ---------------------------------------------------------------------------------------------
// One case.

/// What the case page shows besides the case.
struct CaseView {
    case: CaseFile,
    household_address: Option<String>,
    workers: Vec<(UserId, String)>,
}

/// The case if it exists and the user's scopes cover it; otherwise a 404 page (the same for a
/// malformed id, a missing case and one outside the area).
async fn load(user: &ConsoleUser, raw_id: &str) -> Result<CaseView, ConsoleError> {
    let id: CaseId = raw_id.parse().map_err(|_| ConsoleError::not_found())?;
    let principal = user.principal();
    user.console()
        .blocking(move |store| {
            let store = store.any();
            let Some(case) = store.case_file(id)? else {
                return Ok(None);
            };
            // Scope first: nothing else of a case outside the area is read.
            if !principal.covers(&case.placement) {
                return Ok(None);
            }
            let household_address = match case.household {
                Some(h) => store.household_file(h)?.map(|f| f.address()),
                None => None,
            };
            let workers = store.grid_workers(case.placement.grid)?;
            Ok(Some(CaseView { case, household_address, workers }))
        })
        .await?
        .ok_or_else(ConsoleError::not_found)
}

/// `GET /console/cases/{id}`.
pub(super) async fn page(
    user: ConsoleUser,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ConsoleError> {
    let view = load(&user, &id).await?;
    let done = query.as_deref().unwrap_or("").split('&').find_map(|pair| pair.strip_prefix("done="));
    let notice = done.and_then(|code| code.parse::<ActionKind>().ok()).map(|kind| done_notice(kind, user.lang));
    Ok(render(&user, &view, notice, None, StatusCode::OK))
}

fn done_notice(kind: ActionKind, lang: Lang) -> String {
    match kind {
        ActionKind::Close => t(
            lang,
            "已结案，满意度已记录。网格员的手机下次同步时会收到。",
            "Closed with the satisfaction score. Grid workers' phones get it at their next sync.",
        ),
        ActionKind::Reopen => t(lang, "事件已重新打开。", "The case was reopened."),
        ActionKind::Reassign => t(lang, "已转派。", "The case was handed on."),
        _ => t(lang, "备注已添加。", "The comment was added."),
    }
    .to_string()
}

fn render(
    user: &ConsoleUser,
    view: &CaseView,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let lang = user.lang;
    let case = &view.case;
    let facts = CaseFacts::from_case(case, &PolicyConfig::default());
    let now = now_millis();
    let (_, responsible_name) = case.responsible();
    let current = case.status();
    let base = format!("/console/cases/{}", case.id);
    let timeline = timeline_rows(case);
    let content = html! {
        p.back { a href="/console/cases" { "← " (t(lang, "返回事件列表", "Back to the cases")) } }
        @if let Some(notice) = &notice { p.notice { (notice) } }
        @if let Some(error) = &error { p.form-error role="alert" { (error) } }
        section.card.case-file {
            h2 { (case.title) " " (status_badge(case.kind, current, lang)) }
            dl.facts {
                dt { (t(lang, "类别", "Kind")) } dd { (case.kind.label(lang)) }
                dt { (t(lang, "描述", "Description")) } dd.pre { (case.description) }
                dt { (t(lang, "地点", "Place")) } dd {
                    @if let Some(address) = &view.household_address { (address) } @else { span.muted { "—" } }
                }
                @if let Some(household) = case.household {
                    dt { (t(lang, "住户档案", "Household")) } dd { a href={ "/console/households/" (household) } { (t(lang, "查看住户档案", "Open the household file")) } }
                }
                dt { (t(lang, "上报人", "Reported by")) } dd { (case.reporter_name) " · " (format_local(case.reported_at)) }
                dt { (t(lang, "首问负责", "Responsible")) } dd { (responsible_name) }
                @if let Some(claimant) = case.claimant() {
                    dt { (t(lang, "认领人", "Claimed by")) } dd { (claimant.name) }
                }
                dt { (t(lang, "办结时限", "Complete by")) } dd { (completion_cell(&facts, now, lang)) }
                @if facts.arrival_deadline.is_some() {
                    dt { (t(lang, "到场", "Arrival")) } dd { (arrival_cell(&facts, now, lang)) }
                }
                dt { (t(lang, "办结", "Completed")) } dd {
                    @match facts.completed_at { Some(at) => (format_local(at)), None => span.muted { (t(lang, "未办结", "Not yet")) } }
                }
                dt { (t(lang, "满意度", "Satisfaction")) } dd {
                    @match case.satisfaction() { Some(score) => span.score { (score) " / 5" }, None => span.muted { "—" } }
                }
                @if facts.reopened > 0 {
                    dt { (t(lang, "重新打开", "Reopened")) } dd { (facts.reopened) (t(lang, " 次", " times")) }
                }
            }
        }
        section.card {
            h2 { (t(lang, "处理经过", "Timeline")) }
            @if timeline.is_empty() {
                p.muted { (t(lang, "还没有处理记录。", "Nothing done yet.")) }
            } @else {
                table.data.timeline {
                    thead { tr {
                        th { (t(lang, "时间", "Time")) } th { (t(lang, "操作", "Action")) } th { (t(lang, "操作人", "By")) }
                        th { (t(lang, "说明", "Note")) } th { (t(lang, "之后状态", "Status after")) }
                    } }
                    tbody {
                        @for (action, after) in &timeline {
                            tr.timeline-row data-kind=(action.kind.code()) {
                                td.nowrap { (format_local(action.at)) }
                                td { (action.kind.label(lang)) }
                                td { (action.by_name) }
                                td.pre {
                                    @if let Some(score) = action.satisfaction { span.score { (t(lang, "满意度 ", "Satisfaction ")) (score) "/5" } " " }
                                    @if let Some(to) = &action.to_name { (t(lang, "转派给 ", "To ")) (to) " " }
                                    @if let Some(claimant) = &action.claimant { span.claimant { (t(lang, "认领人 ", "Claimed by ")) (claimant.name) } " " }
                                    @if let Some(outlet) = &action.outlet { span.outlet { (t(lang, "转介至 ", "Referred to ")) (outlet.name) } " " }
                                    (action.note)
                                }
                                td { (status_badge(case.kind, *after, lang)) }
                            }
                        }
                    }
                }
            }
        }
        section.card.case-actions {
            h2 { (t(lang, "督办", "Supervise")) }
            div.action-grid {
                @if current != CaseStatus::Closed {
                    (post_form(user, &format!("{base}/close"), html! {
                        h3 { (t(lang, "结案回访", "Verify and close")) }
                        div.field {
                            label for="satisfaction" { (t(lang, "群众满意度", "Resident satisfaction")) }
                            select #satisfaction name="satisfaction" required {
                                option value="" { (t(lang, "请选择", "Choose")) }
                                @for (score, zh, en) in SCORES { option value=(score) { (score) " · " (t(lang, zh, en)) } }
                            }
                        }
                        div.field {
                            label for="close-note" { (t(lang, "回访情况", "Follow-up note")) }
                            textarea #close-note name="note" maxlength=(MAX_NOTE_CHARS) rows="3" {}
                        }
                        button.btn.primary type="submit" { (t(lang, "结案", "Close the case")) }
                    }))
                }
                @if !case.is_open() {
                    (post_form(user, &format!("{base}/reopen"), html! {
                        h3 { (t(lang, "重新打开", "Reopen")) }
                        div.field {
                            label for="reason" { (t(lang, "原因（必填）", "Reason (required)")) }
                            textarea #reason name="reason" maxlength=(MAX_NOTE_CHARS) rows="3" required {}
                        }
                        button.btn.danger type="submit" { (t(lang, "重新打开", "Reopen")) }
                    }))
                }
                @if case.is_open() {
                    (post_form(user, &format!("{base}/reassign"), html! {
                        h3 { (t(lang, "转派", "Hand on")) }
                        div.field {
                            label for="to" { (t(lang, "本网格网格员", "Grid worker of this grid")) }
                            select #to name="to" required {
                                option value="" { (t(lang, "请选择", "Choose")) }
                                @for (id, name) in &view.workers {
                                    option value=(id) disabled[*id == case.responsible().0] { (name) }
                                }
                            }
                        }
                        div.field {
                            label for="reassign-note" { (t(lang, "说明", "Note")) }
                            textarea #reassign-note name="note" maxlength=(MAX_NOTE_CHARS) rows="2" {}
                        }
                        button.btn type="submit" { (t(lang, "转派", "Hand on")) }
                    }))
                }
                (post_form(user, &format!("{base}/comment"), html! {
                    h3 { (t(lang, "备注", "Comment")) }
                    div.field {
                        label for="comment" { (t(lang, "内容", "Text")) }
                        textarea #comment name="note" maxlength=(MAX_NOTE_CHARS) rows="3" required {}
                    }
                    button.btn type="submit" { (t(lang, "添加备注", "Add the comment")) }
                }))
            }
        }
    };
    let title = format!("{} · {}", user.t("事件", "Case"), case.title);
    (status, layout::page(user, Section::Cases, &title, content)).into_response()
}

const SCORES: [(u8, &str, &str); 5] = [
    (5, "非常满意", "very satisfied"),
    (4, "满意", "satisfied"),
    (3, "基本满意", "fair"),
    (2, "不满意", "unhappy"),
    (1, "非常不满意", "very unhappy"),
];

/// The timeline in causal order, each action with the status after it (unchanged by an
/// action that does not apply, as the status machine says).
fn timeline_rows(case: &CaseFile) -> Vec<(&gridlink_shared::Action, CaseStatus)> {
    let mut status = CaseStatus::Reported;
    case.ordered_timeline()
        .into_iter()
        .map(|action| {
            if let Some(next) = gridlink_shared::case::transition(status, action.kind) {
                status = next;
            }
            (action, status)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Supervisor actions.

#[derive(Debug, Deserialize)]
pub(super) struct CloseForm {
    satisfaction: Option<String>,
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ReopenForm {
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ReassignForm {
    to: Option<String>,
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct CommentForm {
    note: Option<String>,
}

/// `POST /console/cases/{id}/close`.
pub(super) async fn close(
    Path(id): Path<String>,
    CsrfForm { user, form }: CsrfForm<CloseForm>,
) -> Result<Response, ConsoleError> {
    let act = match form.satisfaction.as_deref().map(str::trim).and_then(|s| s.parse::<u8>().ok()) {
        Some(score) if (1..=5).contains(&score) => {
            Ok(CaseAct::Close { satisfaction: score, note: form.note.unwrap_or_default() })
        }
        _ => Err(ActProblem::BadScore),
    };
    act_on(user, &id, act).await
}

/// `POST /console/cases/{id}/reopen`.
pub(super) async fn reopen(
    Path(id): Path<String>,
    CsrfForm { user, form }: CsrfForm<ReopenForm>,
) -> Result<Response, ConsoleError> {
    act_on(user, &id, Ok(CaseAct::Reopen { reason: form.reason.unwrap_or_default() })).await
}

/// `POST /console/cases/{id}/reassign`.
pub(super) async fn reassign(
    Path(id): Path<String>,
    CsrfForm { user, form }: CsrfForm<ReassignForm>,
) -> Result<Response, ConsoleError> {
    let act = match form.to.as_deref().map(str::trim).and_then(|s| s.parse::<UserId>().ok()) {
        Some(to) => Ok(CaseAct::Reassign { to, note: form.note.unwrap_or_default() }),
        None => Err(ActProblem::NotAGridWorker),
    };
    act_on(user, &id, act).await
}

/// `POST /console/cases/{id}/comment`.
pub(super) async fn comment(
    Path(id): Path<String>,
    CsrfForm { user, form }: CsrfForm<CommentForm>,
) -> Result<Response, ConsoleError> {
    act_on(user, &id, Ok(CaseAct::Comment { note: form.note.unwrap_or_default() })).await
}

/// Runs an action: the case must exist within the user's area (404 otherwise, before the input
/// is looked at); a problem with the input or the case's state, or a refusal by the validator,
/// is shown on the case page in plain words; success goes back to the case page (303).
async fn act_on(user: ConsoleUser, raw_id: &str, act: Result<CaseAct, ActProblem>) -> Result<Response, ConsoleError> {
    let view = load(&user, raw_id).await?;
    let act = match act {
        Ok(act) => act,
        Err(problem) => return Ok(refused(&user, &view, problem_words(&problem, user.lang), StatusCode::BAD_REQUEST)),
    };
    let (user_id, case_id, kind) = (user.id, view.case.id, act_kind(&act));
    let outcome = user
        .console()
        .blocking(move |store| store.any().console_case_action(user_id, case_id, &act, now_millis()))
        .await?;
    match outcome {
        ActOutcome::Accepted { .. } => {
            Ok(Redirect::to(&format!("/console/cases/{case_id}?done={}", kind.code())).into_response())
        }
        ActOutcome::Problem(problem) => {
            let status = match problem {
                ActProblem::NoteTooLong { .. }
                | ActProblem::NoteRequired
                | ActProblem::BadScore
                | ActProblem::NotAGridWorker => StatusCode::BAD_REQUEST,
                _ => StatusCode::CONFLICT,
            };
            // Re-read: the case may have moved on since the page was loaded.
            let view = load(&user, raw_id).await?;
            Ok(refused(&user, &view, problem_words(&problem, user.lang), status))
        }
        ActOutcome::Rejected { code, message } => {
            let words = match user.lang {
                Lang::Zh => format!("系统拒绝了这项操作：{}（{}）。", code.zh(), message),
                Lang::En => format!("The server refused this action: {} ({}).", code.en(), message),
            };
            Ok(refused(&user, &view, words, StatusCode::FORBIDDEN))
        }
    }
}

fn act_kind(act: &CaseAct) -> ActionKind {
    match act {
        CaseAct::Close { .. } => ActionKind::Close,
        CaseAct::Reopen { .. } => ActionKind::Reopen,
        CaseAct::Reassign { .. } => ActionKind::Reassign,
        CaseAct::Comment { .. } => ActionKind::Comment,
    }
}

fn refused(user: &ConsoleUser, view: &CaseView, words: String, status: StatusCode) -> Response {
    render(user, view, None, Some(words), status)
}

fn problem_words(problem: &ActProblem, lang: Lang) -> String {
    match (problem, lang) {
        (ActProblem::NoteTooLong { chars }, Lang::Zh) => {
            format!("说明有 {chars} 个字，最多 {MAX_NOTE_CHARS} 个字。请删减后再提交。")
        }
        (ActProblem::NoteTooLong { chars }, Lang::En) => {
            format!("The note has {chars} characters; at most {MAX_NOTE_CHARS} are allowed.")
        }
        (ActProblem::NoteRequired, _) => t(lang, "请填写原因或内容。", "Please write the reason or text.").into(),
        (ActProblem::BadScore, _) => {
            t(lang, "请选择 1 到 5 分的满意度。", "Choose a satisfaction score from 1 to 5.").into()
        }
        (ActProblem::AlreadyClosed, _) => t(lang, "这件事件已经关闭了。", "This case is closed already.").into(),
        (ActProblem::NotDone, _) => {
            t(lang, "只有已办结或已关闭的事件才能重新打开。", "Only a resolved or closed case can be reopened.").into()
        }
        (ActProblem::NotOpen, _) => {
            t(lang, "已办结或关闭的事件不能转派。", "A resolved or closed case cannot be handed on.").into()
        }
        (ActProblem::NotAGridWorker, _) => {
            t(lang, "只能转派给本网格的网格员。", "A case can only be handed to a grid worker of its grid.").into()
        }
        (ActProblem::AlreadyResponsible, _) => {
            t(lang, "这位网格员已经是负责人了。", "This grid worker is responsible already.").into()
        }
    }
}
