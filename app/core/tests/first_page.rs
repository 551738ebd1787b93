//! A first sync's page of whole documents: they are decoded ahead on worker threads and only
//! their rows written in the transaction (`sync.rs`, `Predecoded`). What the phone then shows
//! must be exactly what the ordinary save path gives for the same documents, and a document
//! that does not decode is set aside alone while the rest of the page applies.

use std::collections::BTreeMap;

use gridlink_client::{CaseFilter, Client, HouseholdFilter, fixtures, sync::apply_page};
use gridlink_shared::automerge::ActorId;
use gridlink_shared::protocol::{Cursor, PROTOCOL_VERSION, PullItem, SyncResponse};
use gridlink_shared::{AnyDoc, DocId, DocType, HouseholdId, Role, demo, doc};

const NOW: i64 = fixtures::DEMO_NOW;

#[test]
fn a_page_of_snapshots_shows_what_the_ordinary_save_path_shows_and_a_bad_one_is_set_aside() {
    let data = demo::generate(demo::DemoSize::Small, fixtures::DEMO_SEED, NOW);
    let worker = data.staff_with_role(Role::GridWorker).next().unwrap().clone();
    let principal = worker.principal();
    let scope = principal.scopes[0];
    let docs = fixtures::documents_for(&data, &principal);
    assert!(docs.len() > 40, "a grid's worth of documents");

    // The reference: the same documents installed through the ordinary save path.
    let reference_dir = tempfile::tempdir().unwrap();
    let reference =
        Client::open_with_documents(reference_dir.path(), principal.clone(), data.roster.clone(), docs.clone())
            .unwrap();

    // A fresh phone gets them as one page of snapshots, with one that is not a document.
    let server = ActorId::random();
    let mut items: Vec<PullItem> = docs
        .iter()
        .map(|any| {
            let mut created = match any {
                AnyDoc::Household(h) => doc::create(h, server.clone(), h.created_at),
                AnyDoc::Case(c) => doc::create(c, server.clone(), c.reported_at),
                AnyDoc::Activity(a) => doc::create(a, server.clone(), a.recorded_at),
            }
            .unwrap();
            PullItem::Snapshot { scope, doc: any.doc_id(), doc_type: any.doc_type(), bytes: created.save() }
        })
        .collect();
    let garbage: DocId = HouseholdId::new().into();
    items.insert(
        items.len() / 2,
        PullItem::Snapshot { scope, doc: garbage, doc_type: DocType::Household, bytes: b"not automerge".to_vec() },
    );
    let page = SyncResponse {
        protocol: PROTOCOL_VERSION,
        server_time: NOW,
        acks: vec![],
        items,
        cursors: BTreeMap::from([(scope, Cursor::Seq { seq: docs.len() as u64 + 1 })]),
        more: false,
        scopes_added: vec![scope],
        scopes_removed: vec![],
        repairs: vec![],
        reference: None,
        integrity: Default::default(),
        compact_acks: None,
    };
    let phone_dir = tempfile::tempdir().unwrap();
    let phone = Client::open_with_documents(phone_dir.path(), principal, data.roster.clone(), Vec::new()).unwrap();
    let report = apply_page(&phone, &page).unwrap();
    assert_eq!(report.pulled_snapshots, docs.len());
    assert_eq!(report.quarantined, 1);
    assert!(phone.quarantined().unwrap().iter().any(|q| q.doc == garbage));

    let all = HouseholdFilter::default();
    assert_eq!(phone.households(&all, NOW).unwrap(), reference.households(&all, NOW).unwrap());
    assert_eq!(phone.cases(CaseFilter::All, NOW).unwrap(), reference.cases(CaseFilter::All, NOW).unwrap());
    assert_eq!(phone.today(NOW).unwrap(), reference.today(NOW).unwrap());
    let first = phone.households(&all, NOW).unwrap()[0].id;
    assert_eq!(phone.household(first, NOW).unwrap(), reference.household(first, NOW).unwrap());
}
