//! What acks cost, full and compact, over real HTTP on 127.0.0.1: a grid worker's phone (small
//! demo) pushes 1, 30 and 50 visits in one sync, once as an older app does (full acks) and
//! once asking for compact acks, and the responses are measured as CBOR and as gzip on the wire.
//! Then, on each compact response, the bytes the acks themselves add: the same response with no
//! acks, with the full acks the server would have sent, and with the compact ones. Prints,
//! asserts nothing.
//!
//! `cargo run --release -p gridlink-sync-server --example ack_bytes`

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};

use anyhow::{Context, Result};
use automerge::{ActorId, AutoCommit};
use gridlink_shared::demo::DemoSize;
use gridlink_shared::protocol::{
    self, Cursor, EnrollRequest, EnrollResponse, PROTOCOL_VERSION, PullItem, PushChange, SyncRequest, SyncResponse,
};
use gridlink_shared::time::now_millis;
use gridlink_shared::{AnyDoc, DocId, HouseholdFile, Role, Scope, UserId, Visit, VisitId, VisitOutcome, doc};
use gridlink_sync_server::{AppState, SqliteStore};

struct Phone {
    token: String,
    actor: ActorId,
    user: UserId,
    name: String,
    cursors: BTreeMap<Scope, Cursor>,
    docs: HashMap<DocId, AutoCommit>,
    reference_version: Option<u64>,
}

/// One exchange: the response and its size on the wire (gzip, as the server sent it).
async fn exchange(
    http: &reqwest::Client,
    base: &str,
    phone: &mut Phone,
    changes: Vec<PushChange>,
    compact_acks: bool,
) -> Result<(SyncRequest, SyncResponse, usize)> {
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
        compact_acks,
    };
    let reply = http
        .post(format!("{base}/v1/sync"))
        .bearer_auth(&phone.token)
        .header("content-type", protocol::CONTENT_TYPE)
        .header("accept-encoding", "gzip")
        .body(protocol::encode(&request))
        .send()
        .await?
        .error_for_status()?;
    let gzipped = reply.headers().get("content-encoding").is_some_and(|v| v == "gzip");
    let wire = reply.bytes().await?;
    let body = if gzipped {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&wire[..]).read_to_end(&mut plain)?;
        plain
    } else {
        wire.to_vec()
    };
    let response: SyncResponse = protocol::decode(&body)?;
    protocol::check_page(&request.cursors, &response)?;
    protocol::check_acks(&request, &response)?;
    for item in &response.items {
        let held = phone.docs.entry(item.doc()).or_default();
        match item {
            PullItem::Snapshot { bytes, .. } => held.merge(&mut doc::load(bytes)?).map(drop)?,
            PullItem::Change { bytes, .. } => held.apply_changes([doc::parse_change(bytes)?])?,
            PullItem::Echo { .. } => {}
        }
    }
    phone.cursors = response.cursors.clone();
    if let Some(reference) = &response.reference {
        phone.reference_version = Some(reference.version);
    }
    Ok((request, response, wire.len()))
}

fn gzip_len(bytes: &[u8]) -> Result<usize> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes)?;
    Ok(gz.finish()?.len())
}

/// A visit on each of `n` households (round robin), as the app records them.
fn visits(phone: &mut Phone, households: &[DocId], n: usize) -> Result<Vec<PushChange>> {
    let notes = ["入户走访，老人独居，身体尚可", "家中有残疾人，已登记补贴需求", "反映楼道灯不亮，已报物业"];
    let mut changes = Vec::new();
    for i in 0..n {
        let id = households[i % households.len()];
        let held = phone.docs.get_mut(&id).context("held")?;
        held.set_actor(phone.actor.clone());
        let mut file: HouseholdFile = doc::read(held)?;
        let visit = Visit {
            id: VisitId::new(),
            visitor: phone.user,
            visitor_name: phone.name.clone(),
            at: now_millis(),
            recorded_at: now_millis(),
            outcome: VisitOutcome::Met,
            notes: notes[i % notes.len()].into(),
            needs_found: Vec::new(),
            follow_up: None,
            residents_present: Vec::new(),
        };
        file.visits.insert(visit.id, visit);
        doc::update(held, &file, "visit", now_millis())?;
        changes
            .push(PushChange { doc: id, bytes: held.get_last_local_change().context("change")?.raw_bytes().to_vec() });
    }
    Ok(changes)
}

#[tokio::main]
async fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let admin = SqliteStore::create(dir.path())?;
    admin.load_demo(DemoSize::Small, 7, now_millis())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::new(SqliteStore::open(dir.path())?);
    let server = tokio::spawn(gridlink_sync_server::serve(listener, state, async {
        stopped.await.ok();
    }));
    // No automatic inflation: the gzip size on the wire is what is measured.
    let http = reqwest::Client::builder().no_gzip().build()?;
    let users = admin.list_users()?;
    let worker = users.iter().find(|u| u.role == Role::GridWorker).context("no grid worker")?;
    let code = admin.new_code(worker.id, now_millis(), 72)?;
    let enrolled: EnrollResponse = http
        .post(format!("{base}/v1/enroll"))
        .json(&EnrollRequest { code, device_name: "ack-bytes".into() })
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut phone = Phone {
        token: enrolled.token,
        actor: ActorId::from(hex::decode(&enrolled.actor)?),
        user: worker.id,
        name: enrolled.principal.name.clone(),
        cursors: BTreeMap::new(),
        docs: HashMap::new(),
        reference_version: None,
    };
    loop {
        let (_, response, _) = exchange(&http, &base, &mut phone, Vec::new(), false).await?;
        if !response.more {
            break;
        }
    }
    let mut households: Vec<DocId> = phone
        .docs
        .iter()
        .filter(|(_, d)| matches!(doc::read_any(*d), Ok(AnyDoc::Household(_))))
        .map(|(id, _)| *id)
        .collect();
    households.sort();

    println!("Whole sync responses pushing N visits (real HTTP; gzip = bytes on the wire):");
    println!("| N | full acks: CBOR B | gzip B | compact acks: CBOR B | gzip B |");
    println!("|---|---|---|---|---|");
    let mut isolated = Vec::new();
    for n in [1usize, 30, 50] {
        let changes = visits(&mut phone, &households, n)?;
        let (_, full, full_wire) = exchange(&http, &base, &mut phone, changes, false).await?;
        let changes = visits(&mut phone, &households, n)?;
        let (request, compact, compact_wire) = exchange(&http, &base, &mut phone, changes, true).await?;
        anyhow::ensure!(full.acks.len() == n && compact.compact_acks.is_some(), "unexpected answers");
        println!(
            "| {n} | {} | {full_wire} | {} | {compact_wire} |",
            protocol::encode(&full).len(),
            protocol::encode(&compact).len()
        );
        isolated.push((n, request, compact));
    }

    println!();
    println!("Bytes the acks add to one response (the compact response above, re-encoded without acks,");
    println!("with the full acks the server would have sent, and as sent); per ack in brackets:");
    println!("| N | full acks: CBOR B | gzip B | compact acks: CBOR B | gzip B |");
    println!("|---|---|---|---|---|");
    for (n, request, compact) in isolated {
        let acks = protocol::resolve_acks(&request, &compact)?;
        let bare = SyncResponse { acks: Vec::new(), compact_acks: None, ..compact.clone() };
        let full = SyncResponse { acks, compact_acks: None, ..compact.clone() };
        let size = |r: &SyncResponse| -> Result<(usize, usize)> {
            let bytes = protocol::encode(r);
            Ok((bytes.len(), gzip_len(&bytes)?))
        };
        let ((bare_cbor, bare_gz), (full_cbor, full_gz), (compact_cbor, compact_gz)) =
            (size(&bare)?, size(&full)?, size(&compact)?);
        let per = |total: usize, base: usize| {
            let added = total as f64 - base as f64;
            format!("{added:.0} ({:.1})", added / n as f64)
        };
        println!(
            "| {n} | {} | {} | {} | {} |",
            per(full_cbor, bare_cbor),
            per(full_gz, bare_gz),
            per(compact_cbor, bare_cbor),
            per(compact_gz, bare_gz)
        );
    }
    stop.send(()).ok();
    server.await??;
    Ok(())
}
