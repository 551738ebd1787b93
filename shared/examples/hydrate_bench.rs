//! How long hydrating one household takes, through the prefetched view (`doc::read`) and
//! straight from the document (autosurgeon field by field), in the same process.
//!
//! `cargo run --release -p gridlink-shared --example hydrate_bench -- [VISITS] [ROUNDS]`

use std::time::{Duration, Instant};

use automerge::ActorId;
use gridlink_shared::demo::{self, DemoSize};
use gridlink_shared::{HouseholdFile, Visit, VisitId, VisitOutcome, doc};

const NOW: i64 = 1_795_000_000_000;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let visits: usize = args.next().map(|v| v.parse()).transpose()?.unwrap_or(52);
    let rounds: usize = args.next().map(|v| v.parse()).transpose()?.unwrap_or(300);
    let data = demo::generate(DemoSize::Small, 7, NOW);
    let worker = data.staff_with_role(gridlink_shared::Role::GridWorker).next().expect("a worker").clone();
    let mut file: HouseholdFile = data.households[0].clone();
    let mut automerge_doc = doc::create(&file, ActorId::random(), NOW)?;
    for i in 0..visits {
        let v = Visit {
            id: VisitId::new(),
            visitor: worker.id,
            visitor_name: worker.name.clone(),
            at: NOW + i as i64 * 60_000,
            recorded_at: NOW + i as i64 * 60_000,
            outcome: VisitOutcome::Met,
            notes: format!("第{i}次走访：老人身体状况良好，已提醒按时服药"),
            needs_found: Vec::new(),
            follow_up: None,
            residents_present: Vec::new(),
        };
        file.visits.insert(v.id, v);
        doc::update(&mut automerge_doc, &file, "visit", NOW + i as i64)?;
    }
    let loaded = doc::load(&automerge_doc.save())?;
    let (mut prefetched, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let started = Instant::now();
        let a: HouseholdFile = doc::read(&loaded)?;
        prefetched.push(started.elapsed());
        let started = Instant::now();
        let b: HouseholdFile = autosurgeon::hydrate(&loaded)?;
        direct.push(started.elapsed());
        assert_eq!(a, b);
    }
    let (p, d) = (median(prefetched), median(direct));
    println!(
        "household with {} visits: prefetched {:.0} µs, field by field {:.0} µs, ratio {:.2}x",
        file.visits.len(),
        p.as_secs_f64() * 1e6,
        d.as_secs_f64() * 1e6,
        p.as_secs_f64() / d.as_secs_f64()
    );
    Ok(())
}
