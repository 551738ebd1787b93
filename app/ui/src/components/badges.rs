//! Small coloured labels: must-visit tags, help needs, case statuses.

use dioxus::prelude::*;
use gridlink_shared::{CaseStatus, HelpNeed, Lang, MustVisitTag};

#[component]
pub fn TagBadge(tag: MustVisitTag, lang: Lang) -> Element {
    rsx! { span { class: "badge tag-{tag.code()}", {tag.label(lang)} } }
}

#[component]
pub fn NeedBadge(need: HelpNeed, lang: Lang) -> Element {
    rsx! { span { class: "badge need", {need.label(lang)} } }
}

#[component]
pub fn StatusBadge(status: CaseStatus, lang: Lang) -> Element {
    rsx! { span { class: "badge status-{status.code()}", {status.label(lang)} } }
}
