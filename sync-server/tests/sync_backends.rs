//! Sync stories over real HTTP on 127.0.0.1, against both backends: the real router served
//! by `gridlink_sync_server::serve` over SQLite and over PostgreSQL (`AppState::new`, as
//! `serve` runs it on either). Enrolment, first sync, a visit
//! crossing from one phone to another, a refused write, revocation, remote wipe, mutated
//! (hostile) sync requests that never get a 5xx nor store what a fresh phone cannot load; and, on
//! PostgreSQL, the console and the e-link mounted as on SQLite, and the enrolment throttle
//! shared by two server processes.

#[path = "common/backends.rs"]
mod backends;
mod common;

use backends::Backend;
use common::Device;
use gridlink_shared::demo::{self, DemoData, DemoSize};
use gridlink_shared::protocol::{
    self, AckStatus, EnrollRequest, EnrollResponse, ErrorCode, ErrorEnvelope, PushChange, SyncResponse,
};
use gridlink_shared::time::now_millis;
use gridlink_shared::{
    DeviceId, DocId, HouseholdFile, HouseholdId, RejectCode, Role, Scope, Staff, Visit, VisitId, VisitOutcome,
};
use gridlink_sync_server::store::PgStore;
use gridlink_sync_server::{AppState, Limits, SqliteStore, StoreError};

const SEED: u64 = 7;

/// What a story needs beyond [`Backend`]: the server state `serve` builds for the store, and
/// the wipe of the admin CLI.
trait Served: Backend {
    fn state(self) -> AppState;
    fn wipe(&self, device: DeviceId) -> Result<bool, StoreError>;
    /// The server's copy of a document.
    fn stored_doc(&self, id: DocId) -> Option<Vec<u8>>;
    /// Every stored document, id and bytes.
    fn stored_docs(&self) -> Vec<(String, Vec<u8>)>;
}

impl Served for SqliteStore {
    fn state(self) -> AppState {
        AppState::new(self)
    }
    fn wipe(&self, device: DeviceId) -> Result<bool, StoreError> {
        self.wipe_device(device, now_millis())
    }
    fn stored_doc(&self, id: DocId) -> Option<Vec<u8>> {
        self.read(|conn| {
            Ok(conn.query_row("SELECT bytes FROM docs WHERE id = ?1", [id.to_string()], |r| r.get(0)).ok())
        })
        .unwrap()
    }
    fn stored_docs(&self) -> Vec<(String, Vec<u8>)> {
        self.read(|conn| {
            let mut stmt = conn.prepare("SELECT id, bytes FROM docs")?;
            Ok(stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?)
        })
        .unwrap()
    }
}

impl Served for PgStore {
    fn state(self) -> AppState {
        AppState::new(self)
    }
    fn wipe(&self, device: DeviceId) -> Result<bool, StoreError> {
        self.wipe_device(device, now_millis())
    }
    fn stored_doc(&self, id: DocId) -> Option<Vec<u8>> {
        self.read(|client| Ok(client.query_opt("SELECT bytes FROM docs WHERE id = $1", &[&id.to_string()])?))
            .unwrap()
            .map(|row| row.get(0))
    }
    fn stored_docs(&self) -> Vec<(String, Vec<u8>)> {
        self.read(|client| Ok(client.query("SELECT id, bytes FROM docs", &[])?))
            .unwrap()
            .into_iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    }
}

/// A server on a free port of 127.0.0.1, its admin handle (a second store on the same data,
/// as the CLI process has) and an HTTP client. The server stops when this drops.
struct Live<B: Backend> {
    _place: B::Place,
    admin: B,
    demo: DemoData,
    runtime: tokio::runtime::Runtime,
    base: String,
    client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl<B: Served> Live<B> {
    fn start() -> Self {
        Self::start_with(Limits::default())
    }

    fn start_with(limits: Limits) -> Self {
        let now = now_millis();
        let (place, admin) = B::fresh();
        admin.load_demo(DemoSize::Small, SEED, now);
        let served = B::open(&place);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(gridlink_sync_server::serve(listener, served.state().with_limits(limits), async {
            let _ = stopped.await;
        }));
        Live {
            _place: place,
            admin,
            demo: demo::generate(DemoSize::Small, SEED, now),
            runtime,
            base,
            client: reqwest::Client::new(),
            _stop: stop,
        }
    }

    fn staff(&self, role: Role) -> Vec<Staff> {
        self.demo.staff_with_role(role).cloned().collect()
    }

    fn enroll(&self, staff: &Staff) -> Device {
        let code = self.admin.new_code(staff.id, now_millis(), 72).unwrap();
        let (status, body) = self.try_enroll(&self.base, &code);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        Device::new(serde_json::from_slice::<EnrollResponse>(&body).unwrap())
    }

    /// Posts an enrolment with `code` to the server at `base`: status and body.
    fn try_enroll(&self, base: &str, code: &str) -> (u16, Vec<u8>) {
        let request = EnrollRequest { code: code.to_string(), device_name: "测试手机".into() };
        self.runtime.block_on(async {
            let response = self.client.post(format!("{base}/v1/enroll")).json(&request).send().await.unwrap();
            (response.status().as_u16(), response.bytes().await.unwrap().to_vec())
        })
    }

    /// A second server process over the same data, under `limits`; returns its base URL.
    fn second_server(&self, limits: Limits) -> String {
        let served = B::open(&self._place);
        let listener = self.runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        self.runtime.spawn(gridlink_sync_server::serve(
            listener,
            served.state().with_limits(limits),
            std::future::pending(),
        ));
        base
    }

    fn post_sync(&self, token: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        self.runtime.block_on(async {
            let response = self
                .client
                .post(format!("{}/v1/sync", self.base))
                .bearer_auth(token)
                .header("content-type", protocol::CONTENT_TYPE)
                .body(body)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.bytes().await.unwrap().to_vec())
        })
    }

    fn sync(&self, device: &mut Device, changes: Vec<PushChange>) -> SyncResponse {
        let request = device.request(changes);
        let (status, body) = self.post_sync(&device.token, protocol::encode(&request));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let response: SyncResponse = protocol::decode(&body).unwrap();
        protocol::check_page(&request.cursors, &response).expect("check_page accepts every server page");
        device.apply(&response);
        response
    }

    fn sync_all(&self, device: &mut Device) {
        for _ in 0..10_000 {
            if !self.sync(device, Vec::new()).more {
                return;
            }
        }
        panic!("sync never finished");
    }

    fn refused(&self, device: &Device) -> (u16, ErrorCode) {
        let (status, body) = self.post_sync(&device.token, protocol::encode(&device.request(Vec::new())));
        let envelope: ErrorEnvelope = serde_json::from_slice(&body).unwrap();
        (status, envelope.error.code)
    }

    fn get(&self, path: &str) -> (u16, String) {
        self.runtime.block_on(async {
            let response = self.client.get(format!("{}{path}", self.base)).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    }
}

fn grid_of(staff: &Staff) -> gridlink_shared::GridId {
    match staff.scopes[0] {
        Scope::Grid(g) => g,
        other => panic!("not a grid worker scope: {other}"),
    }
}

fn a_visit_recorded_on_one_phone_reaches_another_over_http<B: Served>() {
    let live = Live::<B>::start();
    assert_eq!(live.get("/healthz"), (200, "ok".into()));
    let worker = live.staff(Role::GridWorker).remove(0);
    let grid = grid_of(&worker);
    let mut phone = live.enroll(&worker);
    let mut tablet = live.enroll(&worker);
    live.sync_all(&mut phone);
    live.sync_all(&mut tablet);
    let in_grid = live.demo.households.iter().filter(|h| h.placement.grid == grid).count();
    assert!(in_grid > 0 && phone.docs.len() >= in_grid, "the first sync delivers the grid");

    let household = live.demo.households.iter().find(|h| h.placement.grid == grid).unwrap().clone();
    let visit = Visit {
        id: VisitId::new(),
        visitor: worker.id,
        visitor_name: worker.name.clone(),
        at: now_millis(),
        recorded_at: now_millis(),
        outcome: VisitOutcome::Met,
        notes: "老人血压偏高，已提醒按时服药".into(),
        needs_found: Vec::new(),
        follow_up: None,
        residents_present: Vec::new(),
    };
    let push = phone.edit::<HouseholdFile>(household.id.into(), |h| {
        h.visits.insert(visit.id, visit.clone());
    });
    let response = live.sync(&mut phone, vec![push]);
    assert_eq!(response.acks[0].status, AckStatus::Accepted);
    let pulled = live.sync(&mut tablet, Vec::new());
    assert_eq!(pulled.items.len(), 1);
    let on_tablet: HouseholdFile = gridlink_shared::doc::read(&tablet.docs[&household.id.into()]).unwrap();
    assert_eq!(on_tablet.visits[&visit.id].notes, visit.notes);
}

fn a_write_to_another_grid_is_refused_over_http<B: Served>() {
    let live = Live::<B>::start();
    let workers = live.staff(Role::GridWorker);
    let theirs = grid_of(&workers[1]);
    let mut phone = live.enroll(&workers[0]);
    live.sync_all(&mut phone);
    let placement = live.demo.households.iter().find(|h| h.placement.grid == theirs).unwrap().placement;
    let file = HouseholdFile::new(HouseholdId::new(), placement, "文星花园1栋", "1", "101", "王建国", 1);
    let push = phone.create(&file);
    let response = live.sync(&mut phone, vec![push]);
    assert!(matches!(response.acks[0].status, AckStatus::Rejected { code: RejectCode::OutOfScope, .. }));
}

fn a_revoked_device_and_a_wiped_one_are_refused_over_http<B: Served>() {
    let live = Live::<B>::start();
    let workers = live.staff(Role::GridWorker);
    let mut lost = live.enroll(&workers[0]);
    let mut stolen = live.enroll(&workers[1]);
    let mut other = live.enroll(&workers[2]);
    live.sync(&mut lost, Vec::new());
    live.sync(&mut stolen, Vec::new());
    live.admin.revoke_user_devices(workers[0].id, now_millis()).unwrap();
    assert!(live.admin.wipe(stolen.enrolled.device).unwrap());
    assert!(!live.admin.wipe(stolen.enrolled.device).unwrap(), "marked once");

    assert_eq!(live.refused(&lost), (401, ErrorCode::DeviceRevoked));
    assert_eq!(live.refused(&stolen), (410, ErrorCode::DeviceWiped));
    assert_eq!(live.refused(&stolen), (410, ErrorCode::DeviceWiped), "and told again");
    live.sync(&mut other, Vec::new());
}

/// The mutation fuzz of `fuzz.rs` (the same hostile variants, `common::craft::mutate`) against
/// each backend over real HTTP, shorter: no 5xx, and every stored document still loads the way
/// a fresh phone loads it, which a second phone then does.
fn mutated_sync_requests_never_get_a_5xx_nor_poison_the_store<B: Served>() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = std::env::var("GRIDLINK_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20261130);
    let cases: usize = std::env::var("GRIDLINK_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(80);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let live = Live::<B>::start();
    let worker = live.staff(Role::GridWorker).remove(0);
    let mut phone = live.enroll(&worker);
    live.sync_all(&mut phone);
    let grid = grid_of(&worker);
    let ids: Vec<DocId> =
        live.demo.households.iter().filter(|h| h.placement.grid == grid).map(|h| h.id.into()).collect();
    // Changes the store refused one by one: the damage reached the push checks, not only the
    // request decoder.
    let mut refused = 0;
    let server_copy = |id: DocId| gridlink_shared::doc::load(&live.admin.stored_doc(id).unwrap()).unwrap();
    for case in 0..cases {
        let context = format!("{} seed {seed} case {case}", B::NAME);
        let id = ids[rng.random_range(0..ids.len())];
        let other = ids[rng.random_range(0..ids.len())];
        let note = format!("第{case}次走访：老人精神不错");
        let honest = phone.edit::<HouseholdFile>(id, |f| f.notes = note);
        if rng.random_bool(0.5) {
            let response = live.sync(&mut phone, vec![honest.clone()]);
            assert_eq!(response.acks[0].status, AckStatus::Accepted, "{context}: the honest edit");
        }
        let (target, bytes, kind) = common::craft::mutate(&mut rng, &honest.bytes, other, id);
        let mut body = protocol::encode(&phone.request(vec![PushChange { doc: target, bytes }]));
        if rng.random_range(0..10) == 0 {
            let i = rng.random_range(0..body.len());
            body[i] = rng.random();
        }
        let (status, reply) = live.post_sync(&phone.token, body);
        assert!(status < 500, "{context} ({kind}): {status} {}", String::from_utf8_lossy(&reply));
        if status == 200 {
            let response: SyncResponse = protocol::decode(&reply).unwrap();
            refused += response.acks.iter().filter(|a| matches!(a.status, AckStatus::Rejected { .. })).count();
        }
        phone.docs.insert(id, server_copy(id));
        phone.docs.insert(other, server_copy(other));
    }
    assert!(refused >= cases / 4, "{}: only {refused} of {cases} hostile changes reached the checks", B::NAME);
    for (id, bytes) in live.admin.stored_docs() {
        gridlink_sync_server::store::check_document(&bytes)
            .unwrap_or_else(|e| panic!("{}: stored document {id} does not load: {e}", B::NAME));
    }
    let mut fresh = live.enroll(&worker);
    live.sync_all(&mut fresh);
    for id in &ids {
        gridlink_shared::doc::read::<HouseholdFile>(&fresh.docs[id]).unwrap();
    }
}

/// Text with a NUL or other control characters, from an enrolment, a health report or a
/// household file, gets a clear refusal (never a 5xx) on both backends: PostgreSQL cannot even
/// store a NUL in text, SQLite could, and both must answer alike.
fn control_characters_in_phone_text_are_refused_clearly_on_both_backends<B: Served>() {
    let live = Live::<B>::start();
    let worker = live.staff(Role::GridWorker).remove(0);
    let code = live.admin.new_code(worker.id, now_millis(), 72).unwrap();
    for name in ["赵磊的手机\0", "\u{1b}[2J手机"] {
        let request = EnrollRequest { code: code.clone(), device_name: name.into() };
        let (status, body) = live.runtime.block_on(async {
            let response = live.client.post(format!("{}/v1/enroll", live.base)).json(&request).send().await.unwrap();
            (response.status().as_u16(), response.bytes().await.unwrap().to_vec())
        });
        assert_eq!(status, 400, "{name:?}: {}", String::from_utf8_lossy(&body));
        assert!(String::from_utf8_lossy(&body).contains("control characters"));
    }
    let mut phone = live.enroll(&worker);
    live.sync_all(&mut phone);

    // A health report with a NUL in the app version is stored without it; the sync works.
    let mut request = phone.request(Vec::new());
    request.health = Some(gridlink_shared::protocol::DeviceHealth {
        app_version: "0.1.0\0\u{7}".into(),
        unsent: 0,
        rejected: 0,
        quarantined: 0,
    });
    let (status, body) = live.post_sync(&phone.token, protocol::encode(&request));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // A household whose head's name holds a NUL is refused as invalid, and nothing is stored.
    let grid = grid_of(&worker);
    let household = live.demo.households.iter().find(|h| h.placement.grid == grid).unwrap().clone();
    let push = phone.edit::<HouseholdFile>(household.id.into(), |h| h.head = "王秀\0英".into());
    let response = live.sync(&mut phone, vec![push]);
    match &response.acks[0].status {
        AckStatus::Rejected { code: RejectCode::InvalidDocument, message } => {
            assert!(message.contains("control character"), "{message}")
        }
        other => panic!("expected an invalid-data refusal, got {other:?}"),
    }
    let stored: HouseholdFile = gridlink_shared::doc::read(
        &gridlink_shared::doc::load(&live.admin.stored_doc(household.id.into()).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(stored.head, household.head, "the stored file is unchanged");
}

stories!(
    mutated_sync_requests_never_get_a_5xx_nor_poison_the_store,
    control_characters_in_phone_text_are_refused_clearly_on_both_backends,
    a_visit_recorded_on_one_phone_reaches_another_over_http,
    a_write_to_another_grid_is_refused_over_http,
    a_revoked_device_and_a_wiped_one_are_refused_over_http,
);

/// `serve --database` mounts the console and the e-link as `serve --data` does (their stories
/// on PostgreSQL: `console_store_backends.rs`, `elink_backends.rs`, `tests/console_district.rs`).
#[test]
fn on_postgresql_the_console_and_the_elink_are_served() {
    let live = Live::<PgStore>::start();
    let (status, page) = live.get("/console/login?lang=en");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Gridlink console") && page.contains(r#"name="csrf""#), "{page}");
    // Signed out: redirected (and followed) to the login form.
    let (status, page) = live.get("/console/admin/users");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(r#"action="/console/login""#), "{page}");
    let (status, page) = live.get("/e/0123456789abcdef0123456789abcdef");
    assert_eq!(status, 404, "the e-link serves: an unknown token is its neutral 404");
    assert!(page.contains("链接无效"), "{page}");
    assert_eq!(live.get("/healthz"), (200, "ok".into()));
    let (status, _) = live.get("/v1/nothing");
    assert_eq!(status, 404);
}

/// On PostgreSQL the enrolment throttle counts the wrong codes of every server process: after
/// the budget is spent on one, another answers 429 too, even for a right code.
#[test]
fn on_postgresql_wrong_codes_spent_on_one_server_throttle_another() {
    let limits = Limits { enroll_failures_per_minute: 3, ..Limits::default() };
    let live = Live::<PgStore>::start_with(limits);
    let other = live.second_server(limits);
    for guess in ["AAAA-BBBB-CCCC", "DDDD-EEEE-FFFF", "GGGG-HHHH-JJJJ"] {
        let (status, body) = live.try_enroll(&live.base, guess);
        assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    }
    let worker = live.staff(Role::GridWorker).remove(0);
    let code = live.admin.new_code(worker.id, now_millis(), 72).unwrap();
    let (status, body) = live.try_enroll(&other, &code);
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body));
    let envelope: ErrorEnvelope = serde_json::from_slice(&body).unwrap();
    assert_eq!(envelope.error.code, ErrorCode::TooManyRequests);
}
