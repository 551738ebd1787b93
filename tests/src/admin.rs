//! The real `gridlink-server` as an operator runs it, for the end-to-end files that drive it
//! by hand (PostgreSQL, migration, backups): one admin command to completion, a `serve`
//! process that is stopped or killed, and what a `gridlink` CLI phone holds of a household.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use crate::{cli, server_binary};

/// Runs `gridlink-server ARGS...` to completion.
pub fn server(args: &[&str]) -> Output {
    Command::new(server_binary()).args(args).env("RUST_LOG", "warn").output().expect("run gridlink-server")
}

/// Runs `gridlink-server ARGS...`, which must succeed; its stdout.
pub fn server_ok(args: &[&str]) -> String {
    let out = server(args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs `gridlink-server ARGS...`, which must fail cleanly (exit 1, no panic); its stderr.
pub fn server_refused(args: &[&str]) -> String {
    let out = server(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// The last non-empty line (an enrolment code after `user code` or `user add`).
pub fn last_line(text: &str) -> String {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().trim().to_string()
}

/// A `gridlink-server serve` process; killed on drop if still running.
pub struct Serving(Child);

impl Serving {
    /// `gridlink-server serve ARGS...` (store and `--listen` included); returns the process and
    /// its base URL once it listens.
    pub fn start(args: &[&str]) -> (Serving, String) {
        let mut child = Command::new(server_binary())
            .arg("serve")
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gridlink-server serve");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let first = lines.next().transpose().ok().flatten().unwrap_or_default();
        let serving = Serving(child);
        let base =
            first.strip_prefix("listening on ").unwrap_or_else(|| panic!("did not start: {first:?}")).to_string();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        (serving, base)
    }

    /// `serve --database URL --listen 127.0.0.1:0 EXTRA...`.
    pub fn database(url: &str, extra: &[&str]) -> (Serving, String) {
        let mut args = vec!["--database", url, "--listen", "127.0.0.1:0"];
        args.extend(extra);
        Serving::start(&args)
    }

    /// Stops it as an operator would (SIGTERM) and checks it exits cleanly.
    pub fn stop(mut self) {
        let status = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status().expect("kill");
        assert!(status.success());
        let exited = self.0.wait().expect("wait for serve");
        assert!(exited.success(), "serve stopped cleanly: {exited:?}");
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The notes of every visit a `gridlink` CLI phone holds for a household.
pub fn notes_of(device: &Path, household: &str) -> Vec<String> {
    let shown = cli(device, &["household", "show", "--id", household, "--json"]);
    assert!(shown.success, "{shown:?}");
    shown.json()["visits"]
        .as_array()
        .map(|visits| visits.iter().filter_map(|v| v["notes"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}
