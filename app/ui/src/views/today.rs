//! 今日 Today: due and overdue must-visits with their reasons, must-arrive events with a live
//! countdown, my open cases, one tap to record a visit. Building leaders get their report
//! home here instead, supervisors their figures and lists ([`SupervisorHome`]).

use dioxus::prelude::*;
use gridlink_client::{DueVisitRow, MustArriveRow, TodayView};
use gridlink_shared::policy::ArrivalState;
use gridlink_shared::{Lang, Role};

use crate::components::badges::TagBadge;
use crate::components::case_row::CaseRowCard;
use crate::components::countdown::Countdown;
use crate::components::page::{Empty, ErrorState, PageTitle, SectionTitle};
use crate::format;
use crate::i18n::tr;
use crate::route::Route;
use crate::state::use_ctx;
use crate::views::conflicts::ConflictList;
use crate::views::leader::LeaderHome;
use crate::views::supervisor::SupervisorHome;

#[component]
pub fn Today() -> Element {
    let ctx = use_ctx();
    if ctx.role() == Role::BuildingLeader {
        return rsx! { LeaderHome {} };
    }
    if gridlink_client::figures::has_supervisor_home(ctx.role()) {
        return rsx! { SupervisorHome {} };
    }
    ctx.watch();
    let lang = ctx.lang();
    match ctx.client.today(ctx.minute()) {
        Ok(view) => rsx! { TodayScreen { view, lang } },
        Err(error) => rsx! { ErrorState { text: ctx.words(&error) } },
    }
}

#[component]
fn TodayScreen(view: TodayView, lang: Lang) -> Element {
    let t = tr(lang);
    rsx! {
        PageTitle { title: t.today_title.to_string(),
            span { class: "muted", {view.date.to_string()} }
        }
        ConflictList { lang }
        SectionTitle { title: t.must_arrive_open.to_string(), count: view.must_arrive.len() }
        if view.must_arrive.is_empty() {
            Empty { text: t.no_must_arrive.to_string() }
        }
        for row in view.must_arrive.iter().cloned() {
            MustArriveCard { key: "{row.case}", row, lang }
        }
        SectionTitle { title: t.must_visit_due.to_string(), count: view.due_visits.len() }
        if view.due_visits.is_empty() {
            Empty { text: t.nothing_due.to_string() }
        }
        for row in view.due_visits.iter().cloned() {
            DueVisitCard { key: "{row.household}-{row.tag.code()}", row, lang }
        }
        SectionTitle { title: t.my_open_cases.to_string(), count: view.my_cases.len() }
        if view.my_cases.is_empty() {
            Empty { text: t.no_open_cases.to_string() }
        }
        for row in view.my_cases.iter().cloned() {
            CaseRowCard { key: "{row.id}", row }
        }
    }
}

/// A must-visit household: who, where, which tag and how late, and the visit button.
#[component]
fn DueVisitCard(row: DueVisitRow, lang: Lang) -> Element {
    let t = tr(lang);
    let reason = format!("{} · {}", row.tag.label(lang), format::due_phrase(lang, &row.state));
    let last = match row.last_met {
        Some(at) => (t.last_met)(&format::date(at)),
        None => t.never_met.to_string(),
    };
    rsx! {
        div { class: "card due-visit",
            div { class: "row",
                Link { class: "grow", style: "text-decoration:none;color:inherit", to: Route::HouseholdPage { id: row.household },
                    div { class: "title", {row.head.clone()} }
                    div { class: "sub", {row.address.clone()} }
                    div { class: "reason {format::due_class(&row.state)}", {reason} }
                    div { class: "muted", {last} }
                }
                Link { class: "visit-btn", to: Route::RecordVisit { id: row.household }, {t.visit} }
            }
            div { class: "badges", TagBadge { tag: row.tag, lang } }
        }
    }
}

/// A must-arrive event waiting for someone on site, with the live countdown.
#[component]
fn MustArriveCard(row: MustArriveRow, lang: Lang) -> Element {
    let t = tr(lang);
    rsx! {
        Link { class: "card must-arrive", to: Route::CasePage { id: row.case },
            div { class: "row",
                div { class: "grow",
                    div { class: "muted", {row.kind.label(lang)} }
                    div { class: "title", {row.title.clone()} }
                    if let Some(address) = &row.address {
                        div { class: "sub", {address.clone()} }
                    }
                }
            }
            div { class: "row", style: "margin-top:8px",
                match row.state {
                    ArrivalState::Waiting { deadline, .. } => rsx! { Countdown { deadline } },
                    ArrivalState::Arrived { .. } => rsx! {},
                }
                span { class: "muted", {(t.arrive_by)(&format::short_time(row.deadline))} }
            }
        }
    }
}
