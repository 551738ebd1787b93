//! Prints how long each screen takes to render, view-model reads from the real encrypted
//! store included, over the small demo dataset (`cargo run -p gridlink-ui --release --example
//! screen_latency`). A figure to watch, not a test: nothing here asserts a speed.

use std::time::Instant;

use dioxus::prelude::*;
use gridlink_client::{CaseFilter, HouseholdFilter, fixtures};
use gridlink_shared::{Lang, Role};
use gridlink_ui::{App, AppConfig, AppProps};

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = fixtures::DEMO_NOW;
    let (client, _) = fixtures::demo_client(dir.path(), Role::GridWorker, now).expect("demo store");
    let household = client.households(&HouseholdFilter::default(), now).expect("households")[0].id;
    let case = client.cases(CaseFilter::All, now).expect("cases")[0].id;
    let households = client.households(&HouseholdFilter::default(), now).expect("households").len();
    println!("small demo, grid worker: {households} households in scope");
    let paths = [
        "/".to_string(),
        "/households".to_string(),
        format!("/households/{household}"),
        format!("/households/{household}/visit"),
        "/cases".to_string(),
        format!("/cases/{case}"),
        "/services".to_string(),
        "/me".to_string(),
    ];
    for path in paths {
        let mut samples = Vec::new();
        let mut bytes = 0;
        for _ in 0..20 {
            let config = AppConfig {
                client: client.clone(),
                background: false,
                now: Some(now),
                lang: Some(Lang::Zh),
                unlocked: true,
                initial_path: Some(path.clone()),
            };
            let started = Instant::now();
            let mut vdom = VirtualDom::new_with_props(App, AppProps { config });
            vdom.rebuild_in_place();
            let html = dioxus_ssr::render(&vdom);
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
            bytes = html.len();
        }
        samples.sort_by(f64::total_cmp);
        println!(
            "{path:<56} median {:>6.2} ms  max {:>6.2} ms  ({} KB of HTML)",
            samples[samples.len() / 2],
            samples[samples.len() - 1],
            bytes / 1024
        );
    }
}
