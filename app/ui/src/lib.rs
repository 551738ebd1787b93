//! # gridlink-ui
//!
//! The screens of Gridlink (网格通) as Dioxus 0.7 components, with no renderer: the desktop
//! and phone launcher (`gridlink-app`) puts them in a window, and the tests render them with
//! `VirtualDom` + `dioxus-ssr`.
//!
//! Data flows one way. [`App`] takes a [`gridlink_client::Client`] and shares it with every
//! screen through [`state::Ctx`]. Screens read view-models from the client while rendering
//! (local SQLite, no network), and write through the client's offline methods (instant,
//! local), then bump [`state::Ctx::revision`] so every screen re-reads. A background task
//! ([`state::run_background`]) runs `Client::sync` periodically and on demand off the UI
//! thread. The UI never touches SQL.
//!
//! * [`route::Route`]: the one routing table (a layout with the bottom tab bar).
//! * [`views`]: one module per screen; [`components`]: the pieces they share.
//! * [`i18n`]: every word, Chinese (default) and English, as typed tables.
//! * The stylesheet `assets/app.css` is compiled in ([`STYLE`]) so no asset pipeline or
//!   renderer is needed to show it.

pub mod components;
pub mod format;
pub mod i18n;
pub mod prefs;
pub mod route;
pub mod state;
pub mod views;

use dioxus::prelude::*;
use gridlink_client::Client;
use gridlink_shared::time::Millis;

pub use gridlink_shared::Lang;
pub use route::Route;
pub use state::{Ctx, Gate, use_ctx};

/// The app's stylesheet, compiled into the binary.
pub const STYLE: &str = include_str!("../../../assets/app.css");

/// Window title and app name.
pub const APP_TITLE: &str = "网格通";

/// How the app starts.
#[derive(Clone)]
pub struct AppConfig {
    pub client: Client,
    /// Run the clock and the background sync (the real app); `false` in tests.
    pub background: bool,
    /// Start at this time instead of the system clock (tests, screenshots of demo data).
    pub now: Option<Millis>,
    /// Start in this language instead of the saved one.
    pub lang: Option<Lang>,
    /// Skip the first-run, PIN and lock screens: tests, and demo stores filled without a
    /// server (`gridlink_client::fixtures`).
    pub unlocked: bool,
    /// Start at this path (tests); the launcher leaves it `None` for "/".
    pub initial_path: Option<String>,
}

impl AppConfig {
    /// The real app: live clock, background sync, saved language, locked if a PIN is set.
    pub fn live(client: Client) -> AppConfig {
        AppConfig { client, background: true, now: None, lang: None, unlocked: false, initial_path: None }
    }
}

impl PartialEq for AppConfig {
    fn eq(&self, other: &Self) -> bool {
        // The root's props never change after launch.
        self.client.dir() == other.client.dir() && self.now == other.now && self.lang == other.lang
    }
}

/// The root component: provides [`Ctx`], starts the background tasks, and shows the first-run,
/// PIN and lock screens before the tabs.
#[component]
pub fn App(config: AppConfig) -> Element {
    let ctx = use_context_provider(|| {
        let now = config.now.unwrap_or_else(gridlink_shared::time::now_millis);
        let lang = config.lang.unwrap_or_else(|| prefs::load_lang(config.client.dir()));
        let mut gate = state::initial_gate(&config.client);
        if config.unlocked {
            gate = Gate::Open;
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let ctx = Ctx {
            client: config.client.clone(),
            lang: Signal::new(lang),
            now: Signal::new(now),
            minute: Signal::new(state::floor_minute(now)),
            revision: Signal::new(0),
            sync: Signal::new(state::SyncUi::default()),
            gate: Signal::new(gate),
            last_activity: Signal::new(now),
            sync_requests: config.background.then_some(tx),
            live_clock: config.background,
            flash: Signal::new(None),
        };
        if config.background {
            state::run_background(&ctx, rx);
            // Catch up with the server as soon as the app opens.
            ctx.request_sync();
        }
        ctx
    });

    let gate = (ctx.gate)();
    let touch = ctx.clone();
    let initial_path = config.initial_path.clone();
    rsx! {
        style { {STYLE} }
        div {
            class: "app",
            lang: if ctx.lang() == Lang::Zh { "zh-CN" } else { "en" },
            onclick: move |_| touch.touch(),
            onkeydown: {
                let touch = ctx.clone();
                move |_| touch.touch()
            },
            match gate {
                Gate::Enroll => rsx! { views::enroll::Enroll {} },
                Gate::SetPin => rsx! { views::lock::SetPin {} },
                Gate::Locked => rsx! { views::lock::Unlock {} },
                Gate::Open => match initial_path {
                    Some(path) => rsx! { route::RouterAt { path } },
                    None => rsx! { Router::<Route> {} },
                },
            }
        }
    }
}
