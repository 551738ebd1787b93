//! Placeholders for the other sections of the nav, so its links lead
//! somewhere until their pages replace these handlers in `console::router`.

use maud::{Markup, html};

use super::errors::ConsoleError;
use super::layout::{self, Section};
use super::session::ConsoleUser;

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
