//! The building leader's home: big buttons to report in the four roles and the four
//! must-arrive events, and the list of reports with their status.

use dioxus::prelude::*;
use gridlink_client::CaseFilter;
use gridlink_shared::{CaseKind, LeaderRole, MustArriveKind};

use crate::components::case_row::CaseRowCard;
use crate::components::page::{Empty, ErrorState, PageTitle, SectionTitle};
use crate::i18n::tr;
use crate::route::{KindSlug, Route};
use crate::state::use_ctx;

/// A short glyph for each report button.
fn glyph(kind: CaseKind) -> &'static str {
    match kind {
        CaseKind::Report(LeaderRole::Sanitation) => "卫",
        CaseKind::Report(LeaderRole::Publicity) => "宣",
        CaseKind::Report(LeaderRole::Information) => "信",
        CaseKind::Report(LeaderRole::Mediation) => "调",
        CaseKind::MustArrive(MustArriveKind::Emergency) => "急",
        CaseKind::MustArrive(MustArriveKind::Dispute) => "纠",
        CaseKind::MustArrive(MustArriveKind::Discontent) => "诉",
        CaseKind::MustArrive(MustArriveKind::WeddingFuneral) => "礼",
        _ => "报",
    }
}

#[component]
pub fn LeaderHome() -> Element {
    let ctx = use_ctx();
    ctx.watch();
    let lang = ctx.lang();
    let t = tr(lang);
    let now = ctx.minute();
    let me = ctx.identity().map(|i| i.user);
    // The core lists cases by scope; a leader's own reports are the ones they reported. (A
    // building holds few cases, so reading each one's reporter is cheap.)
    let reports = ctx.client.cases(CaseFilter::All, now).map(|rows| {
        rows.into_iter()
            .filter(|row| ctx.client.case(row.id, now).map(|detail| Some(detail.reporter) == me).unwrap_or(false))
            .collect::<Vec<_>>()
    });
    let roles = LeaderRole::ALL.iter().map(|r| CaseKind::Report(*r));
    let events = MustArriveKind::ALL.iter().map(|k| CaseKind::MustArrive(*k));
    let nav = navigator();
    rsx! {
        PageTitle { title: t.leader_title.to_string() }
        SectionTitle { title: t.leader_roles.to_string() }
        div { class: "report-grid",
            for kind in roles {
                button {
                    key: "{kind}",
                    onclick: move |_| { nav.push(Route::Report { kind: KindSlug(kind) }); },
                    span { class: "glyph", {glyph(kind)} }
                    span { {match kind { CaseKind::Report(r) => r.label(lang), _ => "" }} }
                }
            }
        }
        SectionTitle { title: t.leader_events.to_string() }
        div { class: "report-grid urgent",
            for kind in events {
                button {
                    key: "{kind}",
                    onclick: move |_| { nav.push(Route::Report { kind: KindSlug(kind) }); },
                    span { class: "glyph", {glyph(kind)} }
                    span { {match kind { CaseKind::MustArrive(k) => k.label(lang), _ => "" }} }
                }
            }
        }
        match reports {
            Ok(rows) => rsx! {
                SectionTitle { title: t.my_reports.to_string(), count: rows.len() }
                if rows.is_empty() {
                    Empty { text: t.no_reports.to_string() }
                }
                for row in rows {
                    CaseRowCard { key: "{row.id}", row }
                }
            },
            Err(error) => rsx! { ErrorState { text: ctx.words(&error) } },
        }
    }
}
