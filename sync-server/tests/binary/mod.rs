//! The real `gridlink-server` binary for tests: admin commands on a data directory, and
//! `serve` on 127.0.0.1:0 (plain or TLS) read from its `listening on` line. The `*_at`
//! forms take the store's arguments (`--data DIR` or `--database URL`, `Backend::cli_args`).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Output, Stdio};

use tokio::io::{AsyncBufReadExt, BufReader};

pub const BIN: &str = env!("CARGO_BIN_EXE_gridlink-server");

/// `--data DIR`.
pub fn data_args(data: &Path) -> [String; 2] {
    ["--data".into(), data.display().to_string()]
}

pub fn run(data: &Path, args: &[&str]) -> Output {
    run_at(&data_args(data), args)
}

pub fn run_at(store: &[String], args: &[&str]) -> Output {
    std::process::Command::new(BIN).args(args).args(store).output().unwrap()
}

/// Runs a command that must succeed; its standard output.
pub fn ok(data: &Path, args: &[&str]) -> String {
    ok_at(&data_args(data), args)
}

pub fn ok_at(store: &[String], args: &[&str]) -> String {
    let out = run_at(store, args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail; its standard error.
pub fn fails(data: &Path, args: &[&str]) -> String {
    fails_at(&data_args(data), args)
}

pub fn fails_at(store: &[String], args: &[&str]) -> String {
    let out = run_at(store, args);
    assert!(!out.status.success(), "{args:?} should have failed: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr).unwrap()
}

pub fn last_line(text: &str) -> String {
    text.lines().last().unwrap().trim().to_string()
}

/// `init --demo small` in `data`; returns the ids of its grids.
pub fn init_demo(data: &Path) -> Vec<String> {
    ok(data, &["init", "--demo", "small"]);
    let roster: serde_json::Value = serde_json::from_str(&ok(data, &["roster", "--json"])).unwrap();
    roster["streets"][0]["communities"][0]["grids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_string())
        .collect()
}

/// Adds a grid worker of `grid`; returns their user id and first enrolment code.
pub fn add_worker(data: &Path, name: &str, grid: &str) -> (String, String) {
    add_worker_at(&data_args(data), name, grid)
}

pub fn add_worker_at(store: &[String], name: &str, grid: &str) -> (String, String) {
    let out =
        ok_at(store, &["user", "add", "--name", name, "--role", "grid-worker", "--scope", &format!("grid:{grid}")]);
    let user = out.split_whitespace().nth(2).unwrap().to_string();
    (user, last_line(&out))
}

/// A running `serve`; killed when dropped.
pub struct Served {
    pub child: tokio::process::Child,
    /// `http://IP:PORT` or `https://IP:PORT`, as printed.
    pub base: String,
}

/// Starts `serve --listen 127.0.0.1:0` with `extra` arguments and waits for its address.
pub async fn serve(data: &Path, extra: &[&str]) -> Served {
    serve_at(&data_args(data), extra).await
}

pub async fn serve_at(store: &[String], extra: &[&str]) -> Served {
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(store)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().expect("serve printed nothing");
    let base = line.strip_prefix("listening on ").expect("a listening line").to_string();
    // Keep reading stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Served { child, base }
}
