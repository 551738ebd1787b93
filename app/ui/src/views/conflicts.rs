//! 待确认的修改: the review queue of concurrent edits. On the household file, each field two
//! offline edits left with several values, every value with who wrote it and when, and a
//! 采用此值 button per value ([`ConflictReview`]); on the supervisor's home and the worker's
//! today screen, the households with fields to confirm ([`ConflictList`]).
//!
//! A grid worker, an admin or a supervisor may pick: the validator lets a supervisor's change
//! through when it only picks among the values (`gridlink_shared::conflicts`), so no button
//! leads to a change the server would refuse.

use dioxus::prelude::*;
use gridlink_client::{FieldConflict, HouseholdWithConflicts};
use gridlink_shared::{HouseholdId, Lang, Role};

use crate::components::page::SectionTitle;
use crate::format;
use crate::i18n::conflict_words;
use crate::route::Route;
use crate::state::use_ctx;

/// Whether a role may pick among concurrent values (the validator's rule).
pub fn may_pick(role: Role) -> bool {
    matches!(role, Role::GridWorker | Role::Admin | Role::Supervisor)
}

/// The 待确认的修改 section of a household file; nothing when there is nothing to confirm.
#[component]
pub fn ConflictReview(household: HouseholdId, lang: Lang) -> Element {
    let ctx = use_ctx();
    ctx.watch();
    match ctx.client.household_conflicts(household, lang) {
        Ok(fields) if !fields.is_empty() => rsx! { ConflictFields { household, fields, lang } },
        // An unreadable file shows its error in the page itself; the section stays away.
        _ => rsx! {},
    }
}

/// The conflicted fields, each with its values and buttons.
#[component]
pub fn ConflictFields(household: HouseholdId, fields: Vec<FieldConflict>, lang: Lang) -> Element {
    let ctx = use_ctx();
    let w = conflict_words(lang);
    let picker = may_pick(ctx.role());
    let mut error = use_signal(|| None::<String>);
    rsx! {
        SectionTitle { title: w.title.to_string(), count: fields.len() }
        div { class: "card conflicts", id: "conflicts",
            div { class: "notice", {w.explain} }
            if let Some(message) = error() {
                div { class: "form-error", role: "alert", {message} }
            }
            for field in fields.iter().cloned() {
                div { key: "{field.path.join(\"/\")}", class: "visit conflict",
                    strong { {field.field.clone()} }
                    for (i, value) in field.values.iter().cloned().enumerate() {
                        div { key: "{i}", class: "row conflict-value",
                            div { class: "grow",
                                div { class: "title",
                                    {value.shown.clone()}
                                    if value.current {
                                        span { class: "badge", style: "margin-left:6px", {w.shown_now} }
                                    }
                                }
                                div { class: "muted",
                                    {if value.by_this_device {
                                        (w.by_me)(value.by_name.as_deref().unwrap_or_default())
                                    } else {
                                        (w.by_other_device)(&value.device)
                                    }}
                                    " · "
                                    {value.at.map(|at| (w.at)(&format::date_time(at))).unwrap_or_else(|| w.at_unknown.to_string())}
                                }
                            }
                            if picker {
                                button {
                                    class: "btn small primary use-value",
                                    onclick: {
                                        let ctx = ctx.clone();
                                        let path = field.path.clone();
                                        let chosen = value.value.clone();
                                        move |_| match ctx.client.resolve_conflict(household, &path, &chosen, ctx.now_untracked()) {
                                            Ok(()) => {
                                                error.set(None);
                                                ctx.saved();
                                            }
                                            Err(e) => error.set(Some(ctx.words(&e))),
                                        }
                                    },
                                    {w.use_this}
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The households with fields to confirm, each opening its file; nothing when there are none.
#[component]
pub fn ConflictList(lang: Lang) -> Element {
    let ctx = use_ctx();
    ctx.watch();
    match ctx.client.conflicts_in_scope() {
        Ok(rows) if !rows.is_empty() => rsx! { ConflictRows { rows, lang } },
        _ => rsx! {},
    }
}

#[component]
pub fn ConflictRows(rows: Vec<HouseholdWithConflicts>, lang: Lang) -> Element {
    let w = conflict_words(lang);
    rsx! {
        SectionTitle { title: w.list_title.to_string(), count: rows.len() }
        div { id: "conflict-households",
            for row in rows.iter().cloned() {
                Link { key: "{row.household}", class: "card", style: "display:block;text-decoration:none;color:inherit", to: Route::HouseholdPage { id: row.household },
                    div { class: "title", {row.head.clone()} }
                    div { class: "sub", {row.address.clone()} }
                    div { class: "reason", {(w.fields)(row.fields)} }
                }
            }
        }
    }
}
