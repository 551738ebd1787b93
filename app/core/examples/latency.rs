//! Phone-side latencies at the scale of a real street: prints figures, asserts nothing.
//!
//! `cargo run --release -p gridlink-client --example latency`
//!
//! Generates the `street` demo (86 grids, ~25,000 households), fills one encrypted store per
//! role with the documents that role receives, and times the calls the screens make.

use std::time::Instant;

use gridlink_client::fixtures::{DEMO_NOW, DEMO_SEED, documents_for};
use gridlink_client::{CaseAction, CaseFilter, Client, HouseholdFilter, NewCase, NewVisit};
use gridlink_shared::demo::{DemoSize, generate};
use gridlink_shared::{ActionKind, CaseKind, MustArriveKind, Role, VisitOutcome};

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
        let staff = data.staff_with_role(role).next().expect("staff of the role").clone();
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
