//! A hostile or buggy enrolled phone, one finding at a time: each request below crashed the
//! server, hung it, or stored a document that no phone could load before the change checks.
//! Every test also shows the server answering normally afterwards.

mod common;

use std::time::{Duration, Instant};

use automerge::ActorId;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::craft;
use common::{Device, Harness, change_on};
use gridlink_shared::protocol::{self, AckStatus, ErrorCode, PushChange, SyncResponse};
use gridlink_shared::{
    DocId, GridDocument, HouseholdFile, HouseholdId, RejectCode, Role, Scope, Visit, VisitId, VisitOutcome, doc,
};
use gridlink_sync_server::{Limits, PushLimits};

fn rejection(response: &SyncResponse) -> (RejectCode, String) {
    match &response.acks[0].status {
        AckStatus::Rejected { code, message } => (*code, message.clone()),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// Pushes raw change bytes for `doc` and returns the decoded response (asserting a 200).
async fn push_raw(h: &Harness, device: &mut Device, doc: DocId, bytes: Vec<u8>) -> SyncResponse {
    h.sync(device, vec![PushChange { doc, bytes }]).await
}

/// A household of the worker's grid that the device holds.
fn a_household(device: &Device) -> DocId {
    *device
        .docs
        .iter()
        .find(|(_, d)| doc::read::<HouseholdFile>(*d).is_ok())
        .map(|(id, _)| id)
        .expect("the grid has households")
}

/// The server is healthy: a plain sync of another device answers, and an honest edit is
/// accepted.
async fn assert_healthy(h: &Harness) {
    let mut probe = h.enroll(&h.staff(Role::GridWorker)).await;
    h.sync_all(&mut probe).await;
    let id = a_household(&probe);
    let change = probe.edit::<HouseholdFile>(id, |f| f.notes = "楼道灯已修好".into());
    let response = h.sync(&mut probe, vec![change]).await;
    assert_eq!(response.acks[0].status, AckStatus::Accepted, "an honest edit after the hostile request");
    let (status, _, body) = h.call(Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn a_change_whose_seq_skips_ahead_is_refused_and_the_server_stays_up() {
    let h = Harness::new();
    let worker = h.staff(Role::GridWorker);
    let mut phone = h.enroll(&worker).await;
    h.sync_all(&mut phone).await;
    let grid = match worker.scopes[0] {
        Scope::Grid(g) => g,
        other => panic!("{other}"),
    };
    let building = h.demo.roster.buildings.iter().find(|b| b.grid == grid).unwrap();
    let placement = h.demo.roster.placement_of_building(building.id).unwrap();
    let file = HouseholdFile::new(HouseholdId::new(), placement, &building.name, "1", "101", "王淑芬", 1);
    let created = phone.create(&file);
    let honest = doc::parse_change(&created.bytes).unwrap();
    // The device's own actor, a new document, seq 2: automerge 0.12 panicked on this.
    let skipped = craft::reencode(&honest, |c| c.seq = 2);
    let response = push_raw(&h, &mut phone, file.doc_id(), skipped).await;
    let (code, message) = rejection(&response);
    assert_eq!(code, RejectCode::OutOfOrder, "{message}");
    assert!(message.contains("seq 2"), "{message}");
    assert!(h.server_doc(file.doc_id()).is_none(), "nothing stored");
    // The honest version still goes in: the refusal poisoned nothing.
    let response = h.sync(&mut phone, vec![created]).await;
    assert_eq!(response.acks[0].status, AckStatus::Accepted);
    assert_healthy(&h).await;
}

#[tokio::test]
async fn an_accepted_change_resent_under_another_seq_is_refused_and_nothing_poisoned_is_stored() {
    let h = Harness::new();
    let mut phone = h.enroll(&h.staff(Role::GridWorker)).await;
    h.sync_all(&mut phone).await;
    let id = a_household(&phone);
    let edit = phone.edit::<HouseholdFile>(id, |f| f.notes = "独居，子女在外地".into());
    let accepted = doc::parse_change(&edit.bytes).unwrap();
    assert_eq!(h.sync(&mut phone, vec![edit]).await.acks[0].status, AckStatus::Accepted);

    // Same ops, same start op, next seq: duplicate op ids, which a release build stored.
    let replay = craft::reencode(&accepted, |c| c.seq += 1);
    let response = push_raw(&h, &mut phone, id, replay.clone()).await;
    let (code, message) = rejection(&response);
    assert_eq!(code, RejectCode::OutOfOrder, "{message}");
    assert!(message.contains("must start at op"), "{message}");

    // Twice, and with a later seq still: each refused.
    let replay_later = craft::reencode(&accepted, |c| c.seq += 5);
    assert_eq!(rejection(&push_raw(&h, &mut phone, id, replay_later).await).0, RejectCode::OutOfOrder);
    assert_eq!(rejection(&push_raw(&h, &mut phone, id, replay).await).0, RejectCode::OutOfOrder);

    h.assert_store_loads("after the hostile requests");
    // A supervisor's fresh phone takes the whole community, this household included.
    let mut fresh = h.enroll(&h.staff(Role::Supervisor)).await;
    h.sync_all(&mut fresh).await;
    let copy: HouseholdFile = doc::read(&fresh.docs[&id]).unwrap();
    assert_eq!(copy.notes, "独居，子女在外地");
    assert_healthy(&h).await;
    let refusals: i64 = h
        .admin
        .read(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM refusals WHERE code = 'out-of-order'", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(refusals, 3, "every refusal is audited");
}

#[tokio::test]
async fn run_length_op_bombs_are_refused_before_automerge_parses_them() {
    let h = Harness::new();
    let mut phone = h.enroll(&h.staff(Role::GridWorker)).await;
    h.sync_all(&mut phone).await;
    let doc = DocId::from(HouseholdId::new());

    // Three million ops in a few dozen bytes, signed by the device: 3.4 s and 1.1 GiB before.
    let bomb = craft::op_bomb(phone.actor.to_bytes(), 3_000_000).chunk();
    assert!(bomb.len() < 100, "{} bytes", bomb.len());
    let started = Instant::now();
    let response = push_raw(&h, &mut phone, doc, bomb).await;
    let (code, message) = rejection(&response);
    assert_eq!(code, RejectCode::TooLarge, "{message}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());

    // 2^40 ops under a forged actor: this one never finished parsing.
    let forged = craft::op_bomb(ActorId::random().to_bytes(), 1 << 40).chunk();
    let started = Instant::now();
    let response = push_raw(&h, &mut phone, doc, forged).await;
    assert_eq!(rejection(&response).0, RejectCode::TooLarge);
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());

    // A bomb hidden in the predecessor group: one op claiming 2^40 predecessors.
    let mut pred_bomb = craft::op_bomb(phone.actor.to_bytes(), 1);
    let mut group = Vec::new();
    craft::sleb(&mut group, 1);
    craft::uleb(&mut group, 1 << 40);
    let mut actors = Vec::new();
    craft::sleb(&mut actors, 1 << 40);
    craft::uleb(&mut actors, 0);
    pred_bomb.columns.push((7 << 4, group));
    pred_bomb.columns.push(((7 << 4) | 1, actors));
    let response = push_raw(&h, &mut phone, doc, pred_bomb.chunk()).await;
    assert_eq!(rejection(&response).0, RejectCode::TooLarge);
    assert_healthy(&h).await;
}

/// Peak resident memory of this process, from /proc.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn deflate_bombs_inside_a_change_are_refused_without_inflating() {
    use std::io::Write;
    let h = Harness::new();
    let mut phone = h.enroll(&h.staff(Role::GridWorker)).await;
    h.sync_all(&mut phone).await;
    let doc = DocId::from(HouseholdId::new());

    // A change chunk whose data inflates to 256 MiB of zeros.
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        encoder.write_all(&zeros).unwrap();
    }
    let deflated = encoder.finish().unwrap();
    let bomb = craft::chunk(2, &deflated, Some(&[0u8; 16]));
    assert!(bomb.len() < 1 << 20, "the bomb itself is small: {} bytes", bomb.len());
    let before = peak_rss_kib();
    let response = push_raw(&h, &mut phone, doc, bomb).await;
    let (code, message) = rejection(&response);
    assert_eq!(code, RejectCode::CorruptChange);
    assert!(message.contains("compressed"), "{message}");
    let grown_mib = (peak_rss_kib() - before) / 1024;
    assert!(grown_mib < 128, "peak memory grew by {grown_mib} MiB");

    // A compressed column inside an uncompressed change is refused the same way.
    let mut deflated_column = craft::op_bomb(phone.actor.to_bytes(), 1);
    deflated_column.columns[1].0 |= 0b1000;
    let response = push_raw(&h, &mut phone, doc, deflated_column.chunk()).await;
    assert_eq!(rejection(&response).0, RejectCode::CorruptChange);
    assert_healthy(&h).await;
}

#[tokio::test]
async fn extreme_change_times_are_refused() {
    let h = Harness::new();
    let mut phone = h.enroll(&h.staff(Role::GridWorker)).await;
    h.sync_all(&mut phone).await;
    let id = a_household(&phone);
    let edit = phone.edit::<HouseholdFile>(id, |f| f.notes = "需要复访".into());
    let honest = doc::parse_change(&edit.bytes).unwrap();
    for time in [i64::MIN, -1, i64::MAX, gridlink_shared::time::now_millis() + 400 * 86_400_000] {
        let odd = craft::reencode(&honest, |c| c.time = time);
        let (code, message) = rejection(&push_raw(&h, &mut phone, id, odd).await);
        assert_eq!(code, RejectCode::BadTime, "time {time}: {message}");
    }
    // A phone whose clock was reset to 1970 still syncs: its work is not lost.
    let reset_clock = craft::reencode(&honest, |c| c.time = 86_400_000);
    assert_eq!(push_raw(&h, &mut phone, id, reset_clock).await.acks[0].status, AckStatus::Accepted);
    h.assert_store_loads("after the hostile requests");
    assert_healthy(&h).await;
}

#[tokio::test]
async fn malformed_change_bytes_get_a_per_change_refusal_not_an_error() {
    let h = Harness::new();
    let mut phone = h.enroll(&h.staff(Role::GridWorker)).await;
    h.sync_all(&mut phone).await;
    let id = a_household(&phone);
    let good = phone.edit::<HouseholdFile>(id, |f| f.notes = "已登记".into());
    let mut bad_checksum = good.bytes.clone();
    bad_checksum[5] ^= 0xff;
    let cases: Vec<(Vec<u8>, RejectCode)> = vec![
        (Vec::new(), RejectCode::CorruptChange),
        (b"not automerge at all".to_vec(), RejectCode::CorruptChange),
        (good.bytes[..good.bytes.len() / 2].to_vec(), RejectCode::CorruptChange),
        (bad_checksum, RejectCode::CorruptChange),
        (vec![0u8; 2 * 1024 * 1024], RejectCode::TooLarge),
    ];
    let pushes: Vec<PushChange> = cases.iter().map(|(bytes, _)| PushChange { doc: id, bytes: bytes.clone() }).collect();
    let response = h.sync(&mut phone, pushes).await;
    for ((_, want), ack) in cases.iter().zip(&response.acks) {
        match &ack.status {
            AckStatus::Rejected { code, .. } => assert_eq!(code, want),
            other => panic!("expected {want}, got {other:?}"),
        }
    }
    // The good change, in the same request after all that, is accepted.
    let response = h.sync(&mut phone, vec![good]).await;
    assert_eq!(response.acks[0].status, AckStatus::Accepted);
}

#[tokio::test]
async fn a_sync_with_too_many_changes_is_refused_and_the_op_budget_defers_the_rest() {
    let limits = Limits {
        push: PushLimits { max_changes: 3, max_request_ops: 1, ..PushLimits::default() },
        ..Limits::default()
    };
    let h = Harness::with_limits(limits);
    let mut phone = h.enroll(&h.staff(Role::GridWorker)).await;
    h.sync_all(&mut phone).await;
    let id = a_household(&phone);
    let edits: Vec<PushChange> =
        (0..4).map(|i| phone.edit::<HouseholdFile>(id, |f| f.notes = format!("第{i}次走访记录"))).collect();

    let request = phone.request(edits.clone());
    let (status, envelope) = h.sync_error(&phone.token, protocol::encode(&request)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(envelope.error.code, ErrorCode::PayloadTooLarge);

    // Three changes fit the count, but their ops do not all fit the budget: the first goes in,
    // the rest get no ack (the phone keeps them and sends them again), none is refused.
    let response = h.sync(&mut phone, edits[..3].to_vec()).await;
    assert!(!response.acks.is_empty() && response.acks.len() < 3, "{:?}", response.acks);
    assert!(response.acks.iter().all(|a| a.status == AckStatus::Accepted));
    let mut sent = response.acks.len();
    while sent < 4 {
        let response = h.sync(&mut phone, edits[sent..(sent + 3).min(4)].to_vec()).await;
        assert!(!response.acks.is_empty(), "every round makes progress");
        assert!(response.acks.iter().all(|a| a.status == AckStatus::Accepted));
        sent += response.acks.len();
    }
    let server: HouseholdFile = doc::read(&h.server_doc(id).unwrap()).unwrap();
    assert_eq!(server.notes, "第3次走访记录");
}

#[tokio::test]
async fn a_visit_in_another_workers_name_is_refused() {
    let h = Harness::new();
    let workers = h.grid_workers();
    let (me, colleague) = (&workers[0], &workers[1]);
    let mut phone = h.enroll(me).await;
    h.sync_all(&mut phone).await;
    let id = a_household(&phone);
    let forged = phone.edit::<HouseholdFile>(id, |f| {
        let visit = Visit {
            id: VisitId::new(),
            visitor: colleague.id,
            visitor_name: colleague.name.clone(),
            at: gridlink_shared::time::now_millis(),
            recorded_at: gridlink_shared::time::now_millis(),
            outcome: VisitOutcome::Met,
            notes: "代签".into(),
            needs_found: Vec::new(),
            follow_up: None,
            residents_present: Vec::new(),
        };
        f.visits.insert(visit.id, visit);
    });
    let (code, message) = rejection(&h.sync(&mut phone, vec![forged]).await);
    assert_eq!(code, RejectCode::ForbiddenEdit);
    assert!(message.contains("name of the person recording it"), "{message}");
}

#[tokio::test]
async fn a_device_enrolled_after_a_move_gets_no_grace_in_the_old_grid() {
    let h = Harness::new();
    let workers = h.grid_workers();
    let (mover, other) = (&workers[0], &workers[1]);
    let old_grid = mover.scopes[0];
    let mut old_phone = h.enroll(mover).await;
    h.sync_all(&mut old_phone).await;
    let id = a_household(&old_phone);
    let before_move = gridlink_shared::time::now_millis();
    std::thread::sleep(Duration::from_millis(5));
    h.admin.set_scopes(mover.id, &[other.scopes[0]]).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let mut new_phone = h.enroll(mover).await;
    h.sync_all(&mut new_phone).await;
    assert_ne!(old_grid, other.scopes[0]);

    // The new phone signs a change in the old grid, stamped before the move.
    let mut server_copy = h.server_doc(id).unwrap();
    let bytes = change_on(&mut server_copy, new_phone.actor.clone(), |f| f.notes = "补录".into());
    let backdated = craft::reencode(&doc::parse_change(&bytes).unwrap(), |c| c.time = before_move - 60_000);
    let (code, _) = rejection(&push_raw(&h, &mut new_phone, id, backdated).await);
    assert_eq!(code, RejectCode::OutOfScope, "a phone enrolled after the move never held the old grid");

    // The phone that held the grid still gets its pre-move work in.
    let bytes = change_on(&mut h.server_doc(id).unwrap(), old_phone.actor.clone(), |f| f.notes = "搬走前的走访".into());
    let pre_move = craft::reencode(&doc::parse_change(&bytes).unwrap(), |c| c.time = before_move - 60_000);
    assert_eq!(push_raw(&h, &mut old_phone, id, pre_move).await.acks[0].status, AckStatus::Accepted);
}
