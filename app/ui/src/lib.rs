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
    /// Start at this path (tests, deep links); `None` for "/".
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

/// How the launcher starts the app from a data directory (the store is opened here, so a
/// store locked with a PIN can ask for it first).
#[derive(Clone, PartialEq)]
pub struct StartConfig {
    pub dir: std::path::PathBuf,
    /// Run the clock and the background sync (the real app); `false` in tests.
    pub background: bool,
    /// Start at this time instead of the system clock (tests).
    pub now: Option<Millis>,
    /// Start in this language instead of the saved one.
    pub lang: Option<Lang>,
    /// Open this screen once the store is open and unlocked (a deep link such as
    /// `/households/new`); `None` for today's list.
    pub open: Option<String>,
}

/// The launcher's root: opens the store in `config.dir` and shows [`App`]. A store locked
/// with a PIN asks for it first ([`views::lock::OpenLocked`]: the PIN unwraps the database
/// key, so nothing of the store is read before it); one whose PIN key was destroyed says the
/// data is locked for the administrator; any other failure says why, in plain words.
#[component]
pub fn Start(config: StartConfig) -> Element {
    let mut opened = use_signal(|| Client::open(&config.dir));
    let mut by_pin = use_signal(|| false);
    let lang = config.lang.unwrap_or_else(|| prefs::load_lang(&config.dir));
    let now = config.now.unwrap_or_else(gridlink_shared::time::now_millis);
    let t = i18n::tr(lang);
    let body = match &*opened.read() {
        Ok(client) => {
            let app = AppConfig {
                client: client.clone(),
                background: config.background,
                now: config.now,
                lang: config.lang,
                // The PIN was just typed to open the store: no second lock screen.
                unlocked: by_pin(),
                initial_path: config.open.clone(),
            };
            return rsx! { App { config: app } };
        }
        Err(gridlink_client::Error::PinRequired) => rsx! {
            views::lock::OpenLocked {
                dir: config.dir.clone(),
                lang,
                now,
                on_open: move |client: Client| {
                    by_pin.set(true);
                    opened.set(Ok(client));
                },
            }
        },
        Err(gridlink_client::Error::PinLockedOut) => rsx! { views::lock::LockedOut { lang } },
        Err(error) => rsx! {
            views::lock::Notice {
                id: "open-failed",
                title: t.open_failed_title.to_string(),
                body: state::pick(lang, &error.plain()),
            }
        },
    };
    rsx! {
        style { {STYLE} }
        div { class: "app", lang: if lang == Lang::Zh { "zh-CN" } else { "en" }, {body} }
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
                Gate::LockedOut => rsx! { views::lock::LockedOut { lang: ctx.lang() } },
                Gate::Wiped => rsx! { views::lock::Wiped { lang: ctx.lang() } },
                Gate::Open => match initial_path {
                    Some(path) => rsx! { route::RouterAt { path } },
                    None => rsx! { Router::<Route> {} },
                },
            }
        }
    }
}
