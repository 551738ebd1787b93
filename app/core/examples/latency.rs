//! Phone-side latencies at the scale of a real street: prints figures, asserts nothing.
//!
//! `cargo run --release -p gridlink-client --example latency`
//!
//! Generates the `street` demo (86 grids, ~25,000 households), fills one encrypted store per
//! role with the documents that role receives, and times the calls the screens make.

use std::time::Instant;

use gridlink_client::fixtures::{DEMO_NOW, DEMO_SEED, documents_for};
use gridlink_client::{CaseAction, CaseFilter, Client, HouseholdFilter, NewCase, NewVisit, Page};
use gridlink_shared::demo::{DemoSize, generate};
use gridlink_shared::{ActionKind, CaseKind, MustArriveKind, Role, Scope, VisitOutcome};

fn search(text: &str) -> HouseholdFilter {
    HouseholdFilter { search: Some(text.into()), ..Default::default() }
}

fn time<T>(label: &str, runs: usize, mut f: impl FnMut(usize) -> T) -> T {
    let started = Instant::now();
    let mut last = None;
    for i in 0..runs {
        last = Some(f(i));
    }
    let per = started.elapsed().as_secs_f64() * 1000.0 / runs as f64;
    println!("  {label:<40} {per:>9.2} ms{}", if runs > 1 { format!(" (mean of {runs})") } else { String::new() });
    last.expect("at least one run")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let data = generate(DemoSize::Street, DEMO_SEED, DEMO_NOW);
    println!(
        "street demo: {} households, {} cases, generated in {} ms",
        data.households.len(),
        data.cases.len(),
        started.elapsed().as_millis()
    );
    for role in [Role::GridWorker, Role::Supervisor] {
        // The supervisor of the whole street: the largest phone (every household and case).
        let staff = data
            .staff_with_role(role)
            .find(|s| role != Role::Supervisor || s.scopes.iter().any(|x| matches!(x, Scope::Street(_))))
            .expect("staff of the role")
            .clone();
        let principal = staff.principal();
        let docs = documents_for(&data, &principal);
        let dir = tempfile::tempdir()?;
        println!("{} {} ({} documents):", role.en(), staff.name, docs.len());
        let client = time("fill the store (as after a first sync)", 1, |_| {
            Client::open_with_documents(dir.path(), principal.clone(), data.roster.clone(), docs.clone())
        })?;
        let now = DEMO_NOW;
        let today = time("today()", 20, |_| client.today(now))?;
        println!(
            "    {} due visits, {} must-arrive, {} of my cases",
            today.due_visits.len(),
            today.must_arrive.len(),
            today.my_cases.len()
        );
        let all = time("households(all)", 20, |_| client.households(&HouseholdFilter::default(), now))?;
        time("households(search \"zs\")", 20, |_| {
            client.households(&HouseholdFilter { search: Some("zs".into()), ..Default::default() }, now)
        })?;
        time("households(due only)", 20, |_| {
            client.households(&HouseholdFilter { due_only: true, ..Default::default() }, now)
        })?;
        let page = Page::default();
        let client_ref = &client;
        let paged = |filter: HouseholdFilter| move |_| client_ref.households_page(&filter, page, now);
        let first = time("households_page(all, first 100)", 20, paged(HouseholdFilter::default()))?;
        println!("    {} of {}", first.rows.len(), first.total);
        let last = Page { offset: first.total.saturating_sub(100), limit: 100 };
        time("households_page(all, last 100)", 20, |_| client.households_page(&HouseholdFilter::default(), last, now))?;
        let found = time("households_page(search \"zs\")", 20, paged(search("zs")))?;
        println!("    {} of {}", found.rows.len(), found.total);
        let name = all[all.len() / 3].head.clone();
        time(&format!("households_page(search \"{name}\")"), 20, paged(search(&name)))?;
        let due =
            time("households_page(due only)", 20, paged(HouseholdFilter { due_only: true, ..Default::default() }))?;
        println!("    {} of {}", due.rows.len(), due.total);
        let tag = gridlink_shared::MustVisitTag::ALL[0];
        let tagged = time("households_page(tag)", 20, paged(HouseholdFilter { tag: Some(tag), ..Default::default() }))?;
        println!("    {} of {}", tagged.rows.len(), tagged.total);
        let building = Some(all[all.len() / 2].building_id);
        time("households_page(building)", 20, paged(HouseholdFilter { building, ..Default::default() }))?;
        for filter in [CaseFilter::All, CaseFilter::Open, CaseFilter::Overdue, CaseFilter::Mine, CaseFilter::Resolved] {
            let cases = time(&format!("cases_page({filter:?})"), 20, |_| client.cases_page(filter, page, now))?;
            println!("    {} of {}", cases.rows.len(), cases.total);
        }
        time("cases(all), every row", 5, |_| client.cases(CaseFilter::All, now))?;
        let target = all[all.len() / 2].id;
        time("household(id) detail", 20, |_| client.household(target, now))?;
        time("cases(open)", 20, |_| client.cases(CaseFilter::Open, now))?;
        if role == Role::GridWorker {
            time("record_visit (validate, commit, store)", 100, |i| {
                client.record_visit(
                    NewVisit {
                        household: all[i % all.len()].id,
                        outcome: VisitOutcome::Met,
                        notes: "上门走访，情况稳定".into(),
                        needs_found: vec![],
                        follow_up: None,
                        residents_present: vec![],
                        at: now,
                    },
                    now,
                )
            })?;
            let case = time("open_case", 1, |_| {
                client.open_case(
                    NewCase {
                        kind: CaseKind::MustArrive(MustArriveKind::Emergency),
                        household: Some(target),
                        building: None,
                        title: "老人在家摔倒".into(),
                        note: String::new(),
                        at: now,
                    },
                    now,
                )
            })?;
            time("act_on_case(accept)", 1, |_| {
                client.act_on_case(
                    CaseAction { case, action: ActionKind::Accept, note: String::new(), satisfaction: None, to: None },
                    now,
                )
            })?;
            time("export()", 1, |_| client.export())?;
        }
        let size = std::fs::metadata(dir.path().join("gridlink.db"))?.len()
            + std::fs::metadata(dir.path().join("gridlink.db-wal")).map(|m| m.len()).unwrap_or(0);
        println!("    store size {:.1} MiB", size as f64 / 1024.0 / 1024.0);
    }
    Ok(())
}
