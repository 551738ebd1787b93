//! The web console as an admin and a supervisor meet it: the real `gridlink-server` binary
//! (`init`, `user password` with the password piped to standard input, `serve`, and the admin
//! commands that end sessions, each its own process on the same data directory) and a real
//! HTTP client with a cookie store over a real socket. SQLite only: the console's pages are
//! not served from PostgreSQL yet (its tables and `user password --database` are tested in
//! `console_store_backends.rs`).

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use tokio::io::{AsyncBufReadExt, BufReader};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_gridlink-server");
const PASSWORD: &str = "凤凰街道督导2026";

fn run(data: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = std::process::Command::new(BIN)
        .args(args)
        .arg("--data")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(data: &Path, args: &[&str], stdin: Option<&[u8]>) -> String {
    let out = run(data, args, stdin);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn refused(data: &Path, args: &[&str], stdin: &[u8]) -> String {
    let out = run(data, args, Some(stdin));
    assert!(!out.status.success(), "{args:?} should have failed: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr).unwrap()
}

fn passwords_stored(data: &Path) -> i64 {
    let store = gridlink_sync_server::SqliteStore::open(data).unwrap();
    store.read(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM console_passwords", [], |r| r.get(0))?)).unwrap()
}

/// The CSRF token of the first form on a page.
fn csrf(html: &str) -> String {
    common::console::csrf_in(html).unwrap_or_else(|| panic!("no csrf field: {html}"))
}

#[tokio::test]
async fn an_admin_sets_a_password_from_a_pipe_and_the_supervisor_signs_in_over_a_real_socket() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(data, &["init", "--demo", "small"], None);
    let users: serde_json::Value = serde_json::from_str(&ok(data, &["user", "list", "--json"], None)).unwrap();
    let id_of = |name: &str| {
        users.as_array().unwrap().iter().find(|u| u["name"] == name).unwrap()["id"].as_str().unwrap().to_string()
    };
    let zhou = id_of("周建平");
    let worker = users.as_array().unwrap().iter().find(|u| u["role"] == "grid-worker").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Refused: too short (characters, not bytes), empty, an unknown user. Nothing stored.
    let stderr = refused(data, &["user", "password", "--user", &zhou], "凤凰街道\n".as_bytes());
    assert!(stderr.contains("at least 8 characters"), "{stderr}");
    let stderr = refused(data, &["user", "password", "--user", &zhou], b"\n");
    assert!(stderr.contains("empty"), "{stderr}");
    let stderr = refused(data, &["user", "password", "--user", &zhou], b"");
    assert!(stderr.contains("empty"), "{stderr}");
    let unknown = gridlink_shared::UserId::new().to_string();
    let stderr = refused(data, &["user", "password", "--user", &unknown], format!("{PASSWORD}\n").as_bytes());
    assert!(stderr.contains("not found"), "{stderr}");
    assert_eq!(passwords_stored(data), 0);

    // Set: one line from the pipe, its line ending (\r\n too) not part of it.
    let out = ok(data, &["user", "password", "--user", &zhou], Some(format!("{PASSWORD}\r\n").as_bytes()));
    assert!(out.contains("console password set for 周建平"), "{out}");
    let worker_out = run(data, &["user", "password", "--user", &worker], Some(b"grid worker password\n"));
    assert!(worker_out.status.success());
    assert!(String::from_utf8_lossy(&worker_out.stderr).contains("cannot sign in to the console"));
    assert_eq!(passwords_stored(data), 2);

    let mut server = tokio::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().unwrap();
    let base = line.strip_prefix("listening on ").expect("listening line").to_string();

    let browser = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let sign_in = || async {
        // The console sends a stranger to the login page, which sets the form's cookie.
        let page = browser.get(format!("{base}/console")).send().await.unwrap();
        assert_eq!(page.url().path(), "/console/login");
        let form = page.text().await.unwrap();
        let landed = browser
            .post(format!("{base}/console/login"))
            .form(&[("login", "0711-3201000"), ("password", PASSWORD), ("csrf", &csrf(&form)), ("next", "/console")])
            .send()
            .await
            .unwrap();
        assert_eq!(landed.status(), 200);
        assert_eq!(landed.url().path(), "/console", "signed in and sent on to the console");
        landed
    };
    let at = |path: &'static str| {
        let browser = browser.clone();
        let url = format!("{base}{path}");
        async move { browser.get(url).send().await.unwrap() }
    };

    let home = sign_in().await;
    assert!(home.headers()["content-security-policy"].to_str().unwrap().starts_with("default-src 'self'"));
    assert_eq!(home.headers()["x-frame-options"], "DENY");
    let body = home.text().await.unwrap();
    assert!(body.contains("周建平") && body.contains("工作台") && body.contains("凤凰街道"), "{body}");
    let css = at("/console/assets/console.css").await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");

    // `device revoke --user`, another process while the server runs: signed out at once.
    let revoked = ok(data, &["device", "revoke", "--user", &zhou], None);
    assert!(revoked.contains("revoked 0 device(s)"), "{revoked}");
    assert_eq!(at("/console").await.url().path(), "/console/login");

    // `user set-scopes`: signed out too.
    sign_in().await;
    let roster: serde_json::Value = serde_json::from_str(&ok(data, &["roster", "--json"], None)).unwrap();
    let community = roster["streets"][0]["communities"][0]["id"].as_str().unwrap().to_string();
    ok(data, &["user", "set-scopes", "--user", &zhou, "--scope", &format!("community:{community}")], None);
    assert_eq!(at("/console").await.url().path(), "/console/login");

    // Signing out ends the session; a POST without its token is refused first.
    let page = sign_in().await.text().await.unwrap();
    let refused = browser.post(format!("{base}/console/logout")).form(&[("csrf", "forged")]).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(at("/console").await.url().path(), "/console");
    let out = browser.post(format!("{base}/console/logout")).form(&[("csrf", csrf(&page))]).send().await.unwrap();
    assert_eq!(out.url().path(), "/console/login");
    assert_eq!(at("/console").await.url().path(), "/console/login");

    server.kill().await.unwrap();
}
