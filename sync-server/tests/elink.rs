//! The residents' grid e-link (`/e/{token}`), driven in-process: filing a help request that
//! the grid worker's phone pulls at its next sync, the status lookup, and the hostile inputs
//! of a public endpoint (bad fields, control characters, oversized bodies, unknown tokens,
//! floods, wrong status lookups, console cookies).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use common::{DEMO_NOW, Harness};
use gridlink_shared::codes::{ActionKind, CaseStatus, ServiceCategory};
use gridlink_shared::{Action, ActionId, BuildingId, CaseFile, CaseKind, DocId};
use gridlink_sync_server::elink::ElinkLimits;
use gridlink_sync_server::{AppState, SqliteStore, router};

struct Elink {
    harness: Harness,
    app: Router,
    building: BuildingId,
    token: String,
}

impl Elink {
    fn new() -> Self {
        Self::with_limits(ElinkLimits::default())
    }

    fn with_limits(limits: ElinkLimits) -> Self {
        let harness = Harness::new();
        let mut state = AppState::new(SqliteStore::open(harness.dir.path()).unwrap());
        state.elink = state.elink.clone().with_limits(limits);
        let app = router(state);
        let building = harness.demo.roster.buildings[0].id;
        let token = harness.admin.elink_link(building, false, DEMO_NOW).unwrap().token;
        Elink { harness, app, building, token }
    }

    fn url(&self) -> String {
        format!("/e/{}", self.token)
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
        use tower::ServiceExt;
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    async fn get(&self, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        self.call(Request::get(path).body(Body::empty()).unwrap()).await
    }

    /// Posts `fields` form-encoded to `path` from client address `from`.
    async fn post(&self, path: &str, fields: &[(&str, &str)], from: [u8; 4]) -> (StatusCode, String) {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let mut request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from((from, 40_000))));
        let (status, _, body) = self.call(request).await;
        (status, body)
    }

    /// A fresh nonce, as the form page hands out.
    async fn nonce(&self) -> String {
        let (status, _, page) = self.get(&self.url()).await;
        assert_eq!(status, StatusCode::OK);
        let start = page.find(r#"name="nonce" value=""#).expect("the form has a nonce") + 20;
        page[start..start + 32].to_string()
    }

    /// Files a valid request; returns the status and the page.
    async fn file(&self, phone: &str, nonce: &str, from: [u8; 4]) -> (StatusCode, String) {
        let fields = [
            ("category", "utilities"),
            ("description", "厨房水管接头漏水，地上全是水，请师傅上门看看。"),
            ("room", "2单元301"),
            ("name", "王秀兰"),
            ("phone", phone),
            ("nonce", nonce),
        ];
        self.post(&self.url(), &fields, from).await
    }

    /// The help cases filed through the e-link by the test, as rows of `elink_requests` (the
    /// demo's own requests were filed before `DEMO_NOW`).
    fn filed(&self) -> usize {
        self.harness
            .admin
            .read(|conn| {
                Ok(conn.query_row("SELECT COUNT(*) FROM elink_requests WHERE created_at > ?1", [DEMO_NOW], |r| {
                    r.get::<_, i64>(0)
                })?)
            })
            .unwrap() as usize
    }
}

/// The reference number on a receipt page (`ABCD-EFGH`).
fn reference_on(page: &str) -> String {
    let start = page.find(r#"id="reference">"#).unwrap_or_else(|| panic!("no reference on {page}")) + 15;
    page[start..start + 9].to_string()
}

const HOME: [u8; 4] = [10, 1, 2, 3];

#[tokio::test]
async fn a_filed_request_reaches_the_grid_workers_phone_at_its_next_sync() {
    let elink = Elink::new();
    let placement = elink.harness.demo.roster.placement_of_building(elink.building).unwrap();
    let responsible = elink.harness.admin.grid_workers(placement.grid).unwrap()[0].0;
    let worker = elink.harness.demo.roster.staff.iter().find(|s| s.id == responsible).unwrap().clone();
    let mut phone = elink.harness.enroll(&worker).await;
    elink.harness.sync_all(&mut phone).await;
    let before = phone.docs.len();

    let (status, page) = elink.file("138 0731 6688", &elink.nonce().await, HOME).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("求助已提交") && page.contains("水电维修"), "{page}");
    let reference = reference_on(&page);
    assert!(reference.chars().all(|c| c == '-' || c.is_ascii_alphanumeric()), "{reference}");

    elink.harness.sync_all(&mut phone).await;
    assert_eq!(phone.docs.len(), before + 1, "the worker's phone pulls exactly the new case");
    let cases: Vec<CaseFile> = phone
        .docs
        .values()
        .filter_map(|doc| gridlink_shared::doc::read::<CaseFile>(doc).ok())
        .filter(|case| case.kind == CaseKind::Help(ServiceCategory::Utilities) && case.title.starts_with("网格e通求助"))
        // The demo's own e-link requests are in the grid too.
        .filter(|case| case.description.contains("13807316688"))
        .collect();
    assert_eq!(cases.len(), 1);
    let case = &cases[0];
    assert_eq!(case.placement, placement);
    assert_eq!(case.responsible().0, worker.id, "首问负责: the grid's worker is responsible");
    assert!(case.description.contains("王秀兰") && case.description.contains("13807316688"), "{}", case.description);
    assert!(case.description.contains("厨房水管接头漏水"));
    assert!(case.timeline.is_empty(), "a fresh request waits to be accepted");
    elink.harness.assert_store_loads("after an e-link request");
}

#[tokio::test]
async fn a_double_tap_files_one_case_and_shows_the_same_reference() {
    let elink = Elink::new();
    let nonce = elink.nonce().await;
    let (first_status, first) = elink.file("13807316688", &nonce, HOME).await;
    let (second_status, second) = elink.file("13807316688", &nonce, HOME).await;
    assert_eq!((first_status, second_status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(reference_on(&first), reference_on(&second));
    assert_eq!(elink.filed(), 1);

    // The same nonce with another phone number is not someone else's receipt.
    let (status, page) = elink.file("13974120099", &nonce, HOME).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("页面已过期") && !page.contains(&reference_on(&first)), "{page}");
    assert_eq!(elink.filed(), 1);
}

#[tokio::test]
async fn each_bad_field_gets_its_own_error_and_the_form_keeps_what_was_typed() {
    let elink = Elink::new();
    let nonce = elink.nonce().await;
    let fields = [
        ("category", "pizza-delivery"),
        ("description", "楼道灯坏了<script>alert(1)</script>"),
        ("room", ""),
        ("name", "李建国"),
        ("phone", "12345"),
        ("nonce", nonce.as_str()),
    ];
    let (status, page) = elink.post(&elink.url(), &fields, HOME).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("请选择服务类别"), "{page}");
    assert!(page.contains("请填写房号"));
    assert!(page.contains("请填写正确的手机号"));
    assert!(!page.contains("请写明需要什么帮助") && !page.contains("请填写联系人姓名"), "good fields have no error");
    assert!(page.contains(r#"value="李建国""#) && page.contains(r#"value="12345""#), "typed values kept");
    assert!(page.contains("楼道灯坏了&lt;script&gt;"), "the description is kept, escaped");
    assert!(!page.contains("<script>"));
    assert_eq!(elink.filed(), 0);

    // Too long, at its field.
    let long = "漏".repeat(501);
    let fields = [
        ("category", "medical"),
        ("description", long.as_str()),
        ("room", "7栋1单元1502室还有很长很长很长很长的说明"),
        ("name", "李建国"),
        ("phone", "0731-84562211"),
        ("nonce", nonce.as_str()),
    ];
    let (status, page) = elink.post(&elink.url(), &fields, HOME).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("描述最多500字") && page.contains("房号最多20个字"), "{page}");
    assert!(page.contains(r#"<option value="medical" selected>医疗卫生"#), "the category stays chosen");
    assert_eq!(elink.filed(), 0);
}

#[tokio::test]
async fn control_characters_and_direction_overrides_are_refused_at_their_field() {
    let elink = Elink::new();
    for (field, value, message) in [
        ("name", "王\u{0}秀兰", "姓名里有无法识别的字符"),
        ("room", "2单元\u{202E}103", "房号里有无法识别的字符"),
        ("description", "漏水\u{1b}[31m", "描述里有无法识别的字符"),
        ("phone", "138\u{7}07316688", "请填写正确的手机号"),
    ] {
        let nonce = elink.nonce().await;
        let mut fields = vec![
            ("category", "locksmith"),
            ("description", "钥匙锁在屋里了"),
            ("room", "5单元202"),
            ("name", "赵桂芳"),
            ("phone", "13907315522"),
            ("nonce", nonce.as_str()),
        ];
        fields.iter_mut().find(|(k, _)| *k == field).unwrap().1 = value;
        let (status, page) = elink.post(&elink.url(), &fields, HOME).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert!(page.contains(message), "{field}: {page}");
    }
    assert_eq!(elink.filed(), 0);
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_parsing() {
    let elink = Elink::new();
    let nonce = elink.nonce().await;
    for size in [20 * 1024, 3 * 1024 * 1024] {
        let mut body = format!("category=utilities&room=1&name=a&phone=13807316688&nonce={nonce}&description=");
        body.push_str(&"x".repeat(size));
        let request = Request::post(elink.url())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let (status, headers, _) = elink.call(request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{size} bytes");
        assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
    }
    assert_eq!(elink.filed(), 0);
}

#[tokio::test]
async fn unknown_malformed_and_rotated_tokens_get_one_neutral_answer() {
    let elink = Elink::new();
    let (_, _, unknown) = elink.get("/e/0123456789abcdef0123456789abcdef").await;
    let old = elink.url();
    elink.harness.admin.elink_link(elink.building, true, DEMO_NOW).unwrap();
    for path in [
        "/e/0123456789abcdef0123456789abcdef".to_string(),
        "/e/ZZZ".to_string(),
        format!("/e/{}", "a".repeat(5000)),
        old.clone(),
        format!("{old}/status"),
    ] {
        let (status, headers, page) = elink.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(page, unknown, "{path}: the same page for every bad token");
        assert!(page.contains("链接无效"));
        assert!(!headers.contains_key(header::SET_COOKIE));
    }
    let (status, _) = elink.file("13807316688", &"0".repeat(32), HOME).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the rotated token files nothing");
    assert_eq!(elink.filed(), 0);
}

#[tokio::test]
async fn pages_carry_security_headers_ignore_console_cookies_and_reach_nothing_else() {
    let elink = Elink::new();
    let request = Request::get(elink.url())
        .header(header::COOKIE, "gridlink_console=0123456789abcdef; other=1")
        .body(Body::empty())
        .unwrap();
    let (status, headers, page) = elink.call(request).await;
    assert_eq!(status, StatusCode::OK);
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert!(!headers.contains_key(header::SET_COOKIE));
    assert!(!page.contains("<script") && !page.contains("http://") && !page.contains("https://"), "{page}");
    for category in ServiceCategory::ALL {
        assert!(page.contains(&format!(r#"value="{}""#, category.code())), "{category}");
    }
    for path in [format!("{}/console", elink.url()), format!("{}/../../console", elink.url()), "/e/".to_string()] {
        let (status, _, _) = elink.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let request = Request::delete(elink.url()).body(Body::empty()).unwrap();
    let (status, headers, _) = elink.call(request).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
}

#[tokio::test]
async fn a_thousand_rapid_posts_file_no_more_than_the_limits_allow() {
    // One address, under a building cap it cannot reach: refused past its window count.
    let limits = ElinkLimits::default();
    let elink = Elink::with_limits(ElinkLimits { filed_per_building_hour: 10_000, ..limits });
    let mut admitted = 0;
    for _ in 0..1000 {
        let (status, _) = elink.file("13807316688", &elink.nonce().await, HOME).await;
        if status != StatusCode::TOO_MANY_REQUESTS {
            admitted += 1;
        }
    }
    assert_eq!(admitted, limits.posts_per_address);
    assert_eq!(elink.filed(), limits.posts_per_address);

    // Many addresses (a botnet, or a whole compound behind carrier NAT): the building's cap
    // holds.
    let fresh = Elink::new();
    let mut filed_pages = 0;
    for i in 0..1000u32 {
        let from = [10, 9, (i / 250) as u8, (i % 250) as u8];
        let (status, page) = fresh.file("13807316688", &fresh.nonce().await, from).await;
        if status == StatusCode::OK {
            filed_pages += 1;
        } else {
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{page}");
            assert!(page.contains("提交太频繁"));
        }
    }
    assert_eq!(filed_pages, limits.filed_per_building_hour);
    assert_eq!(fresh.filed(), limits.filed_per_building_hour as usize);
}

#[tokio::test]
async fn the_status_page_shows_only_that_request_and_follows_the_timeline() {
    let elink = Elink::new();
    let (_, first) = elink.file("13807316688", &elink.nonce().await, HOME).await;
    let first_ref = reference_on(&first);
    let second_fields = [
        ("category", "elderly-care"),
        ("description", "母亲八十六岁独居，想申请助餐上门。"),
        ("room", "1单元602"),
        ("name", "陈志强"),
        ("phone", "13574185230"),
    ];
    let nonce = elink.nonce().await;
    let mut fields = second_fields.to_vec();
    fields.push(("nonce", &nonce));
    let (_, second) = elink.post(&elink.url(), &fields, HOME).await;
    let second_ref = reference_on(&second);

    let status_url = format!("{}/status", elink.url());
    let lookup = |reference: String, phone: &'static str| {
        let status_url = status_url.clone();
        let elink = &elink;
        async move { elink.post(&status_url, &[("reference", &reference), ("phone", phone)], HOME).await }
    };
    let (status, page) = lookup(first_ref.to_lowercase().replace('-', " "), "138-0731-6688").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("已提交，等待网格员受理") && page.contains("水电维修"), "{page}");
    assert!(!page.contains(&second_ref) && !page.contains("养老服务") && !page.contains("陈志强"));
    assert!(!page.contains("王秀兰") && !page.contains("厨房"), "the status page shows no personal details");

    // Wrong pairs: one neutral answer, nothing of either request.
    for (reference, phone) in [
        (first_ref.clone(), "13574185230"),
        (second_ref.clone(), "13807316688"),
        ("ABCD-EFGH".to_string(), "13807316688"),
        ("not a reference".to_string(), "x"),
        (String::new(), ""),
    ] {
        let (status, page) = lookup(reference.clone(), phone).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("没有找到与这个受理编号和电话对应的求助"), "{reference}/{phone}");
        assert!(!page.contains("水电维修") && !page.contains("养老服务") && !page.contains("当前进度"));
    }

    // The worker moves the case on; the resident sees each step.
    let placement = elink.harness.demo.roster.placement_of_building(elink.building).unwrap();
    let responsible = elink.harness.admin.grid_workers(placement.grid).unwrap()[0].0;
    let worker = elink.harness.demo.roster.staff.iter().find(|s| s.id == responsible).unwrap().clone();
    let mut phone = elink.harness.enroll(&worker).await;
    elink.harness.sync_all(&mut phone).await;
    let case_id: DocId = phone
        .docs
        .iter()
        .find(|(_, doc)| {
            gridlink_shared::doc::read::<CaseFile>(*doc)
                .is_ok_and(|c| c.kind == CaseKind::Help(ServiceCategory::Utilities) && c.description.contains("王秀兰"))
        })
        .map(|(id, _)| *id)
        .unwrap();
    for (kind, shown) in
        [(ActionKind::Accept, "已受理"), (ActionKind::Progress, "处理中"), (ActionKind::Resolve, "已办结")]
    {
        let change = phone.edit::<CaseFile>(case_id, |case| {
            case.push_action(Action {
                id: ActionId::new(),
                kind,
                by: worker.id,
                by_name: worker.name.clone(),
                at: gridlink_shared::time::now_millis(),
                lamport: 0,
                note: String::new(),
                satisfaction: None,
                to: None,
                to_name: None,
                claimant: None,
                outlet: None,
            })
        });
        elink.harness.sync(&mut phone, vec![change]).await;
        let (_, page) = lookup(first_ref.clone(), "13807316688").await;
        assert!(page.contains(&format!(r#"<strong id="status">{shown}</strong>"#)), "{kind:?}: {page}");
    }

    // Another building's link does not find this building's request.
    let other = elink.harness.demo.roster.buildings[1].id;
    let other_token = elink.harness.admin.elink_link(other, false, DEMO_NOW).unwrap().token;
    let (_, page) = elink
        .post(&format!("/e/{other_token}/status"), &[("reference", &first_ref), ("phone", "13807316688")], HOME)
        .await;
    assert!(page.contains("没有找到"), "{page}");
}

#[tokio::test]
async fn status_lookups_are_rate_limited_per_address() {
    let elink = Elink::with_limits(ElinkLimits {
        lookups_per_address: 5,
        window: Duration::from_secs(3600),
        ..ElinkLimits::default()
    });
    let status_url = format!("{}/status", elink.url());
    for attempt in 0..5 {
        let (status, _) = elink.post(&status_url, &[("reference", "ABCD-EFGH"), ("phone", "13807316688")], HOME).await;
        assert_eq!(status, StatusCode::OK, "attempt {attempt}");
    }
    let (status, page) = elink.post(&status_url, &[("reference", "ABCD-EFGH"), ("phone", "13807316688")], HOME).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.contains("提交太频繁"));
    let (status, _) =
        elink.post(&status_url, &[("reference", "ABCD-EFGH"), ("phone", "13807316688")], [10, 7, 7, 7]).await;
    assert_eq!(status, StatusCode::OK, "another address is not held up");
}

#[tokio::test]
async fn over_a_real_socket_the_limit_counts_the_peer_address() {
    let elink = Elink::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut state = AppState::new(SqliteStore::open(elink.harness.dir.path()).unwrap());
    state.elink = state.elink.clone().with_limits(ElinkLimits { lookups_per_address: 3, ..ElinkLimits::default() });
    let server = tokio::spawn(gridlink_sync_server::serve(listener, state, async {
        stopped.await.ok();
    }));

    let http = reqwest::Client::new();
    let url = format!("{base}{}/status", elink.url());
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response =
            http.post(&url).form(&[("reference", "ABCD-EFGH"), ("phone", "13807316688")]).send().await.unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    // Another peer address (loopback has all of 127/8) has its own count.
    let neighbour = reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, 2])).build().unwrap();
    let response =
        neighbour.post(&url).form(&[("reference", "ABCD-EFGH"), ("phone", "13807316688")]).send().await.unwrap();
    assert_eq!(response.status(), 200);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_demos_own_requests_show_their_status_and_the_form_reuses_the_demos_elink_account() {
    let elink = Elink::new();
    let demo = &elink.harness.demo;
    // The demo's requests of this building, as a resident would type the reference (lower
    // case, dashed) and the phone (spaced): each shows its own case's status.
    let requests: Vec<_> = demo.elink_requests.iter().filter(|r| r.building == elink.building).collect();
    assert!(!requests.is_empty(), "the small demo has e-link requests in its first building");
    let status_url = format!("{}/status", elink.url());
    for (n, request) in requests.iter().take(5).enumerate() {
        let case = demo.cases.iter().find(|c| c.id == request.case).unwrap();
        let shown = match case.status() {
            CaseStatus::Reported => "已提交，等待网格员受理",
            CaseStatus::Accepted => "已受理",
            CaseStatus::OnSite | CaseStatus::InProgress => "处理中",
            CaseStatus::Resolved | CaseStatus::Closed => "已办结",
        };
        let typed_reference = format!("{}-{}", &request.reference[..4], &request.reference[4..]).to_lowercase();
        let typed_phone = format!("{} {} {}", &request.phone[..3], &request.phone[3..7], &request.phone[7..]);
        let from = [10, 5, 0, n as u8];
        let (status, page) =
            elink.post(&status_url, &[("reference", &typed_reference), ("phone", &typed_phone)], from).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(&format!(r#"<strong id="status">{shown}</strong>"#)), "{shown}: {page}");
        let CaseKind::Help(category) = case.kind else { panic!("{} is not a help request", case.title) };
        assert!(page.contains(category.zh()), "{page}");
        assert!(!page.contains(&request.name), "no personal details");
    }
    let request = requests[0];

    // A wrong phone: the neutral answer, nothing of the request.
    let wrong = if request.phone.ends_with('0') { "13900000001" } else { "13900000000" };
    let (_, page) = elink.post(&status_url, &[("reference", &request.reference), ("phone", wrong)], HOME).await;
    assert!(page.contains("没有找到与这个受理编号和电话对应的求助") && !page.contains("当前进度"), "{page}");

    // A new request through the real form is reported by the demo's e-link account of the
    // grid: no second account.
    let grid = demo.roster.placement_of_building(elink.building).unwrap().grid;
    let account = demo
        .roster
        .staff
        .iter()
        .find(|s| gridlink_shared::elink::is_elink_account(s) && s.scopes == vec![gridlink_shared::Scope::Grid(grid)])
        .expect("the demo roster has the grid's e-link account")
        .clone();
    let accounts = || {
        elink
            .harness
            .admin
            .list_users()
            .unwrap()
            .into_iter()
            .filter(|u| u.name == gridlink_shared::elink::ELINK_ACCOUNT_NAME)
            .count()
    };
    assert_eq!(accounts(), demo.roster.grids.len(), "one account per grid, from the demo");
    let (status, page) = elink.file("13807316688", &elink.nonce().await, HOME).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(accounts(), demo.roster.grids.len(), "no second account for the grid");
    let reporter: String = elink
        .harness
        .admin
        .read(|conn| {
            let reference = gridlink_shared::elink::normalize_reference(&reference_on(&page)).unwrap();
            let case_id: String =
                conn.query_row("SELECT case_id FROM elink_requests WHERE reference = ?1", [&reference], |r| r.get(0))?;
            let bytes: Vec<u8> = conn.query_row("SELECT bytes FROM docs WHERE id = ?1", [&case_id], |r| r.get(0))?;
            let case: CaseFile = gridlink_shared::doc::read(&gridlink_shared::doc::load(&bytes).unwrap()).unwrap();
            Ok(case.reporter.to_string())
        })
        .unwrap();
    assert_eq!(reporter, account.id.to_string(), "reported by the demo's account");
    elink.harness.assert_store_loads("after a request on a demo store");
}
