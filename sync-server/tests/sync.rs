//! Sync stories over the real router and a real SQLite file: first sync by snapshots,
//! paging, incremental changes between devices, idempotent re-push, every rejection, scope
//! escapes, scope moves and revocation. (Compaction's stories run on both backends, in
//! `store.rs`.)

mod common;

use automerge::ActorId;
use common::{Harness, change_on};
use gridlink_shared::protocol::{AckStatus, Cursor, PROTOCOL_VERSION, PullItem, PushChange, SyncRequest};
use gridlink_shared::{
    CaseFile, DocId, HouseholdFile, HouseholdId, RejectCode, Role, Scope, Visit, VisitId, VisitOutcome,
};

fn rejected(status: &AckStatus) -> RejectCode {
    match status {
        AckStatus::Rejected { code, .. } => *code,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn grid_of(staff: &gridlink_shared::Staff) -> gridlink_shared::GridId {
    match staff.scopes[0] {
        Scope::Grid(g) => g,
        other => panic!("not a grid worker scope: {other}"),
    }
}

#[tokio::test]
async fn first_sync_of_a_new_device_delivers_its_grid_by_snapshots_then_continues_from_the_log() {
    let h = Harness::new();
    let worker = h.staff(Role::GridWorker);
    let grid = grid_of(&worker);
    let mut phone = h.enroll(&worker).await;

    let responses = h.sync_all(&mut phone).await;
    let first = &responses[0];
    assert_eq!(first.scopes_added, vec![Scope::Grid(grid)]);
    assert!(first.scopes_removed.is_empty());
    let reference = first.reference.as_ref().expect("a new device gets the reference data");
    assert!(reference.roster.grids.iter().any(|g| g.id == grid));
    assert!(reference.roster.staff.iter().any(|s| s.id == worker.id));
    assert!(first.items.iter().all(|i| matches!(i, PullItem::Snapshot { .. })));

    let expected: std::collections::BTreeSet<DocId> = h
        .demo
        .households
        .iter()
        .filter(|x| x.placement.grid == grid)
        .map(|x| DocId::from(x.id))
        .chain(h.demo.cases.iter().filter(|c| c.placement.grid == grid).map(|c| DocId::from(c.id)))
        .chain(h.demo.activities.iter().filter(|a| a.placement.grid == grid).map(|a| DocId::from(a.id)))
        .collect();
    let held: std::collections::BTreeSet<DocId> = phone.docs.keys().copied().collect();
    assert_eq!(held, expected, "exactly the documents of the worker's grid");
    assert_eq!(phone.cursors[&Scope::Grid(grid)], Cursor::Seq { seq: h.log_len(Scope::Grid(grid)) });

    // Nothing new: an empty page, the same cursor, no reference data again.
    let again = h.sync(&mut phone, Vec::new()).await;
    assert!(again.items.is_empty() && !again.more && again.reference.is_none());
    assert!(again.scopes_added.is_empty());
}

#[tokio::test]
async fn small_pages_deliver_the_same_documents_with_gapless_cursors() {
    let h = Harness::new();
    let supervisor = h.staff(Role::Supervisor);
    let mut whole = h.enroll(&supervisor).await;
    h.sync_all(&mut whole).await;

    let mut paged = h.enroll(&supervisor).await;
    paged.page_bytes = Some(8 * 1024);
    let responses = h.sync_all(&mut paged).await;
    assert!(responses.len() > 5, "8 KiB pages must split the community, got {} pages", responses.len());
    for page in &responses[..responses.len() - 1] {
        assert!(page.more);
        assert!(!page.items.is_empty(), "every page makes progress");
        let bytes: usize = page.items.iter().map(|i| i.bytes().len()).sum();
        assert!(page.items.len() == 1 || bytes <= 8 * 1024, "page of {bytes} bytes over the cap");
    }
    let mut a: Vec<DocId> = whole.docs.keys().copied().collect();
    let mut b: Vec<DocId> = paged.docs.keys().copied().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(whole.cursors, paged.cursors);
    // A page of 1 byte still carries one item.
    paged.page_bytes = Some(1);
    let worker = h.staff(Role::GridWorker);
    let mut writer = h.enroll(&worker).await;
    h.sync_all(&mut writer).await;
    let id = *writer.docs.keys().find(|id| h.demo.households.iter().any(|x| DocId::from(x.id) == **id)).unwrap();
    let c1 = writer.edit::<HouseholdFile>(id, |x| x.notes = "独居，腿脚不便".into());
    let c2 = writer.edit::<HouseholdFile>(id, |x| x.phone = "13907141234".into());
    h.sync(&mut writer, vec![c1, c2]).await;
    let one = h.sync(&mut paged, Vec::new()).await;
    assert_eq!(one.items.len(), 1);
    assert!(one.more);
    let two = h.sync(&mut paged, Vec::new()).await;
    assert_eq!(two.items.len(), 1);
}

#[tokio::test]
async fn a_visit_recorded_on_one_phone_reaches_the_other_phone_and_the_supervisor() {
    let h = Harness::new();
    let worker = h.staff(Role::GridWorker);
    let grid = grid_of(&worker);
    let mut phone = h.enroll(&worker).await;
    let mut tablet = h.enroll(&worker).await;
    let mut office = h.enroll(&h.staff(Role::Supervisor)).await;
    for d in [&mut phone, &mut tablet, &mut office] {
        h.sync_all(d).await;
    }
    let household = h.demo.households.iter().find(|x| x.placement.grid == grid).unwrap().clone();
    let visit = Visit {
        id: VisitId::new(),
        visitor: worker.id,
        visitor_name: worker.name.clone(),
        at: gridlink_shared::time::now_millis(),
        recorded_at: gridlink_shared::time::now_millis(),
        outcome: VisitOutcome::Met,
        notes: "老人血压偏高，已提醒按时服药".into(),
        needs_found: Vec::new(),
        follow_up: None,
        residents_present: Vec::new(),
    };
    let push = phone.edit::<HouseholdFile>(household.id.into(), |x| {
        x.visits.insert(visit.id, visit.clone());
    });
    let before = phone.cursors[&Scope::Grid(grid)];
    let response = h.sync(&mut phone, vec![push.clone()]).await;
    assert_eq!(response.acks.len(), 1);
    assert_eq!(response.acks[0].status, AckStatus::Accepted);
    assert!(response.repairs.is_empty());
    let Cursor::Seq { seq: before } = before else { panic!("synced") };
    // The phone's own change comes back as the next entry of its scope log, without its bytes.
    assert!(matches!(response.items.as_slice(), [PullItem::Echo { seq, .. }] if *seq == before + 1));

    let pulled = h.sync(&mut tablet, Vec::new()).await;
    assert_eq!(pulled.items.len(), 1);
    let on_tablet: HouseholdFile = gridlink_shared::doc::read(&tablet.docs[&household.id.into()]).unwrap();
    assert_eq!(on_tablet.visits[&visit.id].notes, visit.notes);

    let seen = h.sync(&mut office, Vec::new()).await;
    // The demo's first supervisor oversees the street: one entry of the street log.
    assert_eq!(h.staff(Role::Supervisor).scopes.len(), 1);
    assert!(
        matches!(seen.items.as_slice(), [PullItem::Change { scope, .. }] if *scope == h.staff(Role::Supervisor).scopes[0])
    );
}

#[tokio::test]
async fn pushing_the_same_request_twice_changes_nothing_the_second_time() {
    let h = Harness::new();
    let worker = h.staff(Role::GridWorker);
    let grid = grid_of(&worker);
    let mut phone = h.enroll(&worker).await;
    h.sync_all(&mut phone).await;
    let id: DocId = h.demo.households.iter().find(|x| x.placement.grid == grid).unwrap().id.into();
    let push = phone.edit::<HouseholdFile>(id, |x| x.notes = "儿子在外地工作，每月回来一次".into());
    let request = phone.request(vec![push]);
    let body = gridlink_shared::protocol::encode(&request);

    let (status, _, first) = h.post_sync(&phone.token, body.clone()).await;
    assert_eq!(status, 200);
    let first: gridlink_shared::protocol::SyncResponse = gridlink_shared::protocol::decode(&first).unwrap();
    assert_eq!(first.acks[0].status, AckStatus::Accepted);
    let log_after_first = h.log_len(Scope::Grid(grid));
    let heads_after_first = h.server_doc(id).unwrap().get_heads();

    // The reply was "lost": the phone sends exactly the same request again.
    let (status, _, second) = h.post_sync(&phone.token, body).await;
    assert_eq!(status, 200);
    let second: gridlink_shared::protocol::SyncResponse = gridlink_shared::protocol::decode(&second).unwrap();
    assert_eq!(second.acks[0].status, AckStatus::Duplicate);
    assert_eq!(second.acks[0].hash, first.acks[0].hash);
    assert_eq!(h.log_len(Scope::Grid(grid)), log_after_first);
    assert_eq!(h.server_doc(id).unwrap().get_heads(), heads_after_first);
    assert_eq!(second.items, first.items, "the same cursors get the same page");
    gridlink_shared::protocol::check_page(&request.cursors, &second).unwrap();
}

#[tokio::test]
async fn a_worker_cannot_read_another_grid_by_claiming_its_cursor_or_asking_for_repair() {
    let h = Harness::new();
    let workers = h.grid_workers();
    let (mine, theirs) = (grid_of(&workers[0]), grid_of(&workers[1]));
    assert_ne!(mine, theirs);
    let mut phone = h.enroll(&workers[0]).await;
    h.sync_all(&mut phone).await;
    let foreign: DocId = h.demo.households.iter().find(|x| x.placement.grid == theirs).unwrap().id.into();

    phone.cursors.insert(Scope::Grid(theirs), Cursor::Start);
    let mut request = phone.request(Vec::new());
    request.repair = vec![foreign];
    let (status, _, body) = h.post_sync(&phone.token, gridlink_shared::protocol::encode(&request)).await;
    assert_eq!(status, 200);
    let response: gridlink_shared::protocol::SyncResponse = gridlink_shared::protocol::decode(&body).unwrap();
    assert_eq!(response.scopes_removed, vec![Scope::Grid(theirs)]);
    assert!(response.items.is_empty(), "nothing of the other grid is sent");
    assert!(response.repairs.is_empty(), "no repair copy of a document outside the worker's grid");
    assert!(!response.cursors.contains_key(&Scope::Grid(theirs)));
    assert!(response.cursors.contains_key(&Scope::Grid(mine)));
}

#[tokio::test]
async fn a_worker_cannot_write_another_grid_and_learns_nothing_about_it() {
    let h = Harness::new();
    let workers = h.grid_workers();
    let theirs = grid_of(&workers[1]);
    let mut phone = h.enroll(&workers[0]).await;
    h.sync_all(&mut phone).await;
    let foreign: DocId = h.demo.households.iter().find(|x| x.placement.grid == theirs).unwrap().id.into();
    let log_before = h.log_len(Scope::Grid(theirs));
    let mut server_copy = h.server_doc(foreign).unwrap();
    let bytes = change_on(&mut server_copy, phone.actor.clone(), |x| x.notes = "越权修改".into());

    let response = h.sync(&mut phone, vec![PushChange { doc: foreign, bytes }]).await;
    assert_eq!(rejected(&response.acks[0].status), RejectCode::OutOfScope);
    assert!(response.repairs.is_empty(), "the rejected document is outside the worker's scopes");
    assert_eq!(h.log_len(Scope::Grid(theirs)), log_before);

    // Nor can it create a document in another grid.
    let placement = h.demo.households.iter().find(|x| x.placement.grid == theirs).unwrap().placement;
    let file = HouseholdFile::new(HouseholdId::new(), placement, "文星花园1栋", "1", "101", "王建国", 1);
    let push = phone.create(&file);
    let response = h.sync(&mut phone, vec![push]).await;
    assert_eq!(rejected(&response.acks[0].status), RejectCode::OutOfScope);
    assert!(response.repairs.is_empty(), "a document the server does not have gets no repair");
    assert!(h.server_doc(file.id.into()).is_none());
}

#[tokio::test]
async fn a_building_leader_sees_only_the_cases_of_the_building_and_cannot_edit_household_files() {
    let h = Harness::new();
    let leader = h.staff(Role::BuildingLeader);
    let Scope::Building(building) = leader.scopes[0] else { panic!("leader scope") };
    let mut phone = h.enroll(&leader).await;
    h.sync_all(&mut phone).await;
    let cases: std::collections::BTreeSet<DocId> =
        h.demo.cases.iter().filter(|c| c.placement.building == Some(building)).map(|c| DocId::from(c.id)).collect();
    let held: std::collections::BTreeSet<DocId> = phone.docs.keys().copied().collect();
    assert_eq!(held, cases);

    let household: DocId = h.demo.households.iter().find(|x| x.placement.building == Some(building)).unwrap().id.into();
    let mut server_copy = h.server_doc(household).unwrap();
    let bytes = change_on(&mut server_copy, phone.actor.clone(), |x| x.phone = "13800000000".into());
    let response = h.sync(&mut phone, vec![PushChange { doc: household, bytes }]).await;
    assert_eq!(rejected(&response.acks[0].status), RejectCode::ForbiddenRole);
    assert!(response.repairs.is_empty(), "household files are not readable by building leaders");
}

#[tokio::test]
async fn forged_actor_corrupt_bytes_missing_dependencies_and_invalid_documents_are_rejected_and_the_batch_goes_on() {
    let h = Harness::new();
    let worker = h.staff(Role::GridWorker);
    let grid = grid_of(&worker);
    let mut phone = h.enroll(&worker).await;
    h.sync_all(&mut phone).await;
    let ids: Vec<DocId> =
        h.demo.households.iter().filter(|x| x.placement.grid == grid).take(3).map(|x| x.id.into()).collect();

    let mut server_copy = h.server_doc(ids[0]).unwrap();
    let forged = change_on(&mut server_copy, ActorId::random(), |x| x.notes = "冒充他人".into());
    let first = phone.edit::<HouseholdFile>(ids[1], |x| x.notes = "第一次修改".into());
    let second = phone.edit::<HouseholdFile>(ids[1], |x| x.notes = "第二次修改".into());
    let invalid = phone.edit::<HouseholdFile>(ids[2], |x| x.head = String::new());
    let good = phone.edit::<HouseholdFile>(ids[0], |x| x.notes = "正常修改".into());

    let batch = vec![
        PushChange { doc: ids[0], bytes: forged },
        PushChange { doc: ids[0], bytes: b"not an automerge change".to_vec() },
        second.clone(),
        invalid,
        good,
    ];
    let response = h.sync(&mut phone, batch).await;
    let codes = common::reject_codes(&response);
    assert_eq!(
        codes,
        vec![
            Some(RejectCode::ForgedActor),
            Some(RejectCode::CorruptChange),
            Some(RejectCode::MissingDependencies),
            Some(RejectCode::InvalidDocument),
            None
        ]
    );
    assert_eq!(response.acks[1].hash, "", "a corrupt change has no hash");
    let repaired: std::collections::BTreeSet<DocId> = response.repairs.iter().map(|r| r.doc).collect();
    assert_eq!(repaired, ids.iter().copied().collect(), "the server copy of every document with a rejection");

    // Pushed in order, the dependency is there and both are accepted.
    let response = h.sync(&mut phone, vec![first, second]).await;
    assert!(response.acks.iter().all(|a| a.status == AckStatus::Accepted), "{:?}", response.acks);
    let on_server: HouseholdFile = gridlink_shared::doc::read(&h.server_doc(ids[1]).unwrap()).unwrap();
    assert_eq!(on_server.notes, "第二次修改");
}

#[tokio::test]
async fn a_new_case_reported_by_a_worker_is_logged_in_grid_building_community_and_street() {
    let h = Harness::new();
    let worker = h.staff(Role::GridWorker);
    let grid = grid_of(&worker);
    let mut phone = h.enroll(&worker).await;
    h.sync_all(&mut phone).await;
    let household = h.demo.households.iter().find(|x| x.placement.grid == grid).unwrap();
    let case = CaseFile::new(
        gridlink_shared::CaseId::new(),
        "help:elderly".parse().unwrap_or_else(|_| gridlink_shared::CaseKind::all()[0]),
        household.placement,
        Some(household.id),
        "楼道灯坏了，老人夜间出行不便",
        "3单元2楼楼道灯不亮",
        (worker.id, &worker.name),
        (worker.id, &worker.name),
        gridlink_shared::time::now_millis(),
    );
    let building = Scope::Building(household.placement.building.unwrap());
    let before = [Scope::Grid(grid), building].map(|s| h.log_len(s));
    let push = phone.create(&case);
    let response = h.sync(&mut phone, vec![push]).await;
    assert_eq!(response.acks[0].status, AckStatus::Accepted, "{:?}", response.acks[0]);
    assert_eq!(h.log_len(Scope::Grid(grid)), before[0] + 1);
    assert_eq!(h.log_len(building), before[1] + 1);
    let rows: i64 = h
        .admin
        .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM case_rows WHERE id = ?1", [case.id.to_string()], |r| r.get(0))?))
        .unwrap();
    assert_eq!(rows, 1, "the supervisor query table is written in the same transaction");
    let audit: (String, i64) = h
        .admin
        .read(|c| {
            Ok(c.query_row("SELECT device_id, device_time FROM audit WHERE doc_id = ?1", [case.id.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?)
        })
        .unwrap();
    assert_eq!(audit.0, phone.enrolled.device.to_string());
}

#[tokio::test]
async fn moving_a_worker_to_another_grid_removes_the_old_scope_and_snapshots_the_new_one() {
    let h = Harness::new();
    let workers = h.grid_workers();
    let (old, new) = (grid_of(&workers[0]), grid_of(&workers[1]));
    let mut phone = h.enroll(&workers[0]).await;
    h.sync_all(&mut phone).await;
    let version = phone.reference_version;

    h.admin.set_scopes(workers[0].id, &[Scope::Grid(new)]).unwrap();
    let responses = h.sync_all(&mut phone).await;
    assert_eq!(responses[0].scopes_removed, vec![Scope::Grid(old)]);
    assert_eq!(responses[0].scopes_added, vec![Scope::Grid(new)]);
    assert!(responses[0].reference.as_ref().unwrap().version > version.unwrap());
    assert!(phone.docs.keys().all(|id| {
        let any = gridlink_shared::doc::read_any(&phone.docs[id]).unwrap();
        any.placement().grid == new
    }));
    assert!(!phone.docs.is_empty());
    assert_eq!(phone.cursors.keys().copied().collect::<Vec<_>>(), vec![Scope::Grid(new)]);
}

#[tokio::test]
async fn a_revoked_device_is_refused_at_once_and_other_devices_go_on() {
    let h = Harness::new();
    let workers = h.grid_workers();
    let mut lost = h.enroll(&workers[0]).await;
    let mut other = h.enroll(&workers[1]).await;
    h.sync(&mut lost, Vec::new()).await;
    h.admin.revoke_user_devices(workers[0].id, gridlink_shared::time::now_millis()).unwrap();

    let request = lost.request(Vec::new());
    let (status, envelope) = h.sync_error(&lost.token, gridlink_shared::protocol::encode(&request)).await;
    assert_eq!(status, 401);
    assert_eq!(envelope.error.code, gridlink_shared::protocol::ErrorCode::DeviceRevoked);
    h.sync(&mut other, Vec::new()).await;
}

#[tokio::test]
async fn unsupported_protocol_versions_get_a_clear_error() {
    let h = Harness::new();
    let phone = h.enroll(&h.staff(Role::GridWorker)).await;
    let request = SyncRequest { protocol: PROTOCOL_VERSION + 1, ..phone.request(Vec::new()) };
    let (status, envelope) = h.sync_error(&phone.token, gridlink_shared::protocol::encode(&request)).await;
    assert_eq!(status, 400);
    assert_eq!(envelope.error.code, gridlink_shared::protocol::ErrorCode::UnsupportedProtocol);
}

#[tokio::test]
async fn a_device_ahead_of_the_server_log_starts_its_scope_over_with_snapshots() {
    let h = Harness::new();
    let worker = h.staff(Role::GridWorker);
    let grid = grid_of(&worker);
    let mut phone = h.enroll(&worker).await;
    h.sync_all(&mut phone).await;
    let held = phone.docs.len();
    // As if the server had been restored from an older backup.
    phone.cursors.insert(Scope::Grid(grid), Cursor::Seq { seq: h.log_len(Scope::Grid(grid)) + 50 });
    let restart = h.sync(&mut phone, Vec::new()).await;
    assert_eq!(restart.cursors[&Scope::Grid(grid)], Cursor::Start);
    assert!(restart.more && restart.items.is_empty());
    let rest = h.sync_all(&mut phone).await;
    let snapshots = rest.iter().flat_map(|r| &r.items).filter(|i| matches!(i, PullItem::Snapshot { .. })).count();
    assert_eq!(snapshots, held);
    assert_eq!(phone.cursors[&Scope::Grid(grid)], Cursor::Seq { seq: h.log_len(Scope::Grid(grid)) });
}

#[tokio::test]
async fn a_moved_workers_offline_edits_in_the_old_grid_are_accepted_but_later_ones_are_not() {
    let h = Harness::new();
    let workers = h.grid_workers();
    let (old, new) = (grid_of(&workers[0]), grid_of(&workers[1]));
    let mut phone = h.enroll(&workers[0]).await;
    h.sync_all(&mut phone).await;
    let household = h.demo.households.iter().find(|x| x.placement.grid == old).unwrap().clone();
    // Written in a stairwell without signal, before the office moved the worker...
    let before_move =
        phone.edit::<HouseholdFile>(household.id.into(), |x| x.notes = "搬迁前最后一次走访：一切正常".into());
    std::thread::sleep(std::time::Duration::from_millis(5));
    h.admin.set_scopes(workers[0].id, &[Scope::Grid(new)]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    // ...and one written after the move took effect.
    let after_move = phone.edit::<HouseholdFile>(household.id.into(), |x| x.notes = "搬迁后的修改".into());

    let response = h.sync(&mut phone, vec![before_move, after_move]).await;
    assert_eq!(response.acks[0].status, AckStatus::Accepted, "the last visit before the move still counts");
    assert_eq!(rejected(&response.acks[1].status), RejectCode::OutOfScope);
    assert_eq!(response.scopes_removed, vec![Scope::Grid(old)]);
    let stored: HouseholdFile = gridlink_shared::doc::read(&h.server_doc(household.id.into()).unwrap()).unwrap();
    assert_eq!(stored.notes, "搬迁前最后一次走访：一切正常");

    // Moving back ends the grace entry: the scope is simply held again.
    h.admin.set_scopes(workers[0].id, &[Scope::Grid(old)]).unwrap();
    let graces: i64 = h
        .admin
        .read(|conn| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM scope_grace WHERE scope = ?1",
                [Scope::Grid(old).to_string()],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(graces, 0);
}

#[tokio::test]
async fn a_device_reports_its_health_and_an_older_app_that_does_not_still_syncs() {
    let h = Harness::new();
    let worker = h.staff(Role::GridWorker);
    let mut phone = h.enroll(&worker).await;
    h.sync_all(&mut phone).await;
    let device = phone.enrolled.device;
    let listed = |h: &Harness| h.admin.list_devices().unwrap().into_iter().find(|d| d.id == device).unwrap();
    assert_eq!(listed(&h).health, None, "the harness device reports nothing, like an older app");

    let health =
        gridlink_shared::protocol::DeviceHealth { app_version: "0.1.0".into(), unsent: 3, rejected: 1, quarantined: 0 };
    let request = SyncRequest { health: Some(health.clone()), ..phone.request(Vec::new()) };
    let (status, _, body) = h.post_sync(&phone.token, gridlink_shared::protocol::encode(&request)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(listed(&h).health, Some(health.clone()));

    // A later sync without the report keeps the last one.
    h.sync(&mut phone, Vec::new()).await;
    assert_eq!(listed(&h).health, Some(health));
}
