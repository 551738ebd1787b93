//! The audit log, `/console/admin/audit` (admins only): changes the server accepted (the
//! `audit` table: who, which device, which document, the server's, the device's and the
//! change's own time) and changes it refused at push (`refusals`: who, device, document, code,
//! message, size), and security events (`security_audit`: enrolments, wrong codes, console
//! logins, admin actions, wipes), newest first, filtered by user, device, kind and date range,
//! a page at a time.

use std::collections::HashMap;

use axum::extract::RawQuery;
use chrono::NaiveDate;
use gridlink_shared::time::{Millis, format_local, start_of_local_day};
use gridlink_shared::{DeviceId, UserId};
use maud::{Markup, html};
use rusqlite::types::Value;

use super::admin::admin_page;
use super::errors::ConsoleError;
use super::session::ConsoleUser;
use crate::store::{AnyStore, SecurityKind, StoreError};

pub const PATH: &str = "/console/admin/audit";

/// Entries per page.
const PAGE_SIZE: usize = 50;
/// The deepest page anyone may ask for (`OFFSET` reads past every skipped row).
const MAX_PAGE: usize = 10_000;

/// Which entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Kind {
    #[default]
    All,
    Accepted,
    Refused,
    Security,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Kind::All => "all",
            Kind::Accepted => "accepted",
            Kind::Refused => "refused",
            Kind::Security => "security",
        }
    }
}

/// The filters, as the query string gives them. Anything that does not parse is ignored.
#[derive(Clone, Debug, Default)]
struct Filter {
    user: Option<UserId>,
    device: Option<DeviceId>,
    kind: Kind,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    page: usize,
}

impl Filter {
    fn parse(query: Option<&str>) -> Filter {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
        let mut filter = Filter::default();
        let date = |v: &str| NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").ok();
        for (key, value) in &pairs {
            match key.as_str() {
                "user" => filter.user = value.parse().ok(),
                "device" => filter.device = value.parse().ok(),
                "kind" => {
                    filter.kind = match value.as_str() {
                        "accepted" => Kind::Accepted,
                        "refused" => Kind::Refused,
                        "security" => Kind::Security,
                        _ => Kind::All,
                    }
                }
                "from" => filter.from = date(value),
                "to" => filter.to = date(value),
                "page" => filter.page = value.parse::<usize>().unwrap_or(0).min(MAX_PAGE),
                _ => {}
            }
        }
        filter
    }

    /// The query string of this filter on another page.
    fn query(&self, page: usize) -> String {
        let mut pairs: Vec<(&str, String)> = vec![("kind", self.kind.code().to_string())];
        if let Some(user) = self.user {
            pairs.push(("user", user.to_string()));
        }
        if let Some(device) = self.device {
            pairs.push(("device", device.to_string()));
        }
        if let Some(from) = self.from {
            pairs.push(("from", from.to_string()));
        }
        if let Some(to) = self.to {
            pairs.push(("to", to.to_string()));
        }
        pairs.push(("page", page.to_string()));
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }

    /// The `WHERE` of one table and its parameters, numbered from `$1` (both SQLite and
    /// PostgreSQL read `$N`, and the three tables of [`Kind::All`] share them). Column names
    /// are ours, never the request's.
    fn condition(&self) -> (String, Vec<Param>) {
        let mut parts = vec!["TRUE".to_string()];
        let mut values = Vec::new();
        let mut add = |column: &str, op: &str, value: Param| {
            values.push(value);
            parts.push(format!("{column} {op} ${}", values.len()));
        };
        if let Some(user) = self.user {
            add("user_id", "=", Param::Text(user.to_string()));
        }
        if let Some(device) = self.device {
            add("device_id", "=", Param::Text(device.to_string()));
        }
        if let Some(from) = self.from {
            add("server_time", ">=", Param::Integer(start_of_local_day(from)));
        }
        if let Some(to) = self.to.and_then(|d| d.succ_opt()) {
            add("server_time", "<", Param::Integer(start_of_local_day(to)));
        }
        (parts.join(" AND "), values)
    }

    /// The query of a page of entries, newest first, and its parameters: one more row than
    /// [`PAGE_SIZE`] tells whether there is a next page. Written once for both backends.
    fn page_query(&self) -> (String, Vec<Param>) {
        let (condition, mut params) = self.condition();
        let accepted = format!(
            "SELECT CAST(1 AS BIGINT) AS source, id, server_time, user_id, device_id, doc_id, device_time, change_time,
                    CAST(NULL AS TEXT) AS code, CAST(NULL AS TEXT) AS message, CAST(NULL AS BIGINT) AS bytes
             FROM audit WHERE {condition}"
        );
        let refused = format!(
            "SELECT CAST(0 AS BIGINT), id, server_time, user_id, device_id, doc_id, CAST(NULL AS BIGINT),
                    CAST(NULL AS BIGINT), code, message, bytes_len
             FROM refusals WHERE {condition}"
        );
        let security = format!(
            "SELECT CAST(2 AS BIGINT), id, server_time, user_id, device_id, '', CAST(NULL AS BIGINT),
                    CAST(NULL AS BIGINT), kind, origin || ' ' || detail, CAST(NULL AS BIGINT)
             FROM (SELECT id, at AS server_time, user_id, device_id, kind, origin, detail FROM security_audit) AS s
             WHERE {condition}"
        );
        let union = match self.kind {
            Kind::All => format!("{accepted} UNION ALL {refused} UNION ALL {security}"),
            Kind::Accepted => accepted,
            Kind::Refused => refused,
            Kind::Security => security,
        };
        params.push(Param::Integer(PAGE_SIZE as i64 + 1));
        params.push(Param::Integer((self.page * PAGE_SIZE) as i64));
        let (limit, offset) = (params.len() - 1, params.len());
        (
            format!(
                "SELECT * FROM ({union}) AS entries ORDER BY server_time DESC, id DESC LIMIT ${limit} OFFSET ${offset}"
            ),
            params,
        )
    }
}

/// A query parameter, for either backend.
#[derive(Clone, Debug)]
enum Param {
    Text(String),
    Integer(i64),
}

/// Which table a line comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Accepted,
    Refused,
    /// A security event: `code` holds its kind, `message` its origin and detail.
    Security,
}

/// One line of the log.
#[derive(Clone, Debug)]
struct Entry {
    source: Source,
    server_time: Millis,
    user: Option<String>,
    device: Option<String>,
    doc: String,
    device_time: Option<Millis>,
    change_time: Option<Millis>,
    code: Option<String>,
    message: Option<String>,
    bytes: Option<i64>,
}

/// A page of entries, newest first, one more than [`PAGE_SIZE`] if there is a next page.
fn entries(store: AnyStore<'_>, filter: &Filter) -> Result<Vec<Entry>, StoreError> {
    let (sql, params) = filter.page_query();
    let source = |code: i64| match code {
        1 => Source::Accepted,
        0 => Source::Refused,
        _ => Source::Security,
    };
    match store {
        AnyStore::Sqlite(store) => store.read(|conn| {
            let values = params.iter().map(|p| match p {
                Param::Text(text) => Value::Text(text.clone()),
                Param::Integer(n) => Value::Integer(*n),
            });
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| {
                Ok(Entry {
                    source: source(r.get(0)?),
                    server_time: r.get(2)?,
                    user: r.get(3)?,
                    device: r.get(4)?,
                    doc: r.get(5)?,
                    device_time: r.get(6)?,
                    change_time: r.get(7)?,
                    code: r.get(8)?,
                    message: r.get(9)?,
                    bytes: r.get(10)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        }),
        AnyStore::Postgres(store) => store.read(|client| {
            let values: Vec<&(dyn postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| match p {
                    Param::Text(text) => text as &(dyn postgres::types::ToSql + Sync),
                    Param::Integer(n) => n as &(dyn postgres::types::ToSql + Sync),
                })
                .collect();
            Ok(client
                .query(&sql, &values)?
                .iter()
                .map(|r| Entry {
                    source: source(r.get(0)),
                    server_time: r.get(2),
                    user: r.get(3),
                    device: r.get(4),
                    doc: r.get(5),
                    device_time: r.get(6),
                    change_time: r.get(7),
                    code: r.get(8),
                    message: r.get(9),
                    bytes: r.get(10),
                })
                .collect())
        }),
    }
}

/// `GET /console/admin/audit?user=&device=&kind=all|accepted|refused&from=&to=&page=`.
pub(super) async fn page(user: ConsoleUser, RawQuery(query): RawQuery) -> Result<Markup, ConsoleError> {
    user.require_admin()?;
    let filter = Filter::parse(query.as_deref());
    let read = filter.clone();
    let (mut entries, users, devices) = user
        .console()
        .blocking(move |store| {
            let store = store.any();
            let entries = entries(store, &read)?;
            Ok((entries, store.list_users()?, store.list_devices()?))
        })
        .await?;
    let more = entries.len() > PAGE_SIZE;
    entries.truncate(PAGE_SIZE);
    let user_names: HashMap<String, &str> = users.iter().map(|u| (u.id.to_string(), u.name.as_str())).collect();
    let device_names: HashMap<String, &str> = devices.iter().map(|d| (d.id.to_string(), d.name.as_str())).collect();
    let name_of = |names: &HashMap<String, &str>, id: &Option<String>| match id {
        Some(id) => names.get(id.as_str()).map(|n| n.to_string()).unwrap_or_else(|| id.clone()),
        None => "—".to_string(),
    };
    let kind_label = |code: &str| match code.parse::<SecurityKind>() {
        Ok(kind) => user.t(kind.zh(), kind.code()).to_string(),
        Err(_) => code.to_string(),
    };
    let time = |at: Option<Millis>| at.map(format_local).unwrap_or_else(|| "—".into());
    let content = html! {
        section.card {
            form.filters method="get" action=(PATH) {
                label { (user.t("用户", "User"))
                    select name="user" {
                        option value="" { (user.t("全部", "All")) }
                        @for u in &users {
                            option value=(u.id) selected[filter.user == Some(u.id)] { (u.name) }
                        }
                    }
                }
                label { (user.t("设备", "Device"))
                    select name="device" {
                        option value="" { (user.t("全部", "All")) }
                        @for d in &devices {
                            option value=(d.id) selected[filter.device == Some(d.id)] { (d.name) " (" (d.user_name) ")" }
                        }
                    }
                }
                label { (user.t("类别", "Kind"))
                    select name="kind" {
                        option value="all" selected[filter.kind == Kind::All] { (user.t("全部", "All")) }
                        option value="accepted" selected[filter.kind == Kind::Accepted] { (user.t("已接收", "Accepted")) }
                        option value="refused" selected[filter.kind == Kind::Refused] { (user.t("被拒绝", "Refused")) }
                        option value="security" selected[filter.kind == Kind::Security] { (user.t("安全事件", "Security events")) }
                    }
                }
                label { (user.t("从", "From"))
                    input type="date" name="from" value=[filter.from.map(|d| d.to_string())];
                }
                label { (user.t("到", "To"))
                    input type="date" name="to" value=[filter.to.map(|d| d.to_string())];
                }
                button.btn type="submit" { (user.t("筛选", "Filter")) }
            }
        }
        section.card {
            @if entries.is_empty() {
                p.muted { (user.t("没有符合条件的记录。", "No entries match.")) }
            } @else {
                div.table-wrap {
                    table.data.audit {
                        thead { tr {
                            th { (user.t("服务器时间", "Server time")) }
                            th { (user.t("结果", "Outcome")) }
                            th { (user.t("用户", "User")) }
                            th { (user.t("设备", "Device")) }
                            th { (user.t("文档", "Document")) }
                            th { (user.t("设备时间", "Device time")) }
                            th { (user.t("修改时间", "Change time")) }
                            th { (user.t("拒绝原因 / 详情", "Refusal / details")) }
                            th.num { (user.t("大小（字节）", "Size (bytes)")) }
                        } }
                        tbody {
                            @for e in &entries {
                                tr.refused[e.source == Source::Refused] {
                                    td { (format_local(e.server_time)) }
                                    td {
                                        @match e.source {
                                            Source::Accepted => { span.badge.ok { (user.t("已接收", "Accepted")) } }
                                            Source::Refused => { span.badge.bad { (user.t("被拒绝", "Refused")) } }
                                            Source::Security => {
                                                span.badge { (kind_label(e.code.as_deref().unwrap_or(""))) }
                                            }
                                        }
                                    }
                                    td { (name_of(&user_names, &e.user)) }
                                    td { (name_of(&device_names, &e.device)) }
                                    td { code.doc-id { (e.doc) } }
                                    td { (time(e.device_time)) }
                                    td { (time(e.change_time)) }
                                    td {
                                        @if e.source == Source::Refused {
                                            @if let Some(code) = &e.code { code { (code) } " " }
                                        }
                                        @if let Some(message) = &e.message { (message) }
                                    }
                                    td.num { (e.bytes.map(|b| b.to_string()).unwrap_or_default()) }
                                }
                            }
                        }
                    }
                }
            }
            nav.pager {
                @if filter.page > 0 {
                    a.btn.small href={ (PATH) "?" (filter.query(filter.page - 1)) } { (user.t("← 较新", "← Newer")) }
                }
                span.muted { (user.t("第 ", "Page ")) (filter.page + 1) (user.t(" 页", "")) }
                @if more {
                    a.btn.small href={ (PATH) "?" (filter.query(filter.page + 1)) } { (user.t("较早 →", "Older →")) }
                }
            }
        }
    };
    Ok(admin_page(&user, PATH, user.t("审计日志", "Audit log"), content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_leniently_and_round_trip() {
        let user = UserId::new();
        let filter = Filter::parse(Some(&format!("user={user}&kind=refused&from=2026-11-01&to=bad&page=99999999")));
        assert_eq!(filter.user, Some(user));
        assert_eq!(filter.kind, Kind::Refused);
        assert_eq!(filter.from, NaiveDate::from_ymd_opt(2026, 11, 1));
        assert_eq!(filter.to, None);
        assert_eq!(filter.page, MAX_PAGE);
        let again = Filter::parse(Some(&filter.query(3)));
        assert_eq!((again.user, again.kind, again.from, again.page), (Some(user), Kind::Refused, filter.from, 3));
        let (sql, values) = again.condition();
        assert_eq!(sql, "TRUE AND user_id = $1 AND server_time >= $2");
        assert_eq!(values.len(), 2);
        // The page's query numbers LIMIT and OFFSET after the filter's own parameters.
        let (page, values) = again.page_query();
        assert!(page.ends_with("LIMIT $3 OFFSET $4"), "{page}");
        assert_eq!(values.len(), 4);
    }
}
