//! 服务时长 Activities and service hours on the phone: the totals per grid party branch (and the
//! volunteers) over the last year on the 党群 screen, with each person's records and total on
//! tap; the form a grid worker (or supervisor) records an activity or service with, for one or
//! more party members or volunteers, optionally for one of the grid's open cases; and the list
//! of services done for a case on its detail screen. Everything reads and writes the local
//! store ([`gridlink_client::activities`]); sync carries the records.

use chrono::{Duration, NaiveDate};
use dioxus::prelude::*;
use gridlink_client::{ActivityChoices, ActivityFilter, ActivityRow, NewActivity};
use gridlink_shared::activity::{ActivityTotals, GroupTotal, PersonTotal, hours_text};
use gridlink_shared::time::local_date;
use gridlink_shared::{ActivityKind, CaseId, Lang, PersonRef, Role};

use crate::Route;
use crate::components::page::{Empty, PageTitle, SectionTitle};
use crate::state::use_ctx;

/// The words of these screens, one typed table per language like [`crate::i18n`].
pub struct ActivityWords {
    pub hours_title: &'static str,
    pub range: fn(&str, &str) -> String,
    pub record: &'static str,
    pub record_title: &'static str,
    pub volunteers: &'static str,
    pub others: &'static str,
    pub hours: fn(&str) -> String,
    pub times: fn(usize) -> String,
    pub none_yet: &'static str,
    pub records_of: fn(&str) -> String,
    pub kind: &'static str,
    pub grid: &'static str,
    pub what: &'static str,
    pub notes: &'static str,
    pub day: &'static str,
    pub case: &'static str,
    pub no_case: &'static str,
    pub people: &'static str,
    pub party_members: &'static str,
    pub hours_label: &'static str,
    pub save: &'static str,
    pub saved: &'static str,
    pub choose_people: &'static str,
    pub bad_day: &'static str,
    pub may_not: &'static str,
    pub services_for_case: &'static str,
}

const ZH: ActivityWords = ActivityWords {
    hours_title: "服务时长",
    range: |from, to| format!("{from} 至 {to}"),
    record: "记录志愿服务 / 党员活动",
    record_title: "记录服务",
    volunteers: "志愿者",
    others: "其他党员（支部未登记）",
    hours: |h| format!("{h} 小时"),
    times: |n| format!("{n} 人次"),
    none_yet: "这段时间还没有服务记录",
    records_of: |name| format!("{name}的服务记录"),
    kind: "类别",
    grid: "网格",
    what: "服务内容",
    notes: "备注",
    day: "服务日期",
    case: "关联事件（可不选）",
    no_case: "不关联事件",
    people: "参加人员及时长",
    party_members: "报到党员",
    hours_label: "小时",
    save: "保存",
    saved: "服务记录已保存",
    choose_people: "请至少选择一名党员或志愿者",
    bad_day: "日期格式应为 2026-11-28，且不能晚于今天",
    may_not: "只有网格员和督导可以记录服务时长",
    services_for_case: "志愿服务",
};

const EN: ActivityWords = ActivityWords {
    hours_title: "Service hours",
    range: |from, to| format!("{from} to {to}"),
    record: "Record a volunteer service / party activity",
    record_title: "Record a service",
    volunteers: "Volunteers",
    others: "Other party members (branch not on file)",
    hours: |h| format!("{h} h"),
    times: |n| format!("{n} time{}", if n == 1 { "" } else { "s" }),
    none_yet: "No services recorded in this period",
    records_of: |name| format!("Services by {name}"),
    kind: "Kind",
    grid: "Grid",
    what: "What was done",
    notes: "Notes",
    day: "Day",
    case: "For a case (optional)",
    no_case: "No case",
    people: "Who took part, and for how long",
    party_members: "Party members",
    hours_label: "hours",
    save: "Save",
    saved: "Service saved",
    choose_people: "Choose at least one party member or volunteer",
    bad_day: "Give the day like 2026-11-28, not later than today",
    may_not: "Only grid workers and supervisors record service hours",
    services_for_case: "Volunteer services",
};

pub fn words(lang: Lang) -> &'static ActivityWords {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

/// The last year up to today, the range the 党群 screen totals over.
fn last_year(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    (today - Duration::days(364), today)
}

/// The per-branch totals block of the 党群 screen, with the record button for those who may.
#[component]
pub fn ServiceHours() -> Element {
    let ctx = use_ctx();
    ctx.watch();
    let lang = ctx.lang();
    // Building leaders receive no records (they are not in building scopes): nothing to show.
    if ctx.role() == Role::BuildingLeader {
        return rsx! {};
    }
    let (from, to) = last_year(local_date(ctx.minute()));
    let totals = ctx.client.activity_totals(from, to).unwrap_or_default();
    let may_record = ctx.client.activity_choices().map(|c| c.may_record).unwrap_or(false);
    rsx! { HoursView { totals, from, to, may_record, lang } }
}

#[component]
fn HoursView(totals: ActivityTotals, from: NaiveDate, to: NaiveDate, may_record: bool, lang: Lang) -> Element {
    let w = words(lang);
    let mut open = use_signal(|| None::<usize>);
    let mut person = use_signal(|| None::<PersonTotal>);
    let mut groups: Vec<(String, GroupTotal)> = totals.branches.iter().map(|g| (g.name.clone(), g.clone())).collect();
    groups.push((w.volunteers.to_string(), totals.volunteers.clone()));
    if !totals.others.people.is_empty() {
        groups.push((w.others.to_string(), totals.others.clone()));
    }
    let total_hours = hours_text(totals.tenths());
    rsx! {
        SectionTitle { title: w.hours_title.to_string(), count: None }
        div { class: "card service-hours", id: "service-hours",
            div { class: "row",
                div { class: "grow muted", {(w.range)(&from.to_string(), &to.to_string())} }
                strong { id: "hours-total", {(w.hours)(&total_hours)} }
            }
            if totals.tenths() == 0 {
                div { class: "muted", {w.none_yet} }
            }
            for (index, (name, group)) in groups.into_iter().enumerate() {
                div { key: "{index}", class: "hours-group",
                    button {
                        class: "list-item hours-row",
                        id: "hours-group-{index}",
                        onclick: move |_| open.set(if open() == Some(index) { None } else { Some(index) }),
                        span { class: "grow", {name} }
                        span { class: "muted", "{(w.hours)(&hours_text(group.tenths))} · {(w.times)(group.count)}" }
                    }
                    if open() == Some(index) {
                        for p in group.people.iter().cloned() {
                            button {
                                key: "{p.person}",
                                class: "list-item hours-person",
                                onclick: {
                                    let p = p.clone();
                                    move |_| person.set(Some(p.clone()))
                                },
                                span { class: "grow", {p.name.clone()} }
                                span { class: "muted", "{(w.hours)(&hours_text(p.tenths))} · {(w.times)(p.count)}" }
                            }
                        }
                    }
                }
            }
        }
        if let Some(p) = person() {
            PersonRecords { person: p, lang }
        }
        if may_record {
            Link { class: "btn block", id: "record-activity", to: Route::RecordActivity {}, {w.record} }
        }
    }
}

/// One person's records (all held on this phone) with their total in the range shown.
#[component]
fn PersonRecords(person: PersonTotal, lang: Lang) -> Element {
    let ctx = use_ctx();
    let w = words(lang);
    let rows = ctx.client.activities(ActivityFilter::Person(person.person)).unwrap_or_default();
    rsx! {
        SectionTitle { title: (w.records_of)(&person.name), count: Some(rows.len()) }
        div { class: "card person-records", id: "person-records",
            div { class: "muted", "{(w.hours)(&hours_text(person.tenths))} · {(w.times)(person.count)}" }
            for row in rows {
                div { key: "{row.id}", class: "list-item",
                    div { class: "grow",
                        div { class: "title", {row.title.clone()} }
                        div { class: "muted", "{row.on} · {row.kind.label(lang)} · {row.recorded_by_name}" }
                    }
                    span { {(w.hours)(&hours_text(row.people.iter().find(|(p, _, _)| *p == person.person).map_or(0, |(_, _, t)| *t)))} }
                }
            }
        }
    }
}

/// The services done for a case, for its detail screen.
#[component]
pub fn CaseServices(rows: Vec<ActivityRow>, lang: Lang) -> Element {
    let w = words(lang);
    if rows.is_empty() {
        return rsx! {};
    }
    rsx! {
        SectionTitle { title: w.services_for_case.to_string(), count: Some(rows.len()) }
        div { class: "card case-services", id: "case-services",
            for row in rows {
                div { key: "{row.id}", class: "list-item",
                    div { class: "grow",
                        div { class: "title", {row.title.clone()} }
                        div { class: "muted",
                            "{row.on} · "
                            {row.people.iter().map(|(_, n, t)| format!("{n} {}", (w.hours)(&hours_text(*t)))).collect::<Vec<_>>().join("、")}
                        }
                    }
                }
            }
        }
    }
}

/// 记录服务: the form.
#[component]
pub fn RecordActivity() -> Element {
    let ctx = use_ctx();
    let lang = ctx.lang();
    let choices = ctx.client.activity_choices().unwrap_or_default();
    let today = local_date(ctx.now_untracked());
    rsx! { RecordForm { choices, today, lang } }
}

#[component]
fn RecordForm(choices: ActivityChoices, today: NaiveDate, lang: Lang) -> Element {
    let ctx = use_ctx();
    let w = words(lang);
    let first_grid = choices.grids.first().map(|g| g.grid);
    let mut grid = use_signal(|| first_grid);
    let mut kind = use_signal(|| ActivityKind::VolunteerService);
    let mut title = use_signal(String::new);
    let mut notes = use_signal(String::new);
    let mut day = use_signal(|| today.to_string());
    let mut case = use_signal(|| None::<CaseId>);
    // Each chosen person with the hours typed for them.
    let mut chosen = use_signal(Vec::<(PersonRef, String)>::new);
    let mut error = use_signal(|| None::<String>);
    if !choices.may_record || first_grid.is_none() {
        return rsx! {
            PageTitle { title: w.record_title.to_string(), back: true }
            Empty { text: w.may_not.to_string() }
        };
    }
    let current = choices.grids.iter().find(|g| Some(g.grid) == grid()).cloned();
    let submit = {
        let ctx = ctx.clone();
        move |_| {
            let w = words(ctx.lang());
            let Some(on) = day().trim().parse::<NaiveDate>().ok().filter(|d| *d <= today) else {
                error.set(Some(w.bad_day.to_string()));
                return;
            };
            if chosen().is_empty() {
                error.set(Some(w.choose_people.to_string()));
                return;
            }
            let Some(g) = grid() else { return };
            let new = NewActivity {
                kind: kind(),
                grid: g,
                title: title(),
                notes: notes(),
                on,
                case: case(),
                participants: chosen(),
            };
            match ctx.client.record_activity(new, ctx.now_untracked()) {
                Ok(_) => {
                    ctx.saved();
                    ctx.flash(Route::Party {}, w.saved);
                    navigator().replace(Route::Party {});
                }
                Err(e) => error.set(Some(ctx.words(&e))),
            }
        }
    };
    let cases: Vec<(CaseId, String)> = current.as_ref().map(|g| g.open_cases.clone()).unwrap_or_default();
    rsx! {
        PageTitle { title: w.record_title.to_string(), back: true }
        if let Some(message) = error() {
            div { class: "form-error", role: "alert", id: "activity-error", {message} }
        }
        if choices.grids.len() > 1 {
            div { class: "field",
                label { r#for: "activity-grid", {w.grid} }
                select {
                    id: "activity-grid",
                    onchange: move |e| {
                        grid.set(e.value().parse().ok());
                        chosen.set(Vec::new());
                        case.set(None);
                    },
                    for g in choices.grids.iter() {
                        option { key: "{g.grid}", value: "{g.grid}", selected: Some(g.grid) == grid(), {g.name.clone()} }
                    }
                }
            }
        }
        div { class: "field",
            label { r#for: "activity-kind", {w.kind} }
            select {
                id: "activity-kind",
                onchange: move |e| if let Ok(k) = e.value().parse() { kind.set(k) },
                for k in ActivityKind::ALL.iter().copied() {
                    option { key: "{k}", value: "{k}", selected: k == kind(), {k.label(lang)} }
                }
            }
        }
        div { class: "field",
            label { r#for: "activity-title", {w.what} }
            input { id: "activity-title", initial_value: title(), oninput: move |e| title.set(e.value()) }
        }
        div { class: "field",
            label { r#for: "activity-day", {w.day} }
            input { id: "activity-day", r#type: "date", initial_value: day(), max: "{today}", oninput: move |e| day.set(e.value()) }
        }
        div { class: "field",
            label { r#for: "activity-case", {w.case} }
            select {
                id: "activity-case",
                onchange: move |e| case.set(e.value().parse().ok()),
                option { value: "", selected: case().is_none(), {w.no_case} }
                for (id, case_title) in cases {
                    option { key: "{id}", value: "{id}", selected: case() == Some(id), {case_title} }
                }
            }
        }
        if let Some(g) = current {
            SectionTitle { title: w.people.to_string(), count: Some(chosen().len()) }
            for (label, people) in [(w.party_members, g.members.clone()), (w.volunteers, g.volunteers.clone())] {
                div { key: "{label}", class: "card activity-people",
                    div { class: "sub", {label} }
                    for (person, name) in people {
                        PersonPick {
                            key: "{person}",
                            person,
                            name,
                            hours: chosen().iter().find(|(p, _)| *p == person).map(|(_, h)| h.clone()),
                            on_change: move |(person, hours): (PersonRef, Option<String>)| {
                                let mut list = chosen();
                                list.retain(|(p, _)| *p != person);
                                if let Some(hours) = hours {
                                    list.push((person, hours));
                                }
                                chosen.set(list);
                            },
                            lang,
                        }
                    }
                }
            }
        }
        div { class: "field",
            label { r#for: "activity-notes", {w.notes} }
            textarea { id: "activity-notes", initial_value: notes(), oninput: move |e| notes.set(e.value()) }
        }
        div { class: "sticky-bottom",
            button { class: "btn primary block big", id: "submit-activity", onclick: submit, {w.save} }
        }
    }
}

/// One person of the form: a tick, and the hours once ticked (2 by default).
#[component]
fn PersonPick(
    person: PersonRef,
    name: String,
    hours: Option<String>,
    on_change: EventHandler<(PersonRef, Option<String>)>,
    lang: Lang,
) -> Element {
    let w = words(lang);
    let ticked = hours.is_some();
    rsx! {
        div { class: "list-item person-pick",
            label { class: "grow",
                input {
                    r#type: "checkbox",
                    checked: ticked,
                    onchange: move |_| on_change.call((person, if ticked { None } else { Some("2".to_string()) })),
                }
                " {name}"
            }
            if let Some(h) = hours {
                input {
                    class: "hours",
                    inputmode: "decimal",
                    size: 4,
                    initial_value: h,
                    oninput: move |e| on_change.call((person, Some(e.value()))),
                }
                span { class: "muted", {w.hours_label} }
            }
        }
    }
}
