//! `gridlink-app`: the Gridlink (网格通) screens from `gridlink-ui` in a window.
//!
//! It only names the data directory (the same one the `gridlink` CLI uses, so a device
//! enrolled with the CLI opens here as is), starts a tokio runtime for the background sync and
//! hands the directory to [`gridlink_ui::Start`](fn@gridlink_ui::Start), which opens the store
//! (asking for the PIN first when the key is wrapped under one). The `desktop` feature (default) opens a
//! 390x844 window; the `mobile` feature builds the same components for Android and iOS with
//! `dx bundle` (see docs/mobile.md). Nothing desktop-only lives in `gridlink-ui`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use dioxus::prelude::*;
use gridlink_ui::{Lang, Start, StartConfig, StartProps};

#[cfg(all(feature = "desktop", not(feature = "mobile")))]
use dioxus::desktop as renderer;
#[cfg(feature = "mobile")]
use dioxus::mobile as renderer;

/// Gridlink app for grid workers and building leaders.
#[derive(Debug, Parser)]
#[command(name = "gridlink-app", version)]
struct Args {
    /// Data directory: the encrypted local store, shared with the `gridlink` CLI. Required on
    /// desktop; on a phone it defaults to the app's private storage.
    #[arg(long, env = "GRIDLINK_DATA")]
    data: Option<PathBuf>,
    /// Start in this language (zh or en) instead of the saved choice.
    #[arg(long)]
    lang: Option<String>,
    /// Window width in logical pixels (phone width by default).
    #[arg(long, default_value_t = 390.0)]
    width: f64,
    /// Window height in logical pixels.
    #[arg(long, default_value_t = 844.0)]
    height: f64,
    /// Open this screen after unlocking instead of today's list, e.g. /households/new,
    /// /party or /cases/ID (a deep link, as a notification or a QR code on a phone would give).
    #[arg(long, value_name = "PATH")]
    open: Option<String>,
}

fn parse_lang(code: &str) -> anyhow::Result<Lang> {
    match code {
        "zh" | "zh-CN" => Ok(Lang::Zh),
        "en" => Ok(Lang::En),
        other => anyhow::bail!("unknown language '{other}': expected zh or en"),
    }
}

/// Where the store lives when `--data` is not given: the app's private storage on a phone;
/// on desktop there is no silent default, so the CLI and the app never drift apart.
fn default_data_dir() -> anyhow::Result<PathBuf> {
    if cfg!(target_os = "android") {
        return Ok(PathBuf::from("/data/data/cn.gridlink.app/files/gridlink"));
    }
    if cfg!(target_os = "ios") {
        let home = std::env::var_os("HOME").context("HOME is not set")?;
        return Ok(PathBuf::from(home).join("Library/Application Support/gridlink"));
    }
    anyhow::bail!("--data DIR is required (or GRIDLINK_DATA): the data directory the gridlink CLI uses")
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,gridlink=info")),
        )
        .init();
    let args = Args::parse();
    let lang = args.lang.as_deref().map(parse_lang).transpose()?;
    let data = match args.data {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    std::fs::create_dir_all(&data).with_context(|| format!("cannot create the data directory {}", data.display()))?;

    // Sync and its HTTP client run on this runtime; the UI thread only awaits results.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let _guard = runtime.enter();

    if let Some(path) = &args.open {
        anyhow::ensure!(
            path.parse::<gridlink_ui::route::Route>().is_ok(),
            "--open {path}: not a screen of the app (for example /households/new or /party)"
        );
    }
    let config = StartConfig { dir: data.clone(), background: true, now: None, lang, open: args.open };
    let dom = VirtualDom::new_with_props(Start, StartProps { config });
    let window = renderer::WindowBuilder::new()
        .with_title(gridlink_ui::APP_TITLE)
        .with_inner_size(renderer::LogicalSize::new(args.width, args.height));
    let renderer_config = renderer::Config::new()
        .with_window(window)
        .with_menu(None)
        .with_disable_context_menu(true)
        .with_background_color((242, 243, 245, 255))
        .with_data_directory(data.join("webview"))
        .with_custom_head(
            r#"<meta name="viewport" content="width=device-width, initial-scale=1, maximum-scale=1, user-scalable=no">"#
                .to_string(),
        );
    renderer::launch::launch_virtual_dom(dom, renderer_config)
}
