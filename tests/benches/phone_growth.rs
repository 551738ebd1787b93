//! Phone growth (issue #13): how a grid worker's phone ages. The same 700 households with 1, 3
//! and 10 years of visit history, each in its own SQLCipher store: cold open to today's list,
//! `record_visit`, `today()`, the household search, the household file, and the database
//! size. Not a test: nothing here asserts a speed; it prints p50/p99 and each figure's ratio to
//! the 1-year store measured in the same process.
//!
//! Run: `cargo bench -p gridlink-tests --bench phone_growth` (under a minute once built).
//!
//! Data: the households of the `street` demo's first grids (realistic names, addresses,
//! residents, must-visit tags), trimmed to 700, and one grid worker answering for those grids.
//! Each household's visits are replaced by a history of the given length: tagged households
//! (四必访) visited about weekly, the others about quarterly, 88% met in person. The documents
//! are installed as a first sync leaves them (`Client::open_with_documents`: each document one
//! automerge change holding its whole history), so the automerge change history of a real
//! phone, where each visit is its own change, is smaller here than it would be; the visits,
//! the query rows and the lists are the same.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use gridlink_client::fixtures::{DEMO_NOW, DEMO_SEED};
use gridlink_client::{Client, HouseholdFilter, NewVisit, Page};
use gridlink_shared::demo::{DemoSize, generate};
use gridlink_shared::time::{DAY_MS, HOUR_MS, MINUTE_MS, Millis};
use gridlink_shared::{AnyDoc, HouseholdFile, HouseholdId, Role, Scope, Visit, VisitId, VisitOutcome};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const HOUSEHOLDS: usize = 700;
const YEARS: [u32; 3] = [1, 3, 10];
/// Fresh opens (each `Client::open` + the first `today()`) per store.
const COLD_OPENS: usize = 20;
/// Repetitions of each warm operation per store.
const REPEATS: usize = 60;
const NOW: Millis = DEMO_NOW;

fn main() -> Result<()> {
    let started = Instant::now();
    let data = generate(DemoSize::Street, DEMO_SEED, NOW);
    let (households, grids) = first_households(&data.households, HOUSEHOLDS);
    let worker = data
        .staff_with_role(Role::GridWorker)
        .find(|s| s.scopes.iter().any(|x| matches!(x, Scope::Grid(g) if *g == grids[0])))
        .context("a grid worker of the first grid")?
        .clone();
    let mut principal = worker.principal();
    principal.scopes = grids.iter().map(|g| Scope::Grid(*g)).collect();
    let cases: Vec<AnyDoc> =
        data.cases.iter().filter(|c| grids.contains(&c.placement.grid)).cloned().map(AnyDoc::Case).collect();
    let tagged = households.iter().filter(|h| !h.tags.is_empty()).count();
    println!("# Phone growth: a grid worker's phone with {HOUSEHOLDS} households");
    println!(
        "machine: {} logical cores; {} grids, {} households ({} tagged, visited about weekly), {} cases",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        grids.len(),
        households.len(),
        tagged,
        cases.len()
    );

    let mut results = Vec::new();
    for years in YEARS {
        let mut rng = StdRng::seed_from_u64(u64::from(years));
        let mut next_id = 0;
        let with_history: Vec<HouseholdFile> =
            households.iter().map(|h| with_visits(h, years, &worker.name, worker.id, &mut rng, &mut next_id)).collect();
        let visits: usize = with_history.iter().map(|h| h.visits.len()).sum();
        let busiest = with_history.iter().max_by_key(|h| h.visits.len()).context("households")?.id;
        let busiest_visits = with_history.iter().map(|h| h.visits.len()).max().unwrap_or(0);
        let mut docs: Vec<AnyDoc> = with_history.into_iter().map(AnyDoc::Household).collect();
        docs.extend(cases.iter().cloned());
        let dir = tempfile::tempdir()?;
        eprintln!("[{:>6.1}s] {years} year(s): installing {} documents, {visits} visits", secs(started), docs.len());
        let install = Instant::now();
        let client = Client::open_with_documents(dir.path(), principal.clone(), data.roster.clone(), docs)?;
        let install = install.elapsed();
        drop(client);
        let size_installed = db_size(dir.path());
        eprintln!("[{:>6.1}s] {years} year(s): measuring", secs(started));
        let mut figures = measure(dir.path(), busiest)?;
        figures.years = years;
        figures.visits = visits;
        figures.busiest_visits = busiest_visits;
        figures.install = install;
        figures.size_installed = size_installed;
        figures.size_after = db_size(dir.path());
        results.push(figures);
    }
    print_tables(&results);
    eprintln!("[{:>6.1}s] done", secs(started));
    Ok(())
}

/// The households of the demo's first grids, in grid order, trimmed to `n`, and those grids.
fn first_households(all: &[HouseholdFile], n: usize) -> (Vec<HouseholdFile>, Vec<gridlink_shared::GridId>) {
    let mut grids = Vec::new();
    let mut seen = BTreeSet::new();
    for h in all {
        if seen.insert(h.placement.grid) {
            grids.push(h.placement.grid);
        }
    }
    let mut chosen = Vec::new();
    let mut used = Vec::new();
    for grid in grids {
        if chosen.len() >= n {
            break;
        }
        used.push(grid);
        chosen.extend(all.iter().filter(|h| h.placement.grid == grid).cloned());
    }
    chosen.truncate(n);
    (chosen, used)
}

/// `household` with its visits replaced by `years` of history up to [`NOW`]: about weekly for a
/// tagged household, about quarterly otherwise.
fn with_visits(
    household: &HouseholdFile,
    years: u32,
    visitor_name: &str,
    visitor: gridlink_shared::UserId,
    rng: &mut StdRng,
    next_id: &mut u128,
) -> HouseholdFile {
    let mut file = household.clone();
    file.visits.clear();
    let start = NOW - i64::from(years) * 365 * DAY_MS;
    // History before the file existed would be odd; the file is as old as its history.
    file.created_at = file.created_at.min(start - DAY_MS);
    for entry in file.tags.values_mut() {
        entry.since = gridlink_shared::time::local_date(start - DAY_MS);
    }
    let every = if household.tags.is_empty() { 91 } else { 7 };
    let residents: Vec<_> = file.residents.keys().copied().collect();
    let mut day = start + rng.random_range(0..every) * DAY_MS;
    while day < NOW - DAY_MS {
        let at = day + rng.random_range(9..18) * HOUR_MS;
        let outcome = match rng.random_range(0..100) {
            0..88 => VisitOutcome::Met,
            88..98 => VisitOutcome::NotHome,
            _ => VisitOutcome::Refused,
        };
        let notes = match outcome {
            VisitOutcome::Met => ["身体状况良好，生活能自理。", "血压偏高，提醒按时服药。", "反映楼道灯不亮，已记录。"]
                [rng.random_range(0..3)],
            VisitOutcome::NotHome => "敲门无人应答，已留联系卡。",
            VisitOutcome::Refused => "住户不便接待，改日再访。",
        };
        *next_id += 1;
        let id = VisitId::from_u128((u128::from(years) << 100) | *next_id);
        let present = match (outcome, residents.first()) {
            (VisitOutcome::Met, Some(r)) => vec![*r],
            _ => Vec::new(),
        };
        file.visits.insert(
            id,
            Visit {
                id,
                visitor,
                visitor_name: visitor_name.to_string(),
                at,
                recorded_at: at + rng.random_range(0..120) * MINUTE_MS,
                outcome,
                notes: notes.to_string(),
                needs_found: Vec::new(),
                follow_up: None,
                residents_present: present,
            },
        );
        day += (every + rng.random_range(-1..=1)) * DAY_MS;
    }
    file
}

#[derive(Default)]
struct Figures {
    years: u32,
    visits: usize,
    busiest_visits: usize,
    install: Duration,
    size_installed: u64,
    size_after: u64,
    /// (operation, result, times).
    ops: Vec<(String, String, Vec<Duration>)>,
}

fn measure(dir: &Path, busiest: HouseholdId) -> Result<Figures> {
    let mut figures = Figures::default();
    let mut cold = Vec::new();
    let mut due = 0;
    for _ in 0..COLD_OPENS {
        let started = Instant::now();
        let client = Client::open(dir)?;
        due = client.today(NOW)?.due_visits.len();
        cold.push(started.elapsed());
    }
    figures.ops.push(("cold open + first today()".into(), format!("{due} due"), cold));

    let client = Client::open(dir)?;
    let households = client.households(&HouseholdFilter::default(), NOW)?;
    let name = households.get(households.len() / 2).context("households")?.head.clone();
    let mut op = |label: &str, f: &mut dyn FnMut(usize) -> Result<String>| -> Result<()> {
        let mut result = f(0)?;
        let mut times = Vec::new();
        for i in 1..=REPEATS {
            let started = Instant::now();
            result = f(i)?;
            times.push(started.elapsed());
        }
        figures.ops.push((label.to_string(), result, times));
        Ok(())
    };
    op("today()", &mut |_| {
        let today = client.today(NOW)?;
        Ok(format!("{} due, {} mine", today.due_visits.len(), today.my_cases.len()))
    })?;
    op("households search \"zs\" (first page)", &mut |_| {
        let filter = HouseholdFilter { search: Some("zs".into()), ..Default::default() };
        let page = client.households_page(&filter, Page::default(), NOW)?;
        Ok(format!("{} of {}", page.rows.len(), page.total))
    })?;
    op(&format!("households search \"{name}\" (first page)"), &mut |_| {
        let filter = HouseholdFilter { search: Some(name.clone()), ..Default::default() };
        let page = client.households_page(&filter, Page::default(), NOW)?;
        Ok(format!("{} of {}", page.rows.len(), page.total))
    })?;
    op("household(id) detail, busiest file", &mut |_| {
        let detail = client.household(busiest, NOW)?;
        Ok(format!("{} visits", detail.visits.len()))
    })?;
    let tagged: Vec<HouseholdId> = households.iter().filter(|h| !h.tags.is_empty()).map(|h| h.id).collect();
    op("record_visit (tagged household)", &mut |i| {
        let household = tagged[i % tagged.len()];
        client.record_visit(
            NewVisit {
                household,
                outcome: VisitOutcome::Met,
                notes: format!("第{i}次入户走访：老人精神好，提醒冬季用电安全"),
                needs_found: Vec::new(),
                follow_up: None,
                residents_present: Vec::new(),
                at: NOW - 60_000,
            },
            NOW,
        )?;
        Ok("ok".into())
    })?;
    Ok(figures)
}

fn db_size(dir: &Path) -> u64 {
    ["gridlink.db", "gridlink.db-wal"].iter().filter_map(|f| std::fs::metadata(dir.join(f)).ok()).map(|m| m.len()).sum()
}

fn stats(times: &[Duration]) -> (Duration, Duration) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    (at(0.5), at(0.99))
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / 1_048_576.0)
}

fn ratio(value: f64, base: f64) -> String {
    if base == 0.0 { "-".into() } else { format!("{:.2}x", value / base) }
}

fn secs(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}

fn print_tables(results: &[Figures]) {
    let Some(base) = results.first() else { return };
    let mut header = vec!["store".to_string()];
    header.extend(results.iter().map(|r| format!("{} year(s)", r.years)));
    let mut rows: Vec<Vec<String>> = Vec::new();
    let with_ratio = |value: f64, base: f64, text: String| format!("{text} ({})", ratio(value, base));
    rows.push(
        std::iter::once("visits held (busiest file)".to_string())
            .chain(results.iter().map(|r| format!("{} ({})", r.visits, r.busiest_visits)))
            .collect(),
    );
    rows.push(
        std::iter::once("install, as after a first sync".to_string())
            .chain(
                results.iter().map(|r| with_ratio(r.install.as_secs_f64(), base.install.as_secs_f64(), ms(r.install))),
            )
            .collect(),
    );
    rows.push(
        std::iter::once("database file, installed".to_string())
            .chain(
                results
                    .iter()
                    .map(|r| with_ratio(r.size_installed as f64, base.size_installed as f64, mib(r.size_installed))),
            )
            .collect(),
    );
    rows.push(
        std::iter::once(format!("database file, after {REPEATS} visits more"))
            .chain(results.iter().map(|r| with_ratio(r.size_after as f64, base.size_after as f64, mib(r.size_after))))
            .collect(),
    );
    print_table("Phone growth: the store", &header, &rows);

    let mut header = vec!["operation".to_string()];
    for r in results {
        header.push(format!("{}y p50 / p99", r.years));
        if r.years != base.years {
            header.push(format!("{}y / 1y (p50)", r.years));
        }
    }
    header.push("result (10y)".into());
    let mut rows = Vec::new();
    for (index, (label, _, base_times)) in base.ops.iter().enumerate() {
        let (base_p50, _) = stats(base_times);
        let mut row = vec![label.clone()];
        for r in results {
            let (_, result, times) = &r.ops[index];
            let (p50, p99) = stats(times);
            row.push(format!("{} / {}", ms(p50), ms(p99)));
            if r.years != base.years {
                row.push(ratio(p50.as_secs_f64(), base_p50.as_secs_f64()));
            }
            if std::ptr::eq(r, results.last().unwrap_or(r)) {
                row.push(result.clone());
            }
        }
        rows.push(row);
    }
    print_table(
        &format!("Phone growth: operations (SQLCipher store, release build; cold n={COLD_OPENS}, others n={REPEATS})"),
        &header,
        &rows,
    );
}

/// A Markdown table, columns padded for the terminal (CJK characters count double).
fn print_table(title: &str, header: &[String], rows: &[Vec<String>]) {
    let width = |s: &str| s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum::<usize>();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(c, w)| format!("{c}{}", " ".repeat(w - width(c)))).collect();
        format!("| {} |", padded.join(" | "))
    };
    println!("\n### {title}\n");
    println!("{}", line(header));
    println!("|{}|", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|"));
    for row in rows {
        println!("{}", line(row));
    }
    println!();
}
