//! The always-visible bar: online or offline, last sync, unsent count, the sync button with
//! its progress, the last error in plain words, and records set aside as damaged.

use dioxus::prelude::*;

use crate::format;
use crate::i18n::tr;
use crate::state::{pick, sync_once, use_ctx};

#[component]
pub fn SyncBar() -> Element {
    let ctx = use_ctx();
    let lang = ctx.lang();
    let t = tr(lang);
    let now = ctx.minute();
    let sync = (ctx.sync)();
    let status = match ctx.status() {
        Ok(status) => status,
        Err(error) => {
            return rsx! { div { class: "sync-error", role: "alert", {ctx.words(&error)} } };
        }
    };
    let online = status.online == Some(true) && sync.error.is_none();
    let error = sync.error.clone().or(status.last_error.clone());
    let class = match (online, error.is_some()) {
        (_, true) if status.online == Some(false) => "sync-bar offline",
        (true, _) => "sync-bar",
        (false, _) => "sync-bar offline",
    };
    let last = match status.last_success_at {
        Some(at) => (t.last_sync)(&format::ago(lang, at, now)),
        None => t.never_synced.to_string(),
    };
    let unsent = if status.unsent == 0 { t.all_sent.to_string() } else { (t.unsent)(status.unsent as u64) };
    let on_sync = {
        let ctx = ctx.clone();
        move |_| {
            if ctx.sync_requests.is_some() {
                ctx.request_sync();
            } else {
                // No background task (tests, or it stopped): sync on this task instead.
                let ctx = ctx.clone();
                spawn(async move { sync_once(&ctx).await });
            }
        }
    };
    rsx! {
        div { class, id: "sync-bar",
            span { class: "net",
                span { class: "dot" }
                if online { {t.online} } else { {t.offline} }
            }
            div { class: "meta",
                div { class: "line", {last} }
                div { class: "line",
                    span { class: "unsent", id: "unsent", {unsent} }
                    if status.rejected > 0 {
                        " · "
                        span { {(t.rejected)(status.rejected as u64)} }
                    }
                }
            }
            button {
                class: "sync-btn",
                id: "sync-button",
                disabled: sync.running,
                onclick: on_sync,
                if sync.running { {t.syncing} } else { {t.sync} }
            }
        }
        if sync.running {
            div { class: "sync-progress", role: "progressbar", div {} }
        }
        if let Some(words) = error {
            div { class: "sync-error", role: "alert", {pick(lang, &words)} }
        }
        if status.quarantined > 0 {
            div { class: "sync-error quarantined", id: "quarantined", role: "status",
                {(t.quarantined)(status.quarantined as u64)}
            }
        }
    }
}
