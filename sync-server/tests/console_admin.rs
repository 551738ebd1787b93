//! The console's admin pages and ledger downloads through the real router (`oneshot`) over a
//! real SQLite data directory with the small demo: roster upload (problems listed, nothing
//! imported; a clean file imported), users (add, enrolment code as text and QR that enrols a
//! phone, scopes), devices (revoke one, revoke a user's), the audit log (accepted and refused
//! changes), the admin-only rule, scoped ledger downloads read back with calamine, and hostile
//! input (oversized and non-UTF-8 uploads, over-long names). SQLite only: the web console is
//! not served from PostgreSQL yet (the import and the audit it calls run on both backends in
//! `roster_outlets.rs`, `cli.rs` and `security_audit.rs`).

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use calamine::{Reader, Xlsx};
use common::console::{Browser, Page};
use common::{Harness, change_on};
use gridlink_shared::figures::Period;
use gridlink_shared::protocol::{EnrollRequest, EnrollResponse, PushChange};
use gridlink_shared::time::now_millis;
use gridlink_shared::{HouseholdFile, Role, Scope, Staff};

const ADMIN_PASSWORD: &str = "网格通管理员密码";
const SUPERVISOR_PASSWORD: &str = "凤凰街道督导2026";

/// A roster file that adds a second street (澜湖街道) with one community, grid, building,
/// household and grid worker.
const CLEAN_CSV: &str = "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room
street,00000000-0000-4000-8000-000000000001,,澜湖街道,,,,,,,,
community,00000000-0000-4000-8000-000000000011,00000000-0000-4000-8000-000000000001,澜湖社区,,,,,,,,
grid,00000000-0000-4000-8000-000000000101,00000000-0000-4000-8000-000000000011,澜湖社区第1网格,,,,,,,,
building,00000000-0000-4000-8000-000000000201,00000000-0000-4000-8000-000000000101,澜湖印象3栋,,,,2,6,2,,
household,00000000-0000-4000-8000-000000000301,00000000-0000-4000-8000-000000000201,刘桂兰,13907149999,,,,,,2,302
staff,00000000-0000-4000-8000-000000000401,,孙丽华,13907140002,grid-worker,grid:00000000-0000-4000-8000-000000000101,,,,,
";
const LANHU_COMMUNITY: &str = "community:00000000-0000-4000-8000-000000000011";

fn staff_named(h: &Harness, name: &str) -> Staff {
    h.demo.roster.staff.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no {name} in the demo")).clone()
}

fn count(h: &Harness, sql: &str) -> i64 {
    h.admin.read(|conn| Ok(conn.query_row(sql, [], |r| r.get(0))?)).unwrap()
}

async fn admin(h: &Harness) -> Browser {
    let admin = staff_named(h, "系统管理员");
    h.admin.set_console_password(admin.id, ADMIN_PASSWORD, now_millis()).unwrap();
    Browser::signed_in(h.app.clone(), "0711-3200000", ADMIN_PASSWORD).await
}

async fn supervisor(h: &Harness) -> Browser {
    let zhou = staff_named(h, "周建平");
    h.admin.set_console_password(zhou.id, SUPERVISOR_PASSWORD, now_millis()).unwrap();
    Browser::signed_in(h.app.clone(), "0711-3201000", SUPERVISOR_PASSWORD).await
}

/// Posts a multipart form with a `csrf` part and a `file` part.
async fn upload(browser: &mut Browser, path: &str, csrf: &str, file_name: &str, bytes: &[u8]) -> Page {
    let boundary = "----gridlink-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n").as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: text/csv\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let builder = Request::post(path)
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
        .header(header::CONTENT_LENGTH, body.len());
    browser.send(builder, Body::from(body)).await
}

fn streets(h: &Harness) -> i64 {
    count(h, "SELECT COUNT(*) FROM streets")
}

/// The text of the `<p class="code-text"><code>` on a code page.
fn shown_code(page: &Page) -> String {
    let marker = "class=\"code-text\"><code>";
    let start = page.body.find(marker).unwrap_or_else(|| panic!("no code on the page: {}", page.body)) + marker.len();
    page.body[start..start + page.body[start..].find('<').unwrap()].to_string()
}

async fn enroll_with(h: &Harness, code: &str) -> (StatusCode, Vec<u8>) {
    let body = serde_json::to_vec(&EnrollRequest { code: code.into(), device_name: "杨秀英的手机".into() }).unwrap();
    let request =
        Request::post("/v1/enroll").header(header::CONTENT_TYPE, "application/json").body(Body::from(body)).unwrap();
    let (status, _, body) = h.call(request).await;
    (status, body)
}

#[tokio::test]
async fn a_roster_with_a_bad_row_lists_every_problem_and_imports_nothing_and_a_clean_one_imports() {
    let h = Harness::new();
    let mut browser = admin(&h).await;
    let page = browser.get("/console/admin/roster").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("record_type,id,parent_id,name,phone,role,scopes"), "columns shown: {}", page.body);
    // Every record type the importer reads is explained, with its optional columns.
    for word in ["party-branch", "party-member", "volunteer", "outlet", "pledge,category,address", "reported_at"] {
        assert!(page.body.contains(word), "the help names {word}");
    }
    assert!(page.body.contains("enctype=\"multipart/form-data\""));
    let csrf = page.csrf();
    let before = streets(&h);

    // Row 5 (the building) has floors "六"; row 7 names an unknown role.
    let bad = CLEAN_CSV.replace(",2,6,2,,", ",2,六,2,,").replace("grid-worker", "网格长");
    let page = upload(&mut browser, "/console/admin/roster", &csrf, "澜湖街道.csv", bad.as_bytes()).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", page.body);
    assert!(page.body.contains("未导入任何内容"), "{}", page.body);
    assert!(page.body.contains("第 5 行") && page.body.contains("<code>floors</code>"), "{}", page.body);
    assert!(page.body.contains("第 7 行") && page.body.contains("<code>role</code>"), "{}", page.body);
    // The problems themselves are in Chinese too.
    assert!(page.body.contains("“六”不是 1 到 200 之间的数字"), "{}", page.body);
    assert!(page.body.contains("角色无效"), "{}", page.body);
    assert_eq!(streets(&h), before, "nothing imported");
    assert_eq!(count(&h, "SELECT COUNT(*) FROM users WHERE name = '孙丽华'"), 0);

    // The same in English.
    let english = browser.get("/console/admin/roster?lang=en").await;
    let page = upload(&mut browser, "/console/admin/roster", &english.csrf(), "lanhu.csv", bad.as_bytes()).await;
    assert!(page.body.contains("row 5, column <code>floors</code>"), "{}", page.body);
    assert!(page.body.contains("'六' is not a number from 1 to 200"), "{}", page.body);

    // Excel's "CSV UTF-8" byte order mark is fine.
    let clean = [b"\xEF\xBB\xBF".as_slice(), CLEAN_CSV.as_bytes()].concat();
    let page = upload(&mut browser, "/console/admin/roster?lang=zh", &csrf, "澜湖街道.csv", &clean).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("已导入 澜湖街道.csv"), "{}", page.body);
    assert_eq!(streets(&h), before + 1);
    assert_eq!(count(&h, "SELECT COUNT(*) FROM users WHERE name = '孙丽华'"), 1);
}

#[tokio::test]
async fn an_admin_adds_a_user_whose_code_and_qr_enrol_a_phone_then_moves_and_revokes_it() {
    let h = Harness::new();
    let mut browser = admin(&h).await;
    let grids: Vec<_> = h.demo.roster.grids.iter().take(2).map(|g| g.id).collect();

    let page = browser.get("/console/admin/users").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("周建平") && page.body.contains("凤凰街道"), "users with scopes by name");
    let grid_scope = Scope::Grid(grids[0]).to_string();
    let fields = [
        ("csrf", page.csrf()),
        ("name", "杨秀英".to_string()),
        ("role", "grid-worker".to_string()),
        ("phone", "13807141234".to_string()),
        ("scope", grid_scope),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = browser.post("/console/admin/users", &fields).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let code = shown_code(&page);
    assert!(page.body.contains("杨秀英"));
    assert!(page.body.contains("<svg"), "a QR code drawn on the server: {}", page.body);
    assert!(!page.body.contains("<?xml"), "inline SVG, no XML declaration");
    let added = h.admin.list_users().unwrap().into_iter().find(|u| u.name == "杨秀英").unwrap();
    assert_eq!((added.role, added.scopes.clone()), (Role::GridWorker, vec![Scope::Grid(grids[0])]));
    assert_eq!(
        count(&h, &format!("SELECT COUNT(*) FROM enrol_codes WHERE code_hash = '{code}'")),
        0,
        "the code is stored only hashed"
    );

    // The code enrols a phone.
    let (status, body) = enroll_with(&h, &code).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let enrolled: EnrollResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(enrolled.principal.name, "杨秀英");

    // A second code from the user's page; the first one is spent.
    let user_page = browser.get(&format!("/console/admin/users/{}", added.id)).await;
    assert_eq!(user_page.status, StatusCode::OK);
    let page = browser.post(&format!("/console/admin/users/{}/code", added.id), &[("csrf", &user_page.csrf())]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let second = shown_code(&page);
    assert_ne!(second, code);
    assert!(page.body.contains("<svg"));

    // New scopes.
    let other = Scope::Grid(grids[1]).to_string();
    let page = browser
        .post(&format!("/console/admin/users/{}/scopes", added.id), &[("csrf", &user_page.csrf()), ("scope", &other)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let moved = h.admin.list_users().unwrap().into_iter().find(|u| u.id == added.id).unwrap();
    assert_eq!(moved.scopes, vec![Scope::Grid(grids[1])]);
    let saved = browser.get(page.location().unwrap()).await;
    assert!(saved.body.contains("已保存"), "{}", saved.body);
    // A scope not on the roster is refused, and nothing changes.
    let unknown = Scope::Grid(gridlink_shared::GridId::new()).to_string();
    let page = browser
        .post(&format!("/console/admin/users/{}/scopes", added.id), &[("csrf", &user_page.csrf()), ("scope", &unknown)])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.form_error().unwrap().contains("不在花名册上"), "{}", page.body);
    let still = h.admin.list_users().unwrap().into_iter().find(|u| u.id == added.id).unwrap();
    assert_eq!(still.scopes, vec![Scope::Grid(grids[1])]);

    // The devices page lists the phone; revoking it locks its token out.
    let devices = browser.get("/console/admin/devices").await;
    assert!(devices.body.contains("杨秀英的手机") && devices.body.contains("吊销此设备"), "{}", devices.body);
    let device = common::Device::new(enrolled.clone());
    let sync = || async {
        h.post_sync(&enrolled.token, gridlink_shared::protocol::encode(&device.request(Vec::new()))).await.0
    };
    assert_eq!(sync().await, StatusCode::OK);
    let page = browser
        .post("/console/admin/devices/revoke", &[("csrf", &devices.csrf()), ("device", &enrolled.device.to_string())])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(sync().await, StatusCode::UNAUTHORIZED);
    let devices = browser.get(page.location().unwrap()).await;
    assert!(devices.body.contains("已吊销"), "{}", devices.body);

    // All of a user's devices at once: the second code's phone too, and its unused codes die.
    let (status, body) = enroll_with(&h, &second).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let again: EnrollResponse = serde_json::from_slice(&body).unwrap();
    let page = browser
        .post("/console/admin/devices/revoke", &[("csrf", &devices.csrf()), ("user", &added.id.to_string())])
        .await;
    assert_eq!(page.location(), Some("/console/admin/devices?revoked=1"));
    assert_eq!(h.post_sync(&again.token, Vec::new()).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_audit_log_shows_an_accepted_push_and_a_refused_one() {
    let h = Harness::new();
    let workers = h.grid_workers();
    let worker = &workers[0];
    let Scope::Grid(mine) = worker.scopes[0] else { panic!("a grid worker") };
    let theirs = h.demo.households.iter().find(|x| x.placement.grid != mine).unwrap().placement.grid;
    let mut phone = h.enroll(worker).await;
    h.sync_all(&mut phone).await;
    let own = h.demo.households.iter().find(|x| x.placement.grid == mine).unwrap().id;
    let push = phone.edit::<HouseholdFile>(own.into(), |x| x.notes = "老人腿脚不便，已联系社区医生上门".into());
    h.sync(&mut phone, vec![push]).await;
    let foreign = h.demo.households.iter().find(|x| x.placement.grid == theirs).unwrap().id;
    let mut server_copy = h.server_doc(foreign.into()).unwrap();
    let bytes = change_on(&mut server_copy, phone.actor.clone(), |x| x.notes = "越权修改".into());
    h.sync(&mut phone, vec![PushChange { doc: foreign.into(), bytes }]).await;

    let mut browser = admin(&h).await;
    let page = browser.get(&format!("/console/admin/audit?user={}", worker.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&own.to_string()) && page.body.contains("已接收"), "{}", page.body);
    assert!(page.body.contains(&foreign.to_string()) && page.body.contains("out-of-scope"), "{}", page.body);
    assert!(page.body.contains(&worker.name) && page.body.contains(&format!("{}的手机", worker.name)));

    let refused = browser.get(&format!("/console/admin/audit?user={}&kind=refused", worker.id)).await;
    assert!(refused.body.contains(&foreign.to_string()), "{}", refused.body);
    assert!(!refused.body.contains(&own.to_string()), "only refusals: {}", refused.body);
    let accepted = browser.get(&format!("/console/admin/audit?user={}&kind=accepted", worker.id)).await;
    assert!(accepted.body.contains(&own.to_string()) && !accepted.body.contains(&foreign.to_string()));
    // A date range before any of it: nothing.
    let old = browser.get("/console/admin/audit?from=2001-01-01&to=2001-12-31").await;
    assert!(old.body.contains("没有符合条件的记录"), "{}", old.body);
}

#[tokio::test]
async fn supervisors_may_not_open_admin_pages_but_download_ledgers_of_their_area_only() {
    let h = Harness::new();
    h.admin.import_csv_from(CLEAN_CSV.as_bytes(), now_millis()).unwrap();
    let mut browser = supervisor(&h).await;
    let someone = staff_named(&h, "系统管理员").id;
    for path in [
        "/console/admin".to_string(),
        "/console/admin/users".to_string(),
        format!("/console/admin/users/{someone}"),
        "/console/admin/devices".to_string(),
        "/console/admin/audit".to_string(),
        "/console/admin/roster".to_string(),
    ] {
        assert_eq!(browser.get(&path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let csrf = browser.get("/console/exports").await.csrf();
    let users_before = count(&h, "SELECT COUNT(*) FROM users");
    let page = browser
        .post(
            "/console/admin/users",
            &[("csrf", &csrf), ("name", "冒名"), ("role", "admin"), ("scope", LANHU_COMMUNITY)],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(browser.post(&format!("/console/admin/users/{someone}/code"), &[("csrf", &csrf)]).await.status, 403);
    let page = upload(&mut browser, "/console/admin/roster", &csrf, "x.csv", CLEAN_CSV.as_bytes()).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(count(&h, "SELECT COUNT(*) FROM users"), users_before);

    // The exports page offers the street and what is inside it, nothing else.
    let community = &h.demo.roster.communities[0];
    let page = browser.get("/console/exports").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&community.name) && page.body.contains("走访台账"), "{}", page.body);
    assert!(!page.body.contains("澜湖社区"), "another street's community is not offered");

    let scope = Scope::Community(community.id);
    let query = format!("what=visits&format=xlsx&scope={scope}&period=range&from=2020-01-01&to=2029-12-31");
    let (status, headers, bytes) = raw_download(&browser, &format!("/console/exports/download?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(headers[header::CONTENT_TYPE], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    let disposition = headers[header::CONTENT_DISPOSITION].to_str().unwrap();
    assert!(disposition.starts_with("attachment;") && disposition.contains("filename*=UTF-8''"), "{disposition}");
    // 走访台账 percent-encoded.
    assert!(disposition.contains("%E8%B5%B0%E8%AE%BF%E5%8F%B0%E8%B4%A6"), "{disposition}");
    let mut workbook: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    let sheet = workbook.worksheet_range_at(0).unwrap().unwrap();
    let period = Period::days("2020-01-01".parse().unwrap(), "2029-12-31".parse().unwrap());
    let facts = h.admin.facts(&[scope]).unwrap();
    let visits = facts.visits.iter().filter(|v| period.contains(v.at)).count();
    assert!(visits > 0, "the demo has visits");
    assert_eq!(sheet.height(), visits + 1, "a header row and one row per visit");

    // CSV too.
    let csv = browser
        .send(Request::get(format!("/console/exports/download?{}", query.replace("xlsx", "csv"))), Body::empty())
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");

    // Another street's community, and a community that does not exist: refused alike.
    for outside in [LANHU_COMMUNITY.to_string(), Scope::Community(gridlink_shared::CommunityId::new()).to_string()] {
        let page = browser
            .get(&format!("/console/exports/download?what=visits&format=xlsx&scope={outside}&period=month"))
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{outside}");
        assert!(page.body.contains("不在你的管辖范围内"), "{}", page.body);
    }
    let page = browser.get("/console/exports/download?what=passwords&format=xlsx").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let page = browser.get("/console/exports/download?what=visits&period=range&from=2026-05-01&to=2026-04-01").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
}

/// A download's status, headers and bytes (the test browser reads bodies as text).
async fn raw_download(browser: &Browser, path: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    use tower::ServiceExt;
    let cookie: Vec<String> = browser.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let request = Request::get(path).header(header::COOKIE, cookie.join("; ")).body(Body::empty()).unwrap();
    let response = browser.app.clone().oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec())
}

#[tokio::test]
async fn oversized_and_non_utf8_uploads_and_overlong_names_are_refused_and_change_nothing() {
    let h = Harness::new();
    let mut browser = admin(&h).await;
    let csrf = browser.get("/console/admin/roster").await.csrf();
    let before = streets(&h);

    // Over the 5 MiB cap: 413 before anything is read or imported.
    let mut huge = CLEAN_CSV.as_bytes().to_vec();
    huge.resize(6 * 1024 * 1024, b'\n');
    let page = upload(&mut browser, "/console/admin/roster", &csrf, "huge.csv", &huge).await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", page.body);
    assert_eq!(streets(&h), before);

    // GBK from an old Excel: a clear message, nothing imported.
    let gbk: &[u8] = b"record_type,id,parent_id,name\nstreet,00000000-0000-4000-8000-000000000001,,\xc0\xbd\xba\xfe\xbd\xd6\xb5\xc0\n";
    let page = upload(&mut browser, "/console/admin/roster", &csrf, "旧表格.csv", gbk).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.form_error().unwrap().contains("不是 UTF-8"), "{}", page.body);
    assert_eq!(streets(&h), before);

    // A multipart body without the token is refused like any form.
    let page = upload(&mut browser, "/console/admin/roster", "forged", "x.csv", CLEAN_CSV.as_bytes()).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(streets(&h), before);

    // Names over 50 characters: refused with the rule, nobody added. 5,000 CJK characters
    // do not even fit in a form body (24 KiB): refused there.
    let users = count(&h, "SELECT COUNT(*) FROM users");
    let grid = Scope::Grid(h.demo.roster.grids[0].id).to_string();
    for (name, status) in [
        ("欧阳".repeat(2500), StatusCode::PAYLOAD_TOO_LARGE),
        ("欧阳".repeat(250), StatusCode::BAD_REQUEST),
        ("欧阳".repeat(30), StatusCode::BAD_REQUEST),
        ("Ouyang Xiuying ".repeat(34).chars().take(500).collect::<String>(), StatusCode::BAD_REQUEST),
    ] {
        let csrf = browser.get("/console/admin/users").await.csrf();
        let fields = [("csrf", csrf.as_str()), ("name", &name), ("role", "grid-worker"), ("scope", &grid)];
        let page = browser.post("/console/admin/users", &fields).await;
        assert_eq!(page.status, status, "{}", page.body);
        if status == StatusCode::BAD_REQUEST {
            assert!(page.form_error().unwrap().contains("1 到 50 个字"), "{}", page.body);
        }
    }
    assert_eq!(count(&h, "SELECT COUNT(*) FROM users"), users);
    // No scope, or a made-up role: refused too.
    let csrf = browser.get("/console/admin/users").await.csrf();
    let page =
        browser.post("/console/admin/users", &[("csrf", &csrf), ("name", "何志强"), ("role", "grid-worker")]).await;
    assert!(page.form_error().unwrap().contains("至少选择一个"), "{}", page.body);
    let page = browser
        .post("/console/admin/users", &[("csrf", &csrf), ("name", "何志强"), ("role", "emperor"), ("scope", &grid)])
        .await;
    assert!(page.form_error().unwrap().contains("角色"), "{}", page.body);
    assert_eq!(count(&h, "SELECT COUNT(*) FROM users"), users);
}
