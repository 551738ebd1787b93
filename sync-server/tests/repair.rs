//! A store poisoned the old way (a change re-sent under another seq, accepted and stored by a
//! release build before the change checks) is found by `gridlink-server check`, repaired by
//! `check --repair`, and every phone ends up with a copy it can load; on both backends
//! (`stories!`: `check --data` and `check --database`).

#[path = "common/backends.rs"]
mod backends;
mod common;

use std::process::Command;

use backends::Backend;
use common::{DEMO_NOW, DEMO_SEED, Device, craft};
use gridlink_shared::demo::{self, DemoSize};
use gridlink_shared::protocol::{AckStatus, EnrollRequest, PullItem, PushChange, SyncResponse};
use gridlink_shared::{DocId, HouseholdFile, RejectCode, Role, Scope, Staff, doc};
use gridlink_sync_server::PushLimits;
use gridlink_sync_server::store::check_document;

fn a_household(device: &Device) -> DocId {
    *device.docs.iter().find(|(_, d)| doc::read::<HouseholdFile>(*d).is_ok()).map(|(id, _)| id).unwrap()
}

fn enroll<B: Backend>(store: &B, staff: &Staff) -> Device {
    let code = store.new_code(staff.id, DEMO_NOW, 72).unwrap();
    let request = EnrollRequest { code, device_name: format!("{}的手机", staff.name) };
    Device::new(store.enroll(&request, DEMO_NOW).unwrap())
}

fn sync<B: Backend>(store: &B, device: &mut Device, changes: Vec<PushChange>) -> SyncResponse {
    let request = device.request(changes);
    let response = store.sync(device.enrolled.device, &request, &PushLimits::default(), DEMO_NOW).unwrap();
    gridlink_shared::protocol::check_page(&request.cursors, &response).unwrap();
    device.apply(&response);
    response
}

fn sync_all<B: Backend>(store: &B, device: &mut Device) -> Vec<SyncResponse> {
    let mut responses = vec![sync(store, device, Vec::new())];
    while responses.last().unwrap().more {
        responses.push(sync(store, device, Vec::new()));
    }
    responses
}

fn server_check<B: Backend>(place: &B::Place, repair: bool) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gridlink-server"));
    command.arg("check").args(B::cli_args(place));
    if repair {
        command.arg("--repair");
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    (out.status.code().unwrap_or(-1), stdout)
}

fn a_poisoned_store_is_found_repaired_and_every_phone_gets_a_loadable_copy<B: Backend>() {
    let (place, store) = B::fresh();
    store.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let data = demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let staff = |role: Role| data.staff_with_role(role).next().unwrap().clone();
    let worker = staff(Role::GridWorker);
    let mut phone = enroll(&store, &worker);
    sync_all(&store, &mut phone);
    let mut colleague_phone = enroll(&store, &worker);
    sync_all(&store, &mut colleague_phone);

    let id = a_household(&phone);
    let edit = phone.edit::<HouseholdFile>(id, |f| f.notes = "空巢老人，每周探访".into());
    let accepted = doc::parse_change(&edit.bytes).unwrap();
    assert_eq!(sync(&store, &mut phone, vec![edit]).acks[0].status, AckStatus::Accepted);
    let poison = craft::reencode(&accepted, |c| c.seq += 1);
    let poison_hash = doc::parse_change(&poison).unwrap().hash().to_string();
    store.store_poison(id, &poison, &poison_hash, &phone.enrolled.actor);
    assert!(check_document(&store.doc_bytes(id).unwrap()).is_err(), "the premise: a phone cannot load this document");

    // While poisoned, an honest push to it is refused cleanly and the server stays up.
    let honest = phone.edit::<HouseholdFile>(id, |f| f.phone = "13907110000".into());
    let response = sync(&store, &mut phone, vec![honest]);
    match &response.acks[0].status {
        AckStatus::Rejected { code, message } => {
            assert_eq!(*code, RejectCode::InvalidDocument);
            assert!(message.contains("damaged"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    let (code, report) = server_check::<B>(&place, false);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains(&format!("bad document {id}")), "{report}");

    let (code, report) = server_check::<B>(&place, true);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains(&format!("repaired document {id}")), "{report}");
    assert!(report.contains(&format!("quarantined change {poison_hash}")), "{report}");
    assert_eq!(store.quarantined(&poison_hash), 1, "the offending change is kept, not deleted");
    let (code, report) = server_check::<B>(&place, false);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("all sound"), "{report}");

    // A freshly enrolled supervisor loads the whole community, the repaired household too.
    let mut fresh = enroll(&store, &staff(Role::Supervisor));
    sync_all(&store, &mut fresh);
    let repaired: HouseholdFile = doc::read(&fresh.docs[&id]).unwrap();
    assert_eq!(repaired.notes, "空巢老人，每周探访", "the sound change survives the repair");

    // A phone that synced before the damage pulls placeholders for the quarantined change and
    // the repaired document whole; its log stays gapless (`check_page` in every sync).
    let responses = sync_all(&store, &mut colleague_phone);
    let grid = worker.scopes[0];
    assert!(matches!(grid, Scope::Grid(_)));
    let items: Vec<&PullItem> = responses.iter().flat_map(|r| &r.items).collect();
    assert!(items.iter().any(|i| matches!(i, PullItem::Echo { doc, .. } if *doc == id)), "a placeholder");
    assert!(responses.iter().any(|r| r.repairs.iter().any(|s| s.doc == id)), "the repaired copy");
    let copy: HouseholdFile = doc::read(&colleague_phone.docs[&id]).unwrap();
    assert_eq!(copy.notes, "空巢老人，每周探访");

    // And the household takes honest edits again, on the repaired copy.
    phone.docs.insert(id, doc::load(&store.doc_bytes(id).unwrap()).unwrap());
    let again = phone.edit::<HouseholdFile>(id, |f| f.phone = "13907110000".into());
    assert_eq!(sync(&store, &mut phone, vec![again]).acks[0].status, AckStatus::Accepted);
}

/// A lost index row (restored from a partial backup, deleted by hand): `check` names the
/// document, `--repair` re-derives delivery scopes and digests from the documents, and a new
/// phone receives the document again.
fn a_lost_delivery_row_is_found_and_re_derived_from_the_documents<B: Backend>() {
    let (place, store) = B::fresh();
    store.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let data = demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let worker = data.staff_with_role(Role::GridWorker).next().unwrap().clone();
    let mut phone = enroll(&store, &worker);
    sync_all(&store, &mut phone);
    let id = a_household(&phone);
    store.exec(&format!("DELETE FROM doc_scopes WHERE doc_id = '{id}'"));

    let (code, report) = server_check::<B>(&place, false);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains(&format!("document {id}: its delivery scopes or digest entry disagree")), "{report}");
    let (code, report) = server_check::<B>(&place, true);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("re-derived delivery scopes and digests"), "{report}");
    let (code, report) = server_check::<B>(&place, false);
    assert_eq!((code, report.contains("all sound")), (0, true), "{report}");

    let mut fresh = enroll(&store, &worker);
    sync_all(&store, &mut fresh);
    assert!(fresh.docs.contains_key(&id), "delivered again");
    assert_eq!(fresh.docs.len(), phone.docs.len());
}

stories!(
    a_poisoned_store_is_found_repaired_and_every_phone_gets_a_loadable_copy,
    a_lost_delivery_row_is_found_and_re_derived_from_the_documents,
);
