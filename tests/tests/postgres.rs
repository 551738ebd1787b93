//! `gridlink-server serve --database URL` end to end (PostgreSQL preview): the real server
//! binary on a throwaway PostgreSQL cluster (`store::postgres::cluster`), codes issued with
//! `gridlink-server user code --database URL`, and two real `gridlink` CLI devices that
//! enrol, record a visit offline on one and sync it across to the other. Plus the hostile
//! `--database` inputs: a URL that does not parse and a socket nobody listens on give a clear
//! error and exit code 1, never a panic.

use std::process::{Command, Output};

use gridlink_sync_server::store::postgres::cluster::TestDatabase;
use gridlink_tests::admin::{Serving, last_line, notes_of, server, server_ok};
use gridlink_tests::cli;

fn serve(url: &str) -> (Serving, String) {
    Serving::database(url, &[])
}

#[test]
fn two_cli_devices_sync_a_visit_through_a_server_on_postgresql() {
    let db = TestDatabase::new().unwrap_or_else(|e| panic!("a throwaway PostgreSQL cluster: {e}"));
    let url = db.url.as_str();
    let init = server_ok(&["init", "--database", url, "--demo", "small"]);
    assert!(init.contains("300 households"), "{init}");
    // Opening an up-to-date schema again is silent (no NOTICE for each existing table).
    let again = server(&["user", "list", "--database", url]);
    assert!(again.status.success() && again.stderr.is_empty(), "{}", String::from_utf8_lossy(&again.stderr));
    let (_serving, base) = serve(url);

    let users: serde_json::Value =
        serde_json::from_str(&server_ok(&["user", "list", "--database", url, "--json"])).unwrap();
    let worker = users.as_array().unwrap().iter().find(|u| u["role"] == "grid-worker").unwrap();
    let worker = worker["id"].as_str().unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let tablet_dir = tempfile::tempdir().unwrap();
    for (dir, name) in [(phone_dir.path(), "phone"), (tablet_dir.path(), "tablet")] {
        let code = last_line(&server_ok(&["user", "code", "--database", url, "--user", worker]));
        let run = cli(dir, &["enroll", "--server", &base, "--code", &code, "--name", name]);
        assert!(run.success, "{run:?}");
        let run = cli(dir, &["sync"]);
        assert!(run.success && run.stdout.contains("pulled"), "{run:?}");
    }
    let devices: serde_json::Value =
        serde_json::from_str(&server_ok(&["device", "list", "--database", url, "--json"])).unwrap();
    assert_eq!(devices.as_array().unwrap().len(), 2, "{devices}");

    // Recorded offline: nothing leaves the phone until it syncs.
    let households = cli(phone_dir.path(), &["households", "--json"]).json();
    let household = households[0]["id"].as_str().unwrap().to_string();
    let note = "PostgreSQL 上的走访记录";
    let visit = cli(phone_dir.path(), &["visit", "add", "--household", &household, "--outcome", "met", "--note", note]);
    assert!(visit.success, "{visit:?}");
    assert_eq!(cli(phone_dir.path(), &["status", "--json"]).json()["unsent"], 1);
    assert!(!notes_of(tablet_dir.path(), &household).contains(&note.to_string()));

    assert!(cli(phone_dir.path(), &["sync"]).success);
    assert_eq!(cli(phone_dir.path(), &["status", "--json"]).json()["unsent"], 0);
    assert!(cli(tablet_dir.path(), &["sync"]).success);
    assert!(notes_of(tablet_dir.path(), &household).contains(&note.to_string()), "the visit crossed over");

    // Revoking from the CLI takes effect at the next request of the running server.
    let phone = devices.as_array().unwrap().iter().find(|d| d["name"] == "phone").unwrap()["id"].as_str().unwrap();
    server_ok(&["device", "revoke", "--database", url, "--device", phone]);
    let refused = cli(phone_dir.path(), &["sync"]);
    assert!(!refused.success, "{refused:?}");
    assert!(cli(tablet_dir.path(), &["sync"]).success);
}

fn assert_clear_failure(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(expected), "expected {expected:?} in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_bad_database_url_or_an_unreachable_socket_is_a_clear_error_not_a_panic() {
    for command in [
        &["serve", "--listen", "127.0.0.1:0"][..],
        &["init"][..],
        &["user", "list"][..],
        &["device", "list"][..],
        &["roster"][..],
        &["import", "/nonexistent/roster.csv"][..],
    ] {
        let mut args = command.to_vec();
        args.extend(["--database", "postgres://user@host:notaport/db"]);
        assert_clear_failure(&server(&args), "does not parse");

        let nobody = tempfile::tempdir().unwrap();
        let unreachable = format!("postgresql:///gridlink?host={}", nobody.path().display());
        let mut args = command.to_vec();
        args.extend(["--database", &unreachable]);
        assert_clear_failure(&server(&args), "cannot connect to PostgreSQL");
    }
    // Ledger export runs on PostgreSQL too, and says so when it cannot reach it.
    let out = server(&[
        "export",
        "--what",
        "households",
        "--out",
        "/nonexistent/ledger.xlsx",
        "--database",
        "postgresql:///nowhere?host=/nonexistent",
    ]);
    assert_clear_failure(&out, "cannot connect to PostgreSQL");
    // Exactly one of --data and --database.
    let out = server(&["user", "list", "--data", "/tmp/x", "--database", "postgresql:///x"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let out = server(&["device", "list"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn db_pool_caps_the_connections_one_process_opens_and_requests_wait_for_one() {
    let db = TestDatabase::new().unwrap_or_else(|e| panic!("a throwaway PostgreSQL cluster: {e}"));
    let url = db.url.as_str();
    server_ok(&["init", "--database", url, "--demo", "small"]);
    let (_serving, base) = Serving::database(url, &["--db-pool", "1"]);
    let users: serde_json::Value =
        serde_json::from_str(&server_ok(&["user", "list", "--database", url, "--json"])).unwrap();
    let workers: Vec<String> = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["role"] == "grid-worker")
        .take(4)
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    let phones: Vec<_> = workers
        .iter()
        .map(|worker| {
            let dir = tempfile::tempdir().unwrap();
            let code = last_line(&server_ok(&["user", "code", "--database", url, "--user", worker]));
            assert!(cli(dir.path(), &["enroll", "--server", &base, "--code", &code, "--name", "网格员手机"]).success);
            dir
        })
        .collect();
    // Four first syncs at once through one database connection: they queue, none fails.
    std::thread::scope(|scope| {
        for phone in &phones {
            scope.spawn(|| {
                let run = cli(phone.path(), &["sync"]);
                assert!(run.success, "{run:?}");
            });
        }
    });
    let probe = Command::new("psql")
        .args(["-XAt", "--dbname", url, "-c"])
        .arg("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        .output()
        .unwrap();
    assert!(probe.status.success(), "{}", String::from_utf8_lossy(&probe.stderr));
    let others: u32 = String::from_utf8_lossy(&probe.stdout).trim().parse().unwrap();
    assert!(others <= 1, "the server holds {others} connections with --db-pool 1");
}

/// A new street's roster as a community office would type it: a street, a community, a grid,
/// a building with two households, and the grid worker.
const NEW_STREET_CSV: &str = "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room
street,00000000-0000-4000-8000-00000000a001,,东湖街道,,,,,,,,
community,00000000-0000-4000-8000-00000000a011,00000000-0000-4000-8000-00000000a001,水果湖社区,,,,,,,,
grid,00000000-0000-4000-8000-00000000a101,00000000-0000-4000-8000-00000000a011,水果湖社区第3网格,,,,,,,,
building,00000000-0000-4000-8000-00000000a201,00000000-0000-4000-8000-00000000a101,翠柳村12栋,,,,2,7,2,,
household,00000000-0000-4000-8000-00000000a301,00000000-0000-4000-8000-00000000a201,熊桂芳,13871234501,,,,,,1,302
household,00000000-0000-4000-8000-00000000a302,00000000-0000-4000-8000-00000000a201,喻德胜,13871234502,,,,,,2,701
staff,00000000-0000-4000-8000-00000000a401,,付晓梅,13871234500,grid-worker,grid:00000000-0000-4000-8000-00000000a101,,,,,
";

#[test]
fn a_roster_imported_on_postgresql_shows_in_the_report_reaches_a_phone_and_checks_clean() {
    let db = TestDatabase::new().unwrap_or_else(|e| panic!("a throwaway PostgreSQL cluster: {e}"));
    let url = db.url.as_str();
    server_ok(&["init", "--database", url]);
    let files = tempfile::tempdir().unwrap();

    // A file with a bad row imports nothing and names the row.
    let bad = files.path().join("bad.csv");
    std::fs::write(&bad, NEW_STREET_CSV.replace("13871234502", "找喻师傅")).unwrap();
    let out = server(&["import", "--database", url, bad.to_str().unwrap()]);
    assert_clear_failure(&out, "row 7, column phone");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was imported"));
    assert!(!server_ok(&["roster", "--database", url]).contains("东湖街道"), "nothing imported");

    let roster = files.path().join("东湖街道花名册.csv");
    std::fs::write(&roster, NEW_STREET_CSV).unwrap();
    let imported = server_ok(&["import", "--database", url, roster.to_str().unwrap()]);
    assert!(imported.contains("1 streets,") && imported.contains("2 new households"), "{imported}");
    let again = server_ok(&["import", "--database", url, roster.to_str().unwrap()]);
    assert!(again.contains("0 new households (2 already present)"), "{again}");

    let report = server_ok(&["roster", "--database", url]);
    for expected in [
        "东湖街道 00000000-0000-4000-8000-00000000a001",
        "水果湖社区第3网格 grid:00000000-0000-4000-8000-00000000a101 (2 households, 0 moved out, 0 open cases)",
        "翠柳村12栋 building:00000000-0000-4000-8000-00000000a201 (2 households)",
    ] {
        assert!(report.contains(expected), "missing {expected:?} in:\n{report}");
    }

    // The imported worker enrols and receives the imported households.
    let (_serving, base) = serve(url);
    let code =
        last_line(&server_ok(&["user", "code", "--database", url, "--user", "00000000-0000-4000-8000-00000000a401"]));
    let phone = tempfile::tempdir().unwrap();
    let run = cli(phone.path(), &["enroll", "--server", &base, "--code", &code, "--name", "付晓梅的手机"]);
    assert!(run.success, "{run:?}");
    assert!(cli(phone.path(), &["sync"]).success);
    let households = cli(phone.path(), &["households", "--json"]).json();
    let mut heads: Vec<&str> = households.as_array().unwrap().iter().map(|h| h["head"].as_str().unwrap()).collect();
    heads.sort();
    assert_eq!(heads, ["喻德胜", "熊桂芳"], "{households}");

    let audit = server_ok(&["audit", "--database", url, "--kind", "roster-import"]);
    assert_eq!(audit.lines().count(), 3, "two imports and one refused file:\n{audit}");

    // Everything the import wrote loads as a phone would load it, indexes included.
    let check = server_ok(&["check", "--database", url]);
    assert!(check.contains("checked 2 documents and 2 changes") && check.contains("all sound"), "{check}");
}
