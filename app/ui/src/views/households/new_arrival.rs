//! 新迁入登记 Filing a newly moved-in household, and editing one resident (or recording that
//! they moved out or passed away).
//!
//! Every field is checked as it is typed by the shared validator (`gridlink_shared::validate`,
//! the one the server runs), and a room already lived in is checked against this phone's own
//! store; each problem shows under its field, in the app's language, before anything is saved.

use dioxus::prelude::*;
use gridlink_client::{Client, NewHousehold, ResidentInput};
use gridlink_shared::household::DepartureKind;
use gridlink_shared::time::{Millis, local_date};
use gridlink_shared::validate::{self, Field, FieldError};
use gridlink_shared::{BuildingId, HouseholdId, Lang, ResidentId, Sex};

use crate::components::page::{ErrorState, PageTitle, SectionTitle};
use crate::format;
use crate::i18n::tr;
use crate::route::Route;
use crate::state::use_ctx;
use crate::views::actions;

/// One resident as typed on the new-household form.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResidentDraft {
    pub name: String,
    pub relation: String,
    pub sex: Option<Sex>,
    /// Four digits, or empty to take it from the ID number.
    pub birth_year: String,
    pub id_number: String,
    pub phone: String,
}

/// The new-household form as typed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HouseholdDraft {
    pub building: Option<BuildingId>,
    pub unit: String,
    pub room: String,
    pub head: String,
    pub phone: String,
    /// `YYYY-MM-DD`; empty means today.
    pub moved_in_on: String,
    pub notes: String,
    pub residents: Vec<ResidentDraft>,
}

/// Problems of a draft, by field: `None` for the household, `Some(i)` for `residents[i]`.
pub type Problems = Vec<(Option<usize>, FieldError)>;

fn problem(at: Option<usize>, field: Field, zh: &str, en: &str) -> (Option<usize>, FieldError) {
    (at, FieldError { field, zh: zh.to_string(), en: en.to_string() })
}

/// The birth year typed, or the one in a well-formed 18-character ID number.
fn birth_year(draft: &ResidentDraft) -> Option<u16> {
    let typed = draft.birth_year.trim();
    if !typed.is_empty() {
        return typed.parse().ok().filter(|y| (1900..=2100).contains(y));
    }
    let id = draft.id_number.trim();
    (id.len() == 18 && validate::check_id_number(id).is_ok()).then(|| id[6..10].parse().ok()).flatten()
}

/// The sex chosen, or the one an 18-character ID number records (odd 17th digit: male).
fn sex(draft: &ResidentDraft) -> Sex {
    draft.sex.unwrap_or_else(|| {
        let id = draft.id_number.trim();
        match id.as_bytes().get(16) {
            Some(d) if id.len() == 18 && (d - b'0') % 2 == 1 => Sex::Male,
            _ => Sex::Female,
        }
    })
}

/// The household and residents a draft files, with the problems only the form can see (a
/// birth year neither typed nor in the ID number).
fn parse(draft: &HouseholdDraft) -> (Option<(NewHousehold, Vec<ResidentInput>)>, Problems) {
    let mut problems = Problems::new();
    let mut residents = Vec::new();
    for (i, r) in draft.residents.iter().enumerate() {
        let year = birth_year(r);
        if year.is_none() && !r.name.trim().is_empty() {
            problems.push(problem(
                Some(i),
                Field::ResidentIdNumber,
                "请填出生年份（四位数字），或填写身份证号",
                "Give the birth year (four digits) or the ID number",
            ));
        }
        let id_number = r.id_number.trim().to_uppercase();
        residents.push(ResidentInput {
            name: r.name.trim().to_string(),
            sex: sex(r),
            birth_year: year.unwrap_or(1900),
            relation: r.relation.trim().to_string(),
            phone: r.phone.trim().to_string(),
            id_number: (!id_number.is_empty()).then_some(id_number),
            flags: vec![],
        });
    }
    let household = draft.building.map(|building| NewHousehold {
        building,
        unit: draft.unit.trim().to_string(),
        room: draft.room.trim().to_string(),
        head: draft.head.trim().to_string(),
        phone: draft.phone.trim().to_string(),
        notes: draft.notes.trim().to_string(),
    });
    (household.map(|h| (h, residents)), problems)
}

/// Every problem of a draft: the shared validator's field checks and the room check against
/// this phone's store, plus the form's own. `typed_only` keeps only problems of fields that
/// hold something (and none of the form's own), so a half-filled form is not covered in red
/// while it is being typed.
pub fn draft_problems(client: &Client, draft: &HouseholdDraft, typed_only: bool) -> Problems {
    let (parsed, own) = parse(draft);
    // The form's own problems (a missing birth year) wait for the first save.
    let mut problems = if typed_only { Problems::new() } else { own };
    match parsed {
        Some((household, residents)) => match client.new_household_problems(&household, &residents) {
            Ok(found) => problems.extend(found),
            Err(e) => problems.push(problem(None, Field::Room, &e.plain().zh, &e.plain().en)),
        },
        None => problems.push(problem(None, Field::Unit, "请选择楼栋", "Choose the building")),
    }
    if typed_only {
        problems.retain(|(at, e)| !field_value(draft, *at, e.field).trim().is_empty());
    }
    problems.sort_by_key(|(at, _)| at.map_or(0, |i| i + 1));
    problems
}

fn field_value(draft: &HouseholdDraft, at: Option<usize>, field: Field) -> String {
    let resident = at.and_then(|i| draft.residents.get(i)).cloned().unwrap_or_default();
    match field {
        Field::Unit => draft.building.map(|b| b.to_string()).unwrap_or_default(),
        Field::Room => draft.room.clone(),
        Field::Head => draft.head.clone(),
        Field::Phone => draft.phone.clone(),
        Field::ResidentName => resident.name,
        Field::ResidentPhone => resident.phone,
        Field::ResidentIdNumber => resident.id_number,
        Field::MovedInOn => draft.moved_in_on.clone(),
    }
}

/// Files the draft at `now`: refused with its problems when there are any.
pub fn file_draft(client: &Client, draft: &HouseholdDraft, now: Millis) -> Result<HouseholdId, Problems> {
    let problems = draft_problems(client, draft, false);
    let moved_in = actions::parse_date(&draft.moved_in_on)
        .map_err(|e| vec![problem(None, Field::MovedInOn, &e.plain().zh, &e.plain().en)])?;
    if moved_in.is_some_and(|day| day > local_date(now)) {
        return Err(vec![problem(
            None,
            Field::MovedInOn,
            "迁入日期不能晚于今天",
            "The move-in day cannot be after today",
        )]);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let (Some((household, residents)), _) = parse(draft) else {
        return Err(vec![problem(None, Field::Unit, "请选择楼栋", "Choose the building")]);
    };
    client
        .file_new_arrival(household, residents, moved_in, now)
        .map_err(|e| vec![problem(None, Field::Room, &e.plain().zh, &e.plain().en)])
}

/// The problem messages of one field.
#[component]
fn FieldErrors(problems: Problems, at: Option<usize>, field: Field, lang: Lang) -> Element {
    rsx! {
        for (i, (_, e)) in problems.iter().enumerate().filter(|(_, (a, e))| *a == at && e.field == field) {
            div { key: "{i}", class: "error", role: "alert", {e.message(lang).to_string()} }
        }
    }
}

/// 新迁入登记: building, unit and room (prefilled from the URL when given), head, phone,
/// move-in day and residents.
#[component]
pub fn NewArrival(building: String, unit: String, room: String) -> Element {
    let ctx = use_ctx();
    let lang = ctx.lang();
    let t = tr(lang);
    let buildings = ctx.client.buildings().unwrap_or_default();
    let today = format::date(ctx.now_untracked());
    let mut draft = use_signal(|| HouseholdDraft {
        building: building.parse().ok().or_else(|| (buildings.len() == 1).then(|| buildings[0].id)),
        unit: unit.clone(),
        room: room.clone(),
        moved_in_on: today.clone(),
        residents: vec![ResidentDraft { relation: "户主".to_string(), ..Default::default() }],
        ..Default::default()
    });
    // After a refused save every problem shows, typed or not, and the first one also at the
    // top (a problem with no field of its own, like a move-in day still to come, shows there).
    let mut tried = use_signal(|| false);
    let mut refused = use_signal(|| None::<FieldError>);
    if !super::may_edit(&ctx) {
        return rsx! {
            PageTitle { title: t.new_arrival_title.to_string(), back: true }
            div { class: "notice", id: "read-only", {t.read_only_file} }
        };
    }
    let current = draft();
    let problems = draft_problems(&ctx.client, &current, !tried());
    let save = {
        let ctx = ctx.clone();
        move |_| {
            tried.set(true);
            let mut typed = draft.peek().clone();
            // The head of household is usually the first resident: take the name typed there.
            if typed.head.trim().is_empty() {
                typed.head = typed.residents.first().map(|r| r.name.clone()).unwrap_or_default();
                draft.write().head = typed.head.clone();
            }
            match file_draft(&ctx.client, &typed, ctx.now_untracked()) {
                Ok(id) => {
                    ctx.saved();
                    ctx.flash(Route::HouseholdPage { id }, tr(ctx.lang()).household_filed);
                    navigator().replace(Route::HouseholdPage { id });
                }
                Err(problems) => refused.set(problems.into_iter().next().map(|(_, e)| e)),
            }
        }
    };
    rsx! {
        PageTitle { title: t.new_arrival_title.to_string(), back: true }
        div { class: "hint", {t.new_arrival_hint} }
        if let Some(e) = refused() {
            div { class: "form-error", role: "alert", id: "new-arrival-error", {e.message(lang).to_string()} }
        }
        div { class: "card new-arrival",
            div { class: "field",
                label { r#for: "na-building", {t.building} }
                select {
                    id: "na-building",
                    onchange: move |e| draft.write().building = e.value().parse().ok(),
                    option { value: "", selected: current.building.is_none(), "—" }
                    for b in buildings.iter() {
                        option { key: "{b.id}", value: "{b.id}", selected: current.building == Some(b.id), {b.name.clone()} }
                    }
                }
                FieldErrors { problems: problems.clone(), at: None, field: Field::Unit, lang }
            }
            div { class: "field-row",
                div { class: "field",
                    label { r#for: "na-unit", {t.unit} }
                    input { id: "na-unit", inputmode: "numeric", initial_value: current.unit.clone(), oninput: move |e| draft.write().unit = e.value() }
                }
                div { class: "field",
                    label { r#for: "na-room", {t.room} }
                    input { id: "na-room", inputmode: "numeric", initial_value: current.room.clone(), oninput: move |e| draft.write().room = e.value() }
                }
            }
            FieldErrors { problems: problems.clone(), at: None, field: Field::Room, lang }
            div { class: "field",
                label { r#for: "na-head", {t.head} }
                input { id: "na-head", initial_value: current.head.clone(), oninput: move |e| draft.write().head = e.value() }
                FieldErrors { problems: problems.clone(), at: None, field: Field::Head, lang }
            }
            div { class: "field",
                label { r#for: "na-phone", {t.phone} }
                input { id: "na-phone", r#type: "tel", inputmode: "tel", initial_value: current.phone.clone(), oninput: move |e| draft.write().phone = e.value() }
                FieldErrors { problems: problems.clone(), at: None, field: Field::Phone, lang }
            }
            div { class: "field",
                label { r#for: "na-moved-in", {t.moved_in_on} }
                input { id: "na-moved-in", r#type: "date", max: "{today}", initial_value: current.moved_in_on.clone(), oninput: move |e| draft.write().moved_in_on = e.value() }
                if let Some(e) = refused().filter(|e| e.field == Field::MovedInOn) {
                    div { class: "error", role: "alert", {e.message(lang).to_string()} }
                }
            }
            div { class: "field",
                label { r#for: "na-notes", {t.household_notes} }
                textarea { id: "na-notes", initial_value: current.notes.clone(), oninput: move |e| draft.write().notes = e.value() }
            }
        }
        for (i, resident) in current.residents.iter().cloned().enumerate() {
            div { key: "{i}",
                SectionTitle { title: (t.resident_number)(i + 1) }
                div { class: "card new-resident",
                    div { class: "field",
                        label { {t.resident_name} }
                        input { initial_value: resident.name.clone(), oninput: move |e| draft.write().residents[i].name = e.value() }
                        FieldErrors { problems: problems.clone(), at: Some(i), field: Field::ResidentName, lang }
                    }
                    div { class: "field",
                        label { {t.relation} }
                        input { placeholder: t.relation_placeholder, initial_value: resident.relation.clone(), oninput: move |e| draft.write().residents[i].relation = e.value() }
                    }
                    div { class: "field",
                        label { {t.id_number_optional} }
                        input { autocomplete: "off", initial_value: resident.id_number.clone(), oninput: move |e| draft.write().residents[i].id_number = e.value() }
                        FieldErrors { problems: problems.clone(), at: Some(i), field: Field::ResidentIdNumber, lang }
                    }
                    div { class: "field-row",
                        div { class: "field",
                            label { {t.birth_year} }
                            input { r#type: "number", inputmode: "numeric", initial_value: resident.birth_year.clone(), oninput: move |e| draft.write().residents[i].birth_year = e.value() }
                        }
                        div { class: "field",
                            div { class: "segmented",
                                for s in Sex::ALL.iter().copied() {
                                    button {
                                        key: "{s.code()}",
                                        class: if sex(&resident) == s { "on" } else { "" },
                                        onclick: move |_| draft.write().residents[i].sex = Some(s),
                                        {s.label(lang)}
                                    }
                                }
                            }
                        }
                    }
                    div { class: "field",
                        label { {t.phone} }
                        input { r#type: "tel", inputmode: "tel", initial_value: resident.phone.clone(), oninput: move |e| draft.write().residents[i].phone = e.value() }
                        FieldErrors { problems: problems.clone(), at: Some(i), field: Field::ResidentPhone, lang }
                    }
                    if current.residents.len() > 1 {
                        button { class: "btn small danger", onclick: move |_| { draft.write().residents.remove(i); }, {t.remove} }
                    }
                }
            }
        }
        button { class: "btn block", onclick: move |_| draft.write().residents.push(ResidentDraft::default()), {t.another_resident} }
        div { class: "actions form-end",
            button { class: "btn primary block big", id: "file-new-arrival", onclick: save, {t.save} }
        }
    }
}

/// One resident of a file: edit their details, or record that they moved out or passed
/// away (the resident stays listed, marked).
#[component]
pub fn EditResident(id: HouseholdId, resident: ResidentId) -> Element {
    let ctx = use_ctx();
    let lang = ctx.lang();
    let t = tr(lang);
    let detail = ctx.client.household(id, ctx.now_untracked());
    let found = detail.as_ref().ok().and_then(|d| d.residents.iter().find(|r| r.id == resident).cloned());
    let mut form = use_signal(|| {
        found
            .as_ref()
            .map(|r| actions::ResidentForm {
                name: r.name.clone(),
                sex: r.sex,
                birth_year: r.birth_year.to_string(),
                relation: r.relation.clone(),
                phone: r.phone.clone(),
                id_number: String::new(),
                flags: r.flags.clone(),
            })
            .unwrap_or_default()
    });
    let today = format::date(ctx.now_untracked());
    let mut leave_kind = use_signal(|| None::<DepartureKind>);
    let mut leave_on = use_signal(|| today.clone());
    let mut leave_note = use_signal(String::new);
    let mut error = use_signal(|| None::<String>);
    let Some(view) = found else {
        let text = match detail {
            Err(e) => ctx.words(&e),
            Ok(_) => t.not_found.to_string(),
        };
        return rsx! {
            PageTitle { title: t.edit_resident.to_string(), back: true }
            ErrorState { text }
        };
    };
    let current = form();
    let id_problem = validate::check_id_number(&current.id_number).err();
    let phone_problem = validate::check_phone(Field::ResidentPhone, &current.phone).err();
    let done = {
        let ctx = ctx.clone();
        move |result: Result<(), gridlink_client::Error>| match result {
            Ok(()) => {
                ctx.saved();
                ctx.flash(Route::HouseholdPage { id }, tr(ctx.lang()).resident_saved);
                navigator().replace(Route::HouseholdPage { id });
            }
            Err(e) => error.set(Some(ctx.words(&e))),
        }
    };
    let save = {
        let ctx = ctx.clone();
        let mut done = done.clone();
        move |_| {
            let typed = form.peek().clone();
            done(save_resident(&ctx.client, id, resident, &typed, ctx.now_untracked()));
        }
    };
    let record_leaving = {
        let ctx = ctx.clone();
        let mut done = done.clone();
        move |_| {
            let Some(kind) = leave_kind() else { return };
            let date = match actions::parse_date(&leave_on()) {
                Ok(Some(date)) => date,
                Ok(None) => local_date(ctx.now_untracked()),
                Err(e) => return error.set(Some(ctx.words(&e))),
            };
            done(ctx.client.set_departure(id, resident, Some((kind, date)), &leave_note(), ctx.now_untracked()));
        }
    };
    let undo = {
        let ctx = ctx.clone();
        let mut done = done.clone();
        move |_| done(ctx.client.set_departure(id, resident, None, "", ctx.now_untracked()))
    };
    rsx! {
        PageTitle { title: t.edit_resident.to_string(), back: true }
        if let Some(message) = error() {
            div { class: "form-error", role: "alert", {message} }
        }
        div { class: "card",
            div { class: "field",
                label { {t.resident_name} }
                input { initial_value: current.name.clone(), oninput: move |e| form.write().name = e.value() }
            }
            div { class: "field",
                label { {t.relation} }
                input { initial_value: current.relation.clone(), oninput: move |e| form.write().relation = e.value() }
            }
            div { class: "field",
                label { {t.birth_year} }
                input { r#type: "number", inputmode: "numeric", initial_value: current.birth_year.clone(), oninput: move |e| form.write().birth_year = e.value() }
            }
            div { class: "field",
                label { {t.phone} }
                input { r#type: "tel", inputmode: "tel", initial_value: current.phone.clone(), oninput: move |e| form.write().phone = e.value() }
                if let Some(e) = phone_problem {
                    div { class: "error", role: "alert", {e.message(lang).to_string()} }
                }
            }
            div { class: "field",
                label { {t.id_number} }
                input { autocomplete: "off", oninput: move |e| form.write().id_number = e.value() }
                div { class: "hint", {(t.id_number_keep)(&view.id_number_masked)} }
                if let Some(e) = id_problem {
                    div { class: "error", role: "alert", {e.message(lang).to_string()} }
                }
            }
            button { class: "btn primary block", id: "save-resident", onclick: save, {t.save} }
        }
        SectionTitle { title: t.resident_leaves.to_string() }
        div { class: "card",
            if let Some(departure) = view.departure.clone() {
                div { class: "reason", "{departure.kind.label(lang)} · {departure.on}" }
                if !departure.note.is_empty() {
                    div { class: "sub", {departure.note.clone()} }
                }
                button { class: "btn small", onclick: undo, {t.undo_departure} }
            } else {
                div { class: "segmented",
                    for kind in DepartureKind::ALL.iter().copied() {
                        button {
                            key: "{kind.code()}",
                            class: if leave_kind() == Some(kind) { "on" } else { "" },
                            onclick: move |_| leave_kind.set(Some(kind)),
                            {kind.label(lang)}
                        }
                    }
                }
                if leave_kind().is_some() {
                    div { class: "field",
                        label { {t.departure_date} }
                        input { r#type: "date", max: "{today}", initial_value: leave_on(), oninput: move |e| leave_on.set(e.value()) }
                    }
                    div { class: "field",
                        label { {t.departure_note} }
                        input { oninput: move |e| leave_note.set(e.value()) }
                    }
                    button { class: "btn danger block", id: "record-departure", onclick: record_leaving, {t.save} }
                }
            }
        }
    }
}

/// Saves an edited resident; an empty ID number keeps the stored one.
pub fn save_resident(
    client: &Client,
    household: HouseholdId,
    resident: ResidentId,
    form: &actions::ResidentForm,
    now: Millis,
) -> Result<(), gridlink_client::Error> {
    let name = form.name.trim();
    if name.is_empty() {
        return Err(gridlink_client::Error::Input("a resident needs a name / 请填写姓名".to_string()));
    }
    let birth_year: u16 =
        form.birth_year.trim().parse().ok().filter(|y| (1900..=2100).contains(y)).ok_or_else(|| {
            gridlink_client::Error::Input(format!(
                "'{}' is not a birth year / 出生年份应为四位数字",
                form.birth_year.trim()
            ))
        })?;
    let id_number = form.id_number.trim().to_uppercase();
    client.edit_resident(
        household,
        resident,
        ResidentInput {
            name: name.to_string(),
            sex: form.sex,
            birth_year,
            relation: form.relation.trim().to_string(),
            phone: form.phone.trim().to_string(),
            id_number: (!id_number.is_empty()).then_some(id_number),
            flags: form.flags.clone(),
        },
        now,
    )
}
