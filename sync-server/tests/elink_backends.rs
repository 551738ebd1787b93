//! The residents' e-link over real HTTP on 127.0.0.1, on both backends (SQLite as `serve
//! --data` runs it, PostgreSQL as `serve --database` does): a request filed through a
//! building's link reaches the grid worker's phone at its next sync and its status follows the
//! case; a double tap files one case; the hourly cap of a building; rotated and revoked links
//! are refused, and the links are listed.
//! On PostgreSQL, two server processes on one database: one nonce posted to both at once files
//! one case, and the hourly cap holds across both. Behind a proxy: `X-Forwarded-For` is read
//! only from a trusted proxy, and forged, garbage and overlong values never widen a limit. And
//! `migrate` carries a building's link and its requests over, so the notice-board URL keeps
//! working on PostgreSQL.

#[path = "common/backends.rs"]
mod backends;
mod binary;
mod common;

use std::net::IpAddr;

use backends::Backend;
use common::{DEMO_NOW, DEMO_SEED, Device};
use gridlink_shared::codes::{ActionKind, ServiceCategory};
use gridlink_shared::demo::{self, DemoData, DemoSize};
use gridlink_shared::protocol::{self, EnrollRequest, EnrollResponse, PushChange, SyncResponse};
use gridlink_shared::time::now_millis;
use gridlink_shared::{Action, ActionId, BuildingId, CaseFile, CaseKind, Staff};
use gridlink_sync_server::elink::{ElinkLimits, ElinkStore};
use gridlink_sync_server::store::PgStore;
use gridlink_sync_server::store::elink::{BuildingLink, FileOutcome, HelpRequest};
use gridlink_sync_server::store::postgres::cluster::TestDatabase;
use gridlink_sync_server::store::postgres::migrate_sqlite;
use gridlink_sync_server::{AppState, SqliteStore};
use reqwest::header::HeaderValue;

/// A store that serves the e-link, as `serve` builds its state.
trait Served: Backend + ElinkStore {
    fn state(self) -> AppState;
    fn link(&self, building: BuildingId, rotate: bool) -> BuildingLink;
    fn revoke(&self, building: BuildingId) -> bool;
    fn links(&self) -> Vec<BuildingLink>;
}

impl Served for SqliteStore {
    fn state(self) -> AppState {
        AppState::new(self)
    }
    fn link(&self, building: BuildingId, rotate: bool) -> BuildingLink {
        self.elink_link(building, rotate, now_millis()).unwrap()
    }
    fn revoke(&self, building: BuildingId) -> bool {
        self.elink_revoke(building).unwrap()
    }
    fn links(&self) -> Vec<BuildingLink> {
        self.elink_links().unwrap()
    }
}

impl Served for PgStore {
    fn state(self) -> AppState {
        AppState::new(self)
    }
    fn link(&self, building: BuildingId, rotate: bool) -> BuildingLink {
        self.elink_link(building, rotate, now_millis()).unwrap()
    }
    fn revoke(&self, building: BuildingId) -> bool {
        self.elink_revoke(building).unwrap()
    }
    fn links(&self) -> Vec<BuildingLink> {
        self.elink_links().unwrap()
    }
}

const KITCHEN: &str = "厨房水管接头漏水，地上全是水，请师傅上门看看。";

/// Servers on free ports of 127.0.0.1 over one store loaded with the small demo, its admin
/// handle (a second store on the same data, as the CLI has) and an HTTP client. The runtime
/// (and with it every server) stops before the store's home is removed.
struct Live<B: Served> {
    runtime: tokio::runtime::Runtime,
    admin: B,
    demo: DemoData,
    client: reqwest::Client,
    building: BuildingId,
    token: String,
    /// `elink_requests` rows of the demo, before the test filed any.
    demo_requests: i64,
    place: B::Place,
}

impl<B: Served> Live<B> {
    fn new() -> Self {
        // The demo's history ends at DEMO_NOW, over an hour ago: its requests take nothing
        // from a building's hourly cap.
        Self::with(|admin| admin.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW), None)
    }

    /// A store holding only the roster of `csv` (no e-link account), serving `building`.
    fn with_roster(csv: &str, building: BuildingId) -> Self {
        let import = |admin: &B| {
            let summary = admin.import_csv_from(csv.as_bytes(), now_millis()).unwrap();
            assert_eq!((summary.buildings, summary.staff), (1, 1));
        };
        Self::with(import, Some(building))
    }

    fn with(load: impl FnOnce(&B), building: Option<BuildingId>) -> Self {
        let (place, admin) = B::fresh();
        load(&admin);
        let demo = demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW);
        let building = building.unwrap_or(demo.roster.buildings[0].id);
        let token = admin.link(building, false).token;
        let demo_requests = admin.count_rows("elink_requests");
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        Live { runtime, admin, demo, client: reqwest::Client::new(), building, token, demo_requests, place }
    }

    /// Another server process over the same data; its base URL.
    fn serve(&self, limits: ElinkLimits, trusted: &[IpAddr]) -> String {
        let mut state = B::open(&self.place).state();
        state.elink = state.elink.clone().with_limits(limits).with_trusted_proxies(trusted.iter().copied());
        let listener = self.runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        self.runtime.spawn(gridlink_sync_server::serve(listener, state, std::future::pending()));
        base
    }

    /// Requests filed by the test.
    fn filed(&self) -> i64 {
        self.admin.count_rows("elink_requests") - self.demo_requests
    }

    fn worker(&self) -> Staff {
        let grid = self.demo.roster.placement_of_building(self.building).unwrap().grid;
        let responsible = self.admin.grid_workers(grid)[0].0;
        self.demo.roster.staff.iter().find(|s| s.id == responsible).unwrap().clone()
    }

    fn get(&self, url: &str) -> (u16, String) {
        self.runtime.block_on(async {
            let response = self.client.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    }

    /// A fresh nonce from the form page of `token` on `base`.
    fn nonce(&self, base: &str, token: &str) -> String {
        let (status, page) = self.get(&format!("{base}/e/{token}"));
        assert_eq!(status, 200, "{page}");
        nonce_on(&page)
    }

    fn file(&self, base: &str, phone: &str, nonce: &str) -> (u16, String) {
        self.runtime.block_on(file(&self.client, format!("{base}/e/{}", self.token), phone, nonce, None))
    }

    fn lookup(&self, base: &str, reference: &str, phone: &str) -> (u16, String) {
        self.runtime.block_on(async {
            let response = self
                .client
                .post(format!("{base}/e/{}/status", self.token))
                .form(&[("reference", reference), ("phone", phone)])
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    }

    fn enroll(&self, base: &str, staff: &Staff) -> Device {
        let code = self.admin.new_code(staff.id, now_millis(), 72).unwrap();
        let request = EnrollRequest { code, device_name: format!("{}的手机", staff.name) };
        self.runtime.block_on(async {
            let response = self.client.post(format!("{base}/v1/enroll")).json(&request).send().await.unwrap();
            assert_eq!(response.status(), 200);
            Device::new(response.json::<EnrollResponse>().await.unwrap())
        })
    }

    fn sync(&self, base: &str, device: &mut Device, changes: Vec<PushChange>) -> SyncResponse {
        let request = device.request(changes);
        let body = self.runtime.block_on(async {
            let response = self
                .client
                .post(format!("{base}/v1/sync"))
                .bearer_auth(&device.token)
                .header("content-type", protocol::CONTENT_TYPE)
                .body(protocol::encode(&request))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.bytes().await.unwrap()
        });
        let response: SyncResponse = protocol::decode(&body).unwrap();
        protocol::check_page(&request.cursors, &response).expect("check_page accepts every server page");
        device.apply(&response);
        response
    }

    fn sync_all(&self, base: &str, device: &mut Device) {
        for _ in 0..10_000 {
            if !self.sync(base, device, Vec::new()).more {
                return;
            }
        }
        panic!("sync never finished");
    }
}

/// Posts the kitchen-leak request with `phone` and `nonce` to a form URL, from the client
/// address the proxy claims in `forwarded` (if any).
async fn file(
    client: &reqwest::Client,
    url: String,
    phone: &str,
    nonce: &str,
    forwarded: Option<HeaderValue>,
) -> (u16, String) {
    let fields = [
        ("category", "utilities"),
        ("description", KITCHEN),
        ("room", "2单元301"),
        ("name", "王秀兰"),
        ("phone", phone),
        ("nonce", nonce),
    ];
    let mut request = client.post(url).form(&fields);
    if let Some(value) = forwarded {
        request = request.header("x-forwarded-for", value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn nonce_on(page: &str) -> String {
    let start = page.find(r#"name="nonce" value=""#).expect("the form has a nonce") + 20;
    page[start..start + 32].to_string()
}

/// The reference number on a receipt page (`ABCD-EFGH`).
fn reference_on(page: &str) -> String {
    let start = page.find(r#"id="reference">"#).unwrap_or_else(|| panic!("no reference on {page}")) + 15;
    page[start..start + 9].to_string()
}

fn limits() -> ElinkLimits {
    ElinkLimits::default()
}

fn a_request_reaches_the_grid_workers_phone_and_its_status_follows_the_case<B: Served>() {
    let live = Live::<B>::new();
    let base = live.serve(limits(), &[]);
    let worker = live.worker();
    let mut phone = live.enroll(&base, &worker);
    live.sync_all(&base, &mut phone);
    let before = phone.docs.len();
    let audited = live.admin.count_rows("audit");

    let (status, page) = live.file(&base, "138 0731 6688", &live.nonce(&base, &live.token));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("求助已提交") && page.contains("水电维修"), "{page}");
    let reference = reference_on(&page);
    assert_eq!(live.filed(), 1);
    assert_eq!(live.admin.count_rows("audit"), audited + 1, "the case's change is audited as a phone's");

    live.sync_all(&base, &mut phone);
    assert_eq!(phone.docs.len(), before + 1, "the worker's phone pulls exactly the new case");
    let (case_id, case) = phone
        .docs
        .iter()
        .filter_map(|(id, doc)| gridlink_shared::doc::read::<CaseFile>(doc).ok().map(|c| (*id, c)))
        .find(|(_, case)| case.description.contains("13807316688"))
        .expect("the filed case is on the phone");
    assert_eq!(case.kind, CaseKind::Help(ServiceCategory::Utilities));
    assert_eq!(Some(case.placement), live.demo.roster.placement_of_building(live.building));
    assert_eq!(case.responsible().0, worker.id, "首问负责: the grid's worker is responsible");
    assert!(case.description.contains("王秀兰") && case.description.contains("厨房水管接头漏水"));

    // The right pair (typed loosely) shows the status and nothing personal; wrong pairs get
    // one neutral answer.
    let (status, page) = live.lookup(&base, &reference.to_lowercase().replace('-', " "), "138-0731-6688");
    assert_eq!(status, 200);
    assert!(page.contains("已提交，等待网格员受理") && page.contains("水电维修"), "{page}");
    assert!(!page.contains("王秀兰") && !page.contains("厨房"), "{page}");
    for (reference, phone) in
        [(reference.as_str(), "13974120099"), ("ABCD-EFGH", "13807316688"), ("not a reference", "x")]
    {
        let (status, page) = live.lookup(&base, reference, phone);
        assert_eq!(status, 200);
        assert!(page.contains("没有找到与这个受理编号和电话对应的求助"), "{reference}/{phone}: {page}");
        assert!(!page.contains("水电维修"));
    }

    // The worker accepts on the phone; the resident sees it.
    let accept = phone.edit::<CaseFile>(case_id, |case| {
        case.push_action(Action {
            id: ActionId::new(),
            kind: ActionKind::Accept,
            by: worker.id,
            by_name: worker.name.clone(),
            at: now_millis(),
            lamport: 0,
            note: String::new(),
            satisfaction: None,
            to: None,
            to_name: None,
            claimant: None,
            outlet: None,
        })
    });
    live.sync(&base, &mut phone, vec![accept]);
    let (_, page) = live.lookup(&base, &reference, "13807316688");
    assert!(page.contains(r#"<strong id="status">已受理</strong>"#), "{page}");

    // A demo request answers its status too (loaded beside its case on either backend).
    let demo_request = live.demo.elink_requests.iter().find(|r| r.building == live.building).unwrap();
    let (_, page) = live.lookup(&base, &demo_request.reference, &demo_request.phone);
    assert!(page.contains(r#"<strong id="status">"#), "{page}");
}

fn a_double_tap_files_one_case_and_a_spent_nonce_files_none<B: Served>() {
    let live = Live::<B>::new();
    let base = live.serve(limits(), &[]);
    let docs = live.admin.count_rows("docs");
    let nonce = live.nonce(&base, &live.token);
    let (first_status, first) = live.file(&base, "13807316688", &nonce);
    let (second_status, second) = live.file(&base, "13807316688", &nonce);
    assert_eq!((first_status, second_status), (200, 200), "{second}");
    assert_eq!(reference_on(&first), reference_on(&second));
    let (status, page) = live.file(&base, "13974120099", &nonce);
    assert_eq!(status, 422);
    assert!(page.contains("页面已过期") && !page.contains(&reference_on(&first)), "{page}");
    assert_eq!(live.filed(), 1);
    assert_eq!(live.admin.count_rows("docs"), docs + 1, "one case document");
}

fn a_building_takes_no_more_than_its_hourly_cap<B: Served>() {
    let live = Live::<B>::new();
    let cap = 4;
    let base = live.serve(ElinkLimits { filed_per_building_hour: cap, ..limits() }, &[]);
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let (status, page) = live.file(&base, "13807316688", &live.nonce(&base, &live.token));
        if status == 429 {
            assert!(page.contains("提交太频繁"), "{page}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429, 429]);
    assert_eq!(live.filed(), i64::from(cap));
    // Another building of the street is not held up.
    let other = live.admin.link(live.demo.roster.buildings[1].id, false).token;
    let nonce = live.nonce(&base, &other);
    let (status, page) =
        live.runtime.block_on(file(&live.client, format!("{base}/e/{other}"), "13807316688", &nonce, None));
    assert_eq!(status, 200, "{page}");
}

fn rotated_and_revoked_links_are_refused_and_the_links_are_listed<B: Served>() {
    let mut live = Live::<B>::new();
    let base = live.serve(limits(), &[]);
    let old = live.token.clone();
    let stale_nonce = live.nonce(&base, &old);
    let rotated = live.admin.link(live.building, true).token;
    assert_ne!(rotated, old);
    assert_eq!(live.admin.link(live.building, false).token, rotated, "printed again, the same link");
    for path in [format!("/e/{old}"), format!("/e/{old}/status")] {
        let (status, page) = live.get(&format!("{base}{path}"));
        assert_eq!(status, 404, "{path}");
        assert!(page.contains("链接无效"), "{page}");
    }
    let (status, _) = live.file(&base, "13807316688", &stale_nonce);
    assert_eq!(status, 404, "the old notice board files nothing");
    assert_eq!(live.filed(), 0);
    live.token = rotated.clone();
    let (status, page) = live.file(&base, "13807316688", &live.nonce(&base, &live.token));
    assert_eq!(status, 200, "{page}");
    assert_eq!(live.filed(), 1);
    let reference = reference_on(&page);

    // Listed: this building's link and the second building's, by name.
    let second = live.demo.roster.buildings[1].id;
    live.admin.link(second, false);
    let listed: Vec<(BuildingId, String)> = live.admin.links().into_iter().map(|l| (l.building, l.token)).collect();
    assert!(listed.contains(&(live.building, rotated.clone())) && listed.len() == 2, "{listed:?}");
    let names: Vec<String> = live.admin.links().into_iter().map(|l| l.building_name).collect();
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "{names:?}");

    // Revoked: refused, nothing replaces it until the next `building link`, which makes a
    // new token; the request filed before is found through it.
    assert!(live.admin.revoke(live.building));
    assert!(!live.admin.revoke(live.building), "revoking twice finds nothing");
    let (status, _) = live.get(&format!("{base}/e/{rotated}"));
    assert_eq!(status, 404);
    assert_eq!(live.admin.links().len(), 1);
    let fresh = live.admin.link(live.building, false).token;
    assert!(fresh != rotated && fresh != old);
    live.token = fresh;
    let (_, page) = live.lookup(&base, &reference, "13807316688");
    assert!(page.contains(r#"<strong id="status">"#), "{page}");
    assert_eq!(live.filed(), 1);
}

/// A street of one building and one grid worker, imported as a roster: no e-link account.
const ROSTER_CSV: &str = "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room
street,00000000-0000-4000-8000-000000000e01,,澜湖街道,,,,,,,,
community,00000000-0000-4000-8000-000000000e11,00000000-0000-4000-8000-000000000e01,澜湖社区,,,,,,,,
grid,00000000-0000-4000-8000-000000000e21,00000000-0000-4000-8000-000000000e11,澜湖社区第1网格,,,,,,,,
building,00000000-0000-4000-8000-000000000e31,00000000-0000-4000-8000-000000000e21,澜湖印象3栋,,,,2,6,2,,
staff,00000000-0000-4000-8000-000000000e41,,孙丽华,13907140002,grid-worker,grid:00000000-0000-4000-8000-000000000e21,,,,,
";

/// The first request of a grid creates its e-link account and the account's device, once;
/// the worker's phone pulls both cases.
fn a_grid_without_an_elink_account_gets_one_at_its_first_request<B: Served>() {
    let building: BuildingId = "00000000-0000-4000-8000-000000000e31".parse().unwrap();
    let live = Live::<B>::with_roster(ROSTER_CSV, building);
    let base = live.serve(limits(), &[]);
    let accounts = || {
        let name = gridlink_shared::elink::ELINK_ACCOUNT_NAME;
        live.admin.count_rows(&format!("users WHERE name = '{name}'"))
    };
    let devices = || live.admin.count_rows("devices WHERE token_hash LIKE 'elink:%'");
    assert_eq!((accounts(), devices()), (0, 0));
    let worker = Staff {
        id: "00000000-0000-4000-8000-000000000e41".parse().unwrap(),
        name: "孙丽华".into(),
        role: gridlink_shared::Role::GridWorker,
        phone: "13907140002".into(),
        scopes: vec![gridlink_shared::Scope::Grid("00000000-0000-4000-8000-000000000e21".parse().unwrap())],
        pledge: String::new(),
    };
    let mut phone = live.enroll(&base, &worker);
    live.sync_all(&base, &mut phone);
    for caller in ["13807316688", "13974120099"] {
        let (status, page) = live.file(&base, caller, &live.nonce(&base, &live.token));
        assert_eq!(status, 200, "{page}");
        assert_eq!((accounts(), devices()), (1, 1), "one account and one device for the grid");
    }
    live.sync_all(&base, &mut phone);
    let cases: Vec<CaseFile> =
        phone.docs.values().filter_map(|doc| gridlink_shared::doc::read::<CaseFile>(doc).ok()).collect();
    assert_eq!(cases.len(), 2, "both requests reach the worker's phone");
    assert!(
        cases.iter().all(|c| c.responsible().0 == worker.id && c.kind == CaseKind::Help(ServiceCategory::Utilities))
    );
}

stories!(
    a_grid_without_an_elink_account_gets_one_at_its_first_request,
    a_request_reaches_the_grid_workers_phone_and_its_status_follows_the_case,
    a_double_tap_files_one_case_and_a_spent_nonce_files_none,
    a_building_takes_no_more_than_its_hourly_cap,
    rotated_and_revoked_links_are_refused_and_the_links_are_listed,
);

/// Two server processes on one PostgreSQL database (two `PgStore`s, two listeners): each
/// form's nonce, posted to both at once, files one case, and both answer its reference.
#[test]
fn on_postgresql_one_nonce_posted_to_two_servers_at_once_files_one_case() {
    let live = Live::<PgStore>::new();
    let first = live.serve(limits(), &[]);
    let second = live.serve(limits(), &[]);
    let docs = live.admin.count_rows("docs");
    let forms = 8;
    let nonces: Vec<String> = (0..forms).map(|_| live.nonce(&first, &live.token)).collect();
    let answers = live.runtime.block_on(async {
        let mut posts = tokio::task::JoinSet::new();
        for nonce in &nonces {
            for base in [&first, &second] {
                let (client, url, nonce) = (live.client.clone(), format!("{base}/e/{}", live.token), nonce.clone());
                posts.spawn(async move {
                    let answer = file(&client, url, "13807316688", &nonce, None).await;
                    (nonce, answer)
                });
            }
        }
        posts.join_all().await
    });
    for nonce in &nonces {
        let references: Vec<String> = answers
            .iter()
            .filter(|(n, _)| n == nonce)
            .map(|(_, (status, page))| {
                assert_eq!(*status, 200, "{page}");
                reference_on(page)
            })
            .collect();
        assert_eq!(references.len(), 2);
        assert_eq!(references[0], references[1], "both servers answer the one case's reference");
    }
    assert_eq!(live.filed(), forms as i64, "one request per form");
    assert_eq!(live.admin.count_rows("docs"), docs + forms as i64, "one case per form");
}

/// The hourly cap of a building is counted in the database: thirty posts spread over two
/// server processes at once file exactly the cap.
#[test]
fn on_postgresql_the_hourly_cap_holds_across_two_servers() {
    let live = Live::<PgStore>::new();
    let cap = limits().filed_per_building_hour;
    let servers = [live.serve(limits(), &[]), live.serve(limits(), &[])];
    let nonces: Vec<String> = (0..30).map(|_| live.nonce(&servers[0], &live.token)).collect();
    let statuses = live.runtime.block_on(async {
        let mut posts = tokio::task::JoinSet::new();
        for (i, nonce) in nonces.into_iter().enumerate() {
            let (client, url) = (live.client.clone(), format!("{}/e/{}", servers[i % 2], live.token));
            posts.spawn(async move { file(&client, url, "13807316688", &nonce, None).await.0 });
        }
        posts.join_all().await
    });
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), cap as usize, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 30 - cap as usize, "{statuses:?}");
    assert_eq!(live.filed(), i64::from(cap));
}

/// Behind a trusted proxy each forwarded address has its own count; what a client writes into
/// the header (a forged left part, garbage, bytes that are not text, a padded header) never
/// moves it into a fresh bucket.
#[test]
fn behind_a_trusted_proxy_each_forwarded_client_is_limited_and_forgeries_gain_nothing() {
    let live = Live::<SqliteStore>::new();
    let base = live.serve(ElinkLimits { lookups_per_address: 3, ..limits() }, &[IpAddr::from([127, 0, 0, 1])]);
    let lookup = |forwarded: &[u8]| {
        live.runtime.block_on(async {
            let response = live
                .client
                .post(format!("{base}/e/{}/status", live.token))
                .header("x-forwarded-for", HeaderValue::from_bytes(forwarded).unwrap())
                .form(&[("reference", "ABCD-EFGH"), ("phone", "13807316688")])
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        })
    };
    let statuses: Vec<u16> = (0..4).map(|_| lookup(b"36.112.8.9")).collect();
    assert_eq!(statuses, [200, 200, 200, 429], "one resident behind the proxy");
    assert_eq!(lookup(b"36.112.8.10"), 200, "a neighbour has a count of their own");
    // The left part is the client's own writing: still 36.112.8.9.
    assert_eq!(lookup(b"36.112.8.77, 36.112.8.9"), 429);
    assert_eq!(lookup(b"unknown, 36.112.8.9"), 429);
    let padded = format!("{}36.112.8.9", "10.0.0.1, ".repeat(700));
    assert_eq!(lookup(padded.as_bytes()), 429, "an overlong header is read from its right end");
    // Garbage where the client should be counts as the proxy itself: one shared bucket, not
    // a fresh one per value.
    let garbage: [&[u8]; 4] = [b"garbage", b"36.112.8.9:443", b"", &[0xe7, 0xbd, 0x91]];
    let statuses: Vec<u16> = garbage.iter().map(|value| lookup(value)).collect();
    assert_eq!(statuses, [200, 200, 200, 429], "every malformed header is the proxy's one bucket");
    assert_eq!(lookup(b"36.112.8.11"), 200, "well-formed clients are not held up by it");
}

/// Without `--trusted-proxy` the header is ignored: a client that writes a new address into it
/// each time is still one peer.
#[test]
fn without_a_trusted_proxy_x_forwarded_for_is_ignored() {
    let live = Live::<SqliteStore>::new();
    let base = live.serve(ElinkLimits { posts_per_address: 3, ..limits() }, &[]);
    let statuses: Vec<u16> = (0..5)
        .map(|i| {
            let nonce = live.nonce(&base, &live.token);
            let forged = HeaderValue::from_str(&format!("36.112.9.{i}")).unwrap();
            live.runtime
                .block_on(file(&live.client, format!("{base}/e/{}", live.token), "13807316688", &nonce, Some(forged)))
                .0
        })
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    // A proxy that is trusted but is not this peer changes nothing either.
    let other = live.serve(ElinkLimits { posts_per_address: 1, ..limits() }, &[IpAddr::from([10, 0, 0, 9])]);
    let statuses: Vec<u16> = (0..2)
        .map(|i| {
            let nonce = live.nonce(&other, &live.token);
            let forged = HeaderValue::from_str(&format!("36.112.10.{i}")).unwrap();
            live.runtime
                .block_on(file(&live.client, format!("{other}/e/{}", live.token), "13807316688", &nonce, Some(forged)))
                .0
        })
        .collect();
    assert_eq!(statuses, [200, 429]);
}

/// The real binary on PostgreSQL: `building link --database` prints the URL, `serve
/// --database --trusted-proxy` serves it; a `--trusted-proxy` that is not an address is
/// refused (exit 1) naming it, before anything listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_the_elink_on_postgresql_behind_a_trusted_proxy() {
    let db = TestDatabase::new().unwrap_or_else(|e| panic!("a throwaway PostgreSQL cluster: {e}"));
    let store = ["--database".to_string(), db.url.clone()];
    let demo = demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let building = demo.roster.buildings[0].id.to_string();
    {
        let store = store.clone();
        tokio::task::spawn_blocking(move || binary::ok_at(&store, &["init", "--demo", "small"])).await.unwrap();
    }
    let unknown = gridlink_shared::BuildingId::new().to_string();
    let stderr = binary::fails_at(&store, &["building", "link", "--building", &unknown]);
    assert!(stderr.contains(&format!("building {unknown}")) && stderr.contains("not found"), "{stderr}");
    for bad in ["10.0.0.0/8", "nginx.local", "127.0.0.1:80"] {
        let out = binary::run_at(&store, &["serve", "--listen", "127.0.0.1:0", "--trusted-proxy", bad]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("--trusted-proxy '{bad}' is not an IP address")), "{stderr}");
    }
    let served = binary::serve_at(&store, &["--trusted-proxy", "127.0.0.1", "--trusted-proxy", "::1"]).await;
    let link = {
        let (store, base, building) = (store.clone(), served.base.clone(), building.clone());
        tokio::task::spawn_blocking(move || {
            binary::last_line(&binary::ok_at(
                &store,
                &["building", "link", "--building", &building, "--base-url", &base],
            ))
        })
        .await
        .unwrap()
    };
    assert!(link.starts_with(&format!("{}/e/", served.base)), "{link}");
    let client = reqwest::Client::new();
    let page = client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains(&demo.roster.buildings[0].name), "{page}");
    let (status, receipt) =
        file(&client, link.clone(), "13807316688", &nonce_on(&page), Some(HeaderValue::from_static("36.112.8.9")))
            .await;
    assert_eq!(status, 200, "{receipt}");
    assert!(receipt.contains("求助已提交"), "{receipt}");

    // Listed, then revoked from the command line: the URL stops working at once.
    let listed = {
        let (store, base) = (store.clone(), served.base.clone());
        tokio::task::spawn_blocking(move || {
            binary::ok_at(&store, &["building", "links", "--base-url", &base, "--json"])
        })
        .await
        .unwrap()
    };
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["url"], link.as_str());
    assert_eq!(listed[0]["building"], building.as_str());
    let revoked = {
        let (store, building) = (store.clone(), building.clone());
        tokio::task::spawn_blocking(move || {
            binary::ok_at(&store, &["building", "link", "--building", &building, "--revoke"])
        })
        .await
        .unwrap()
    };
    assert!(revoked.contains("revoked the e-link"), "{revoked}");
    assert_eq!(client.get(&link).send().await.unwrap().status(), 404);
    // The blocking PostgreSQL client runs off the async threads.
    let url = db.url.clone();
    let filed: i64 = tokio::task::spawn_blocking(move || {
        let pg = PgStore::open(&url).unwrap();
        pg.read(|c| Ok(c.query_one("SELECT COUNT(*) FROM elink_requests WHERE nonce NOT LIKE 'demo:%'", &[])?.get(0)))
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(filed, 1);
}

/// `migrate` copies a building's link and its requests: the notice board's URL opens the same
/// building on PostgreSQL, a request filed on SQLite answers its status there, and the form
/// files new requests.
#[test]
fn a_migrated_link_keeps_working_on_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let (building, token, reference) = {
        let sqlite = SqliteStore::create(dir.path()).unwrap();
        sqlite.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW).unwrap();
        let building = demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW).roster.buildings[0].id;
        let token = sqlite.elink_link(building, false, DEMO_NOW).unwrap().token;
        let request = HelpRequest {
            category: ServiceCategory::ElderlyCare,
            description: "母亲八十六岁独居，想申请助餐上门。".into(),
            room: "1单元602".into(),
            name: "陈志强".into(),
            phone: "13574185230".into(),
            nonce: "5f0c2a9e4b7d4e1a8c3b6d9e0f1a2b3c".into(),
        };
        let FileOutcome::Filed { reference } = sqlite.elink_file(building, &request, 20, now_millis()).unwrap() else {
            panic!("filed on SQLite")
        };
        (building, token, reference)
    };
    let db = TestDatabase::new().unwrap_or_else(|e| panic!("a throwaway PostgreSQL cluster: {e}"));
    let migration = migrate_sqlite(dir.path(), &db.url, &mut |_| {}).unwrap();
    assert!(migration.committed, "{}", migration.verification.render());
    let rows = |table: &str| migration.tables.iter().find(|t| t.table == table).map(|t| t.rows);
    assert_eq!(rows("elink_links"), Some(1));
    let counted = migration.verification.tables.iter().find(|t| t.table == "elink_requests").unwrap();
    assert!(counted.sqlite > 1 && counted.sqlite == counted.postgres, "{counted:?}");

    let pg = PgStore::open(&db.url).unwrap();
    assert_eq!(pg.elink_link(building, false, now_millis()).unwrap().token, token, "the printed URL is unchanged");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    runtime.spawn(gridlink_sync_server::serve(listener, AppState::new(pg), std::future::pending()));
    let client = reqwest::Client::new();
    runtime.block_on(async {
        let page = client.get(format!("{base}/e/{token}")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let page = page.text().await.unwrap();
        let status = client
            .post(format!("{base}/e/{token}/status"))
            .form(&[("reference", reference.as_str()), ("phone", "135 7418 5230")])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(status.contains("已提交，等待网格员受理") && status.contains("养老服务"), "{status}");
        let (filed, receipt) = file(&client, format!("{base}/e/{token}"), "13807316688", &nonce_on(&page), None).await;
        assert_eq!(filed, 200, "{receipt}");
        let normalized = gridlink_shared::elink::normalize_reference;
        assert_ne!(normalized(&reference_on(&receipt)), normalized(&reference), "a new request, a new reference");
    });
    drop(runtime);
}
