//! The web console of a district (issue #10): two `gridlink-server serve --database URL`
//! processes on one PostgreSQL database behind nginx round-robin (`gridlink_tests::district`),
//! and a supervisor's browser session (a cookie jar over real HTTP) whose requests land on
//! both. The session, its CSRF token and the login's pre-session cookie live in the database,
//! so every page works whichever process answers; a case closed through the console reaches a
//! grid worker's `gridlink` device syncing through the same nginx, the cases ledger and the
//! admin's audit log; signing out on one process ends the session on the other; a killed
//! process does not take the session with it.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};

use gridlink_tests::district::{Backend, District, NginxOptions};
use gridlink_tests::{cli, server_binary};

const PASSWORD: &str = "街道督导2026";

/// `user password` with the password on stdin, as an admin sets it.
fn set_password(backend: &Backend, user: &str) {
    let mut child = Command::new(server_binary())
        .args(["user", "password"])
        .args(backend.store_args())
        .args(["--user", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_of(page: &str) -> String {
    let at = page.find(r#"name="csrf" value=""#).unwrap_or_else(|| panic!("no csrf field in {page}"));
    let rest = &page[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// The upstream (server process address) of each request nginx logged so far for `path`.
fn upstreams_for(district: &District, path: &str) -> BTreeSet<String> {
    district
        .nginx
        .access_log()
        .lines()
        .filter(|line| line.contains(&format!(" {path} ")) || line.contains(&format!(" {path}?")))
        .filter_map(|line| line.split(' ').nth(1).map(str::to_string))
        .collect()
}

/// A client that keeps cookies like a browser and shows redirects instead of following them.
fn browser_with(jar: &Arc<Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

async fn get(browser: &reqwest::Client, url: &str) -> (u16, String) {
    let response = browser.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn post(browser: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, Option<String>) {
    let response = browser.post(url).form(form).send().await.unwrap();
    let location =
        response.headers().get(reqwest::header::LOCATION).map(|v| v.to_str().unwrap_or_default().to_string());
    (response.status().as_u16(), location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_session_works_on_every_server_process_of_a_district() {
    let backend = tokio::task::block_in_place(|| Backend::postgres(Some("small"))).unwrap();
    let users = backend.users().unwrap();
    let supervisor = users.iter().find(|u| u["role"] == "supervisor").expect("a supervisor").clone();
    let supervisor_id = supervisor["id"].as_str().unwrap().to_string();
    set_password(&backend, &supervisor_id);
    let mut district = District::start(&backend, 2, &NginxOptions::default()).unwrap();
    let base = district.url();
    let jar = Arc::new(Jar::default());
    let browser = browser_with(&jar);

    // Sign in: the login form's cookie is set by one process, the post may reach the other.
    let (status, form) = get(&browser, &format!("{base}/console/login")).await;
    assert_eq!(status, 200, "{form}");
    let (status, location) = post(
        &browser,
        &format!("{base}/console/login"),
        &[("csrf", &csrf_of(&form)), ("next", "/console"), ("login", &supervisor_id), ("password", PASSWORD)],
    )
    .await;
    assert_eq!((status, location.as_deref()), (303, Some("/console")), "signing in through nginx");

    // Every page, on either process, knows the session.
    for _ in 0..6 {
        let (status, page) = get(&browser, &format!("{base}/console/cases?status=open")).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains(supervisor["name"].as_str().unwrap()), "the page is the supervisor's");
    }
    assert_eq!(upstreams_for(&district, "/console/cases").len(), 2, "nginx spread the pages over both processes");

    // An open case, and a phone of a grid worker of its grid synced before the supervisor acts.
    let (_, list) = get(&browser, &format!("{base}/console/cases?status=open")).await;
    let at = list.find("href=\"/console/cases/").expect("an open case in the list");
    let case_path = list[at + 6..].split('"').next().unwrap().to_string();
    let case_id = case_path.trim_start_matches("/console/cases/").to_string();
    let (_, case_page) = get(&browser, &format!("{base}{case_path}")).await;
    let url = backend.database_url().unwrap().to_string();
    let (case_grid, case_title) = tokio::task::block_in_place(|| {
        let store = gridlink_sync_server::store::PgStore::open(&url).unwrap();
        let case = store.case_file(case_id.parse().unwrap()).unwrap().expect("the case is stored");
        (case.placement.grid, case.title)
    });
    let worker = users
        .iter()
        .find(|u| u["role"] == "grid-worker" && u["scopes"][0] == format!("grid:{case_grid}"))
        .expect("a grid worker of the case's grid")
        .clone();
    let phone = tempfile::tempdir().unwrap();
    let code = backend.code_for(worker["id"].as_str().unwrap()).unwrap();
    let name = format!("{}的手机", worker["name"].as_str().unwrap());
    assert!(cli(phone.path(), &["enroll", "--server", &base, "--code", &code, "--name", &name]).success);
    assert!(cli(phone.path(), &["sync"]).success);

    // Close it through the console (the CSRF token is the session's, checked on either process).
    let note = "电话回访王秀英，居民表示满意";
    let (status, location) = post(
        &browser,
        &format!("{base}{case_path}/close"),
        &[("csrf", &csrf_of(&case_page)), ("satisfaction", "5"), ("note", note)],
    )
    .await;
    assert_eq!(status, 303, "closing the case");
    assert!(location.unwrap_or_default().starts_with(&case_path));
    let (_, closed) = get(&browser, &format!("{base}{case_path}")).await;
    assert!(closed.contains(note), "the case page shows the follow-up note");

    // The phone gets it at its next sync, whichever process answers.
    assert!(cli(phone.path(), &["sync"]).success);
    let case = cli(phone.path(), &["case", "show", "--id", &case_id]);
    assert!(case.success, "{case:?}");
    let timeline = case.json()["timeline"].to_string();
    assert!(timeline.contains(note), "the phone holds the supervisor's close: {timeline}");

    // The dashboard (figures and the service-hours card) and a ledger download, on PostgreSQL.
    let (status, dashboard) = get(&browser, &format!("{base}/console")).await;
    assert_eq!(status, 200, "{dashboard}");
    assert!(dashboard.contains("service-hours"), "the service-hours card");
    let response = browser
        .get(format!(
            "{base}/console/exports/download?what=cases&format=csv&period=range&from=2024-01-01&to=2030-12-31"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let ledger = response.text().await.unwrap();
    let mut lines = ledger.lines().skip_while(|l| !l.contains("满意度"));
    let header: Vec<&str> = lines.next().expect("the ledger's header").split(',').collect();
    let score = header.iter().position(|c| c.contains("满意度")).unwrap();
    assert!(
        lines.any(|l| l.contains(&case_title) && l.split(',').nth(score).map(|s| s.trim_matches('"')) == Some("5")),
        "the closed case is in the cases ledger with its satisfaction score: {ledger}"
    );

    // An admin reads the audit log: the console's close is there, signed by the supervisor.
    let admin = users.iter().find(|u| u["role"] == "admin").expect("an admin").clone();
    let admin_id = admin["id"].as_str().unwrap().to_string();
    tokio::task::block_in_place(|| set_password(&backend, &admin_id));
    let admin_jar = Arc::new(Jar::default());
    let admin_browser = browser_with(&admin_jar);
    let (_, form) = get(&admin_browser, &format!("{base}/console/login")).await;
    let (status, _) = post(
        &admin_browser,
        &format!("{base}/console/login"),
        &[("csrf", &csrf_of(&form)), ("next", "/console"), ("login", &admin_id), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(status, 303, "the admin signs in");
    for query in ["kind=all", &format!("kind=accepted&user={supervisor_id}"), "kind=security&page=0"] {
        let (status, audit) = get(&admin_browser, &format!("{base}/console/admin/audit?{query}")).await;
        assert_eq!(status, 200, "{query}: {audit}");
        assert!(audit.contains(supervisor["name"].as_str().unwrap()), "{query}: the supervisor is in the log");
    }

    // Signing out on one process ends the session on both: the old cookie, replayed, is sent
    // to the login page by every process.
    let signed_in = jar.cookies(&format!("{base}/console/sync").parse().unwrap()).expect("the session cookie");
    let (_, any_page) = get(&browser, &format!("{base}/console")).await;
    let (status, _) = post(&browser, &format!("{base}/console/logout"), &[("csrf", &csrf_of(&any_page))]).await;
    assert_eq!(status, 303);
    let replay = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().unwrap();
    let before = upstreams_for(&district, "/console/sync");
    assert!(before.is_empty());
    for _ in 0..4 {
        let response = replay
            .get(format!("{base}/console/sync"))
            .header(reqwest::header::COOKIE, signed_in.clone())
            .send()
            .await
            .unwrap();
        let location = response.headers().get(reqwest::header::LOCATION).map(|v| v.to_str().unwrap().to_string());
        assert_eq!(response.status().as_u16(), 303, "the ended session is refused");
        assert!(location.unwrap_or_default().starts_with("/console/login"));
    }
    assert_eq!(upstreams_for(&district, "/console/sync").len(), 2, "both processes refused it");
    // One process dies: the admin's session lives in the database, the other process keeps
    // serving it.
    district.servers[0].kill();
    let (status, page) = get(&admin_browser, &format!("{base}/console/admin/audit")).await;
    assert_eq!(status, 200, "{page}");
    district.servers[0].restart().unwrap();
    tokio::task::block_in_place(move || drop((district, backend)));
}
