//! `doc::read` hydrates through [`Prefetched`]: it must read exactly what autosurgeon reads
//! from the document itself, on every demo document and on documents with concurrent edits
//! (where a key has several values and one wins).

use automerge::ActorId;
use gridlink_shared::demo::{self, DemoSize};
use gridlink_shared::{AnyDoc, CaseFile, HouseholdFile, Visit, VisitId, VisitOutcome, doc};

const NOW: i64 = 1_795_000_000_000;

/// What autosurgeon reads straight from the document, field by field.
fn read_directly(automerge_doc: &automerge::AutoCommit) -> AnyDoc {
    match doc::doc_type_of(automerge_doc).unwrap() {
        gridlink_shared::DocType::Household => AnyDoc::Household(autosurgeon::hydrate(automerge_doc).unwrap()),
        gridlink_shared::DocType::Case => AnyDoc::Case(autosurgeon::hydrate(automerge_doc).unwrap()),
        gridlink_shared::DocType::Activity => AnyDoc::Activity(autosurgeon::hydrate(automerge_doc).unwrap()),
    }
}

#[test]
fn every_demo_document_reads_the_same_through_the_prefetched_view() {
    let data = demo::generate(DemoSize::Small, 20261130, NOW);
    let mut checked = 0;
    for household in &data.households {
        let automerge_doc = doc::create(household, ActorId::random(), NOW).unwrap();
        assert_eq!(doc::read_any(&automerge_doc).unwrap(), read_directly(&automerge_doc));
        assert_eq!(&doc::read::<HouseholdFile>(&automerge_doc).unwrap(), household);
        checked += 1;
    }
    for case in &data.cases {
        let automerge_doc = doc::create(case, ActorId::random(), NOW).unwrap();
        assert_eq!(doc::read_any(&automerge_doc).unwrap(), read_directly(&automerge_doc));
        assert_eq!(&doc::read::<CaseFile>(&automerge_doc).unwrap(), case);
        checked += 1;
    }
    assert!(checked > 300, "only {checked} documents");
}

#[test]
fn concurrent_edits_read_the_winning_value_as_the_document_does() {
    let data = demo::generate(DemoSize::Small, 7, NOW);
    let worker = data.staff_with_role(gridlink_shared::Role::GridWorker).next().unwrap().clone();
    let original = data.households.iter().find(|h| !h.residents.is_empty()).unwrap().clone();
    let mut server = doc::create(&original, ActorId::random(), NOW).unwrap();
    let mut phone_a = server.fork().with_actor(ActorId::random());
    let mut phone_b = server.fork().with_actor(ActorId::random());

    // Both phones change the same fields and add a visit each, offline.
    let mut a: HouseholdFile = doc::read(&phone_a).unwrap();
    a.phone = "13800138000".into();
    a.notes = "独居老人，子女在外地工作".into();
    let visit = |notes: &str, at: i64| Visit {
        id: VisitId::new(),
        visitor: worker.id,
        visitor_name: worker.name.clone(),
        at,
        recorded_at: at,
        outcome: VisitOutcome::Met,
        notes: notes.into(),
        needs_found: Vec::new(),
        follow_up: None,
        residents_present: Vec::new(),
    };
    let va = visit("上门了解用药情况", NOW + 1);
    a.visits.insert(va.id, va);
    doc::update(&mut phone_a, &a, "edit", NOW + 1).unwrap();

    let mut b: HouseholdFile = doc::read(&phone_b).unwrap();
    b.phone = "13912345678".into();
    b.head = "王秀英".into();
    let vb = visit("协助办理高龄津贴", NOW + 2);
    b.visits.insert(vb.id, vb);
    doc::update(&mut phone_b, &b, "edit", NOW + 2).unwrap();

    server.merge(&mut phone_a).unwrap();
    server.merge(&mut phone_b).unwrap();
    let conflicts = automerge::ReadDoc::get_all(&server, automerge::ROOT, "phone").unwrap();
    assert_eq!(conflicts.len(), 2, "the phone number is in conflict");

    let merged = doc::read_any(&server).unwrap();
    assert_eq!(merged, read_directly(&server));
    let AnyDoc::Household(merged) = merged else { panic!("a household") };
    assert_eq!(merged.visits.len(), original.visits.len() + 2);
    assert_eq!(merged.head, "王秀英");
    assert_eq!(merged.notes, "独居老人，子女在外地工作");
    // And through a save and load, as a phone holds it.
    let loaded = doc::load(&server.save()).unwrap();
    assert_eq!(doc::read_any(&loaded).unwrap(), read_directly(&loaded));
}
