//! The sync engine: one `POST /v1/sync` per round, CBOR bodies, gzip both ways.
//!
//! A round: read cursors, the oldest unsent changes (bounded batch) and repair requests from
//! the store ([`plan_request`], pure); send; check the page and the acks with
//! [`gridlink_shared::protocol::check_page`] and [`gridlink_shared::protocol::check_acks`]
//! before touching the store; apply acks, repairs, pulled items, cursors, scope changes and
//! reference data in ONE SQLite transaction (`apply_response`). The device asks for compact
//! acks (a status byte per pushed change, in request order) and names each change by its own
//! outbox copy; acks that do not fit what it pushed are refused like a bad page, and an older
//! server's full acks are read as before. Rounds repeat while the server says `more` (or while a batch-limited
//! outbox still shrinks). Transient failures (connection, timeout, 5xx, 429, a garbled body)
//! are retried with exponential backoff and full jitter; pushes are idempotent by change
//! hash, so a lost reply costs only a retry and an acknowledged change is never re-sent
//! (acks and outbox deletions commit together).
//!
//! Divergence: the server sends the digest of every scope whose page is complete; once caught
//! up the device compares it with its own, computed from the heads in its `docs` table
//! ([`scope_digest_of_device`]), and keeps the last comparison per scope in `meta` for
//! `gridlink verify` ([`digest_checks`]). A mismatch makes the next round carry a verify list
//! (every held document of the scope with its entry); the server's copies of the documents
//! that differ come back, and each is restored from the server copy plus the device's unsent
//! changes, with the device's own changes the copy lacks queued again first, so they reach the
//! server in the same sync. Documents the server does not hold there are forgotten unless they
//! still have something to send.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use automerge::AutoCommit;
use gridlink_shared::change_bytes::{ChangeLimits, inspect_change};
use gridlink_shared::digest::{DocEntry, ScopeDigest};
use gridlink_shared::policy::PolicyConfig;
use gridlink_shared::protocol::{
    self, CONTENT_TYPE, Cursor, DEFAULT_PAGE_BYTES, DeviceHealth, EnrollRequest, EnrollResponse, ErrorCode,
    ErrorEnvelope, MAX_PAGE_BYTES, MAX_VERIFY_DOCS, MAX_VERIFY_SCOPES, PROTOCOL_VERSION, PullItem, PushChange,
    SyncRequest, SyncResponse, VerifyDoc, VerifyScope,
};
use gridlink_shared::sync_core::{self, Comparison, DeviceView, Effect, InFlight};
use gridlink_shared::time::{Millis, now_millis};
use gridlink_shared::{AnyDoc, DocError, DocId, Scope, doc};
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
        verify: Vec::new(),
        // This device reads compact acks; an older server ignores the flag and sends full ones.
        compact_acks: true,
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
        store_enrollment(tx, &url, &enrolled)
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
    protocol::check_acks(request, &decoded).map_err(|e| Error::Protocol(e.to_string()))?;
    Ok((decoded, sent, bytes.len()))
}

/// The page sizes a sync asks for. It starts at [`FIRST_PAGE_BYTES`] and doubles after each
/// full page that came within [`GROW_WITHIN`], up to [`MAX_PAGE_BYTES`], so a supervisor's
/// first sync of a whole street takes a handful of requests instead of one per megabyte; a
/// request that timed out is retried for half the page (a slow link gets pages it can carry
/// within the client's timeout), down to [`MIN_PAGE_BYTES`].
const FIRST_PAGE_BYTES: u64 = 4 * DEFAULT_PAGE_BYTES;
const MIN_PAGE_BYTES: u64 = 128 * 1024;
const GROW_WITHIN: Duration = Duration::from_secs(10);

/// The next page size after a round: doubled when the page was full (`more`) and quick.
fn next_page_bytes(page: u64, more: bool, took: Duration) -> u64 {
    if more && took < GROW_WITHIN { page.saturating_mul(2).min(MAX_PAGE_BYTES) } else { page }
}

async fn exchange(
    client: &Client,
    url: &str,
    token: &str,
    request: &mut SyncRequest,
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
                if matches!(e, Error::Timeout(_)) {
                    let page = request.page_bytes.unwrap_or(DEFAULT_PAGE_BYTES);
                    request.page_bytes = Some((page / 2).max(MIN_PAGE_BYTES));
                }
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
    // A document arriving whole into an empty slot is stored as the bytes that came: they
    // loaded, which is all a re-save would prove.
    let whole = match (&held, items) {
        (None, [PullItem::Snapshot { bytes, .. }]) => Some(bytes.as_slice()),
        _ => None,
    };
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
        match whole {
            Some(bytes) => {
                let value = quarantine::guarded(|| Ok(doc::read_any(&automerge_doc).ok()))?;
                store::save_pulled_snapshot(tx, id, &mut automerge_doc, bytes, value, policy)?
            }
            None => store::save_pulled_doc(tx, id, &mut automerge_doc, policy)?,
        };
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
        let mut decoded = Predecoded::default();
        for (at, effect) in plan.effects.iter().enumerate() {
            if matches!(effect, Effect::Pull { .. }) && decoded.is_empty() {
                decoded = Predecoded::batch(&plan.effects[at..], response);
            }
            perform(tx, effect.clone(), response, policy, report, now, &mut decoded)?;
        }
        report.quarantined = quarantine::open_count(tx)?;
        Ok(())
    })
}

/// Whole documents of a page that arrive as one snapshot each (a first sync is nothing else),
/// loaded and hydrated ahead on worker threads, a bounded batch at a time: that is most of the
/// work of applying them, and it needs no store. The rows are still written one document at a
/// time on the transaction's thread, and anything that did not decode here takes the ordinary
/// path (which sets it aside with the same error).
#[derive(Default)]
struct Predecoded {
    docs: std::collections::HashMap<DocId, (AutoCommit, Option<AnyDoc>)>,
}

/// Snapshots decoded ahead per batch: bounds the memory of decoded documents held at once.
const PREDECODE_BATCH: usize = 512;

impl Predecoded {
    fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Decodes the single-snapshot pulls among the next [`PREDECODE_BATCH`] pulls of `effects`.
    fn batch(effects: &[Effect], response: &SyncResponse) -> Predecoded {
        let wanted: Vec<(DocId, &[u8])> = effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Pull { doc, items } => Some((*doc, items)),
                _ => None,
            })
            .take(PREDECODE_BATCH)
            .filter_map(|(doc, items)| match items.as_slice() {
                [only] => match &response.items[*only] {
                    PullItem::Snapshot { bytes, .. } => Some((doc, bytes.as_slice())),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
        if wanted.len() < 2 * workers || workers == 1 {
            return Predecoded::default();
        }
        let chunk = wanted.len().div_ceil(workers);
        let docs = std::thread::scope(|scope| {
            let handles: Vec<_> = wanted
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .filter_map(|(id, bytes)| {
                                let decoded = quarantine::guarded(|| {
                                    let loaded = doc::load(bytes)?;
                                    let value = doc::read_any(&loaded).ok();
                                    Ok((loaded, value))
                                });
                                decoded.ok().map(|decoded| (*id, decoded))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).flatten().collect()
        });
        Predecoded { docs }
    }

    /// The decoded document `id`, if this batch holds it (taken out).
    fn take(&mut self, id: DocId) -> Option<(AutoCommit, Option<AnyDoc>)> {
        self.docs.remove(&id)
    }
}

/// Performs one effect of [`sync_core::plan_apply`] inside the round's transaction.
fn perform(
    tx: &Transaction<'_>,
    effect: Effect,
    response: &SyncResponse,
    policy: &PolicyConfig,
    report: &mut SyncReport,
    now: Millis,
    decoded: &mut Predecoded,
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
            let ahead = decoded.take(id);
            if let (None, Some((mut loaded, value)), [PullItem::Snapshot { bytes, .. }]) =
                (&held, ahead, items.as_slice())
            {
                // Decoded ahead: only the rows are left to write.
                if !loaded.get_missing_deps(&[]).is_empty() {
                    tx.execute("INSERT OR IGNORE INTO repair_wanted (doc) VALUES (?1)", [id.to_string()])?;
                }
                match quarantine::attempt(tx, || store::save_pulled_snapshot(tx, id, &mut loaded, bytes, value, policy))
                {
                    Ok(_) => report.pulled_snapshots += 1,
                    Err(e) if quarantine::is_damage(&e) => {
                        quarantine::set_aside(tx, id, bytes, &format!("pulled: {e}"), now)?;
                    }
                    Err(e) => return Err(e),
                }
                return Ok(());
            }
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
            store::meta_delete(tx, &digest_check_key(&scope))?;
            let mut pending = verify_pending(tx)?;
            if pending.remove(&scope) {
                set_verify_pending(tx, &pending)?;
            }
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
        // A copy that automerge fails or panics on is set aside, as for any repair.
        Effect::Reconcile { doc: id, repair } => {
            let snapshot = &response.repairs[repair];
            match quarantine::attempt(tx, || reconcile(tx, id, &snapshot.bytes, policy, now)) {
                Ok(requeued) => {
                    tx.execute("DELETE FROM repair_wanted WHERE doc = ?1", [id.to_string()])?;
                    if quarantine::resolve(tx, id, "repaired", now)? {
                        report.released += 1;
                    }
                    report.reconciled += 1;
                    report.requeued += requeued;
                }
                Err(e) if quarantine::is_damage(&e) => {
                    quarantine::set_aside(tx, id, &snapshot.bytes, &format!("verify copy: {e}"), now)?;
                }
                Err(e) => return Err(e),
            }
        }
        Effect::Forget { doc: id } => {
            let held = match store::load_doc(tx, id) {
                Ok(held) => held,
                Err(e) if quarantine::is_damage(&e) => None,
                Err(e) => return Err(e),
            };
            if let Some(mut held) = held {
                report.requeued += requeue_own_changes(tx, id, &mut held, None, now)?;
            }
            if store::unsent_for_doc(tx, id)? == 0 {
                store::delete_doc(tx, id)?;
                quarantine::resolve(tx, id, "purged", now)?;
                report.forgotten += 1;
            }
        }
        Effect::Verified { scope } => {
            let mut pending = verify_pending(tx)?;
            if pending.remove(&scope) {
                set_verify_pending(tx, &pending)?;
            }
        }
        Effect::CompareDigest { scope, server } => {
            let local = held_digest(tx, &scope)?;
            let mut pending = verify_pending(tx)?;
            let comparison = sync_core::compare_digest(local, server, in_flight(tx, &scope, &pending)?);
            if comparison != Comparison::NotCaughtUp {
                let check = DigestCheck { comparison, local, server, compared_at: now };
                store::meta_set_json(tx, &digest_check_key(&scope), &check)?;
            }
            if comparison == Comparison::Mismatch {
                tracing::warn!(%scope, local = %local.display(), server = %server.display(), "this device diverged from the server; verifying");

                if pending.insert(scope) {
                    set_verify_pending(tx, &pending)?;
                }
                if !report.diverged.contains(&scope.to_string()) {
                    report.diverged.push(scope.to_string());
                }
            }
        }
    }
    Ok(())
}

// ----- divergence ---------------------------------------------------------------------------

/// Meta key of the scopes whose digest mismatched and that wait for a verify round.
const VERIFY_PENDING: &str = "verify_pending";

fn digest_check_key(scope: &Scope) -> String {
    format!("digest_check:{scope}")
}

/// The last comparison of a scope's digest with the server's, kept in `meta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DigestCheck {
    /// `match` or `mismatch` (a comparison that could not be made is not recorded).
    pub comparison: Comparison,
    pub local: ScopeDigest,
    pub server: ScopeDigest,
    pub compared_at: Millis,
}

fn verify_pending(conn: &Connection) -> Result<BTreeSet<Scope>> {
    Ok(store::meta_json(conn, VERIFY_PENDING)?.unwrap_or_default())
}

fn set_verify_pending(conn: &Connection, pending: &BTreeSet<Scope>) -> Result<()> {
    if pending.is_empty() {
        store::meta_delete(conn, VERIFY_PENDING)
    } else {
        store::meta_set_json(conn, VERIFY_PENDING, pending)
    }
}

/// The entries of the documents the device holds in `scope`, from the heads stored beside
/// each document (automerge is not loaded).
fn held_entries(conn: &Connection, scope: &Scope) -> Result<Vec<VerifyDoc>> {
    let mut stmt = conn.prepare_cached("SELECT id, heads FROM docs WHERE scopes LIKE ?1 ORDER BY id")?;
    let rows: Vec<(String, String)> =
        stmt.query_map([format!("%\"{scope}\"%")], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    let mut entries = Vec::with_capacity(rows.len());
    for (id, heads) in rows {
        let doc: DocId = id.parse().map_err(|e| Error::Corrupt(format!("document id {id}: {e}")))?;
        let heads: Vec<String> =
            serde_json::from_str(&heads).map_err(|e| Error::Corrupt(format!("heads of {id}: {e}")))?;
        let entry = DocEntry::of_hex_heads(doc, &heads).ok_or_else(|| Error::Corrupt(format!("heads of {id}")))?;
        entries.push(VerifyDoc { doc, entry });
    }
    Ok(entries)
}

/// The device's digest of one scope: its documents there and their stored heads.
fn held_digest(conn: &Connection, scope: &Scope) -> Result<ScopeDigest> {
    Ok(ScopeDigest::of(held_entries(conn, scope)?.iter().map(|d| &d.entry)))
}

/// The device's digest of one scope now (what it compares with the server's).
pub fn scope_digest_of_device(client: &Client, scope: &Scope) -> Result<ScopeDigest> {
    held_digest(&client.db(), scope)
}

/// What is still in flight for a scope: unsent changes of its documents (or of documents not
/// placed yet), repairs wanted, documents set aside, a verify not answered yet.
fn in_flight(conn: &Connection, scope: &Scope, pending: &BTreeSet<Scope>) -> Result<InFlight> {
    let unsent: i64 = conn.query_row(
        "SELECT COUNT(*) FROM outbox o LEFT JOIN docs d ON d.id = o.doc WHERE d.id IS NULL OR d.scopes LIKE ?1",
        [format!("%\"{scope}\"%")],
        |r| r.get(0),
    )?;
    Ok(InFlight {
        unsent: unsent as usize,
        repairs_wanted: store::count(conn, "repair_wanted")?,
        set_aside: quarantine::open_count(conn)?,
        verify_pending: pending.contains(scope),
    })
}

/// The verify lists for the scopes that mismatched and were not verified during this sync,
/// within the protocol's bounds, and every scope considered (sent, or too big to send).
fn verify_lists(conn: &Connection, done: &BTreeSet<Scope>) -> Result<(Vec<VerifyScope>, Vec<Scope>)> {
    let held = store::cursors(conn)?;
    let mut lists = Vec::new();
    let mut considered = Vec::new();
    let mut listed = 0;
    for scope in verify_pending(conn)? {
        if done.contains(&scope) || !held.contains_key(&scope) || lists.len() == MAX_VERIFY_SCOPES {
            continue;
        }
        considered.push(scope);
        let docs = held_entries(conn, &scope)?;
        if listed + docs.len() > MAX_VERIFY_DOCS {
            tracing::warn!(%scope, docs = docs.len(), "too many documents to verify this scope in one request");
            continue;
        }
        listed += docs.len();
        lists.push(VerifyScope { scope, docs });
    }
    Ok((lists, considered))
}

/// Queues again every change signed by this device that is in `held` but not in `server` (all
/// of them when the server has no copy), unless already unsent or kept aside as refused. They
/// go before the document's other unsent changes, which may build on them. Returns how many.
fn requeue_own_changes(
    tx: &Transaction<'_>,
    id: DocId,
    held: &mut AutoCommit,
    mut server: Option<&mut AutoCommit>,
    now: Millis,
) -> Result<usize> {
    let own = store::actor(tx)?;
    let known: BTreeSet<String> = {
        let mut stmt =
            tx.prepare("SELECT hash FROM outbox WHERE doc = ?1 UNION SELECT hash FROM rejected WHERE doc = ?1")?;
        stmt.query_map([id.to_string()], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
    };
    let mut lacking = Vec::new();
    for change in held.get_changes(&[]) {
        let hash = change.hash();
        if change.actor_id() != &own || known.contains(&hash.to_string()) {
            continue;
        }
        if server.as_mut().is_some_and(|copy| copy.get_change_by_hash(&hash).is_some()) {
            continue;
        }
        lacking.push(change);
    }
    if lacking.is_empty() {
        return Ok(0);
    }
    let later: Vec<(String, Vec<u8>, String, i64)> = {
        let mut stmt =
            tx.prepare("SELECT hash, bytes, summary, recorded_at FROM outbox WHERE doc = ?1 ORDER BY seq")?;
        stmt.query_map([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    tx.execute("DELETE FROM outbox WHERE doc = ?1", [id.to_string()])?;
    let mut insert = tx
        .prepare("INSERT OR IGNORE INTO outbox (hash, doc, bytes, summary, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for change in &lacking {
        let recorded_at = if change.timestamp() > 0 { change.timestamp() } else { now };
        insert.execute(params![
            change.hash().to_string(),
            id.to_string(),
            change.raw_bytes(),
            "sent again: the server's copy lacked it (服务器缺少此修改，重新发送)",
            recorded_at
        ])?;
    }
    for (hash, bytes, summary, recorded_at) in later {
        insert.execute(params![hash, id.to_string(), bytes, summary, recorded_at])?;
    }
    tracing::warn!(doc = %id, changes = lacking.len(), "the server's copy lacked changes of this device; sending them again");
    Ok(lacking.len())
}

/// A verify found the device's copy different: queue again what the server lacks of this
/// device's own changes, then take the server's copy with every unsent change on top.
fn reconcile(
    tx: &Transaction<'_>,
    id: DocId,
    server_bytes: &[u8],
    policy: &PolicyConfig,
    now: Millis,
) -> Result<usize> {
    let mut server = doc::load(server_bytes)?;
    let held = match store::load_doc(tx, id) {
        Ok(held) => held,
        // A stored copy that does not load has nothing to give back: the server's copy wins.
        Err(e) if quarantine::is_damage(&e) => None,
        Err(e) => return Err(e),
    };
    let requeued = match held {
        Some(mut held) => requeue_own_changes(tx, id, &mut held, Some(&mut server), now)?,
        None => 0,
    };
    restore(tx, id, server_bytes, policy)?;
    Ok(requeued)
}

/// One scope as `gridlink verify` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ScopeVerification {
    pub scope: String,
    /// `match`, `mismatch` or `not-compared`.
    pub state: &'static str,
    /// Why, in words.
    pub detail: String,
    /// The device's digest now (`count:hex`) and its document count.
    pub local_digest: String,
    pub local_documents: u64,
    /// The server's digest at the last comparison, its document count, and when.
    pub server_digest: Option<String>,
    pub server_documents: Option<u64>,
    pub compared_at: Option<Millis>,
    /// Unsent changes of the scope's documents.
    pub unsent: usize,
}

/// Every held scope's divergence state: the last comparison with the server, and whether the
/// device's documents still match the digest the server sent then (a copy damaged since, with
/// nothing unsent, is a mismatch found offline).
pub fn digest_checks(client: &Client) -> Result<Vec<ScopeVerification>> {
    let conn = client.db();
    let pending = verify_pending(&conn)?;
    let mut out = Vec::new();
    for scope in store::cursors(&conn)?.keys() {
        let local = held_digest(&conn, scope)?;
        let last: Option<DigestCheck> = store::meta_json(&conn, &digest_check_key(scope))?;
        let in_flight = in_flight(&conn, scope, &BTreeSet::new())?;
        let (state, detail) = match &last {
            None => ("not-compared", "no complete page from the server yet".to_string()),
            Some(_) if pending.contains(scope) => {
                ("mismatch", "the last comparison found a difference; the next sync verifies and repairs it".into())
            }
            Some(check) => match sync_core::compare_digest(local, check.server, in_flight) {
                Comparison::Match => ("match", "the documents here are the server's, as of the last sync".into()),
                Comparison::Mismatch => (
                    "mismatch",
                    "the documents here no longer match the server's digest of the last sync; the next sync repairs them"
                        .into(),
                ),
                Comparison::NotCaughtUp => {
                    ("not-compared", "changes are waiting to be sent or repaired; compared after the next sync".into())
                }
            },
        };
        out.push(ScopeVerification {
            scope: scope.to_string(),
            state,
            detail,
            local_digest: local.display(),
            local_documents: local.count,
            server_digest: last.map(|c| c.server.display()),
            server_documents: last.map(|c| c.server.count),
            compared_at: last.map(|c| c.compared_at),
            unsent: in_flight.unsent,
        });
    }
    Ok(out)
}

/// For tests only: rewrites a stored document without its last change, as a buggy write or a
/// damaged disk could leave it, so that divergence detection has something to find. The
/// change is not put in the outbox. Returns the hash of the change dropped.
#[doc(hidden)]
pub fn test_only_drop_last_change_of_stored_document(client: &Client, id: DocId) -> Result<String> {
    client.with_tx(|tx| {
        let mut held = store::load_doc(tx, id)?.ok_or_else(|| Error::Input(format!("no document {id} here")))?;
        let mut changes = held.get_changes(&[]);
        let dropped = changes.pop().ok_or_else(|| Error::Input(format!("document {id} has no change")))?;
        let mut older = AutoCommit::new();
        older.apply_changes(changes).map_err(automerge_error)?;
        store::save_pulled_doc(tx, id, &mut older, client.policy())?;
        Ok(dropped.hash().to_string())
    })
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
        let mut request = round.request(client)?;
        let started = std::time::Instant::now();
        let response = exchange(client, url, token, &mut request, &mut report).await?;
        let took = started.elapsed();
        report.exchange_ms += took.as_millis() as u64;
        let page = request.page_bytes.unwrap_or(DEFAULT_PAGE_BYTES);
        round.page_bytes = next_page_bytes(page, response.more, took);
        let applying = std::time::Instant::now();
        let more = round.finish(client, &request, &response, &mut report)?;
        report.apply_ms += applying.elapsed().as_millis() as u64;
        if !more {
            if report.pulled_snapshots > 0 {
                // Whole documents came (a first sync, a compaction): fold the write-ahead log
                // into the database now and give its space back, rather than leave a WAL the
                // size of the last page on the phone's disk.
                client.db().execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
            }
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
    /// Scopes verified during this sync (verified again at the next sync if still different).
    verified: BTreeSet<Scope>,
    /// The page size the next request asks for (0: not yet chosen, [`FIRST_PAGE_BYTES`]).
    page_bytes: u64,
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
        let (verify, considered) = verify_lists(&conn, &self.verified)?;
        self.verified.extend(considered);
        let page_bytes = if self.page_bytes == 0 { FIRST_PAGE_BYTES } else { self.page_bytes };
        Ok(SyncRequest {
            verify,
            page_bytes: Some(page_bytes),
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
        let requeued_before = report.requeued;
        apply_response(client, request, response, report)?;
        report.rounds += 1;
        let (unsent_after, verify_due) = {
            let conn = client.db();
            let held = store::cursors(&conn)?;
            let due = verify_pending(&conn)?
                .iter()
                .filter(|scope| held.contains_key(scope) && !self.verified.contains(scope))
                .count();
            (store::count(&conn, "outbox")?, due)
        };
        let requeued = report.requeued - requeued_before;
        Ok(sync_core::next_round(response.more, request.changes.len(), self.unsent_before, unsent_after)
            || sync_core::repair_round(requeued, verify_due))
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
    client.with_tx(|tx| store_enrollment(tx, &base_url(server_url), enrolled))
}

/// The enrolment's meta entries, and a cursor at the start of each scope the device does not
/// hold yet.
fn store_enrollment(tx: &Transaction<'_>, url: &str, enrolled: &EnrollResponse) -> Result<()> {
    store::meta_set(tx, "server_url", url)?;
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
    use gridlink_shared::protocol::{Ack, AckStatus, DocSnapshot, VerifyAnswer};
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
            integrity: Default::default(),
            compact_acks: None,
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
    fn pages_double_while_full_and_quick_up_to_the_cap_and_stay_when_slow_or_done() {
        let quick = Duration::from_millis(300);
        let mut page = FIRST_PAGE_BYTES;
        let mut asked = vec![page];
        for _ in 0..5 {
            page = next_page_bytes(page, true, quick);
            asked.push(page);
        }
        let mib = 1024 * 1024;
        assert_eq!(asked, vec![4 * mib, 8 * mib, 8 * mib, 8 * mib, 8 * mib, 8 * mib]);
        assert_eq!(next_page_bytes(2 * mib, true, GROW_WITHIN), 2 * mib, "a slow page does not grow");
        assert_eq!(next_page_bytes(2 * mib, false, quick), 2 * mib, "the last page does not grow");
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

    fn note(household: gridlink_shared::HouseholdId, notes: &str, at: Millis) -> NewVisit {
        NewVisit {
            household,
            outcome: VisitOutcome::Met,
            notes: notes.into(),
            needs_found: vec![],
            follow_up: None,
            residents_present: vec![],
            at,
        }
    }

    #[test]
    fn a_digest_mismatch_is_recorded_and_the_next_request_lists_the_scope_while_a_match_clears_it() {
        let dir = tempfile::tempdir().unwrap();
        let (client, _) = demo_client(dir.path(), Role::GridWorker, DEMO_NOW).unwrap();
        let scope = store::principal(&client.db()).unwrap().scopes[0];
        store::set_cursor(&client.db(), &scope, &Cursor::Seq { seq: 5 }).unwrap();
        let held = scope_digest_of_device(&client, &scope).unwrap();
        assert!(held.count > 100);
        assert_eq!(digest_checks(&client).unwrap()[0].state, "not-compared");

        let mut response = empty_response();
        response.cursors.insert(scope, Cursor::Seq { seq: 5 });
        response.integrity.digests.insert(scope, ScopeDigest { count: held.count, xor: [9; 32] });
        let mut round = Round::default();
        let request = round.request(&client).unwrap();
        assert!(request.verify.is_empty());
        let mut report = SyncReport::default();
        assert!(round.finish(&client, &request, &response, &mut report).unwrap(), "a verify round follows");
        assert_eq!(report.diverged, vec![scope.to_string()]);
        let checks = digest_checks(&client).unwrap();
        assert_eq!((checks[0].state, checks[0].server_documents), ("mismatch", Some(held.count)));

        let request = round.request(&client).unwrap();
        assert_eq!(request.verify.len(), 1);
        assert_eq!(request.verify[0].scope, scope);
        assert_eq!(request.verify[0].docs.len() as u64, held.count, "every held document with its entry");
        assert!(round.request(&client).unwrap().verify.is_empty(), "once per sync");

        // The server's answer (nothing differed after all) and a matching digest.
        let mut response = empty_response();
        response.cursors.insert(scope, Cursor::Seq { seq: 5 });
        response.integrity.digests.insert(scope, held);
        response.integrity.verified.push(VerifyAnswer { scope, differing: vec![], absent: vec![], complete: true });
        let mut report = SyncReport::default();
        assert!(!round.finish(&client, &request, &response, &mut report).unwrap());
        assert!(report.diverged.is_empty());
        let checks = digest_checks(&client).unwrap();
        assert_eq!(checks[0].state, "match");
        assert!(Round::default().request(&client).unwrap().verify.is_empty(), "nothing pending");

        // A copy damaged since the last sync is found offline.
        let household = client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap()[0].id;
        client.record_visit(note(household, "走访", DEMO_NOW), DEMO_NOW).unwrap();
        assert_eq!(digest_checks(&client).unwrap()[0].state, "not-compared", "unsent changes are not a mismatch");
        client.db().execute("DELETE FROM outbox", []).unwrap();
        assert_eq!(digest_checks(&client).unwrap()[0].state, "mismatch");
    }

    #[test]
    fn a_verify_copy_without_this_devices_change_queues_it_again_first_and_absent_documents_go() {
        let dir = tempfile::tempdir().unwrap();
        let (client, _) = demo_client(dir.path(), Role::GridWorker, DEMO_NOW).unwrap();
        let rows = client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap();
        let (household, gone, kept) = (rows[0].id, rows[1].id, rows[2].id);
        let id: DocId = household.into();
        let server_copy = store::load_doc(&client.db(), id).unwrap().unwrap().save();
        client.record_visit(note(household, "服务器丢失的走访", DEMO_NOW), DEMO_NOW).unwrap();
        let lost = unsent_hashes(&client).unwrap();
        client.db().execute("DELETE FROM outbox", []).unwrap(); // acknowledged long ago
        client.record_visit(note(household, "尚未发送的走访", DEMO_NOW + 1), DEMO_NOW + 1).unwrap();
        client.record_visit(note(kept, "未发送，不能删", DEMO_NOW + 2), DEMO_NOW + 2).unwrap();
        let unsent = unsent_hashes(&client).unwrap();

        let scope = store::principal(&client.db()).unwrap().scopes[0];
        let listed = |doc: DocId| VerifyDoc { doc, entry: DocEntry([0; 32]) };
        let mut request = plan(&client);
        request.changes.clear();
        request.verify = vec![VerifyScope { scope, docs: vec![listed(id), listed(gone.into()), listed(kept.into())] }];
        let mut response = empty_response();
        response.repairs.push(DocSnapshot {
            doc: id,
            doc_type: gridlink_shared::DocType::Household,
            bytes: server_copy,
        });
        response.integrity.verified.push(VerifyAnswer {
            scope,
            differing: vec![id],
            absent: vec![gone.into(), kept.into()],
            complete: true,
        });
        let mut report = SyncReport::default();
        apply_response(&client, &request, &response, &mut report).unwrap();
        assert_eq!((report.reconciled, report.requeued, report.forgotten), (1, 1, 1));
        let mut want = lost.clone();
        want.push(unsent[0].clone());
        want.push(unsent[1].clone());
        let mut queued = unsent_hashes(&client).unwrap();
        queued.sort_by_key(|h| want.iter().position(|w| w == h));
        assert_eq!(queued, want);
        let of_household: Vec<String> = {
            let conn = client.db();
            let mut stmt = conn.prepare("SELECT hash FROM outbox WHERE doc = ?1 ORDER BY seq").unwrap();
            stmt.query_map([id.to_string()], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
        };
        assert_eq!(
            of_household,
            vec![lost[0].clone(), unsent[0].clone()],
            "the lost one first: the other builds on it"
        );
        let notes: Vec<String> =
            client.household(household, DEMO_NOW).unwrap().visits.iter().map(|v| v.notes.clone()).collect();
        assert!(notes.contains(&"服务器丢失的走访".to_string()) && notes.contains(&"尚未发送的走访".to_string()));
        assert!(!holds_document(&client.db(), gone.into()).unwrap(), "not on the server, nothing unsent: gone");
        assert!(holds_document(&client.db(), kept.into()).unwrap(), "unsent changes keep it");
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
