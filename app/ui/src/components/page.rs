//! Page furniture: titles with a back button, section headings, empty and error states.

use dioxus::prelude::*;

use crate::i18n::tr;
use crate::state::use_ctx;

/// A page heading; with `back`, a large back button that returns to the previous screen.
#[component]
pub fn PageTitle(title: String, #[props(default)] back: bool, children: Element) -> Element {
    rsx! {
        div { class: "page-title",
            if back {
                button {
                    class: "back",
                    "aria-label": "back",
                    onclick: move |_| { navigator().go_back(); },
                    "‹"
                }
            }
            h1 { {title} }
            {children}
        }
    }
}

#[component]
pub fn SectionTitle(title: String, #[props(default)] count: Option<usize>) -> Element {
    let ctx = use_ctx();
    let t = tr(ctx.lang());
    rsx! {
        div { class: "section-title",
            span { {title} }
            if let Some(n) = count {
                span { class: "count", {(t.count)(n)} }
            }
        }
    }
}

/// Nothing to show, said kindly.
#[component]
pub fn Empty(text: String) -> Element {
    rsx! { div { class: "card empty", {text} } }
}

/// A read failed: the plain-words reason.
#[component]
pub fn ErrorState(text: String) -> Element {
    let ctx = use_ctx();
    let t = tr(ctx.lang());
    rsx! {
        div { class: "error-state", role: "alert",
            strong { {t.error_title} }
            div { {text} }
        }
    }
}
