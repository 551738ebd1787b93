//! The supervisors' console in a real browser: Debian's Chromium driven through chromedriver
//! (WebDriver, via fantoccini) against a real `gridlink-server serve` on 127.0.0.1. A
//! supervisor signs in, reads the dashboard, drills down, closes a case with a satisfaction
//! score that then reaches a grid worker's `gridlink` device, and downloads a ledger; a grid
//! worker's login, another community's pages and a form without its CSRF token are refused.
//!
//! Screenshots of the pages go to a temporary folder, or to `docs/screenshots/` when
//! `GRIDLINK_SCREENSHOTS` names a folder (`scripts/console-screenshots.sh`).

mod browser;

use std::process::{Command, Stdio};

use browser::{Viewport, browser, shoot, submit, text, wait_for_path};
use fantoccini::{Client, Locator};
use gridlink_tests::{Server, cli};

const PASSWORD: &str = "凤凰街道2026!";

async fn sign_in(client: &Client, base: &str, login: &str, password: &str) {
    client.goto(&format!("{base}/console/login")).await.unwrap();
    client.find(Locator::Css("#login")).await.unwrap().send_keys(login).await.unwrap();
    client.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(password).await.unwrap();
    // The answer is a new page either way (the console, or the form with a message).
    submit(client, "form[action='/console/login'] button[type=submit]").await;
}

/// Sets a console password with the real CLI, the way an admin does (password on stdin).
fn set_password(server: &Server, user: &str, password: &str) {
    use std::io::Write;
    let mut child = Command::new(gridlink_tests::server_binary())
        .args(["user", "password"])
        .args(server.store_args())
        .args(["--user", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A user of the roster by role: (id, name, phone, scopes).
fn user(server: &Server, role: &str, index: usize) -> serde_json::Value {
    server.users().unwrap().into_iter().filter(|u| u["role"] == role).nth(index).expect("a user of that role")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_reviews_in_a_real_browser_and_the_phone_gets_the_result() {
    let server = Server::start_with_demo("small").unwrap();
    let base = server.url();
    let supervisor = user(&server, "supervisor", 0);
    let supervisor_id = supervisor["id"].as_str().unwrap();
    set_password(&server, supervisor_id, PASSWORD);
    let worker = user(&server, "grid-worker", 0);
    set_password(&server, worker["id"].as_str().unwrap(), PASSWORD);
    let (_driver, client) = browser(Viewport::Desktop).await;

    // The login page, in Chinese.
    client.goto(&format!("{base}/console")).await.unwrap();
    assert!(client.current_url().await.unwrap().path().starts_with("/console/login"), "sent to sign in first");
    shoot(&client, "console-01-login").await;

    // A grid worker, even with the right password, is not let in.
    sign_in(&client, &base, worker["phone"].as_str().unwrap(), PASSWORD).await;
    assert!(text(&client).await.contains("此账号不能登录管理后台"), "{}", text(&client).await);
    // A wrong password says nothing about the account.
    sign_in(&client, &base, supervisor["phone"].as_str().unwrap(), "not-the-password").await;
    assert!(text(&client).await.contains("账号或密码错误"));

    // The supervisor signs in by phone number and lands on the dashboard.
    sign_in(&client, &base, supervisor["phone"].as_str().unwrap(), PASSWORD).await;
    wait_for_path(&client, "/console").await;
    assert_eq!(client.current_url().await.unwrap().path(), "/console");
    let page = text(&client).await;
    assert!(page.contains(supervisor["name"].as_str().unwrap()), "{page}");
    shoot(&client, "console-02-dashboard").await;

    // A form posted without its CSRF token is refused, with the session's own cookie.
    let cookie = client.get_named_cookie("gridlink_console").await.unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let forged = http
        .post(format!("{base}/console/logout"))
        .header("cookie", format!("gridlink_console={}", cookie.value()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "a POST without the CSRF token");
    client.refresh().await.unwrap();
    assert_eq!(client.current_url().await.unwrap().path(), "/console", "the session survived the forged post");

    // Sign out with the real form: the old cookie no longer opens anything.
    client.find(Locator::Css("form[action='/console/logout'] button")).await.unwrap().click().await.unwrap();
    wait_for_path(&client, "/console/login").await;
    let after = http
        .get(format!("{base}/console"))
        .header("cookie", format!("gridlink_console={}", cookie.value()))
        .send()
        .await
        .unwrap();
    assert!(after.status().is_redirection(), "signed out: {}", after.status());

    // An admin uploads a roster file with a bad row: every problem is listed, nothing imported.
    let admin = user(&server, "admin", 0);
    set_password(&server, admin["id"].as_str().unwrap(), PASSWORD);
    sign_in(&client, &base, admin["id"].as_str().unwrap(), PASSWORD).await;
    wait_for_path(&client, "/console").await;
    let folder = tempfile::tempdir().unwrap();
    let bad = folder.path().join("澜湖社区花名册.csv");
    std::fs::write(
        &bad,
        "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room\n\
         building,7a1b2c3d-0000-4000-8000-0000000000aa,7a1b2c3d-0000-4000-8000-0000000000bb,澜湖苑2栋,,,,2,九,2,,\n",
    )
    .unwrap();
    client.goto(&format!("{base}/console/admin/roster")).await.unwrap();
    client
        .find(Locator::Css("input[type=file][name=file]"))
        .await
        .unwrap()
        .send_keys(&bad.to_string_lossy())
        .await
        .unwrap();
    submit(&client, "form[action='/console/admin/roster'] button[type=submit]").await;
    let page = text(&client).await;
    assert!(page.contains("第 2 行"), "{page}");
    shoot(&client, "console-06-roster-upload-error").await;
    let roster = server.admin(&["roster", "--json"]).unwrap();
    assert!(!roster.contains("澜湖苑2栋"), "nothing imported");
    client.close().await.unwrap();
}

/// Adds a second community to the roster (one grid, one building, one household) with the real
/// importer, for the scope checks; returns the household's id.
fn import_neighbour_community(server: &Server, street: &str) -> String {
    let ids: Vec<String> = (1..=4).map(|n| format!("7a1b2c3d-0000-4000-8000-00000000000{n}")).collect();
    let csv = format!(
        "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room\n\
         community,{c},{street},澜湖社区,,,,,,,,\n\
         grid,{g},{c},澜湖社区第1网格,,,,,,,,\n\
         building,{b},{g},澜湖苑1栋,,,,2,6,2,,\n\
         household,{h},{b},刘桂兰,13907110001,,,,,,1,101\n",
        c = ids[0],
        g = ids[1],
        b = ids[2],
        h = ids[3],
    );
    let file = server.data.path().join("neighbour.csv");
    std::fs::write(&file, csv).unwrap();
    let out = Command::new(gridlink_tests::server_binary())
        .arg("import")
        .args(server.store_args())
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    ids[3].clone()
}

/// The number on a dashboard link and the rows its drill-down lists must agree.
async fn drill_down(client: &Client, base: &str, figure: &str) -> usize {
    let link = client
        .find(Locator::Css(&format!("a.num[data-figure='{figure}'][data-group='total']")))
        .await
        .unwrap_or_else(|_| panic!("a link for {figure}"));
    let shown: usize = link.text().await.unwrap().trim().parse().unwrap();
    let href = link.attr("href").await.unwrap().unwrap();
    client.goto(&format!("{base}{href}")).await.unwrap();
    let listed: usize = client
        .find(Locator::Css("[data-rows]"))
        .await
        .unwrap()
        .attr("data-rows")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    let rows = client.find_all(Locator::Css("table tbody tr")).await.unwrap().len();
    assert_eq!((listed, rows), (shown, shown), "{figure}: the list behind the number");
    shown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_community_supervisor_drills_down_closes_a_case_and_downloads_a_ledger() {
    let server = Server::start_with_demo("small").unwrap();
    let base = server.url();
    let supervisor = user(&server, "supervisor", 1);
    let community = supervisor["scopes"][0].as_str().unwrap().to_string();
    assert!(community.starts_with("community:"), "{supervisor}");
    set_password(&server, supervisor["id"].as_str().unwrap(), PASSWORD);
    let street =
        user(&server, "supervisor", 0)["scopes"][0].as_str().unwrap().trim_start_matches("street:").to_string();
    let neighbour_household = import_neighbour_community(&server, &street);

    let (_driver, client) = browser(Viewport::Desktop).await;
    sign_in(&client, &base, supervisor["id"].as_str().unwrap(), PASSWORD).await;
    wait_for_path(&client, "/console").await;
    shoot(&client, "console-02-dashboard").await;

    // Every figure is a link to exactly its rows.
    drill_down(&client, &base, "visits.all").await;
    shoot(&client, "console-03-drilldown").await;
    client.goto(&format!("{base}/console")).await.unwrap();
    drill_down(&client, &base, "cases.opened").await;

    // An open case, and a phone of a grid worker of its grid, synced before the supervisor acts.
    client.goto(&format!("{base}/console/cases?status=open")).await.unwrap();
    let first = client.find(Locator::Css("table tbody tr a[href^='/console/cases/']")).await.expect("an open case");
    let href = first.attr("href").await.unwrap().unwrap();
    let case_id = href.trim_start_matches("/console/cases/").to_string();
    let scope: gridlink_shared::Scope = community.parse().unwrap();
    // The blocking PostgreSQL client must not run (or drop) on an async thread.
    let facts_now = || tokio::task::block_in_place(|| server.open_store().unwrap().any().facts(&[scope]).unwrap());
    let facts = facts_now();
    let grid = facts.cases.iter().find(|c| c.id.to_string() == case_id).expect("the case's row").placement.grid;
    let worker = server
        .users()
        .unwrap()
        .into_iter()
        .find(|u| u["role"] == "grid-worker" && u["scopes"][0] == format!("grid:{grid}"))
        .expect("a worker of the case's grid");
    let phone = tempfile::tempdir().unwrap();
    let code = server.code_for(worker["id"].as_str().unwrap()).unwrap();
    let phone_name = format!("{}的手机", worker["name"].as_str().unwrap());
    assert!(cli(phone.path(), &["enroll", "--server", &base, "--code", &code, "--name", &phone_name]).success);
    assert!(cli(phone.path(), &["sync"]).success);

    // Close it with a satisfaction score of 4.
    client.goto(&format!("{base}{href}")).await.unwrap();
    client.find(Locator::Css("#satisfaction")).await.unwrap().select_by_value("4").await.unwrap();
    client.find(Locator::Css("#close-note")).await.unwrap().send_keys("电话回访，居民表示满意").await.unwrap();
    submit(&client, "form[action$='/close'] button[type=submit]").await;
    assert_eq!(client.current_url().await.unwrap().path(), href);
    let page = text(&client).await;
    assert!(page.contains("电话回访，居民表示满意"), "{page}");
    shoot(&client, "console-04-case").await;

    // The close reaches the worker's phone at its next sync, signed by the supervisor.
    assert!(cli(phone.path(), &["sync"]).success);
    let shown = cli(phone.path(), &["case", "show", "--id", &case_id]);
    assert!(shown.success, "{shown:?}");
    let detail = shown.json();
    assert_eq!(detail["row"]["status"], "closed", "{detail}");
    let close = detail["timeline"].as_array().unwrap().iter().find(|a| a["kind"] == "close").expect("a close action");
    assert_eq!(close["satisfaction"], 4, "{close}");
    assert_eq!(close["by"], supervisor["id"], "{close}");

    // Sync health and the ledger page.
    client.goto(&format!("{base}/console/sync")).await.unwrap();
    assert!(text(&client).await.contains(&phone_name));
    shoot(&client, "console-05-sync-health").await;

    // The visit ledger of the community, downloaded with the browser's session, reads back.
    let cookie = client.get_named_cookie("gridlink_console").await.unwrap();
    let http = reqwest::Client::new();
    let download = http
        .get(format!("{base}/console/exports/download?what=visits&scope={community}&period=month&format=xlsx"))
        .header("cookie", format!("gridlink_console={}", cookie.value()))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert!(
        download.headers()["content-disposition"].to_str().unwrap().contains("filename*=UTF-8''"),
        "a Chinese file name"
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), download.bytes().await.unwrap()).unwrap();
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(file.path()).unwrap();
    use calamine::Reader;
    let sheet = book.worksheet_range(&book.sheet_names()[0].clone()).unwrap();
    let now = gridlink_shared::time::now_millis();
    let month = gridlink_shared::figures::Period::this_month(now);
    let expected = facts_now().visits.iter().filter(|v| month.contains(v.at)).count();
    assert_eq!(sheet.height(), expected + 1, "a header and this month's visits");

    // Another community's household: not found, as if it did not exist.
    client.goto(&format!("{base}/console/households/{neighbour_household}")).await.unwrap();
    let page = text(&client).await;
    assert!(!page.contains("刘桂兰"), "{page}");
    let status = http
        .get(format!("{base}/console/households/{neighbour_household}"))
        .header("cookie", format!("gridlink_console={}", cookie.value()))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
    client.close().await.unwrap();
}
