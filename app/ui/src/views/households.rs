//! 住户 Households: the list by building and unit with tag badges, search and filters, a page
//! at a time with the total and "加载更多" ([`LoadMore`], shared with the case list); the
//! household file (一户一档); recording a visit; editing the file; filing a new arrival and
//! editing a resident (`new_arrival`).
//!
//! Only the roles the validator lets edit household files (grid workers and admins) see the
//! buttons that edit one; a supervisor reads the same file without them, except the
//! 待确认的修改 section's picks ([`crate::views::conflicts`]), which the validator allows.

mod new_arrival;

pub use new_arrival::{EditResident, HouseholdDraft, NewArrival, ResidentDraft, draft_problems, file_draft};

use dioxus::prelude::*;
use gridlink_client::{HouseholdDetail, HouseholdEdit, HouseholdFilter, HouseholdRow, PAGE_ROWS, Page};
use gridlink_shared::time::{Millis, local_date, start_of_local_day};
use gridlink_shared::{HelpNeed, HouseholdId, HouseholdStatus, Lang, MustVisitTag, ResidentId, Role, VisitOutcome};

use crate::components::badges::{NeedBadge, TagBadge};
use crate::components::case_row::CaseRowCard;
use crate::components::icons::{Icon, SEARCH};
use crate::components::page::{Empty, ErrorState, PageTitle, SectionTitle};
use crate::format;
use crate::i18n::tr;
use crate::route::Route;
use crate::state::{Ctx, use_ctx};
use crate::views::actions::{self, VisitForm};
use crate::views::conflicts::ConflictReview;

/// Whether the enrolled user may edit household files: the validator's rule
/// (`authorize_household_edit`), so no button leads to a change the server would refuse.
pub fn may_edit_households(role: Role) -> bool {
    matches!(role, Role::GridWorker | Role::Admin)
}

fn may_edit(ctx: &Ctx) -> bool {
    may_edit_households(ctx.role())
}

/// The list: search box, tag and overdue filters, households grouped by building and unit,
/// read a page at a time: the first [`PAGE_ROWS`], then as many more per "加载更多", with the
/// total the filter matches (a street supervisor's phone holds 25,000 households).
#[component]
pub fn Households() -> Element {
    let ctx = use_ctx();
    ctx.watch();
    let lang = ctx.lang();
    let t = tr(lang);
    let mut search = use_signal(String::new);
    let mut due_only = use_signal(|| false);
    let mut tag = use_signal(|| None::<MustVisitTag>);
    // Rows shown; a changed filter starts again at the first page.
    let mut shown = use_signal(|| PAGE_ROWS);
    let filter = HouseholdFilter {
        search: Some(search()).filter(|s| !s.trim().is_empty()),
        due_only: due_only(),
        tag: tag(),
        building: None,
    };
    let filtering = filter != HouseholdFilter::default();
    let page = ctx.client.households_page(&filter, Page::first(shown()), ctx.minute());
    let editor = may_edit(&ctx);
    rsx! {
        PageTitle { title: t.households_title.to_string() }
        if editor {
            Link {
                class: "btn block",
                id: "new-arrival",
                to: Route::NewArrival { building: String::new(), unit: String::new(), room: String::new() },
                {t.new_arrival_button}
            }
        }
        div { class: "search",
            span { class: "icon", Icon { svg: SEARCH } }
            input {
                id: "household-search",
                r#type: "search",
                placeholder: t.search_placeholder,
                initial_value: search(),
                oninput: move |e| {
                    search.set(e.value());
                    shown.set(PAGE_ROWS);
                },
            }
        }
        div { class: "chips",
            button {
                class: if !due_only() && tag().is_none() { "chip on" } else { "chip" },
                onclick: move |_| {
                    due_only.set(false);
                    tag.set(None);
                    shown.set(PAGE_ROWS);
                },
                {t.filter_all}
            }
            button {
                class: if due_only() { "chip on" } else { "chip" },
                id: "filter-overdue",
                onclick: move |_| {
                    due_only.set(!due_only());
                    shown.set(PAGE_ROWS);
                },
                {t.filter_overdue}
            }
            for each in MustVisitTag::ALL.iter().copied() {
                button {
                    key: "{each.code()}",
                    class: if tag() == Some(each) { "chip on" } else { "chip" },
                    onclick: move |_| {
                        tag.set(if tag() == Some(each) { None } else { Some(each) });
                        shown.set(PAGE_ROWS);
                    },
                    {each.label(lang)}
                }
            }
        }
        match page {
            Err(error) => rsx! { ErrorState { text: ctx.words(&error) } },
            Ok(page) if page.rows.is_empty() => rsx! {
                Empty { text: if filtering { t.no_match.to_string() } else { t.no_households.to_string() } }
            },
            Ok(page) => rsx! {
                div { class: "muted list-count", id: "list-count", {(t.households_shown)(page.rows.len(), page.total)} }
                HouseholdGroups { rows: page.rows.clone(), lang }
                if page.has_more() {
                    LoadMore { shown, lang }
                }
            },
        }
    }
}

/// "加载更多": one more page of a list whose length is in `shown`.
#[component]
pub fn LoadMore(shown: Signal<usize>, lang: Lang) -> Element {
    // A dynamic id, so tests find the button among the page's listeners.
    let id = "load-more";
    rsx! {
        button { class: "btn block", id, onclick: move |_| shown += PAGE_ROWS, {tr(lang).load_more} }
    }
}

/// Rows under "building unit" headings, in the order the core sorted them.
#[component]
fn HouseholdGroups(rows: Vec<HouseholdRow>, lang: Lang) -> Element {
    let t = tr(lang);
    let mut groups: Vec<(String, Vec<HouseholdRow>)> = Vec::new();
    for row in rows {
        let heading = (t.unit_label)(&row.building_name, &row.unit);
        match groups.last_mut() {
            Some((last, members)) if *last == heading => members.push(row),
            _ => groups.push((heading, vec![row])),
        }
    }
    rsx! {
        for (heading, members) in groups {
            div { key: "{heading}",
                div { class: "group-title", {heading.clone()} }
                for row in members {
                    HouseholdRowCard { key: "{row.id}", row, lang }
                }
            }
        }
    }
}

#[component]
fn HouseholdRowCard(row: HouseholdRow, lang: Lang) -> Element {
    let t = tr(lang);
    rsx! {
        Link { class: "card list-item household-row", to: Route::HouseholdPage { id: row.id },
            div { class: "room", "{row.room}" small { {t.room_suffix} } }
            div { class: "grow",
                div { class: "title", {row.head.clone()}
                    if row.moved_out {
                        span { class: "badge", style: "margin-left:6px", {t.moved_out} }
                    }
                }
                div { class: "sub", {row.phone.clone()} }
                if let Some(state) = &row.next_due_state {
                    if !matches!(state, gridlink_shared::policy::DueState::NotDue { .. }) {
                        div { class: "reason {format::due_class(state)}", {format::due_phrase(lang, state)} }
                    }
                }
                if !row.tags.is_empty() {
                    div { class: "badges",
                        for tag in row.tags.iter().copied() {
                            TagBadge { key: "{tag.code()}", tag, lang }
                        }
                    }
                }
            }
        }
    }
}

/// The household file.
#[component]
pub fn HouseholdPage(id: HouseholdId) -> Element {
    let ctx = use_ctx();
    ctx.watch();
    let lang = ctx.lang();
    let t = tr(lang);
    match ctx.client.household(id, ctx.minute()) {
        Ok(detail) => rsx! { HouseholdFileView { detail, lang } },
        Err(error) => rsx! {
            PageTitle { title: t.household_file.to_string(), back: true }
            ErrorState { text: ctx.words(&error) }
        },
    }
}

#[component]
fn HouseholdFileView(detail: HouseholdDetail, lang: Lang) -> Element {
    let t = tr(lang);
    let id = detail.id;
    let ctx = use_ctx();
    let now_year = format::year_of(ctx.now_untracked());
    let editor = may_edit(&ctx);
    rsx! {
        PageTitle { title: detail.head.clone(), back: true }
        div { class: "card",
            div { class: "kv",
                span { class: "k", {t.address} }
                span { {detail.address.clone()} }
                span { class: "k", {t.head} }
                span { {detail.head.clone()} }
                span { class: "k", {t.phone} }
                span { {detail.phone.clone()} }
                if detail.status == HouseholdStatus::MovedOut {
                    span { class: "k", {t.moved_out} }
                    span { {detail.moved_out_on.map(|d| d.to_string()).unwrap_or_default()} }
                }
                if !detail.notes.is_empty() {
                    span { class: "k", {t.household_notes} }
                    span { {detail.notes.clone()} }
                }
            }
            if !detail.dues.is_empty() {
                for due in detail.dues.iter().filter(|d| d.is_actionable()) {
                    div { key: "{due.tag.code()}", class: "reason {format::due_class(&due.state)}",
                        "{due.tag.label(lang)} · {format::due_phrase(lang, &due.state)}"
                    }
                }
            }
        }
        ConflictReview { household: id, lang }
        if editor {
            div { class: "action-grid",
                Link { class: "btn primary big", id: "record-visit", to: Route::RecordVisit { id }, {t.record_visit} }
                Link { class: "btn big", to: Route::NewHouseholdCase { id }, {t.open_case} }
            }
        } else {
            div { class: "notice", id: "read-only", {t.read_only_file} }
            div { class: "actions",
                Link { class: "btn big", to: Route::NewHouseholdCase { id }, {t.open_case} }
            }
        }

        SectionTitle { title: t.residents.to_string(), count: detail.residents.len() }
        div { class: "card",
            for resident in detail.residents.iter() {
                div { key: "{resident.id}", class: if resident.departure.is_some() { "visit resident departed" } else { "visit resident" },
                    div { class: "row",
                        strong { class: "grow", {resident.name.clone()} }
                        if editor {
                            Link { class: "btn small", to: Route::EditResident { id, resident: resident.id }, {t.edit} }
                        }
                    }
                    div { class: "muted", "{resident.relation} · {resident.sex.label(lang)} · {resident.birth_year} ({now_year - i32::from(resident.birth_year)})" }
                    if let Some(departure) = &resident.departure {
                        div { class: "reason departure", "{departure.kind.label(lang)} · {departure.on}" }
                    }
                    div { class: "sub", "{t.id_number} {resident.id_number_masked}" }
                    if !resident.phone.is_empty() {
                        div { class: "sub", "{t.phone} {resident.phone}" }
                    }
                    if !resident.flags.is_empty() {
                        div { class: "badges",
                            for flag in resident.flags.iter() {
                                span { key: "{flag.code()}", class: "badge", {flag.label(lang)} }
                            }
                        }
                    }
                }
            }
        }

        SectionTitle { title: t.tags.to_string() }
        TagEditor { household: id, tags: detail.tags.iter().map(|tag| (tag.tag, tag.since.to_string())).collect::<Vec<_>>(), lang, editor }

        SectionTitle { title: t.needs.to_string() }
        NeedEditor { household: id, needs: detail.needs.iter().map(|n| n.need).collect::<Vec<_>>(), lang, editor }

        if !detail.open_cases.is_empty() {
            SectionTitle { title: t.open_cases.to_string(), count: detail.open_cases.len() }
            for row in detail.open_cases.iter().cloned() {
                CaseRowCard { key: "{row.id}", row }
            }
        }

        SectionTitle { title: t.visit_history.to_string(), count: detail.visits.len() }
        div { class: "card visits",
            if detail.visits.is_empty() {
                div { class: "muted", {t.no_visits} }
            }
            for visit in detail.visits.iter() {
                div { key: "{visit.id}", class: "visit",
                    div { class: "row",
                        strong { {visit.outcome.label(lang)} }
                        span { class: "muted grow", style: "text-align:right", {format::date_time(visit.at)} }
                    }
                    if !visit.notes.is_empty() {
                        div { class: "sub", {visit.notes.clone()} }
                    }
                    div { class: "muted", {(t.visit_by)(&visit.visitor_name)}
                        if !visit.residents_present.is_empty() {
                            " · {visit.residents_present.join(\"、\")}"
                        }
                        if let Some(date) = visit.follow_up {
                            " · {t.follow_up} {date}"
                        }
                    }
                    if !visit.needs_found.is_empty() {
                        div { class: "badges",
                            for need in visit.needs_found.iter().copied() {
                                NeedBadge { key: "{need.code()}", need, lang }
                            }
                        }
                    }
                }
            }
        }
        if editor {
            div { class: "actions",
                Link { class: "btn", id: "edit-household", to: Route::EditHousehold { id }, {t.edit} }
            }
        }
    }
}

/// Tags on the file, each removable; the ones not on it can be added with a start date.
#[component]
fn TagEditor(household: HouseholdId, tags: Vec<(MustVisitTag, String)>, lang: Lang, editor: bool) -> Element {
    let ctx = use_ctx();
    let t = tr(lang);
    let mut adding = use_signal(|| None::<MustVisitTag>);
    let mut since = use_signal(|| format::date(ctx.now_untracked()));
    let mut error = use_signal(|| None::<String>);
    let present: Vec<MustVisitTag> = tags.iter().map(|(tag, _)| *tag).collect();
    let missing: Vec<MustVisitTag> = MustVisitTag::ALL.iter().copied().filter(|tag| !present.contains(tag)).collect();
    let set_tag = {
        let ctx = ctx.clone();
        move |tag: MustVisitTag, on: bool, since: Option<String>| {
            let date = match since.as_deref().map(actions::parse_date).transpose() {
                Ok(date) => date.flatten(),
                Err(e) => return error.set(Some(ctx.words(&e))),
            };
            match ctx.client.set_tag(household, tag, on, date, ctx.now_untracked()) {
                Ok(()) => {
                    error.set(None);
                    adding.set(None);
                    ctx.saved();
                }
                Err(e) => error.set(Some(ctx.words(&e))),
            }
        }
    };
    let remove = set_tag.clone();
    rsx! {
        div { class: "card tags",
            if let Some(message) = error() {
                div { class: "form-error", role: "alert", {message} }
            }
            if tags.is_empty() {
                div { class: "muted", {t.no_tags} }
            }
            for (tag, tag_since) in tags.iter().cloned() {
                div { key: "{tag.code()}", class: "row", style: "margin-bottom:8px",
                    div { class: "grow",
                        TagBadge { tag, lang }
                        span { class: "muted", style: "margin-left:8px", {(t.since)(&tag_since)} }
                    }
                    if editor {
                        button {
                            class: "btn small danger",
                            onclick: {
                                let mut remove = remove.clone();
                                move |_| remove(tag, false, None)
                            },
                            {t.remove}
                        }
                    }
                }
            }
            if editor && !missing.is_empty() {
                div { class: "chips",
                    for tag in missing.iter().copied() {
                        button {
                            key: "{tag.code()}",
                            class: if adding() == Some(tag) { "chip on" } else { "chip" },
                            onclick: move |_| adding.set(Some(tag)),
                            "+ {tag.label(lang)}"
                        }
                    }
                }
            }
            if let Some(tag) = adding() {
                div { class: "field",
                    label { {t.start_date} }
                    input { r#type: "date", initial_value: since(), oninput: move |e| since.set(e.value()) }
                }
                button {
                    class: "btn primary block",
                    onclick: {
                        let mut set_tag = set_tag.clone();
                        move |_| set_tag(tag, true, Some(since()))
                    },
                    "{t.add_tag}: {tag.label(lang)}"
                }
            }
        }
    }
}

/// The five help needs (五助) as switches: tap to add one, tap again to close it.
#[component]
fn NeedEditor(household: HouseholdId, needs: Vec<HelpNeed>, lang: Lang, editor: bool) -> Element {
    let ctx = use_ctx();
    let t = tr(lang);
    let mut error = use_signal(|| None::<String>);
    rsx! {
        div { class: "card needs",
            if let Some(message) = error() {
                div { class: "form-error", role: "alert", {message} }
            }
            if needs.is_empty() {
                div { class: "muted", {t.no_needs} }
            }
            div { class: "chips",
                for need in HelpNeed::ALL.iter().copied().filter(|need| editor || needs.contains(need)) {
                    button {
                        disabled: !editor,
                        key: "{need.code()}",
                        class: if needs.contains(&need) { "chip on" } else { "chip" },
                        onclick: {
                            let ctx = ctx.clone();
                            let on = !needs.contains(&need);
                            move |_| match ctx.client.set_need(household, need, on, "", ctx.now_untracked()) {
                                Ok(()) => {
                                    error.set(None);
                                    ctx.saved();
                                }
                                Err(e) => error.set(Some(ctx.words(&e))),
                            }
                        },
                        {need.label(lang)}
                    }
                }
            }
        }
    }
}

/// When a visit on the day typed happened: now for today (or an empty field), noon of an
/// earlier day in Asia/Shanghai (the hour is not asked), and never a day still to come.
pub fn visit_time(date: &str, now: Millis) -> Result<Millis, gridlink_client::Error> {
    match actions::parse_date(date)? {
        None => Ok(now),
        Some(day) if day == local_date(now) => Ok(now),
        Some(day) if day > local_date(now) => {
            Err(gridlink_client::Error::Input(format!("a visit on {day} has not happened yet / 走访日期不能晚于今天")))
        }
        Some(day) => Ok(start_of_local_day(day) + 12 * gridlink_shared::time::HOUR_MS),
    }
}

/// Record a visit: the day (today in Asia/Shanghai unless changed), outcome, notes, needs
/// found, follow-up date, residents present. Saved at once on the phone.
#[component]
pub fn RecordVisit(id: HouseholdId) -> Element {
    let ctx = use_ctx();
    let lang = ctx.lang();
    let t = tr(lang);
    let mut form = use_signal(VisitForm::default);
    // The local date, not the UTC one: at 04:00 on 11/30 in Shanghai it is still 11/29 in UTC.
    let mut visit_date = use_signal(|| format::date(ctx.now_untracked()));
    let mut error = use_signal(|| None::<String>);
    if !may_edit(&ctx) {
        return rsx! {
            PageTitle { title: t.record_visit.to_string(), back: true }
            div { class: "notice", id: "read-only", {t.read_only_file} }
        };
    }
    let detail = match ctx.client.household(id, ctx.now_untracked()) {
        Ok(detail) => detail,
        Err(e) => {
            return rsx! {
                PageTitle { title: t.record_visit.to_string(), back: true }
                ErrorState { text: ctx.words(&e) }
            };
        }
    };
    let residents: Vec<(ResidentId, String)> = detail.residents.iter().map(|r| (r.id, r.name.clone())).collect();
    let save = {
        let ctx = ctx.clone();
        move |_| match record_visit_on(&ctx.client, id, &form.peek(), &visit_date.peek(), ctx.now_untracked()) {
            Ok(_) => {
                ctx.saved();
                ctx.flash(Route::HouseholdPage { id }, tr(ctx.lang()).saved_locally);
                navigator().replace(Route::HouseholdPage { id });
            }
            Err(e) => error.set(Some(ctx.words(&e))),
        }
    };
    let current = form();
    rsx! {
        PageTitle { title: t.record_visit.to_string(), back: true }
        div { class: "card",
            div { class: "title", {detail.head.clone()} }
            div { class: "sub", {detail.address.clone()} }
        }
        if let Some(message) = error() {
            div { class: "form-error", role: "alert", id: "visit-error", {message} }
        }
        div { class: "field",
            label { r#for: "visit-date", {t.visit_date} }
            input {
                id: "visit-date",
                r#type: "date",
                max: "{format::date(ctx.now_untracked())}",
                initial_value: visit_date(),
                oninput: move |e| visit_date.set(e.value()),
            }
        }
        div { class: "field",
            span { class: "label", {t.outcome} }
            div { class: "segmented",
                for outcome in VisitOutcome::ALL.iter().copied() {
                    button {
                        key: "{outcome.code()}",
                        id: "outcome-{outcome.code()}",
                        class: if current.outcome == outcome { "on" } else { "" },
                        onclick: move |_| form.write().outcome = outcome,
                        {outcome.label(lang)}
                    }
                }
            }
        }
        div { class: "field",
            label { r#for: "visit-notes", {t.notes} }
            textarea {
                id: "visit-notes",
                placeholder: t.notes_placeholder,
                initial_value: current.notes.clone(),
                oninput: move |e| form.write().notes = e.value(),
            }
        }
        div { class: "field",
            span { class: "label", {t.needs_found} }
            div { class: "chips",
                for need in HelpNeed::ALL.iter().copied() {
                    button {
                        key: "{need.code()}",
                        class: if current.needs_found.contains(&need) { "chip on" } else { "chip" },
                        onclick: move |_| {
                            let mut f = form.write();
                            if let Some(i) = f.needs_found.iter().position(|n| *n == need) {
                                f.needs_found.remove(i);
                            } else {
                                f.needs_found.push(need);
                            }
                        },
                        {need.label(lang)}
                    }
                }
            }
        }
        if !residents.is_empty() {
            div { class: "field",
                span { class: "label", {t.residents_present} }
                for (resident, name) in residents {
                    label {
                        key: "{resident}",
                        class: if current.residents_present.contains(&resident) { "check on" } else { "check" },
                        input {
                            r#type: "checkbox",
                            checked: current.residents_present.contains(&resident),
                            onchange: move |_| {
                                let mut f = form.write();
                                if let Some(i) = f.residents_present.iter().position(|r| *r == resident) {
                                    f.residents_present.remove(i);
                                } else {
                                    f.residents_present.push(resident);
                                }
                            },
                        }
                        {name}
                    }
                }
            }
        }
        div { class: "field",
            label { r#for: "follow-up", {t.follow_up} }
            input {
                id: "follow-up",
                r#type: "date",
                initial_value: current.follow_up.clone(),
                oninput: move |e| form.write().follow_up = e.value(),
            }
            div { class: "hint", {t.follow_up_hint} }
        }
        // In the flow after the last field, not pinned over it: a pinned bar hid the date
        // fields under it until one scrolled.
        div { class: "actions form-end",
            button { class: "btn primary block big", id: "save-visit", onclick: save, {t.save} }
        }
    }
}

/// Saves a visit on the day typed (see [`visit_time`]), offline.
pub fn record_visit_on(
    client: &gridlink_client::Client,
    household: HouseholdId,
    form: &VisitForm,
    date: &str,
    now: Millis,
) -> Result<gridlink_shared::VisitId, gridlink_client::Error> {
    let visit = gridlink_client::NewVisit {
        household,
        outcome: form.outcome,
        notes: form.notes.trim().to_string(),
        needs_found: form.needs_found.clone(),
        follow_up: actions::parse_date(&form.follow_up)?,
        residents_present: form.residents_present.clone(),
        at: visit_time(date, now)?,
    };
    client.record_visit(visit, now)
}

/// Edit the file's own fields: head, phone, notes, moved out (with its date).
#[component]
pub fn EditHousehold(id: HouseholdId) -> Element {
    let ctx = use_ctx();
    let lang = ctx.lang();
    let t = tr(lang);
    let detail = ctx.client.household(id, ctx.now_untracked());
    let initial = detail.as_ref().ok().cloned();
    let mut head = use_signal(|| initial.as_ref().map(|d| d.head.clone()).unwrap_or_default());
    let mut phone = use_signal(|| initial.as_ref().map(|d| d.phone.clone()).unwrap_or_default());
    let mut notes = use_signal(|| initial.as_ref().map(|d| d.notes.clone()).unwrap_or_default());
    let mut moved_out = use_signal(|| initial.as_ref().map(|d| d.status == HouseholdStatus::MovedOut).unwrap_or(false));
    let today = format::date(ctx.now_untracked());
    let mut moved_out_on = use_signal(|| {
        initial.as_ref().and_then(|d| d.moved_out_on).map(|d| d.to_string()).unwrap_or_else(|| today.clone())
    });
    let mut error = use_signal(|| None::<String>);
    let Some(detail) = initial else {
        let text = detail.err().map(|e| ctx.words(&e)).unwrap_or_default();
        return rsx! {
            PageTitle { title: t.edit_household.to_string(), back: true }
            ErrorState { text }
        };
    };
    let save = {
        let ctx = ctx.clone();
        move |_| {
            let moved_out_on = match actions::parse_date(&moved_out_on()) {
                Ok(date) => date.filter(|_| moved_out()),
                Err(e) => return error.set(Some(ctx.words(&e))),
            };
            if moved_out_on.is_some_and(|d| d > local_date(ctx.now_untracked())) {
                return error.set(Some(ctx.words(&gridlink_client::Error::Input(
                    "a move-out date cannot be in the future / 迁出日期不能晚于今天".into(),
                ))));
            }
            let edit = HouseholdEdit {
                head: Some(head().trim().to_string()).filter(|h| *h != detail.head),
                phone: Some(phone().trim().to_string()).filter(|p| *p != detail.phone),
                notes: Some(notes().trim().to_string()).filter(|n| *n != detail.notes),
                status: Some(if moved_out() { HouseholdStatus::MovedOut } else { HouseholdStatus::Active })
                    .filter(|s| *s != detail.status),
                moved_out_on: moved_out_on.filter(|d| Some(*d) != detail.moved_out_on),
            };
            match ctx.client.edit_household(id, edit, ctx.now_untracked()) {
                Ok(()) => {
                    ctx.saved();
                    ctx.flash(Route::HouseholdPage { id }, tr(ctx.lang()).saved_locally);
                    navigator().replace(Route::HouseholdPage { id });
                }
                Err(e) => error.set(Some(ctx.words(&e))),
            }
        }
    };
    rsx! {
        PageTitle { title: t.edit_household.to_string(), back: true }
        div { class: "card", div { class: "sub", {detail.address.clone()} } }
        if let Some(message) = error() {
            div { class: "form-error", role: "alert", {message} }
        }
        div { class: "field",
            label { {t.head} }
            input { initial_value: head(), oninput: move |e| head.set(e.value()) }
        }
        div { class: "field",
            label { {t.phone} }
            input { r#type: "tel", inputmode: "tel", initial_value: phone(), oninput: move |e| phone.set(e.value()) }
        }
        div { class: "field",
            label { {t.household_notes} }
            textarea { initial_value: notes(), oninput: move |e| notes.set(e.value()) }
        }
        label { class: if moved_out() { "check on" } else { "check" },
            input { r#type: "checkbox", checked: moved_out(), onchange: move |_| moved_out.set(!moved_out()) }
            {t.moved_out}
        }
        if moved_out() {
            div { class: "field",
                label { r#for: "moved-out-on", {t.moved_out_on} }
                input { id: "moved-out-on", r#type: "date", max: "{today}", initial_value: moved_out_on(), oninput: move |e| moved_out_on.set(e.value()) }
            }
        }
        div { class: "actions",
            button { class: "btn primary block big", onclick: save, {t.save} }
        }
        SectionTitle { title: t.add_resident.to_string() }
        AddResident { household: id, lang }
    }
}

/// Adds a resident to the file. The ID number is typed in full once and only ever shown
/// masked afterwards.
#[component]
fn AddResident(household: HouseholdId, lang: Lang) -> Element {
    let ctx = use_ctx();
    let t = tr(lang);
    let mut form = use_signal(actions::ResidentForm::default);
    let mut added = use_signal(|| 0u32);
    let mut error = use_signal(|| None::<String>);
    let current = form();
    let save = {
        let ctx = ctx.clone();
        move |_| {
            let typed = form.peek().clone();
            match actions::add_resident(&ctx.client, household, &typed, ctx.now_untracked()) {
                Ok(_) => {
                    form.set(actions::ResidentForm::default());
                    added += 1;
                    error.set(None);
                    ctx.flash(Route::HouseholdPage { id: household }, tr(ctx.lang()).resident_added);
                    ctx.saved();
                    navigator().replace(Route::HouseholdPage { id: household });
                }
                Err(e) => error.set(Some(ctx.words(&e))),
            }
        }
    };
    rsx! {
        div { class: "card add-resident",
            if let Some(message) = error() {
                div { class: "form-error", role: "alert", {message} }
            }
            for generation in [added()] {
                div { key: "{generation}",
                    div { class: "field",
                        label { {t.resident_name} }
                        input { oninput: move |e| form.write().name = e.value() }
                    }
                    div { class: "field",
                        div { class: "segmented",
                            for sex in gridlink_shared::Sex::ALL.iter().copied() {
                                button {
                                    key: "{sex.code()}",
                                    class: if current.sex == sex { "on" } else { "" },
                                    onclick: move |_| form.write().sex = sex,
                                    {sex.label(lang)}
                                }
                            }
                        }
                    }
                    div { class: "field",
                        label { {t.birth_year} }
                        input { r#type: "number", inputmode: "numeric", oninput: move |e| form.write().birth_year = e.value() }
                    }
                    div { class: "field",
                        label { {t.relation} }
                        input { placeholder: t.relation_placeholder, oninput: move |e| form.write().relation = e.value() }
                    }
                    div { class: "field",
                        label { {t.phone} }
                        input { r#type: "tel", inputmode: "tel", oninput: move |e| form.write().phone = e.value() }
                    }
                    div { class: "field",
                        label { {t.id_number} }
                        input { autocomplete: "off", oninput: move |e| form.write().id_number = e.value() }
                        div { class: "hint", {t.id_number_hint} }
                    }
                    div { class: "chips",
                        for flag in gridlink_shared::ResidentFlag::ALL.iter().copied() {
                            button {
                                key: "{flag.code()}",
                                class: if current.flags.contains(&flag) { "chip on" } else { "chip" },
                                onclick: move |_| {
                                    let mut f = form.write();
                                    if let Some(i) = f.flags.iter().position(|x| *x == flag) {
                                        f.flags.remove(i);
                                    } else {
                                        f.flags.push(flag);
                                    }
                                },
                                {flag.label(lang)}
                            }
                        }
                    }
                }
            }
            button { class: "btn block", onclick: save, "+ {t.add_resident}" }
        }
    }
}
