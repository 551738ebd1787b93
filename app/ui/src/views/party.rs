//! 党群 Party and volunteers: the "1" and two of the "3" of the method on the phone. The grid
//! party branches (网格党支部) of the communities the user works in, each with its building party
//! groups (楼栋党小组) and the party members living in the grid who reported to the community
//! (在职党员进社区), then the volunteers (志愿者) with their skills, each with a phone link so a
//! grid worker can call the nearest helper. Reference data from the roster CSV, read offline;
//! nothing here is edited on the phone. Reached from 我的 and from 便民服务.

use dioxus::prelude::*;
use gridlink_shared::party::{BranchEntry, PartyDirectory};
use gridlink_shared::{Lang, PartyBranchId, Volunteer};

use crate::components::page::{Empty, ErrorState, PageTitle, SectionTitle};
use crate::state::use_ctx;

/// How many volunteers the list shows before "show all": a street has over a thousand.
const FIRST_VOLUNTEERS: usize = 30;

/// The words of this screen, one typed table per language like [`crate::i18n`].
pub struct PartyWords {
    pub title: &'static str,
    /// The menu entry on 我的 and the link on 便民服务.
    pub entry: &'static str,
    pub branches: &'static str,
    pub members_stat: &'static str,
    pub volunteers: &'static str,
    pub groups: fn(usize) -> String,
    pub members: fn(usize) -> String,
    pub reported: fn(&str) -> String,
    pub no_building: &'static str,
    pub no_members: &'static str,
    pub empty: &'static str,
    pub show_all: fn(usize) -> String,
}

const ZH: PartyWords = PartyWords {
    title: "党群服务",
    entry: "党群服务（党支部·党员·志愿者）",
    branches: "网格党支部",
    members_stat: "报到党员",
    volunteers: "志愿者",
    groups: |n| format!("楼栋党小组 {n} 个"),
    members: |n| format!("报到党员 {n} 名"),
    reported: |date| format!("{date} 报到"),
    no_building: "楼栋未登记",
    no_members: "还没有党员报到",
    empty: "还没有导入党支部和志愿者（由管理员通过花名册导入）",
    show_all: |n| format!("显示全部 {n} 名"),
};

const EN: PartyWords = PartyWords {
    title: "Party & volunteers",
    entry: "Party branches, members & volunteers",
    branches: "Grid party branches",
    members_stat: "Party members",
    volunteers: "Volunteers",
    groups: |n| format!("{n} building party group{}", if n == 1 { "" } else { "s" }),
    members: |n| format!("{n} party member{} reported", if n == 1 { "" } else { "s" }),
    reported: |date| format!("reported {date}"),
    no_building: "building not given",
    no_members: "No party member has reported yet",
    empty: "No party branches or volunteers yet (the administrator imports them with the roster)",
    show_all: |n| format!("Show all {n}"),
};

pub fn words(lang: Lang) -> &'static PartyWords {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

#[component]
pub fn Party() -> Element {
    let ctx = use_ctx();
    ctx.watch();
    let lang = ctx.lang();
    match ctx.client.party_directory() {
        Ok(directory) => rsx! { PartyScreen { directory, lang } },
        Err(error) => rsx! {
            PageTitle { title: words(lang).title.to_string(), back: true }
            ErrorState { text: ctx.words(&error) }
        },
    }
}

#[component]
fn PartyScreen(directory: PartyDirectory, lang: Lang) -> Element {
    let w = words(lang);
    // The first branch opens by itself; tapping another opens that one instead.
    let mut open = use_signal(|| directory.branches.first().map(|b| b.branch.id));
    let mut all_volunteers = use_signal(|| false);
    let volunteer_count = directory.volunteers.len();
    let shown = if all_volunteers() { volunteer_count } else { FIRST_VOLUNTEERS.min(volunteer_count) };
    rsx! {
        PageTitle { title: w.title.to_string(), back: true }
        if directory.is_empty() {
            Empty { text: w.empty.to_string() }
        } else {
            crate::views::activities::ServiceHours {}
            div { class: "stat-row", id: "party-stats",
                div { class: "stat", div { class: "n", "{directory.branches.len()}" } div { class: "l", {w.branches} } }
                div { class: "stat", div { class: "n", "{directory.member_count()}" } div { class: "l", {w.members_stat} } }
                div { class: "stat", div { class: "n", "{volunteer_count}" } div { class: "l", {w.volunteers} } }
            }
            SectionTitle { title: w.branches.to_string(), count: Some(directory.branches.len()) }
            for entry in directory.branches.iter().cloned() {
                BranchCard {
                    key: "{entry.branch.id}",
                    open: open() == Some(entry.branch.id),
                    on_toggle: move |id: PartyBranchId| open.set(if open() == Some(id) { None } else { Some(id) }),
                    entry,
                    lang,
                }
            }
            SectionTitle { title: w.volunteers.to_string(), count: Some(volunteer_count) }
            for volunteer in directory.volunteers.iter().take(shown).cloned() {
                VolunteerRow { key: "{volunteer.id}", volunteer }
            }
            if shown < volunteer_count {
                button {
                    class: "btn block",
                    id: "all-volunteers",
                    onclick: move |_| all_volunteers.set(true),
                    {(w.show_all)(volunteer_count)}
                }
            }
        }
    }
}

#[component]
fn BranchCard(entry: BranchEntry, open: bool, on_toggle: EventHandler<PartyBranchId>, lang: Lang) -> Element {
    let w = words(lang);
    let id = entry.branch.id;
    rsx! {
        div { class: "card party-branch", id: "branch-{id}",
            button { class: "title", onclick: move |_| on_toggle.call(id),
                span { {entry.branch.name.clone()} }
            }
            div { class: "sub", {entry.grid_name.clone()} }
            div { class: "muted", "{(w.groups)(entry.groups.len())} · {(w.members)(entry.members.len())}" }
            if !entry.branch.phone.is_empty() {
                a { class: "phone", href: "tel:{entry.branch.phone}", "☎ {entry.branch.phone}" }
            }
            if open {
                if !entry.groups.is_empty() {
                    div { class: "badges party-groups",
                        for (group, _) in entry.groups.iter() {
                            span { key: "{group.id}", class: "badge", {group.name.clone()} }
                        }
                    }
                }
                if entry.members.is_empty() {
                    div { class: "muted", {w.no_members} }
                }
                for (member, building) in entry.members.iter().cloned() {
                    div { key: "{member.id}", class: "list-item party-member",
                        div {
                            div { class: "title", {member.name.clone()} }
                            div { class: "muted",
                                if building.is_empty() { {w.no_building} } else { {building} }
                                " · "
                                {(w.reported)(&member.reported_at.to_string())}
                            }
                        }
                        a { class: "phone", href: "tel:{member.phone}", "☎ {member.phone}" }
                    }
                }
            }
        }
    }
}

#[component]
fn VolunteerRow(volunteer: Volunteer) -> Element {
    rsx! {
        div { class: "card list-item volunteer",
            div {
                div { class: "title", {volunteer.name.clone()} }
                if !volunteer.skills.is_empty() {
                    div { class: "badges skills",
                        for skill in volunteer.skills.iter() {
                            span { key: "{skill}", class: "badge", {skill.clone()} }
                        }
                    }
                }
            }
            a { class: "phone", href: "tel:{volunteer.phone}", "☎ {volunteer.phone}" }
        }
    }
}
