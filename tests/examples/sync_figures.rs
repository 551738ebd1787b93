//! Sync figures over real HTTP on 127.0.0.1: bytes and round trips of a first sync, of
//! pushing a day's and a month's work, and of a supervisor's first sync. Prints, asserts
//! nothing.
//!
//! `cargo run --release -p gridlink-tests --example sync_figures [small|street]`

use std::time::Instant;

use gridlink_client::{HouseholdFilter, NewVisit, SyncReport};
use gridlink_shared::VisitOutcome;
use gridlink_shared::time::{DAY_MS, now_millis};
use gridlink_tests::{Server, enrolled};

fn line(what: &str, r: &SyncReport, ms: u128) {
    println!(
        "  {what:<44} {:>4} round(s) {:>6} docs {:>6} changes  sent {:>9} B  received {:>10} B  {:>6} ms",
        r.rounds,
        r.pulled_snapshots,
        r.pulled_changes + r.pushed,
        r.bytes_sent,
        r.bytes_received,
        ms
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let size = std::env::args().nth(1).unwrap_or_else(|| "small".into());
    let started = Instant::now();
    let server = Server::start_with_demo(&size)?;
    println!("server with the {size} demo ready in {} ms", started.elapsed().as_millis());
    let (worker_id, _) = server.user_with_role("grid-worker", 0)?;
    let dir = tempfile::tempdir()?;
    let code = server.code_for(&worker_id)?;
    let worker = gridlink_client::Client::open(dir.path())?;
    worker.enroll(&server.url(), &code, "figures").await?;
    let t = Instant::now();
    let first = worker.sync().await?;
    line("grid worker, first sync (snapshots)", &first, t.elapsed().as_millis());

    let households = worker.households(&HouseholdFilter::default(), now_millis())?;
    for (label, count) in
        [("push 1 visit", 1usize), ("push a day's work (20 visits)", 20), ("push a month (600 visits)", 600)]
    {
        let start = now_millis();
        for i in 0..count {
            let at = start + (i as i64 * DAY_MS) / 20;
            worker.record_visit(
                NewVisit {
                    household: households[i % households.len()].id,
                    outcome: VisitOutcome::Met,
                    notes: "上门走访，老人身体尚好，已提醒按时服药".into(),
                    needs_found: vec![],
                    follow_up: None,
                    residents_present: vec![],
                    at,
                },
                at,
            )?;
        }
        let t = Instant::now();
        let report = worker.sync().await?;
        line(label, &report, t.elapsed().as_millis());
    }
    let t = Instant::now();
    let idle = worker.sync().await?;
    line("nothing new", &idle, t.elapsed().as_millis());

    let reader_dir = tempfile::tempdir()?;
    let supervisor = server
        .users()?
        .into_iter()
        .find(|u| u["role"] == "supervisor" && u["scopes"][0].as_str().unwrap_or_default().starts_with("community:"))
        .and_then(|u| u["id"].as_str().map(String::from))
        .expect("a community supervisor");
    let t = Instant::now();
    let reader = enrolled(&server, &server.url(), reader_dir.path(), &supervisor, "figures-pc").await?;
    println!(
        "  supervisor (community) enrol + first sync: {} ms, {} households",
        t.elapsed().as_millis(),
        reader.households(&HouseholdFilter::default(), now_millis())?.len()
    );
    Ok(())
}
