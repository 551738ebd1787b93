//! The sync engine: one `POST /v1/sync` per round, CBOR bodies, gzip both ways.
//!
//! A round: read cursors, the oldest unsent changes (bounded batch) and repair requests from
//! the store ([`plan_request`], pure); send; check the page with
//! [`gridlink_shared::protocol::check_page`] before touching the store; apply acks, repairs,
//! pulled items, cursors, scope changes and reference data in ONE SQLite transaction
//! (`apply_response`). Rounds repeat while the server says `more` (or while a batch-limited
//! outbox still shrinks). Transient failures (connection, timeout, 5xx, 429, a garbled body)
//! are retried with exponential backoff and full jitter; pushes are idempotent by change
//! hash, so a lost reply costs only a retry and an acknowledged change is never re-sent
//! (acks and outbox deletions commit together).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use automerge::AutoCommit;
use gridlink_shared::change_bytes::{ChangeLimits, inspect_change};
use gridlink_shared::policy::PolicyConfig;
use gridlink_shared::protocol::{
    self, CONTENT_TYPE, Cursor, DeviceHealth, EnrollRequest, EnrollResponse, ErrorCode, ErrorEnvelope,
    PROTOCOL_VERSION, PullItem, PushChange, SyncRequest, SyncResponse,
};
use gridlink_shared::sync_core::{self, DeviceView, Effect};
use gridlink_shared::time::{Millis, now_millis};
use gridlink_shared::{DocError, DocId, Scope, doc};
use rand::Rng;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::error::{Error, Result};
use crate::views::SyncReport;
use crate::{Client, quarantine, store};

/// How hard to retry transient failures within one [`Client::sync`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per round, the first included.
    pub attempts: u32,
    /// Backoff before the second attempt; doubles each time, capped at `max_delay`, with full
    /// jitter (a random delay between zero and the cap).
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 6, base_delay: Duration::from_millis(300), max_delay: Duration::from_secs(10) }
    }
}

impl RetryPolicy {
    /// The backoff ceiling before attempt `attempt` (1-based retries).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.saturating_sub(1).min(20)).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Bounds on the changes pushed in one round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_changes: usize,
    pub max_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits { max_changes: 500, max_bytes: 2 * 1024 * 1024 }
    }
}

/// Rounds per [`Client::sync`]; a street-sized first sync needs a few dozen.
const MAX_ROUNDS: usize = 10_000;

/// One unsent change as the planner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    pub seq: i64,
    pub hash: String,
    pub doc: DocId,
    pub bytes: Vec<u8>,
}

/// Builds a sync request (pure): the cursors, the oldest outbox entries within `limits`
/// (always at least one, so an oversized change still goes), repair requests.
pub fn plan_request(
    cursors: BTreeMap<Scope, Cursor>,
    outbox: &[OutboxEntry],
    repair: Vec<DocId>,
    reference_version: Option<u64>,
    device_time: Millis,
    limits: &BatchLimits,
) -> SyncRequest {
    let mut ordered: Vec<&OutboxEntry> = outbox.iter().collect();
    ordered.sort_by_key(|e| e.seq);
    let mut changes = Vec::new();
    let mut bytes = 0usize;
    for entry in ordered {
        if !changes.is_empty() && (changes.len() >= limits.max_changes || bytes + entry.bytes.len() > limits.max_bytes)
        {
            break;
        }
        bytes += entry.bytes.len();
        changes.push(PushChange { doc: entry.doc, bytes: entry.bytes.clone() });
    }
    SyncRequest {
        protocol: PROTOCOL_VERSION,
        cursors,
        changes,
        page_bytes: None,
        repair,
        reference_version,
        device_time,
        health: None,
    }
}

fn outbox_entries(conn: &Connection, limit: usize) -> Result<Vec<OutboxEntry>> {
    let mut stmt = conn.prepare("SELECT seq, hash, doc, bytes FROM outbox ORDER BY seq LIMIT ?1")?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, Vec<u8>>(3)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, hash, doc, bytes) = row?;
        let doc = doc.parse().map_err(|e| Error::Corrupt(format!("outbox document id: {e}")))?;
        out.push(OutboxEntry { seq, hash, doc, bytes });
    }
    Ok(out)
}

/// Documents to ask the server's copy of (at most 100 per round), leaving out those already
/// asked during this sync: a copy that did not arrive, or arrived still damaged, is asked
/// again at the next sync, not in every round.
fn repair_wanted(conn: &Connection, asked: &BTreeSet<DocId>) -> Result<Vec<DocId>> {
    let mut stmt = conn.prepare("SELECT doc FROM repair_wanted ORDER BY doc")?;
    let ids: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    let mut wanted = Vec::new();
    for id in ids {
        let id: DocId = id.parse().map_err(|e| Error::Corrupt(format!("repair document id: {e}")))?;
        if !asked.contains(&id) {
            wanted.push(id);
        }
        if wanted.len() == 100 {
            break;
        }
    }
    Ok(wanted)
}

fn base_url(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

fn http_error(e: reqwest::Error) -> Error {
    // A certificate the trusted roots do not vouch for fails in the TLS handshake, before
    // any request is sent. It is not a network hiccup: say so, and do not retry.
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    if chain.contains("invalid peer certificate") || chain.contains("UnknownIssuer") {
        return Error::Tls(format!(
            "the server's certificate is not signed by a CA this device trusts for it \
             (the CA given at enrolment, or the built-in roots); refused before sending anything ({chain})"
        ));
    }
    if e.is_timeout() {
        Error::Timeout(e.to_string())
    } else {
        // Connection refused, reset, cut mid-body: all worth retrying.
        Error::Connect(e.to_string())
    }
}

async fn error_from_response(response: reqwest::Response) -> Error {
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<ErrorEnvelope>(&body) {
        Ok(envelope) if envelope.error.code == ErrorCode::DeviceRevoked => Error::Revoked,
        Ok(envelope) if envelope.error.code == ErrorCode::DeviceWiped => Error::Wiped,
        Ok(envelope) => Error::Server { status, code: Some(envelope.error.code), message: envelope.error.message },
        Err(_) => {
            Error::Server { status, code: None, message: String::from_utf8_lossy(&body).chars().take(200).collect() }
        }
    }
}

// ----- enrolment ----------------------------------------------------------------------------

pub(crate) async fn enroll(
    client: &Client,
    server_url: &str,
    code: &str,
    device_name: &str,
    ca_pem: Option<&str>,
) -> Result<()> {
    {
        let conn = client.db();
        if store::meta_get(&conn, "token")?.is_some() && store::meta_get(&conn, "revoked")?.is_none() {
            return Err(Error::Input("this data directory is already enrolled".into()));
        }
        let unsent = store::count(&conn, "outbox")?;
        if unsent > 0 {
            return Err(Error::Unsent { unsent, rejected: store::count(&conn, "rejected")? });
        }
    }
    let url = base_url(server_url);
    let request = EnrollRequest { code: code.trim().to_string(), device_name: device_name.to_string() };
    // With a CA, the enrolment itself already trusts only that CA.
    let http = match ca_pem {
        Some(pem) => crate::build_http(Some(pem))?,
        None => client.inner.http.get(),
    };
    let response = http.post(format!("{url}/v1/enroll")).json(&request).send().await.map_err(http_error)?;
    if !response.status().is_success() {
        return Err(error_from_response(response).await);
    }
    let enrolled: EnrollResponse = response.json().await.map_err(|e| Error::Protocol(e.to_string()))?;
    hex::decode(&enrolled.actor).map_err(|e| Error::Protocol(format!("actor id is not hex: {e}")))?;
    // The key's second copy, wrapped with the server's recovery secret for this device; the
    // secret itself is not kept. A server without one leaves no copy (and no stale one).
    let device = enrolled.device.to_string();
    match &enrolled.recovery_secret {
        Some(secret) => crate::keys::write_recovery(client.dir(), &client.inner.key, secret, &device, &url)?,
        None => {
            let stale = client.dir().join(crate::keys::RECOVERY_KEY_FILE);
            if stale.exists() {
                std::fs::remove_file(&stale).map_err(|e| Error::file("cannot remove", &stale, e))?;
            }
        }
    }
    client.with_tx(|tx| {
        if let Some(pem) = ca_pem {
            store::meta_set(tx, store::SERVER_CA, pem)?;
        }
        store::meta_set(tx, "server_url", &url)?;
        store::meta_set(tx, "device", &enrolled.device.to_string())?;
        store::meta_set(tx, "token", &enrolled.token)?;
        store::meta_set(tx, "actor", &enrolled.actor)?;
        store::meta_set_json(tx, "principal", &enrolled.principal)?;
        store::meta_delete(tx, "revoked")?;
        if store::cursors(tx)?.is_empty() {
            for scope in &enrolled.principal.scopes {
                store::set_cursor(tx, scope, &Cursor::Start)?;
            }
        }
        Ok(())
    })?;
    if ca_pem.is_some() {
        // From now on every request of this handle trusts only that CA.
        client.inner.http.set(http);
    }
    Ok(())
}

// ----- one round ----------------------------------------------------------------------------

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).and_then(|_| encoder.finish()).map_err(|e| Error::Encode(format!("gzip: {e}")))
}

/// One exchange: the response, gzip bytes sent, CBOR bytes received (after HTTP decoding).
async fn post_sync(
    client: &Client,
    url: &str,
    token: &str,
    request: &SyncRequest,
) -> Result<(SyncResponse, usize, usize)> {
    let body = gzip(&protocol::encode(request))?;
    let sent = body.len();
    let response = client
        .inner
        .http
        .post(format!("{url}/v1/sync"))
        .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
        .header(reqwest::header::CONTENT_ENCODING, "gzip")
        .header(reqwest::header::ACCEPT, CONTENT_TYPE)
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .map_err(http_error)?;
    if !response.status().is_success() {
        return Err(error_from_response(response).await);
    }
    let bytes = response.bytes().await.map_err(http_error)?;
    let decoded: SyncResponse = protocol::decode(&bytes).map_err(|e| Error::Protocol(e.to_string()))?;
    protocol::check_page(&request.cursors, &decoded).map_err(|e| Error::Protocol(e.to_string()))?;
    Ok((decoded, sent, bytes.len()))
}

async fn exchange(
    client: &Client,
    url: &str,
    token: &str,
    request: &SyncRequest,
    report: &mut SyncReport,
) -> Result<SyncResponse> {
    let policy = client.retry_policy();
    let mut attempt = 1;
    loop {
        match post_sync(client, url, token, request).await {
            Ok((response, sent, received)) => {
                report.bytes_sent += sent;
                report.bytes_received += received;
                return Ok(response);
            }
            Err(e) if e.is_retryable() && attempt < policy.attempts => {
                let ceiling = policy.ceiling(attempt);
                let delay = rand::rng().random_range(0..=ceiling.as_millis() as u64);
                tracing::warn!(attempt, delay_ms = delay, error = %e, "sync round failed; retrying");
                tokio::time::sleep(Duration::from_millis(delay)).await;
                report.retries += 1;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

// ----- applying a response ------------------------------------------------------------------

fn outbox_changes_of(tx: &Transaction<'_>, id: DocId) -> Result<Vec<automerge::Change>> {
    let mut stmt = tx.prepare("SELECT bytes FROM outbox WHERE doc = ?1 ORDER BY seq")?;
    let blobs: Vec<Vec<u8>> = stmt.query_map([id.to_string()], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    blobs.iter().map(|b| doc::parse_change(b).map_err(Error::from)).collect()
}

fn automerge_error(e: automerge::AutomergeError) -> Error {
    Error::from(DocError::from(e))
}

/// Replaces a document with the server's copy, re-applying its unsent local changes.
fn restore(tx: &Transaction<'_>, id: DocId, bytes: &[u8], policy: &PolicyConfig) -> Result<()> {
    let mut repaired = doc::load(bytes)?;
    let pending = outbox_changes_of(tx, id)?;
    if !pending.is_empty() {
        repaired.apply_changes(pending).map_err(automerge_error)?;
    }
    store::save_pulled_doc(tx, id, &mut repaired, policy)?;
    Ok(())
}

/// Applies one document's pulled items to its held state (if any) and saves it. Returns the
/// changes that were new and the snapshots received. Run it under [`quarantine::attempt`].
fn apply_pulled(
    tx: &Transaction<'_>,
    id: DocId,
    held: Option<AutoCommit>,
    items: &[&PullItem],
    policy: &PolicyConfig,
) -> Result<(usize, usize)> {
    let (mut changes, mut snapshots) = (0, 0);
    let mut slot = held;
    for item in items {
        match item {
            PullItem::Change { bytes, .. } => {
                // Bounded read first: an op or deflate bomb fails here, before automerge.
                inspect_change(bytes, &ChangeLimits::PULLED).map_err(|e| DocError::Corrupt(e.to_string()))?;
                let change = doc::parse_change(bytes)?;
                let target = slot.get_or_insert_with(AutoCommit::new);
                // Our own pushed changes come back in the log; only count what is new.
                if target.get_change_by_hash(&change.hash()).is_none() {
                    changes += 1;
                }
                target.apply_changes([change]).map_err(automerge_error)?;
            }
            PullItem::Snapshot { bytes, .. } => {
                match &mut slot {
                    Some(existing) => {
                        existing.load_incremental(bytes).map_err(automerge_error)?;
                    }
                    None => slot = Some(doc::load(bytes)?),
                }
                snapshots += 1;
            }
            PullItem::Echo { .. } => {}
        }
    }
    if let Some(mut automerge_doc) = slot {
        if !automerge_doc.get_missing_deps(&[]).is_empty() {
            // Changes waiting for history we do not hold: ask for the whole document.
            tx.execute("INSERT OR IGNORE INTO repair_wanted (doc) VALUES (?1)", [id.to_string()])?;
        }
        store::save_pulled_doc(tx, id, &mut automerge_doc, policy)?;
    }
    Ok((changes, snapshots))
}

/// Applies one whole response in one transaction: [`sync_core::plan_apply`] decides, this
/// performs its effects against the store (automerge merges, set-aside documents, cursors).
pub(crate) fn apply_response(
    client: &Client,
    request: &SyncRequest,
    response: &SyncResponse,
    report: &mut SyncReport,
) -> Result<()> {
    let policy = client.policy();
    let now = now_millis();
    client.with_tx(|tx| {
        let principal = store::principal(tx)?;
        let quarantined = quarantine::open_docs(tx)?;
        let purge_pending = store::meta_get(tx, "purge_pending")?.is_some();
        let device = DeviceView { quarantined: &quarantined, principal: &principal, purge_pending };
        let plan = sync_core::plan_apply(device, request, response).map_err(|e| Error::Protocol(e.to_string()))?;
        report.pushed += plan.pushed;
        report.accepted += plan.accepted;
        report.duplicates += plan.duplicates;
        report.rejected += plan.rejected;
        report.scopes_added.extend(plan.scopes_added.iter().map(Scope::to_string));
        report.scopes_removed.extend(plan.scopes_removed.iter().map(Scope::to_string));
        for effect in plan.effects {
            perform(tx, effect, response, policy, report, now)?;
        }
        report.quarantined = quarantine::open_count(tx)?;
        Ok(())
    })
}

/// Performs one effect of [`sync_core::plan_apply`] inside the round's transaction.
fn perform(
    tx: &Transaction<'_>,
    effect: Effect,
    response: &SyncResponse,
    policy: &PolicyConfig,
    report: &mut SyncReport,
    now: Millis,
) -> Result<()> {
    match effect {
        Effect::Sent { hash, .. } => {
            tx.execute("DELETE FROM outbox WHERE hash = ?1", [&hash])?;
        }
        Effect::KeepAside { hash, code, message, .. } => {
            tx.execute(
                "INSERT OR REPLACE INTO rejected (hash, doc, bytes, summary, code, message, recorded_at, rejected_at)
                 SELECT hash, doc, bytes, summary, ?2, ?3, recorded_at, ?4 FROM outbox WHERE hash = ?1",
                params![hash, code.code(), message, now],
            )?;
            tx.execute("DELETE FROM outbox WHERE hash = ?1", [&hash])?;
        }
        // The server's copy, plus whatever is still unsent locally. A copy that automerge
        // fails or panics on leaves the document set aside (or sets it aside).
        Effect::Restore { doc: id, repair } => {
            let snapshot = &response.repairs[repair];
            match quarantine::attempt(tx, || restore(tx, id, &snapshot.bytes, policy)) {
                Ok(()) => {
                    tx.execute("DELETE FROM repair_wanted WHERE doc = ?1", [id.to_string()])?;
                    if quarantine::resolve(tx, id, "repaired", now)? {
                        report.released += 1;
                    }
                    report.repaired += 1;
                }
                Err(e) if quarantine::is_damage(&e) => {
                    quarantine::set_aside(tx, id, &snapshot.bytes, &format!("repair copy: {e}"), now)?;
                }
                Err(e) => return Err(e),
            }
        }
        Effect::WantRepair { doc } | Effect::AwaitRepair { doc } => {
            tx.execute("INSERT OR IGNORE INTO repair_wanted (doc) VALUES (?1)", [doc.to_string()])?;
        }
        // Documents are independent, so each is applied on its own: one that automerge fails
        // or panics on is set aside with the bytes of this page, its stored state untouched,
        // and the rest of the page still applies and the cursors still move on.
        Effect::Pull { doc: id, items } => {
            let items: Vec<&PullItem> = items.iter().map(|&i| &response.items[i]).collect();
            let held = match store::load_doc(tx, id) {
                Ok(held) => held,
                Err(e) if quarantine::is_damage(&e) => {
                    quarantine::set_aside_stored(tx, id, &e.to_string(), now)?;
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            match quarantine::attempt(tx, || apply_pulled(tx, id, held, &items, policy)) {
                Ok((changes, snapshots)) => {
                    report.pulled_changes += changes;
                    report.pulled_snapshots += snapshots;
                }
                Err(e) if quarantine::is_damage(&e) => {
                    let bytes: Vec<u8> = items.iter().flat_map(|item| item.bytes().iter().copied()).collect();
                    quarantine::set_aside(tx, id, &bytes, &format!("pulled: {e}"), now)?;
                }
                Err(e) => return Err(e),
            }
        }
        Effect::DropScope { scope } => {
            tx.execute("DELETE FROM cursors WHERE scope = ?1", [scope.to_string()])?;
        }
        Effect::SetCursor { scope, cursor } => store::set_cursor(tx, &scope, &cursor)?,
        Effect::StartScope { scope } => {
            tx.execute(
                "INSERT OR IGNORE INTO cursors (scope, cursor) VALUES (?1, ?2)",
                [scope.to_string(), serde_json::to_string(&Cursor::Start).unwrap_or_default()],
            )?;
        }
        Effect::StoreReference => {
            if let Some(reference) = &response.reference {
                store::meta_set_json(tx, "roster", &reference.roster)?;
                store::meta_set(tx, "reference_version", &reference.version.to_string())?;
            }
        }
        Effect::SetPrincipal(principal) => store::meta_set_json(tx, "principal", &principal)?,
        Effect::PurgeUnheld => purge_unheld(tx, report, now)?,
    }
    Ok(())
}

/// Deletes documents that no held scope covers any more, except those with unsent changes:
/// they stay (marked kept aside) until their changes are pushed or refused.
fn purge_unheld(tx: &Transaction<'_>, report: &mut SyncReport, now: Millis) -> Result<()> {
    let held: BTreeSet<String> = store::cursors(tx)?.keys().map(|s| s.to_string()).collect();
    let rows: Vec<(String, String)> = {
        let mut stmt = tx.prepare("SELECT id, scopes FROM docs")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
    };
    let mut kept = 0;
    for (id, scopes) in rows {
        let scopes: Vec<String> = serde_json::from_str(&scopes).unwrap_or_default();
        if scopes.is_empty() || scopes.iter().any(|s| held.contains(s)) {
            continue;
        }
        let doc_id: DocId = id.parse().map_err(|e| Error::Corrupt(format!("document id: {e}")))?;
        if store::unsent_for_doc(tx, doc_id)? > 0 {
            tx.execute("UPDATE docs SET kept_aside = 1 WHERE id = ?1", [&id])?;
            kept += 1;
        } else {
            store::delete_doc(tx, doc_id)?;
            quarantine::resolve(tx, doc_id, "purged", now)?;
            report.purged += 1;
        }
    }
    report.kept_aside = kept;
    if kept > 0 {
        store::meta_set(tx, "purge_pending", "1")?;
    } else {
        store::meta_delete(tx, "purge_pending")?;
    }
    Ok(())
}

fn record_attempt(client: &Client, outcome: &Result<SyncReport>) -> Result<()> {
    let now = now_millis();
    let conn = client.db();
    store::meta_set(&conn, "last_attempt_at", &now.to_string())?;
    match outcome {
        Ok(_) => {
            store::meta_set(&conn, "last_success_at", &now.to_string())?;
            store::meta_set(&conn, "online", "1")?;
            store::meta_delete(&conn, "last_error")?;
        }
        Err(e) => {
            let offline = matches!(e, Error::Connect(_) | Error::Timeout(_));
            store::meta_set(&conn, "online", if offline { "0" } else { "1" })?;
            store::meta_set_json(&conn, "last_error", &e.plain())?;
            if matches!(e, Error::Revoked) {
                store::meta_set(&conn, "revoked", "1")?;
            }
        }
    }
    Ok(())
}

pub(crate) async fn sync(client: &Client) -> Result<SyncReport> {
    let _one_at_a_time = client.inner.sync_gate.lock().await;
    let (url, token) = {
        let conn = client.db();
        if store::meta_get(&conn, "revoked")?.is_some() {
            return Err(Error::Revoked);
        }
        let token = store::meta_get(&conn, "token")?.ok_or(Error::NotEnrolled)?;
        let url = store::meta_get(&conn, "server_url")?.ok_or(Error::NotEnrolled)?;
        (url, token)
    };
    let outcome = sync_rounds(client, &url, &token).await;
    if matches!(outcome, Err(Error::Wiped)) {
        // The administrator wiped this device: erase the store and its keys now, before
        // anything else reads them. Revoked, by contrast, keeps the data.
        let removed = client.erase()?;
        tracing::warn!(files = removed.len(), "this device was wiped by the administrator; local store erased");
        return Err(Error::Wiped);
    }
    record_attempt(client, &outcome)?;
    outcome
}

async fn sync_rounds(client: &Client, url: &str, token: &str) -> Result<SyncReport> {
    let mut report = SyncReport::default();
    let mut round = Round::default();
    for _ in 0..MAX_ROUNDS {
        let request = round.request(client)?;
        let response = exchange(client, url, token, &request, &mut report).await?;
        if !round.finish(client, &request, &response, &mut report)? {
            return Ok(report);
        }
    }
    Ok(report)
}

/// The rounds of one sync, for callers that carry requests themselves (the simulation, tools):
/// [`Round::request`] builds the next request exactly as [`Client::sync`] does, the caller
/// delivers it (or loses it), and [`Round::finish`] applies the answer and says whether to go
/// on. A request whose answer never came is simply not finished: nothing was applied.
#[derive(Debug, Default)]
pub struct Round {
    /// Repairs already asked during this sync (asked again at the next sync, not every round).
    repairs_asked: BTreeSet<DocId>,
    /// Unsent changes when the last request was built.
    unsent_before: usize,
}

impl Round {
    /// The next request: cursors, the oldest unsent changes within the batch limits, repairs
    /// wanted, the reference version and the device's health.
    pub fn request(&mut self, client: &Client) -> Result<SyncRequest> {
        let limits = client.batch_limits();
        let conn = client.db();
        let reference_version = store::meta_get(&conn, "reference_version")?.and_then(|v| v.parse().ok());
        let request = plan_request(
            store::cursors(&conn)?,
            &outbox_entries(&conn, limits.max_changes)?,
            repair_wanted(&conn, &self.repairs_asked)?,
            reference_version,
            now_millis(),
            &limits,
        );
        self.repairs_asked.extend(request.repair.iter().copied());
        self.unsent_before = store::count(&conn, "outbox")?;
        Ok(SyncRequest {
            health: Some(DeviceHealth {
                app_version: env!("CARGO_PKG_VERSION").to_string(),
                unsent: self.unsent_before as u64,
                rejected: store::count(&conn, "rejected")? as u64,
                quarantined: quarantine::open_count(&conn)? as u64,
            }),
            ..request
        })
    }

    /// Applies the server's answer to `request` in one transaction; `true` when another round
    /// should follow ([`sync_core::next_round`]).
    pub fn finish(
        &mut self,
        client: &Client,
        request: &SyncRequest,
        response: &SyncResponse,
        report: &mut SyncReport,
    ) -> Result<bool> {
        apply_response(client, request, response, report)?;
        report.rounds += 1;
        let unsent_after = store::count(&client.db(), "outbox")?;
        Ok(sync_core::next_round(response.more, request.changes.len(), self.unsent_before, unsent_after))
    }
}

/// Applies one server page the way a sync round does, without the network: the page is
/// checked against the stored cursors ([`protocol::check_page`]) and applied in one
/// transaction, damaged documents set aside as in [`Client::sync`]. Nothing is pushed. For
/// tests and tools that feed pages by hand; the app and the CLI use [`Client::sync`].
pub fn apply_page(client: &Client, response: &SyncResponse) -> Result<SyncReport> {
    let request = {
        let conn = client.db();
        plan_request(store::cursors(&conn)?, &[], vec![], None, now_millis(), &BatchLimits::default())
    };
    protocol::check_page(&request.cursors, response).map_err(|e| Error::Protocol(e.to_string()))?;
    let mut report = SyncReport::default();
    apply_response(client, &request, response, &mut report)?;
    report.rounds = 1;
    Ok(report)
}

/// Stores an enrolment the caller obtained itself (the simulation enrols in process): the
/// server's URL, the device's token, actor and principal, and a cursor at the start of each
/// scope. [`Client::enroll`] does the same after its HTTP exchange.
pub fn adopt_enrollment(client: &Client, server_url: &str, enrolled: &EnrollResponse) -> Result<()> {
    hex::decode(&enrolled.actor).map_err(|e| Error::Protocol(format!("actor id is not hex: {e}")))?;
    client.with_tx(|tx| {
        store::meta_set(tx, "server_url", &base_url(server_url))?;
        store::meta_set(tx, "device", &enrolled.device.to_string())?;
        store::meta_set(tx, "token", &enrolled.token)?;
        store::meta_set(tx, "actor", &enrolled.actor)?;
        store::meta_set_json(tx, "principal", &enrolled.principal)?;
        store::meta_delete(tx, "revoked")?;
        if store::cursors(tx)?.is_empty() {
            for scope in &enrolled.principal.scopes {
                store::set_cursor(tx, scope, &Cursor::Start)?;
            }
        }
        Ok(())
    })
}

/// The heads of every document held locally, sorted: what a convergence check compares with
/// the server's copies.
pub fn document_heads(client: &Client) -> Result<BTreeMap<DocId, Vec<automerge::ChangeHash>>> {
    let conn = client.db();
    let ids: Vec<String> = {
        let mut stmt = conn.prepare("SELECT id FROM docs")?;
        stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
    };
    let mut heads = BTreeMap::new();
    for id in ids {
        let id: DocId = id.parse().map_err(|e| Error::Protocol(format!("stored document id {id}: {e}")))?;
        if let Some(mut held) = store::load_doc(&conn, id)? {
            let mut doc_heads = held.get_heads();
            doc_heads.sort();
            heads.insert(id, doc_heads);
        }
    }
    Ok(heads)
}

/// Hashes of the changes still in the outbox, oldest first.
pub fn unsent_hashes(client: &Client) -> Result<Vec<String>> {
    let conn = client.db();
    let mut stmt = conn.prepare("SELECT hash FROM outbox ORDER BY seq")?;
    Ok(stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?)
}

/// Hashes of the changes the server refused, kept aside on the device.
pub fn rejected_hashes(client: &Client) -> Result<Vec<String>> {
    let conn = client.db();
    let mut stmt = conn.prepare("SELECT hash FROM rejected")?;
    Ok(stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?)
}

/// Whether a document is held locally (for tests and the CLI).
pub fn holds_document(conn: &Connection, id: DocId) -> Result<bool> {
    Ok(conn.query_row("SELECT 1 FROM docs WHERE id = ?1", [id.to_string()], |_| Ok(())).optional()?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{DEMO_NOW, demo_client};
    use crate::{HouseholdFilter, NewVisit};
    use gridlink_shared::protocol::{Ack, AckStatus, DocSnapshot};
    use gridlink_shared::{GridId, RejectCode, Role, VisitOutcome};

    fn empty_response() -> SyncResponse {
        SyncResponse {
            protocol: PROTOCOL_VERSION,
            server_time: DEMO_NOW,
            acks: vec![],
            items: vec![],
            cursors: BTreeMap::new(),
            more: false,
            scopes_added: vec![],
            scopes_removed: vec![],
            repairs: vec![],
            reference: None,
        }
    }

    fn plan(client: &Client) -> SyncRequest {
        let conn = client.db();
        plan_request(
            store::cursors(&conn).unwrap(),
            &outbox_entries(&conn, 100).unwrap(),
            repair_wanted(&conn, &BTreeSet::new()).unwrap(),
            None,
            DEMO_NOW,
            &BatchLimits::default(),
        )
    }

    #[test]
    fn a_rejected_change_is_kept_aside_and_the_server_copy_restored() {
        let dir = tempfile::tempdir().unwrap();
        let (client, _) = demo_client(dir.path(), Role::GridWorker, DEMO_NOW).unwrap();
        let household = client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap()[0].id;
        let server_copy = store::load_doc(&client.db(), household.into()).unwrap().unwrap().save();
        let visits_before = client.household(household, DEMO_NOW).unwrap().visits.len();
        let visit = NewVisit {
            household,
            outcome: VisitOutcome::Met,
            notes: "将被退回的走访".into(),
            needs_found: vec![],
            follow_up: None,
            residents_present: vec![],
            at: DEMO_NOW,
        };
        client.record_visit(visit, DEMO_NOW).unwrap();
        let request = plan(&client);
        assert_eq!(request.changes.len(), 1);
        let hash = doc::parse_change(&request.changes[0].bytes).unwrap().hash().to_string();

        let mut response = empty_response();
        response.acks.push(Ack {
            doc: household.into(),
            hash: hash.clone(),
            status: AckStatus::Rejected { code: RejectCode::OutOfScope, message: "not your grid any more".into() },
        });
        response.repairs.push(DocSnapshot {
            doc: household.into(),
            doc_type: gridlink_shared::DocType::Household,
            bytes: server_copy,
        });
        let mut report = SyncReport::default();
        apply_response(&client, &request, &response, &mut report).unwrap();

        assert_eq!((report.rejected, report.repaired), (1, 1));
        let status = client.status().unwrap();
        assert_eq!((status.unsent, status.rejected), (0, 1));
        let kept = client.rejected_changes().unwrap();
        assert_eq!(kept[0].hash, hash);
        assert_eq!(kept[0].code, RejectCode::OutOfScope);
        assert_eq!(client.household(household, DEMO_NOW).unwrap().visits.len(), visits_before, "server copy restored");
        assert!(plan(&client).repair.is_empty(), "the repair arrived, nothing more to ask");
        assert!(client.dismiss_rejected(&hash).unwrap());
        assert!(!client.dismiss_rejected(&hash).unwrap());
        assert_eq!(client.status().unwrap().rejected, 0);
    }

    #[test]
    fn a_rejection_without_repair_asks_for_one_and_a_change_with_missing_history_too() {
        let dir = tempfile::tempdir().unwrap();
        let (client, data) = demo_client(dir.path(), Role::GridWorker, DEMO_NOW).unwrap();
        let household = client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap()[0].id;
        client.set_tag(household, gridlink_shared::MustVisitTag::PoorFamily, true, None, DEMO_NOW).unwrap();
        let scopes = store::principal(&client.db()).unwrap().scopes;
        for scope in scopes {
            store::set_cursor(&client.db(), &scope, &Cursor::Start).unwrap();
        }
        let mut request = plan(&client);
        let hash = doc::parse_change(&request.changes[0].bytes).unwrap().hash().to_string();
        let mut response = empty_response();
        response.acks.push(Ack {
            doc: household.into(),
            hash,
            status: AckStatus::Rejected { code: RejectCode::ForbiddenEdit, message: "no".into() },
        });
        // A change of a document this device has never seen, whose history is missing.
        let case = data.cases.iter().find(|c| !holds_document(&client.db(), c.id.into()).unwrap()).unwrap();
        let mut foreign = doc::create(case, automerge::ActorId::random(), DEMO_NOW).unwrap();
        let mut changed = case.clone();
        changed.title = "标题已修改".into();
        let heads = foreign.get_heads();
        doc::update(&mut foreign, &changed, "retitle", DEMO_NOW).unwrap();
        let later = foreign.get_changes(&heads).pop().unwrap();
        let scope = Scope::Grid(case.placement.grid);
        // Pages carry only scopes the device sent a cursor for.
        request.cursors.entry(scope).or_insert(Cursor::Start);
        response.items.push(PullItem::Change {
            scope,
            seq: 1,
            doc: case.id.into(),
            doc_type: gridlink_shared::DocType::Case,
            bytes: later.raw_bytes().to_vec(),
        });
        let garbled = client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap()[1].id;
        response.items.push(PullItem::Change {
            scope,
            seq: 2,
            doc: garbled.into(),
            doc_type: gridlink_shared::DocType::Household,
            bytes: b"not an automerge change".to_vec(),
        });
        let mut report = SyncReport::default();
        apply_response(&client, &request, &response, &mut report).unwrap();
        let wanted = plan(&client).repair;
        assert!(wanted.contains(&garbled.into()), "an unreadable item is repaired, not a stalled log");
        assert!(wanted.contains(&household.into()), "rejected without a repair: ask for the server copy");
        assert!(wanted.contains(&case.id.into()), "missing history: ask for the whole document");
    }

    #[test]
    fn a_stored_copy_automerge_panics_on_is_set_aside_when_read_and_a_clean_repair_restores_it() {
        let dir = tempfile::tempdir().unwrap();
        let (client, _) = demo_client(dir.path(), Role::GridWorker, DEMO_NOW).unwrap();
        let rows = client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap();
        let (household, other) = (rows[0].id, rows[1].id);
        let id: DocId = household.into();
        // A store poisoned earlier: the stored copy holds its last change twice, under two seqs.
        let mut good = store::load_doc(&client.db(), id).unwrap().unwrap();
        let clean_copy = good.save();
        let changes = good.get_changes(&[]);
        let mut poison = changes.last().unwrap().decode();
        poison.seq += 1;
        let mut concatenated: Vec<u8> = changes.iter().flat_map(|c| c.raw_bytes().to_vec()).collect();
        concatenated.extend_from_slice(automerge::Change::from(poison).raw_bytes());
        // Release builds of automerge load those and save them, and panic loading the save;
        // debug builds already panic loading the changes.
        let poisoned =
            std::panic::catch_unwind(|| AutoCommit::load(&concatenated).unwrap().save()).unwrap_or(concatenated);
        client.db().execute("UPDATE docs SET bytes = ?1 WHERE id = ?2", params![poisoned, id.to_string()]).unwrap();

        let opened = client.household(household, DEMO_NOW).unwrap_err();
        assert!(matches!(opened, Error::Quarantined { what: "household", .. }), "{opened:?}");
        let kept = client.quarantined().unwrap();
        assert_eq!((kept.len(), kept[0].doc, &kept[0].bytes), (1, id, &poisoned), "the stored bytes are kept");
        assert!(kept[0].reason.starts_with("stored copy"), "{}", kept[0].reason);
        assert_eq!(client.status().unwrap().quarantined, 1);
        assert_eq!(plan(&client).repair, vec![id]);
        let visit = NewVisit {
            household,
            outcome: VisitOutcome::Met,
            notes: String::new(),
            needs_found: vec![],
            follow_up: None,
            residents_present: vec![],
            at: DEMO_NOW,
        };
        assert!(matches!(client.record_visit(visit.clone(), DEMO_NOW), Err(Error::Quarantined { .. })));
        let exported = client.export().unwrap();
        assert_eq!(exported["households"].as_array().unwrap().len(), rows.len() - 1, "exported without it");
        assert!(client.household(other, DEMO_NOW).is_ok());
        assert_eq!(client.quarantined().unwrap().len(), 1, "the same bytes are recorded once");

        // A clean repair replaces the stored copy and releases it.
        let mut response = empty_response();
        response.repairs.push(DocSnapshot {
            doc: id,
            doc_type: gridlink_shared::DocType::Household,
            bytes: clean_copy,
        });
        let mut report = SyncReport::default();
        apply_response(&client, &plan(&client), &response, &mut report).unwrap();
        assert_eq!((report.repaired, report.released, report.quarantined), (1, 1, 0));
        assert!(client.household(household, DEMO_NOW).is_ok());
        client.record_visit(visit, DEMO_NOW).unwrap();
        assert!(plan(&client).repair.is_empty());
    }

    #[test]
    fn a_page_with_a_gap_is_refused_before_anything_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let (client, _) = demo_client(dir.path(), Role::GridWorker, DEMO_NOW).unwrap();
        let household = client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap()[0].id;
        let visit = NewVisit {
            household,
            outcome: VisitOutcome::Met,
            notes: "缺页时不能丢的走访".into(),
            needs_found: vec![],
            follow_up: None,
            residents_present: vec![],
            at: DEMO_NOW,
        };
        client.record_visit(visit, DEMO_NOW).unwrap();
        let scope = store::principal(&client.db()).unwrap().scopes[0];
        store::set_cursor(&client.db(), &scope, &Cursor::Start).unwrap();
        let request = plan(&client);
        let hash = doc::parse_change(&request.changes[0].bytes).unwrap().hash().to_string();
        let cursors_before = store::cursors(&client.db()).unwrap();
        let stored_before = store::load_doc(&client.db(), household.into()).unwrap().unwrap().save();

        // An ack that would empty the outbox, a change for the household, then a gap.
        let mut response = empty_response();
        response.acks.push(Ack { doc: household.into(), hash, status: AckStatus::Accepted });
        let change_bytes = request.changes[0].bytes.clone();
        for seq in [1, 3] {
            response.items.push(PullItem::Change {
                scope,
                seq,
                doc: household.into(),
                doc_type: gridlink_shared::DocType::Household,
                bytes: change_bytes.clone(),
            });
        }
        response.cursors.insert(scope, Cursor::Seq { seq: 3 });

        let err = apply_page(&client, &response).unwrap_err();
        assert!(matches!(err, Error::Protocol(ref m) if m.contains("gap")), "{err:?}");
        let mut report = SyncReport::default();
        assert!(apply_response(&client, &request, &response, &mut report).is_err(), "the executor refuses it too");
        assert_eq!(client.status().unwrap().unsent, 1, "the ack was not applied: the visit is still unsent");
        assert_eq!(store::cursors(&client.db()).unwrap(), cursors_before, "no cursor moved");
        let stored_after = store::load_doc(&client.db(), household.into()).unwrap().unwrap().save();
        assert_eq!(stored_after, stored_before, "the household was not touched");
    }

    fn entry(seq: i64, size: usize) -> OutboxEntry {
        OutboxEntry { seq, hash: format!("h{seq}"), doc: DocId::from_u128(seq as u128), bytes: vec![0; size] }
    }

    #[test]
    fn plan_sends_oldest_first_within_limits_and_at_least_one() {
        let outbox = vec![entry(3, 10), entry(1, 10), entry(2, 10)];
        let cursors = BTreeMap::from([(Scope::Grid(GridId::from_u128(1)), Cursor::Seq { seq: 4 })]);
        let limits = BatchLimits { max_changes: 2, max_bytes: 1000 };
        let request = plan_request(cursors.clone(), &outbox, vec![], Some(3), 99, &limits);
        assert_eq!(
            request.changes.iter().map(|c| c.doc).collect::<Vec<_>>(),
            vec![DocId::from_u128(1), DocId::from_u128(2)]
        );
        assert_eq!(request.cursors, cursors);
        assert_eq!(request.reference_version, Some(3));

        let tiny = BatchLimits { max_changes: 10, max_bytes: 5 };
        let request = plan_request(BTreeMap::new(), &outbox, vec![], None, 0, &tiny);
        assert_eq!(request.changes.len(), 1, "an oversized change still goes, alone");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        assert_eq!(policy.ceiling(1), Duration::from_millis(100));
        assert_eq!(policy.ceiling(2), Duration::from_millis(200));
        assert_eq!(policy.ceiling(4), Duration::from_millis(800));
        assert_eq!(policy.ceiling(9), Duration::from_millis(1000));
    }

    #[test]
    fn retryable_errors_are_the_transient_ones() {
        assert!(Error::Connect("reset".into()).is_retryable());
        assert!(Error::Server { status: 503, code: None, message: String::new() }.is_retryable());
        assert!(Error::Server { status: 429, code: None, message: String::new() }.is_retryable());
        assert!(
            !Error::Server { status: 400, code: Some(ErrorCode::BadRequest), message: String::new() }.is_retryable()
        );
        assert!(!Error::Revoked.is_retryable());
    }
}
