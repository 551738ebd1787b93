//! What the change checks cost on the push path, against the work a push did before them, in
//! the same process: for one household file with a year of visits, the time to accept one
//! pushed visit (parse, apply on a copy, read back) with and without the checks added for
//! hostile phones (bounded byte read, change index, save-and-reload of the result).
//!
//! `cargo run --release -p gridlink-sync-server --example push_checks -- [VISITS] [ROUNDS]`

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use automerge::{ActorId, AutoCommit};
use gridlink_shared::change_bytes::{ChangeIndex, ChangeLimits, inspect_change};
use gridlink_shared::demo::{self, DemoSize};
use gridlink_shared::{HouseholdFile, Visit, VisitId, VisitOutcome, doc};

const NOW: i64 = 1_795_000_000_000;

fn visit(worker: &gridlink_shared::Staff, i: usize) -> Visit {
    Visit {
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
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let visits: usize = args.next().map(|v| v.parse()).transpose()?.unwrap_or(52);
    let rounds: usize = args.next().map(|v| v.parse()).transpose()?.unwrap_or(300);
    let data = demo::generate(DemoSize::Small, 7, NOW);
    let worker = data.staff_with_role(gridlink_shared::Role::GridWorker).next().context("a worker")?.clone();
    let mut file: HouseholdFile = data.households[0].clone();
    file.visits.clear();

    // The server's copy: created by the import, then a year of weekly visits from one phone.
    let mut server = doc::create(&file, ActorId::random(), NOW)?;
    let mut phone = server.fork().with_actor(ActorId::random());
    for i in 0..visits {
        let v = visit(&worker, i);
        file.visits.insert(v.id, v);
        doc::update(&mut phone, &file, "record visit", NOW + i as i64)?;
    }
    server.merge(&mut phone)?;
    let v = visit(&worker, visits);
    file.visits.insert(v.id, v);
    doc::update(&mut phone, &file, "record visit", NOW)?;
    let pushed = phone.get_last_local_change().context("a change")?.raw_bytes().to_vec();
    let saved = server.save();

    let before_checks = |stored: &AutoCommit| -> Result<()> {
        let change = doc::parse_change(&pushed)?;
        let mut candidate = stored.clone();
        candidate.apply_changes([change])?;
        doc::read_any(&candidate)?;
        Ok(())
    };
    let with_checks = |stored: &mut AutoCommit| -> Result<()> {
        let header = inspect_change(&pushed, &ChangeLimits::default())?;
        let index = ChangeIndex::of(stored);
        index.check(&header)?;
        doc::guarded("apply", || {
            let change = doc::parse_change(&pushed)?;
            let mut candidate = stored.clone();
            candidate.apply_changes([change])?;
            doc::read_any(&candidate)?;
            doc::load(&candidate.save())?;
            Ok(())
        })?;
        Ok(())
    };

    let mut stored = doc::load(&saved)?;
    let (mut base, mut checked, mut inspect_only) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        before_checks(&stored)?;
        base.push(t.elapsed());
        let t = Instant::now();
        with_checks(&mut stored)?;
        checked.push(t.elapsed());
        let t = Instant::now();
        inspect_change(&pushed, &ChangeLimits::default())?;
        inspect_only.push(t.elapsed());
    }
    let (base, checked, inspect_only) = (median(base), median(checked), median(inspect_only));
    println!(
        "household with {visits} visits ({} bytes saved), one pushed visit ({} bytes), median of {rounds}:",
        saved.len(),
        pushed.len()
    );
    println!("  before the checks (parse, apply on a copy, read)         {:>9.1} µs", base.as_secs_f64() * 1e6);
    println!("  with the checks (+ bounded read, index, save and reload) {:>9.1} µs", checked.as_secs_f64() * 1e6);
    println!(
        "    of which the bounded byte read                          {:>9.1} µs",
        inspect_only.as_secs_f64() * 1e6
    );
    println!("  ratio with / before: {:.2}x", checked.as_secs_f64() / base.as_secs_f64());
    Ok(())
}
