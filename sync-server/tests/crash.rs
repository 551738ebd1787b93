//! The built `gridlink-server` binary, killed with SIGKILL in the middle of a stream of
//! syncs and restarted on the same data directory, has every change it acknowledged.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::Device;
use gridlink_shared::protocol::{self, AckStatus, EnrollRequest, EnrollResponse, PushChange, SyncResponse};
use gridlink_shared::{DocId, HouseholdFile, Role, Visit, VisitId, VisitOutcome};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_gridlink-server");

fn cli(data: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(BIN).args(args).arg("--data").arg(data).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Starts `serve` on port 0 and returns the child and its base URL from the `listening on` line.
async fn start(data: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().expect("serve prints its address");
    let base = line.strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line: {line}"));
    (child, base.to_string())
}

async fn enroll(http: &reqwest::Client, base: &str, code: &str) -> Device {
    let response = http
        .post(format!("{base}/v1/enroll"))
        .json(&EnrollRequest { code: code.into(), device_name: "测试手机".into() })
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    Device::new(response.json::<EnrollResponse>().await.unwrap())
}

async fn sync(
    http: &reqwest::Client,
    base: &str,
    device: &Device,
    changes: Vec<PushChange>,
) -> reqwest::Result<SyncResponse> {
    let body = protocol::encode(&device.request(changes));
    let response = http
        .post(format!("{base}/v1/sync"))
        .bearer_auth(&device.token)
        .header("content-type", protocol::CONTENT_TYPE)
        .body(body)
        .send()
        .await?
        .error_for_status()?;
    Ok(protocol::decode(&response.bytes().await?).unwrap())
}

#[tokio::test]
async fn a_server_killed_during_syncs_loses_no_acknowledged_change() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    cli(&data, &["init", "--demo", "small"]);
    let users: Vec<serde_json::Value> = serde_json::from_str(&cli(&data, &["user", "list", "--json"])).unwrap();
    let worker =
        users.iter().find(|u| u["role"] == Role::GridWorker.code()).unwrap()["id"].as_str().unwrap().to_string();
    let code = cli(&data, &["user", "code", "--user", &worker]).lines().last().unwrap().to_string();
    let second_code = cli(&data, &["user", "code", "--user", &worker]).lines().last().unwrap().to_string();

    let (mut server, base) = start(&data).await;
    let http = reqwest::Client::new();
    let mut phone = enroll(&http, &base, &code).await;
    loop {
        let response = sync(&http, &base, &phone, Vec::new()).await.unwrap();
        phone.apply(&response);
        if !response.more {
            break;
        }
    }
    let households: Vec<DocId> = phone
        .docs
        .iter()
        .filter(|(_, d)| matches!(gridlink_shared::doc::read_any(*d), Ok(gridlink_shared::AnyDoc::Household(_))))
        .map(|(id, _)| *id)
        .take(5)
        .collect();

    // Record visits in a stream of syncs, one change each, while the server is killed.
    let acked = Arc::new(AtomicUsize::new(0));
    let counter = acked.clone();
    let pusher = {
        let http = http.clone();
        let base = base.clone();
        tokio::spawn(async move {
            let mut outbox: Vec<PushChange> = Vec::new();
            let mut acked_hashes = Vec::new();
            for i in 0..10_000u32 {
                let id = households[i as usize % households.len()];
                let user = phone.enrolled.principal.user;
                let name = phone.enrolled.principal.name.clone();
                outbox.push(phone.edit::<HouseholdFile>(id, |x| {
                    let visit = Visit {
                        id: VisitId::new(),
                        visitor: user,
                        visitor_name: name,
                        at: gridlink_shared::time::now_millis(),
                        recorded_at: gridlink_shared::time::now_millis(),
                        outcome: VisitOutcome::Met,
                        notes: format!("第{i}次走访，身体状况良好"),
                        needs_found: Vec::new(),
                        follow_up: None,
                        residents_present: Vec::new(),
                    };
                    x.visits.insert(visit.id, visit);
                }));
                match sync(&http, &base, &phone, outbox.clone()).await {
                    Ok(response) => {
                        for ack in &response.acks {
                            assert!(matches!(ack.status, AckStatus::Accepted | AckStatus::Duplicate), "{ack:?}");
                            acked_hashes.push(ack.hash.clone());
                        }
                        outbox.clear();
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => return (phone, outbox, acked_hashes),
                }
            }
            panic!("the server was never killed");
        })
    };
    while acked.load(Ordering::SeqCst) < 25 {
        assert!(!pusher.is_finished(), "the pusher stopped before the kill");
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.start_kill().unwrap(); // SIGKILL
    server.wait().await.unwrap();
    let (phone, outbox, acked_hashes) = pusher.await.unwrap();
    assert!(acked_hashes.len() >= 25);

    // Restarted on the same directory: every acknowledged change is there.
    let (_server, base) = start(&data).await;
    let mut fresh = enroll(&http, &base, &second_code).await;
    loop {
        let response = sync(&http, &base, &fresh, Vec::new()).await.unwrap();
        fresh.apply(&response);
        if !response.more {
            break;
        }
    }
    let mut missing = Vec::new();
    for hash in &acked_hashes {
        let hash: automerge::ChangeHash = hash.parse().unwrap();
        if !fresh.docs.values_mut().any(|d| d.get_change_by_hash(&hash).is_some()) {
            missing.push(hash);
        }
    }
    assert!(missing.is_empty(), "{} acknowledged change(s) lost: {missing:?}", missing.len());

    // The change in flight at the kill is either stored or accepted now: nothing is lost.
    let response = sync(&http, &base, &phone, outbox.clone()).await.unwrap();
    assert_eq!(response.acks.len(), outbox.len());
    assert!(response.acks.iter().all(|a| matches!(a.status, AckStatus::Accepted | AckStatus::Duplicate)));
}
