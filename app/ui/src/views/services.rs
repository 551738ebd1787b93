//! 便民 Services: the 8 service categories of the grid e-link and their outlets, with phone
//! and address. Reference data, read offline.

use dioxus::prelude::*;
use gridlink_shared::ServiceCategory;

use crate::components::page::{Empty, ErrorState, PageTitle};
use crate::i18n::tr;
use crate::route::Route;
use crate::state::use_ctx;

fn glyph(category: ServiceCategory) -> &'static str {
    match category {
        ServiceCategory::Housekeeping => "家",
        ServiceCategory::ApplianceRepair => "电",
        ServiceCategory::Medical => "医",
        ServiceCategory::ElderlyCare => "老",
        ServiceCategory::Utilities => "修",
        ServiceCategory::Legal => "法",
        ServiceCategory::Locksmith => "锁",
        ServiceCategory::Errands => "办",
    }
}

#[component]
pub fn Services() -> Element {
    let ctx = use_ctx();
    ctx.watch();
    let lang = ctx.lang();
    let t = tr(lang);
    let mut chosen = use_signal(|| ServiceCategory::Housekeeping);
    let groups = match ctx.client.services() {
        Ok(groups) => groups,
        Err(error) => {
            return rsx! {
                PageTitle { title: t.services_title.to_string() }
                ErrorState { text: ctx.words(&error) }
            };
        }
    };
    let outlets = groups.iter().find(|g| g.category == chosen()).map(|g| g.outlets.clone()).unwrap_or_default();
    rsx! {
        PageTitle { title: t.services_title.to_string() }
        Link { class: "btn block", id: "party-link", to: Route::Party {}, {crate::views::party::words(lang).entry} }
        div { class: "category-grid",
            for category in ServiceCategory::ALL.iter().copied() {
                button {
                    key: "{category.code()}",
                    class: if chosen() == category { "on" } else { "" },
                    onclick: move |_| chosen.set(category),
                    span { class: "glyph", {glyph(category)} }
                    span { {category.label(lang)} }
                }
            }
        }
        if outlets.is_empty() {
            Empty { text: t.no_outlets.to_string() }
        }
        for outlet in outlets {
            div { key: "{outlet.id}", class: "card outlet",
                div { class: "title", {outlet.name.clone()} }
                div { class: "sub", {outlet.address.clone()} }
                if !outlet.hours.is_empty() {
                    div { class: "muted", "{t.hours} {outlet.hours}" }
                }
                a { class: "phone", href: "tel:{outlet.phone}", "☎ {outlet.phone}" }
            }
        }
    }
}
