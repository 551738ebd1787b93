//! The live countdown to a must-arrive deadline. It reads the ticking clock itself, so only
//! this label re-renders every second, not the screen around it.

use dioxus::prelude::*;
use gridlink_shared::time::Millis;

use crate::format;
use crate::i18n::tr;
use crate::state::use_ctx;

#[component]
pub fn Countdown(deadline: Millis) -> Element {
    let ctx = use_ctx();
    let lang = ctx.lang();
    let remaining = deadline - (ctx.now)();
    let t = tr(lang);
    let (class, text) = if remaining < 0 {
        ("countdown late", (t.time_late)(&format::countdown(lang, remaining)))
    } else if remaining < 30 * 60_000 {
        ("countdown", (t.time_left)(&format::countdown(lang, remaining)))
    } else {
        ("countdown calm", (t.time_left)(&format::countdown(lang, remaining)))
    };
    rsx! { span { class, "data-deadline": "{deadline}", {text} } }
}
