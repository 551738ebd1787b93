//! The admins' pages under `/console/admin` (role `admin` only; every handler calls
//! [`ConsoleUser::require_admin`] first): users (list, add, scopes, enrolment codes shown as
//! text and QR code), devices (list, revoke one or all of a user's) and the roster CSV upload.
//! The audit log is [`super::audit`].
//!
//! Every action calls the store function the admin CLI calls (`add_user`, `new_code`,
//! `set_scopes`, `revoke_device`, `revoke_user_devices`, `import_csv_from`), so the same
//! checks apply; the pages check their input first only to answer in the admin's language.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use gridlink_shared::time::{Millis, format_local, now_millis};
use gridlink_shared::{DeviceId, Lang, Role, Roster, Scope, UserId};
use maud::{Markup, PreEscaped, html};

use super::errors::ConsoleError;
use super::form::{CsrfForm, post_form};
use super::layout::{self, Section};
use super::session::ConsoleUser;
use super::upload::{ROSTER_UPLOAD_BYTES, Upload};
use crate::store::{AnyStore, Origin, RowProblem, SecurityEvent, SecurityKind, UserRow};
use crate::store::{
    CSV_COLUMNS, DEFAULT_CODE_HOURS, DeviceRow, ImportError, ImportSummary, OPTIONAL_COLUMNS, StoreError,
};

pub const PATH: &str = "/console/admin";
pub const USERS_PATH: &str = "/console/admin/users";
pub const DEVICES_PATH: &str = "/console/admin/devices";
pub const REVOKE_PATH: &str = "/console/admin/devices/revoke";
pub const ROSTER_PATH: &str = "/console/admin/roster";

/// Longest name the roster takes (the store checks the same).
const MAX_NAME_CHARS: usize = 50;
/// Longest phone number; the roster keeps it as typed.
const MAX_PHONE_CHARS: usize = 30;
/// Most scopes one user may be given from the console.
const MAX_SCOPES: usize = 64;

/// Runs `f` on the store on a blocking thread.
async fn on_store<T: Send + 'static>(
    user: &ConsoleUser,
    f: impl FnOnce(AnyStore<'_>) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ConsoleError> {
    user.console().blocking(move |store| f(store.any())).await
}

/// Records an admin action in the security audit, signed as the console user. The action is
/// done already; a failure to record it is logged and does not undo it.
async fn audit(user: &ConsoleUser, event: SecurityEvent) {
    let kind = event.kind;
    if let Err(error) = on_store(user, move |s| s.record_security(&event, now_millis())).await {
        tracing::error!(?error, kind = kind.code(), "console: could not record an admin action in the security audit");
    }
}

/// The roster's name of every scope a page may show.
fn scope_names(roster: &Roster) -> HashMap<Scope, String> {
    let mut names = HashMap::new();
    names.extend(roster.streets.iter().map(|s| (Scope::Street(s.id), s.name.clone())));
    names.extend(roster.communities.iter().map(|c| (Scope::Community(c.id), c.name.clone())));
    names.extend(roster.grids.iter().map(|g| (Scope::Grid(g.id), g.name.clone())));
    names.extend(roster.buildings.iter().map(|b| (Scope::Building(b.id), b.name.clone())));
    names
}

fn scope_label(names: &HashMap<Scope, String>, scope: &Scope) -> String {
    names.get(scope).cloned().unwrap_or_else(|| scope.to_string())
}

fn time_or_dash(at: Option<Millis>) -> String {
    at.map(format_local).unwrap_or_else(|| "—".to_string())
}

/// The admin section's sub-navigation.
fn subnav(user: &ConsoleUser, current: &str) -> Markup {
    let links = [
        (USERS_PATH, user.t("用户", "Users")),
        (DEVICES_PATH, user.t("设备", "Devices")),
        (super::audit::PATH, user.t("审计日志", "Audit log")),
        (ROSTER_PATH, user.t("导入花名册", "Roster import")),
        (super::exports::PATH, user.t("台账下载", "Ledger downloads")),
    ];
    html! {
        nav.subnav aria-label=(user.t("管理", "Admin")) {
            @for (path, label) in links {
                a.subnav-item.active[path == current] href=(path) aria-current=[(path == current).then_some("page")] { (label) }
            }
        }
    }
}

/// An admin page: the shell, the sub-navigation, then `content`.
pub(super) fn admin_page(user: &ConsoleUser, current: &str, title: &str, content: Markup) -> Markup {
    layout::page(user, Section::Admin, title, html! { (subnav(user, current)) div.admin { (content) } })
}

/// `GET /console/admin`.
pub(super) async fn index(user: ConsoleUser) -> Result<Markup, ConsoleError> {
    user.require_admin()?;
    Ok(admin_page(
        &user,
        PATH,
        user.t("管理", "Admin"),
        html! {
            section.card {
                ul.admin-links {
                    li { a href=(USERS_PATH) { (user.t("用户", "Users")) } " — " (user.t("添加用户、调整管辖范围、生成设备登记码", "add users, change scopes, issue enrolment codes")) }
                    li { a href=(DEVICES_PATH) { (user.t("设备", "Devices")) } " — " (user.t("查看同步情况、吊销丢失的手机", "sync state, revoke lost phones")) }
                    li { a href=(super::audit::PATH) { (user.t("审计日志", "Audit log")) } " — " (user.t("已接收和被拒绝的修改", "accepted and refused changes")) }
                    li { a href=(ROSTER_PATH) { (user.t("导入花名册", "Roster import")) } " — " (user.t("上传 CSV 文件", "upload a CSV file")) }
                    li { a href=(super::exports::PATH) { (user.t("台账下载", "Ledger downloads")) } }
                }
            }
        },
    ))
}

// ---------------------------------------------------------------------------------------------
// Users

/// `GET /console/admin/users`.
pub(super) async fn users(user: ConsoleUser) -> Result<Response, ConsoleError> {
    user.require_admin()?;
    users_page(&user, &NewUser::default(), None, StatusCode::OK).await
}

/// What the add-user form sent (kept to fill the form again after an error).
#[derive(Clone, Debug, Default)]
struct NewUser {
    name: String,
    role: String,
    phone: String,
    scopes: Vec<String>,
}

impl NewUser {
    fn from_fields(fields: &[(String, String)]) -> Self {
        let mut new = NewUser::default();
        for (key, value) in fields {
            match key.as_str() {
                "name" => new.name = value.clone(),
                "role" => new.role = value.clone(),
                "phone" => new.phone = value.clone(),
                "scope" => new.scopes.push(value.clone()),
                _ => {}
            }
        }
        new
    }
}

/// A problem with what an admin typed, in both languages.
#[derive(Clone, Debug)]
struct FormProblem {
    zh: String,
    en: String,
}

impl FormProblem {
    fn new(zh: impl Into<String>, en: impl Into<String>) -> Self {
        FormProblem { zh: zh.into(), en: en.into() }
    }

    fn text(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => &self.en,
        }
    }

    /// A store refusal (its messages are English; the Chinese page says what was refused).
    fn from_store(error: StoreError) -> Result<Self, ConsoleError> {
        match error {
            StoreError::Invalid(message) => Ok(FormProblem::new(format!("未能保存：{message}"), message)),
            other => Err(ConsoleError::from(other)),
        }
    }
}

fn check_name(raw: &str) -> Result<String, FormProblem> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(FormProblem::new(
            format!("姓名须为 1 到 {MAX_NAME_CHARS} 个字（现在是 {chars} 个）。"),
            format!("A name must have 1 to {MAX_NAME_CHARS} characters (this one has {chars})."),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(FormProblem::new("姓名不能包含控制字符。", "A name may not contain control characters."));
    }
    Ok(name.to_string())
}

fn check_phone(raw: &str) -> Result<String, FormProblem> {
    let phone = raw.trim();
    let ok = phone.chars().count() <= MAX_PHONE_CHARS
        && phone.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')'));
    if !ok {
        return Err(FormProblem::new(
            format!("电话只能包含数字、空格和 + - ( )，最多 {MAX_PHONE_CHARS} 位。"),
            format!("A phone number may hold digits, spaces and + - ( ), at most {MAX_PHONE_CHARS}."),
        ));
    }
    Ok(phone.to_string())
}

fn check_role(raw: &str) -> Result<Role, FormProblem> {
    raw.parse().map_err(|_| FormProblem::new("请选择角色。", "Choose a role."))
}

/// Scopes as sent: each must parse and be on the roster, at least one, at most
/// [`MAX_SCOPES`]. The store checks existence again in its transaction.
fn check_scopes(raw: &[String], names: &HashMap<Scope, String>) -> Result<Vec<Scope>, FormProblem> {
    if raw.is_empty() {
        return Err(FormProblem::new("请至少选择一个管辖范围。", "Choose at least one scope."));
    }
    if raw.len() > MAX_SCOPES {
        return Err(FormProblem::new(
            format!("管辖范围最多 {MAX_SCOPES} 个。"),
            format!("At most {MAX_SCOPES} scopes."),
        ));
    }
    let mut scopes = Vec::new();
    for value in raw {
        let scope: Scope =
            value.parse().ok().filter(|s| names.contains_key(s)).ok_or_else(|| {
                FormProblem::new("所选管辖范围不在花名册上。", "A chosen scope is not on the roster.")
            })?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    Ok(scopes)
}

/// `POST /console/admin/users`: adds a user and shows their first enrolment code.
pub(super) async fn add_user(
    CsrfForm { user, form }: CsrfForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    user.require_admin()?;
    let new = NewUser::from_fields(&form);
    let roster = on_store(&user, |s| s.roster()).await?;
    let names = scope_names(&roster);
    let checked = (|| {
        Ok((
            check_name(&new.name)?,
            check_role(&new.role)?,
            check_phone(&new.phone)?,
            check_scopes(&new.scopes, &names)?,
        ))
    })();
    let (name, role, phone, scopes) = match checked {
        Ok(checked) => checked,
        Err(problem) => return users_page(&user, &new, Some(problem), StatusCode::BAD_REQUEST).await,
    };
    let (stored_name, stored_scopes) = (name.clone(), scopes.clone());
    let added = on_store(&user, move |s| {
        Ok(s.add_user(&stored_name, role, &stored_scopes, &phone, now_millis(), DEFAULT_CODE_HOURS))
    })
    .await?;
    match added {
        Ok((id, code)) => {
            tracing::info!(admin = %user.id, user = %id, %role, "console: added a user");
            let detail = serde_json::json!({ "name": name, "role": role.code(), "scopes": scopes });
            audit(&user, SecurityEvent::new(SecurityKind::UserAdd, Origin::Console(user.id)).user(id).detail(detail))
                .await;
            Ok(code_page(&user, id, &name, &code).into_response())
        }
        Err(error) => {
            let problem = FormProblem::from_store(error)?;
            users_page(&user, &new, Some(problem), StatusCode::BAD_REQUEST).await
        }
    }
}

async fn users_page(
    user: &ConsoleUser,
    new: &NewUser,
    problem: Option<FormProblem>,
    status: StatusCode,
) -> Result<Response, ConsoleError> {
    let (users, roster) = on_store(user, |s| Ok((s.list_users()?, s.roster()?))).await?;
    let names = scope_names(&roster);
    let lang = user.lang;
    let content = html! {
        section.card {
            h2 { (user.t("全部用户", "All users")) " (" (users.len()) ")" }
            div.table-wrap {
                table.data {
                    thead { tr {
                        th { (user.t("姓名", "Name")) }
                        th { (user.t("角色", "Role")) }
                        th { (user.t("电话", "Phone")) }
                        th { (user.t("管辖范围", "Scopes")) }
                        th.num { (user.t("在用设备", "Active devices")) }
                        th {}
                    } }
                    tbody {
                        @for u in &users {
                            tr {
                                td { (u.name) }
                                td { (u.role.label(lang)) }
                                td { (u.phone) }
                                td { (u.scopes.iter().map(|s| scope_label(&names, s)).collect::<Vec<_>>().join("、")) }
                                td.num { (u.active_devices) }
                                td { a href={ (USERS_PATH) "/" (u.id) } { (user.t("管理", "Manage")) } }
                            }
                        }
                    }
                }
            }
        }
        section.card #add {
            h2 { (user.t("添加用户", "Add a user")) }
            @if let Some(problem) = &problem {
                p.form-error role="alert" { (problem.text(lang)) }
            }
            (post_form(user, USERS_PATH, html! {
                label { (user.t("姓名", "Name"))
                    input type="text" name="name" required maxlength=(MAX_NAME_CHARS) value=(new.name);
                }
                label { (user.t("角色", "Role"))
                    select name="role" required {
                        @for role in Role::ALL {
                            option value=(role.code()) selected[new.role == role.code()] { (role.label(lang)) }
                        }
                    }
                }
                label { (user.t("电话（可选）", "Phone (optional)"))
                    input type="tel" name="phone" maxlength=(MAX_PHONE_CHARS) value=(new.phone);
                }
                (scope_picker(user, &roster, &new.scopes))
                button.btn.primary type="submit" { (user.t("添加并生成登记码", "Add and issue an enrolment code")) }
            }))
        }
    };
    let page = admin_page(user, USERS_PATH, user.t("用户", "Users"), content);
    Ok((status, page).into_response())
}

/// A multiple choice of every street, community, grid and building on the roster, each
/// under its parent; `selected` holds the scopes (as `kind:id`) to mark.
fn scope_picker(user: &ConsoleUser, roster: &Roster, selected: &[String]) -> Markup {
    let is = |scope: Scope| selected.contains(&scope.to_string());
    let grid_name: HashMap<_, _> = roster.grids.iter().map(|g| (g.id, g.name.as_str())).collect();
    html! {
        label { (user.t("管辖范围（可多选：按住 Ctrl 或 ⌘ 点选）", "Scopes (several: hold Ctrl or ⌘ while clicking)"))
            select.scope-picker name="scope" multiple size="10" required {
                optgroup label=(user.t("街道", "Streets")) {
                    @for s in &roster.streets {
                        option value=(Scope::Street(s.id).to_string()) selected[is(Scope::Street(s.id))] { (s.name) }
                    }
                }
                optgroup label=(user.t("社区", "Communities")) {
                    @for c in &roster.communities {
                        option value=(Scope::Community(c.id).to_string()) selected[is(Scope::Community(c.id))] { (c.name) }
                    }
                }
                optgroup label=(user.t("网格", "Grids")) {
                    @for g in &roster.grids {
                        option value=(Scope::Grid(g.id).to_string()) selected[is(Scope::Grid(g.id))] { (g.name) }
                    }
                }
                optgroup label=(user.t("楼栋", "Buildings")) {
                    @for b in &roster.buildings {
                        option value=(Scope::Building(b.id).to_string()) selected[is(Scope::Building(b.id))] {
                            (b.name) " (" (grid_name.get(&b.grid).copied().unwrap_or("")) ")"
                        }
                    }
                }
            }
        }
    }
}

fn parse_user(raw: &str) -> Result<UserId, ConsoleError> {
    raw.parse().map_err(|_| ConsoleError::not_found())
}

async fn find_user(user: &ConsoleUser, id: UserId) -> Result<(UserRow, Roster), ConsoleError> {
    let (users, roster) = on_store(user, |s| Ok((s.list_users()?, s.roster()?))).await?;
    let found = users.into_iter().find(|u| u.id == id).ok_or_else(ConsoleError::not_found)?;
    Ok((found, roster))
}

/// `GET /console/admin/users/{id}`: scopes, a new code, revoking the user's devices.
pub(super) async fn user_page(
    user: ConsoleUser,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ConsoleError> {
    user.require_admin()?;
    let id = parse_user(&id)?;
    let saved = query.as_deref().is_some_and(|q| q.split('&').any(|p| p == "saved=1"));
    let (found, roster) = find_user(&user, id).await?;
    let selected: Vec<String> = found.scopes.iter().map(|s| s.to_string()).collect();
    Ok(one_user_page(&user, &found, &roster, &selected, saved, None, StatusCode::OK))
}

#[allow(clippy::too_many_arguments)]
fn one_user_page(
    user: &ConsoleUser,
    found: &UserRow,
    roster: &Roster,
    selected: &[String],
    saved: bool,
    problem: Option<FormProblem>,
    status: StatusCode,
) -> Response {
    let names = scope_names(roster);
    let lang = user.lang;
    let base = format!("{USERS_PATH}/{}", found.id);
    let content = html! {
        section.card {
            dl.facts {
                dt { (user.t("角色", "Role")) } dd { (found.role.label(lang)) }
                dt { (user.t("电话", "Phone")) } dd { (found.phone) }
                dt { (user.t("管辖范围", "Scopes")) } dd { (found.scopes.iter().map(|s| scope_label(&names, s)).collect::<Vec<_>>().join("、")) }
                dt { (user.t("在用设备", "Active devices")) } dd { (found.active_devices) }
                dt { (user.t("用户编号", "User id")) } dd { code { (found.id) } }
            }
        }
        section.card {
            h2 { (user.t("调整管辖范围", "Change scopes")) }
            @if saved {
                p.notice role="status" { (user.t("已保存。该用户的手机在下次同步时改用新的管辖范围。", "Saved. The user's phones switch to the new scopes at their next sync.")) }
            }
            @if let Some(problem) = &problem {
                p.form-error role="alert" { (problem.text(lang)) }
            }
            (post_form(user, &format!("{base}/scopes"), html! {
                (scope_picker(user, roster, selected))
                button.btn.primary type="submit" { (user.t("保存管辖范围", "Save scopes")) }
            }))
        }
        section.card {
            h2 { (user.t("设备登记码", "Enrolment code")) }
            p.muted { (user.t(
                "生成一个一次性登记码，用于在新手机上登录网格通。登记码只显示一次。",
                "Issues a one-time code to enrol a new phone. The code is shown once only.",
            )) }
            (post_form(user, &format!("{base}/code"), html! {
                button.btn type="submit" { (user.t("生成新的登记码", "Issue a new code")) }
            }))
        }
        section.card {
            h2 { (user.t("吊销设备", "Revoke devices")) }
            (post_form(user, REVOKE_PATH, html! {
                input type="hidden" name="user" value=(found.id);
                button.btn.danger type="submit" {
                    (user.t("吊销", "Revoke all devices of ")) (found.name) (user.t(" 的全部设备（立即生效，未用的登记码作废）", " (at once; unused codes die too)"))
                }
            }))
        }
    };
    let page = admin_page(user, USERS_PATH, &found.name, content);
    (status, page).into_response()
}

/// `POST /console/admin/users/{id}/scopes`.
pub(super) async fn set_scopes(
    Path(id): Path<String>,
    CsrfForm { user, form }: CsrfForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    user.require_admin()?;
    let id = parse_user(&id)?;
    let (found, roster) = find_user(&user, id).await?;
    let raw: Vec<String> = form.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect();
    let scopes = match check_scopes(&raw, &scope_names(&roster)) {
        Ok(scopes) => scopes,
        Err(problem) => {
            return Ok(one_user_page(&user, &found, &roster, &raw, false, Some(problem), StatusCode::BAD_REQUEST));
        }
    };
    let stored = scopes.clone();
    match on_store(&user, move |s| Ok(s.set_scopes(id, &stored))).await? {
        Ok(()) => {
            tracing::info!(admin = %user.id, user = %id, "console: set a user's scopes");
            let detail = serde_json::json!({ "scopes": scopes });
            audit(&user, SecurityEvent::new(SecurityKind::ScopesSet, Origin::Console(user.id)).user(id).detail(detail))
                .await;
            Ok(Redirect::to(&format!("{USERS_PATH}/{id}?saved=1")).into_response())
        }
        Err(error) => {
            let problem = FormProblem::from_store(error)?;
            Ok(one_user_page(&user, &found, &roster, &raw, false, Some(problem), StatusCode::BAD_REQUEST))
        }
    }
}

/// `POST /console/admin/users/{id}/code`: a new one-time enrolment code, shown once.
pub(super) async fn issue_code(
    Path(id): Path<String>,
    CsrfForm { user, .. }: CsrfForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    user.require_admin()?;
    let id = parse_user(&id)?;
    let (found, _) = find_user(&user, id).await?;
    let code = on_store(&user, move |s| s.new_code(id, now_millis(), DEFAULT_CODE_HOURS)).await?;
    tracing::info!(admin = %user.id, user = %id, "console: issued an enrolment code");
    let detail = serde_json::json!({ "code_hours": DEFAULT_CODE_HOURS });
    audit(&user, SecurityEvent::new(SecurityKind::CodeIssued, Origin::Console(user.id)).user(id).detail(detail)).await;
    Ok(code_page(&user, id, &found.name, &code).into_response())
}

/// The code as an SVG QR code, drawn on the server (no script, nothing from outside).
pub fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    // Inline in HTML: without the XML declaration.
    let start = svg.find("<svg")?;
    Some(svg[start..].to_string())
}

/// The page that shows a fresh enrolment code once. Only its hash is stored; reloading the
/// page does not show it again (the response is `no-store`).
fn code_page(user: &ConsoleUser, id: UserId, name: &str, code: &str) -> Markup {
    let qr = qr_svg(code);
    admin_page(
        user,
        USERS_PATH,
        user.t("设备登记码", "Enrolment code"),
        html! {
            section.card.enrol-code {
                p { (user.t("给 ", "For ")) strong { (name) } (user.t(" 的一次性登记码：", ", a one-time enrolment code:")) }
                p.code-text { code { (code) } }
                @if let Some(svg) = qr {
                    figure.qr {
                        (PreEscaped(svg))
                        figcaption { (user.t("用网格通扫码登记", "Scan with the Gridlink app to enrol")) }
                    }
                }
                p.muted { (user.t(
                    &format!("{DEFAULT_CODE_HOURS} 小时内有效，只能使用一次。此页关闭后不再显示，请现在抄下或扫码。"),
                    &format!("Valid for {DEFAULT_CODE_HOURS} hours, once. It is not shown again after this page; copy or scan it now."),
                )) }
                p.actions {
                    a.btn href={ (USERS_PATH) "/" (id) } { (user.t("返回用户", "Back to the user")) }
                    a.btn href=(USERS_PATH) { (user.t("全部用户", "All users")) }
                }
            }
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Devices

/// `GET /console/admin/devices`.
pub(super) async fn devices(user: ConsoleUser, RawQuery(query): RawQuery) -> Result<Markup, ConsoleError> {
    user.require_admin()?;
    let done: Option<usize> = query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("revoked=")))
        .and_then(|n| n.parse().ok());
    let mut devices = on_store(&user, |s| s.list_devices()).await?;
    // Newest first; revoked ones after the active.
    devices.sort_by(|a, b| a.revoked_at.is_some().cmp(&b.revoked_at.is_some()).then(b.created_at.cmp(&a.created_at)));
    let active = devices.iter().filter(|d| d.revoked_at.is_none()).count();
    Ok(admin_page(
        &user,
        DEVICES_PATH,
        user.t("设备", "Devices"),
        html! {
            @if let Some(n) = done {
                p.notice role="status" { (user.t("已吊销设备：", "Devices revoked: ")) (n) }
            }
            section.card {
                h2 { (user.t("已登记设备", "Enrolled devices")) " (" (active) " " (user.t("台在用", "active")) ")" }
                div.table-wrap {
                    table.data {
                        thead { tr {
                            th { (user.t("用户", "User")) }
                            th { (user.t("设备名", "Device")) }
                            th { (user.t("登记时间", "Enrolled")) }
                            th { (user.t("最近同步", "Last sync")) }
                            th { (user.t("状态", "State")) }
                            th { (user.t("应用版本", "App version")) }
                            th.num { (user.t("未上传", "Unsent")) }
                            th.num { (user.t("被拒绝", "Rejected")) }
                            th {}
                        } }
                        tbody {
                            @for d in &devices { (device_row(&user, d)) }
                        }
                    }
                }
            }
        },
    ))
}

fn device_row(user: &ConsoleUser, d: &DeviceRow) -> Markup {
    html! {
        tr.revoked[d.revoked_at.is_some()] {
            td { a href={ (USERS_PATH) "/" (d.user) } { (d.user_name) } }
            td {
                (d.name)
                @if d.console { " " span.badge { (user.t("网页签名", "signs console actions")) } }
            }
            td { (format_local(d.created_at)) }
            td { (time_or_dash(d.last_sync_at)) }
            td {
                @match (d.wipe_requested_at, d.wipe_delivered_at, d.revoked_at) {
                    (Some(_), Some(at), _) => { span.badge.bad { (user.t("已远程清除", "Wiped")) } " " (format_local(at)) }
                    (Some(at), None, _) => {
                        span.badge.bad { (user.t("待清除（下次联网时）", "Wipe pending (at next contact)")) } " " (format_local(at))
                    }
                    (None, _, Some(at)) => { span.badge.bad { (user.t("已吊销", "Revoked")) } " " (format_local(at)) }
                    (None, _, None) => { span.badge.ok { (user.t("在用", "Active")) } }
                }
            }
            td { (d.health.as_ref().map(|h| h.app_version.as_str()).unwrap_or("—")) }
            td.num { (d.health.as_ref().map(|h| h.unsent.to_string()).unwrap_or_else(|| "—".into())) }
            td.num { (d.health.as_ref().map(|h| h.rejected.to_string()).unwrap_or_else(|| "—".into())) }
            td {
                @if d.revoked_at.is_none() {
                    (post_form(user, REVOKE_PATH, html! {
                        input type="hidden" name="device" value=(d.id);
                        button.btn.small.danger type="submit" { (user.t("吊销此设备", "Revoke this device")) }
                    }))
                }
            }
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct Revoke {
    device: Option<String>,
    user: Option<String>,
}

/// `POST /console/admin/devices/revoke`: one device (`device=ID`) or every device of a user
/// (`user=ID`). Takes effect at the device's next request.
pub(super) async fn revoke(CsrfForm { user, form }: CsrfForm<Revoke>) -> Result<Response, ConsoleError> {
    user.require_admin()?;
    let now = now_millis();
    let revoked = match (form.device.filter(|d| !d.is_empty()), form.user.filter(|u| !u.is_empty())) {
        (Some(device), _) => {
            let device: DeviceId = device.parse().map_err(|_| ConsoleError::not_found())?;
            on_store(&user, move |s| s.revoke_device(device, now)).await?;
            tracing::info!(admin = %user.id, %device, "console: revoked a device");
            let owner = on_store(&user, move |s| s.device_user(device)).await.ok();
            let mut event = SecurityEvent::new(SecurityKind::Revoke, Origin::Console(user.id)).device(device);
            event.user = owner;
            audit(&user, event).await;
            1
        }
        (None, Some(target)) => {
            let target = parse_user(&target)?;
            let n = on_store(&user, move |s| s.revoke_user_devices(target, now)).await?;
            tracing::info!(admin = %user.id, user = %target, devices = n, "console: revoked a user's devices");
            let detail = serde_json::json!({ "devices": n });
            audit(
                &user,
                SecurityEvent::new(SecurityKind::Revoke, Origin::Console(user.id)).user(target).detail(detail),
            )
            .await;
            n
        }
        (None, None) => {
            return Err(ConsoleError::bad_request(
                "请选择要吊销的设备或用户。",
                "Choose a device or a user to revoke.",
            ));
        }
    };
    Ok(Redirect::to(&format!("{DEVICES_PATH}?revoked={revoked}")).into_response())
}

// ---------------------------------------------------------------------------------------------
// Roster import

/// `GET /console/admin/roster`.
pub(super) async fn roster(user: ConsoleUser) -> Result<Markup, ConsoleError> {
    user.require_admin()?;
    Ok(roster_page(&user, None))
}

/// What an upload came to.
enum Outcome {
    Imported { file: String, summary: ImportSummary },
    Problems { file: String, problems: Vec<RowProblem> },
    Refused(FormProblem),
}

fn roster_page(user: &ConsoleUser, outcome: Option<&Outcome>) -> Markup {
    let lang = user.lang;
    admin_page(
        user,
        ROSTER_PATH,
        user.t("导入花名册", "Roster import"),
        html! {
            @match outcome {
                Some(Outcome::Imported { file, summary: s }) => {
                    section.card.result.good role="status" {
                        h2 { (user.t("已导入 ", "Imported ")) (file) }
                        ul {
                            li { (user.t("街道", "Streets")) "：" (s.streets) }
                            li { (user.t("社区", "Communities")) "：" (s.communities) }
                            li { (user.t("网格", "Grids")) "：" (s.grids) }
                            li { (user.t("楼栋", "Buildings")) "：" (s.buildings) }
                            li { (user.t("工作人员", "Staff")) "：" (s.staff) }
                            li { (user.t("新建住户", "New households")) "：" (s.households_created) }
                            li { (user.t("已有住户（未改动）", "Households already present (left as they are)")) "：" (s.households_already_present) }
                        }
                        p.muted { (user.t("新导入的工作人员还没有登记码：请在“用户”页为每人生成。", "Imported staff have no enrolment code yet: issue one per person on the Users page.")) }
                    }
                }
                Some(Outcome::Problems { file, problems }) => {
                    section.card.result.bad role="alert" {
                        h2 { (file) (user.t(" 有 ", ": ")) (problems.len()) (user.t(" 处问题，未导入任何内容", " problem(s); nothing was imported")) }
                        ul.problems {
                            @for p in problems {
                                li {
                                    (user.t("第 ", "row ")) (p.row) (user.t(" 行，", ", "))
                                    (user.t("列 ", "column ")) code { (p.column) } "："
                                    (user.t(&p.zh, &p.problem))
                                }
                            }
                        }
                        p.muted { (user.t("改正后重新上传整个文件。", "Fix them and upload the whole file again.")) }
                    }
                }
                Some(Outcome::Refused(problem)) => {
                    section.card.result.bad role="alert" {
                        p.form-error { (problem.text(lang)) }
                        p.muted { (user.t("未导入任何内容。", "Nothing was imported.")) }
                    }
                }
                None => {}
            }
            section.card {
                h2 { (user.t("上传花名册 CSV", "Upload a roster CSV")) }
                form method="post" action=(ROSTER_PATH) enctype="multipart/form-data" {
                    (super::form::csrf_field(user.csrf_token()))
                    label { (user.t("CSV 文件（UTF-8，最大 ", "CSV file (UTF-8, at most ")) (ROSTER_UPLOAD_BYTES / (1024 * 1024)) " MiB)"
                        input type="file" name="file" accept=".csv,text/csv" required;
                    }
                    button.btn.primary type="submit" { (user.t("检查并导入", "Check and import")) }
                }
                p.muted { (user.t(
                    "文件有任何错误时不会导入任何内容，并列出每一处问题。已有的住户不会被改动。",
                    "A file with any error imports nothing, and every problem is listed. Existing households are left as they are.",
                )) }
            }
            section.card {
                h2 { (user.t("列（第一行为表头）", "Columns (the first row is the header)")) }
                p { code.columns { (CSV_COLUMNS.join(",")) } }
                p.muted { (user.t("可选列（没有时按空值读）：", "Optional columns (read as empty when absent): ")) code.columns { (OPTIONAL_COLUMNS.join(",")) } }
                ul.column-help {
                    li { code { "record_type" } " — street | community | grid | building | outlet | party-branch | party-group | party-member | volunteer | staff | household" }
                    li { code { "id" } " — " (user.t("记录的 UUID（住户为住户档案编号）", "the record's UUID (households: the household file id)")) }
                    li { code { "parent_id" } " — " (user.t(
                        "上级：社区填街道，网格填社区，楼栋填网格，便民网点填社区，网格党支部填网格，楼栋党小组和党员填党支部，志愿者填社区，住户填楼栋；街道和工作人员留空",
                        "the parent: community → street, grid → community, building → grid, outlet → community, party-branch → grid, party-group and party-member → party branch, volunteer → community, household → building; empty for streets and staff",
                    )) }
                    li { code { "name" } " — " (user.t("名称（住户为户主，工作人员、党员、志愿者为姓名）", "the name (households: the head; staff, party members, volunteers: the person)")) }
                    li { code { "phone" } " — " (user.t(
                        "电话：工作人员、住户、党支部可选；便民网点、党员、志愿者必填",
                        "phone: optional for staff, households and party branches; required for outlets, party members and volunteers",
                    )) }
                    li { code { "role" } " — " (user.t("仅工作人员：", "staff only: ")) "grid-worker | building-leader | volunteer | supervisor | admin" }
                    li { code { "scopes" } " — " (user.t("仅工作人员：", "staff only: ")) "grid:ID building:ID community:ID street:ID" }
                    li { code { "pledge" } " — " (user.t("仅工作人员：亮身份卡上的服务承诺，最多200字", "staff only: the service pledge on the identity card (亮身份), up to 200 characters")) }
                    li { code { "units, floors, rooms_per_floor" } " — " (user.t("仅楼栋，1–200", "buildings only, 1–200")) }
                    li { code { "unit, room" } " — " (user.t("仅住户（room 必填）", "households only (room required)")) }
                    li { code { "category" } " — " (user.t("仅便民网点：", "outlets only: ")) "housekeeping | appliance-repair | medical | elderly-care | utilities | legal | locksmith | errands" }
                    li { code { "address, hours" } " — " (user.t("仅便民网点：地址（必填，最多100字）、营业时间（最多60字）", "outlets only: address (required, up to 100), opening hours (up to 60)")) }
                    li { code { "building" } " — " (user.t("楼栋党小组：所在楼栋（必填）；党员：居住楼栋（可选）；须为该党支部网格内的楼栋", "party-group: its building (required); party-member: where they live (optional); a building of the branch's grid")) }
                    li { code { "reported_at" } " — " (user.t("仅党员：到社区报到的日期，YYYY-MM-DD", "party-member only: the day they reported to the community, YYYY-MM-DD")) }
                    li { code { "skills" } " — " (user.t("仅志愿者：最多10项技能，每项最多20字，用 ; 或 、 分隔", "volunteers only: up to 10 skills of up to 20 characters, separated by ; or 、")) }
                }
            }
        },
    )
}

/// `POST /console/admin/roster` (multipart: `csrf`, `file`): runs the importer on the file;
/// shows every problem and imports nothing, or shows the summary.
pub(super) async fn import(upload: Upload) -> Result<Response, ConsoleError> {
    let user = upload.user.clone();
    user.require_admin()?;
    let Some(file) = upload.part("file").filter(|p| !p.data.is_empty()) else {
        let problem = FormProblem::new("请选择一个 CSV 文件。", "Choose a CSV file.");
        return Ok((StatusCode::BAD_REQUEST, roster_page(&user, Some(&Outcome::Refused(problem)))).into_response());
    };
    let file_name: String =
        file.file_name.as_deref().unwrap_or("roster.csv").chars().filter(|c| !c.is_control()).take(100).collect();
    let mut data = file.data.clone();
    // Excel's "CSV UTF-8" starts with a byte order mark.
    if data.starts_with(b"\xEF\xBB\xBF") {
        data = data.slice(3..);
    }
    if let Err(error) = std::str::from_utf8(&data) {
        let problem = FormProblem::new(
            format!(
                "文件不是 UTF-8 编码（第 {} 个字节起无法识别），未导入任何内容。若用 Excel 编辑，请“另存为 → CSV UTF-8（逗号分隔）”后重新上传。",
                error.valid_up_to() + 1
            ),
            format!(
                "The file is not UTF-8 (unreadable from byte {}); nothing was imported. From Excel, use Save As → CSV UTF-8 (comma delimited) and upload again.",
                error.valid_up_to() + 1
            ),
        );
        return Ok((StatusCode::BAD_REQUEST, roster_page(&user, Some(&Outcome::Refused(problem)))).into_response());
    }
    let outcome = on_store(&user, move |s| match s.import_csv_from(&data[..], now_millis()) {
        Ok(summary) => Ok(Ok(summary)),
        Err(ImportError::Rows(problems)) => Ok(Err(problems)),
        Err(ImportError::Store(error)) => Err(error),
    })
    .await;
    let (status, outcome) = match outcome {
        Ok(Ok(summary)) => {
            tracing::info!(admin = %user.id, file = %file_name, "console: imported a roster");
            let detail = serde_json::json!({ "file": file_name, "imported": summary });
            audit(&user, SecurityEvent::new(SecurityKind::RosterImport, Origin::Console(user.id)).detail(detail)).await;
            (StatusCode::OK, Outcome::Imported { file: file_name, summary })
        }
        Ok(Err(problems)) => {
            let detail = serde_json::json!({ "file": file_name, "problems": problems.len() });
            audit(&user, SecurityEvent::new(SecurityKind::RosterImport, Origin::Console(user.id)).detail(detail)).await;
            (StatusCode::UNPROCESSABLE_ENTITY, Outcome::Problems { file: file_name, problems })
        }
        Err(error) if error.status() == StatusCode::BAD_REQUEST => {
            // A store refusal of the whole file (its message is the importer's).
            let problem = FormProblem::new(
                "文件无法导入，未导入任何内容。",
                "The file cannot be imported; nothing was imported.",
            );
            (StatusCode::BAD_REQUEST, Outcome::Refused(problem))
        }
        Err(error) => return Err(error),
    };
    Ok((status, roster_page(&user, Some(&outcome))).into_response())
}
