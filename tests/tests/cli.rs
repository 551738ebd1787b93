//! The `gridlink` CLI against a real server: the commands, their `--json` shapes, sorting,
//! and errors on stderr with a non-zero exit.

use gridlink_tests::{Server, cli};

fn ids(list: &serde_json::Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn cli_enrols_writes_syncs_and_exports() {
    let server = Server::start_demo().unwrap();
    let (worker, _) = server.user_with_role("grid-worker", 0).unwrap();
    let code = server.code_for(&worker).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    let run = cli(data, &["enroll", "--server", &server.url(), "--code", &code, "--name", "cli-test"]);
    assert!(run.success, "{run:?}");
    let again = cli(data, &["enroll", "--server", &server.url(), "--code", &code]);
    assert!(!again.success && again.stderr.contains("already enrolled"), "{again:?}");
    let run = cli(data, &["sync"]);
    assert!(run.success && run.stdout.contains("pulled"), "{run:?}");
    let status = cli(data, &["status", "--json"]).json();
    assert_eq!(status["enrolled"], true);
    assert_eq!(status["unsent"], 0);
    // The phone told the server how it is doing, for the supervisors' sync-health page.
    let devices: serde_json::Value =
        serde_json::from_str(&server.admin(&["device", "list", "--json"]).unwrap()).unwrap();
    let reported = devices.as_array().unwrap().iter().find(|d| d["name"] == "cli-test").unwrap();
    assert_eq!(reported["health"]["app_version"], env!("CARGO_PKG_VERSION"), "{reported}");
    assert_eq!(reported["health"]["unsent"], 0);

    let households = cli(data, &["households", "--json"]).json();
    let list = ids(&households);
    assert!(list.len() > 20);
    assert_eq!(list, sorted(list.clone()), "--json lists are sorted by id");
    for key in ["id", "building_id", "address", "head", "tags", "next_due"] {
        assert!(households[0].get(key).is_some(), "households items have {key}");
    }
    let due = cli(data, &["households", "--due", "--json"]).json();
    assert!(due.as_array().unwrap().len() <= list.len());

    let building = cli(data, &["buildings", "--json"]).json()[0]["id"].as_str().unwrap().to_string();
    let added = cli(
        data,
        &["household", "add", "--building", &building, "--room", "1203", "--head", "张三", "--unit", "2", "--json"],
    );
    assert!(added.success, "{added:?}");
    let household = added.json()["id"].as_str().unwrap().to_string();
    let found = ids(&cli(data, &["households", "--search", "zs", "--json"]).json());
    assert!(found.contains(&household), "zs finds 张三");
    assert!(cli(data, &["household", "tag", "--id", &household, "--add", "new-arrival"]).success);
    let bad_tag = cli(data, &["household", "tag", "--id", &household, "--add", "vip"]);
    assert!(!bad_tag.success && bad_tag.stderr.contains("new-arrival"), "{bad_tag:?}");
    let visit =
        cli(data, &["visit", "add", "--household", &household, "--outcome", "met", "--note", "新迁入住户首次走访"]);
    assert!(visit.success, "{visit:?}");
    let unknown =
        cli(data, &["visit", "add", "--household", "00000000-0000-0000-0000-000000000001", "--outcome", "met"]);
    assert!(!unknown.success && unknown.stderr.contains("not on this device"), "{unknown:?}");

    let case = cli(
        data,
        &[
            "case",
            "open",
            "--kind",
            "must-arrive:emergency",
            "--household",
            &household,
            "--title",
            "老人在家摔倒",
            "--json",
        ],
    );
    assert!(case.success, "{case:?}");
    let case = case.json()["id"].as_str().unwrap().to_string();
    assert!(cli(data, &["case", "act", "--id", &case, "--action", "accept", "--note", "马上到"]).success);
    assert!(cli(data, &["case", "act", "--id", &case, "--action", "arrive"]).success);
    let close = cli(data, &["case", "act", "--id", &case, "--action", "close", "--satisfaction", "5"]);
    assert!(!close.success, "a grid worker may not close: {close:?}");
    let bad_kind = cli(data, &["case", "open", "--kind", "party", "--title", "x"]);
    assert!(!bad_kind.success && bad_kind.stderr.contains("must-arrive"), "{bad_kind:?}");

    let cases = cli(data, &["cases", "--json"]).json();
    let case_ids = ids(&cases);
    assert_eq!(case_ids, sorted(case_ids.clone()));
    let mine = cases.as_array().unwrap().iter().find(|c| c["id"] == case.as_str()).expect("new case listed");
    assert_eq!(mine["kind"], "must-arrive:emergency");
    assert_eq!(mine["status"], "on-site");
    assert_eq!(mine["timeline"].as_array().unwrap().len(), 2);

    let run = cli(data, &["sync"]);
    assert!(run.success && run.stdout.contains("pushed 6 change(s) (6 accepted"), "{run:?}");
    assert_eq!(cli(data, &["status", "--json"]).json()["unsent"], 0);

    let export = cli(data, &["export", "--json"]);
    let value = export.json();
    let filed = value["households"].as_array().unwrap().iter().find(|h| h["id"] == household.as_str()).unwrap();
    assert_eq!(filed["visits"][0]["notes"], "新迁入住户首次走访");
    assert!(
        value["cases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == case.as_str() && c["timeline"].as_array().unwrap().len() == 2)
    );
    assert_eq!(export.stdout, cli(data, &["export", "--json"]).stdout, "export is deterministic");

    // A new arrival (新迁入) is filed with its tag and first-visit deadline at once, through
    // the same field checks as the phone's form.
    let arrived = cli(
        data,
        &[
            "household",
            "add",
            "--building",
            &building,
            "--room",
            "1505",
            "--head",
            "刘桂兰",
            "--phone",
            "13907551234",
            "--moved-in",
            "2026-11-20",
            "--json",
        ],
    );
    assert!(arrived.success, "{arrived:?}");
    let arrived = arrived.json()["id"].as_str().unwrap().to_string();
    let shown = cli(data, &["household", "show", "--id", &arrived, "--json"]).json();
    assert!(shown.to_string().contains("new-arrival"), "{shown}");
    let bad = cli(
        data,
        &["household", "add", "--building", &building, "--room", "1506", "--head", "周强", "--phone", "12345"],
    );
    assert!(!bad.success && bad.stderr.contains("手机号"), "{bad:?}");
    let taken = cli(data, &["household", "add", "--building", &building, "--room", "1505", "--head", "吴敏"]);
    assert!(!taken.success && taken.stderr.contains("1505"), "{taken:?}");
    assert!(cli(data, &["household", "edit", "--id", &arrived, "--phone", "13907559876"]).success);
    let shown = cli(data, &["household", "show", "--id", &arrived, "--json"]).json();
    assert!(shown.to_string().contains("13907559876"), "{shown}");
    let bad_phone = cli(data, &["household", "edit", "--id", &arrived, "--phone", "555"]);
    assert!(!bad_phone.success, "{bad_phone:?}");
    let nothing = cli(data, &["household", "edit", "--id", &arrived]);
    assert!(!nothing.success && nothing.stderr.contains("--phone"), "{nothing:?}");

    // A micro-wish claimed for a party member of the grid, then fulfilled; a help request
    // referred to an outlet of the directory.
    let wish = cli(
        data,
        &["case", "open", "--kind", "micro-wish", "--household", &arrived, "--title", "想要一台助听器", "--json"],
    );
    let wish = wish.json()["id"].as_str().unwrap().to_string();
    let people = cli(data, &["party", "--json"]).json();
    let member =
        people.as_array().unwrap().iter().find(|p| p["claimant"].as_str().unwrap().starts_with("party-member:"));
    let member = member.expect("the grid has party members");
    let claimant = member["claimant"].as_str().unwrap();
    let claimed = cli(data, &["case", "claim", "--id", &wish, "--claimant", claimant, "--json"]);
    assert!(claimed.success, "{claimed:?}");
    assert!(claimed.stdout.contains(member["name"].as_str().unwrap()), "the timeline names the claimant");
    let fulfilled = cli(data, &["case", "act", "--id", &wish, "--action", "fulfil", "--note", "已配好助听器"]);
    assert!(fulfilled.success && fulfilled.stdout.contains("已实现"), "{fulfilled:?}");
    let bogus = cli(data, &["case", "claim", "--id", &wish, "--claimant", "neighbour:1"]);
    assert!(!bogus.success && bogus.stderr.contains("party-member:UUID"), "{bogus:?}");

    let services = cli(data, &["services", "--json"]).json();
    let outlet = services[0]["outlets"][0]["id"].as_str().unwrap().to_string();
    let outlet_name = services[0]["outlets"][0]["name"].as_str().unwrap().to_string();
    let help = cli(
        data,
        &["case", "open", "--kind", "help:medical", "--household", &arrived, "--title", "需要上门量血压", "--json"],
    );
    let help = help.json()["id"].as_str().unwrap().to_string();
    let referred = cli(data, &["case", "refer", "--id", &help, "--outlet", &outlet, "--json"]);
    assert!(referred.success && referred.json()["timeline"][0]["outlet_name"] == outlet_name.as_str(), "{referred:?}");
    let on_wish = cli(data, &["case", "refer", "--id", &wish, "--outlet", &outlet]);
    assert!(!on_wish.success, "only a help request is referred: {on_wish:?}");
}

#[test]
fn cli_errors_go_to_stderr_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let run = cli(dir.path(), &["sync"]);
    assert!(!run.success);
    assert!(run.stderr.contains("not enrolled"), "{run:?}");
    assert!(run.stdout.is_empty());
    let refused = cli(dir.path(), &["enroll", "--server", "http://127.0.0.1:9", "--code", "NOPE-NOPE"]);
    assert!(!refused.success && refused.stderr.contains("cannot reach the server"), "{refused:?}");
}

/// The phone's own process dies mid-sync (SIGKILL of the CLI): the next sync finishes the job
/// and nothing is lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_killed_mid_sync_loses_nothing() {
    use gridlink_client::{Client, HouseholdFilter, NewVisit};
    use gridlink_shared::{VisitOutcome, time::now_millis};
    use std::sync::atomic::Ordering;

    let server = Server::start_demo().unwrap();
    let proxy = gridlink_tests::FaultProxy::start(server.addr, 3, 0.0).await.unwrap();
    let (worker, _) = server.user_with_role("grid-worker", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    {
        let client = gridlink_tests::enrolled(&server, &proxy.url(), dir.path(), &worker, "phone").await.unwrap();
        let households = client.households(&HouseholdFilter::default(), now_millis()).unwrap();
        let now = now_millis();
        for i in 0..400usize {
            let visit = NewVisit {
                household: households[i % households.len()].id,
                outcome: VisitOutcome::Met,
                notes: format!("进程被杀测试#{i:03}"),
                needs_found: vec![],
                follow_up: None,
                residents_present: vec![],
                at: now,
            };
            client.record_visit(visit, now).unwrap();
        }
    }
    let before = proxy.request_bytes.load(Ordering::SeqCst);
    let mut child = std::process::Command::new(gridlink_tests::cli_binary())
        .arg("--data")
        .arg(dir.path())
        .arg("sync")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let bound = gridlink_tests::Bound::new("waiting for the CLI to start pushing", std::time::Duration::from_secs(60));
    for _ in 0..60_000 {
        if proxy.request_bytes.load(Ordering::SeqCst) > before {
            break;
        }
        bound.check();
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    child.kill().unwrap();
    let _ = child.wait();

    let run = cli(dir.path(), &["sync"]);
    assert!(run.success, "{run:?}");
    assert_eq!(cli(dir.path(), &["status", "--json"]).json()["unsent"], 0);
    let client = Client::open(dir.path()).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for h in client.export().unwrap()["households"].as_array().unwrap() {
        for v in h["visits"].as_array().unwrap() {
            if let Some(n) = v["notes"].as_str().filter(|n| n.starts_with("进程被杀测试#")) {
                *seen.entry(n.to_string()).or_insert(0) += 1;
            }
        }
    }
    assert_eq!(seen.len(), 400);
    assert!(seen.values().all(|n| *n == 1));
    // And the server holds every one: a second device of the same grid sees them all.
    let (_, code) =
        server.add_user("赵敏", "grid-worker", &server.user_with_role("grid-worker", 1).unwrap().1).unwrap();
    let second_dir = tempfile::tempdir().unwrap();
    let second = Client::open(second_dir.path()).unwrap();
    second.enroll(&server.url(), &code, "second").await.unwrap();
    second.sync().await.unwrap();
    let count = second.export().unwrap()["households"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["visits"].as_array().unwrap().clone())
        .filter(|v| v["notes"].as_str().unwrap_or_default().starts_with("进程被杀测试#"))
        .count();
    assert_eq!(count, 400);
}
