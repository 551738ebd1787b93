//! Debian's Chromium, headless, driven through chromedriver (WebDriver, via fantoccini) for the
//! browser tests (the console, the residents' e-link): the driver on a free loopback port,
//! a session at a desktop's or a phone's size, screenshots, and waits for navigation.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The size of the browser's page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Viewport {
    /// 1366x768, the console's supervisors.
    Desktop,
    /// 390x844, a resident's phone.
    Phone,
}

impl Viewport {
    fn window_size(self) -> String {
        match self {
            Viewport::Desktop => "--window-size=1366,768".into(),
            Viewport::Phone => "--window-size=390,844".into(),
        }
    }
}

/// chromedriver on a free loopback port, killed when dropped.
pub struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub async fn browser(viewport: Viewport) -> (Driver, Client) {
    assert!(Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(), "scripts/setup.sh installs chromium");
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver { child, port, _profile: profile };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Chromium as root in a container: no sandbox; nothing reaches out to the internet.
    let window_size = viewport.window_size();
    let args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        window_size.as_str(),
        "--lang=zh-CN",
    ];
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.push(format!("--user-data-dir={}", driver._profile.path().display()));
    let mut options = serde_json::json!({ "binary": CHROMIUM, "args": args });
    if viewport == Viewport::Phone {
        // A phone's viewport: Chromium will not make a window narrower than 500 px.
        options["mobileEmulation"] =
            serde_json::json!({ "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 1.0 } });
    }
    let capabilities = serde_json::json!({ "goog:chromeOptions": options });
    let serde_json::Value::Object(capabilities) = capabilities else { unreachable!() };
    let client = ClientBuilder::native()
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session in headless chromium");
    (driver, client)
}

fn screenshot_dir() -> PathBuf {
    match std::env::var_os("GRIDLINK_SCREENSHOTS") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("gridlink-browser-shots-{}", std::process::id())),
    }
}

pub async fn shoot(client: &Client, name: &str) {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Waits until the browser has navigated to `path` (a click's navigation is asynchronous).
pub async fn wait_for_path(client: &Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = client.current_url().await.unwrap();
        if url.path().starts_with(path) {
            return;
        }
        assert!(Instant::now() < deadline, "still at {url}, expected {path}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn text(client: &Client) -> String {
    client.find(Locator::Css("body")).await.unwrap().text().await.unwrap()
}

/// Clicks a form's submit button and waits until the browser has left the page (the answer
/// may come back to the same address, so the address alone does not tell).
pub async fn submit(client: &Client, button: &str) {
    let before = client.find(Locator::Css("body")).await.unwrap();
    client.find(Locator::Css(button)).await.unwrap().click().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while before.text().await.is_ok() {
        assert!(Instant::now() < deadline, "the form never answered: {button}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
