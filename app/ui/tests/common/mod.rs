//! What the UI tests share: a real encrypted store filled with the demo grid, and the app
//! rendered at a path with `VirtualDom` + `dioxus_ssr` (no webview).

#![allow(dead_code, reason = "each test binary uses a different part")]

use dioxus::prelude::*;
use gridlink_client::{Client, fixtures};
use gridlink_shared::{Lang, Role};
use gridlink_ui::{App, AppConfig, AppProps};

/// The demo's "now": every test renders at this time unless it says otherwise.
pub const NOW: i64 = fixtures::DEMO_NOW;

/// A store in a temporary directory, filled with the demo grid as seen by a user of `role`.
pub fn demo(role: Role) -> (tempfile::TempDir, Client) {
    let dir = tempfile::tempdir().unwrap();
    let (client, _) = fixtures::demo_client(dir.path(), role, NOW).unwrap();
    (dir, client)
}

/// The whole app, unlocked, opened at `path` at time `now`, as HTML.
pub fn render_at(client: &Client, path: &str, lang: Lang, now: i64) -> String {
    let config = AppConfig {
        client: client.clone(),
        background: false,
        now: Some(now),
        lang: Some(lang),
        unlocked: true,
        initial_path: Some(path.to_string()),
    };
    let mut vdom = VirtualDom::new_with_props(App, AppProps { config });
    vdom.rebuild_in_place();
    dioxus_ssr::render(&vdom)
}

/// The whole app opened at `path` at the demo's "now".
pub fn render(client: &Client, path: &str, lang: Lang) -> String {
    render_at(client, path, lang, NOW)
}
