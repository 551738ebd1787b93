//! Server-side sync figures at the scale of a real street, over real HTTP on 127.0.0.1:
//! first sync of a grid worker and of a street supervisor (pages, bytes, time), then a run
//! of incremental syncs that each push one visit (syncs per second).
//!
//! `cargo run -p gridlink-sync-server --example sync_bench -- [DATA_DIR] [small|street]`
//! (default: a temporary directory with the street demo; an existing DATA_DIR is reused).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use anyhow::{Context, Result};
use automerge::{ActorId, AutoCommit};
use gridlink_shared::demo::DemoSize;
use gridlink_shared::protocol::{
    self, AckStatus, Cursor, EnrollRequest, EnrollResponse, PROTOCOL_VERSION, PullItem, PushChange, SyncRequest,
    SyncResponse,
};
use gridlink_shared::time::now_millis;
use gridlink_shared::{AnyDoc, DocId, HouseholdFile, Role, Scope, Visit, VisitId, VisitOutcome, doc};
use gridlink_sync_server::{AppState, SqliteStore};

struct Phone {
    token: String,
    actor: ActorId,
    user: gridlink_shared::UserId,
    /// The user's name, which every visit they record carries.
    name: String,
    cursors: BTreeMap<Scope, Cursor>,
    docs: HashMap<DocId, AutoCommit>,
    reference_version: Option<u64>,
    /// Time spent waiting for the server (request sent to last byte received).
    server_time: std::time::Duration,
}

struct Totals {
    pages: usize,
    wire_bytes: usize,
    items: usize,
}

async fn sync(http: &reqwest::Client, base: &str, phone: &mut Phone, changes: Vec<PushChange>) -> Result<SyncResponse> {
    let request = SyncRequest {
        protocol: PROTOCOL_VERSION,
        cursors: phone.cursors.clone(),
        changes,
        page_bytes: None,
        repair: Vec::new(),
        reference_version: phone.reference_version,
        device_time: now_millis(),
        health: None,
        verify: Vec::new(),
        compact_acks: false,
    };
    let waiting = Instant::now();
    let response = http
        .post(format!("{base}/v1/sync"))
        .bearer_auth(&phone.token)
        .header("content-type", protocol::CONTENT_TYPE)
        .body(protocol::encode(&request))
        .send()
        .await?
        .error_for_status()?;
    let body = response.bytes().await?;
    phone.server_time += waiting.elapsed();
    let decoded: SyncResponse = protocol::decode(&body)?;
    protocol::check_page(&request.cursors, &decoded)?;
    for item in &decoded.items {
        if matches!(item, PullItem::Echo { .. }) {
            continue; // this phone's own change
        }
        let entry = phone.docs.entry(item.doc()).or_default();
        match item {
            PullItem::Snapshot { bytes, .. } => {
                entry.merge(&mut doc::load(bytes)?)?;
            }
            PullItem::Change { bytes, .. } => {
                entry.apply_changes([doc::parse_change(bytes)?])?;
            }
            PullItem::Echo { .. } => {}
        }
    }
    phone.cursors = decoded.cursors.clone();
    if let Some(reference) = &decoded.reference {
        phone.reference_version = Some(reference.version);
    }
    Ok(decoded)
}

async fn first_sync(http: &reqwest::Client, base: &str, phone: &mut Phone) -> Result<Totals> {
    let mut totals = Totals { pages: 0, wire_bytes: 0, items: 0 };
    loop {
        // Wire size: the gzip size of the response, as the server's compression layer sends it.
        let response = sync(http, base, phone, Vec::new()).await?;
        let encoded = protocol::encode(&response);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &encoded)?;
        totals.wire_bytes += gz.finish()?.len();
        totals.pages += 1;
        totals.items += response.items.len();
        if !response.more {
            return Ok(totals);
        }
    }
}

async fn enroll(
    http: &reqwest::Client,
    base: &str,
    admin: &SqliteStore,
    user: gridlink_shared::UserId,
) -> Result<Phone> {
    let code = admin.new_code(user, now_millis(), 72)?;
    let enrolled: EnrollResponse = http
        .post(format!("{base}/v1/enroll"))
        .json(&EnrollRequest { code, device_name: "bench".into() })
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(Phone {
        token: enrolled.token,
        actor: ActorId::from(hex::decode(&enrolled.actor)?),
        user,
        name: enrolled.principal.name.clone(),
        cursors: BTreeMap::new(),
        docs: HashMap::new(),
        reference_version: None,
        server_time: std::time::Duration::ZERO,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let temp = tempfile::tempdir()?;
    let dir = args.next().map(std::path::PathBuf::from).unwrap_or_else(|| temp.path().to_path_buf());
    let size: DemoSize = args.next().as_deref().unwrap_or("street").parse().map_err(anyhow::Error::msg)?;
    let admin = if dir.join("server.db").exists() {
        SqliteStore::open(&dir)?
    } else {
        let store = SqliteStore::create(&dir)?;
        let started = Instant::now();
        let s = store.load_demo(size, 7, now_millis())?;
        println!(
            "init: {} households, {} cases in {:.1} s (building documents {:.1} s)",
            s.households,
            s.cases,
            started.elapsed().as_secs_f64(),
            s.build_ms as f64 / 1000.0
        );
        store
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gridlink_sync_server::serve(listener, AppState::new(SqliteStore::open(&dir)?), async {
        stopped.await.ok();
    }));
    let http = reqwest::Client::new();
    let users = admin.list_users()?;
    let worker = users.iter().find(|u| u.role == Role::GridWorker).context("no grid worker")?;
    let supervisor = users
        .iter()
        .find(|u| u.role == Role::Supervisor && matches!(u.scopes.first(), Some(Scope::Street(_))))
        .or_else(|| users.iter().find(|u| u.role == Role::Supervisor))
        .context("no supervisor")?;

    println!("| first sync | pages | items | gzip bytes | seconds (total) | seconds waiting for the server |");
    println!("|---|---|---|---|---|---|");
    for (label, user) in [("grid worker", worker), ("supervisor", supervisor)] {
        let mut phone = enroll(&http, &base, &admin, user.id).await?;
        let started = Instant::now();
        let t = first_sync(&http, &base, &mut phone).await?;
        println!(
            "| {label} ({}) | {} | {} | {} | {:.2} | {:.2} |",
            user.scopes[0],
            t.pages,
            t.items,
            t.wire_bytes,
            started.elapsed().as_secs_f64(),
            phone.server_time.as_secs_f64()
        );
    }

    let mut phone = enroll(&http, &base, &admin, worker.id).await?;
    first_sync(&http, &base, &mut phone).await?;
    let households: Vec<DocId> = phone
        .docs
        .iter()
        .filter(|(_, d)| matches!(doc::read_any(*d), Ok(AnyDoc::Household(_))))
        .map(|(id, _)| *id)
        .collect();
    let rounds = 200;
    let started = Instant::now();
    phone.server_time = std::time::Duration::ZERO;
    for i in 0..rounds {
        let id = households[i % households.len()];
        let d = phone.docs.get_mut(&id).context("held")?;
        d.set_actor(phone.actor.clone());
        let mut file: HouseholdFile = doc::read(d)?;
        let visit = Visit {
            id: VisitId::new(),
            visitor: phone.user,
            visitor_name: phone.name.clone(),
            at: now_millis(),
            recorded_at: now_millis(),
            outcome: VisitOutcome::Met,
            notes: "例行走访".into(),
            needs_found: Vec::new(),
            follow_up: None,
            residents_present: Vec::new(),
        };
        file.visits.insert(visit.id, visit);
        doc::update(d, &file, "visit", now_millis())?;
        let bytes = d.get_last_local_change().context("change")?.raw_bytes().to_vec();
        let response = sync(&http, &base, &mut phone, vec![PushChange { doc: id, bytes }]).await?;
        anyhow::ensure!(response.acks[0].status == AckStatus::Accepted, "{:?}", response.acks[0]);
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "incremental: {rounds} syncs, each pushing one visit, in {seconds:.2} s = {:.0} syncs/s (one client, \
         sequential); {:.1} ms per sync waiting for the server",
        rounds as f64 / seconds,
        phone.server_time.as_secs_f64() * 1000.0 / rounds as f64
    );
    stop.send(()).ok();
    server.await??;
    Ok(())
}
