//! The web console's foundation through the real router (`oneshot`) over a real SQLite data
//! directory with the small demo: signing in and out, the generic answers, slow-down and
//! lockout, sessions ended by the admin CLI's store calls, CSRF, bounded forms, forged cookies,
//! the roster re-read on every request, HTML error pages and security headers.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::Harness;
use common::console::{Browser, Page};
use gridlink_shared::time::now_millis;
use gridlink_shared::{Role, Scope, Staff};
use gridlink_sync_server::console::{ConsolePolicy, ConsoleStore};

/// 周建平, the street's supervisor in the demo (scope: 凤凰街道).
const SUPERVISOR_PHONE: &str = "0711-3201000";
const PASSWORD: &str = "凤凰街道督导2026";

fn staff_named(h: &Harness, name: &str) -> Staff {
    h.demo.roster.staff.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no {name} in the demo")).clone()
}

fn set_password(h: &Harness, staff: &Staff, password: &str) {
    h.admin.set_console_password(staff.id, password, now_millis()).unwrap();
}

fn count(h: &Harness, sql: &str) -> i64 {
    h.admin.read(|conn| Ok(conn.query_row(sql, [], |r| r.get(0))?)).unwrap()
}

fn assert_security_headers(page: &Page) {
    let csp = page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(page.headers[header::REFERRER_POLICY], "same-origin");
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
}

/// A policy whose waits and lock fit in a test.
fn quick_policy() -> ConsolePolicy {
    ConsolePolicy {
        first_delay: Duration::from_millis(250),
        max_delay: Duration::from_millis(400),
        lock_for: Duration::from_secs(2),
        ..ConsolePolicy::default()
    }
}

#[tokio::test]
async fn a_supervisor_signs_in_by_phone_or_id_and_sees_the_dashboard_with_their_name() {
    let h = Harness::new();
    let zhou = staff_named(&h, "周建平");
    set_password(&h, &zhou, PASSWORD);

    // A page asked for before signing in is where the login leads back to.
    let mut browser = Browser::new(h.app.clone());
    let away = browser.get("/console/households").await;
    assert_eq!(away.location(), Some("/console/login?next=/console/households"));
    let form = browser.get("/console/login?next=/console/households").await;
    assert!(form.body.contains("name=\"next\" value=\"/console/households\""), "{}", form.body);
    let fields =
        [("login", SUPERVISOR_PHONE), ("password", PASSWORD), ("csrf", &form.csrf()), ("next", "/console/households")];
    let answer = browser.post("/console/login", &fields).await;
    assert_eq!(answer.location(), Some("/console/households"), "{}", answer.body);

    let mut browser = Browser::new(h.app.clone());
    let answer = browser.sign_in(SUPERVISOR_PHONE, PASSWORD).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), Some("/console"));
    let session = answer.set_cookies().into_iter().find(|c| c.starts_with("gridlink_console=")).unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict") && session.contains("Path=/console"));
    assert_eq!(browser.cookie("gridlink_console").unwrap().len(), 64, "32 random bytes, hex");
    assert!(browser.cookie("gridlink_console_login").is_none(), "the login form's token is spent");
    // The database keeps only the token's hash.
    let token = browser.cookie("gridlink_console").unwrap().to_string();
    let stored = count(&h, &format!("SELECT COUNT(*) FROM console_sessions WHERE token_hash = '{token}'"));
    assert_eq!(stored, 0);

    let home = browser.get("/console").await;
    assert_eq!(home.status, StatusCode::OK);
    assert_eq!(home.headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_security_headers(&home);
    for text in ["周建平", "督导", "工作台", "凤凰街道", "四必访覆盖", "/console/assets/console.css", "退出登录"]
    {
        assert!(home.body.contains(text), "{text} missing: {}", home.body);
    }
    assert!(!home.body.contains("href=\"/console/admin\""), "the admin section is for admins");
    assert!(!home.body.contains("<script"), "no JavaScript");
    assert!(!home.body.contains("style=\""), "no inline styles: the CSP forbids them");
    assert_eq!(browser.get("/console/admin").await.status, StatusCode::FORBIDDEN);
    assert_eq!(browser.get("/console/cases").await.status, StatusCode::OK);

    // English, remembered in a cookie.
    let english = browser.get("/console?lang=en").await;
    assert!(english.body.contains("Dashboard") && english.body.contains("Supervisor"), "{}", english.body);
    assert_eq!(browser.cookie("gridlink_console_lang"), Some("en"));
    let cases = browser.get("/console/cases").await;
    assert!(cases.body.contains("Reported") && cases.body.contains("Sign out"), "{}", cases.body);

    // Already signed in: the login page sends you on.
    assert_eq!(browser.get("/console/login").await.location(), Some("/console"));

    // By user id too; each sign-in is its own session.
    let by_id = Browser::signed_in(h.app.clone(), &zhou.id.to_string(), PASSWORD).await;
    assert_ne!(by_id.cookie("gridlink_console"), browser.cookie("gridlink_console"));
    assert_eq!(count(&h, "SELECT COUNT(*) FROM console_sessions"), 3);

    // The stylesheet, served by the server itself.
    let css = browser.get("/console/assets/console.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
    assert!(css.body.contains("--brand: #c8372d") && css.body.contains("@media print"));

    // An admin sees the admin section.
    let admin = staff_named(&h, "系统管理员");
    set_password(&h, &admin, "网格通管理员密码");
    let mut admin_browser = Browser::signed_in(h.app.clone(), "0711 320 0000", "网格通管理员密码").await;
    let page = admin_browser.get("/console/admin").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("管理员") && page.body.contains("href=\"/console/admin\""), "{}", page.body);
}

#[tokio::test]
async fn wrong_passwords_unknown_logins_and_grid_workers_learn_nothing_they_should_not() {
    let h = Harness::new();
    let zhou = staff_named(&h, "周建平");
    set_password(&h, &zhou, PASSWORD);
    let worker = h.staff(Role::GridWorker);
    set_password(&h, &worker, "网格员自己的密码");
    let community_supervisor =
        h.demo.staff_with_role(Role::Supervisor).find(|s| matches!(s.scopes[0], Scope::Community(_))).unwrap().clone();

    let mut messages = Vec::new();
    for (login, password) in [
        (SUPERVISOR_PHONE.to_string(), "凤凰街道督导2025".to_string()),
        ("13900000000".to_string(), PASSWORD.to_string()),
        (gridlink_shared::UserId::new().to_string(), PASSWORD.to_string()),
        // A supervisor who has no console password yet.
        (community_supervisor.phone.clone(), PASSWORD.to_string()),
        // A grid worker with a wrong password is one more wrong password.
        (worker.phone.clone(), "不是这个密码了".to_string()),
    ] {
        let mut browser = Browser::new(h.app.clone());
        let answer = browser.sign_in(&login, &password).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{login}: {}", answer.body);
        assert!(browser.cookie("gridlink_console").is_none());
        assert!(answer.body.contains(&format!("value=\"{login}\"")), "the login is kept in the form");
        messages.push(answer.form_error().unwrap());
    }
    assert!(messages.iter().all(|m| m == "账号或密码错误。"), "{messages:?}");

    // A grid worker with their right password is told the console is not for them, and gets
    // no session.
    let mut browser = Browser::new(h.app.clone());
    let answer = browser.sign_in(&worker.phone, "网格员自己的密码").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.form_error().as_deref(), Some("此账号不能登录管理后台。"));
    assert!(browser.cookie("gridlink_console").is_none());
    assert_eq!(count(&h, "SELECT COUNT(*) FROM console_sessions"), 0);
    assert_eq!(browser.get("/console").await.status, StatusCode::SEE_OTHER);

    // In English.
    let mut english = Browser::new(h.app.clone());
    english.get("/console/login?lang=en").await;
    let answer = english.sign_in(SUPERVISOR_PHONE, "wrong password").await;
    assert_eq!(answer.form_error().as_deref(), Some("Wrong login or password."));

    // Empty fields are refused before anything is looked up.
    let answer = Browser::new(h.app.clone()).sign_in("", PASSWORD).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wrong_passwords_slow_down_after_three_and_lock_after_ten_even_across_restarts() {
    let policy = quick_policy();
    let h = Harness::with_console_policy(policy);
    let zhou = staff_named(&h, "周建平");
    set_password(&h, &zhou, PASSWORD);
    let mut browser = Browser::new(h.app.clone());
    let failures = || count(&h, "SELECT COALESCE(MAX(failures), 0) FROM console_throttle");

    for attempt in 1..=3 {
        let answer = browser.sign_in(SUPERVISOR_PHONE, "猜的密码").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "attempt {attempt} is not slowed");
    }
    // The fourth, at once: wait first. It is not checked and not counted.
    let answer = browser.sign_in(SUPERVISOR_PHONE, PASSWORD).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS, "{}", answer.body);
    assert!(answer.form_error().unwrap().contains("秒后再试"), "{:?}", answer.form_error());
    assert_eq!(failures(), 3);

    // Waiting out each delay (250 ms, then 400 ms), wrong passwords 4 to 9 are checked and
    // the tenth locks. Attempts during a wait are turned away and not counted.
    let mut turned_away = 0;
    for attempt in 4..=10 {
        let answer = loop {
            let answer = browser.sign_in(SUPERVISOR_PHONE, "猜的密码").await;
            if answer.form_error().is_some_and(|e| e.contains("秒后再试")) {
                turned_away += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            break answer;
        };
        if attempt < 10 {
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "attempt {attempt}: {:?}", answer.form_error());
        } else {
            assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
            assert!(answer.form_error().unwrap().contains("已暂时锁定"), "{:?}", answer.form_error());
        }
    }
    assert!(turned_away >= 3, "attempts after the third had to wait ({turned_away} turned away)");
    assert_eq!(failures(), 10);

    // Locked: the right password is refused too, without being checked, here and on a
    // server started afresh over the same data directory.
    let answer = browser.sign_in(SUPERVISOR_PHONE, PASSWORD).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(browser.cookie("gridlink_console").is_none());
    let mut after_restart = Browser::new(h.restarted(policy));
    let answer = after_restart.sign_in(&zhou.id.to_string(), PASSWORD).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS, "the lock is in the database");
    let locked = count(&h, &format!("SELECT locked_until FROM console_throttle WHERE key = 'user:{}'", zhou.id));
    assert!(locked > now_millis());

    // When the lock ends, the right password works and clears the count.
    tokio::time::sleep(policy.lock_for + Duration::from_millis(100)).await;
    let answer = browser.sign_in(SUPERVISOR_PHONE, PASSWORD).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{:?}", answer.form_error());
    assert_eq!(failures(), 0);
}

#[tokio::test]
async fn an_unknown_login_is_locked_exactly_like_a_real_account() {
    // No waits, a lock after three: what an attacker sees for both.
    let policy = ConsolePolicy { slow_after: 100, lock_after: 3, ..ConsolePolicy::default() };
    let h = Harness::with_console_policy(policy);
    set_password(&h, &staff_named(&h, "周建平"), PASSWORD);
    let mut seen = Vec::new();
    for login in [SUPERVISOR_PHONE, "13800138000"] {
        let mut browser = Browser::new(h.app.clone());
        let answers: Vec<(StatusCode, String)> = {
            let mut answers = Vec::new();
            for _ in 0..4 {
                let answer = browser.sign_in(login, "猜的密码").await;
                answers.push((answer.status, answer.form_error().unwrap()));
            }
            answers
        };
        seen.push(answers);
    }
    assert_eq!(seen[0], seen[1], "an unknown login answers like a real one");
    let statuses: Vec<StatusCode> = seen[0].iter().map(|(s, _)| *s).collect();
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

#[tokio::test]
async fn signing_out_ends_the_session_and_the_old_cookie_no_longer_works() {
    let h = Harness::new();
    set_password(&h, &staff_named(&h, "周建平"), PASSWORD);
    let mut browser = Browser::signed_in(h.app.clone(), SUPERVISOR_PHONE, PASSWORD).await;
    let old_cookie = browser.cookie("gridlink_console").unwrap().to_string();
    let home = browser.get("/console").await;

    let answer = browser.post("/console/logout", &[("csrf", &home.csrf())]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), Some("/console/login"));
    assert!(browser.cookie("gridlink_console").is_none(), "the cookie is dropped");
    assert_eq!(count(&h, "SELECT COUNT(*) FROM console_sessions"), 0);

    // Someone who kept a copy of the cookie gets the login page.
    let mut copy = Browser::new(h.app.clone());
    copy.cookies.insert("gridlink_console".into(), old_cookie);
    let answer = copy.get("/console").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), Some("/console/login?next=/console"));
}

#[tokio::test]
async fn set_scopes_and_device_revoke_end_sessions_and_the_roster_is_read_on_every_request() {
    let h = Harness::new();
    let zhou = staff_named(&h, "周建平");
    set_password(&h, &zhou, PASSWORD);
    let community = h.demo.roster.communities[0].clone();

    // A new name shows at the next request: the roster is read each time.
    let mut browser = Browser::signed_in(h.app.clone(), SUPERVISOR_PHONE, PASSWORD).await;
    h.admin
        .read(|conn| Ok(conn.execute("UPDATE users SET name = '周建平（代）' WHERE id = ?1", [zhou.id.to_string()])?))
        .unwrap();
    assert!(browser.get("/console").await.body.contains("周建平（代）"));

    // `user set-scopes` signs them out; after signing in again the new scope shows.
    h.admin.set_scopes(zhou.id, &[Scope::Community(community.id)]).unwrap();
    assert_eq!(browser.get("/console").await.location(), Some("/console/login?next=/console"));
    let mut browser = Browser::signed_in(h.app.clone(), SUPERVISOR_PHONE, PASSWORD).await;
    let home = browser.get("/console").await;
    assert!(home.body.contains(&community.name) && !home.body.contains("凤凰街道</span>"), "{}", home.body);

    // `device revoke --user` signs them out too (a lost phone may have had the console open).
    h.admin.revoke_user_devices(zhou.id, now_millis()).unwrap();
    assert_eq!(browser.get("/console").await.status, StatusCode::SEE_OTHER);

    // A supervisor made a grid worker loses the console at once.
    let mut browser = Browser::signed_in(h.app.clone(), SUPERVISOR_PHONE, PASSWORD).await;
    h.admin
        .read(|conn| Ok(conn.execute("UPDATE users SET role = 'grid-worker' WHERE id = ?1", [zhou.id.to_string()])?))
        .unwrap();
    assert_eq!(browser.get("/console").await.status, StatusCode::SEE_OTHER);
    assert_eq!(count(&h, "SELECT COUNT(*) FROM console_sessions"), 0);

    // A new password signs every browser out as well.
    h.admin
        .read(|conn| Ok(conn.execute("UPDATE users SET role = 'supervisor' WHERE id = ?1", [zhou.id.to_string()])?))
        .unwrap();
    let mut browser = Browser::signed_in(h.app.clone(), SUPERVISOR_PHONE, PASSWORD).await;
    set_password(&h, &zhou, "新的督导密码2027");
    assert_eq!(browser.get("/console").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn posts_without_or_with_a_wrong_csrf_token_are_refused_403() {
    let h = Harness::new();
    set_password(&h, &staff_named(&h, "周建平"), PASSWORD);
    let mut browser = Browser::signed_in(h.app.clone(), SUPERVISOR_PHONE, PASSWORD).await;
    let mut other = Browser::signed_in(h.app.clone(), SUPERVISOR_PHONE, PASSWORD).await;
    let others_token = other.get("/console").await.csrf();

    for fields in [vec![], vec![("csrf", "0".repeat(64))], vec![("csrf", others_token)]] {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = browser.post("/console/logout", &fields).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{fields:?}");
        assert_eq!(answer.headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(answer.body.contains("表单已过期"), "{}", answer.body);
        assert_security_headers(&answer);
    }
    assert_eq!(browser.get("/console").await.status, StatusCode::OK, "still signed in");

    // The login form too: without the cookie its token came with, or with another token,
    // refused before the password is looked at (nothing counted against the account).
    let mut stranger = Browser::new(h.app.clone());
    let forged = "a".repeat(64);
    let answer = stranger
        .post("/console/login", &[("login", SUPERVISOR_PHONE), ("password", PASSWORD), ("csrf", &forged)])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let mut visitor = Browser::new(h.app.clone());
    visitor.get("/console/login").await;
    let answer =
        visitor.post("/console/login", &[("login", SUPERVISOR_PHONE), ("password", PASSWORD), ("csrf", &forged)]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(visitor.cookie("gridlink_console").is_none());
    assert_eq!(count(&h, "SELECT COUNT(*) FROM console_throttle"), 0);

    // Not a form at all.
    let json = Request::post("/console/logout").header(header::CONTENT_TYPE, "application/json");
    let answer = browser.send(json, Body::from("{\"csrf\":\"x\"}")).await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn oversized_forms_are_refused_413_before_any_password_is_hashed() {
    let h = Harness::new();
    set_password(&h, &staff_named(&h, "周建平"), PASSWORD);
    let mut browser = Browser::new(h.app.clone());
    let csrf = browser.get("/console/login").await.csrf();
    let huge = "密".repeat(20_000);

    // Declared too long...
    let answer =
        browser.post("/console/login", &[("login", SUPERVISOR_PHONE), ("password", &huge), ("csrf", &csrf)]).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(answer.body.contains("提交的内容过长"), "{}", answer.body);
    // ...or sent without a declared length: cut off at the limit while reading.
    let body =
        serde_urlencoded::to_string([("login", SUPERVISOR_PHONE), ("password", &huge), ("csrf", &csrf)]).unwrap();
    let request = Request::post("/console/login").header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    assert_eq!(browser.send(request, Body::from(body)).await.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Within the body limit but over 200 bytes: refused before the lookup, too.
    let long = "p".repeat(201);
    let answer =
        browser.post("/console/login", &[("login", SUPERVISOR_PHONE), ("password", &long), ("csrf", &csrf)]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.form_error().as_deref(), Some("账号或密码过长。"));

    // No attempt reached the throttle, so none was hashed.
    assert_eq!(count(&h, "SELECT COUNT(*) FROM console_throttle"), 0);
}

#[tokio::test]
async fn forged_or_garbage_session_cookies_go_to_the_login_page() {
    let h = Harness::new();
    let zhou = staff_named(&h, "周建平");
    set_password(&h, &zhou, PASSWORD);
    let real = Browser::signed_in(h.app.clone(), SUPERVISOR_PHONE, PASSWORD).await;
    let stored_hash: String =
        h.admin.read(|conn| Ok(conn.query_row("SELECT token_hash FROM console_sessions", [], |r| r.get(0))?)).unwrap();
    assert_ne!(Some(stored_hash.as_str()), real.cookie("gridlink_console"));

    for forged in ["garbage", "", &"0".repeat(64), &stored_hash, "'; DROP TABLE users; --", &"f".repeat(5000)] {
        let mut browser = Browser::new(h.app.clone());
        browser.cookies.insert("gridlink_console".into(), forged.to_string());
        let answer = browser.get("/console/cases?status=open").await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{forged}");
        assert_eq!(answer.location(), Some("/console/login?next=/console/cases%3Fstatus%3Dopen"));
        assert!(browser.cookie("gridlink_console").is_none(), "the bad cookie is dropped");
        // A form post with one goes to the login page too, not to the handler.
        let mut browser = Browser::new(h.app.clone());
        browser.cookies.insert("gridlink_console".into(), forged.to_string());
        let answer = browser.post("/console/logout", &[("csrf", "x")]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn sessions_end_after_the_idle_time() {
    let policy = ConsolePolicy { idle: Duration::from_millis(300), ..ConsolePolicy::default() };
    let h = Harness::with_console_policy(policy);
    set_password(&h, &staff_named(&h, "周建平"), PASSWORD);
    let mut browser = Browser::signed_in(h.app.clone(), SUPERVISOR_PHONE, PASSWORD).await;
    assert_eq!(browser.get("/console").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(browser.get("/console").await.status, StatusCode::SEE_OTHER);
    assert_eq!(count(&h, "SELECT COUNT(*) FROM console_sessions"), 0, "expired sessions are deleted");
}

#[tokio::test]
async fn console_errors_are_html_pages_and_the_sync_api_keeps_its_json_envelope() {
    let h = Harness::new();
    let mut browser = Browser::new(h.app.clone());

    let missing = browser.get("/console/no-such-page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(missing.body.contains("找不到页面"), "{}", missing.body);
    assert_security_headers(&missing);
    let missing = browser.get("/console/no-such-page?lang=en").await;
    assert!(missing.body.contains("Not found"), "{}", missing.body);

    let login = browser.get("/console/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert_security_headers(&login);
    assert!(login.body.contains("name=\"login\"") && login.body.contains("name=\"password\""));
    assert_eq!(login.csrf(), browser.cookie("gridlink_console_login").unwrap());

    let api = browser.get("/v1/no-such-endpoint").await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert!(api.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/json"));
    assert!(api.body.contains("\"code\""), "{}", api.body);
}

#[tokio::test]
async fn scope_helpers_cover_exactly_the_users_area() {
    let h = Harness::new();
    let street_supervisor = staff_named(&h, "周建平");
    let community_supervisor =
        h.demo.staff_with_role(Role::Supervisor).find(|s| matches!(s.scopes[0], Scope::Community(_))).unwrap().clone();
    let worker = h.staff(Role::GridWorker);
    let Scope::Grid(worker_grid) = worker.scopes[0] else { panic!("a grid worker has a grid scope") };

    // The households each scope covers, counted with the SQL condition pages will use.
    let households_in = |scopes: &[Scope]| -> i64 {
        let area = h.admin.covered_area(scopes).unwrap();
        let (condition, values) = area.sql_condition("grid", "building");
        h.admin
            .read(|conn| {
                let sql = format!("SELECT COUNT(*) FROM household_rows WHERE {condition}");
                Ok(conn.query_row(&sql, rusqlite::params_from_iter(values.iter()), |r| r.get(0))?)
            })
            .unwrap()
    };
    assert_eq!(h.admin.covered_area(&community_supervisor.scopes).unwrap().grids.len(), 3);
    assert_eq!(households_in(&street_supervisor.scopes), 300);
    assert_eq!(households_in(&community_supervisor.scopes), 300, "the small demo has one community");
    let in_grid = households_in(&worker.scopes);
    assert!(in_grid > 0 && in_grid < 300, "{in_grid}");
    assert_eq!(households_in(&[]), 0);

    // A grid's placement, covered by the scopes above it and by no other.
    let placement = h.admin.placement_of_grid(worker_grid).unwrap().unwrap();
    assert!(street_supervisor.principal().covers(&placement));
    assert!(community_supervisor.principal().covers(&placement));
    let elsewhere = Scope::Community(gridlink_shared::CommunityId::new());
    assert!(!gridlink_shared::Principal { scopes: vec![elsewhere], ..worker.principal() }.covers(&placement));
    assert!(h.admin.placement_of_grid(gridlink_shared::GridId::new()).unwrap().is_none());
    let building = h.demo.roster.buildings.iter().find(|b| b.grid == worker_grid).unwrap();
    let placement = h.admin.placement_of_building(building.id).unwrap().unwrap();
    assert_eq!((placement.grid, placement.building), (worker_grid, Some(building.id)));
}
