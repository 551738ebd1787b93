//! 事件 Cases: mine / open / overdue / all lists (a page at a time, with the total), a case
//! with its timeline and the actions the role and status allow, opening a case of any kind,
//! and the building leader's one-tap report.
//! A supervisor's list starts at the resolved cases waiting for them (待核实), and on a case
//! their verification actions (核实办结, reopen) come first.

use dioxus::prelude::*;
use gridlink_client::figures::has_supervisor_home;
use gridlink_client::{CaseDetail, CaseFilter, PAGE_ROWS, Page};
use gridlink_shared::policy::{ArrivalState, CompletionState};
use gridlink_shared::{
    ActionKind, BuildingId, CaseId, CaseKind, CaseStatus, ClaimantId, HouseholdId, Lang, OutletId, Role, UserId,
};

use crate::components::badges::StatusBadge;
use crate::components::case_row::CaseRowCard;
use crate::components::countdown::Countdown;
use crate::components::page::{Empty, ErrorState, PageTitle, SectionTitle};
use crate::format;
use crate::i18n::{tr, wish_words};
use crate::route::{KindSlug, Route};
use crate::state::use_ctx;
use crate::views::actions::{self, CaseForm};
use crate::views::households::LoadMore;
use crate::views::supervisor;

/// A segment of the case list: one of the core's filters, or the resolved cases waiting for a
/// supervisor's verification ([`CaseFilter::Resolved`] under the supervisor's own label).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Segment {
    Filter(CaseFilter),
    ToVerify,
}

#[component]
pub fn Cases() -> Element {
    let ctx = use_ctx();
    ctx.watch();
    let lang = ctx.lang();
    let t = tr(lang);
    // A supervisor is rarely the responsible person: "mine" gives way to what waits for them.
    let supervisor = has_supervisor_home(ctx.role());
    let mut filter = use_signal(|| if supervisor { Segment::ToVerify } else { Segment::Filter(CaseFilter::Mine) });
    // Rows shown; another segment starts again at the first page.
    let mut shown = use_signal(|| PAGE_ROWS);
    let chosen = match filter() {
        Segment::Filter(chosen) => chosen,
        Segment::ToVerify => CaseFilter::Resolved,
    };
    let page = ctx.client.cases_page(chosen, Page::first(shown()), ctx.minute());
    let first = if supervisor {
        (Segment::ToVerify, supervisor::words(lang).segment_to_verify)
    } else {
        (Segment::Filter(CaseFilter::Mine), t.cases_mine)
    };
    let choices = [
        first,
        (Segment::Filter(CaseFilter::Open), t.cases_open),
        (Segment::Filter(CaseFilter::Overdue), t.cases_overdue),
        (Segment::Filter(CaseFilter::All), t.filter_all),
    ];
    rsx! {
        PageTitle { title: t.cases_title.to_string(),
            Link { class: "btn primary small", id: "new-case", to: Route::NewCase {}, "+ {t.new_case}" }
        }
        div { class: "segmented",
            for (choice, label) in choices {
                button {
                    key: "{label}",
                    class: if filter() == choice { "on" } else { "" },
                    onclick: move |_| {
                        filter.set(choice);
                        shown.set(PAGE_ROWS);
                    },
                    {label}
                }
            }
        }
        match page {
            Err(error) => rsx! { ErrorState { text: ctx.words(&error) } },
            Ok(page) if page.rows.is_empty() => rsx! { Empty { text: t.no_cases.to_string() } },
            Ok(page) => rsx! {
                div { class: "muted list-count", id: "list-count", {(t.cases_shown)(page.rows.len(), page.total)} }
                for row in page.rows.iter().cloned() {
                    CaseRowCard { key: "{row.id}", row }
                }
                if page.has_more() {
                    LoadMore { shown, lang }
                }
            },
        }
    }
}

#[component]
pub fn CasePage(id: CaseId) -> Element {
    let ctx = use_ctx();
    ctx.watch();
    let lang = ctx.lang();
    let t = tr(lang);
    match ctx.client.case(id, ctx.minute()) {
        Ok(detail) => rsx! { CaseView { detail, lang } },
        Err(error) => rsx! {
            PageTitle { title: t.case_detail.to_string(), back: true }
            ErrorState { text: ctx.words(&error) }
        },
    }
}

#[component]
fn CaseView(detail: CaseDetail, lang: Lang) -> Element {
    let t = tr(lang);
    let w = wish_words(lang);
    let row = &detail.row;
    rsx! {
        PageTitle { title: t.case_detail.to_string(), back: true }
        div { class: "card",
            div { class: "row",
                div { class: "grow muted", {row.kind.label(lang)} }
                StatusBadge { status: row.status, lang, kind: row.kind }
            }
            div { class: "title", style: "margin-top:4px;font-size:19px", {row.title.clone()} }
            if !row.place.is_empty() {
                div { class: "sub", {row.place.clone()} }
            }
            if !detail.description.is_empty() {
                div { class: "sub", style: "margin-top:8px", {detail.description.clone()} }
            }
            if let Some(ArrivalState::Waiting { deadline, .. }) = detail.arrival {
                div { class: "row", style: "margin-top:10px",
                    Countdown { deadline }
                    span { class: "muted", {(t.arrive_by)(&format::short_time(deadline))} }
                }
            }
            div { class: "kv", style: "margin-top:12px",
                span { class: "k", {t.reported_by} }
                span { "{detail.reporter_name} · {format::date_time(row.reported_at)}" }
                span { class: "k", {t.responsible} }
                span { {row.responsible_name.clone()} }
                span { class: "k", {t.deadline} }
                span {
                    {format::date_time(row.deadline)}
                    if let CompletionState::Open { overdue: true, .. } = detail.completion {
                        span { class: "badge overdue", style: "margin-left:6px", {t.overdue} }
                    }
                }
                if let Some(claimant) = &detail.claimant {
                    span { class: "k", {w.claimant} }
                    span { id: "claimant", {claimant.clone()} }
                }
                if let Some(stars) = detail.satisfaction {
                    span { class: "k", {t.satisfaction} }
                    span { {"★".repeat(usize::from(stars))} }
                }
            }
        }
        CaseActions { case: row.id, kind: row.kind, status: row.status, allowed: detail.allowed_actions.clone(), lang }
        crate::views::activities::CaseServices { rows: detail.services.clone(), lang }
        SectionTitle { title: t.timeline.to_string(), count: detail.timeline.len() }
        div { class: "card",
            div { class: "timeline",
                div { class: "entry",
                    div { class: "what", {row.kind.status_label(gridlink_shared::CaseStatus::Reported, lang)} }
                    div { class: "when", "{format::date_time(row.reported_at)} · {detail.reporter_name}" }
                }
                for entry in detail.timeline.iter() {
                    div { key: "{entry.id}", class: "entry",
                        div { class: "what",
                            {entry.kind.label(lang)}
                            if let Some(status) = entry.status_after {
                                span { style: "margin-left:6px", StatusBadge { status, lang, kind: row.kind } }
                            }
                        }
                        div { class: "when", "{format::date_time(entry.at)} · {entry.by_name}" }
                        if let Some(to) = &entry.to_name {
                            div { class: "note", "→ {to}" }
                        }
                        if let Some(name) = &entry.claimant_name {
                            div { class: "note claimant", {(w.claimed_by)(name)} }
                        }
                        if let Some(name) = &entry.outlet_name {
                            div { class: "note outlet", {(w.referred_to)(name)} }
                        }
                        if let Some(stars) = entry.satisfaction {
                            div { class: "note", {"★".repeat(usize::from(stars))} }
                        }
                        if !entry.note.is_empty() {
                            div { class: "note", {entry.note.clone()} }
                        }
                    }
                }
            }
        }
    }
}

/// The buttons for what the user may do now; close asks for satisfaction, reassign for a
/// person, a micro-wish's claim for the party member or volunteer (a volunteer claims as
/// themself), a referral for the service outlet. Every action is saved on the phone at once.
/// For a supervisor, closing a resolved case is its verification (核实办结): close and reopen
/// come first and close is the main button.
#[component]
fn CaseActions(case: CaseId, kind: CaseKind, status: CaseStatus, allowed: Vec<ActionKind>, lang: Lang) -> Element {
    let ctx = use_ctx();
    let t = tr(lang);
    let w = wish_words(lang);
    let case_kind = kind;
    let supervisor = has_supervisor_home(ctx.role());
    let mut allowed = allowed;
    if supervisor {
        allowed.sort_by_key(|kind| !matches!(kind, ActionKind::Close | ActionKind::Reopen));
    }
    let verifies = |kind: ActionKind| supervisor && kind == ActionKind::Close && status == CaseStatus::Resolved;
    let mut note = use_signal(String::new);
    let mut satisfaction = use_signal(|| None::<u8>);
    let mut to = use_signal(|| None::<UserId>);
    let mut claimant = use_signal(|| None::<ClaimantId>);
    let mut outlet = use_signal(|| None::<OutletId>);
    let me = ctx.identity().filter(|i| i.role == Role::Volunteer).map(|i| ClaimantId::Staff(i.user));
    let party = if allowed.contains(&ActionKind::Claim) && me.is_none() {
        ctx.client.party_directory().unwrap_or_default()
    } else {
        Default::default()
    };
    // The outlets of the request's own category first.
    let mut outlets =
        if allowed.contains(&ActionKind::Refer) { ctx.client.services().unwrap_or_default() } else { Vec::new() };
    outlets.sort_by_key(|g| CaseKind::Help(g.category) != case_kind);
    let mut error = use_signal(|| None::<String>);
    let mut taken = use_signal(|| 0u32);
    let staff = if allowed.contains(&ActionKind::Reassign) {
        ctx.client.case_handlers().unwrap_or_default()
    } else {
        Vec::new()
    };
    let act = {
        let ctx = ctx.clone();
        move |kind: ActionKind| {
            let stars = if kind == ActionKind::Close { satisfaction() } else { None };
            let person = if kind == ActionKind::Reassign { to() } else { None };
            let now = ctx.now_untracked();
            let done = match (kind, me.or(claimant()), outlet()) {
                (ActionKind::Claim, Some(who), _) => actions::claim_wish(&ctx.client, case, who, &note(), now),
                (ActionKind::Refer, _, Some(place)) => actions::refer_to_outlet(&ctx.client, case, place, &note(), now),
                _ => actions::act_on_case(&ctx.client, case, kind, &note(), stars, person, now),
            };
            match done {
                Ok(()) => {
                    note.set(String::new());
                    taken += 1;
                    error.set(None);
                    ctx.flash(Route::CasePage { id: case }, tr(ctx.lang()).action_saved);
                    ctx.saved();
                }
                Err(e) => error.set(Some(ctx.words(&e))),
            }
        }
    };
    if allowed.is_empty() {
        return rsx! { div { class: "card muted", {t.no_actions} } };
    }
    rsx! {
        div { class: "card case-actions",
            if let Some(message) = error() {
                div { class: "form-error", role: "alert", {message} }
            }
            div { class: "field",
                label { r#for: "action-note", {t.action_note} }
                // Keyed by the number of actions taken, so the field empties after each one.
                for taken in [taken()] {
                    input { key: "{taken}", id: "action-note", oninput: move |e| note.set(e.value()) }
                }
            }
            if allowed.contains(&ActionKind::Close) {
                div { class: "field",
                    span { class: "label", {t.satisfaction} }
                    div { class: "stars",
                        for n in 1..=5u8 {
                            button {
                                key: "{n}",
                                class: if satisfaction().is_some_and(|s| s >= n) { "on" } else { "" },
                                onclick: move |_| satisfaction.set(Some(n)),
                                "★"
                            }
                        }
                    }
                }
            }
            if !staff.is_empty() {
                div { class: "field",
                    label { {t.reassign_to} }
                    select {
                        onchange: move |e| to.set(e.value().parse().ok()),
                        option { value: "", {t.none} }
                        for person in staff.iter() {
                            option { key: "{person.id}", value: "{person.id}", "{person.name} · {person.role.label(lang)}" }
                        }
                    }
                }
            }
            if allowed.contains(&ActionKind::Claim) {
                div { class: "field",
                    label { r#for: "claimant", {w.claimant} }
                    if me.is_some() {
                        div { id: "claimant", class: "sub", {w.claim_myself} }
                    } else if party.is_empty() {
                        div { class: "sub muted", {w.no_claimants} }
                    } else {
                        select { id: "claimant",
                            onchange: move |e| claimant.set(e.value().parse().ok()),
                            option { value: "", {w.choose_claimant} }
                            for branch in party.branches.iter() {
                                optgroup { key: "{branch.branch.id}", label: "{w.party_members} · {branch.branch.name}",
                                    for (member, building) in branch.members.iter() {
                                        option { key: "{member.id}", value: "{ClaimantId::PartyMember(member.id)}", "{member.name} · {building}" }
                                    }
                                }
                            }
                            if !party.volunteers.is_empty() {
                                optgroup { label: w.volunteers,
                                    for volunteer in party.volunteers.iter() {
                                        option { key: "{volunteer.id}", value: "{ClaimantId::Volunteer(volunteer.id)}", "{volunteer.name} · {volunteer.skills.join(\"、\")}" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if !outlets.is_empty() {
                div { class: "field",
                    label { r#for: "outlet", {w.refer_to} }
                    select { id: "outlet",
                        onchange: move |e| outlet.set(e.value().parse().ok()),
                        option { value: "", {w.choose_outlet} }
                        for group in outlets.iter() {
                            optgroup { key: "{group.category.code()}", label: group.category.label(lang),
                                for place in group.outlets.iter() {
                                    option { key: "{place.id}", value: "{place.id}", "{place.name} · {place.phone}" }
                                }
                            }
                        }
                    }
                }
            }
            div { class: "action-grid",
                for kind in allowed.iter().copied() {
                    button {
                        key: "{kind.code()}",
                        id: "act-{kind.code()}",
                        class: if matches!(kind, ActionKind::Arrive | ActionKind::Resolve | ActionKind::Accept | ActionKind::Claim | ActionKind::Fulfil) || verifies(kind) { "btn primary" } else { "btn" },
                        disabled: (kind == ActionKind::Reassign && to().is_none())
                            || (kind == ActionKind::Claim && me.is_none() && claimant().is_none())
                            || (kind == ActionKind::Refer && outlet().is_none()),
                        onclick: {
                            let mut act = act.clone();
                            move |_| act(kind)
                        },
                        if verifies(kind) { {supervisor::words(lang).verify_close} } else { {kind.label(lang)} }
                    }
                }
            }
        }
    }
}

/// The open-a-case form; `kind` and `household` may be preset.
#[component]
fn CaseFormView(
    kind: Option<CaseKind>,
    household: Option<HouseholdId>,
    building: Option<BuildingId>,
    title: String,
) -> Element {
    let ctx = use_ctx();
    let lang = ctx.lang();
    let t = tr(lang);
    let preset_kind = kind;
    let mut kind = use_signal(|| preset_kind.unwrap_or(CaseKind::Opinion));
    let mut case_title = use_signal(|| preset_kind.map(|k| k.label(lang)).unwrap_or_default());
    let mut note = use_signal(String::new);
    let mut error = use_signal(|| None::<String>);
    let place = household.and_then(|id| ctx.client.household(id, ctx.now_untracked()).ok()).map(|d| d.address);
    let submit = {
        let ctx = ctx.clone();
        move |_| {
            let form = CaseForm { kind: kind(), household, building, title: case_title(), note: note() };
            match actions::open_case(&ctx.client, &form, ctx.now_untracked()) {
                Ok(id) => {
                    ctx.saved();
                    ctx.flash(Route::CasePage { id }, tr(ctx.lang()).case_saved);
                    navigator().replace(Route::CasePage { id });
                }
                Err(e) => error.set(Some(ctx.words(&e))),
            }
        }
    };
    rsx! {
        PageTitle { title, back: true }
        if let Some(address) = place {
            div { class: "card", div { class: "sub", {address} } }
        }
        if let Some(message) = error() {
            div { class: "form-error", role: "alert", id: "case-error", {message} }
        }
        if preset_kind.is_none() {
            div { class: "field",
                label { r#for: "case-kind", {t.kind} }
                select {
                    id: "case-kind",
                    value: kind().to_string(),
                    onchange: move |e| if let Ok(k) = e.value().parse() { kind.set(k) },
                    for each in CaseKind::all() {
                        option { key: "{each}", value: "{each}", selected: each == kind(), {each.label(lang)} }
                    }
                }
            }
        }
        div { class: "field",
            label { r#for: "case-title", {t.case_title} }
            input { id: "case-title", initial_value: case_title(), oninput: move |e| case_title.set(e.value()) }
        }
        div { class: "field",
            label { r#for: "case-note", {t.description} }
            textarea { id: "case-note", initial_value: note(), oninput: move |e| note.set(e.value()) }
        }
        div { class: "sticky-bottom",
            button { class: "btn primary block big", id: "submit-case", onclick: submit, {t.submit} }
        }
    }
}

/// Open a case of any kind, not tied to a household.
#[component]
pub fn NewCase() -> Element {
    let ctx = use_ctx();
    let t = tr(ctx.lang());
    rsx! { CaseFormView { kind: None, household: None, building: None, title: t.new_case.to_string() } }
}

/// Open a case about one household.
#[component]
pub fn NewHouseholdCase(id: HouseholdId) -> Element {
    let ctx = use_ctx();
    let t = tr(ctx.lang());
    rsx! { CaseFormView { kind: None, household: Some(id), building: None, title: t.open_case.to_string() } }
}

/// A building leader's report of a preset kind, placed in their (first) building.
#[component]
pub fn Report(kind: KindSlug) -> Element {
    let ctx = use_ctx();
    let lang = ctx.lang();
    let t = tr(lang);
    let building = ctx.client.buildings().ok().and_then(|b| b.first().map(|b| b.id));
    rsx! {
        CaseFormView {
            kind: Some(kind.0),
            household: None,
            building,
            title: (t.report_title)(&kind.0.label(lang)),
        }
    }
}
