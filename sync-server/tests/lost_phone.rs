//! Lost or stolen phones, end to end with the real binary over HTTP on 127.0.0.1: remote
//! wipe (410 device-wiped at every request, delivery recorded once) against revoke (401
//! device-revoked), and the recovery key made at enrolment and shown to an admin; both on
//! each backend (`stories!`: `serve --data` and `serve --database`). The upgrade of a
//! data directory from before wipes is SQLite's own.

#[path = "common/backends.rs"]
mod backends;
mod binary;

use backends::Backend;
use binary::{add_worker, add_worker_at, data_args, fails_at, init_demo, last_line, ok, ok_at, serve_at};
use gridlink_shared::demo::DemoSize;
use gridlink_shared::protocol::{self, EnrollRequest, EnrollResponse, ErrorEnvelope, PROTOCOL_VERSION, SyncRequest};

async fn enroll(http: &reqwest::Client, base: &str, code: &str, name: &str) -> EnrollResponse {
    let response = http
        .post(format!("{base}/v1/enroll"))
        .json(&EnrollRequest { code: code.to_string(), device_name: name.to_string() })
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn me_status(http: &reqwest::Client, base: &str, token: &str) -> (u16, Option<String>) {
    let response = http.get(format!("{base}/v1/me")).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    let code = response.json::<ErrorEnvelope>().await.ok().map(|e| e.error.code.code().to_string());
    (status, code)
}

async fn sync_status(http: &reqwest::Client, base: &str, token: &str, body: Vec<u8>) -> (u16, Option<String>) {
    let response = http
        .post(format!("{base}/v1/sync"))
        .bearer_auth(token)
        .header("content-type", protocol::CONTENT_TYPE)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let code = response.json::<ErrorEnvelope>().await.ok().map(|e| e.error.code.code().to_string());
    (status, code)
}

fn empty_sync() -> Vec<u8> {
    protocol::encode(&SyncRequest {
        protocol: PROTOCOL_VERSION,
        cursors: Default::default(),
        changes: Vec::new(),
        page_bytes: None,
        repair: Vec::new(),
        reference_version: None,
        device_time: 0,
        health: None,
        verify: Vec::new(),
        compact_acks: false,
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// A store with the small demo, its CLI arguments, and its grids' ids.
fn demo<B: Backend>() -> (B::Place, B, Vec<String>) {
    let (place, store) = B::fresh();
    store.load_demo(DemoSize::Small, 7, gridlink_shared::time::now_millis());
    let roster = store.roster().unwrap();
    let grids = roster.grids.iter().map(|g| g.id.to_string()).collect();
    (place, store, grids)
}

fn device_json(data: &[String], id: &str) -> serde_json::Value {
    let devices: serde_json::Value = serde_json::from_str(&ok_at(data, &["device", "list", "--json"])).unwrap();
    devices.as_array().unwrap().iter().find(|d| d["id"] == id).unwrap().clone()
}

fn audit(data: &[String], args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str::<serde_json::Value>(&ok_at(data, &all)).unwrap().as_array().unwrap().clone()
}

fn a_wiped_device_is_answered_410_at_every_request_before_its_body_is_read_and_revoke_keeps_its_meaning<B: Backend>() {
    // The store is made outside the runtime: PostgreSQL's client blocks.
    let (place, _store, grids) = demo::<B>();
    let data = &B::cli_args(&place)[..];
    runtime().block_on(async {
        let (user, code) = add_worker_at(data, "陈晓燕", &grids[0]);
        let (_, other_code) = add_worker_at(data, "李娜", &grids[1]);
        let server = serve_at(data, &[]).await;
        let base = &server.base;
        assert!(base.starts_with("http://"), "{base}");
        let http = reqwest::Client::new();

        let lost = enroll(&http, base, &code, "丢失的手机").await;
        let second_code = last_line(&ok_at(data, &["user", "code", "--user", &user]));
        let spare = enroll(&http, base, &second_code, "备用手机").await;
        let colleague = enroll(&http, base, &other_code, "李娜的手机").await;
        assert_eq!(sync_status(&http, base, &lost.token, empty_sync()).await.0, 200);

        let out = ok_at(data, &["device", "wipe", "--device", &lost.device.to_string()]);
        assert!(out.contains("will be wiped"), "{out}");
        let listed = device_json(data, &lost.device.to_string());
        assert!(listed["wipe_requested_at"].is_i64() && listed["wipe_delivered_at"].is_null(), "{listed}");

        // Every route with its token: 410 device-wiped. The sync body is not even CBOR: the wipe
        // check comes before any body is read.
        assert_eq!(me_status(&http, base, &lost.token).await, (410, Some("device-wiped".into())));
        assert_eq!(
            sync_status(&http, base, &lost.token, b"not cbor at all".to_vec()).await,
            (410, Some("device-wiped".into()))
        );
        assert_eq!(sync_status(&http, base, &lost.token, empty_sync()).await, (410, Some("device-wiped".into())));
        let listed = device_json(data, &lost.device.to_string());
        let delivered = listed["wipe_delivered_at"].as_i64().expect("delivery recorded");
        assert!(delivered >= listed["wipe_requested_at"].as_i64().unwrap());
        assert!(
            ok_at(data, &["device", "list"])
                .lines()
                .any(|l| l.contains(&lost.device.to_string()) && l.contains(" wiped "))
        );

        // A device that lost the reply is told again, and the first delivery is not overwritten.
        assert_eq!(me_status(&http, base, &lost.token).await.0, 410);
        assert_eq!(device_json(data, &lost.device.to_string())["wipe_delivered_at"].as_i64(), Some(delivered));
        let delivered_events = audit(data, &["--kind", "wipe-delivered"]);
        assert_eq!(delivered_events.len(), 1, "{delivered_events:?}");
        assert_eq!(delivered_events[0]["device"], lost.device.to_string());
        assert_eq!(delivered_events[0]["origin"], format!("device:{}", lost.device));

        // The user's other phone and a colleague's are untouched.
        assert_eq!(me_status(&http, base, &spare.token).await.0, 200);
        assert_eq!(sync_status(&http, base, &colleague.token, empty_sync()).await.0, 200);

        // Revoke keeps its meaning: 401 device-revoked, no wipe.
        ok_at(data, &["device", "revoke", "--device", &spare.device.to_string()]);
        assert_eq!(me_status(&http, base, &spare.token).await, (401, Some("device-revoked".into())));
        assert!(device_json(data, &spare.device.to_string())["wipe_requested_at"].is_null());

        // Wiping the user's phones reaches the revoked one too (a phone revoked when it was lost
        // still wipes if it comes back), and not the phone already marked.
        let out = ok_at(data, &["device", "wipe", "--user", &user]);
        assert!(out.starts_with("1 device(s)"), "{out}");
        assert_eq!(me_status(&http, base, &spare.token).await, (410, Some("device-wiped".into())));
        assert_eq!(me_status(&http, base, &colleague.token).await.0, 200);
        // Marking again is harmless.
        let out = ok_at(data, &["device", "wipe", "--device", &lost.device.to_string()]);
        assert!(out.contains("already marked"), "{out}");

        // Both wipes are audited as admin actions from the CLI.
        let wipes = audit(data, &["--kind", "wipe"]);
        assert_eq!(wipes.len(), 3, "{wipes:?}");
        assert!(wipes.iter().all(|w| w["origin"] == "cli"));
        assert_eq!(wipes[1]["detail"]["devices"], 1, "newest first: the --user wipe is second");
        assert!(wipes.iter().all(|w| w["user"] == user.as_str()), "every wipe names the user: {wipes:?}");

        let stderr = fails_at(data, &["device", "wipe", "--device", "00000000-0000-4000-8000-00000000dead"]);
        assert!(stderr.contains("not found: device"), "{stderr}");
        let stderr = fails_at(data, &["device", "wipe", "--user", "00000000-0000-4000-8000-00000000dead"]);
        assert!(stderr.contains("not found: user"), "{stderr}");
        let stderr = fails_at(data, &["device", "wipe"]);
        assert!(stderr.contains("--device"), "{stderr}");
    });
}

fn each_device_gets_its_own_recovery_key_at_enrolment_and_showing_it_leaves_a_trace<B: Backend>() {
    // The store is made outside the runtime: PostgreSQL's client blocks.
    let (place, _store, grids) = demo::<B>();
    let data = &B::cli_args(&place)[..];
    runtime().block_on(async {
        let (user, code) = add_worker_at(data, "陈晓燕", &grids[0]);
        let server = serve_at(data, &[]).await;
        let http = reqwest::Client::new();
        let first = enroll(&http, &server.base, &code, "手机一").await;
        let second_code = last_line(&ok_at(data, &["user", "code", "--user", &user]));
        let second = enroll(&http, &server.base, &second_code, "手机二").await;

        let key = first.recovery_secret.clone().expect("a recovery secret at enrolment");
        assert_eq!(key.len(), 64);
        assert!(key.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{key}");
        assert_ne!(Some(&key), second.recovery_secret.as_ref());
        assert!(audit(data, &["--kind", "recovery-key-shown"]).is_empty());

        let out = binary::run_at(data, &["device", "recovery-key", "--device", &first.device.to_string()]);
        assert!(out.status.success());
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), key, "the key alone on standard output");
        assert!(String::from_utf8_lossy(&out.stderr).contains("keep it secret"));

        let shown = audit(data, &["--kind", "recovery-key-shown"]);
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0]["device"], first.device.to_string());
        assert_eq!(shown[0]["user"], user.as_str());
        assert_eq!(shown[0]["origin"], "cli");
        assert!(!shown[0].to_string().contains(&key), "the audit never holds the key");

        // The enrolment answer carries it; nothing else does.
        let me = http.get(format!("{}/v1/me", server.base)).bearer_auth(&first.token).send().await.unwrap();
        assert!(!me.text().await.unwrap().contains(&key));
        let stderr = fails_at(data, &["device", "recovery-key", "--device", "00000000-0000-4000-8000-00000000dead"]);
        assert!(stderr.contains("not found: device"), "{stderr}");
    });
}

#[test]
fn a_data_directory_from_before_wipes_and_the_audit_gains_them_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let grids = init_demo(data);
    let (user, _) = add_worker(data, "陈晓燕", &grids[0]);
    // Take the data directory back to its shape before this feature.
    let store = gridlink_sync_server::SqliteStore::open(data).unwrap();
    store
        .read(|conn| {
            conn.execute_batch(
                "DROP TABLE security_audit;
                 ALTER TABLE devices DROP COLUMN recovery_secret;
                 ALTER TABLE devices DROP COLUMN wipe_delivered_at;
                 ALTER TABLE devices DROP COLUMN wipe_requested_at;",
            )?;
            Ok(())
        })
        .unwrap();
    drop(store);
    // Opening it again adds them back; every command works.
    let out = ok(data, &["device", "wipe", "--user", &user]);
    assert!(out.starts_with("0 device(s)"), "{out}");
    let events = audit(&data_args(data), &["--kind", "wipe"]);
    assert_eq!(events.len(), 1);
    let columns: Vec<String> = gridlink_sync_server::SqliteStore::open(data)
        .unwrap()
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('devices')")?;
            Ok(stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?)
        })
        .unwrap();
    for column in ["wipe_requested_at", "wipe_delivered_at", "recovery_secret"] {
        assert!(columns.iter().any(|c| c == column), "{column} missing from {columns:?}");
    }
}

stories!(
    a_wiped_device_is_answered_410_at_every_request_before_its_body_is_read_and_revoke_keeps_its_meaning,
    each_device_gets_its_own_recovery_key_at_enrolment_and_showing_it_leaves_a_trace,
);
