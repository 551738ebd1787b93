//! Damaged documents are set aside (quarantined), never a crash: a client on a real
//! encrypted store syncs over real HTTP with a scripted server on 127.0.0.1 that delivers a
//! poisoning change (a real change re-sent with only its `seq` changed, so its op ids are
//! duplicates: automerge 0.12 panics on a document holding it), then a still-poisoned repair,
//! then a clean one. The `gridlink` binary is driven against the same store and server (which
//! is why these stories live in the CLI crate: cargo builds its binary for them).
//!
//! automerge panics at different places with and without debug assertions (applying the
//! change, or loading the document's save); these tests pass both ways:
//! `cargo test -p gridlink-cli --test quarantine --config
//! 'profile.dev.package.automerge.debug-assertions=false'` runs them as release builds do.
//!
//! The scripted server stands in for a server whose store was poisoned before it refused such
//! changes: the real `gridlink-server` is being taught to refuse them, so it cannot be made to
//! send one.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, Mutex};

use automerge::{AutoCommit, Change};
use gridlink_client::{Client, Error, HouseholdFilter, NewVisit, SyncReport};
use gridlink_shared::demo::{self, DemoData, DemoSize};
use gridlink_shared::protocol::{
    Ack, AckStatus, Cursor, DocSnapshot, EnrollResponse, PROTOCOL_VERSION, PullItem, ReferenceData, SyncRequest,
    SyncResponse,
};
use gridlink_shared::time::now_millis;
use gridlink_shared::{
    DeviceId, DocId, DocType, HouseholdFile, HouseholdId, Principal, Role, Scope, VisitOutcome, doc,
};

// ----- a scripted sync server -----------------------------------------------------------------

type Responder = Box<dyn FnMut(&SyncRequest) -> SyncResponse + Send>;

/// Answers `POST /v1/enroll` with `principal` and `POST /v1/sync` with whatever the current
/// responder says, recording every sync request. One request per connection.
struct ScriptedServer {
    url: String,
    requests: Arc<Mutex<Vec<SyncRequest>>>,
    responder: Arc<Mutex<Responder>>,
}

impl ScriptedServer {
    fn start(principal: Principal) -> ScriptedServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let responder: Arc<Mutex<Responder>> = Arc::new(Mutex::new(Box::new(unchanged)));
        let (seen, answer) = (requests.clone(), responder.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                serve(stream, &principal, &seen, &answer);
            }
        });
        ScriptedServer { url, requests, responder }
    }

    fn respond_with(&self, f: impl FnMut(&SyncRequest) -> SyncResponse + Send + 'static) {
        *self.responder.lock().unwrap() = Box::new(f);
    }

    /// Sync requests received so far.
    fn requests(&self) -> Vec<SyncRequest> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, principal: &Principal, seen: &Mutex<Vec<SyncRequest>>, answer: &Mutex<Responder>) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let (mut length, mut gzipped) = (0usize, false);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("content-encoding:") && lower.contains("gzip") {
            gzipped = true;
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let (content_type, reply) = if request_line.starts_with("POST /v1/enroll") {
        let enrolled = EnrollResponse {
            device: DeviceId::from_u128(7),
            token: "test-token".into(),
            actor: automerge::ActorId::random().to_hex_string(),
            principal: principal.clone(),
            recovery_secret: None,
        };
        ("application/json", serde_json::to_vec(&enrolled).unwrap())
    } else {
        if gzipped {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut plain).unwrap();
            body = plain;
        }
        let request: SyncRequest = gridlink_shared::protocol::decode(&body).unwrap();
        let response = (answer.lock().unwrap())(&request);
        seen.lock().unwrap().push(request);
        ("application/cbor", gridlink_shared::protocol::encode(&response))
    };
    let mut stream = reader.into_inner();
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        reply.len()
    );
    let _ = stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(&reply));
}

/// Nothing new: every cursor stays where it is.
fn unchanged(request: &SyncRequest) -> SyncResponse {
    SyncResponse {
        protocol: PROTOCOL_VERSION,
        server_time: now_millis(),
        acks: vec![],
        items: vec![],
        cursors: request.cursors.clone(),
        more: false,
        scopes_added: vec![],
        scopes_removed: vec![],
        repairs: vec![],
        reference: None,
        integrity: Default::default(),
        compact_acks: None,
    }
}

/// Accepts every pushed change.
fn accept_all(request: &SyncRequest) -> Vec<Ack> {
    request
        .changes
        .iter()
        .map(|c| Ack {
            doc: c.doc,
            hash: Change::from_bytes(c.bytes.clone()).unwrap().hash().to_string(),
            status: AckStatus::Accepted,
        })
        .collect()
}

// ----- documents and the poison -------------------------------------------------------------

struct World {
    data: DemoData,
    principal: Principal,
    scope: Scope,
    households: Vec<HouseholdFile>,
}

fn world() -> World {
    let data = demo::generate(DemoSize::Small, 7, now_millis());
    let principal = data.staff_with_role(Role::GridWorker).next().unwrap().principal();
    let scope = principal.scopes[0];
    let Scope::Grid(grid) = scope else { panic!("a grid worker's first scope is a grid") };
    let households: Vec<HouseholdFile> =
        data.households.iter().filter(|h| h.placement.grid == grid).take(3).cloned().collect();
    assert_eq!(households.len(), 3);
    World { data, principal, scope, households }
}

/// The server's copy of a household: created, then its head renamed (a real later change).
fn server_copy(household: &HouseholdFile) -> AutoCommit {
    let mut copy = doc::create(household, automerge::ActorId::random(), now_millis()).unwrap();
    let mut edited = household.clone();
    edited.head = format!("{}（服务器）", household.head);
    doc::update(&mut copy, &edited, "rename head", now_millis()).unwrap();
    copy
}

/// The copy's last change re-sent with only its `seq` changed: same ops, same start op,
/// so duplicate op ids.
fn poison_of(copy: &mut AutoCommit) -> Change {
    let mut encoded = copy.get_last_local_change().unwrap().decode();
    encoded.seq += 1;
    Change::from(encoded)
}

/// Raw changes concatenated: a document's bytes as `AutoCommit::load` reads them.
fn concatenated(copy: &mut AutoCommit, extra: Option<&Change>) -> Vec<u8> {
    let mut bytes: Vec<u8> = copy.get_changes(&[]).iter().flat_map(|c| c.raw_bytes().to_vec()).collect();
    if let Some(extra) = extra {
        bytes.extend_from_slice(extra.raw_bytes());
    }
    bytes
}

fn panics<T>(f: impl FnOnce() -> T) -> bool {
    catch_unwind(AssertUnwindSafe(f)).is_err()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn enrolled(runtime: &tokio::runtime::Runtime, dir: &Path, server: &ScriptedServer) -> Client {
    let client = Client::open(dir).unwrap();
    client.set_retry_policy(gridlink_client::sync::RetryPolicy {
        attempts: 1,
        base_delay: std::time::Duration::from_millis(1),
        max_delay: std::time::Duration::from_millis(1),
    });
    runtime.block_on(client.enroll(&server.url, "CODE-0001", "test phone")).unwrap();
    client
}

fn visit(household: HouseholdId, notes: &str) -> NewVisit {
    NewVisit {
        household,
        outcome: VisitOutcome::Met,
        notes: notes.into(),
        needs_found: vec![],
        follow_up: None,
        residents_present: vec![],
        at: now_millis(),
    }
}

fn snapshot_item(scope: Scope, id: HouseholdId, bytes: Vec<u8>) -> PullItem {
    PullItem::Snapshot { scope, doc: id.into(), doc_type: DocType::Household, bytes }
}

fn cli(data: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gridlink")).arg("--data").arg(data).args(args).output().unwrap()
}

// ----- the stories --------------------------------------------------------------------------

#[test]
fn the_premise_plain_automerge_panics_on_a_document_holding_a_change_resent_with_another_seq() {
    let household = &world().households[0];
    let mut copy = server_copy(household);
    let poison = poison_of(&mut copy);
    let saved = copy.save();
    // Debug builds of automerge panic applying it (an op-order check); release builds take
    // it and save it, then panic loading that save (duplicate op ids in the change collector).
    assert!(panics(|| {
        let mut target = AutoCommit::load(&saved).unwrap();
        let _ = target.apply_changes([poison.clone()]);
        AutoCommit::load(&target.save()).map(|_| ())
    }));
    // A snapshot holding it: the same, loading it or loading its save.
    let snapshot = concatenated(&mut copy, Some(&poison));
    assert!(panics(|| AutoCommit::load(&AutoCommit::load(&snapshot).unwrap().save()).map(|_| ())));
    // Without the poison the same bytes are fine.
    assert!(AutoCommit::load(&concatenated(&mut copy, None)).is_ok());
}

#[test]
fn a_poisoning_change_sets_one_household_aside_and_a_clean_repair_brings_it_back() {
    let world = world();
    let scope = world.scope;
    let (a, b) = (&world.households[0], &world.households[1]);
    let server = ScriptedServer::start(world.principal.clone());
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let client = enrolled(&rt, dir.path(), &server);

    // First sync: both households arrive as snapshots, with the roster.
    let (mut copy_a, mut copy_b) = (server_copy(a), server_copy(b));
    let first = vec![snapshot_item(scope, a.id, copy_a.save()), snapshot_item(scope, b.id, copy_b.save())];
    let roster = world.data.roster.clone();
    server.respond_with(move |request| SyncResponse {
        items: first.clone(),
        cursors: BTreeMap::from([(scope, Cursor::Seq { seq: 10 })]),
        reference: Some(ReferenceData { version: 1, roster: roster.clone() }),
        ..unchanged(request)
    });
    let report = rt.block_on(client.sync()).unwrap();
    assert_eq!((report.pulled_snapshots, report.quarantined), (2, 0));
    let head_a = client.household(a.id, now_millis()).unwrap().head;
    assert!(head_a.ends_with("（服务器）"));

    // A visit recorded offline on A; the server below keeps not acknowledging it, so it
    // stays unsent throughout.
    client.record_visit(visit(a.id, "离线走访，尚未上传"), now_millis()).unwrap();
    assert_eq!(client.status().unwrap().unsent, 1);

    // Second sync: one page with the poison for A and an ordinary change for B.
    let poison = poison_of(&mut copy_a);
    let heads_b = copy_b.get_heads();
    let mut renamed_b = doc::read::<HouseholdFile>(&copy_b).unwrap();
    renamed_b.head = "新户主".into();
    doc::update(&mut copy_b, &renamed_b, "new head", now_millis()).unwrap();
    let change_b = copy_b.get_changes(&heads_b).pop().unwrap();
    let page = vec![
        PullItem::Change {
            scope,
            seq: 11,
            doc: a.id.into(),
            doc_type: DocType::Household,
            bytes: poison.raw_bytes().to_vec(),
        },
        PullItem::Change {
            scope,
            seq: 12,
            doc: b.id.into(),
            doc_type: DocType::Household,
            bytes: change_b.raw_bytes().to_vec(),
        },
    ];
    server.respond_with(move |request| SyncResponse {
        items: page.clone(),
        cursors: BTreeMap::from([(scope, Cursor::Seq { seq: 12 })]),
        ..unchanged(request)
    });
    let report: SyncReport = rt.block_on(client.sync()).expect("no panic escapes, the sync succeeds");
    assert_eq!(report.pulled_changes, 1, "B's change applied");
    assert_eq!(report.quarantined, 1, "A set aside");
    assert_eq!(client.household(b.id, now_millis()).unwrap().head, "新户主", "the rest of the page applied");

    let kept = client.quarantined().unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].doc, DocId::from(a.id));
    assert_eq!(kept[0].bytes, poison.raw_bytes(), "the offending bytes are kept");
    assert!(kept[0].resolved_at.is_none());
    assert!(kept[0].reason.contains("automerge"), "{}", kept[0].reason);

    let status = client.status().unwrap();
    assert_eq!((status.quarantined, status.unsent), (1, 1), "the unsent visit is kept");
    assert!(status.last_error.is_none(), "the sync itself succeeded");
    let detail = client.household(a.id, now_millis()).unwrap();
    assert_eq!(detail.head, head_a, "A reads with its previous content");
    assert!(detail.visits.iter().any(|v| v.notes == "离线走访，尚未上传"));
    let refused = client.record_visit(visit(a.id, "再次走访"), now_millis()).unwrap_err();
    assert!(matches!(refused, Error::Quarantined { .. }), "{refused:?}");
    assert!(refused.plain().zh.contains("数据异常，已隔离"), "{}", refused.plain().zh);
    assert!(client.export().is_ok());

    // Third sync: the cursor moved past the poison and A's whole copy is asked for, once per
    // sync however many rounds it takes; the copy that comes is still poisoned.
    let poisoned_copy = concatenated(&mut copy_a, Some(&poison));
    let asked_before = server.requests().len();
    let mut rounds = 0;
    let repair = poisoned_copy.clone();
    server.respond_with(move |request| {
        rounds += 1;
        SyncResponse {
            repairs: request
                .repair
                .iter()
                .map(|doc| DocSnapshot { doc: *doc, doc_type: DocType::Household, bytes: repair.clone() })
                .collect(),
            more: rounds < 3,
            ..unchanged(request)
        }
    });
    let report = rt.block_on(client.sync()).unwrap();
    assert_eq!((report.rounds, report.quarantined, report.repaired), (3, 1, 0));
    let requests = server.requests()[asked_before..].to_vec();
    assert_eq!(requests[0].cursors[&scope], Cursor::Seq { seq: 12 }, "the cursor moved on");
    assert_eq!(requests[0].repair, vec![DocId::from(a.id)], "the whole copy is asked for");
    assert!(requests[1..].iter().all(|r| r.repair.is_empty()), "asked once per sync, not every round");
    let kept = client.quarantined().unwrap();
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[1].bytes, poisoned_copy);
    assert!(kept[1].reason.starts_with("repair copy"), "{}", kept[1].reason);
    assert_eq!(client.household(a.id, now_millis()).unwrap().head, head_a);
    assert_eq!(client.status().unwrap().unsent, 1);

    // The CLI on the same store: sync says so (text and JSON), status too, a write is refused
    // in plain words, a read works. The still-poisoned copy comes again: asked once per sync.
    let data = dir.path();
    let out = cli(data, &["sync"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 record(s) damaged") && text.contains("有 1 条记录数据异常，已隔离"), "{text}");
    let out = cli(data, &["--json", "sync"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["quarantined"], 1);
    let out = cli(data, &["--json", "status"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((json["quarantined"].as_u64(), json["unsent"].as_u64()), (Some(1), Some(1)));
    let out = cli(data, &["visit", "add", "--household", &a.id.to_string(), "--outcome", "met"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("damaged") && stderr.contains("数据异常"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "no panic in a refused write: {stderr}");
    let out = cli(data, &["household", "show", "--id", &a.id.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(client.quarantined().unwrap().len(), 2, "the same poisoned copy is recorded once");

    // Fourth sync: a clean copy (the server's, without the poison) resolves the quarantine;
    // the unsent visit is re-applied on top and still waits in the outbox.
    let clean = copy_a.save();
    server.respond_with(move |request| SyncResponse {
        repairs: request
            .repair
            .iter()
            .map(|doc| DocSnapshot { doc: *doc, doc_type: DocType::Household, bytes: clean.clone() })
            .collect(),
        ..unchanged(request)
    });
    let report = rt.block_on(client.sync()).unwrap();
    assert_eq!((report.repaired, report.released, report.quarantined), (1, 1, 0));
    let status = client.status().unwrap();
    assert_eq!((status.quarantined, status.unsent), (0, 1));
    let kept = client.quarantined().unwrap();
    assert!(kept.iter().all(|k| k.resolved_at.is_some() && k.resolution.as_deref() == Some("repaired")));
    let detail = client.household(a.id, now_millis()).unwrap();
    assert_eq!(detail.head, head_a);
    assert!(detail.visits.iter().any(|v| v.notes == "离线走访，尚未上传"), "the unsent visit survived");
    client.record_visit(visit(a.id, "修复后走访"), now_millis()).unwrap();
    assert_eq!(client.household(a.id, now_millis()).unwrap().visits.len(), detail.visits.len() + 1);

    // And both visits go out.
    server.respond_with(|request| SyncResponse { acks: accept_all(request), ..unchanged(request) });
    let report = rt.block_on(client.sync()).unwrap();
    assert_eq!((report.accepted, report.quarantined), (2, 0));
    assert!(server.requests().last().unwrap().repair.is_empty(), "nothing more to repair");
    assert_eq!(client.status().unwrap().unsent, 0);
    assert!(client.households(&HouseholdFilter::default(), now_millis()).unwrap().iter().any(|h| h.id == a.id));
}

#[test]
fn a_poisoned_snapshot_of_a_new_household_is_set_aside_and_opening_it_says_so() {
    let world = world();
    let scope = world.scope;
    let (a, c) = (&world.households[0], &world.households[2]);
    let server = ScriptedServer::start(world.principal.clone());
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let client = enrolled(&rt, dir.path(), &server);

    let mut copy_c = server_copy(c);
    let poison = poison_of(&mut copy_c);
    let poisoned = concatenated(&mut copy_c, Some(&poison));
    let page = vec![snapshot_item(scope, a.id, server_copy(a).save()), snapshot_item(scope, c.id, poisoned.clone())];
    server.respond_with(move |request| SyncResponse {
        items: page.clone(),
        cursors: BTreeMap::from([(scope, Cursor::Seq { seq: 3 })]),
        ..unchanged(request)
    });
    let report = rt.block_on(client.sync()).expect("no panic escapes");
    assert_eq!((report.pulled_snapshots, report.quarantined), (1, 1));
    assert!(client.household(a.id, now_millis()).is_ok(), "the other snapshot applied");
    let kept = client.quarantined().unwrap();
    assert_eq!((kept.len(), kept[0].doc, &kept[0].bytes), (1, DocId::from(c.id), &poisoned));
    // Never held in a good state: opening it says it is damaged, not missing.
    let opened = client.household(c.id, now_millis()).unwrap_err();
    assert!(matches!(opened, Error::Quarantined { .. }), "{opened:?}");
    assert!(opened.plain().en.contains("damaged"));
    let refused = client.record_visit(visit(c.id, "走访"), now_millis()).unwrap_err();
    assert!(matches!(refused, Error::Quarantined { .. }), "{refused:?}");

    // A clean repair brings it in.
    let clean = copy_c.save();
    server.respond_with(move |request| SyncResponse {
        repairs: request
            .repair
            .iter()
            .map(|doc| DocSnapshot { doc: *doc, doc_type: DocType::Household, bytes: clean.clone() })
            .collect(),
        ..unchanged(request)
    });
    let report = rt.block_on(client.sync()).unwrap();
    assert_eq!((report.released, report.quarantined), (1, 0));
    assert!(client.household(c.id, now_millis()).unwrap().head.ends_with("（服务器）"));
    client.record_visit(visit(c.id, "走访"), now_millis()).unwrap();
}
