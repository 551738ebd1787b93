//! The dashboard's 党员志愿服务时长 card: hours and participations per grid party branch (and
//! the volunteers) in the user's scopes over the dashboard's period, from the activity records
//! the phones pushed ([`gridlink_shared::activity::totals`], the same function the phones use).
//!
//! The records are read from `docs` and hydrated on each view: there are no console rows for
//! them yet (about two thousand records a street a year take a fraction of a second).

use std::collections::BTreeSet;

use chrono::NaiveDate;
use gridlink_shared::activity::{ActivityEntry, ActivityTotals, hours_text, totals};
use gridlink_shared::{AnyDoc, GridId, Lang, Placement, Principal, Roster, doc};
use maud::{Markup, html};

use super::errors::ConsoleError;
use super::layout::t;
use super::session::ConsoleUser;

/// The totals of the records placed within `principal`'s scopes, over `first..=last`, with only
/// the branches of grids within those scopes.
pub(super) async fn totals_for(
    user: &ConsoleUser,
    roster: &Roster,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<ActivityTotals, ConsoleError> {
    let principal: Principal = user.principal();
    let entries = user
        .console()
        .blocking(move |store| {
            let mut entries: Vec<ActivityEntry> = Vec::new();
            for (placement, bytes) in store.any().docs_of_type("activity")? {
                if !principal.covers(&Placement { building: None, ..placement }) {
                    continue;
                }
                // A record that does not read (it was validated on the way in) is left out.
                if let Ok(AnyDoc::Activity(record)) =
                    doc::guarded("activity record", || doc::read_any(&doc::load(&bytes)?))
                {
                    entries.extend(record.entries());
                }
            }
            Ok(entries)
        })
        .await?;
    let covered: BTreeSet<GridId> = roster
        .grids
        .iter()
        .filter(|g| roster.placement_of_grid(g.id).is_some_and(|p| user.principal().covers(&p)))
        .map(|g| g.id)
        .collect();
    let mut found = totals(&entries, roster, first, last);
    found.branches.retain(|b| {
        roster.party_branches.iter().any(|branch| Some(branch.id) == b.branch && covered.contains(&branch.grid))
    });
    Ok(found)
}

/// The card: the total, then a row per branch and one for the volunteers.
pub(super) fn card(lang: Lang, found: &ActivityTotals) -> Markup {
    let hours = |tenths: u32| hours_text(tenths);
    html! {
        section.card.dash-card #service-hours {
            h2 { (t(lang, "党员志愿服务时长", "Party and volunteer service hours")) }
            div.table-scroll { table.data.compact {
                thead { tr {
                    th { (t(lang, "党支部", "Party branch")) }
                    th.num { (t(lang, "服务时长（小时）", "Hours")) }
                    th.num { (t(lang, "服务人次", "Participations")) }
                    th.num { (t(lang, "参与人数", "People")) }
                } }
                tbody {
                    tr.total {
                        th scope="row" { (t(lang, "合计", "All")) }
                        td.num { span.num data-figure="service.hours" { (hours(found.tenths())) } }
                        td.num { (found.branches.iter().map(|b| b.count).sum::<usize>() + found.volunteers.count + found.others.count) }
                        td.num { (found.branches.iter().map(|b| b.people.len()).sum::<usize>() + found.volunteers.people.len() + found.others.people.len()) }
                    }
                    @for branch in &found.branches {
                        tr {
                            th scope="row" { (branch.name) }
                            td.num { span.num data-figure="service.branch-hours" { (hours(branch.tenths)) } }
                            td.num { (branch.count) }
                            td.num { (branch.people.len()) }
                        }
                    }
                    tr {
                        th scope="row" { (t(lang, "志愿者", "Volunteers")) }
                        td.num { span.num data-figure="service.volunteer-hours" { (hours(found.volunteers.tenths)) } }
                        td.num { (found.volunteers.count) }
                        td.num { (found.volunteers.people.len()) }
                    }
                }
            } }
        }
    }
}
