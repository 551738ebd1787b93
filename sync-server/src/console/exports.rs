//! Ledger downloads (台账下载), `/console/exports`: the four ledgers of [`crate::ledgers`] as
//! XLSX or CSV, for a period, over the signed-in user's scopes or any street, community or
//! grid inside them. A scope outside them is refused. Each file is written by
//! [`ledgers::export`] to a temp file on a blocking thread, then streamed and unlinked.
//!
//! Downloads are plain GETs: they change nothing, so they need no CSRF token, and the
//! session cookie (`SameSite=Strict`) is never sent with a request started elsewhere.

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::RawQuery;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use gridlink_shared::figures::Period;
use gridlink_shared::time::{local_date, now_millis};
use gridlink_shared::{Lang, Placement, Roster, Scope};
use maud::{Markup, html};
use tokio::sync::Semaphore;

use super::errors::ConsoleError;
use super::layout::{self, Section};
use super::session::ConsoleUser;
use crate::ledgers::{self, ExportRequest, Format, LedgerKind};

/// Where the page lives; the download is [`DOWNLOAD_PATH`].
pub const PATH: &str = "/console/exports";
/// `GET` with the choices as query parameters.
pub const DOWNLOAD_PATH: &str = "/console/exports/download";

/// Exports written at once, server-wide. A street's visit ledger takes seconds of CPU; more
/// requests wait here rather than crowding out the sync API.
const CONCURRENT_EXPORTS: usize = 2;

/// The longest date range a download may span (ten years); anything longer is a typo.
const MAX_RANGE_DAYS: i64 = 3660;

const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const CSV_TYPE: &str = "text/csv; charset=utf-8";

/// The ledgers, in the order the page lists them.
const KINDS: [LedgerKind; 4] = [LedgerKind::Households, LedgerKind::Visits, LedgerKind::Cases, LedgerKind::Summary];

fn kind_code(kind: LedgerKind) -> &'static str {
    match kind {
        LedgerKind::Households => "households",
        LedgerKind::Visits => "visits",
        LedgerKind::Cases => "cases",
        LedgerKind::Summary => "summary",
    }
}

fn kind_label(kind: LedgerKind, lang: Lang) -> &'static str {
    match kind {
        LedgerKind::Households => layout::t(lang, "住户台账", "Household roster"),
        LedgerKind::Visits => layout::t(lang, "走访台账", "Visit ledger"),
        LedgerKind::Cases => layout::t(lang, "事件台账", "Case ledger"),
        LedgerKind::Summary => layout::t(lang, "网格工作汇总表", "Summary per grid"),
    }
}

/// A scope a user may export, with its name and depth for the picker.
#[derive(Clone, Debug)]
struct Choice {
    scope: Scope,
    name: String,
    depth: usize,
}

/// The streets, communities and grids inside `user`'s scopes, each under its parent. Building
/// scopes have no ledger rows of their own (the ledgers are per grid) and are left out.
fn choices(user: &ConsoleUser, roster: &Roster) -> Vec<Choice> {
    let mut out: Vec<Choice> = Vec::new();
    let push = |out: &mut Vec<Choice>, scope: Scope, name: &str, depth: usize| {
        if !out.iter().any(|c| c.scope == scope) {
            out.push(Choice { scope, name: name.to_string(), depth });
        }
    };
    for street in &roster.streets {
        let street_covered = user.scopes.contains(&Scope::Street(street.id));
        if street_covered {
            push(&mut out, Scope::Street(street.id), &street.name, 0);
        }
        for community in roster.communities.iter().filter(|c| c.street == street.id) {
            let community_covered = street_covered || user.scopes.contains(&Scope::Community(community.id));
            if community_covered {
                push(&mut out, Scope::Community(community.id), &community.name, 1);
            }
            for grid in roster.grids.iter().filter(|g| g.community == community.id) {
                if community_covered || user.scopes.contains(&Scope::Grid(grid.id)) {
                    push(&mut out, Scope::Grid(grid.id), &grid.name, 2);
                }
            }
        }
    }
    out
}

/// Whether `user`'s scopes cover the whole of `scope` (the grid, community or street itself
/// or one that contains it). Unknown ids are covered by nothing.
fn covers_whole(user: &ConsoleUser, roster: &Roster, scope: Scope) -> bool {
    let placement = match scope {
        Scope::Street(id) => return user.scopes.contains(&Scope::Street(id)),
        Scope::Community(id) => {
            let Some(community) = roster.communities.iter().find(|c| c.id == id) else { return false };
            return user.scopes.contains(&Scope::Community(id))
                || user.scopes.contains(&Scope::Street(community.street));
        }
        Scope::Grid(id) => {
            let Some(grid) = roster.grids.iter().find(|g| g.id == id) else { return false };
            let Some(community) = roster.communities.iter().find(|c| c.id == grid.community) else { return false };
            Placement { street: community.street, community: community.id, grid: id, building: None }
        }
        Scope::Building(_) => return false,
    };
    // A grid: the shared rule, so the console and the phones agree.
    user.scopes.iter().any(|s| !matches!(s, Scope::Building(_)) && placement.is_within(s))
}

/// `GET /console/exports`.
pub(super) async fn page(user: ConsoleUser) -> Result<Markup, ConsoleError> {
    let roster = user.console().blocking(|store| store.any().roster()).await?;
    let choices = choices(&user, &roster);
    let lang = user.lang;
    let today = local_date(now_millis());
    let month = Period::this_month(now_millis());
    let (first, last) = (local_date(month.from), local_date(month.to - 1));
    Ok(layout::page(
        &user,
        Section::Dashboard,
        user.t("台账下载", "Ledger downloads"),
        html! {
            section.card.admin {
                @if choices.is_empty() {
                    p.muted { (user.t("你的管辖范围内没有可导出的街道、社区或网格。", "Your area has no street, community or grid to export.")) }
                } @else {
                    form.export-form method="get" action=(DOWNLOAD_PATH) {
                        fieldset {
                            legend { (user.t("台账", "Ledger")) }
                            @for (i, kind) in KINDS.iter().enumerate() {
                                label.choice {
                                    input type="radio" name="what" value=(kind_code(*kind)) checked[i == 1];
                                    " " (kind_label(*kind, lang))
                                }
                            }
                        }
                        label {
                            (user.t("范围", "Area"))
                            select name="scope" {
                                @for c in &choices {
                                    option value=(c.scope.to_string()) {
                                        @for _ in 0..c.depth { "　" }
                                        (c.name)
                                    }
                                }
                            }
                        }
                        fieldset {
                            legend { (user.t("时间", "Period")) }
                            label.choice {
                                input type="radio" name="period" value="month" checked;
                                " " (user.t("本月", "This month")) " (" (first) " – " (last) ")"
                            }
                            label.choice {
                                input type="radio" name="period" value="range";
                                " " (user.t("日期范围", "Date range"))
                            }
                            span.date-range {
                                input type="date" name="from" value=(first) aria-label=(user.t("开始日期", "First day"));
                                " – "
                                input type="date" name="to" value=(today) aria-label=(user.t("结束日期", "Last day"));
                            }
                        }
                        fieldset {
                            legend { (user.t("格式", "Format")) }
                            label.choice { input type="radio" name="format" value="xlsx" checked; " Excel (XLSX)" }
                            label.choice { input type="radio" name="format" value="csv"; " CSV" }
                        }
                        button.btn.primary type="submit" { (user.t("下载", "Download")) }
                    }
                    p.muted {
                        (user.t(
                            "住户台账列出范围内全部住户；走访、事件台账按时间筛选；汇总表统计所选时间内的工作。",
                            "The household roster lists every household in the area; visits and cases are those of the period; the summary counts the period's work.",
                        ))
                    }
                }
            }
        },
    ))
}

/// What the download form sends.
#[derive(Debug, Default)]
struct Choices {
    what: Option<String>,
    format: Option<String>,
    scope: Option<String>,
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn parse_query(query: Option<&str>) -> Result<Choices, ConsoleError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|_| ConsoleError::bad_request("下载参数有误。", "The download's parameters are malformed."))?;
    let mut choices = Choices::default();
    for (key, value) in pairs {
        let slot = match key.as_str() {
            "what" => &mut choices.what,
            "format" => &mut choices.format,
            "scope" => &mut choices.scope,
            "period" => &mut choices.period,
            "from" => &mut choices.from,
            "to" => &mut choices.to,
            _ => continue,
        };
        *slot = Some(value);
    }
    Ok(choices)
}

fn bad(zh: &'static str, en: &'static str) -> ConsoleError {
    ConsoleError::bad_request(zh, en)
}

/// The export a download asks for, checked: a known ledger and format, a period of at most
/// [`MAX_RANGE_DAYS`], and a scope the user's scopes cover (their own scopes if none is named).
fn request_of(user: &ConsoleUser, roster: &Roster, choices: &Choices) -> Result<ExportRequest, ConsoleError> {
    let what = match choices.what.as_deref().unwrap_or("visits") {
        "households" => LedgerKind::Households,
        "visits" => LedgerKind::Visits,
        "cases" => LedgerKind::Cases,
        "summary" => LedgerKind::Summary,
        _ => return Err(bad("没有这种台账。", "There is no such ledger.")),
    };
    let format = match choices.format.as_deref().unwrap_or("xlsx") {
        "xlsx" => Format::Xlsx,
        "csv" => Format::Csv,
        _ => return Err(bad("只能下载 XLSX 或 CSV。", "Only XLSX and CSV can be downloaded.")),
    };
    let now = now_millis();
    let period = match choices.period.as_deref().unwrap_or("month") {
        "month" => Period::this_month(now),
        "range" => {
            let date = |raw: &Option<String>| {
                raw.as_deref().and_then(|d| NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").ok()).ok_or_else(|| {
                    bad("请填写开始和结束日期（年-月-日）。", "Give the first and last day (YYYY-MM-DD).")
                })
            };
            let (from, to) = (date(&choices.from)?, date(&choices.to)?);
            if to < from {
                return Err(bad("结束日期早于开始日期。", "The last day is before the first."));
            }
            if (to - from).num_days() > MAX_RANGE_DAYS {
                return Err(bad("日期范围最长十年。", "A date range may span at most ten years."));
            }
            Period::days(from, to)
        }
        _ => return Err(bad("请选择时间。", "Choose a period.")),
    };
    let scopes = match choices.scope.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => {
            let scope: Scope = raw.parse().map_err(|_| outside())?;
            if !covers_whole(user, roster, scope) {
                tracing::info!(user = %user.id, %scope, "console: refused an export outside the user's scopes");
                return Err(outside());
            }
            vec![scope]
        }
        None => user.scopes.iter().copied().filter(|s| !matches!(s, Scope::Building(_))).collect(),
    };
    if scopes.is_empty() {
        return Err(outside());
    }
    Ok(ExportRequest { what, format, scopes, period: Some(period), lang: user.lang })
}

/// The same answer for a scope that does not exist and one outside the user's: neither tells
/// whether it exists.
fn outside() -> ConsoleError {
    ConsoleError::new(
        StatusCode::FORBIDDEN,
        "所选范围不在你的管辖范围内，不能导出。",
        "The chosen area is outside yours; it cannot be exported.",
    )
}

/// `GET /console/exports/download?what=&format=&scope=&period=month|range&from=&to=`.
pub(super) async fn download(user: ConsoleUser, RawQuery(query): RawQuery) -> Result<Response, ConsoleError> {
    let choices = parse_query(query.as_deref())?;
    let console = user.console().clone();
    let roster = console.blocking(|store| store.any().roster()).await?;
    let request = request_of(&user, &roster, &choices)?;
    let file_name = file_name(&request, &roster);

    static GATE: OnceLock<Semaphore> = OnceLock::new();
    let _permit = GATE
        .get_or_init(|| Semaphore::new(CONCURRENT_EXPORTS))
        .acquire()
        .await
        .map_err(|_| ConsoleError::internal("export gate closed"))?;
    let export = request.clone();
    let file = console
        .blocking(move |store| {
            let temp = tempfile::NamedTempFile::new()
                .map_err(|e| crate::store::StoreError::Backend(format!("temp file for an export: {e}")))?;
            ledgers::export(store.any(), &export, temp.path(), now_millis(), &mut |_| {}).map_err(|e| match e {
                ledgers::ExportError::Store(e) => e,
                ledgers::ExportError::File(e) => crate::store::StoreError::Backend(format!("writing a ledger: {e}")),
            })?;
            // Opened before the temp file is dropped (and unlinked): the open handle still
            // reads it, and nothing is left behind on disk whatever happens to the download.
            std::fs::File::open(temp.path())
                .map_err(|e| crate::store::StoreError::Backend(format!("reopening an export: {e}")))
        })
        .await?;
    let length = file.metadata().map(|m| m.len()).ok();
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    let content_type = match request.format {
        Format::Xlsx => XLSX_TYPE,
        Format::Csv => CSV_TYPE,
    };
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(length) = length {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    }
    if let Ok(value) = HeaderValue::from_str(&content_disposition(&file_name, request.format)) {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    tracing::info!(user = %user.id, file = %file_name, "console: ledger downloaded");
    Ok(response)
}

/// "走访台账_凤凰社区_2026-11-01至2026-11-30.xlsx" (in the user's language).
fn file_name(request: &ExportRequest, roster: &Roster) -> String {
    let lang = request.lang;
    let area = match request.scopes.as_slice() {
        [scope] => scope_name(roster, *scope).unwrap_or_else(|| scope.to_string()),
        _ => layout::t(lang, "我的范围", "my-area").to_string(),
    };
    let period = request
        .period
        .map(|p| {
            let (first, last) = (local_date(p.from), local_date(p.to - 1));
            format!("{first}{}{last}", layout::t(lang, "至", "_to_"))
        })
        .unwrap_or_default();
    let extension = match request.format {
        Format::Xlsx => "xlsx",
        Format::Csv => "csv",
    };
    let name = format!("{}_{area}_{period}", kind_label(request.what, lang));
    // Nothing a file system or a header would choke on, whatever the roster's names hold.
    let name: String =
        name.chars().map(|c| if c.is_control() || "/\\:*?\"<>|".contains(c) { '_' } else { c }).collect();
    format!("{name}.{extension}")
}

fn scope_name(roster: &Roster, scope: Scope) -> Option<String> {
    match scope {
        Scope::Street(id) => roster.streets.iter().find(|s| s.id == id).map(|s| s.name.clone()),
        Scope::Community(id) => roster.communities.iter().find(|c| c.id == id).map(|c| c.name.clone()),
        Scope::Grid(id) => roster.grids.iter().find(|g| g.id == id).map(|g| g.name.clone()),
        Scope::Building(id) => roster.buildings.iter().find(|b| b.id == id).map(|b| b.name.clone()),
    }
}

/// `attachment` with an ASCII fallback name and the real one as RFC 5987 `filename*`.
fn content_disposition(name: &str, format: Format) -> String {
    let fallback = match format {
        Format::Xlsx => "ledger.xlsx",
        Format::Csv => "ledger.csv",
    };
    let mut encoded = String::with_capacity(name.len() * 3);
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_file_names_go_in_filename_star_percent_encoded() {
        let header = content_disposition("走访台账_凤凰社区.xlsx", Format::Xlsx);
        assert_eq!(
            header,
            "attachment; filename=\"ledger.xlsx\"; filename*=UTF-8''%E8%B5%B0%E8%AE%BF%E5%8F%B0%E8%B4%A6_%E5%87%A4%E5%87%B0%E7%A4%BE%E5%8C%BA.xlsx"
        );
        assert!(HeaderValue::from_str(&header).is_ok());
    }
}
