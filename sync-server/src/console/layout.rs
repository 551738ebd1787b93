//! The console's look: one page shell for signed-in pages ([`page`]: top bar with the user's
//! name, role and scopes, the nav, a print header and footer), a smaller one for the login and
//! error pages ([`bare_page`]), the nav's [`Section`]s, and the stylesheet
//! (`assets/console.css`, compiled into the binary and served at [`CSS_PATH`]).
//!
//! Pages may not use inline `style` attributes or scripts: the Content-Security-Policy
//! (`default-src 'self'`) blocks them. Put styles in `assets/console.css`.

use std::sync::OnceLock;

use axum::extract::RawQuery;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use gridlink_shared::Lang;
use gridlink_shared::time::{format_local, now_millis};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::form::post_form;
use super::session::ConsoleUser;

/// Where the stylesheet is served.
pub const CSS_PATH: &str = "/console/assets/console.css";

/// The stylesheet, in the style of the phone app's `assets/app.css`.
const CSS: &str = include_str!("../../../assets/console.css");

/// `zh` or `en` by `lang`.
pub fn t<'a>(lang: Lang, zh: &'a str, en: &'a str) -> &'a str {
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

/// The sections of the nav. A page names its section so the nav marks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// 工作台 `/console`
    Dashboard,
    /// 事件 `/console/cases`
    Cases,
    /// 住户 `/console/households`
    Households,
    /// 同步 `/console/sync`
    Sync,
    /// 管理 `/console/admin`, shown to admins only
    Admin,
}

impl Section {
    pub const ALL: [Section; 5] =
        [Section::Dashboard, Section::Cases, Section::Households, Section::Sync, Section::Admin];

    pub fn path(self) -> &'static str {
        match self {
            Section::Dashboard => "/console",
            Section::Cases => "/console/cases",
            Section::Households => "/console/households",
            Section::Sync => "/console/sync",
            Section::Admin => "/console/admin",
        }
    }

    pub fn label(self, lang: Lang) -> &'static str {
        match self {
            Section::Dashboard => t(lang, "工作台", "Dashboard"),
            Section::Cases => t(lang, "事件", "Cases"),
            Section::Households => t(lang, "住户", "Households"),
            Section::Sync => t(lang, "同步", "Sync health"),
            Section::Admin => t(lang, "管理", "Admin"),
        }
    }

    /// Whether only admins see it in the nav (its pages must still call `require_admin`).
    pub fn admin_only(self) -> bool {
        self == Section::Admin
    }

    /// The phone app's icons, so both look alike.
    fn icon(self) -> &'static str {
        match self {
            Section::Dashboard => include_str!("../../../assets/icons/home.svg"),
            Section::Cases => include_str!("../../../assets/icons/cases.svg"),
            Section::Households => include_str!("../../../assets/icons/households.svg"),
            Section::Sync => include_str!("../../../assets/icons/today.svg"),
            Section::Admin => include_str!("../../../assets/icons/me.svg"),
        }
    }
}

/// A signed-in page: the shell around `content`, with `title` as its heading and the nav
/// marking `section`.
pub fn page(user: &ConsoleUser, section: Section, title: &str, content: Markup) -> Markup {
    let lang = user.lang;
    let scopes: Vec<&str> = user.scope_names.iter().map(|s| s.name.as_str()).collect();
    html! {
        (DOCTYPE)
        html lang=(html_lang(lang)) {
            (head(lang, title))
            body.console {
                header.topbar {
                    a.brand href="/console" {
                        span.logo { "网" }
                        span.brand-name { (t(lang, "网格通 · 管理后台", "Gridlink console")) }
                    }
                    div.who {
                        span.user-name { (user.name) }
                        span.badge.role { (user.role.label(lang)) }
                        span.scopes title=(scopes.join("、")) { (scopes.join("、")) }
                    }
                    div.top-actions {
                        (lang_switch(lang, ""))
                        (post_form(user, "/console/logout", html! {
                            button.btn.small.ghost type="submit" { (t(lang, "退出登录", "Sign out")) }
                        }))
                    }
                }
                div.shell {
                    nav.sidenav aria-label=(t(lang, "主导航", "Main")) {
                        @for s in Section::ALL {
                            @if !s.admin_only() || user.is_admin() {
                                a.nav-item.active[s == section] href=(s.path())
                                    aria-current=[(s == section).then_some("page")] {
                                    span.icon { (PreEscaped(s.icon())) }
                                    span { (s.label(lang)) }
                                }
                            }
                        }
                    }
                    main.content {
                        p.print-only.print-header { (t(lang, "网格通 · 管理后台", "Gridlink console")) " · " (scopes.join("、")) }
                        h1.page-heading { (title) }
                        (content)
                        p.print-only.print-footer {
                            (t(lang, "打印人：", "Printed by ")) (user.name) " · " (format_local(now_millis()))
                        }
                    }
                }
            }
        }
    }
}

/// A page without the signed-in shell: the login page and error pages.
pub fn bare_page(lang: Lang, title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(html_lang(lang)) {
            (head(lang, title))
            body.console.bare {
                main.bare-main { (content) }
            }
        }
    }
}

/// The link to the other language, keeping `extra_query` (already encoded, `&`-prefixed).
pub(crate) fn lang_switch(lang: Lang, extra_query: &str) -> Markup {
    let (code, label) = match lang {
        Lang::Zh => ("en", "English"),
        Lang::En => ("zh", "中文"),
    };
    html! { a.lang-switch href={ "?lang=" (code) (extra_query) } hreflang=(code) { (label) } }
}

fn head(lang: Lang, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="referrer" content="same-origin";
            title { (title) " · " (t(lang, "网格通管理后台", "Gridlink console")) }
            link rel="stylesheet" href=(css_href());
        }
    }
}

fn html_lang(lang: Lang) -> &'static str {
    t(lang, "zh-CN", "en")
}

/// The stylesheet's URL with a hash of its content, so browsers may keep it until it changes.
fn css_href() -> &'static str {
    static HREF: OnceLock<String> = OnceLock::new();
    HREF.get_or_init(|| format!("{CSS_PATH}?v={}", &crate::secrets::sha256_hex(CSS)[..12]))
}

/// `GET /console/assets/console.css`.
pub(super) async fn stylesheet(RawQuery(query): RawQuery) -> Response {
    // Versioned URLs never change content; the bare path is checked each time.
    let cache =
        if query.is_some_and(|q| q.starts_with("v=")) { "public, max-age=31536000, immutable" } else { "no-cache" };
    let mut response = CSS.into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// The "previous / page n of m / next" links under a paged list: `path` with the list's own
/// query (`filters`, without the page) and `page=N`. Nothing when everything fits on one page.
pub fn pager(lang: Lang, path: &str, filters: &[(&str, String)], page: usize, pages: usize) -> Markup {
    let link = |n: usize| {
        let mut query: Vec<(&str, String)> = filters.to_vec();
        query.push(("page", n.to_string()));
        format!("{path}?{}", serde_urlencoded::to_string(&query).unwrap_or_default())
    };
    html! {
        @if pages > 1 {
            nav.pager aria-label=(t(lang, "翻页", "Pages")) {
                @if page > 1 { a.btn.small href=(link(page - 1)) { (t(lang, "上一页", "Previous")) } }
                span.muted { (page) " / " (pages) }
                @if page < pages { a.btn.small href=(link(page + 1)) { (t(lang, "下一页", "Next")) } }
            }
        }
    }
}
