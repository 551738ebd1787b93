//! The supervisors' rows the server keeps beside each document: the same facts the shared
//! figure functions would take straight from the documents, updated in the same transaction
//! as a push, limited to the asked scopes, and rebuilt for a data directory that has none.

mod common;

use common::Harness;
use gridlink_shared::figures::Facts;
use gridlink_shared::protocol::AckStatus;
use gridlink_shared::{DocId, HouseholdFile, PolicyConfig, Role, Scope, Visit, VisitId, VisitOutcome, doc};
use gridlink_sync_server::SqliteStore;

fn sorted(mut facts: Facts) -> Facts {
    facts.households.sort_by_key(|h| h.id);
    facts.visits.sort_by_key(|v| v.id);
    facts.cases.sort_by_key(|c| c.id);
    facts
}

#[tokio::test]
async fn the_stored_rows_are_the_documents_facts_within_the_asked_scopes() {
    let h = Harness::new();
    let street = Scope::Street(h.demo.roster.streets[0].id);
    let expected = sorted(Facts::from_documents(&h.demo.households, &h.demo.cases, &PolicyConfig::default()));
    let stored = sorted(h.admin.facts(&[street]).unwrap());
    assert_eq!(stored.households.len(), h.demo.households.len());
    assert_eq!(stored, expected);

    // A grid sees its own rows only; overlapping scopes do not double a row.
    let worker = h.staff(Role::GridWorker);
    let grid = match worker.scopes[0] {
        Scope::Grid(g) => g,
        other => panic!("{other}"),
    };
    let grid_rows = h.admin.facts(&[Scope::Grid(grid)]).unwrap();
    assert!(!grid_rows.households.is_empty());
    assert!(grid_rows.households.iter().all(|x| x.placement.grid == grid));
    assert!(grid_rows.cases.iter().all(|x| x.placement.grid == grid));
    let both = h.admin.facts(&[Scope::Grid(grid), street]).unwrap();
    assert_eq!(both.households.len(), h.demo.households.len());

    // A visit pushed from a phone is in the rows as soon as it is acknowledged.
    let mut phone = h.enroll(&worker).await;
    h.sync_all(&mut phone).await;
    let id = grid_rows.households[0].id;
    let visit_id = VisitId::new();
    let change = phone.edit::<HouseholdFile>(DocId::from(id), |f| {
        f.visits.insert(
            visit_id,
            Visit {
                id: visit_id,
                visitor: worker.id,
                visitor_name: worker.name.clone(),
                at: gridlink_shared::time::now_millis(),
                recorded_at: gridlink_shared::time::now_millis(),
                outcome: VisitOutcome::Met,
                notes: "老人精神不错".into(),
                needs_found: Vec::new(),
                follow_up: None,
                residents_present: Vec::new(),
            },
        );
    });
    let generation = h.admin.facts_generation().unwrap();
    assert_eq!(h.sync(&mut phone, vec![change]).await.acks[0].status, AckStatus::Accepted);
    assert!(h.admin.facts_generation().unwrap() > generation, "a cache of the rows sees they changed");
    // What changed since then is that one household with all its visits, and it brings the
    // earlier rows up to date exactly.
    let changed = h.admin.facts_changed_since(&[Scope::Grid(grid)], generation).unwrap();
    assert_eq!(changed.households.iter().map(|x| x.id).collect::<Vec<_>>(), vec![id]);
    assert!(changed.cases.is_empty());
    assert!(changed.visits.iter().all(|v| v.household == id));
    assert_eq!(sorted(grid_rows.with_changes(changed)), sorted(h.admin.facts(&[Scope::Grid(grid)]).unwrap()));
    let after = h.admin.facts(&[Scope::Grid(grid)]).unwrap();
    let row = after.visits.iter().find(|v| v.id == visit_id).expect("the new visit's row");
    assert_eq!((row.household, row.visitor, row.outcome), (id, worker.id, VisitOutcome::Met));
    let file: HouseholdFile = doc::read(&h.server_doc(DocId::from(id)).unwrap()).unwrap();
    assert_eq!(after.visits.iter().filter(|v| v.household == id).count(), file.visits.len());
}

#[tokio::test]
async fn a_data_directory_without_rows_gets_them_when_opened() {
    let h = Harness::new();
    let street = Scope::Street(h.demo.roster.streets[0].id);
    let before = sorted(h.admin.facts(&[street]).unwrap());
    h.admin
        .read(|conn| {
            conn.execute_batch(
                "DELETE FROM household_facts; DELETE FROM visit_facts; DELETE FROM case_facts;
                 DELETE FROM meta WHERE key = 'facts_version';",
            )?;
            Ok(())
        })
        .unwrap();
    assert!(h.admin.facts(&[street]).unwrap().households.is_empty());
    let reopened = SqliteStore::open(h.dir.path()).unwrap();
    assert_eq!(sorted(reopened.facts(&[street]).unwrap()), before);
}
