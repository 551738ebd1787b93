//! Fuzz targets on the stable toolchain, run as ordinary tests: a seeded mutator over real
//! seed inputs, a bounded number of cases in CI and as many as you like by hand.
//!
//! * `request_decoding`: CBOR and gzip bodies posted to the real router with an enrolled
//!   device's token: mutated valid requests, truncated gzip, gzip bombs, deep CBOR nesting,
//!   huge declared lengths, wrong content types and encodings.
//! * `store_sync`: `Store::sync` with arbitrary `SyncRequest`s from an enrolled device: any
//!   cursors, changes, repair lists, page sizes, reference versions, clocks and health.
//! * `roster_import`: the CSV importer with mutated CSVs (bytes, lines, fields, header), on
//!   SQLite and (`roster_import_on_postgresql`, fewer cases by default) on PostgreSQL.
//!
//! Whatever arrives: no panic, no 5xx (no `Backend` error from the store), an answer in
//! bounded time, and nothing persisted from a malformed request (row counts of docs, changes
//! and scope_log, and for the importer the roster tables, are the same before and after).
//!
//! Every case has its own seed; a failure names it. `GRIDLINK_FUZZ_SEED=N` sets the first
//! seed, `GRIDLINK_FUZZ_CASES=N` the cases of each target (defaults keep the three under a
//! minute in a debug build). For a long run, see `docs/security.md`:
//! `GRIDLINK_FUZZ_CASES=10000000 cargo test --release -p gridlink-sync-server --test fuzz_targets`.

#[path = "common/backends.rs"]
mod backends;
mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use backends::Backend;
use common::{DEMO_NOW, DEMO_SEED, Device, Harness};
use gridlink_shared::digest::DocEntry;
use gridlink_shared::protocol::{
    self, AckStatus, Cursor, DeviceHealth, EnrollRequest, PushChange, VerifyDoc, VerifyScope,
};
use gridlink_shared::time::now_millis;
use gridlink_shared::{DocId, HouseholdFile, Role, Scope, doc};
use gridlink_sync_server::store::{ImportError, PushLimits, Store, StoreError};
use gridlink_sync_server::{Limits, SqliteStore};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The first seed and the number of cases of each target.
fn plan(default_cases: u64) -> (u64, u64) {
    (env_or("GRIDLINK_FUZZ_SEED", 20261130), env_or("GRIDLINK_FUZZ_CASES", default_cases))
}

fn replay(target: &str, seed: u64) -> String {
    format!(
        "{target}: replay with GRIDLINK_FUZZ_SEED={seed} GRIDLINK_FUZZ_CASES=1 cargo test -p gridlink-sync-server --test fuzz_targets {target}"
    )
}

/// Row counts a malformed request must leave as they were.
fn counts(store: &SqliteStore, tables: &[&str]) -> BTreeMap<String, i64> {
    store
        .read(|conn| {
            let mut out = BTreeMap::new();
            for table in tables {
                out.insert(
                    table.to_string(),
                    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?,
                );
            }
            Ok(out)
        })
        .unwrap()
}

const SYNC_TABLES: &[&str] = &["docs", "changes", "scope_log", "doc_scopes", "devices"];
const ROSTER_TABLES: &[&str] =
    &["docs", "changes", "scope_log", "streets", "communities", "grids", "buildings", "users", "outlets"];

fn households(device: &Device) -> Vec<DocId> {
    let mut ids: Vec<DocId> =
        device.docs.iter().filter(|(_, d)| doc::read::<HouseholdFile>(*d).is_ok()).map(|(id, _)| *id).collect();
    ids.sort();
    ids
}

// ---------------------------------------------------------------------------------------------
// The byte mutator

/// Bytes that mean something to CBOR: headers with huge or indefinite lengths, breaks,
/// tags, floats, simple values.
const CBOR_INTERESTING: &[&[u8]] = &[
    &[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    &[0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    &[0x7b, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00],
    &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    &[0xbb, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00],
    &[0x5f],
    &[0x9f],
    &[0xbf],
    &[0xff],
    &[0xc6],
    &[0xd8, 0xff],
    &[0xf9, 0x7c, 0x00],
    &[0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0],
    &[0xf7],
    &[0x1c],
    &[0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
];

/// One to four random edits of `input`: bit flips, extreme bytes, inserted, deleted,
/// duplicated or truncated ranges, CBOR headers spliced in.
fn mutate_bytes(rng: &mut ChaCha8Rng, input: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        if b.is_empty() {
            b.push(rng.random());
            continue;
        }
        let i = rng.random_range(0..b.len());
        match rng.random_range(0..8) {
            0 => b[i] ^= 1 << rng.random_range(0..8),
            1 => b[i] = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff][rng.random_range(0..6)],
            2 => {
                let n = rng.random_range(1..16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                b.splice(i..i, bytes);
            }
            3 => {
                let end = (i + rng.random_range(1..32)).min(b.len());
                b.drain(i..end);
            }
            4 => {
                let end = (i + rng.random_range(1..64)).min(b.len());
                let copy = b[i..end].to_vec();
                let at = rng.random_range(0..=b.len());
                b.splice(at..at, copy);
            }
            5 => b.truncate(i),
            6 => {
                let splice = CBOR_INTERESTING[rng.random_range(0..CBOR_INTERESTING.len())];
                let end = (i + rng.random_range(0..3)).min(b.len());
                b.splice(i..end, splice.iter().copied());
            }
            _ => {
                let j = rng.random_range(0..b.len());
                b.swap(i, j);
            }
        }
    }
    b
}

/// Replaces the length of the item after text key `key` with a huge declared one.
fn inflate_length(body: &[u8], key: &str, declared: u64) -> Option<Vec<u8>> {
    let mut needle = vec![0x60 + key.len() as u8];
    needle.extend_from_slice(key.as_bytes());
    let at = body.windows(needle.len()).position(|w| w == needle.as_slice())? + needle.len();
    let first = *body.get(at)?;
    let major = first >> 5;
    if !(2..=5).contains(&major) {
        return None;
    }
    let header = match first & 0x1f {
        0..=23 => 1,
        24 => 2,
        25 => 3,
        26 => 5,
        27 => 9,
        _ => return None,
    };
    let mut out = body[..at].to_vec();
    out.push((major << 5) | 27);
    out.extend_from_slice(&declared.to_be_bytes());
    out.extend_from_slice(body.get(at + header..)?);
    Some(out)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

// ---------------------------------------------------------------------------------------------
// (a) Request decoding through the real router

#[tokio::test]
async fn request_decoding() {
    let (first_seed, cases) = plan(1500);
    // A 1 MiB body limit, so a bomb a few MiB deep is cheap to make and must be refused.
    let body_limit = 1024 * 1024;
    let h = Harness::with_limits(Limits { body_bytes: body_limit, ..Limits::default() });
    let mut phone = h.enroll(&h.staff(Role::GridWorker)).await;
    h.sync_all(&mut phone).await;
    let ids = households(&phone);
    let bomb = gzip(&vec![0u8; 4 * body_limit]);
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();

    for case in 0..cases {
        let seed = first_seed.wrapping_add(case);
        let context = replay("request_decoding", seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let id = ids[rng.random_range(0..ids.len())];
        phone.docs.insert(id, h.server_doc(id).unwrap());
        let honest = phone.edit::<HouseholdFile>(id, |f| f.notes = format!("第{case}次走访"));
        let mut request = phone.request(if rng.random_bool(0.6) { vec![honest] } else { Vec::new() });
        request.health = rng.random_bool(0.3).then(|| DeviceHealth {
            app_version: "0.1.0".into(),
            unsent: 1,
            rejected: 0,
            quarantined: 0,
        });
        let enroll = rng.random_range(0..10) == 0;
        let valid = if enroll {
            serde_json::to_vec(&EnrollRequest { code: "ABCD-EFGH".into(), device_name: "手机".into() }).unwrap()
        } else {
            protocol::encode(&request)
        };
        let (mut body, shape) = match rng.random_range(0..10) {
            0 => (valid.clone(), "valid"),
            1 => {
                let key = ["changes", "bytes", "cursors", "repair", "app_version", "protocol", "code"]
                    [rng.random_range(0..7)];
                let declared = [u64::MAX, 1 << 40, 1 << 31, u32::MAX as u64, 1 << 20][rng.random_range(0..5)];
                (inflate_length(&valid, key, declared).unwrap_or_else(|| mutate_bytes(&mut rng, &valid)), "huge length")
            }
            2 => {
                let depth = [64, 200, 300, 5_000, 200_000][rng.random_range(0..5)];
                let opener = [0x81u8, 0x9f, 0xa1, 0xc6][rng.random_range(0..4)];
                let mut nested = vec![opener; depth];
                nested.push(0x00);
                (nested, "deep nesting")
            }
            3 => ((0..rng.random_range(0..512)).map(|_| rng.random()).collect(), "random bytes"),
            _ => (mutate_bytes(&mut rng, &valid), "mutated"),
        };
        let mut builder = Request::post(if enroll { "/v1/enroll" } else { "/v1/sync" });
        if !enroll || rng.random_bool(0.2) {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {}", phone.token));
        }
        let content_type = match rng.random_range(0..20) {
            0 => None,
            1 => Some("text/plain"),
            2 => Some("application/cbor; charset=\"x\""),
            _ if enroll => Some("application/json"),
            _ => Some(protocol::CONTENT_TYPE),
        };
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        // (what was done, the Content-Encoding header sent)
        let (encoding, header_value) = match rng.random_range(0..20) {
            0..=11 => ("identity", None),
            12..=15 => {
                body = gzip(&body);
                ("gzip", Some("gzip"))
            }
            16 => {
                let mut zipped = gzip(&body);
                zipped.truncate(rng.random_range(0..zipped.len()));
                body = zipped;
                ("truncated gzip", Some("gzip"))
            }
            17 => {
                body = bomb.clone();
                ("gzip bomb", Some("gzip"))
            }
            18 => {
                let mut zipped = gzip(&body);
                let i = rng.random_range(0..zipped.len());
                zipped[i] ^= 0xff;
                body = zipped;
                ("corrupt gzip", Some("gzip"))
            }
            _ => {
                let claimed = ["gzip", "deflate", "br", "x-unknown", "gzip, gzip"][rng.random_range(0..5)];
                ("plain body under a Content-Encoding", Some(claimed))
            }
        };
        if let Some(value) = header_value {
            builder = builder.header(header::CONTENT_ENCODING, value);
        }
        let before = counts(&h.admin, SYNC_TABLES);
        let started = Instant::now();
        let (status, _, reply) = h.call(builder.body(Body::from(body)).unwrap()).await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(10), "{context}: {shape}/{encoding} took {took:?}");
        assert!(
            !status.is_server_error(),
            "{context}: {shape}/{encoding}: {status} {}",
            String::from_utf8_lossy(&reply)
        );
        let accepted = status.is_success()
            && !enroll
            && protocol::decode::<protocol::SyncResponse>(&reply)
                .unwrap_or_else(|e| panic!("{context}: a 200 that is not a sync response: {e}"))
                .acks
                .iter()
                .any(|a| a.status == AckStatus::Accepted);
        if !accepted {
            let after = counts(&h.admin, SYNC_TABLES);
            assert_eq!(before, after, "{context}: {shape}/{encoding} ({status}) persisted something");
        }
        *outcomes.entry(format!("{shape}/{encoding} -> {}", status.as_u16())).or_default() += 1;
    }
    eprintln!("request_decoding: {cases} cases from seed {first_seed}: {outcomes:#?}");
    // Bounded memory: bombs and huge declared lengths allocate nothing like what they claim
    // (the whole test process, all targets and their demo stores included).
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert!(peak_kib < 512 * 1024, "peak memory {} MiB", peak_kib / 1024);
    h.assert_store_loads("request_decoding");
}

// ---------------------------------------------------------------------------------------------
// (b) Store::sync with arbitrary requests

fn pick_u64(rng: &mut ChaCha8Rng, near: u64) -> u64 {
    match rng.random_range(0..8) {
        0 => 0,
        1 => 1,
        2 => near.saturating_sub(1),
        3 => near,
        4 => near + 1,
        5 => u64::MAX,
        6 => i64::MAX as u64,
        _ => rng.random(),
    }
}

#[tokio::test]
async fn store_sync() {
    let (first_seed, cases) = plan(1000);
    let h = Harness::new();
    let worker = h.staff(Role::GridWorker);
    let mut phone = h.enroll(&worker).await;
    h.sync_all(&mut phone).await;
    let ids = households(&phone);
    let store = &h.admin;
    let roster = store.roster().unwrap();
    let mut scopes: Vec<Scope> = worker.scopes.clone();
    scopes.extend(roster.grids.iter().map(|g| Scope::Grid(g.id)));
    scopes.extend(roster.buildings.iter().take(5).map(|b| Scope::Building(b.id)));
    scopes.extend(roster.communities.iter().map(|c| Scope::Community(c.id)));
    scopes.extend(roster.streets.iter().map(|s| Scope::Street(s.id)));
    scopes.push(Scope::Grid(gridlink_shared::GridId::new()));
    let limits = PushLimits::default();
    let mut accepted_changes: Vec<PushChange> = Vec::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();

    for case in 0..cases {
        let seed = first_seed.wrapping_add(case);
        let context = replay("store_sync", seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let head = phone.cursors.values().find_map(|c| match c {
            Cursor::Seq { seq } => Some(*seq),
            _ => None,
        });
        let head = head.unwrap_or(1);
        let mut request = phone.request(Vec::new());
        if rng.random_bool(0.7) {
            request.cursors.clear();
            for _ in 0..rng.random_range(0..6) {
                let scope = scopes[rng.random_range(0..scopes.len())];
                let cursor = match rng.random_range(0..3) {
                    0 => Cursor::Start,
                    1 => Cursor::Seq { seq: pick_u64(&mut rng, head) },
                    _ => Cursor::Snapshotting {
                        upto: pick_u64(&mut rng, head),
                        after: if rng.random_bool(0.5) { ids[rng.random_range(0..ids.len())] } else { DocId::new() },
                    },
                };
                request.cursors.insert(scope, cursor);
            }
        }
        for _ in 0..rng.random_range(0..6) {
            let id = ids[rng.random_range(0..ids.len())];
            phone.docs.insert(id, h.server_doc(id).unwrap());
            let honest = phone.edit::<HouseholdFile>(id, |f| f.notes = format!("第{case}次"));
            let change = match rng.random_range(0..7) {
                0 | 1 => honest,
                2 => PushChange { doc: honest.doc, bytes: mutate_bytes(&mut rng, &honest.bytes) },
                3 => PushChange { doc: DocId::new(), bytes: honest.bytes },
                4 => PushChange { doc: id, bytes: Vec::new() },
                5 => PushChange { doc: id, bytes: (0..rng.random_range(0..300)).map(|_| rng.random()).collect() },
                _ => match accepted_changes.get(rng.random_range(0..accepted_changes.len().max(1))) {
                    Some(old) => old.clone(),
                    None => honest,
                },
            };
            request.changes.push(change);
        }
        request.page_bytes = match rng.random_range(0..6) {
            0 => None,
            1 => Some(0),
            2 => Some(1),
            3 => Some(u64::MAX),
            4 => Some(rng.random_range(0..100_000)),
            _ => request.page_bytes,
        };
        for _ in 0..rng.random_range(0..4) {
            let id = if rng.random_bool(0.5) { ids[rng.random_range(0..ids.len())] } else { DocId::new() };
            let times = if rng.random_bool(0.1) { 3000 } else { 1 };
            request.repair.extend(std::iter::repeat_n(id, times));
        }
        // Verify lists (divergence repair): foreign and unknown scopes, duplicated and unknown
        // documents, garbage entries, lists past the server's bounds.
        for _ in 0..rng.random_range(0..3) {
            let scope = scopes[rng.random_range(0..scopes.len())];
            let count = match rng.random_range(0..20) {
                0 => 100_001,
                1..4 => rng.random_range(1..5_000),
                4..8 => 0,
                _ => rng.random_range(1..50),
            };
            let docs = (0..count)
                .map(|i| VerifyDoc {
                    doc: if i % 3 == 0 { ids[rng.random_range(0..ids.len())] } else { DocId::new() },
                    entry: DocEntry(rng.random()),
                })
                .collect();
            request.verify.push(VerifyScope { scope, docs });
        }
        request.reference_version = match rng.random_range(0..4) {
            0 => None,
            1 => Some(0),
            2 => Some(u64::MAX),
            _ => request.reference_version,
        };
        request.device_time = [i64::MIN, -1, 0, i64::MAX, now_millis()][rng.random_range(0..5)];
        if rng.random_bool(0.2) {
            request.health = Some(DeviceHealth {
                app_version: "版".repeat(rng.random_range(0..20_000)),
                unsent: rng.random(),
                rejected: u64::MAX,
                quarantined: rng.random(),
            });
        }
        if rng.random_bool(0.05) {
            request.protocol = rng.random();
        }

        let before = counts(store, SYNC_TABLES);
        let started = Instant::now();
        let device = phone.enrolled.device;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.sync(device, &request, &limits, now_millis())
        }))
        .unwrap_or_else(|_| panic!("{context}: Store::sync panicked"));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(10), "{context}: took {took:?}");
        let outcome = match result {
            Ok(response) => {
                let accepted: Vec<_> = response.acks.iter().filter(|a| a.status == AckStatus::Accepted).collect();
                for ack in &accepted {
                    if let Some(pushed) = request.changes.iter().find(|c| c.doc == ack.doc) {
                        accepted_changes.push(pushed.clone());
                    }
                }
                if accepted.is_empty() {
                    assert_eq!(before, counts(store, SYNC_TABLES), "{context}: nothing accepted, yet rows changed");
                }
                if accepted.is_empty() {
                    "answered, nothing accepted".to_string()
                } else {
                    "answered, some accepted".to_string()
                }
            }
            Err(StoreError::Backend(detail)) => panic!("{context}: a storage fault (a 500): {detail}"),
            Err(error) => {
                assert_eq!(before, counts(store, SYNC_TABLES), "{context}: refused ({error}), yet rows changed");
                format!("refused: {}", error.to_string().chars().take(40).collect::<String>())
            }
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    eprintln!("store_sync: {cases} cases from seed {first_seed}: {outcomes:#?}");
    h.assert_store_loads("store_sync");
    // Honest work goes on.
    h.sync_all(&mut phone).await;
}

// ---------------------------------------------------------------------------------------------
// (c) The roster CSV importer

const HEADER: &str = "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room";

/// A clean file for a new street, and one that hangs new rows under the demo's roster.
fn seed_csvs(demo: &gridlink_shared::demo::DemoData) -> Vec<String> {
    let roster = &demo.roster;
    let grid = roster.grids[0].id;
    let building = roster.buildings[0].id;
    let community = roster.communities[0].id;
    vec![
        format!(
            "{HEADER}
household,00000000-0000-4000-8000-000000000301,00000000-0000-4000-8000-000000000201,刘桂兰,13907149999,,,,,,2,302
building,00000000-0000-4000-8000-000000000201,00000000-0000-4000-8000-000000000101,澜湖印象3栋,,,,2,6,2,,
grid,00000000-0000-4000-8000-000000000101,00000000-0000-4000-8000-000000000011,澜湖社区第1网格,,,,,,,,
community,00000000-0000-4000-8000-000000000011,00000000-0000-4000-8000-000000000001,澜湖社区,,,,,,,,
street,00000000-0000-4000-8000-000000000001,,澜湖街道,,,,,,,,
staff,00000000-0000-4000-8000-000000000401,,孙丽华,13907140002,grid-worker,grid:00000000-0000-4000-8000-000000000101,,,,,
"
        ),
        format!(
            "{HEADER}
grid,00000000-0000-4000-8000-000000000102,{community},新网格,,,,,,,,
building,00000000-0000-4000-8000-000000000202,{grid},新楼,,,,1,3,2,,
household,00000000-0000-4000-8000-000000000302,{building},王芳,13800000000,,,,,,1,101
household,00000000-0000-4000-8000-000000000303,00000000-0000-4000-8000-000000000202,李强,,,,,,,1,201
staff,00000000-0000-4000-8000-000000000402,,赵敏,13900000000,building-leader,building:{building};grid:{grid},,,,,
"
        ),
    ]
}

const FIELD_VALUES: &[&str] = &[
    "",
    " ",
    "\"",
    "\"\"\"",
    "a,b",
    "line\nbreak",
    "\u{0}",
    "-1",
    "0",
    "201",
    "65536",
    "99999999999999999999",
    "1e3",
    "０１",
    "🏠🏠🏠",
    "\u{202e}反转",
    "grid:not-a-uuid",
    "street:00000000-0000-4000-8000-000000000001;grid:00000000-0000-4000-8000-000000000101",
    "00000000-0000-4000-8000-000000000001",
    "00000000-0000-4000-8000-000000000201",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "household",
    "street",
    "staff",
    "admin",
    "supervisor",
    "NaN",
];

fn mutate_csv(rng: &mut ChaCha8Rng, text: &str) -> Vec<u8> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for _ in 0..rng.random_range(1..=3) {
        let i = rng.random_range(0..lines.len());
        match rng.random_range(0..8) {
            0 => lines.insert(i, lines[i].clone()),
            1 if lines.len() > 1 => {
                lines.remove(i);
            }
            2 => {
                let j = rng.random_range(0..lines.len());
                lines.swap(i, j);
            }
            3..=5 => {
                let mut fields: Vec<String> = lines[i].split(',').map(str::to_string).collect();
                let f = rng.random_range(0..fields.len());
                fields[f] = if rng.random_bool(0.1) {
                    "长".repeat(rng.random_range(61..5000))
                } else {
                    FIELD_VALUES[rng.random_range(0..FIELD_VALUES.len())].to_string()
                };
                if rng.random_bool(0.2) {
                    fields.push("extra".into());
                }
                lines[i] = fields.join(",");
            }
            6 => {
                let mut fields: Vec<String> = lines[0].split(',').map(str::to_string).collect();
                let f = rng.random_range(0..fields.len());
                match rng.random_range(0..3) {
                    0 => {
                        fields.remove(f);
                    }
                    1 => fields[f] = "colour".into(),
                    _ => fields.push(fields[f].clone()),
                }
                lines[0] = fields.join(",");
            }
            _ => lines[i] = String::new(),
        }
    }
    let joiner = if rng.random_bool(0.2) { "\r\n" } else { "\n" };
    let mut bytes = lines.join(joiner).into_bytes();
    if rng.random_bool(0.1) {
        bytes.splice(0..0, *b"\xEF\xBB\xBF");
    }
    if rng.random_bool(0.25) {
        bytes = mutate_bytes(rng, &bytes);
    }
    bytes
}

#[test]
fn roster_import() {
    roster_import_on::<SqliteStore>(1500);
}

#[test]
fn roster_import_on_postgresql() {
    roster_import_on::<gridlink_sync_server::store::PgStore>(300);
}

fn roster_import_on<B: Backend>(default_cases: u64) {
    let (first_seed, cases) = plan(default_cases);
    let (_place, store) = B::fresh();
    store.load_demo(gridlink_shared::demo::DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let seeds =
        seed_csvs(&gridlink_shared::demo::generate(gridlink_shared::demo::DemoSize::Small, DEMO_SEED, DEMO_NOW));
    let counts =
        || -> BTreeMap<String, i64> { ROSTER_TABLES.iter().map(|t| (t.to_string(), store.count_rows(t))).collect() };
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for case in 0..cases {
        let seed = first_seed.wrapping_add(case);
        let context = format!("{} {}", B::NAME, replay("roster_import", seed));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let text = &seeds[rng.random_range(0..seeds.len())];
        let input = if rng.random_range(0..10) == 0 { text.clone().into_bytes() } else { mutate_csv(&mut rng, text) };
        let before = counts();
        let started = Instant::now();
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.import_csv_from(&input[..], now_millis())))
                .unwrap_or_else(|_| {
                    panic!("{context}: the importer panicked on {:?}", String::from_utf8_lossy(&input))
                });
        assert!(started.elapsed() < Duration::from_secs(10), "{context}: too slow");
        match result {
            Ok(_) => *outcomes.entry("imported").or_default() += 1,
            Err(ImportError::Rows(problems)) => {
                assert!(!problems.is_empty(), "{context}");
                for p in &problems {
                    assert!(!p.column.is_empty() && !p.problem.is_empty() && !p.zh.is_empty(), "{context}: {p:?}");
                }
                assert_eq!(before, counts(), "{context}: a refused file changed the store");
                *outcomes.entry("refused with problems").or_default() += 1;
            }
            Err(ImportError::Store(StoreError::Backend(detail))) => {
                panic!("{context}: a storage fault: {detail} on {:?}", String::from_utf8_lossy(&input))
            }
            Err(ImportError::Store(error)) => {
                assert_eq!(before, counts(), "{context}: {error}, yet the store changed");
                *outcomes.entry("refused").or_default() += 1;
            }
        }
    }
    eprintln!("roster_import on {}: {cases} cases from seed {first_seed}: {outcomes:?}", B::NAME);
    assert!(outcomes.contains_key("refused with problems"), "the mutator reaches the checks");
    let report = store.check(false, now_millis()).unwrap();
    assert!(report.bad_documents.is_empty() && report.index_mismatches.is_empty(), "{}: {report:?}", B::NAME);
}

// ---------------------------------------------------------------------------------------------
// Crashes found, kept as regression tests

/// A sync request whose only cursor is `cursor`, for the worker's own grid.
fn request_with_cursor(phone: &Device, scope: Scope, cursor: Cursor) -> protocol::SyncRequest {
    let mut request = phone.request(Vec::new());
    request.cursors = BTreeMap::from([(scope, cursor)]);
    request
}

/// Found by `store_sync` (seed 20261164): a `Snapshotting` cursor with `upto` past i64::MAX
/// reached SQLite as a parameter, failed to convert and came back as a 500. The API now
/// refuses any cursor past i64::MAX with a 400 before the store sees it.
#[tokio::test]
async fn regression_a_cursor_past_i64_max_is_a_400_not_a_500() {
    let h = Harness::new();
    let worker = h.staff(Role::GridWorker);
    let mut phone = h.enroll(&worker).await;
    h.sync_all(&mut phone).await;
    let scope = worker.scopes[0];
    let before = counts(&h.admin, SYNC_TABLES);
    for cursor in [
        Cursor::Snapshotting { upto: u64::MAX, after: DocId::new() },
        Cursor::Snapshotting { upto: i64::MAX as u64 + 1, after: DocId::new() },
        Cursor::Seq { seq: u64::MAX },
    ] {
        let body = protocol::encode(&request_with_cursor(&phone, scope, cursor));
        let (status, envelope) = h.sync_error(&phone.token, body).await;
        assert_eq!(status, 400, "{cursor:?}");
        assert!(envelope.error.message.contains("out of range"), "{cursor:?}: {}", envelope.error.message);
    }
    // At the edge of the range it is an ordinary (restarted or empty) page.
    let body = protocol::encode(&request_with_cursor(&phone, scope, Cursor::Seq { seq: i64::MAX as u64 }));
    assert_eq!(h.post_sync(&phone.token, body).await.0, 200);
    assert_eq!(before, counts(&h.admin, SYNC_TABLES));
}

/// The same input straight to `Store::sync` (found by the fuzz target): `pull_scope` once
/// took a `Snapshotting` cursor's `upto` as it came and bound it as an SQLite integer; it is
/// now checked against the scope's floor and head like a `Seq` cursor.
#[tokio::test]
async fn regression_store_sync_with_a_snapshotting_cursor_past_i64_max_is_not_a_storage_fault() {
    let h = Harness::new();
    let worker = h.staff(Role::GridWorker);
    let phone = h.enroll(&worker).await;
    let request =
        request_with_cursor(&phone, worker.scopes[0], Cursor::Snapshotting { upto: u64::MAX, after: DocId::new() });
    let response = h.admin.sync(phone.enrolled.device, &request, &PushLimits::default(), now_millis()).unwrap();
    assert_eq!(response.cursors[&worker.scopes[0]], Cursor::Start, "the scope starts over");
    assert!(response.more, "its snapshots follow on the next page");
}
