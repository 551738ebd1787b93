//! Times the `street` demo dataset: generating the typed values, then turning every
//! household file and case into an automerge document (create + save), as the server's
//! `init --demo street` does. Run: `cargo run --release -p gridlink-shared --example demo_street`.

use std::time::Instant;

use gridlink_shared::demo::{DemoSize, generate};
use gridlink_shared::{doc, time};

fn main() {
    let now = time::now_millis();
    let started = Instant::now();
    let data = generate(DemoSize::Street, 1, now);
    let generated = started.elapsed();
    let visits: usize = data.households.iter().map(|h| h.visits.len()).sum();
    println!(
        "generated {} households ({} visits), {} cases, {} grids, {} buildings in {:.2?}",
        data.households.len(),
        visits,
        data.cases.len(),
        data.roster.grids.len(),
        data.roster.buildings.len(),
        generated
    );

    let actor = automerge::ActorId::random();
    let started = Instant::now();
    let mut bytes = 0usize;
    for file in &data.households {
        bytes += doc::create(file, actor.clone(), now).expect("demo household is valid").save().len();
    }
    for case in &data.cases {
        bytes += doc::create(case, actor.clone(), now).expect("demo case is valid").save().len();
    }
    let encoded = started.elapsed();
    let docs = data.households.len() + data.cases.len();
    println!(
        "encoded {docs} automerge documents ({:.1} MiB saved) in {:.2?} ({:.0} docs/s); generation was {:.1}% of the total",
        bytes as f64 / 1_048_576.0,
        encoded,
        docs as f64 / encoded.as_secs_f64(),
        100.0 * generated.as_secs_f64() / (generated + encoded).as_secs_f64()
    );
}
