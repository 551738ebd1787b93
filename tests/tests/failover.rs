//! Failover behind nginx (issue #10): two `gridlink-server serve --database URL` processes on
//! one PostgreSQL database (a throwaway cluster), nginx round-robin in front of them
//! (`gridlink_tests::district`), and real `gridlink` CLI devices that record visits and sync
//! through nginx round after round while one server process is SIGKILLed and later restarted,
//! then the other. Afterwards every visit a device recorded, and in particular every visit
//! whose sync succeeded (acknowledged), is on a freshly enrolled device exactly once, nothing
//! else was added, and the devices of one worker hold byte-identical exports.
//!
//! No timing: loops are bounded by counts; the only waits are for processes to start.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gridlink_tests::cli;
use gridlink_tests::district::{Backend, District, NginxOptions};

/// Rounds of record-and-sync per phone; the kills and restarts happen after given numbers of
/// syncs (counts, not times).
const ROUNDS: usize = 12;

struct Phone {
    dir: tempfile::TempDir,
    /// Which worker holds it (index into the workers).
    worker: usize,
    name: String,
    /// Visits recorded: note -> visit id.
    recorded: BTreeMap<String, String>,
    /// Notes of visits a successful sync sent (acknowledged by the server).
    acked: BTreeSet<String>,
}

fn enroll(backend: &Backend, url: &str, dir: &Path, user: &str, name: &str) {
    let code = backend.code_for(user).unwrap();
    let run = cli(dir, &["enroll", "--server", url, "--code", &code, "--name", name]);
    assert!(run.success, "enrolling {name}: {run:?}");
}

/// Syncs until a sync succeeds, at most `attempts` times; whether one did.
fn sync(dir: &Path, attempts: usize) -> bool {
    (0..attempts).any(|_| cli(dir, &["sync", "--json"]).success)
}

fn unsent(dir: &Path) -> u64 {
    cli(dir, &["status", "--json"]).json()["unsent"].as_u64().expect("unsent count")
}

fn export(dir: &Path) -> serde_json::Value {
    let run = cli(dir, &["export", "--json"]);
    assert!(run.success, "{run:?}");
    run.json()
}

/// Every visit in an export: (notes, visit id, household id).
fn visits(export: &serde_json::Value) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for household in export["households"].as_array().expect("households") {
        let id = household["id"].as_str().expect("household id");
        for visit in household["visits"].as_array().expect("visits") {
            found.push((
                visit["notes"].as_str().expect("notes").to_string(),
                visit["id"].as_str().expect("visit id").to_string(),
                id.to_string(),
            ));
        }
    }
    found
}

/// One round of one phone: two visits recorded offline, then one sync that pushes both. A
/// sync that succeeds with nothing left unsent acknowledges every visit recorded so far; a
/// failed one keeps them in the outbox for a later round.
fn record_and_sync(phone: &mut Phone, p: usize, round: usize, households: &[String], failed: &AtomicUsize) {
    for k in 0..2 {
        let household = &households[(round * 2 + k) % households.len()];
        let note = format!(
            "第{round}轮 {} 入户走访{}家（{k}），了解近况",
            phone.name,
            FAMILIES[(round + k + p) % FAMILIES.len()]
        );
        let run = cli(
            phone.dir.path(),
            &["visit", "add", "--household", household, "--outcome", "met", "--note", &note, "--json"],
        );
        assert!(run.success, "{run:?}");
        let id = run.json()["id"].as_str().unwrap().to_string();
        phone.recorded.insert(note, id);
    }
    if sync(phone.dir.path(), 1) && unsent(phone.dir.path()) == 0 {
        phone.acked.extend(phone.recorded.keys().cloned());
    } else {
        failed.fetch_add(1, Ordering::SeqCst);
    }
}

/// Residents' surnames and compounds for the notes: realistic, and unique per visit.
const FAMILIES: [&str; 6] = ["王秀英", "李建国", "张桂兰", "刘德华", "陈淑珍", "杨志强"];

#[test]
fn every_acknowledged_visit_survives_a_killed_server_behind_nginx_exactly_once() {
    let backend = Backend::postgres(Some("small")).unwrap();
    let mut district = District::start(&backend, 2, &NginxOptions::default()).unwrap();
    let url = district.url();

    let users = backend.users().unwrap();
    let worker_ids: Vec<String> = users
        .iter()
        .filter(|u| u["role"] == "grid-worker")
        .take(2)
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(worker_ids.len(), 2, "the small demo has grid workers in several grids");
    let supervisor = users
        .iter()
        .find(|u| u["role"] == "supervisor" && u["scopes"][0].as_str().is_some_and(|s| s.starts_with("community:")))
        .expect("a community supervisor")["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Two phones for the first worker (a phone and a tablet), one for the second.
    let mut phones: Vec<Phone> = [(0, "张丽的手机"), (0, "张丽的平板"), (1, "王强的手机")]
        .into_iter()
        .map(|(worker, name)| Phone {
            dir: tempfile::tempdir().unwrap(),
            worker,
            name: name.to_string(),
            recorded: BTreeMap::new(),
            acked: BTreeSet::new(),
        })
        .collect();
    let phones_len = phones.len();
    for phone in &phones {
        enroll(&backend, &url, phone.dir.path(), &worker_ids[phone.worker], &phone.name);
        assert!(sync(phone.dir.path(), 3), "first sync of {}", phone.name);
    }
    // The households each phone visits: its worker's grid.
    let households: Vec<Vec<String>> = phones
        .iter()
        .map(|p| {
            let rows = cli(p.dir.path(), &["households", "--json"]).json();
            rows.as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap().to_string()).collect()
        })
        .collect();

    // Each phone records and syncs in a thread of its own; this thread kills and restarts the
    // servers once the phones together have finished given numbers of syncs, so the kills land
    // between and during requests.
    let synced = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let failed_syncs = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for (p, phone) in phones.iter_mut().enumerate() {
            let (households, synced, finished, failed_syncs) = (&households[p], &synced, &finished, &failed_syncs);
            scope.spawn(move || {
                for round in 0..ROUNDS {
                    record_and_sync(phone, p, round, households, failed_syncs);
                    synced.fetch_add(1, Ordering::SeqCst);
                }
                finished.fetch_add(1, Ordering::SeqCst);
            });
        }
        let phone_count = phones_len;
        let wait_for = |count: usize| {
            while synced.load(Ordering::SeqCst) < count && finished.load(Ordering::SeqCst) < phone_count {
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        let total = ROUNDS * phone_count;
        wait_for(total / 6);
        district.servers[0].kill();
        wait_for(total * 2 / 6);
        district.servers[0].restart().unwrap();
        wait_for(total * 3 / 6);
        district.servers[1].kill();
        wait_for(total * 4 / 6);
        district.servers[1].restart().unwrap();
    });
    eprintln!(
        "{} of {} syncs failed while servers were killed",
        failed_syncs.load(Ordering::SeqCst),
        ROUNDS * phones.len()
    );

    // Everything still unsent goes out now; then a second pass pulls what others pushed last.
    for phone in &mut phones {
        assert!(sync(phone.dir.path(), 5), "{} syncs again with both servers up", phone.name);
        assert_eq!(unsent(phone.dir.path()), 0, "{} has sent everything", phone.name);
        phone.acked.extend(phone.recorded.keys().cloned());
    }
    for phone in &phones {
        assert!(sync(phone.dir.path(), 5), "{} pulls the last changes", phone.name);
    }

    // Both server processes served syncs: nginx spread the load, and the restarted ones came
    // back into the rotation.
    let log = district.nginx.access_log();
    for server in &district.servers {
        let served = log.lines().filter(|l| l.contains("/v1/sync") && l.contains(&server.addr.to_string())).count();
        assert!(served > 0, "{} served no sync; access log:\n{log}", server.addr);
    }
    // A killed server was noticed: some request was passed on from it to the other one (two
    // upstream addresses in its log line).
    let passed_on = log.lines().filter(|l| l.contains("/v1/sync") && l.contains(", ")).count();
    assert!(passed_on > 0, "no sync was passed on to the next server; access log:\n{log}");
    eprintln!("{passed_on} syncs were passed on by nginx to the next server");

    // A phone enrolled now, for the community supervisor, holds both grids.
    let fresh = tempfile::tempdir().unwrap();
    enroll(&backend, &url, fresh.path(), &supervisor, "周主任的新手机");
    assert!(sync(fresh.path(), 3));
    let fresh_visits = visits(&export(fresh.path()));
    let mut by_note: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (note, id, _) in &fresh_visits {
        by_note.entry(note.as_str()).or_default().push(id.as_str());
    }
    let mut recorded_total = 0;
    for phone in &phones {
        for (note, id) in &phone.recorded {
            assert_eq!(by_note.get(note.as_str()), Some(&vec![id.as_str()]), "{note} exactly once, same id");
            recorded_total += 1;
        }
        for note in &phone.acked {
            assert!(by_note.contains_key(note.as_str()), "acknowledged visit {note} is on the fresh device");
        }
    }
    // Nothing beyond what the phones recorded carries the test's notes.
    let test_visits =
        fresh_visits.iter().filter(|(note, _, _)| note.starts_with('第') && note.contains("入户走访")).count();
    assert_eq!(test_visits, recorded_total, "no visit appears that no phone recorded");

    // One worker's phone and tablet converge to the same export; the fresh device agrees with
    // each worker's phones on that worker's households.
    let exports: Vec<serde_json::Value> = phones.iter().map(|p| export(p.dir.path())).collect();
    assert_eq!(exports[0], exports[1], "the phone and the tablet of one worker converge");
    let fresh_export = export(fresh.path());
    for (phone, exported) in phones.iter().zip(&exports) {
        for household in exported["households"].as_array().unwrap() {
            let on_fresh = fresh_export["households"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h["id"] == household["id"])
                .unwrap_or_else(|| panic!("{} household {} on the fresh device", phone.name, household["id"]));
            assert_eq!(on_fresh, household, "{} and the fresh device agree", phone.name);
        }
    }
    assert!(district.nginx.error_log().lines().all(|l| !l.contains("[emerg]")), "{}", district.nginx.error_log());
}
