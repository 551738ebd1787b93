//! The supervisor's figures on the phone against a real encrypted SQLite store: they must be
//! the console's figures, i.e. `gridlink_shared::figures` over the same documents, and the
//! per-document fact cache must follow every write and survive reopening the store.

use gridlink_client::figures::{default_group_by, grouping_for};
use gridlink_client::fixtures::{self, DEMO_NOW};
use gridlink_client::{CaseAction, Client};
use gridlink_shared::demo::DemoData;
use gridlink_shared::figures::{self, CaseFigure, Facts, HouseholdFigure, Period};
use gridlink_shared::policy::PolicyConfig;
use gridlink_shared::{ActionKind, AnyDoc, CaseStatus, Principal, Role};

fn supervisor() -> (tempfile::TempDir, Client, DemoData, Principal) {
    let dir = tempfile::tempdir().unwrap();
    let (client, demo) = fixtures::demo_client(dir.path(), Role::Supervisor, DEMO_NOW).unwrap();
    let staff = demo.staff_with_role(Role::Supervisor).next().unwrap();
    let principal = staff.principal();
    (dir, client, demo, principal)
}

/// The fact rows of the documents the server would send this principal, built straight from
/// the documents (no store, no cache): what the server's console computes over.
fn facts_from_documents(demo: &DemoData, principal: &Principal) -> Facts {
    let (mut households, mut cases) = (Vec::new(), Vec::new());
    for doc in fixtures::documents_for(demo, principal) {
        match doc {
            AnyDoc::Household(h) => households.push(h),
            AnyDoc::Case(c) => cases.push(c),
            AnyDoc::Activity(_) => {}
        }
    }
    Facts::from_documents(&households, &cases, &PolicyConfig::default())
}

#[test]
fn the_phone_figures_are_the_shared_figures_over_the_same_documents() {
    let (_dir, client, demo, principal) = supervisor();
    let expected_facts = facts_from_documents(&demo, &principal);
    let grouping = grouping_for(&demo.roster, default_group_by(&principal.scopes), &principal.scopes);
    for period in [Period::this_month(DEMO_NOW), Period::this_week(DEMO_NOW)] {
        let home = client.supervisor_home(Some(period), DEMO_NOW).unwrap();
        let expected = figures::dashboard(&expected_facts, period, DEMO_NOW, &PolicyConfig::default(), &grouping);
        assert_eq!(home.dashboard, expected, "the phone's dashboard differs from the shared figures");
    }
    let home = client.supervisor_home(None, DEMO_NOW).unwrap();
    let total = &home.dashboard.coverage.total;
    // The demo is a real street: the figures are not trivially empty.
    assert!(total.households_tagged > 10, "tagged households: {}", total.households_tagged);
    assert!(home.dashboard.cases.total.all.opened > 0);
    assert!(!home.dashboard.cases.groups.is_empty(), "a street supervisor sees its communities");

    // The lists are the figures' own drill-downs.
    assert_eq!(home.overdue_households.len(), total.households_overdue);
    let expected_overdue = figures::coverage_rows(
        &expected_facts.households,
        &expected_facts.visits,
        HouseholdFigure::HouseholdsOverdue,
        None,
        DEMO_NOW,
        &PolicyConfig::default(),
        &grouping,
    );
    let ids: Vec<_> = home.overdue_households.iter().map(|r| r.household).collect();
    assert_eq!(ids, expected_overdue.iter().map(|r| r.household.id).collect::<Vec<_>>());
    assert!(home.overdue_households.iter().all(|r| !r.head.is_empty() && !r.address.is_empty()));
    let all_time = Period { from: i64::MIN, to: i64::MAX };
    let expected_cases =
        figures::case_rows(&expected_facts.cases, CaseFigure::OpenOverdue, None, None, all_time, DEMO_NOW, &grouping);
    assert_eq!(home.overdue_cases.iter().collect::<Vec<_>>(), expected_cases);
    let resolved = expected_facts.cases.iter().filter(|c| c.status == CaseStatus::Resolved).count();
    assert_eq!(home.to_verify.len(), resolved);
    assert!(home.to_verify.iter().all(|c| c.status == CaseStatus::Resolved));
}

#[test]
fn the_fact_cache_follows_a_close_and_a_reopen_and_survives_reopening_the_store() {
    let (dir, client, demo, principal) = supervisor();
    let documents = fixtures::documents_for(&demo, &principal).len();
    let first = client.supervisor_home(None, DEMO_NOW).unwrap();
    assert_eq!(first.refresh.rehydrated, 0, "the store wrote each document's rows when it saved it");
    assert_eq!(first.refresh.cached, documents);

    // 核实办结: the supervisor closes a resolved case with the resident's satisfaction.
    let case = first.to_verify.first().expect("the demo has resolved cases waiting to be verified").id;
    let close = CaseAction {
        case,
        action: ActionKind::Close,
        note: "电话回访居民，问题已解决".to_string(),
        satisfaction: Some(5),
        to: None,
    };
    client.act_on_case(close, DEMO_NOW).unwrap();
    let closed = client.supervisor_home(None, DEMO_NOW).unwrap();
    assert_eq!(closed.refresh.rehydrated, 0, "the close rewrote the case's rows as it saved it");
    assert!(closed.to_verify.iter().all(|c| c.id != case));
    let (facts, _) = client.facts().unwrap();
    let row = facts.cases.iter().find(|c| c.id == case).unwrap();
    assert_eq!((row.status, row.satisfaction), (CaseStatus::Closed, Some(5)));

    // Reopened: open again, counted as reopened, and no longer completed.
    let reopen = CaseAction {
        case,
        action: ActionKind::Reopen,
        note: "居民反映问题复发".to_string(),
        satisfaction: None,
        to: None,
    };
    client.act_on_case(reopen, DEMO_NOW + 60_000).unwrap();
    let (facts, refresh) = client.facts().unwrap();
    assert_eq!(refresh.rehydrated, 0);
    let row = facts.cases.iter().find(|c| c.id == case).unwrap();
    assert_eq!(row.status, CaseStatus::Accepted);
    assert_eq!(row.reopened, 1);
    let reopened = client.supervisor_home(None, DEMO_NOW + 60_000).unwrap();

    // The cache is in the SQLite file: a new handle on the directory reads it as it is.
    drop(client);
    let again = Client::open(dir.path()).unwrap();
    let home = again.supervisor_home(None, DEMO_NOW + 60_000).unwrap();
    assert_eq!(home.refresh.rehydrated, 0);
    assert_eq!(home.dashboard, reopened.dashboard);
}

/// Opens the store's SQLite file directly, as an older app version (or a damaged cache) would
/// leave it.
fn raw_store(dir: &std::path::Path) -> rusqlite::Connection {
    let key = gridlink_client::keys::resolve_key(dir).unwrap();
    gridlink_client::store::open_encrypted(&dir.join(gridlink_client::store::DB_FILE), &key).unwrap()
}

#[test]
fn a_store_without_the_cache_or_with_a_stale_row_is_brought_up_to_date_on_read() {
    let (dir, client, demo, principal) = supervisor();
    let documents = fixtures::documents_for(&demo, &principal).len();
    let before = client.supervisor_home(None, DEMO_NOW).unwrap();
    drop(client);

    // A store from before the cache: the first read hydrates every document once.
    raw_store(dir.path()).execute_batch("DROP TABLE doc_facts").unwrap();
    let client = Client::open(dir.path()).unwrap();
    let rebuilt = client.supervisor_home(None, DEMO_NOW).unwrap();
    assert_eq!(rebuilt.refresh.rehydrated, documents);
    assert_eq!(rebuilt.dashboard, before.dashboard);
    drop(client);

    // A row whose heads no longer match its document (written by another path, or garbage)
    // is never trusted: that one document is hydrated again.
    let case = before.to_verify[0].id.to_string();
    raw_store(dir.path())
        .execute("UPDATE doc_facts SET heads = '[]', facts = 'not a fact row' WHERE doc = ?1", [&case])
        .unwrap();
    let client = Client::open(dir.path()).unwrap();
    let repaired = client.supervisor_home(None, DEMO_NOW).unwrap();
    assert_eq!(repaired.refresh.rehydrated, 1);
    assert_eq!(repaired.dashboard, before.dashboard);
}

/// The cost at street scale (~40,000 documents), measured in release builds:
/// `cargo test --release -p gridlink-client --test supervisor_figures -- --ignored --nocapture`.
/// The first read hydrates every document once to fill the cache; later reads only parse the
/// cached rows and compute.
#[test]
#[ignore = "street-scale timing: slow in debug builds"]
fn street_scale_cost_of_the_supervisor_home() {
    use gridlink_shared::demo::{self, DemoSize};
    use std::time::Instant;
    let data = demo::generate(DemoSize::Street, fixtures::DEMO_SEED, DEMO_NOW);
    let principal = data.staff_with_role(Role::Supervisor).next().unwrap().principal();
    let docs = fixtures::documents_for(&data, &principal);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let client = Client::open_with_documents(dir.path(), principal, data.roster.clone(), docs.clone()).unwrap();
    eprintln!("installed {} documents in {:?}", docs.len(), started.elapsed());
    let started = Instant::now();
    let warm = client.supervisor_home(None, DEMO_NOW).unwrap();
    let warm_time = started.elapsed();
    let started = Instant::now();
    let (facts, _) = client.facts().unwrap();
    eprintln!("of which reading the {} cached rows: {:?}", docs.len(), started.elapsed());
    let activities = docs.iter().filter(|d| matches!(d, AnyDoc::Activity(_))).count();
    assert_eq!(facts.households.len() + facts.cases.len() + activities, docs.len());
    drop(client);
    raw_store(dir.path()).execute_batch("DROP TABLE doc_facts").unwrap();
    let client = Client::open(dir.path()).unwrap();
    let started = Instant::now();
    let cold = client.supervisor_home(None, DEMO_NOW).unwrap();
    let cold_time = started.elapsed();
    eprintln!("with the cache written at save: {warm_time:?}; filling it from nothing: {cold_time:?}");
    assert_eq!(cold.refresh.rehydrated, docs.len());
    assert_eq!(warm.refresh.rehydrated, 0);
    assert_eq!(warm.dashboard, cold.dashboard);
    assert!(warm_time < cold_time, "the cache must make later reads cheaper");
}
