//! The routing table: every screen behind the first-run and lock gates, inside one layout
//! ([`Shell`]) with the always-visible sync bar on top and the tab bar at the bottom.

use std::rc::Rc;

use dioxus::history::{History, MemoryHistory};
use dioxus::prelude::*;
use dioxus::router::components::HistoryProvider;
use gridlink_shared::{CaseId, CaseKind, HouseholdId, ResidentId};

use crate::components::sync_bar::SyncBar;
use crate::components::tab_bar::TabBar;
use crate::views::activities::RecordActivity;
use crate::views::cases::{CasePage, Cases, NewCase, NewHouseholdCase, Report};
use crate::views::households::{EditHousehold, EditResident, HouseholdPage, Households, NewArrival, RecordVisit};
use crate::views::me::Me;
use crate::views::party::Party;
use crate::views::services::Services;
use crate::views::today::Today;

#[derive(Clone, Debug, PartialEq, Routable)]
#[rustfmt::skip]
pub enum Route {
    #[layout(Shell)]
        /// 今日 for grid workers; the report home for building leaders.
        #[route("/")]
        Today {},
        #[route("/households")]
        Households {},
        /// 新迁入登记; building, unit and room may come prefilled in the query.
        #[route("/households/new?:building&:unit&:room")]
        NewArrival { building: String, unit: String, room: String },
        #[route("/households/:id")]
        HouseholdPage { id: HouseholdId },
        #[route("/households/:id/visit")]
        RecordVisit { id: HouseholdId },
        #[route("/households/:id/edit")]
        EditHousehold { id: HouseholdId },
        #[route("/households/:id/residents/:resident")]
        EditResident { id: HouseholdId, resident: ResidentId },
        #[route("/households/:id/case")]
        NewHouseholdCase { id: HouseholdId },
        #[route("/cases")]
        Cases {},
        #[route("/cases/new")]
        NewCase {},
        #[route("/cases/:id")]
        CasePage { id: CaseId },
        /// A building leader's one-tap report of a given kind.
        #[route("/report/:kind")]
        Report { kind: KindSlug },
        #[route("/services")]
        Services {},
        /// 党群: party branches, party members and volunteers (from 我的 and 便民服务).
        #[route("/party")]
        Party {},
        /// 记录服务: an activity or service for party members and volunteers.
        #[route("/party/record")]
        RecordActivity {},
        #[route("/me")]
        Me {},
}

/// A case kind in a URL: `report.sanitation` (the code with `.` for `:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindSlug(pub CaseKind);

impl std::fmt::Display for KindSlug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_string().replace(':', "."))
    }
}

impl std::str::FromStr for KindSlug {
    type Err = gridlink_shared::codes::UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.replacen('.', ":", 1).parse().map(KindSlug)
    }
}

/// The layout of every tab: sync bar, the screen, tab bar.
#[component]
pub fn Shell() -> Element {
    let ctx = crate::state::use_ctx();
    let route = use_route::<Route>();
    let flash = (ctx.flash)().filter(|f| f.route == route).map(|f| f.text);
    rsx! {
        SyncBar {}
        // Keyed by route so each screen opens scrolled to the top.
        for current in [route.clone()] {
            main { key: "{current}", class: "app-main",
                if let Some(text) = flash.clone() {
                    div { class: "notice", role: "status", id: "flash", {text} }
                }
                Outlet::<Route> {}
            }
        }
        TabBar {}
    }
}

/// A router that starts at `path` (tests and deep links), over an in-memory history.
#[component]
pub fn RouterAt(path: String) -> Element {
    rsx! {
        HistoryProvider {
            history: move |_| Rc::new(MemoryHistory::with_initial_path(path.clone())) as Rc<dyn History>,
            Router::<Route> {}
        }
    }
}
