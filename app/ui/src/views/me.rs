//! 我的 Me: the identity card shown to residents (亮身份), language, sync, lock, and logging
//! out, which never drops unsynced records without a clear confirmation.

use dioxus::prelude::*;
use gridlink_client::Identity;
use gridlink_shared::Lang;

use crate::components::page::{ErrorState, PageTitle};
use crate::format;
use crate::i18n::tr;
use crate::route::Route;
use crate::state::{Gate, use_ctx};

#[component]
pub fn IdentityCard(identity: Identity, lang: Lang) -> Element {
    let t = tr(lang);
    rsx! {
        div { class: "id-card", id: "identity-card",
            div { class: "seal", style: "margin:0 0 10px", "{t.identity_card} · {t.app_name}" }
            div { class: "head",
                div { class: "avatar", {format::initial(&identity.name)} }
                div {
                    div { class: "name", {identity.name.clone()} }
                    div { class: "role", {identity.role.label(lang)} }
                }
            }
            div { class: "facts",
                div { "{t.grid}：{identity.grid_names.join(\"、\")}" }
                div { "{t.phone}：{identity.phone}" }
            }
            if !identity.pledge.is_empty() {
                div { class: "pledge", strong { "{t.pledge}：" } {identity.pledge.clone()} }
            }
            div { class: "seal", {t.certified} }
        }
    }
}

#[component]
pub fn Me() -> Element {
    let ctx = use_ctx();
    let lang = ctx.lang();
    let t = tr(lang);
    let mut confirming = use_signal(|| false);
    let mut error = use_signal(|| None::<String>);
    let status = ctx.status().ok();
    let unsent = status.as_ref().map(|s| s.unsent + s.rejected).unwrap_or(0);
    let other = if lang == Lang::Zh { Lang::En } else { Lang::Zh };
    let identity = ctx.identity();
    let log_out = {
        let ctx = ctx.clone();
        move |force: bool| match ctx.client.logout(force) {
            Ok(()) => {
                confirming.set(false);
                let mut gate = ctx.gate;
                gate.set(Gate::Enroll);
                ctx.changed();
            }
            Err(e) => error.set(Some(ctx.words(&e))),
        }
    };
    rsx! {
        PageTitle { title: t.me_title.to_string() }
        match identity {
            Some(identity) => rsx! { IdentityCard { identity, lang } },
            None => rsx! { ErrorState { text: tr(lang).not_found.to_string() } },
        }
        if let Some(message) = error() {
            div { class: "form-error", role: "alert", {message} }
        }
        div { class: "menu",
            button {
                class: "item",
                id: "lang-switch",
                onclick: {
                    let ctx = ctx.clone();
                    move |_| ctx.set_lang(other)
                },
                span { {t.language} }
                span { class: "value", "{t.lang_name} → {tr(other).lang_name}" }
            }
            button {
                class: "item",
                onclick: {
                    let ctx = ctx.clone();
                    move |_| ctx.request_sync()
                },
                span { {t.sync_now} }
                span { class: "value", {(t.unsent)(unsent as u64)} }
            }
            button {
                class: "item",
                onclick: {
                    let ctx = ctx.clone();
                    move |_| ctx.lock()
                },
                span { {t.lock_now} }
            }
            Link { class: "item", id: "party-entry", to: Route::Party {}, span { {crate::views::party::words(lang).entry} } }
        }
        div { class: "menu",
            if let Some(status) = &status {
                div { class: "item",
                    span { {t.server} }
                    span { class: "value", {status.server_url.clone().unwrap_or_default()} }
                }
                div { class: "item",
                    span { {t.device} }
                    span { class: "value", {status.device.map(|d| d.to_string().chars().take(8).collect::<String>()).unwrap_or_default()} }
                }
            }
        }
        RejectedList { lang }
        button { class: "btn danger block big", id: "log-out", onclick: move |_| confirming.set(true), {t.log_out} }
        if confirming() {
            div { class: "sheet-backdrop",
                div { class: "sheet", role: "dialog",
                    h2 { {t.log_out} }
                    if unsent > 0 {
                        p { class: "form-error", id: "logout-warning", {(t.log_out_confirm_unsent)(unsent as u64)} }
                        button {
                            class: "btn primary block big",
                            onclick: {
                                let ctx = ctx.clone();
                                move |_| { confirming.set(false); ctx.request_sync(); }
                            },
                            {t.sync_first}
                        }
                        div { class: "actions",
                            button { class: "btn", onclick: move |_| confirming.set(false), {t.cancel} }
                            button {
                                class: "btn danger",
                                onclick: {
                                    let mut log_out = log_out.clone();
                                    move |_| log_out(true)
                                },
                                {t.log_out_anyway}
                            }
                        }
                    } else {
                        p { {t.log_out_confirm_clean} }
                        div { class: "actions",
                            button { class: "btn", onclick: move |_| confirming.set(false), {t.cancel} }
                            button {
                                class: "btn danger",
                                onclick: {
                                    let mut log_out = log_out.clone();
                                    move |_| log_out(false)
                                },
                                {t.log_out_yes}
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Changes the server refused: kept aside on the phone and shown with the reason, never
/// dropped silently.
#[component]
fn RejectedList(lang: Lang) -> Element {
    let ctx = use_ctx();
    ctx.watch();
    let t = tr(lang);
    // A failed read is said, never shown as an empty list: these changes exist nowhere else.
    let rejected = match ctx.client.rejected_changes() {
        Ok(rejected) => rejected,
        Err(error) => {
            return rsx! {
                div { class: "section-title", span { {t.rejected_title} } }
                div { class: "card form-error", id: "rejected", role: "alert",
                    {t.rejected_unreadable}
                    {crate::state::pick(lang, &error.plain())}
                }
            };
        }
    };
    if rejected.is_empty() {
        return rsx! {};
    }
    rsx! {
        div { class: "section-title", span { {t.rejected_title} } span { class: "count", {(t.count)(rejected.len())} } }
        div { class: "card", id: "rejected",
            div { class: "muted", style: "margin-bottom:8px", {t.rejected_hint} }
            for change in rejected {
                div { key: "{change.hash}", class: "visit",
                    div { class: "row",
                        strong { class: "grow", {change.summary.clone()} }
                        span { class: "badge overdue", {change.code.label(lang)} }
                    }
                    div { class: "sub", {change.message.clone()} }
                    div { class: "muted", {format::date_time(change.recorded_at)} }
                }
            }
        }
    }
}
