//! Small coloured labels: must-visit tags, help needs, case statuses.

use dioxus::prelude::*;
use gridlink_shared::{CaseKind, CaseStatus, HelpNeed, Lang, MustVisitTag};

#[component]
pub fn TagBadge(tag: MustVisitTag, lang: Lang) -> Element {
    rsx! { span { class: "badge tag-{tag.code()}", {tag.label(lang)} } }
}

#[component]
pub fn NeedBadge(need: HelpNeed, lang: Lang) -> Element {
    rsx! { span { class: "badge need", {need.label(lang)} } }
}

#[component]
pub fn StatusBadge(status: CaseStatus, lang: Lang, kind: Option<CaseKind>) -> Element {
    // A micro-wish says 待认领 … 已致谢 for the same statuses (CaseKind::status_label).
    let label = kind.map_or(status.label(lang), |k| k.status_label(status, lang));
    rsx! { span { class: "badge status-{status.code()}", {label} } }
}
