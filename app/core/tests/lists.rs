//! The list screens' reads against a real encrypted store: pages cover every row exactly once
//! and in order, totals are right for every filter and combination, search by Chinese name and
//! pinyin still works, and the rows are those the list gave when it read every row and
//! filtered in Rust (the reference below re-implements that older read over the same file).
//! An old-shaped store (schema 4, before the list columns) opens and lists the same.

use std::path::Path;

use gridlink_client::fixtures::{self, DEMO_NOW};
use gridlink_client::{
    CaseFilter, CaseRow, Client, HouseholdEdit, HouseholdFilter, HouseholdRow, NewVisit, Page, Paged, store,
};
use gridlink_shared::demo::{self, DemoData, DemoSize};
use gridlink_shared::policy::{self, DueState, PolicyConfig};
use gridlink_shared::time::{DAY_MS, Millis};
use gridlink_shared::{CaseStatus, HouseholdStatus, MustVisitTag, Role, Scope, VisitOutcome};

/// The supervisor of the small demo's whole community: 300 households in 3 grids, over a
/// hundred cases (the street itself is for the benchmarks: 25,000 households take minutes to
/// install in a debug build).
fn supervisor() -> (tempfile::TempDir, Client, DemoData) {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo::generate(DemoSize::Small, fixtures::DEMO_SEED, DEMO_NOW);
    let staff = demo
        .staff_with_role(Role::Supervisor)
        .find(|s| s.scopes.iter().any(|x| matches!(x, Scope::Community(_))))
        .expect("a community supervisor")
        .clone();
    let principal = staff.principal();
    let docs = fixtures::documents_for(&demo, &principal);
    let client = Client::open_with_documents(dir.path(), principal, demo.roster.clone(), docs).unwrap();
    (dir, client, demo)
}

fn worker() -> (tempfile::TempDir, Client, DemoData) {
    let dir = tempfile::tempdir().unwrap();
    let (client, demo) = fixtures::demo_client(dir.path(), Role::GridWorker, DEMO_NOW).unwrap();
    (dir, client, demo)
}

/// The household list as it was read before paging: every row in list order, the search,
/// building, tag and due filters applied in Rust, tags and due dates from `household_tags`.
fn households_read_in_rust(dir: &Path, filter: &HouseholdFilter, now: Millis) -> Vec<HouseholdRow> {
    let key = store::resolve_key(dir).unwrap();
    let conn = store::open_encrypted(&dir.join(store::DB_FILE), &key).unwrap();
    let config = PolicyConfig::default();
    let mut tags: std::collections::BTreeMap<String, Vec<(MustVisitTag, Option<chrono::NaiveDate>)>> =
        Default::default();
    let mut stmt = conn.prepare("SELECT household, tag, due_on FROM household_tags ORDER BY household, tag").unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?)))
        .unwrap();
    for row in rows {
        let (household, tag, due_on) = row.unwrap();
        tags.entry(household).or_default().push((tag.parse().unwrap(), due_on.map(|d| d.parse().unwrap())));
    }
    let query = filter.search.as_deref().map(gridlink_client::search::normalize_query).filter(|q| !q.is_empty());
    let mut stmt = conn
        .prepare(
            "SELECT id, building_id, building_name, grid_id, unit, room, address, head, phone, moved_out, search
             FROM households ORDER BY building_name, unit, CAST(room AS INTEGER), room, id",
        )
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut out = Vec::new();
    while let Some(r) = rows.next().unwrap() {
        let id: String = r.get(0).unwrap();
        let search_text: String = r.get(10).unwrap();
        if query.as_ref().is_some_and(|q| !search_text.contains(q.as_str())) {
            continue;
        }
        let building_id = r.get::<_, String>(1).unwrap().parse().unwrap();
        if filter.building.is_some_and(|b| b != building_id) {
            continue;
        }
        let own = tags.get(&id).cloned().unwrap_or_default();
        if filter.tag.is_some_and(|t| !own.iter().any(|(x, _)| *x == t)) {
            continue;
        }
        let moved_out: bool = r.get(9).unwrap();
        let next_due = if moved_out { None } else { own.iter().filter_map(|(_, d)| *d).min() };
        let next_due_state = next_due.map(|d| policy::due_state(d, now, &config));
        if filter.due_only && !matches!(next_due_state, Some(s) if !matches!(s, DueState::NotDue { .. })) {
            continue;
        }
        out.push(HouseholdRow {
            id: id.parse().unwrap(),
            building_id,
            building_name: r.get(2).unwrap(),
            grid_id: r.get::<_, String>(3).unwrap().parse().unwrap(),
            unit: r.get(4).unwrap(),
            room: r.get(5).unwrap(),
            address: r.get(6).unwrap(),
            head: r.get(7).unwrap(),
            phone: r.get(8).unwrap(),
            tags: own.iter().map(|(t, _)| *t).collect(),
            next_due,
            next_due_state,
            moved_out,
        });
    }
    out
}

/// Reads every page of `size` rows and checks each page's offset, total and `has_more`.
fn all_pages<T: Clone>(size: usize, mut read: impl FnMut(Page) -> Paged<T>) -> (Vec<T>, usize) {
    let mut page = Page::first(size);
    let mut rows = Vec::new();
    let mut total = None;
    loop {
        let got = read(page);
        assert_eq!(got.offset, page.offset);
        assert!(got.rows.len() <= size);
        assert_eq!(*total.get_or_insert(got.total), got.total, "the total is the same on every page");
        rows.extend(got.rows.iter().cloned());
        assert_eq!(got.has_more(), rows.len() < got.total);
        if !got.has_more() {
            // Past the end: nothing, and the same total.
            let after = read(page.next());
            assert!(after.rows.is_empty() && after.total == got.total && !after.has_more());
            return (rows, got.total);
        }
        assert_eq!(got.rows.len(), size, "only the last page is short");
        page = page.next();
    }
}

fn ids(rows: &[HouseholdRow]) -> Vec<String> {
    rows.iter().map(|r| r.id.to_string()).collect()
}

#[test]
fn household_pages_match_the_rust_side_read_for_every_filter() {
    let (dir, client, demo) = supervisor();
    let all = client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap();
    assert!(all.len() >= 250, "the community holds hundreds of households, got {}", all.len());
    let middle = &all[all.len() / 2];
    let (full_pinyin, initials) = gridlink_client::search::pinyin_forms(&middle.head);
    let building = Some(middle.building_id);
    let tagged = demo.households.iter().find(|h| !h.tags.is_empty()).expect("tagged households");
    let tag = *tagged.tags.keys().next().unwrap();
    let filters = [
        HouseholdFilter::default(),
        HouseholdFilter { due_only: true, ..Default::default() },
        HouseholdFilter { tag: Some(tag), ..Default::default() },
        HouseholdFilter { building, ..Default::default() },
        HouseholdFilter { search: Some(middle.head.clone()), ..Default::default() },
        HouseholdFilter { search: Some(initials.to_uppercase()), ..Default::default() },
        HouseholdFilter { search: Some(full_pinyin.clone()), ..Default::default() },
        HouseholdFilter { search: Some("zs".into()), ..Default::default() },
        HouseholdFilter { search: Some(format!(" {} ", middle.address)), ..Default::default() },
        HouseholdFilter { search: Some("  ".into()), ..Default::default() },
        // Combinations.
        HouseholdFilter { due_only: true, tag: Some(tag), ..Default::default() },
        HouseholdFilter { building, due_only: true, ..Default::default() },
        HouseholdFilter { building, search: Some(initials.clone()), ..Default::default() },
        HouseholdFilter {
            search: Some("zs".into()),
            due_only: true,
            tag: Some(MustVisitTag::EmptyNest),
            ..Default::default()
        },
        // Typed wildcards are plain characters.
        HouseholdFilter { search: Some("%".into()), ..Default::default() },
        HouseholdFilter { search: Some("_".into()), ..Default::default() },
    ];
    let mut due_somewhere = false;
    for now in [DEMO_NOW, DEMO_NOW + 40 * DAY_MS] {
        for filter in &filters {
            let expected = households_read_in_rust(dir.path(), filter, now);
            assert_eq!(client.households(filter, now).unwrap(), expected, "{filter:?}");
            let (paged, total) = all_pages(37, |page| client.households_page(filter, page, now).unwrap());
            assert_eq!(total, expected.len(), "total of {filter:?}");
            assert_eq!(ids(&paged), ids(&expected), "pages of {filter:?}");
            assert_eq!(paged, expected);
            due_somewhere |= filter.due_only && total > 0;
        }
    }
    assert!(due_somewhere, "the demo has households due");
    // The searches find the household they were made from.
    for search in [middle.head.clone(), initials.to_uppercase(), full_pinyin] {
        let filter = HouseholdFilter { search: Some(search.clone()), ..Default::default() };
        let found = client.households_page(&filter, Page::default(), DEMO_NOW).unwrap();
        assert!(found.rows.iter().any(|h| h.id == middle.id), "{search} finds {}", middle.head);
    }
}

#[test]
fn odd_pages_are_answered_not_refused() {
    let (_dir, client, _demo) = worker();
    let filter = HouseholdFilter::default();
    let total = client.households(&filter, DEMO_NOW).unwrap().len();
    let huge = client.households_page(&filter, Page { offset: 0, limit: usize::MAX }, DEMO_NOW).unwrap();
    assert_eq!((huge.rows.len(), huge.total), (total, total));
    let beyond = client.households_page(&filter, Page { offset: usize::MAX, limit: usize::MAX }, DEMO_NOW).unwrap();
    assert!(beyond.rows.is_empty() && beyond.total == total && !beyond.has_more());
    let none = client.households_page(&filter, Page::first(0), DEMO_NOW).unwrap();
    assert!(none.rows.is_empty() && none.has_more());
    let searched = HouseholdFilter { search: Some("zs".into()), ..Default::default() };
    let beyond = client.households_page(&searched, Page { offset: usize::MAX, limit: 10 }, DEMO_NOW).unwrap();
    assert!(beyond.rows.is_empty());
    let cases = client.cases_page(CaseFilter::All, Page { offset: usize::MAX - 1, limit: usize::MAX }, DEMO_NOW);
    assert!(cases.unwrap().rows.is_empty());
}

#[test]
fn case_pages_cover_each_filter_in_deadline_order() {
    let (_dir, client, _demo) = supervisor();
    let me = client.identity().unwrap().user;
    let every = client.cases(CaseFilter::All, DEMO_NOW).unwrap();
    assert!(every.len() >= 100, "the community has over a hundred cases, got {}", every.len());
    let open = |c: &CaseRow| !matches!(c.status, CaseStatus::Resolved | CaseStatus::Closed);
    let expected = |filter: CaseFilter| -> Vec<CaseRow> {
        every
            .iter()
            .filter(|c| match filter {
                CaseFilter::All => true,
                CaseFilter::Open => open(c),
                CaseFilter::Overdue => open(c) && c.deadline < DEMO_NOW,
                CaseFilter::Mine => open(c) && c.responsible == me,
                CaseFilter::Resolved => c.status == CaseStatus::Resolved,
            })
            .cloned()
            .collect()
    };
    assert!(every.windows(2).all(|w| (w[0].deadline, w[0].id.to_string()) <= (w[1].deadline, w[1].id.to_string())));
    for filter in [CaseFilter::All, CaseFilter::Open, CaseFilter::Overdue, CaseFilter::Mine, CaseFilter::Resolved] {
        let want = expected(filter);
        assert_eq!(client.cases(filter, DEMO_NOW).unwrap(), want, "{filter:?}");
        let (paged, total) = all_pages(17, |page| client.cases_page(filter, page, DEMO_NOW).unwrap());
        assert_eq!(total, want.len(), "total of {filter:?}");
        assert_eq!(paged, want, "pages of {filter:?}");
    }
    assert!(!expected(CaseFilter::Resolved).is_empty() && !expected(CaseFilter::Overdue).is_empty());
}

#[test]
fn writes_move_households_in_and_out_of_the_due_list() {
    let (_dir, client, _demo) = worker();
    let due = HouseholdFilter { due_only: true, ..Default::default() };
    let before = client.households_page(&due, Page::default(), DEMO_NOW).unwrap();
    assert!(before.total >= 2, "the grid has households due, got {}", before.total);
    let visited = before.rows[0].id;
    client
        .record_visit(
            NewVisit {
                household: visited,
                outcome: VisitOutcome::Met,
                notes: "入户走访：老人身体硬朗，家中用电安全".into(),
                needs_found: Vec::new(),
                follow_up: None,
                residents_present: Vec::new(),
                at: DEMO_NOW - 3_600_000,
            },
            DEMO_NOW,
        )
        .unwrap();
    let moved = before.rows[1].id;
    let edit = HouseholdEdit { status: Some(HouseholdStatus::MovedOut), ..Default::default() };
    client.edit_household(moved, edit, DEMO_NOW).unwrap();
    let after = client.households_page(&due, Page::default(), DEMO_NOW).unwrap();
    assert!(!after.rows.iter().any(|h| h.id == visited || h.id == moved));
    assert_eq!(after.total, before.total - 2);
    let row = client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap().into_iter().find(|h| h.id == moved);
    let row = row.expect("a moved-out household stays listed");
    assert!(row.moved_out && row.next_due.is_none() && row.next_due_state.is_none());
    // A new tag shows on the row and in the tag filter at once.
    let new_tag = *MustVisitTag::ALL.iter().find(|t| !before.rows[0].tags.contains(t)).expect("a tag it lacks");
    client.set_tag(visited, new_tag, true, None, DEMO_NOW).unwrap();
    let tagged = HouseholdFilter { tag: Some(new_tag), ..Default::default() };
    let page = client.households(&tagged, DEMO_NOW).unwrap();
    let row = page.iter().find(|h| h.id == visited).expect("the newly tagged household");
    assert!(row.tags.contains(&new_tag));
}

#[test]
fn an_old_shaped_store_opens_and_lists_as_before() {
    let (dir, client, _demo) = worker();
    let later = DEMO_NOW + 20 * DAY_MS;
    let filters = [
        HouseholdFilter::default(),
        HouseholdFilter { due_only: true, ..Default::default() },
        HouseholdFilter { tag: Some(MustVisitTag::EmptyNest), ..Default::default() },
        HouseholdFilter { search: Some("zs".into()), ..Default::default() },
    ];
    let lists: Vec<Vec<HouseholdRow>> = filters.iter().map(|f| client.households(f, later).unwrap()).collect();
    let cases = client.cases(CaseFilter::All, later).unwrap();
    let today = client.today(later).unwrap();
    assert!(lists[1].iter().any(|h| !h.tags.is_empty()), "some household is due");
    drop(client);

    // Back to schema 4 as a phone from before the list columns has it.
    let key = store::resolve_key(dir.path()).unwrap();
    let path = dir.path().join(store::DB_FILE);
    {
        let conn = store::open_encrypted(&path, &key).unwrap();
        conn.execute_batch(
            "DROP INDEX households_order; DROP INDEX households_next_due; DROP INDEX household_tags_tag;
             DROP INDEX households_building; CREATE INDEX households_building ON households(building_id);
             DROP INDEX cases_open_deadline; CREATE INDEX cases_open_deadline ON cases(is_open, completion_deadline);
             DROP INDEX cases_responsible; CREATE INDEX cases_responsible ON cases(responsible, is_open);
             DROP INDEX cases_deadline; DROP INDEX cases_status;
             ALTER TABLE households DROP COLUMN next_due; ALTER TABLE households DROP COLUMN tags;
             PRAGMA user_version = 4;",
        )
        .unwrap();
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('households')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert!(!columns.iter().any(|c| c == "next_due" || c == "tags"));
    }

    let reopened = Client::open(dir.path()).unwrap();
    for (filter, list) in filters.iter().zip(&lists) {
        assert_eq!(&reopened.households(filter, later).unwrap(), list, "{filter:?}");
        let page = reopened.households_page(filter, Page::first(10), later).unwrap();
        assert_eq!((page.total, &page.rows[..]), (list.len(), &list[..list.len().min(10)]));
    }
    assert_eq!(reopened.cases(CaseFilter::All, later).unwrap(), cases);
    assert_eq!(reopened.today(later).unwrap(), today);
    drop(reopened);
    let conn = store::open_encrypted(&path, &key).unwrap();
    let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).unwrap() as usize;
    assert_eq!(version, store::MIGRATIONS.len());
}
