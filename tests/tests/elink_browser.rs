//! The residents' grid e-link (社区网格e通) with the real binaries: `gridlink-server building
//! link` prints a building's URL and writes its QR code; a request filed through that page
//! reaches the grid worker's `gridlink` device at its next sync as an ordinary help case; and
//! in a real browser (Debian's Chromium at a phone's 390x844, through chromedriver) a
//! resident fills the form, gets a reference number and follows the case on the status page
//! while the worker accepts it.
//!
//! Screenshots go to a temporary folder, or to `docs/screenshots/` when
//! `GRIDLINK_SCREENSHOTS` names a folder: `elink-01-form.png`, `elink-02-status.png`.

mod browser;

use std::path::Path;

use browser::{Viewport, browser, shoot, submit, text, wait_for_path};
use fantoccini::Locator;
use gridlink_tests::{Server, cli};

/// The first building of the first grid and the grid worker the server makes
/// responsible (the grid's first grid worker by name, then id).
fn building_and_worker(server: &Server) -> (String, serde_json::Value) {
    let roster: serde_json::Value = serde_json::from_str(&server.admin(&["roster", "--json"]).unwrap()).unwrap();
    let grid = &roster["streets"][0]["communities"][0]["grids"][0];
    let grid_id = grid["id"].as_str().unwrap().to_string();
    let building = grid["buildings"][0]["id"].as_str().unwrap().to_string();
    let scope = format!("grid:{grid_id}");
    let mut workers: Vec<serde_json::Value> = server
        .users()
        .unwrap()
        .into_iter()
        .filter(|u| u["role"] == "grid-worker" && u["scopes"].as_array().unwrap().iter().any(|s| s == scope.as_str()))
        .collect();
    workers.sort_by(|a, b| {
        (a["name"].as_str().unwrap(), a["id"].as_str().unwrap())
            .cmp(&(b["name"].as_str().unwrap(), b["id"].as_str().unwrap()))
    });
    (building, workers.into_iter().next().expect("the grid has a grid worker"))
}

/// Enrols a `gridlink` device for `user` in `dir` and runs its first sync.
fn worker_device(server: &Server, user: &str, dir: &Path) {
    let code = server.code_for(user).unwrap();
    let run = cli(dir, &["enroll", "--server", &server.url(), "--code", &code, "--name", "网格员手机"]);
    assert!(run.success, "{run:?}");
    let run = cli(dir, &["sync"]);
    assert!(run.success, "{run:?}");
}

/// The e-link help cases on the worker's device.
fn elink_cases(dir: &Path) -> Vec<serde_json::Value> {
    let cases = cli(dir, &["cases", "--json"]).json();
    cases
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["title"].as_str().is_some_and(|t| t.starts_with("网格e通求助")))
        .cloned()
        .collect()
}

/// The e-link help cases on the worker's device that are not among `before` (the demo brings
/// residents' requests of its own).
fn new_elink_cases(dir: &Path, before: &[serde_json::Value]) -> Vec<serde_json::Value> {
    elink_cases(dir).into_iter().filter(|c| !before.iter().any(|b| b["id"] == c["id"])).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_filed_through_the_page_reaches_the_grid_workers_device_at_its_next_sync() {
    let server = Server::start_with_demo("small").unwrap();
    let (building, worker) = building_and_worker(&server);
    let qr = tempfile::tempdir().unwrap();
    let qr_file = qr.path().join("notice-board.png");
    let printed = server
        .admin(&[
            "building",
            "link",
            "--building",
            &building,
            "--base-url",
            &server.url(),
            "--qr",
            qr_file.to_str().unwrap(),
        ])
        .unwrap();
    let url = printed.trim().to_string();
    assert!(url.starts_with(&format!("{}/e/", server.url())), "{url}");
    assert!(std::fs::read(&qr_file).unwrap().starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG for the notice board");
    let again = server.admin(&["building", "link", "--building", &building, "--base-url", &server.url()]).unwrap();
    assert_eq!(again.trim(), url, "the link stays until rotated");

    let phone = tempfile::tempdir().unwrap();
    worker_device(&server, worker["id"].as_str().unwrap(), phone.path());
    // The demo's own residents' requests of the grid, reported by its e-link account.
    let before = elink_cases(phone.path());

    let http = reqwest::Client::new();
    let form = http.get(&url).send().await.unwrap().text().await.unwrap();
    let at = form.find(r#"name="nonce" value=""#).unwrap() + 20;
    let nonce = &form[at..at + 32];
    let receipt = http
        .post(&url)
        .form(&[
            ("category", "appliance-repair"),
            ("description", "家里冰箱不制冷了，老人一个人在家，麻烦帮忙联系维修。"),
            ("room", "3单元402"),
            ("name", "刘淑珍"),
            ("phone", "13907314521"),
            ("nonce", nonce),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(receipt.status(), 200);
    let receipt = receipt.text().await.unwrap();
    assert!(receipt.contains("求助已提交"), "{receipt}");

    let run = cli(phone.path(), &["sync"]);
    assert!(run.success, "{run:?}");
    let cases = new_elink_cases(phone.path(), &before);
    assert_eq!(cases.len(), 1, "{cases:?}");
    let case = &cases[0];
    assert_eq!(case["kind"], "help:appliance-repair");
    assert_eq!(case["status"], "reported");
    assert_eq!(case["building"], building.as_str());
    assert_eq!(case["responsible"], worker["id"], "首问负责: the grid's worker is responsible");

    // A rotated link stops working.
    let rotated =
        server.admin(&["building", "link", "--building", &building, "--base-url", &server.url(), "--rotate"]).unwrap();
    assert_ne!(rotated.trim(), url);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 404);
    assert_eq!(http.get(rotated.trim()).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_files_a_request_in_a_real_browser_and_follows_it_on_the_status_page() {
    let server = Server::start_with_demo("small").unwrap();
    let (building, worker) = building_and_worker(&server);
    let url = server.admin(&["building", "link", "--building", &building, "--base-url", &server.url()]).unwrap();
    let url = url.trim().to_string();
    let phone = tempfile::tempdir().unwrap();
    worker_device(&server, worker["id"].as_str().unwrap(), phone.path());
    let before = elink_cases(phone.path());
    let (_driver, client) = browser(Viewport::Phone).await;

    // A first try with a bad phone number: the error at its field, the rest kept.
    client.goto(&url).await.unwrap();
    client.find(Locator::Css("#category")).await.unwrap().select_by_value("utilities").await.unwrap();
    client
        .find(Locator::Css("#description"))
        .await
        .unwrap()
        .send_keys("卫生间水管接头漏水，楼下邻居家天花板在滴水，请尽快安排师傅上门。")
        .await
        .unwrap();
    client.find(Locator::Css("#room")).await.unwrap().send_keys("2单元301").await.unwrap();
    client.find(Locator::Css("#name")).await.unwrap().send_keys("王秀兰").await.unwrap();
    client.find(Locator::Css("#phone")).await.unwrap().send_keys("1380731").await.unwrap();
    submit(&client, "button[type=submit]").await;
    let page = text(&client).await;
    assert!(page.contains("请填写正确的手机号"), "{page}");
    assert_eq!(
        client.find(Locator::Css("#room")).await.unwrap().prop("value").await.unwrap().as_deref(),
        Some("2单元301")
    );
    let phone_input = client.find(Locator::Css("#phone")).await.unwrap();
    phone_input.clear().await.unwrap();
    phone_input.send_keys("13807316688").await.unwrap();
    shoot(&client, "elink-01-form").await;
    submit(&client, "button[type=submit]").await;
    let reference = client.find(Locator::Css("#reference")).await.unwrap().text().await.unwrap();
    assert_eq!(reference.len(), 9, "{reference}");

    // The worker's phone gets it at the next sync and accepts it.
    assert!(cli(phone.path(), &["sync"]).success);
    let cases = new_elink_cases(phone.path(), &before);
    assert_eq!(cases.len(), 1, "{cases:?}");
    let case = cases[0]["id"].as_str().unwrap().to_string();
    let accepted = cli(phone.path(), &["case", "act", "--id", &case, "--action", "accept"]);
    assert!(accepted.success, "{accepted:?}");
    assert!(cli(phone.path(), &["sync"]).success);

    // The resident looks it up from the receipt's link.
    client.find(Locator::LinkText("查询进度")).await.unwrap().click().await.unwrap();
    wait_for_path(&client, "/e/").await;
    client.find(Locator::Css("#reference")).await.unwrap().send_keys(&reference).await.unwrap();
    client.find(Locator::Css("#phone")).await.unwrap().send_keys("13807316688").await.unwrap();
    submit(&client, "button[type=submit]").await;
    let status = client.find(Locator::Css("#status")).await.unwrap().text().await.unwrap();
    assert_eq!(status, "已受理");
    let page = text(&client).await;
    assert!(page.contains(&reference) && page.contains("水电维修"), "{page}");
    assert!(!page.contains("王秀兰"), "the status page shows no personal details");
    shoot(&client, "elink-02-status").await;

    // A wrong phone number: the neutral answer.
    client.goto(&format!("{url}/status")).await.unwrap();
    client.find(Locator::Css("#reference")).await.unwrap().send_keys(&reference).await.unwrap();
    client.find(Locator::Css("#phone")).await.unwrap().send_keys("13907310000").await.unwrap();
    submit(&client, "button[type=submit]").await;
    let page = text(&client).await;
    assert!(page.contains("没有找到") && !page.contains("已受理"), "{page}");
    client.close().await.unwrap();
}
