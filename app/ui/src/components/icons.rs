//! Line icons (SVG from `assets/icons`), compiled in.

use dioxus::prelude::*;

pub const TODAY: &str = include_str!("../../../../assets/icons/today.svg");
pub const HOUSEHOLDS: &str = include_str!("../../../../assets/icons/households.svg");
pub const CASES: &str = include_str!("../../../../assets/icons/cases.svg");
pub const SERVICES: &str = include_str!("../../../../assets/icons/services.svg");
pub const ME: &str = include_str!("../../../../assets/icons/me.svg");
pub const HOME: &str = include_str!("../../../../assets/icons/home.svg");
pub const SEARCH: &str = include_str!("../../../../assets/icons/search.svg");

/// One icon; `svg` is one of the constants above (trusted, compiled-in markup).
#[component]
pub fn Icon(svg: &'static str) -> Element {
    rsx! { span { class: "icon", dangerous_inner_html: svg } }
}
