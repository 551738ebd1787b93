//! The bottom tab bar: five tabs for grid workers, four for building leaders (their home is
//! the report screen); supervisors keep all five, with their desk (工作台) as home. Large
//! targets within thumb reach.

use dioxus::prelude::*;
use gridlink_shared::Role;

use crate::components::icons::{self, Icon};
use crate::i18n::tr;
use crate::route::Route;
use crate::state::use_ctx;

#[component]
pub fn TabBar() -> Element {
    let ctx = use_ctx();
    let t = tr(ctx.lang());
    let route = use_route::<Route>();
    let current = match route {
        Route::Today {} => 0,
        Route::Households {}
        | Route::HouseholdPage { .. }
        | Route::RecordVisit { .. }
        | Route::EditHousehold { .. }
        | Route::NewArrival { .. }
        | Route::EditResident { .. }
        | Route::NewHouseholdCase { .. } => 1,
        Route::Cases {} | Route::NewCase {} | Route::CasePage { .. } => 2,
        Route::Report { .. } => 0,
        Route::Services {} | Route::Party {} | Route::RecordActivity {} => 3,
        Route::Me {} => 4,
    };
    let leader = ctx.role() == Role::BuildingLeader;
    let own_home = leader || gridlink_client::figures::has_supervisor_home(ctx.role());
    let mut tabs = vec![(
        0,
        Route::Today {},
        if own_home { t.tab_home } else { t.tab_today },
        if own_home { icons::HOME } else { icons::TODAY },
    )];
    if !leader {
        tabs.push((1, Route::Households {}, t.tab_households, icons::HOUSEHOLDS));
    }
    tabs.push((2, Route::Cases {}, t.tab_cases, icons::CASES));
    tabs.push((3, Route::Services {}, t.tab_services, icons::SERVICES));
    tabs.push((4, Route::Me {}, t.tab_me, icons::ME));
    rsx! {
        nav { class: "tab-bar",
            for (index, to, label, svg) in tabs {
                Link {
                    key: "{index}",
                    class: if index == current { "tab active" } else { "tab" },
                    to,
                    Icon { svg }
                    span { {label} }
                }
            }
        }
    }
}
