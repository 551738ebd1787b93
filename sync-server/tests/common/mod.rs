//! Test harness: a real SQLite data directory in a tempdir loaded with the small demo, the
//! router driven with `oneshot`, an admin handle opened separately (like the CLI process),
//! and a minimal in-memory client that applies pull pages with the phone's own decisions
//! (`gridlink_shared::sync_core`).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use automerge::{ActorId, AutoCommit};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use gridlink_shared::demo::{self, DemoData, DemoSize};
use gridlink_shared::protocol::{
    self, Cursor, DocSnapshot, EnrollRequest, EnrollResponse, ErrorEnvelope, PROTOCOL_VERSION, PullItem, PushChange,
    SyncRequest, SyncResponse,
};
use gridlink_shared::sync_core::{self, DeviceView, Effect};
use gridlink_shared::{DocId, GridDocument, Principal, Role, Scope, Staff, doc};
use gridlink_sync_server::console::ConsolePolicy;
use gridlink_sync_server::{AppState, Limits, SqliteStore, router};
use tower::ServiceExt;

pub mod console;
pub mod craft;

/// The instant the demo history ends at; fixed so tests are deterministic.
pub const DEMO_NOW: i64 = 1_795_000_000_000;
pub const DEMO_SEED: u64 = 7;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub app: Router,
    /// A second connection to the same file, as the admin CLI would have.
    pub admin: SqliteStore,
    pub demo: DemoData,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let admin = SqliteStore::create(dir.path()).unwrap();
        admin.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW).unwrap();
        let served = SqliteStore::open(dir.path()).unwrap();
        let app = router(AppState::new(served).with_limits(limits));
        Harness { dir, app, admin, demo: demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW) }
    }

    /// The harness with the web console under `policy` (tests shorten its delays).
    pub fn with_console_policy(policy: ConsolePolicy) -> Self {
        let mut harness = Self::new();
        harness.app = harness.restarted(policy);
        harness
    }

    /// A new server over the same data directory, as after a restart, its console under
    /// `policy`.
    pub fn restarted(&self, policy: ConsolePolicy) -> Router {
        let mut state = AppState::new(SqliteStore::open(self.dir.path()).unwrap());
        state.console = state.console.clone().with_policy(policy);
        router(state)
    }

    pub fn staff(&self, role: Role) -> Staff {
        self.demo.staff_with_role(role).next().unwrap().clone()
    }

    pub fn grid_workers(&self) -> Vec<Staff> {
        self.demo.staff_with_role(Role::GridWorker).cloned().collect()
    }

    pub async fn call(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec();
        (status, headers, body)
    }

    /// Issues a code for `staff` and enrols a device with it over HTTP.
    pub async fn enroll(&self, staff: &Staff) -> Device {
        let code = self.admin.new_code(staff.id, gridlink_shared::time::now_millis(), 72).unwrap();
        let body = serde_json::to_vec(&EnrollRequest { code, device_name: format!("{}的手机", staff.name) }).unwrap();
        let request = Request::post("/v1/enroll")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, _, body) = self.call(request).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let enrolled: EnrollResponse = serde_json::from_slice(&body).unwrap();
        Device::new(enrolled)
    }

    /// Posts raw bytes to `/v1/sync`.
    pub async fn post_sync(&self, token: &str, body: Vec<u8>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let request = Request::post("/v1/sync")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, protocol::CONTENT_TYPE)
            .body(Body::from(body))
            .unwrap();
        self.call(request).await
    }

    /// One sync round: sends the device's cursors and `changes`, checks the page with
    /// `check_page`, applies it, and returns the response.
    pub async fn sync(&self, device: &mut Device, changes: Vec<PushChange>) -> SyncResponse {
        let request = device.request(changes);
        let (status, _, body) = self.post_sync(&device.token, protocol::encode(&request)).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let response: SyncResponse = protocol::decode(&body).unwrap();
        protocol::check_page(&request.cursors, &response).expect("check_page must accept every server page");
        device.apply(&response);
        response
    }

    /// Syncs until the server has nothing more; returns every response.
    pub async fn sync_all(&self, device: &mut Device) -> Vec<SyncResponse> {
        let mut responses = Vec::new();
        loop {
            let response = self.sync(device, Vec::new()).await;
            let more = response.more;
            responses.push(response);
            if !more {
                return responses;
            }
            assert!(responses.len() < 10_000, "sync never finished");
        }
    }

    /// Sends a sync request expecting an error; returns status and envelope.
    pub async fn sync_error(&self, token: &str, body: Vec<u8>) -> (StatusCode, ErrorEnvelope) {
        let (status, _, body) = self.post_sync(token, body).await;
        (status, serde_json::from_slice(&body).unwrap_or_else(|_| panic!("not an envelope: {body:?}")))
    }

    /// Number of log entries of a scope on the server.
    pub fn log_len(&self, scope: Scope) -> u64 {
        self.admin
            .read(|conn| {
                Ok(conn
                    .query_row("SELECT COUNT(*) FROM scope_log WHERE scope = ?1", [scope.to_string()], |r| r.get(0))?)
            })
            .unwrap()
    }

    /// Every document the server stores loads the way a freshly enrolled phone loads it.
    pub fn assert_store_loads(&self, context: &str) {
        let docs: Vec<(String, Vec<u8>)> = self
            .admin
            .read(|conn| {
                let mut stmt = conn.prepare("SELECT id, bytes FROM docs")?;
                Ok(stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?)
            })
            .unwrap();
        for (id, bytes) in docs {
            gridlink_sync_server::store::check_document(&bytes)
                .unwrap_or_else(|e| panic!("{context}: stored document {id} does not load: {e}"));
        }
    }

    /// The server's copy of a document.
    pub fn server_doc(&self, id: DocId) -> Option<AutoCommit> {
        self.admin
            .read(|conn| {
                let bytes: Option<Vec<u8>> =
                    conn.query_row("SELECT bytes FROM docs WHERE id = ?1", [id.to_string()], |r| r.get(0)).ok();
                Ok(bytes.map(|b| doc::load(&b).unwrap()))
            })
            .unwrap()
    }
}

/// A minimal client: cursors and documents in memory. A page is applied by the phone's own
/// decisions ([`sync_core::plan_apply`]); this type only performs the effects in memory.
pub struct Device {
    pub enrolled: EnrollResponse,
    pub token: String,
    pub actor: ActorId,
    pub cursors: BTreeMap<Scope, Cursor>,
    pub docs: HashMap<DocId, AutoCommit>,
    pub reference_version: Option<u64>,
    pub page_bytes: Option<u64>,
    pub principal: Principal,
    /// Documents the phone would ask the server's copy of.
    pub repair_wanted: BTreeSet<DocId>,
    /// Hashes the server refused.
    pub refused: Vec<String>,
}

impl Device {
    pub fn new(enrolled: EnrollResponse) -> Self {
        let actor = ActorId::from(hex::decode(&enrolled.actor).unwrap());
        Device {
            token: enrolled.token.clone(),
            principal: enrolled.principal.clone(),
            enrolled,
            actor,
            cursors: BTreeMap::new(),
            docs: HashMap::new(),
            reference_version: None,
            page_bytes: None,
            repair_wanted: BTreeSet::new(),
            refused: Vec::new(),
        }
    }

    pub fn request(&self, changes: Vec<PushChange>) -> SyncRequest {
        SyncRequest {
            protocol: PROTOCOL_VERSION,
            cursors: self.cursors.clone(),
            changes,
            page_bytes: self.page_bytes,
            repair: Vec::new(),
            reference_version: self.reference_version,
            device_time: gridlink_shared::time::now_millis(),
            health: None,
            verify: Vec::new(),
            compact_acks: false,
        }
    }

    /// Applies a page answering a request sent with this device's current cursors.
    pub fn apply(&mut self, response: &SyncResponse) {
        let sent = self.request(Vec::new());
        let quarantined = BTreeSet::new();
        let view = DeviceView { quarantined: &quarantined, principal: &self.principal, purge_pending: false };
        let plan = sync_core::plan_apply(view, &sent, response).expect("the phone accepts every server page");
        for effect in plan.effects {
            match effect {
                Effect::Sent { .. } => {}
                Effect::KeepAside { hash, .. } => self.refused.push(hash),
                // No outbox here: reconciling is restoring the server's copy.
                Effect::Restore { doc: id, repair } | Effect::Reconcile { doc: id, repair } => {
                    let DocSnapshot { bytes, .. } = &response.repairs[repair];
                    self.docs.insert(id, doc::load(bytes).unwrap().with_actor(self.actor.clone()));
                    self.repair_wanted.remove(&id);
                }
                Effect::Forget { doc } => {
                    self.docs.remove(&doc);
                }
                // This device does not verify its digests.
                Effect::Verified { .. } | Effect::CompareDigest { .. } => {}
                Effect::WantRepair { doc } | Effect::AwaitRepair { doc } => {
                    self.repair_wanted.insert(doc);
                }
                Effect::Pull { doc: id, items } => {
                    for index in items {
                        match &response.items[index] {
                            PullItem::Snapshot { bytes, .. } => self.merge(id, bytes, true),
                            PullItem::Change { bytes, .. } => self.merge(id, bytes, false),
                            PullItem::Echo { .. } => {}
                        }
                    }
                }
                Effect::DropScope { scope } => {
                    self.cursors.remove(&scope);
                }
                Effect::SetCursor { scope, cursor } => {
                    self.cursors.insert(scope, cursor);
                }
                Effect::StartScope { scope } => {
                    self.cursors.entry(scope).or_insert(Cursor::Start);
                }
                Effect::StoreReference => {
                    self.reference_version = response.reference.as_ref().map(|r| r.version);
                }
                Effect::SetPrincipal(principal) => self.principal = principal,
                Effect::PurgeUnheld => {
                    // Drop documents no longer in any held scope.
                    let held: Vec<Scope> = self.cursors.keys().copied().collect();
                    self.docs.retain(|_, d| {
                        doc::read_any(d).map(|a| a.scopes().iter().any(|s| held.contains(s))).unwrap_or(false)
                    });
                }
            }
        }
    }

    fn merge(&mut self, id: DocId, bytes: &[u8], whole: bool) {
        let actor = self.actor.clone();
        let doc = self.docs.entry(id).or_insert_with(|| AutoCommit::new().with_actor(actor));
        if whole {
            let mut other = doc::load(bytes).unwrap();
            doc.merge(&mut other).unwrap();
        } else {
            doc.apply_changes([doc::parse_change(bytes).unwrap()]).unwrap();
        }
    }

    /// Edits a document held by this device and returns the change to push.
    pub fn edit<T: GridDocument>(&mut self, id: DocId, f: impl FnOnce(&mut T)) -> PushChange {
        let actor = self.actor.clone();
        let doc_ref = self.docs.get_mut(&id).expect("device holds the document");
        doc_ref.set_actor(actor);
        let mut value: T = doc::read(doc_ref).unwrap();
        f(&mut value);
        doc::update(doc_ref, &value, "test edit", gridlink_shared::time::now_millis()).unwrap().expect("a change");
        PushChange { doc: id, bytes: doc_ref.get_last_local_change().unwrap().raw_bytes().to_vec() }
    }

    /// Creates a new document on this device and returns the change to push.
    pub fn create<T: GridDocument>(&mut self, value: &T) -> PushChange {
        let mut created = doc::create(value, self.actor.clone(), gridlink_shared::time::now_millis()).unwrap();
        let bytes = created.get_last_local_change().unwrap().raw_bytes().to_vec();
        self.docs.insert(value.doc_id(), created);
        PushChange { doc: value.doc_id(), bytes }
    }
}

/// Each ack's reject code, `None` for an accepted or duplicate change: one line to compare a
/// whole batch's outcome.
pub fn reject_codes(response: &gridlink_shared::protocol::SyncResponse) -> Vec<Option<gridlink_shared::RejectCode>> {
    response
        .acks
        .iter()
        .map(|a| match &a.status {
            gridlink_shared::protocol::AckStatus::Rejected { code, .. } => Some(*code),
            _ => None,
        })
        .collect()
}

/// Builds the change `f` makes to `doc_bytes`, signed by `actor` (for pushes of documents the
/// device is not supposed to hold).
pub fn change_on(
    doc_bytes: &mut AutoCommit,
    actor: ActorId,
    f: impl FnOnce(&mut gridlink_shared::HouseholdFile),
) -> Vec<u8> {
    let mut fork = doc_bytes.fork().with_actor(actor);
    let mut value: gridlink_shared::HouseholdFile = doc::read(&fork).unwrap();
    f(&mut value);
    doc::update(&mut fork, &value, "test edit", gridlink_shared::time::now_millis()).unwrap().expect("a change");
    fork.get_last_local_change().unwrap().raw_bytes().to_vec()
}
