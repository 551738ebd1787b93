//! Acks in a few bytes, on a real socket (127.0.0.1, port 0) with a real HTTP client: a
//! request that asks for compact acks gets one status byte per pushed change (accepted,
//! duplicate, rejected with its reason, deferred over the work budget); a request shaped like
//! an older app's (no flag, built here from its own struct) still gets full acks, in a
//! response an older app decodes.

mod common;

use std::collections::BTreeMap;

use common::{DEMO_NOW, DEMO_SEED, Device};
use gridlink_shared::change_bytes::chunk_hash;
use gridlink_shared::demo::{self, DemoData, DemoSize};
use gridlink_shared::protocol::{
    self, Ack, AckByte, AckStatus, Cursor, EnrollRequest, EnrollResponse, PushChange, SyncResponse,
};
use gridlink_shared::{DocId, HouseholdFile, HouseholdId, RejectCode, Role, Scope, Staff};
use gridlink_sync_server::{AppState, Limits, PushLimits, SqliteStore};
use serde::{Deserialize, Serialize};

/// A server on 127.0.0.1 over a fresh copy of the small demo.
struct Live {
    base: String,
    http: reqwest::Client,
    admin: SqliteStore,
    demo: DemoData,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Live {
    async fn start(limits: Limits) -> Live {
        let dir = tempfile::tempdir().unwrap();
        let admin = SqliteStore::create(dir.path()).unwrap();
        admin.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = AppState::new(SqliteStore::open(dir.path()).unwrap()).with_limits(limits);
        let server = tokio::spawn(gridlink_sync_server::serve(listener, state, async {
            stopped.await.ok();
        }));
        Live {
            base,
            http: reqwest::Client::new(),
            admin,
            demo: demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW),
            _dir: dir,
            stop: Some(stop),
            server: Some(server),
        }
    }

    async fn enroll(&self, staff: &Staff) -> Device {
        let code = self.admin.new_code(staff.id, gridlink_shared::time::now_millis(), 72).unwrap();
        let enrolled: EnrollResponse = self
            .http
            .post(format!("{}/v1/enroll", self.base))
            .json(&EnrollRequest { code, device_name: format!("{}的手机", staff.name) })
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Device::new(enrolled)
    }

    /// Posts a CBOR body to `/v1/sync` and returns the (inflated) CBOR answer.
    async fn post(&self, token: &str, body: Vec<u8>) -> Vec<u8> {
        let response = self
            .http
            .post(format!("{}/v1/sync", self.base))
            .bearer_auth(token)
            .header("content-type", protocol::CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap().to_vec()
    }

    /// Pulls until the server has nothing more.
    async fn catch_up(&self, phone: &mut Device) {
        loop {
            let request = phone.request(Vec::new());
            let response: SyncResponse =
                protocol::decode(&self.post(&phone.token, protocol::encode(&request)).await).unwrap();
            protocol::check_page(&request.cursors, &response).unwrap();
            phone.apply(&response);
            if !response.more {
                break;
            }
        }
    }

    /// Pushes `changes` asking for compact acks; checks the answer as the phone does and moves
    /// the device's cursors on.
    async fn push_compact(&self, phone: &mut Device, changes: Vec<PushChange>) -> (SyncResponse, Vec<Ack>) {
        let request = protocol::SyncRequest { compact_acks: true, ..phone.request(changes) };
        let response: SyncResponse =
            protocol::decode(&self.post(&phone.token, protocol::encode(&request)).await).unwrap();
        protocol::check_page(&request.cursors, &response).unwrap();
        let acks = protocol::resolve_acks(&request, &response).expect("the server's compact acks fit the request");
        // The harness device applies pages without an outbox: give it the page alone.
        phone.apply(&SyncResponse { compact_acks: None, ..response.clone() });
        (response, acks)
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.server.take().unwrap().await.unwrap().unwrap();
    }
}

/// A version-1 request as an app from before compact acks encodes it: its own struct, with
/// neither the flag nor the later optional fields.
#[derive(Serialize)]
struct OlderAppRequest {
    protocol: u32,
    cursors: BTreeMap<Scope, Cursor>,
    changes: Vec<PushChange>,
    page_bytes: Option<u64>,
    repair: Vec<DocId>,
    reference_version: Option<u64>,
    device_time: i64,
}

/// The part of a response an app from before compact acks reads.
#[derive(Deserialize)]
struct OlderAppResponse {
    acks: Vec<Ack>,
    cursors: BTreeMap<Scope, Cursor>,
}

fn own_households(phone: &Device, demo: &DemoData, grid: gridlink_shared::GridId) -> Vec<DocId> {
    let mut ids: Vec<DocId> = demo
        .households
        .iter()
        .filter(|h| h.placement.grid == grid)
        .map(|h| DocId::from(h.id))
        .filter(|id| phone.docs.contains_key(id))
        .collect();
    ids.sort();
    ids
}

fn grid_of(staff: &Staff) -> gridlink_shared::GridId {
    staff
        .scopes
        .iter()
        .find_map(|s| match s {
            Scope::Grid(g) => Some(*g),
            _ => None,
        })
        .expect("a grid worker holds a grid")
}

#[tokio::test]
async fn a_new_request_gets_a_status_byte_per_change_and_an_older_apps_request_full_acks() {
    let live = Live::start(Limits::default()).await;
    let workers: Vec<Staff> = live.demo.staff_with_role(Role::GridWorker).cloned().collect();
    let (me, colleague) = (&workers[0], &workers[1]);
    let mut phone = live.enroll(me).await;
    live.catch_up(&mut phone).await;
    let households = own_households(&phone, &live.demo, grid_of(me));
    let (first, second) = (households[0], households[1]);

    // An older app: no flag, full acks, a response it decodes.
    let visit = phone.edit::<HouseholdFile>(first, |h| h.notes = "独居老人李桂兰，血压偏高，已提醒按时服药".into());
    let older = OlderAppRequest {
        protocol: protocol::PROTOCOL_VERSION,
        cursors: phone.cursors.clone(),
        changes: vec![visit.clone()],
        page_bytes: None,
        repair: vec![],
        reference_version: phone.reference_version,
        device_time: gridlink_shared::time::now_millis(),
    };
    let body = live.post(&phone.token, protocol::encode(&older)).await;
    let keys: BTreeMap<String, serde::de::IgnoredAny> = protocol::decode(&body).unwrap();
    assert!(keys.contains_key("acks") && !keys.contains_key("compact_acks"), "{:?}", keys.keys());
    let answer: OlderAppResponse = protocol::decode(&body).unwrap();
    assert_eq!(answer.acks.len(), 1);
    assert_eq!(answer.acks[0].status, AckStatus::Accepted);
    assert_eq!(answer.acks[0].doc, first);
    assert_eq!(answer.acks[0].hash, chunk_hash(&visit.bytes).unwrap().to_string());
    phone.cursors = answer.cursors;

    // A new app: the same visit again (a retried request), a new one, and a household created
    // in a colleague's grid.
    let another = phone.edit::<HouseholdFile>(second, |h| h.notes = "王建国家中有残疾人，需跟进残联补贴".into());
    let placement = live.demo.households.iter().find(|h| h.placement.grid == grid_of(colleague)).unwrap().placement;
    let foreign = HouseholdFile::new(HouseholdId::new(), placement, "文星花园2栋", "1", "302", "赵淑芬", 2);
    let outside = phone.create(&foreign);
    let (response, acks) = live.push_compact(&mut phone, vec![visit.clone(), another.clone(), outside.clone()]).await;
    assert!(response.acks.is_empty(), "no full acks beside compact ones");
    let compact = response.compact_acks.as_ref().expect("compact acks");
    assert_eq!(compact.status, [AckByte::Duplicate as u8, AckByte::Accepted as u8, AckByte::Rejected as u8]);
    assert_eq!(compact.rejected.len(), 1);
    assert_eq!(compact.rejected[0].index, 2);
    assert_eq!(compact.rejected[0].code, RejectCode::OutOfScope);
    assert!(!compact.rejected[0].message.is_empty());

    // The device names each change from its own copy.
    let named: Vec<(DocId, String)> = acks.iter().map(|a| (a.doc, a.hash.clone())).collect();
    let expected: Vec<(DocId, String)> =
        [&visit, &another, &outside].iter().map(|c| (c.doc, chunk_hash(&c.bytes).unwrap().to_string())).collect();
    assert_eq!(named, expected);
    assert!(matches!(&acks[2].status, AckStatus::Rejected { code: RejectCode::OutOfScope, .. }));

    // The compact answer is the full one with ~115 bytes per ack gone.
    let full = SyncResponse { compact_acks: None, acks: acks.clone(), ..response.clone() };
    let saved = protocol::encode(&full).len() - protocol::encode(&response).len();
    assert!(saved > 2 * 100, "compact acks save about 115 bytes per change: {saved}");
    live.stop().await;
}

#[tokio::test]
async fn changes_over_the_work_budget_are_deferred_and_go_in_when_sent_again() {
    let limits = Limits {
        push: PushLimits { max_changes: 3, max_request_ops: 1, ..PushLimits::default() },
        ..Limits::default()
    };
    let live = Live::start(limits).await;
    let worker = live.demo.staff_with_role(Role::GridWorker).next().unwrap().clone();
    let mut phone = live.enroll(&worker).await;
    live.catch_up(&mut phone).await;
    let id = own_households(&phone, &live.demo, grid_of(&worker))[0];
    let edits: Vec<PushChange> = ["第一次走访：家中无人", "第二次走访：见到户主陈志强", "第三次走访：已登记就业意向"]
        .into_iter()
        .map(|notes| phone.edit::<HouseholdFile>(id, |h| h.notes = notes.into()))
        .collect();

    let (response, acks) = live.push_compact(&mut phone, edits.clone()).await;
    let status = &response.compact_acks.as_ref().unwrap().status;
    assert_eq!(status.len(), 3, "one byte per pushed change, deferred ones too");
    assert_eq!(status[0], AckByte::Accepted as u8);
    let deferred = status.iter().filter(|b| **b == AckByte::Deferred as u8).count();
    assert!(deferred > 0, "{status:?}");
    assert!(status.iter().all(|b| *b == AckByte::Accepted as u8 || *b == AckByte::Deferred as u8));
    assert_eq!(acks.len(), 3 - deferred, "a deferred change gets no ack: it stays unsent");

    let mut sent = 3 - deferred;
    while sent < 3 {
        let (response, acks) = live.push_compact(&mut phone, edits[sent..].to_vec()).await;
        assert_eq!(response.compact_acks.unwrap().status.len(), 3 - sent);
        assert!(!acks.is_empty(), "every round makes progress");
        assert!(acks.iter().all(|a| a.status == AckStatus::Accepted));
        sent += acks.len();
    }
    live.stop().await;
}
