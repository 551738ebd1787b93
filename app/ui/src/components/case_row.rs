//! A case in a list: kind, title, place, status, responsible person, deadline.

use dioxus::prelude::*;
use gridlink_client::CaseRow;

use crate::components::badges::StatusBadge;
use crate::format;
use crate::i18n::tr;
use crate::route::Route;
use crate::state::use_ctx;

#[component]
pub fn CaseRowCard(row: CaseRow) -> Element {
    let ctx = use_ctx();
    let lang = ctx.lang();
    let t = tr(lang);
    rsx! {
        Link { class: "card", to: Route::CasePage { id: row.id },
            div { class: "row",
                div { class: "grow",
                    div { class: "muted", {row.kind.label(lang)} }
                    div { class: "title", {row.title.clone()} }
                    if !row.place.is_empty() {
                        div { class: "sub", {row.place.clone()} }
                    }
                }
                div { style: "text-align:right",
                    StatusBadge { status: row.status, lang, kind: row.kind }
                }
            }
            div { class: "badges",
                span { class: "badge", "{t.responsible} {row.responsible_name}" }
                if row.overdue {
                    span { class: "badge overdue", {t.overdue} }
                } else {
                    span { class: "badge", "{t.deadline} {format::short_time(row.deadline)}" }
                }
            }
        }
    }
}
