//! The console's pages so far: `/console` (工作台, for now the user's area and a note that the
//! dashboard is coming) and placeholders for the other sections of the nav, so its links lead
//! somewhere until their pages replace these handlers in `console::router`.

use maud::{Markup, html};

use super::errors::ConsoleError;
use super::layout::{self, Section};
use super::session::ConsoleUser;

/// `GET /console`.
pub(super) async fn home(user: ConsoleUser) -> Markup {
    let lang = user.lang;
    layout::page(
        &user,
        Section::Dashboard,
        user.t("工作台", "Dashboard"),
        html! {
            section.card {
                h2 { (user.t("我的管辖范围", "My area")) }
                ul.scope-list {
                    @for scope in &user.scope_names {
                        li { span.badge { (scope.kind(lang)) } " " span.scope-name { (scope.name) } }
                    }
                }
            }
            section.card.placeholder {
                p.muted {
                    (user.t(
                        "入户走访覆盖率、逾期清单、办结率和满意度将在这里显示。",
                        "Visit coverage, overdue lists, completion and satisfaction will appear here.",
                    ))
                }
            }
        },
    )
}

/// `GET /console/sync` until the sync health page exists.
pub(super) async fn sync(user: ConsoleUser) -> Markup {
    placeholder(&user, Section::Sync)
}

/// `GET /console/admin` until the admin pages exist; admins only already.
pub(super) async fn admin(user: ConsoleUser) -> Result<Markup, ConsoleError> {
    user.require_admin()?;
    Ok(placeholder(&user, Section::Admin))
}

fn placeholder(user: &ConsoleUser, section: Section) -> Markup {
    layout::page(
        user,
        section,
        section.label(user.lang),
        html! {
            section.card.placeholder {
                p.muted { (user.t("这个页面即将上线。", "This page is coming soon.")) }
            }
        },
    )
}
