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

    // Writing the file back over the conflict: the prefetched view must not skip a put whose
    // value is already the winner while another value is in conflict with it.
    let mut viewed = server.fork().with_actor(ActorId::random());
    let mut direct = server.fork().with_actor(ActorId::random());
    doc::update(&mut viewed, &merged, "settle", NOW + 3).unwrap();
    update_directly(&mut direct, &merged, NOW + 3);
    let values = |d: &automerge::AutoCommit| automerge::ReadDoc::get_all(d, automerge::ROOT, "phone").unwrap().len();
    assert_eq!(values(&viewed), values(&direct));
    let ops = |d: &mut automerge::AutoCommit| d.get_last_local_change().map(|c| c.len());
    assert_eq!(ops(&mut viewed), ops(&mut direct));
}

/// Writes `file` over `automerge_doc` with autosurgeon straight on the document, as
/// `doc::update` did before it reconciled through the prefetched view.
fn update_directly(automerge_doc: &mut automerge::AutoCommit, file: &HouseholdFile, at: i64) {
    autosurgeon::reconcile(automerge_doc, file).unwrap();
    automerge_doc.commit_with(automerge::transaction::CommitOptions::default().with_time(at));
}

#[test]
fn edits_reconcile_to_the_same_operations_through_the_prefetched_view() {
    let data = demo::generate(DemoSize::Small, 11, NOW);
    let worker = data.staff_with_role(gridlink_shared::Role::GridWorker).next().unwrap().clone();
    let mut file = data.households.iter().find(|h| h.residents.len() >= 2 && !h.visits.is_empty()).unwrap().clone();
    let mut base = doc::create(&file, ActorId::random(), NOW).unwrap();
    let mut viewed = base.fork().with_actor(ActorId::random());
    let mut direct = base.fork().with_actor(ActorId::random());

    type Edit = Box<dyn Fn(&mut HouseholdFile)>;
    let visitor = worker.clone();
    let edits: Vec<(&str, Edit)> = vec![
        (
            "add a visit",
            Box::new(move |f| {
                let v = Visit {
                    id: VisitId::new(),
                    visitor: visitor.id,
                    visitor_name: visitor.name.clone(),
                    at: NOW + 10,
                    recorded_at: NOW + 10,
                    outcome: VisitOutcome::NotHome,
                    notes: "敲门无人应答，留了联系卡".into(),
                    needs_found: Vec::new(),
                    follow_up: None,
                    residents_present: Vec::new(),
                };
                f.visits.insert(v.id, v);
            }),
        ),
        (
            "change the phone and notes",
            Box::new(|f| {
                f.phone = "13600001111".into();
                f.notes = "老人耳背，敲门需用力".into();
            }),
        ),
        (
            "remove a resident",
            Box::new(|f| {
                let first = *f.residents.keys().next().unwrap();
                f.residents.remove(&first);
            }),
        ),
        (
            "drop a visit",
            Box::new(|f| {
                let first = *f.visits.keys().next().unwrap();
                f.visits.remove(&first);
            }),
        ),
        ("nothing", Box::new(|_| {})),
    ];
    for (i, (what, edit)) in edits.iter().enumerate() {
        edit(&mut file);
        let at = NOW + 100 + i as i64;
        let hash = doc::update(&mut viewed, &file, what, at).unwrap();
        update_directly(&mut direct, &file, at);
        assert_eq!(doc::read::<HouseholdFile>(&viewed).unwrap(), file, "{what}");
        assert_eq!(doc::read::<HouseholdFile>(&direct).unwrap(), file, "{what}");
        let ops = |d: &mut automerge::AutoCommit| d.get_last_local_change().map(|c| c.len());
        match hash {
            // The same operations as autosurgeon writes straight on the document.
            Some(_) => assert_eq!(ops(&mut viewed), ops(&mut direct), "{what}"),
            None => assert_eq!(*what, "nothing", "only an empty edit commits nothing"),
        }
    }
    // Two phones that made the same edits, one each way, merge into the same state.
    let mut merged = viewed.fork();
    merged.merge(&mut direct).unwrap();
    assert_eq!(doc::read::<HouseholdFile>(&merged).unwrap(), file);
}
