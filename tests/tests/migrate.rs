//! Moving a running street from SQLite to PostgreSQL with the real binaries: `serve --data`,
//! a `gridlink` CLI phone that enrols, syncs and records a visit; the server stopped;
//! `gridlink-server migrate --data DIR --to URL` (refused while the server still runs, and
//! into a database that already holds data); `serve --database URL` on the same address; the
//! same phone records and syncs another visit without enrolling again, and a phone enrolled
//! on PostgreSQL sees both visits exactly once.

use std::path::Path;

use gridlink_sync_server::store::postgres::cluster::TestDatabase;
use gridlink_tests::admin::{Serving, last_line, notes_of, server_ok, server_refused};
use gridlink_tests::cli;

fn sync(device: &Path) {
    let run = cli(device, &["sync"]);
    assert!(run.success, "{run:?}");
    assert_eq!(cli(device, &["status", "--json"]).json()["unsent"], 0, "everything went out");
}

#[test]
fn a_street_moves_from_sqlite_to_postgresql_and_its_phones_carry_on_without_enrolling_again() {
    let data_dir = tempfile::tempdir().unwrap();
    let data = data_dir.path().to_str().unwrap();
    server_ok(&["init", "--data", data, "--demo", "small"]);
    let (serving, base) = Serving::start(&["--data", data, "--listen", "127.0.0.1:0"]);

    let users: serde_json::Value =
        serde_json::from_str(&server_ok(&["user", "list", "--data", data, "--json"])).unwrap();
    let worker = users.as_array().unwrap().iter().find(|u| u["role"] == "grid-worker").unwrap();
    let worker = worker["id"].as_str().unwrap();
    let phone = tempfile::tempdir().unwrap();
    let code = last_line(&server_ok(&["user", "code", "--data", data, "--user", worker]));
    let run = cli(phone.path(), &["enroll", "--server", &base, "--code", &code, "--name", "王建国的手机"]);
    assert!(run.success, "{run:?}");
    sync(phone.path());
    let households = cli(phone.path(), &["households", "--json"]).json();
    let household = households[0]["id"].as_str().unwrap().to_string();
    let before = "迁移前：陈淑芬家，独居老人，血压正常";
    let visit = cli(phone.path(), &["visit", "add", "--household", &household, "--outcome", "met", "--note", before]);
    assert!(visit.success, "{visit:?}");
    sync(phone.path());

    // While the server has the database open, the copy is refused: changes could arrive after it.
    let db = TestDatabase::new().unwrap_or_else(|e| panic!("a throwaway PostgreSQL cluster: {e}"));
    let url = db.url.as_str();
    let stderr = server_refused(&["migrate", "--data", data, "--to", url]);
    assert!(stderr.contains("is open in process") && stderr.contains("stop the server"), "{stderr}");

    serving.stop();
    let out = server_ok(&["migrate", "--data", data, "--to", url]);
    assert!(out.contains("all equal"), "{out}");
    // The e-link's requests and the console's tables are copied too.
    assert!(out.contains("  elink_requests: ") && out.contains("  console_sessions: "), "{out}");
    assert!(!out.contains("not yet served"), "{out}");
    assert!(out.contains("migrated "), "{out}");
    // Twice is refused: the database holds the street now.
    let stderr = server_refused(&["migrate", "--data", data, "--to", url]);
    assert!(stderr.contains("already holds data"), "{stderr}");

    // The same address, now served from PostgreSQL: the phone keeps its server URL and token.
    let listen = base.strip_prefix("http://").unwrap();
    let (_serving, again) = Serving::start(&["--database", url, "--listen", listen]);
    assert_eq!(again, base);
    let after = "迁移后：陈淑芬家，复查血压，已联系家庭医生";
    let visit = cli(phone.path(), &["visit", "add", "--household", &household, "--outcome", "met", "--note", after]);
    assert!(visit.success, "{visit:?}");
    sync(phone.path());

    let fresh = tempfile::tempdir().unwrap();
    let code = last_line(&server_ok(&["user", "code", "--database", url, "--user", worker]));
    let run = cli(fresh.path(), &["enroll", "--server", &base, "--code", &code, "--name", "王建国的新手机"]);
    assert!(run.success, "{run:?}");
    sync(fresh.path());
    let notes = notes_of(fresh.path(), &household);
    for note in [before, after] {
        assert_eq!(notes.iter().filter(|n| *n == note).count(), 1, "{note} once in {notes:?}");
    }
    let mut on_phone = notes_of(phone.path(), &household);
    let mut on_fresh = notes;
    on_phone.sort();
    on_fresh.sort();
    assert_eq!(on_phone, on_fresh, "both phones hold the same household");
    let devices: serde_json::Value =
        serde_json::from_str(&server_ok(&["device", "list", "--database", url, "--json"])).unwrap();
    assert_eq!(devices.as_array().unwrap().len(), 2, "no second enrolment of the first phone: {devices}");
}
