//! The e-link's pages: phone-sized, Chinese, no script, no external resource (the style is
//! inline; the security headers allow nothing else). maud escapes every value.

use chrono::TimeZone;
use gridlink_shared::codes::{CaseStatus, ServiceCategory};
use gridlink_shared::time::Millis;
use maud::{DOCTYPE, Markup, html};

use super::{DESCRIPTION_MAX, FieldErrors, NAME_MAX, ROOM_MAX, Typed};
use crate::store::elink::RequestStatus;

const STYLE: &str = "
body{margin:0;font:16px/1.5 system-ui,-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;background:#f4f6f8;color:#1c2430}
header{background:#c0392b;color:#fff;padding:14px 16px}
header h1{margin:0;font-size:20px}
header p{margin:2px 0 0;font-size:14px;opacity:.9}
main{padding:12px 16px 32px;max-width:560px;margin:0 auto}
label{display:block;font-weight:600;margin:14px 0 4px}
input,select,textarea{box-sizing:border-box;width:100%;font:inherit;padding:10px;border:1px solid #b8c2cc;border-radius:6px;background:#fff}
textarea{min-height:110px}
.bad input,.bad select,.bad textarea{border-color:#c0392b;background:#fff6f5}
.error{color:#c0392b;font-size:14px;margin:4px 0 0}
.alert{background:#fdecea;color:#8e2a1f;padding:10px 12px;border-radius:6px;margin:12px 0}
button{margin-top:20px;width:100%;padding:12px;font:inherit;font-weight:700;color:#fff;background:#c0392b;border:0;border-radius:6px}
.card{background:#fff;border-radius:8px;padding:16px;margin:12px 0;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.ref{font-size:30px;font-weight:700;letter-spacing:2px;font-family:ui-monospace,monospace}
.steps{list-style:none;padding:0;margin:8px 0}
.steps li{padding:6px 0 6px 28px;position:relative;color:#8a96a3}
.steps li::before{content:'○';position:absolute;left:4px}
.steps li.done{color:#1c2430}
.steps li.done::before{content:'●';color:#27ae60}
.hint{color:#5b6673;font-size:14px}
a{color:#1f5fa8}
";

fn page(title: &str, building_name: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · 社区网格e通" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "社区网格e通" }
                    @if let Some(name) = building_name { p { (name) " · 居民求助" } }
                }
                main { (body) }
            }
        }
    }
}

/// A page with one message (errors, limits).
pub(super) fn message(title: &str, text: &str) -> Markup {
    page(
        title,
        None,
        html! {
            div.card { h2 { (title) } p { (text) } }
        },
    )
}

/// `ABCD2345` as `ABCD-2345`.
fn spaced(reference: &str) -> String {
    let (head, tail) = reference.split_at(reference.len() / 2);
    format!("{head}-{tail}")
}

fn field_error(error: Option<&'static str>) -> Markup {
    html! { @if let Some(error) = error { p.error role="alert" { (error) } } }
}

pub(super) fn form(token: &str, building_name: &str, typed: &Typed, errors: &FieldErrors, nonce: &str) -> Markup {
    let class = |error: Option<&'static str>| if error.is_some() { "field bad" } else { "field" };
    page(
        "求助",
        Some(building_name),
        html! {
            p.hint { "填写后，本网格的网格员会收到您的求助并与您联系（首问负责）。紧急情况请直接拨打110、120或119。" }
            @if let Some(problem) = errors.form { div.alert role="alert" { (problem) } }
            @if errors.category.is_some() || errors.description.is_some() || errors.room.is_some()
                || errors.name.is_some() || errors.phone.is_some() {
                div.alert role="alert" { "有几项需要修改，请看标红的地方。" }
            }
            form method="post" action={ "/e/" (token) } {
                input type="hidden" name="nonce" value=(nonce);
                div class=(class(errors.category)) {
                    label for="category" { "服务类别" }
                    select id="category" name="category" {
                        option value="" { "请选择" }
                        @for category in ServiceCategory::ALL {
                            option value=(category.code()) selected[typed.category == category.code()] { (category.zh()) }
                        }
                    }
                    (field_error(errors.category))
                }
                div class=(class(errors.description)) {
                    label for="description" { "需要什么帮助" }
                    textarea id="description" name="description" maxlength=(DESCRIPTION_MAX)
                        placeholder="例如：厨房水管漏水，需要上门维修" { (typed.description) }
                    (field_error(errors.description))
                }
                div class=(class(errors.room)) {
                    label for="room" { "房号" }
                    input id="room" name="room" maxlength=(ROOM_MAX) placeholder="例如：2单元301" value=(typed.room);
                    (field_error(errors.room))
                }
                div class=(class(errors.name)) {
                    label for="name" { "联系人" }
                    input id="name" name="name" maxlength=(NAME_MAX) autocomplete="name" value=(typed.name);
                    (field_error(errors.name))
                }
                div class=(class(errors.phone)) {
                    label for="phone" { "联系电话" }
                    input id="phone" name="phone" type="tel" inputmode="tel" maxlength="20" autocomplete="tel" value=(typed.phone);
                    (field_error(errors.phone))
                }
                button type="submit" { "提交求助" }
            }
            p.hint { a href={ "/e/" (token) "/status" } { "查询已提交求助的进度" } }
        },
    )
}

pub(super) fn receipt(token: &str, building_name: &str, reference: &str, category: ServiceCategory) -> Markup {
    page(
        "已提交",
        Some(building_name),
        html! {
            div.card {
                h2 { "求助已提交" }
                p { "服务类别：" (category.zh()) }
                p { "您的受理编号：" }
                p.ref id="reference" { (spaced(reference)) }
                p.hint { "请记下受理编号。网格员会尽快与您联系；凭受理编号和您填写的电话可以查询进度。" }
            }
            p { a href={ "/e/" (token) "/status" } { "查询进度" } }
        },
    )
}

pub(super) fn lookup(token: &str, building_name: &str, reference: &str, phone: &str, error: Option<&str>) -> Markup {
    page(
        "查询进度",
        Some(building_name),
        html! {
            @if let Some(error) = error { div.alert role="alert" { (error) } }
            form method="post" action={ "/e/" (token) "/status" } {
                label for="reference" { "受理编号" }
                input id="reference" name="reference" maxlength="20" placeholder="例如：K7M3-9QXA" value=(reference);
                label for="phone" { "提交时填写的电话" }
                input id="phone" name="phone" type="tel" inputmode="tel" maxlength="20" value=(phone);
                button type="submit" { "查询" }
            }
            p.hint { a href={ "/e/" (token) } { "提交新的求助" } }
        },
    )
}

fn beijing_time(at: Millis) -> String {
    chrono_tz::Asia::Shanghai
        .timestamp_millis_opt(at)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

pub(super) fn status(token: &str, building_name: &str, status: &RequestStatus) -> Markup {
    // Which of the three steps the resident sees are reached.
    let (accepted, in_progress, done) = match status.status {
        CaseStatus::Reported => (false, false, false),
        CaseStatus::Accepted => (true, false, false),
        CaseStatus::OnSite | CaseStatus::InProgress => (true, true, false),
        CaseStatus::Resolved | CaseStatus::Closed => (true, true, true),
    };
    let now_text = match (accepted, in_progress, done) {
        (_, _, true) => "已办结",
        (_, true, _) => "处理中",
        (true, _, _) => "已受理",
        _ => "已提交，等待网格员受理",
    };
    page(
        "查询进度",
        Some(building_name),
        html! {
            div.card {
                p { "受理编号" }
                p.ref { (spaced(&status.reference)) }
                @if let Some(category) = status.category { p { "服务类别：" (category.zh()) } }
                p { "当前进度：" strong id="status" { (now_text) } }
                ol.steps {
                    li.done { "已提交 " span.hint { (beijing_time(status.filed_at)) } }
                    li class=(if accepted { "done" } else { "" }) { "已受理" }
                    li class=(if in_progress { "done" } else { "" }) { "处理中" }
                    li class=(if done { "done" } else { "" }) { "已办结" }
                }
                p.hint { "最近更新：" (beijing_time(status.updated_at)) }
            }
            p { a href={ "/e/" (token) } { "提交新的求助" } }
        },
    )
}
