//! Backups of a district's PostgreSQL database, tested as an operator would run them:
//! `scripts/pg-backup.sh` while the real server serves, `scripts/pg-restore.sh` into an empty
//! database, then `gridlink-server serve` on the restored database at the same address. The
//! phone enrolled before the backup keeps syncing with its old token (no new enrolment), and
//! what it recorded before the backup is on a fresh device. Hostile restores: a damaged dump
//! (checksum mismatch), a file that is not a dump, and a target that already holds data are
//! refused with exit 1, leaving the target as it was.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gridlink_sync_server::store::postgres::cluster::TestDatabase;
use gridlink_tests::admin::{Serving, last_line, notes_of, server_ok};
use gridlink_tests::{cli, server_binary};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts").join(name)
}

fn run_script(name: &str, args: &[&str]) -> Output {
    Command::new(script(name)).args(args).output().unwrap_or_else(|e| panic!("run {name}: {e}"))
}

fn serve(url: &str, listen: &str) -> (Serving, String) {
    Serving::start(&["--database", url, "--listen", listen])
}

fn worker_code(url: &str) -> String {
    let users: serde_json::Value =
        serde_json::from_str(&server_ok(&["user", "list", "--database", url, "--json"])).unwrap();
    let worker = users.as_array().unwrap().iter().find(|u| u["role"] == "grid-worker").unwrap();
    last_line(&server_ok(&["user", "code", "--database", url, "--user", worker["id"].as_str().unwrap()]))
}

fn table_count(url: &str) -> String {
    let out =
        Command::new("psql").args(["-XAt", "--dbname", url, "-c"]).arg("SELECT count(*) FROM docs").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_backup_restored_into_an_empty_database_serves_the_same_phones() {
    let source = TestDatabase::new().unwrap_or_else(|e| panic!("a throwaway PostgreSQL cluster: {e}"));
    let target = TestDatabase::new().unwrap();
    server_ok(&["init", "--database", &source.url, "--demo", "small"]);
    let (serving, base) = serve(&source.url, "127.0.0.1:0");

    let phone = tempfile::tempdir().unwrap();
    let enrolled = cli(
        phone.path(),
        &["enroll", "--server", &base, "--code", &worker_code(&source.url), "--name", "陈晓燕的手机"],
    );
    assert!(enrolled.success, "{enrolled:?}");
    assert!(cli(phone.path(), &["sync"]).success);
    let household = cli(phone.path(), &["households", "--json"]).json()[0]["id"].as_str().unwrap().to_string();
    let before = "备份前的走访：独居老人王桂兰身体尚可";
    assert!(
        cli(phone.path(), &["visit", "add", "--household", &household, "--outcome", "met", "--note", before]).success
    );
    assert!(cli(phone.path(), &["sync"]).success);

    // The backup runs while the server serves.
    let backups = tempfile::tempdir().unwrap();
    let out = run_script("pg-backup.sh", &[&source.url, backups.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dump = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(Path::new(&dump).is_file() && Path::new(&format!("{dump}.sha256")).is_file(), "{dump}");

    // The district's database is lost; the server comes back on the restored one, same address.
    let address = base.trim_start_matches("http://").to_string();
    drop(serving);
    let out = run_script("pg-restore.sh", &[&dump, &target.url, server_binary().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(table_count(&target.url), table_count(&source.url));
    let (_serving, _) = serve(&target.url, &address);

    // The same phone, the same token: it records and syncs on without enrolling again.
    let after = "恢复后的走访：已联系其女儿";
    assert!(
        cli(phone.path(), &["visit", "add", "--household", &household, "--outcome", "met", "--note", after]).success
    );
    let synced = cli(phone.path(), &["sync"]);
    assert!(synced.success, "{synced:?}");
    assert_eq!(cli(phone.path(), &["status", "--json"]).json()["unsent"], 0);

    let fresh = tempfile::tempdir().unwrap();
    assert!(
        cli(fresh.path(), &["enroll", "--server", &base, "--code", &worker_code(&target.url), "--name", "新手机"])
            .success
    );
    assert!(cli(fresh.path(), &["sync"]).success);
    let notes = notes_of(fresh.path(), &household);
    for note in [before, after] {
        assert_eq!(notes.iter().filter(|n| *n == note).count(), 1, "{note} once in {notes:?}");
    }
}

#[test]
fn damaged_dumps_and_non_empty_targets_are_refused() {
    let source = TestDatabase::new().unwrap_or_else(|e| panic!("a throwaway PostgreSQL cluster: {e}"));
    let empty = TestDatabase::new().unwrap();
    server_ok(&["init", "--database", &source.url, "--demo", "small"]);
    let backups = tempfile::tempdir().unwrap();
    let out = run_script("pg-backup.sh", &[&source.url, backups.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dump = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let server = server_binary();
    let server = server.to_str().unwrap();

    let refused = |out: Output, expected: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "expected {expected:?} in {stderr}");
    };
    // Into a database that already holds a Gridlink schema (the source itself).
    refused(run_script("pg-restore.sh", &[&dump, &source.url, server]), "already has");
    // A dump damaged after it was written no longer matches its checksum.
    let bytes = std::fs::read(&dump).unwrap();
    std::fs::write(&dump, &bytes[..bytes.len() / 2]).unwrap();
    refused(run_script("pg-restore.sh", &[&dump, &empty.url, server]), "does not match its .sha256");
    // A file that is not a dump at all (and has no checksum beside it).
    let junk = backups.path().join("notes.dump");
    std::fs::write(&junk, "这不是备份文件").unwrap();
    refused(
        run_script("pg-restore.sh", &[junk.to_str().unwrap(), &empty.url, server]),
        "not a readable pg_dump archive",
    );
    // Nothing was restored into the empty target by the refused attempts.
    let tables = Command::new("psql")
        .args(["-XAt", "--dbname", &empty.url, "-c", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&tables.stdout).trim(), "0");
    // A backup of a database that does not answer fails and leaves no file behind.
    let nobody = tempfile::tempdir().unwrap();
    let unreachable = format!("postgresql:///gridlink?host={}", nobody.path().display());
    let out_dir = tempfile::tempdir().unwrap();
    let out = run_script("pg-backup.sh", &[&unreachable, out_dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 0, "no partial dump left");
}
