//! The security audit: admin actions of the real CLI binary, enrolments and wrong codes,
//! accepted and refused pushes over real HTTP, listed by `gridlink-server audit` merged and
//! newest first with its filters, on both backends (`stories!`; `serve --database` on
//! PostgreSQL); console logins and admin actions through the console's router, recorded with
//! the signed-in user as their origin, and the console password the CLI sets: SQLite only
//! (the web console is not served from PostgreSQL yet).

#[path = "common/backends.rs"]
mod backends;
mod binary;
mod common;

use std::io::Write;
use std::process::Stdio;

use backends::Backend;
use binary::{BIN, add_worker_at, fails_at, last_line, ok_at, serve_at};
use common::console::Browser;
use common::{DEMO_NOW, DEMO_SEED, Harness};
use gridlink_shared::demo::DemoSize;
use gridlink_shared::protocol::{self, EnrollRequest, EnrollResponse, PushChange, SyncResponse};
use gridlink_shared::time::{local_date, now_millis};
use gridlink_shared::{DocId, HouseholdFile, Role};
use gridlink_sync_server::store::AuditFilter;

const CSV: &str = "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room
street,00000000-0000-4000-8000-000000000001,,澜湖街道,,,,,,,,
";

fn audit(store: &[String], args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str::<serde_json::Value>(&ok_at(store, &all)).unwrap().as_array().unwrap().clone()
}

fn kinds(entries: &[serde_json::Value]) -> Vec<String> {
    entries.iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect()
}

async fn post_sync(http: &reqwest::Client, base: &str, token: &str, body: Vec<u8>) -> SyncResponse {
    let response = http
        .post(format!("{base}/v1/sync"))
        .bearer_auth(token)
        .header("content-type", protocol::CONTENT_TYPE)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    protocol::decode(&response.bytes().await.unwrap()).unwrap()
}

fn audit_merges_admin_actions_enrolments_changes_and_refusals_newest_first_and_filters_them<B: Backend>() {
    // The store is made outside the runtime: PostgreSQL's client blocks.
    let (place, store) = B::fresh();
    store.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let data = &B::cli_args(&place)[..];
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let roster: serde_json::Value = serde_json::from_str(&ok_at(data, &["roster", "--json"])).unwrap();
        let grids: Vec<String> = roster["streets"][0]["communities"][0]["grids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].as_str().unwrap().to_string())
            .collect();
        assert!(audit(data, &[]).is_empty(), "a fresh demo has no audit entries");

        // Admin actions, each through the CLI.
        let (user, first_code) = add_worker_at(data, "陈晓燕", &grids[0]);
        let code = last_line(&ok_at(data, &["user", "code", "--user", &user]));
        ok_at(data, &["user", "set-scopes", "--user", &user, "--scope", &format!("grid:{}", grids[0])]);
        let files = tempfile::tempdir().unwrap();
        let csv = files.path().join("roster.csv");
        std::fs::write(&csv, CSV).unwrap();
        ok_at(data, &["import", csv.to_str().unwrap()]);
        ok_at(data, &["compact", "--keep", "100000"]);

        // Enrolments over HTTP: a wrong code, a right one, a used one.
        let server = serve_at(data, &[]).await;
        let base = &server.base;
        let http = reqwest::Client::new();
        let enroll = |code: String| {
            let http = http.clone();
            let url = format!("{base}/v1/enroll");
            async move {
                http.post(url).json(&EnrollRequest { code, device_name: "陈晓燕的手机".into() }).send().await.unwrap()
            }
        };
        assert_eq!(enroll("ZZZZ-ZZZZ".into()).await.status(), 401);
        let enrolled: EnrollResponse = enroll(code.clone()).await.json().await.unwrap();
        assert_eq!(enroll(code).await.status(), 401, "a used code");
        let device = enrolled.device.to_string();

        // One accepted and one refused change over HTTP.
        let mut phone = common::Device::new(enrolled.clone());
        loop {
            let response = post_sync(&http, base, &phone.token, protocol::encode(&phone.request(Vec::new()))).await;
            phone.apply(&response);
            if !response.more {
                break;
            }
        }
        let household = *phone
            .docs
            .iter()
            .find(|(_, d)| gridlink_shared::doc::read::<HouseholdFile>(*d).is_ok())
            .map(|(id, _)| id)
            .expect("the worker holds households");
        let edit = phone.edit::<HouseholdFile>(household, |h| h.phone = "13907148888".into());
        let junk = PushChange { doc: DocId::new(), bytes: b"not an automerge change".to_vec() };
        let response = post_sync(&http, base, &phone.token, protocol::encode(&phone.request(vec![edit, junk]))).await;
        assert_eq!(response.acks.len(), 2);
        ok_at(data, &["device", "revoke", "--device", &device]);

        let all = audit(data, &[]);
        assert_eq!(
            kinds(&all),
            [
                "revoke",
                "push-refused",
                "change-accepted",
                "enrol-refused",
                "enrol",
                "enrol-refused",
                "compact",
                "roster-import",
                "scopes-set",
                "code-issued",
                "user-add",
            ],
            "{all:#?}"
        );
        assert!(all.windows(2).all(|w| w[0]["at"].as_i64() >= w[1]["at"].as_i64()), "newest first");
        let by_kind = |k: &str| all.iter().find(|e| e["kind"] == k).unwrap().clone();
        assert_eq!(by_kind("user-add")["user"], user.as_str());
        assert_eq!(by_kind("user-add")["origin"], "cli");
        assert_eq!(by_kind("user-add")["detail"]["role"], "grid-worker");
        assert_eq!(by_kind("enrol")["device"], device.as_str());
        assert_eq!(by_kind("enrol")["origin"], "enrol");
        assert_eq!(by_kind("roster-import")["detail"]["imported"]["streets"], 1);
        assert_eq!(by_kind("change-accepted")["detail"]["doc_id"], household.to_string());
        assert_eq!(by_kind("change-accepted")["origin"], format!("device:{device}"));
        assert_eq!(by_kind("push-refused")["detail"]["bytes_len"], 23);
        let refused: Vec<_> = all.iter().filter(|e| e["kind"] == "enrol-refused").collect();
        assert!(refused[1]["user"].is_null(), "a code that names nobody: {:?}", refused[1]);
        assert_eq!(refused[0]["user"], user.as_str(), "a used code names its user");
        assert!(!serde_json::to_string(&all).unwrap().contains("ZZZZ"), "typed codes are never stored");
        assert!(!serde_json::to_string(&all).unwrap().contains(&first_code), "issued codes are never stored");

        // Filters.
        let mine = audit(data, &["--device", &device]);
        assert_eq!(kinds(&mine), ["revoke", "push-refused", "change-accepted", "enrol"]);
        assert_eq!(by_kind("revoke")["user"], user.as_str(), "an action on a device names its user too");
        let theirs = audit(data, &["--user", &user]);
        assert!(theirs.iter().all(|e| e["user"] == user.as_str()));
        assert_eq!(theirs.len(), all.iter().filter(|e| e["user"] == user.as_str()).count());
        assert_eq!(
            kinds(&theirs),
            [
                "revoke",
                "push-refused",
                "change-accepted",
                "enrol-refused",
                "enrol",
                "scopes-set",
                "code-issued",
                "user-add"
            ]
        );
        assert_eq!(kinds(&audit(data, &["--kind", "push-refused"])), ["push-refused"]);
        assert_eq!(audit(data, &["--limit", "2"]).len(), 2);
        let today = local_date(now_millis());
        assert_eq!(audit(data, &["--since", &today.to_string()]).len(), all.len());
        assert!(audit(data, &["--since", &today.succ_opt().unwrap().to_string()]).is_empty());
        let stderr = fails_at(data, &["audit", "--kind", "coffee"]);
        assert!(stderr.contains("unknown kind 'coffee'"), "{stderr}");
        assert!(fails_at(data, &["audit", "--since", "yesterday"]).contains("--since"));

        // The plain table: one line per entry.
        let table = ok_at(data, &["audit"]);
        assert_eq!(table.lines().count(), all.len());
        assert!(table.lines().next().unwrap().contains("revoke"), "{table}");
    });
}

#[tokio::test]
async fn console_logins_and_admin_actions_are_recorded_with_the_signed_in_user() {
    let h = Harness::new();
    let admin = h.demo.roster.staff.iter().find(|s| s.role == Role::Admin).unwrap().clone();
    let worker = h.staff(Role::GridWorker);
    let log = |kind: &str| {
        h.admin.audit_log(&AuditFilter { kind: Some(kind.into()), limit: 100, ..AuditFilter::default() }).unwrap()
    };
    // The console password, set with the CLI, is an admin action of its own.
    let mut password = std::process::Command::new(BIN)
        .args(["user", "password", "--user", &admin.id.to_string(), "--data"])
        .arg(h.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    password.stdin.take().unwrap().write_all("网格通管理员密码\n".as_bytes()).unwrap();
    assert!(password.wait().unwrap().success());
    let set = log("user-password");
    assert_eq!((set.len(), set[0].origin.as_str()), (1, "cli"));
    assert_eq!(set[0].user, Some(admin.id.to_string()));

    let mut browser = Browser::new(h.app.clone());
    assert_eq!(browser.sign_in(&admin.id.to_string(), "wrong password!").await.status, 401);
    assert_eq!(browser.sign_in("nobody-at-all", "wrong password!").await.status, 401);
    let failed = log("console-login-failed");
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0].user, None);
    assert_eq!(failed[0].origin, "console");
    assert_eq!(failed[0].detail["login"], "nobody-at-all");
    assert_eq!(failed[1].user, Some(admin.id.to_string()));
    assert!(log("console-login").is_empty());

    let mut browser = Browser::signed_in(h.app.clone(), &admin.id.to_string(), "网格通管理员密码").await;
    let logins = log("console-login");
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].origin, format!("console:{}", admin.id));

    // An admin action from the console: a code issued, then the worker's devices revoked.
    let device = h.enroll(&worker).await;
    let page = browser.get(&format!("/console/admin/users/{}", worker.id)).await;
    let issued = browser.post(&format!("/console/admin/users/{}/code", worker.id), &[("csrf", &page.csrf())]).await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let devices = browser.get("/console/admin/devices").await;
    let revoked = browser
        .post("/console/admin/devices/revoke", &[("csrf", &devices.csrf()), ("user", &worker.id.to_string())])
        .await;
    assert_eq!(revoked.status, 303);
    let codes = log("code-issued");
    assert_eq!(codes.len(), 1);
    assert_eq!(
        (codes[0].user.clone(), codes[0].origin.clone()),
        (Some(worker.id.to_string()), format!("console:{}", admin.id))
    );
    let revokes = log("revoke");
    assert_eq!(revokes.len(), 1);
    assert_eq!(revokes[0].detail["devices"], 1);
    assert_eq!(revokes[0].origin, format!("console:{}", admin.id));
    // The console's audit page lists them, with the changes, or alone.
    let page = browser.get("/console/admin/audit?kind=security").await;
    assert_eq!(page.status, 200);
    for label in ["后台登录失败", "后台登录", "签发登记码", "吊销设备", "设备登记"] {
        assert!(page.body.contains(label), "{label} missing: {}", page.body);
    }
    assert!(page.body.contains(&format!("console:{}", admin.id)));
    let all = browser.get("/console/admin/audit").await;
    assert!(all.body.contains("签发登记码"));
    let refused_only = browser.get("/console/admin/audit?kind=refused").await;
    assert!(!refused_only.body.contains("签发登记码"));
    let enrolments = log("enrol");
    assert_eq!(enrolments.len(), 1);
    assert_eq!(enrolments[0].device, Some(device.enrolled.device.to_string()));
}

stories!(audit_merges_admin_actions_enrolments_changes_and_refusals_newest_first_and_filters_them);
