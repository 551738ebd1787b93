//! Storage stories against the `Store` trait, with the clock passed in, each run against both
//! backends (`stories!`: `sqlite::NAME` and `postgres::NAME`): enrolment codes over time,
//! durability across reopening, an admin connection writing while syncs run, and the sync
//! path's own stories (snapshots then log, small pages, a visit reaching another phone, a
//! repeated request, scopes), and compaction (`compact`: a device behind the floor starts
//! over with snapshots, the numbering continues past it). The PostgreSQL-only stories in
//! `store_postgres.rs` run several "processes" (stores) on one database at once.

#[path = "common/backends.rs"]
mod backends;
mod common;

use backends::Backend;
use common::{DEMO_NOW, DEMO_SEED, Device};
use gridlink_shared::demo::{self, DemoSize};
use gridlink_shared::protocol::{self, AckStatus, Cursor, EnrollRequest, PullItem, SyncResponse};
use gridlink_shared::time::HOUR_MS;
use gridlink_shared::{DocId, HouseholdFile, RejectCode, Role, Scope, Staff};
use gridlink_sync_server::{PushLimits, StoreError};

fn enroll<B: Backend>(store: &B, code: &str, now: i64) -> Result<Device, StoreError> {
    store.enroll(&EnrollRequest { code: code.into(), device_name: "测试机".into() }, now).map(Device::new)
}

fn sync<B: Backend>(store: &B, device: &mut Device, changes: Vec<protocol::PushChange>, now: i64) -> SyncResponse {
    let request = device.request(changes);
    let response = store.sync(device.enrolled.device, &request, &PushLimits::default(), now).unwrap();
    protocol::check_page(&request.cursors, &response).unwrap();
    device.apply(&response);
    response
}

fn sync_all<B: Backend>(store: &B, device: &mut Device, now: i64) -> Vec<SyncResponse> {
    let mut responses = Vec::new();
    loop {
        let response = sync(store, device, Vec::new(), now);
        let more = response.more;
        responses.push(response);
        if !more {
            return responses;
        }
        assert!(responses.len() < 10_000, "sync never finished");
    }
}

fn demo_store<B: Backend>() -> (B::Place, B, demo::DemoData) {
    let (place, store) = B::fresh();
    store.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    (place, store, demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW))
}

fn device_of<B: Backend>(store: &B, staff: &Staff) -> Device {
    let code = store.new_code(staff.id, DEMO_NOW, 72).unwrap();
    enroll(store, &code, DEMO_NOW).unwrap()
}

fn grid_of(staff: &Staff) -> gridlink_shared::GridId {
    match staff.scopes[0] {
        Scope::Grid(grid) => grid,
        other => panic!("not a grid scope: {other}"),
    }
}

fn enrolment_codes_expire_are_used_once_and_die_with_a_revoked_user<B: Backend>() {
    let (_place, store, data) = demo_store::<B>();
    let grid = data.roster.grids[0].id;
    let now = DEMO_NOW;
    let (user, code) = store.add_user("黄丽华", Role::GridWorker, &[Scope::Grid(grid)], now).unwrap();
    let device = enroll(&store, &code, now + 71 * HOUR_MS).unwrap();
    assert_eq!(device.enrolled.principal.user, user);
    assert!(matches!(enroll(&store, &code, now + 71 * HOUR_MS), Err(StoreError::CodeUsed)));

    let late = store.new_code(user, now, 72).unwrap();
    assert!(matches!(enroll(&store, &late, now + 72 * HOUR_MS), Err(StoreError::CodeExpired)));
    assert!(matches!(enroll(&store, "0000-0000", now), Err(StoreError::CodeInvalid)));

    let spare = store.new_code(user, now, 72).unwrap();
    assert_eq!(store.authenticate(&device.token).unwrap().device, device.enrolled.device);
    assert_eq!(store.revoke_user_devices(user, now + HOUR_MS).unwrap(), 1);
    assert!(matches!(store.authenticate(&device.token), Err(StoreError::DeviceRevoked)));
    assert!(
        matches!(enroll(&store, &spare, now + 2 * HOUR_MS), Err(StoreError::CodeExpired)),
        "codes issued before the revocation die with it"
    );
    assert!(matches!(store.authenticate("not-a-token"), Err(StoreError::Unauthorized)));
}

fn a_reopened_store_has_every_accepted_change_and_the_same_logs<B: Backend>() {
    let (place, store, data) = demo_store::<B>();
    let worker = data.staff_with_role(Role::GridWorker).next().unwrap().clone();
    let grid = grid_of(&worker);
    let mut phone = device_of(&store, &worker);
    sync_all(&store, &mut phone, DEMO_NOW);
    let id: DocId = data.households.iter().find(|x| x.placement.grid == grid).unwrap().id.into();
    let push = phone.edit::<HouseholdFile>(id, |x| x.notes = "低保户，每月核实一次".into());
    let hash = {
        let response = sync(&store, &mut phone, vec![push.clone()], DEMO_NOW + 1);
        assert_eq!(response.acks[0].status, AckStatus::Accepted);
        response.acks[0].hash.clone()
    };
    let Cursor::Seq { seq } = phone.cursors[&Scope::Grid(grid)] else { panic!() };
    drop(store);

    let store = B::open(&place);
    // A second phone starting from just before the change gets exactly that change.
    let mut tablet = device_of(&store, &worker);
    tablet.cursors.insert(Scope::Grid(grid), Cursor::Seq { seq: seq - 1 });
    let response = sync(&store, &mut tablet, Vec::new(), DEMO_NOW + 2);
    match response.items.as_slice() {
        [PullItem::Change { seq: got, doc, bytes, .. }] => {
            assert_eq!((*got, *doc), (seq, id));
            assert_eq!(gridlink_shared::doc::parse_change(bytes).unwrap().hash().to_string(), hash);
        }
        other => panic!("expected the one change, got {other:?}"),
    }
    // Pushing it again after the restart is a duplicate.
    let response = sync(&store, &mut phone, vec![push], DEMO_NOW + 3);
    assert_eq!(response.acks[0].status, AckStatus::Duplicate);
}

fn the_admin_connection_writes_while_syncs_run_on_another<B: Backend>() {
    let (place, store, data) = demo_store::<B>();
    let worker = data.staff_with_role(Role::GridWorker).next().unwrap().clone();
    let grids: Vec<Scope> = data.roster.grids.iter().map(|g| Scope::Grid(g.id)).collect();
    let mut phone = device_of(&store, &worker);
    let last = std::thread::scope(|s| {
        let admin = s.spawn(|| {
            let admin = B::open(&place);
            for i in 0..30 {
                admin.set_scopes(worker.id, &[grids[i % grids.len()]]).unwrap();
                admin.new_code(worker.id, DEMO_NOW, 72).unwrap();
            }
            grids[29 % grids.len()]
        });
        for _ in 0..30 {
            let response = sync(&store, &mut phone, Vec::new(), DEMO_NOW);
            assert_eq!(response.cursors.len(), 1, "a worker holds exactly one grid at any moment");
        }
        admin.join().unwrap()
    });
    sync_all(&store, &mut phone, DEMO_NOW);
    assert_eq!(phone.cursors.keys().copied().collect::<Vec<_>>(), vec![last]);
}

fn a_first_sync_delivers_the_grid_by_snapshots_then_continues_from_the_log<B: Backend>() {
    let (_place, store, data) = demo_store::<B>();
    let worker = data.staff_with_role(Role::GridWorker).next().unwrap().clone();
    let grid = grid_of(&worker);
    let mut phone = device_of(&store, &worker);
    let responses = sync_all(&store, &mut phone, DEMO_NOW);
    let first = &responses[0];
    assert!(first.reference.is_some(), "the first sync carries the reference data");
    assert!(first.items.iter().all(|i| matches!(i, PullItem::Snapshot { .. })));
    let expected = data.households.iter().filter(|h| h.placement.grid == grid).count();
    let households = phone.docs.keys().filter(|id| data.households.iter().any(|h| DocId::from(h.id) == **id)).count();
    assert_eq!(households, expected, "every household file of the grid, and only those");
    assert!(matches!(phone.cursors[&Scope::Grid(grid)], Cursor::Seq { .. }));
    assert!(
        responses.last().unwrap().integrity.digests.contains_key(&Scope::Grid(grid)),
        "a complete page has a digest"
    );
    // Nothing new: an empty page at the same cursor, no reference data again.
    let again = sync(&store, &mut phone, Vec::new(), DEMO_NOW + 1);
    assert!(again.items.is_empty() && again.reference.is_none());
}

fn small_pages_deliver_the_same_documents_with_gapless_cursors<B: Backend>() {
    let (_place, store, data) = demo_store::<B>();
    let supervisor = data.staff_with_role(Role::Supervisor).next().unwrap().clone();
    let mut whole = device_of(&store, &supervisor);
    sync_all(&store, &mut whole, DEMO_NOW);
    let mut paged = device_of(&store, &supervisor);
    paged.page_bytes = Some(2_000);
    let pages = sync_all(&store, &mut paged, DEMO_NOW);
    assert!(pages.len() > 3, "small pages take several rounds");
    let mut a: Vec<DocId> = whole.docs.keys().copied().collect();
    let mut b: Vec<DocId> = paged.docs.keys().copied().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(whole.cursors, paged.cursors);
}

fn a_visit_on_one_phone_reaches_the_other_and_a_repeated_push_is_a_duplicate<B: Backend>() {
    let (_place, store, data) = demo_store::<B>();
    let worker = data.staff_with_role(Role::GridWorker).next().unwrap().clone();
    let grid = grid_of(&worker);
    let mut phone = device_of(&store, &worker);
    let mut tablet = device_of(&store, &worker);
    sync_all(&store, &mut phone, DEMO_NOW);
    sync_all(&store, &mut tablet, DEMO_NOW);
    let id: DocId = data.households.iter().find(|h| h.placement.grid == grid).unwrap().id.into();
    let push = phone.edit::<HouseholdFile>(id, |h| h.notes = "独居老人，每周探访".into());
    let response = sync(&store, &mut phone, vec![push.clone()], DEMO_NOW + 1);
    assert_eq!(response.acks[0].status, AckStatus::Accepted);
    assert!(response.items.iter().all(|i| matches!(i, PullItem::Echo { .. })), "own changes come back as echoes");
    let again = sync(&store, &mut phone, vec![push], DEMO_NOW + 2);
    assert_eq!(again.acks[0].status, AckStatus::Duplicate);
    assert!(again.items.is_empty(), "a duplicate is logged nowhere");

    let got = sync(&store, &mut tablet, Vec::new(), DEMO_NOW + 3);
    assert!(got.items.iter().any(|i| matches!(i, PullItem::Change { doc, .. } if *doc == id)));
    let notes = gridlink_shared::doc::read::<HouseholdFile>(&tablet.docs[&id]).unwrap().notes;
    assert_eq!(notes, "独居老人，每周探访");
}

fn a_worker_cannot_write_another_grid_and_a_moved_worker_changes_scope<B: Backend>() {
    let (_place, store, data) = demo_store::<B>();
    let workers: Vec<Staff> = data.staff_with_role(Role::GridWorker).cloned().collect();
    let (mine, theirs) = (grid_of(&workers[0]), grid_of(&workers[1]));
    assert_ne!(mine, theirs);
    let mut other = device_of(&store, &workers[1]);
    sync_all(&store, &mut other, DEMO_NOW);
    let foreign: DocId = data.households.iter().find(|h| h.placement.grid == theirs).unwrap().id.into();
    let mut phone = device_of(&store, &workers[0]);
    sync_all(&store, &mut phone, DEMO_NOW);
    // A change to the other grid's file, signed by this phone's own actor.
    let bytes =
        common::change_on(other.docs.get_mut(&foreign).unwrap(), phone.actor.clone(), |h| h.notes = "越权修改".into());
    let response = sync(&store, &mut phone, vec![protocol::PushChange { doc: foreign, bytes }], DEMO_NOW + 1);
    assert!(
        matches!(&response.acks[0].status, AckStatus::Rejected { code: RejectCode::OutOfScope, .. }),
        "{:?}",
        response.acks[0].status
    );
    assert!(response.repairs.is_empty(), "nothing of the other grid is sent back");

    store.set_scopes(workers[0].id, &[Scope::Grid(theirs)]).unwrap();
    let moved = sync(&store, &mut phone, Vec::new(), DEMO_NOW + 2);
    assert_eq!(moved.scopes_removed, vec![Scope::Grid(mine)]);
    assert_eq!(moved.scopes_added, vec![Scope::Grid(theirs)]);
    sync_all(&store, &mut phone, DEMO_NOW + 3);
    assert!(phone.docs.contains_key(&foreign));
}

fn rejected_changes_do_not_stop_the_batch_and_their_documents_come_back<B: Backend>() {
    let (_place, store, data) = demo_store::<B>();
    let (worker, grid) = {
        let w = data.staff_with_role(Role::GridWorker).next().unwrap().clone();
        let g = grid_of(&w);
        (w, g)
    };
    let mut phone = device_of(&store, &worker);
    let mut tablet = device_of(&store, &worker);
    sync_all(&store, &mut phone, DEMO_NOW);
    sync_all(&store, &mut tablet, DEMO_NOW);
    let ids: Vec<DocId> =
        data.households.iter().filter(|x| x.placement.grid == grid).take(3).map(|x| x.id.into()).collect();
    let forged = common::change_on(phone.docs.get_mut(&ids[0]).unwrap(), automerge::ActorId::random(), |x| {
        x.notes = "冒充他人".into()
    });
    let first = phone.edit::<HouseholdFile>(ids[1], |x| x.notes = "第一次修改".into());
    let second = phone.edit::<HouseholdFile>(ids[1], |x| x.notes = "第二次修改".into());
    let invalid = phone.edit::<HouseholdFile>(ids[2], |x| x.head = String::new());
    let good = phone.edit::<HouseholdFile>(ids[0], |x| x.notes = "正常修改".into());
    let batch = vec![
        protocol::PushChange { doc: ids[0], bytes: forged },
        protocol::PushChange { doc: ids[0], bytes: b"not an automerge change".to_vec() },
        second.clone(),
        invalid,
        good,
    ];
    let response = sync(&store, &mut phone, batch, DEMO_NOW + 1);
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
    let repaired: std::collections::BTreeSet<DocId> = response.repairs.iter().map(|r| r.doc).collect();
    assert_eq!(repaired, ids.iter().copied().collect(), "the server copy of every document with a rejection");
    let response = sync(&store, &mut phone, vec![first, second], DEMO_NOW + 2);
    assert!(response.acks.iter().all(|a| a.status == AckStatus::Accepted), "{:?}", response.acks);
    sync_all(&store, &mut tablet, DEMO_NOW + 3);
    let notes = |id: DocId| gridlink_shared::doc::read::<HouseholdFile>(&tablet.docs[&id]).unwrap().notes;
    assert_eq!((notes(ids[0]), notes(ids[1])), ("正常修改".to_string(), "第二次修改".to_string()));
}

fn a_moved_workers_offline_edits_in_the_old_grid_are_accepted_but_later_ones_are_not<B: Backend>() {
    let (_place, store, data) = demo_store::<B>();
    let workers: Vec<Staff> = data.staff_with_role(Role::GridWorker).cloned().collect();
    let (old, new) = (grid_of(&workers[0]), grid_of(&workers[1]));
    let mut phone = device_of(&store, &workers[0]);
    sync_all(&store, &mut phone, DEMO_NOW);
    let id: DocId = data.households.iter().find(|x| x.placement.grid == old).unwrap().id.into();
    let before_move = phone.edit::<HouseholdFile>(id, |x| x.notes = "搬迁前最后一次走访：一切正常".into());
    std::thread::sleep(std::time::Duration::from_millis(5));
    store.set_scopes(workers[0].id, &[Scope::Grid(new)]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let after_move = phone.edit::<HouseholdFile>(id, |x| x.notes = "搬迁后的修改".into());
    let now = gridlink_shared::time::now_millis();
    let response = sync(&store, &mut phone, vec![before_move, after_move], now);
    assert_eq!(response.acks[0].status, AckStatus::Accepted, "the last visit before the move still counts");
    assert!(matches!(&response.acks[1].status, AckStatus::Rejected { code: RejectCode::OutOfScope, .. }));
    assert_eq!(response.scopes_removed, vec![Scope::Grid(old)]);
}

fn after_compaction_a_device_behind_the_floor_gets_snapshots_and_one_ahead_gets_the_rest_of_the_log<B: Backend>() {
    let (_place, store, data) = demo_store::<B>();
    let worker = data.staff_with_role(Role::GridWorker).next().unwrap().clone();
    let grid = grid_of(&worker);
    let now = DEMO_NOW;
    let mut behind = device_of(&store, &worker);
    let mut current = device_of(&store, &worker);
    sync_all(&store, &mut behind, now);
    sync_all(&store, &mut current, now);
    let id: DocId = data.households.iter().find(|x| x.placement.grid == grid).unwrap().id.into();
    let old_push = behind.edit::<HouseholdFile>(id, |x| x.notes = "压缩前的修改".into());
    sync(&store, &mut behind, vec![old_push.clone()], now);
    let Cursor::Seq { seq: stale } = current.cursors[&Scope::Grid(grid)] else { panic!() };
    for i in 0..3 {
        let push = behind.edit::<HouseholdFile>(id, |x| x.notes = format!("第{i}次修改"));
        sync(&store, &mut behind, vec![push], now);
    }

    let (entries, changes) = store.compact(2).unwrap();
    assert!(entries > 0 && changes > 0, "{entries} entries, {changes} changes");
    assert_eq!(store.log_len(Scope::Grid(grid)), 2);

    // `current` stopped at `stale`, four entries ago, now below the floor: it starts over
    // with snapshots.
    assert!(stale < store.scope_floor(Scope::Grid(grid)));
    let responses = sync_all(&store, &mut current, now);
    assert_eq!(responses[0].cursors[&Scope::Grid(grid)], Cursor::Start);
    let on_current: HouseholdFile = gridlink_shared::doc::read(&current.docs[&id]).unwrap();
    assert_eq!(on_current.notes, "第2次修改");

    // `behind` is up to date: nothing to resend, and a compacted change re-pushed is a duplicate.
    let response = sync(&store, &mut behind, vec![old_push], now);
    assert_eq!(response.acks[0].status, AckStatus::Duplicate);
    assert!(response.items.is_empty());
}

/// Found by the simulation (tests/tests/simulation.rs): compaction that keeps nothing emptied
/// a scope's log, its numbering started again at 1, and a device whose cursor was past the
/// new entries skipped them, or (at the floor) was sent back to the start on every round.
fn after_compaction_that_keeps_nothing_the_log_continues_its_numbering<B: Backend>() {
    let (_place, store, data) = demo_store::<B>();
    let worker = data.staff_with_role(Role::GridWorker).next().unwrap().clone();
    let scope = Scope::Grid(grid_of(&worker));
    let now = DEMO_NOW;
    let mut writer = device_of(&store, &worker);
    let mut reader = device_of(&store, &worker);
    sync_all(&store, &mut writer, now);
    sync_all(&store, &mut reader, now);
    let Cursor::Seq { seq: head } = reader.cursors[&scope] else { panic!("the reader is caught up") };

    store.compact(0).unwrap();
    assert_eq!(store.log_len(scope), 0, "nothing kept");
    assert_eq!(store.scope_floor(scope), head);
    // Caught up at the floor: an ordinary empty page, not a restart.
    let response = sync(&store, &mut reader, vec![], now);
    assert_eq!(response.cursors[&scope], Cursor::Seq { seq: head });
    assert!(!response.more);

    let id: DocId = data.households.iter().find(|x| Scope::Grid(x.placement.grid) == scope).unwrap().id.into();
    let push = writer.edit::<HouseholdFile>(id, |x| x.notes = "压缩后的第一次修改".into());
    sync(&store, &mut writer, vec![push], now);
    let response = sync(&store, &mut reader, vec![], now);
    assert!(
        matches!(response.items.as_slice(), [PullItem::Change { seq, .. }] if *seq == head + 1),
        "the new change continues the numbering: {:?}",
        response.items
    );
    let on_reader: HouseholdFile = gridlink_shared::doc::read(&reader.docs[&id]).unwrap();
    assert_eq!(on_reader.notes, "压缩后的第一次修改");
    // A second compaction that keeps more than the log holds leaves the floor where it was.
    assert_eq!(store.compact(10).unwrap().0, 0);
    assert_eq!(store.scope_floor(scope), head);
}

stories!(
    after_compaction_a_device_behind_the_floor_gets_snapshots_and_one_ahead_gets_the_rest_of_the_log,
    after_compaction_that_keeps_nothing_the_log_continues_its_numbering,
    enrolment_codes_expire_are_used_once_and_die_with_a_revoked_user,
    a_reopened_store_has_every_accepted_change_and_the_same_logs,
    the_admin_connection_writes_while_syncs_run_on_another,
    a_first_sync_delivers_the_grid_by_snapshots_then_continues_from_the_log,
    small_pages_deliver_the_same_documents_with_gapless_cursors,
    a_visit_on_one_phone_reaches_the_other_and_a_repeated_push_is_a_duplicate,
    a_worker_cannot_write_another_grid_and_a_moved_worker_changes_scope,
    rejected_changes_do_not_stop_the_batch_and_their_documents_come_back,
    a_moved_workers_offline_edits_in_the_old_grid_are_accepted_but_later_ones_are_not,
);
