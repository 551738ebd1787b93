//! Household files (住户), read-only: `GET /console/households`, the households of the user's
//! area from the supervisors' rows, searched by address, head's name, phone or the name's
//! pinyin (initials "zgl" or whole "zhangguilan", as the phone's search does) and filtered by
//! grid, must-visit tag and overdue visits, in pages; `GET /console/households/{id}`, one file
//! with ID numbers masked and its visits newest first.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::extract::{Path, RawQuery};
use gridlink_shared::codes::{MustVisitTag, VisitOutcome};
use gridlink_shared::figures::{GroupBy, Grouping, HouseholdFacts, HouseholdFigure, coverage_rows};
use gridlink_shared::search::pinyin_forms;
use gridlink_shared::time::{format_local, now_millis};
use gridlink_shared::{GridId, HouseholdFile, HouseholdId, Lang, PolicyConfig, mask_id_number};
use maud::{Markup, html};
use serde::Deserialize;

use super::errors::ConsoleError;
use super::facts_cache::facts_for;
use super::layout::{self, Section, t};
use super::session::ConsoleUser;

/// Rows per page of the list.
pub const PAGE_SIZE: usize = 100;

/// The longest search text taken; longer is cut (nothing useful is that long).
const MAX_QUERY_CHARS: usize = 50;

#[derive(Clone, Debug, Default, Deserialize)]
struct ListQuery {
    q: Option<String>,
    grid: Option<String>,
    tag: Option<String>,
    overdue: Option<String>,
    page: Option<String>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn bad_filter(zh: &str, en: &str, got: &str) -> ConsoleError {
    let shown: String = got.chars().take(40).collect();
    ConsoleError::bad_request(format!("筛选条件有误：{zh}（“{shown}”）"), format!("Bad filter: {en} ('{shown}')"))
}

/// A query as the search compares it: lower-case, without spaces and dashes.
fn normalize(text: &str) -> String {
    text.to_lowercase().chars().filter(|c| !c.is_whitespace() && *c != '-').collect()
}

/// Whether a household matches a normalized query by address, head, phone or the head's pinyin.
pub fn matches_search(household: &HouseholdFacts, phone: &str, query: &str) -> bool {
    if query.is_empty() {
        return true;
    }
    if normalize(&household.address).contains(query) || normalize(&household.head).contains(query) {
        return true;
    }
    if query.chars().all(|c| c.is_ascii_digit() || c == '+') && normalize(phone).contains(query) {
        return true;
    }
    if query.chars().all(|c| c.is_ascii_alphanumeric()) {
        let (full, initials) = pinyin_forms(&household.head);
        return initials.starts_with(query) || full.starts_with(query);
    }
    false
}

/// `GET /console/households`.
pub(super) async fn list(user: ConsoleUser, RawQuery(query): RawQuery) -> Result<Markup, ConsoleError> {
    let q: ListQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|_| ConsoleError::bad_request("筛选条件有误。", "The filters are malformed."))?;
    let search: String = normalize(given(&q.q).unwrap_or("")).chars().take(MAX_QUERY_CHARS).collect();
    let grid: Option<GridId> =
        given(&q.grid).map(|raw| raw.parse().map_err(|_| bad_filter("网格", "grid", raw))).transpose()?;
    let tag: Option<MustVisitTag> =
        given(&q.tag).map(|raw| raw.parse().map_err(|_| bad_filter("四必访类别", "tag", raw))).transpose()?;
    let overdue = match given(&q.overdue) {
        None | Some("0") => false,
        Some("1" | "on" | "true") => true,
        Some(raw) => return Err(bad_filter("逾期", "overdue", raw)),
    };
    let page = match given(&q.page) {
        None => 1,
        Some(raw) => raw.parse::<usize>().ok().filter(|p| *p >= 1).ok_or_else(|| bad_filter("页码", "page", raw))?,
    };

    let (facts, roster) = facts_for(&user).await?;
    let principal = user.principal();
    let grids: BTreeMap<GridId, String> = roster
        .grids
        .iter()
        .filter(|g| roster.placement_of_grid(g.id).is_some_and(|p| principal.covers(&p)))
        .map(|g| (g.id, g.name.clone()))
        .collect();
    let grid_ids: Vec<GridId> = grids.keys().copied().collect();
    let phones: HashMap<HouseholdId, String> =
        user.console().blocking(move |store| store.any().household_phones(&grid_ids)).await?;
    let now = now_millis();
    // Overdue as the dashboard counts it: an active household with a must-visit tag past due.
    let overdue_ids: HashSet<HouseholdId> = coverage_rows(
        &facts.households,
        &facts.visits,
        HouseholdFigure::HouseholdsOverdue,
        None,
        now,
        &PolicyConfig::default(),
        &Grouping::new(&roster, GroupBy::Grid),
    )
    .into_iter()
    .map(|row| row.household.id)
    .collect();

    let empty = String::new();
    let mut rows: Vec<&HouseholdFacts> = facts
        .households
        .iter()
        .filter(|h| principal.covers(&h.placement))
        .filter(|h| grid.is_none_or(|g| h.placement.grid == g))
        .filter(|h| tag.is_none_or(|t| h.tags.contains_key(&t)))
        .filter(|h| !overdue || overdue_ids.contains(&h.id))
        .filter(|h| matches_search(h, phones.get(&h.id).unwrap_or(&empty), &search))
        .collect();
    rows.sort_by(|a, b| a.address.cmp(&b.address).then(a.id.cmp(&b.id)));
    let total = rows.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = page.min(pages);
    let shown = &rows[((page - 1) * PAGE_SIZE).min(total)..(page * PAGE_SIZE).min(total)];

    let lang = user.lang;
    let mut base: Vec<(&str, String)> = Vec::new();
    if !search.is_empty() {
        base.push(("q", given(&q.q).unwrap_or("").to_string()));
    }
    if let Some(g) = grid {
        base.push(("grid", g.to_string()));
    }
    if let Some(tag) = tag {
        base.push(("tag", tag.code().to_string()));
    }
    if overdue {
        base.push(("overdue", "1".into()));
    }
    let content = html! {
        section.card.filters {
            form.filter-form method="get" action="/console/households" {
                div.field.wide {
                    label for="q" { (t(lang, "搜索", "Search")) }
                    input #q type="search" name="q" maxlength=(MAX_QUERY_CHARS) value=[given(&q.q)]
                        placeholder=(t(lang, "地址、户主、电话或拼音首字母（如 zgl）", "Address, head, phone or pinyin initials (e.g. zgl)"));
                }
                div.field {
                    label for="grid" { (t(lang, "网格", "Grid")) }
                    select #grid name="grid" {
                        option value="" { (t(lang, "全部", "All")) }
                        @for (id, name) in &grids { option value=(id) selected[grid == Some(*id)] { (name) } }
                    }
                }
                div.field {
                    label for="tag" { (t(lang, "四必访", "Must-visit")) }
                    select #tag name="tag" {
                        option value="" { (t(lang, "全部", "All")) }
                        @for t in MustVisitTag::ALL { option value=(t.code()) selected[tag == Some(*t)] { (t.label(lang)) } }
                    }
                }
                div.field.check {
                    label {
                        input type="checkbox" name="overdue" value="1" checked[overdue];
                        " " (t(lang, "只看走访逾期", "Overdue visits only"))
                    }
                }
                div.actions {
                    button.btn.primary type="submit" { (t(lang, "查找", "Search")) }
                    a.btn href="/console/households" { (t(lang, "清除", "Clear")) }
                }
            }
        }
        p.list-count {
            (t(lang, "共 ", "")) span.total { (total) } (t(lang, " 户", " households"))
            @if pages > 1 { " · " (t(lang, "第", "page ")) (page) "/" (pages) (t(lang, "页", "")) }
        }
        @if shown.is_empty() {
            section.card { p.muted { (t(lang, "没有找到住户。", "No households found.")) } }
        } @else {
            table.data.household-list {
                thead { tr {
                    th { (t(lang, "地址", "Address")) }
                    th { (t(lang, "户主", "Head")) }
                    th { (t(lang, "电话", "Phone")) }
                    th { (t(lang, "网格", "Grid")) }
                    th { (t(lang, "四必访", "Must-visit")) }
                    th { (t(lang, "状态", "Status")) }
                } }
                tbody {
                    @for h in shown {
                        tr.household-row {
                            td { a href={ "/console/households/" (h.id) } { (h.address) } }
                            td { (h.head) }
                            td.nowrap { (phones.get(&h.id).map(String::as_str).unwrap_or("")) }
                            td { (grids.get(&h.placement.grid).map(String::as_str).unwrap_or("—")) }
                            td {
                                @for tag in h.tags.keys() { span.badge.info { (tag.label(lang)) } " " }
                                @if overdue_ids.contains(&h.id) { span.badge.bad { (t(lang, "走访逾期", "visit overdue")) } }
                            }
                            td { (h.status.label(lang)) }
                        }
                    }
                }
            }
        }
        (layout::pager(lang, "/console/households", &base, page, pages))
    };
    Ok(layout::page(&user, Section::Households, user.t("住户", "Households"), content))
}

/// `GET /console/households/{id}`: 404 for a malformed id, a missing household and one
/// outside the user's area alike.
pub(super) async fn page(user: ConsoleUser, Path(id): Path<String>) -> Result<Markup, ConsoleError> {
    let id: HouseholdId = id.parse().map_err(|_| ConsoleError::not_found())?;
    let principal = user.principal();
    let file: HouseholdFile = user
        .console()
        .blocking(move |store| {
            let file = store.any().household_file(id)?;
            // Scope first: nothing of a file outside the area leaves this closure.
            Ok(file.filter(|f| principal.covers(&f.placement)))
        })
        .await?
        .ok_or_else(ConsoleError::not_found)?;
    Ok(render(&user, &file))
}

fn render(user: &ConsoleUser, file: &HouseholdFile) -> Markup {
    let lang = user.lang;
    let resident_names: HashMap<_, _> = file.residents.values().map(|r| (r.id, r.name.as_str())).collect();
    let content = html! {
        p.back { a href="/console/households" { "← " (t(lang, "返回住户列表", "Back to the households")) } }
        section.card.household-file {
            h2 { (file.address()) " " span.badge { (file.status.label(lang)) } }
            dl.facts {
                dt { (t(lang, "户主", "Head")) } dd { (file.head) }
                dt { (t(lang, "电话", "Phone")) } dd { @if file.phone.is_empty() { span.muted { "—" } } @else { (file.phone) } }
                @if let Some(moved) = file.moved_out_on { dt { (t(lang, "迁出日期", "Moved out")) } dd { (moved) } }
                dt { (t(lang, "四必访", "Must-visit")) } dd {
                    @if file.tags.is_empty() { span.muted { "—" } }
                    @for (tag, entry) in &file.tags {
                        span.badge.info { (tag.label(lang)) } " " span.muted { (t(lang, "自 ", "since ")) (entry.since) }
                        @if !entry.note.is_empty() { " · " (entry.note) }
                        br;
                    }
                }
                dt { (t(lang, "五助需求", "Help needs")) } dd {
                    @if file.needs.is_empty() { span.muted { "—" } }
                    @for (need, entry) in &file.needs {
                        span.badge.warn { (need.label(lang)) } " " span.muted { (t(lang, "自 ", "since ")) (entry.since) }
                        @if !entry.note.is_empty() { " · " (entry.note) }
                        br;
                    }
                }
                @if !file.notes.is_empty() { dt { (t(lang, "备注", "Notes")) } dd.pre { (file.notes) } }
            }
        }
        section.card {
            h2 { (t(lang, "家庭成员", "Residents")) }
            @if file.residents.is_empty() {
                p.muted { (t(lang, "没有登记家庭成员。", "No residents recorded.")) }
            } @else {
                table.data.residents {
                    thead { tr {
                        th { (t(lang, "姓名", "Name")) } th { (t(lang, "关系", "Relation")) } th { (t(lang, "性别", "Sex")) }
                        th { (t(lang, "出生年份", "Born")) } th { (t(lang, "身份证号", "ID number")) } th { (t(lang, "电话", "Phone")) }
                        th { (t(lang, "情况", "Notes")) }
                    } }
                    tbody {
                        @for r in file.residents.values() {
                            tr {
                                td { (r.name) } td { (r.relation) } td { (r.sex.label(lang)) } td { (r.birth_year) }
                                td.nowrap.id-number { (mask_id_number(&r.id_number)) }
                                td.nowrap { (r.phone) }
                                td { @for (flag, on) in &r.flags { @if *on { span.badge { (flag.label(lang)) } " " } } }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { (t(lang, "走访记录", "Visits")) }
            @let visits = file.visits_newest_first();
            @if visits.is_empty() {
                p.muted { (t(lang, "还没有走访记录。", "No visits yet.")) }
            } @else {
                table.data.visits {
                    thead { tr {
                        th { (t(lang, "时间", "Time")) } th { (t(lang, "走访人", "Visitor")) } th { (t(lang, "结果", "Outcome")) }
                        th { (t(lang, "情况记录", "Notes")) } th { (t(lang, "发现需求", "Needs found")) } th { (t(lang, "见到", "Met")) }
                    } }
                    tbody {
                        @for v in visits {
                            tr.visit-row {
                                td.nowrap { (format_local(v.at)) }
                                td { (v.visitor_name) }
                                td { (outcome_badge(v.outcome, lang)) }
                                td.pre { (v.notes) }
                                td { @for need in &v.needs_found { span.badge.warn { (need.label(lang)) } " " } }
                                td {
                                    @for (i, id) in v.residents_present.iter().enumerate() {
                                        @if i > 0 { "、" }
                                        (resident_names.get(id).copied().unwrap_or("?"))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let title = format!("{} · {}", user.t("住户档案", "Household file"), file.address());
    layout::page(user, Section::Households, &title, content)
}

fn outcome_badge(outcome: VisitOutcome, lang: Lang) -> Markup {
    let class = match outcome {
        VisitOutcome::Met => "badge ok",
        VisitOutcome::NotHome => "badge warn",
        VisitOutcome::Refused => "badge bad",
    };
    html! { span class=(class) { (outcome.label(lang)) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinyin_initials_and_whole_pinyin_of_a_name() {
        assert_eq!(pinyin_forms("张桂兰"), ("zhangguilan".to_string(), "zgl".to_string()));
        assert_eq!(normalize(" 139-0714 9999 "), "13907149999");
    }
}
