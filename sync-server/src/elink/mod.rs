//! The residents' grid e-link (社区网格e通): a public, phone-sized page per building where a
//! resident files a help request and later looks up its status.
//!
//! | path | what |
//! |---|---|
//! | `GET /e/{token}` | the request form (a fresh one-time nonce in a hidden field) |
//! | `POST /e/{token}` | files the request: a receipt with the reference number, or the form again with an error at each bad field |
//! | `GET /e/{token}/status` | the status lookup form (reference number + phone number) |
//! | `POST /e/{token}/status` | the request's status, or one neutral answer for any wrong pair |
//!
//! Everything here is hostile input from the open internet, so, in this order, before any
//! work: the token must look like one (32 hex) and name a building, the client address must
//! be under its rate limit (the client is the TCP peer, or behind a trusted reverse proxy
//! the address it forwards, see [`client_address`]; in memory: the count is a courtesy to
//! the server, not a security property, and a restart forgetting it costs nothing; the
//! per-building cap on *filed* requests is counted in the database), the body is read up to
//! [`BODY_MAX`] bytes and at most [`FIELDS_MAX`] fields. No cookie is read or set, so a console session in the same
//! browser is never honoured here; the form needs no CSRF token because it acts for nobody:
//! a forged post files a request like any other and is counted by the same limits. The
//! nonce makes a double tap or a refresh of the receipt file one case.
//!
//! The case itself is written by the store through the sync push path
//! ([`SqliteStore::elink_file`], `PgStore::elink_file`).

mod pages;
pub mod qr;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use gridlink_shared::BuildingId;
use gridlink_shared::codes::ServiceCategory;
use gridlink_shared::time::{Millis, now_millis};
use gridlink_shared::validate::{Field, check_phone};

use crate::api::AppState;
use crate::store::elink::{BuildingLink, FileOutcome, HelpRequest, RequestStatus, normalize_reference};
use crate::store::{SqliteStore, StoreError};

/// Where the e-link lives.
pub const PREFIX: &str = "/e/";

/// The largest form body read (a 500-character description percent-encodes to 4.5 KB).
pub const BODY_MAX: usize = 16 * 1024;

/// The most `name=value` pairs looked at in one body.
pub const FIELDS_MAX: usize = 16;

/// Longest description, in characters.
pub const DESCRIPTION_MAX: usize = 500;
/// Longest room, in characters ("3单元1502室").
pub const ROOM_MAX: usize = 20;
/// Longest name, in characters.
pub const NAME_MAX: usize = 20;

/// `X-Forwarded-For` entries looked at at most, from the right (one per proxy hop in front of
/// the server; more is a client padding the header).
const FORWARDED_HOPS_MAX: usize = 16;

/// Addresses remembered by the rate limiter at most; beyond that a new address is refused
/// until old entries expire (fail closed rather than grow without bound).
const TRACKED_ADDRESSES_MAX: usize = 10_000;

/// Whether `path` belongs to the e-link (so the API's JSON error envelope leaves it alone).
pub fn owns(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// The e-link's limits. Residents often share a carrier's address (CGNAT), so the
/// per-address limits are generous and the per-building cap is what bounds filed cases.
#[derive(Clone, Copy, Debug)]
pub struct ElinkLimits {
    /// Form posts (filing) per client address per window.
    pub posts_per_address: usize,
    /// Status lookups per client address per window (guessing reference/phone pairs).
    pub lookups_per_address: usize,
    pub window: Duration,
    /// Requests filed per building per hour.
    pub filed_per_building_hour: u32,
}

impl Default for ElinkLimits {
    fn default() -> Self {
        ElinkLimits {
            posts_per_address: 30,
            lookups_per_address: 30,
            window: Duration::from_secs(600),
            filed_per_building_hour: 20,
        }
    }
}

/// What the e-link needs from storage.
pub trait ElinkStore: Send + Sync + 'static {
    fn building_for_token(&self, token: &str) -> Result<Option<(BuildingId, String)>, StoreError>;
    fn file_request(
        &self,
        building: BuildingId,
        request: &HelpRequest,
        per_building_hour: u32,
        now: Millis,
    ) -> Result<FileOutcome, StoreError>;
    fn request_status(
        &self,
        building: BuildingId,
        reference: &str,
        phone: &str,
    ) -> Result<Option<RequestStatus>, StoreError>;
}

impl ElinkStore for SqliteStore {
    fn building_for_token(&self, token: &str) -> Result<Option<(BuildingId, String)>, StoreError> {
        self.elink_building(token)
    }
    fn file_request(
        &self,
        building: BuildingId,
        request: &HelpRequest,
        per_building_hour: u32,
        now: Millis,
    ) -> Result<FileOutcome, StoreError> {
        self.elink_file(building, request, per_building_hour, now)
    }
    fn request_status(
        &self,
        building: BuildingId,
        reference: &str,
        phone: &str,
    ) -> Result<Option<RequestStatus>, StoreError> {
        self.elink_status(building, reference, phone)
    }
}

/// The e-link's share of the server state.
#[derive(Clone)]
pub struct Elink {
    /// `None` on a store that cannot serve the e-link.
    store: Option<Arc<dyn ElinkStore>>,
    pub limits: ElinkLimits,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`serve --trusted-proxy`).
    trusted_proxies: Arc<[IpAddr]>,
    posts: Arc<Mutex<AddressWindows>>,
    lookups: Arc<Mutex<AddressWindows>>,
}

impl std::fmt::Debug for Elink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elink").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Elink {
    pub fn new(store: Arc<dyn ElinkStore>) -> Self {
        Elink { store: Some(store), ..Self::unavailable() }
    }

    /// The e-link of a store that cannot serve it: `/e/` answers 503.
    pub fn unavailable() -> Self {
        Elink {
            store: None,
            limits: ElinkLimits::default(),
            trusted_proxies: Arc::new([]),
            posts: Arc::default(),
            lookups: Arc::default(),
        }
    }

    /// Takes the client address from `X-Forwarded-For` when the TCP peer is one of `proxies`
    /// (see [`client_address`]); without any, the header is ignored.
    pub fn with_trusted_proxies(mut self, proxies: impl IntoIterator<Item = IpAddr>) -> Self {
        self.trusted_proxies = proxies.into_iter().map(|ip| ip.to_canonical()).collect();
        self
    }

    /// Whether the store serves the e-link; if not, `/e/` answers [`unavailable_router`]'s page.
    pub fn is_available(&self) -> bool {
        self.store.is_some()
    }

    fn store(&self) -> Result<Arc<dyn ElinkStore>, ElinkError> {
        self.store.clone().ok_or(ElinkError::Unavailable)
    }

    pub fn with_limits(mut self, limits: ElinkLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// Recent events per client address, in a sliding window.
#[derive(Debug, Default)]
struct AddressWindows {
    seen: HashMap<IpAddr, VecDeque<Instant>>,
}

impl AddressWindows {
    /// Counts one event for `address`, or refuses it when the address is at `max` in `window`.
    fn allow(&mut self, address: IpAddr, max: usize, window: Duration, now: Instant) -> bool {
        if !self.seen.contains_key(&address) && self.seen.len() >= TRACKED_ADDRESSES_MAX {
            self.seen.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < window));
            if self.seen.len() >= TRACKED_ADDRESSES_MAX {
                return false;
            }
        }
        let times = self.seen.entry(address).or_default();
        while times.front().is_some_and(|t| now.duration_since(*t) >= window) {
            times.pop_front();
        }
        if times.len() >= max {
            return false;
        }
        times.push_back(now);
        true
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain counters: consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The e-link's routes, behind its own headers and error pages. Merged by `api::router`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/e/{token}", get(form_page).post(file_request))
        .route("/e/{token}/status", get(status_page).post(status_lookup))
        .layer(axum::middleware::from_fn(public_headers))
}

/// The routes of a server whose store cannot serve the e-link: every `/e/` path answers 503
/// with a Chinese page saying so (a server state built without an e-link store,
/// `AppState::sync_only`).
pub fn unavailable_router() -> Router<AppState> {
    Router::new()
        .route("/e/{*rest}", axum::routing::any(|| async { ElinkError::Unavailable }))
        .layer(axum::middleware::from_fn(public_headers))
}

/// Security headers on every answer, and a Chinese page for bare errors from the layers
/// (method not allowed, body too large, timeout).
async fn public_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let status = response.status();
    let is_html =
        response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if !is_html && (status.is_client_error() || status.is_server_error()) {
        response = (status, Html(pages::message("请求未能处理", "请返回上一页重试。").into_string())).into_response();
    }
    let headers = response.headers_mut();
    // No script, no external resource, no framing; the token in the URL never leaves as a
    // referrer.
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.remove(axum::http::header::SET_COOKIE);
    response
}

/// What went wrong, as a page.
#[derive(Debug)]
enum ElinkError {
    /// Unknown or malformed token, or an unknown path: one answer for all.
    NotFound,
    TooMany,
    TooLarge,
    Internal(String),
    /// The server was started without an e-link store.
    Unavailable,
}

impl From<StoreError> for ElinkError {
    fn from(error: StoreError) -> Self {
        ElinkError::Internal(error.to_string())
    }
}

impl IntoResponse for ElinkError {
    fn into_response(self) -> Response {
        let (status, title, text) = match self {
            ElinkError::NotFound => {
                (StatusCode::NOT_FOUND, "链接无效", "这个链接无效或已更换。请扫描楼栋公告栏上最新的二维码。")
            }
            ElinkError::TooMany => {
                (StatusCode::TOO_MANY_REQUESTS, "提交太频繁", "请稍后再试。紧急情况请直接拨打社区电话或110、120。")
            }
            ElinkError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "内容太长", "请缩短内容后再提交。"),
            ElinkError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "暂未开通",
                "本服务器未开通楼栋e通（the residents' e-link is not served here）。请直接联系社区。",
            ),
            ElinkError::Internal(detail) => {
                tracing::error!(%detail, "e-link request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "系统繁忙", "请稍后再试。紧急情况请直接拨打社区电话。")
            }
        };
        (status, Html(pages::message(title, text).into_string())).into_response()
    }
}

/// The building of a token, or the neutral 404. Malformed tokens never reach the database.
async fn building_of(state: &AppState, token: &str) -> Result<(BuildingId, String), ElinkError> {
    if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(ElinkError::NotFound);
    }
    let store = state.elink.store()?;
    let token = token.to_string();
    tokio::task::spawn_blocking(move || store.building_for_token(&token))
        .await
        .map_err(|e| ElinkError::Internal(e.to_string()))??
        .ok_or(ElinkError::NotFound)
}

/// The client's address for the rate limits: the TCP peer's, or behind a trusted proxy the one
/// it forwards. `0.0.0.0` in in-process tests that set no peer: they then share one bucket.
fn client_of(elink: &Elink, request: &Request) -> IpAddr {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    client_address(peer, request.headers(), &elink.trusted_proxies)
}

/// The client behind `peer`. Only when `peer` is a `trusted` proxy is `X-Forwarded-For` read
/// (anyone else can write anything there): its entries from the right, each appended by a
/// proxy in front of us, skipping our own trusted proxies; the first address not trusted is
/// the client as the nearest trusted proxy saw it, and whatever stands left of it came from
/// the client and is ignored. A header that is not text, an entry that is not an IP address
/// before the client is found, or no header at all: the peer's address (never a panic).
/// Addresses compare canonically (`::ffff:10.0.0.1` is `10.0.0.1`).
pub fn client_address(peer: IpAddr, headers: &axum::http::HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| t.to_canonical() == *ip);
    if !is_trusted(&peer) {
        return peer;
    }
    let mut values = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        match value.to_str() {
            Ok(text) => values.push(text),
            Err(_) => return peer,
        }
    }
    // Several header lines read as one list, in order (RFC 9110, 5.3).
    let mut nearest = None;
    for entry in values.iter().rev().flat_map(|v| v.rsplit(',')).take(FORWARDED_HOPS_MAX) {
        let Ok(ip) = entry.trim().parse::<IpAddr>() else {
            tracing::debug!(%peer, "malformed X-Forwarded-For from a trusted proxy; counting the proxy");
            return peer;
        };
        let ip = ip.to_canonical();
        if !is_trusted(&ip) {
            return ip;
        }
        nearest = Some(ip);
    }
    // Every hop looked at is a proxy of ours: the farthest of them sent the request.
    nearest.unwrap_or(peer)
}

/// The body as at most [`FIELDS_MAX`] form pairs, read up to [`BODY_MAX`] bytes.
async fn form_pairs(body: Body) -> Result<Vec<(String, String)>, ElinkError> {
    let bytes = axum::body::to_bytes(body, BODY_MAX).await.map_err(|_| ElinkError::TooLarge)?;
    Ok(form_urlencoded_pairs(&bytes))
}

fn form_urlencoded_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    bytes
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .take(FIELDS_MAX)
        .filter_map(|pair| serde_urlencoded::from_bytes::<Vec<(String, String)>>(pair).ok()?.into_iter().next())
        .collect()
}

/// The first value of `key`, or "".
fn field<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// A fresh one-time form nonce.
fn new_nonce() -> String {
    crate::secrets::new_actor_hex()
}

/// What the resident typed, kept to show again.
#[derive(Clone, Debug, Default)]
pub(crate) struct Typed {
    pub category: String,
    pub description: String,
    pub room: String,
    pub name: String,
    pub phone: String,
}

/// An error message per field (empty when fine), plus one for the whole form.
#[derive(Clone, Debug, Default)]
pub(crate) struct FieldErrors {
    pub category: Option<&'static str>,
    pub description: Option<&'static str>,
    pub room: Option<&'static str>,
    pub name: Option<&'static str>,
    pub phone: Option<&'static str>,
    pub form: Option<&'static str>,
}

impl FieldErrors {
    fn any(&self) -> bool {
        self.category.is_some()
            || self.description.is_some()
            || self.room.is_some()
            || self.name.is_some()
            || self.phone.is_some()
            || self.form.is_some()
    }
}

/// Characters refused in any field: control characters (but the description's line breaks)
/// and the bidirectional overrides that can make a text read differently than it is stored.
fn has_forbidden_chars(text: &str, allow_newline: bool) -> bool {
    text.chars().any(|c| {
        (c.is_control() && !(allow_newline && c == '\n'))
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
    })
}

/// A phone number as digits, if the phone's own validator ([`check_phone`], the rule the app's
/// forms and the server's push checks use) accepts it and it is not empty: a mainland mobile or
/// a landline, with spaces, dashes or a leading +86. The length is bounded first: the form is
/// public.
pub fn normalize_phone(typed: &str) -> Option<String> {
    let trimmed = typed.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 20 || check_phone(Field::Phone, trimmed).is_err() {
        return None;
    }
    let national = trimmed.strip_prefix("+86").unwrap_or(trimmed);
    Some(national.chars().filter(char::is_ascii_digit).collect())
}

/// Checks the typed form; the request when every field is fine, else the errors.
/// The problem with a required text field, if any: `messages` are for empty, too long, and
/// characters that are not allowed (line breaks only where `multiline`).
fn text_problem(value: &str, max_chars: usize, multiline: bool, messages: [&'static str; 3]) -> Option<&'static str> {
    if value.is_empty() {
        Some(messages[0])
    } else if value.chars().count() > max_chars {
        Some(messages[1])
    } else if has_forbidden_chars(value, multiline) {
        Some(messages[2])
    } else {
        None
    }
}

fn check(typed: &Typed, nonce: &str) -> Result<HelpRequest, FieldErrors> {
    let mut errors = FieldErrors::default();
    let category = typed.category.parse::<ServiceCategory>().ok();
    if category.is_none() {
        errors.category = Some("请选择服务类别");
    }
    let description = typed.description.replace("\r\n", "\n").trim().to_string();
    errors.description = text_problem(
        &description,
        DESCRIPTION_MAX,
        true,
        ["请写明需要什么帮助", "描述最多500字，请精简", "描述里有无法识别的字符，请删除后重试"],
    );
    let room = typed.room.trim().to_string();
    errors.room =
        text_problem(&room, ROOM_MAX, false, ["请填写房号，如：2单元301", "房号最多20个字", "房号里有无法识别的字符"]);
    let name = typed.name.trim().to_string();
    errors.name =
        text_problem(&name, NAME_MAX, false, ["请填写联系人姓名", "姓名最多20个字", "姓名里有无法识别的字符"]);
    let phone = normalize_phone(&typed.phone);
    if phone.is_none() {
        errors.phone = Some("请填写正确的手机号（11位）或固定电话");
    }
    let nonce_ok = nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !nonce_ok {
        errors.form = Some("页面已过期，请核对后再提交一次");
    }
    match (category, phone) {
        (Some(category), Some(phone)) if !errors.any() => {
            Ok(HelpRequest { category, description, room, name, phone, nonce: nonce.to_string() })
        }
        _ => Err(errors),
    }
}

async fn form_page(State(state): State<AppState>, Path(token): Path<String>) -> Result<Response, ElinkError> {
    let (_, building_name) = building_of(&state, &token).await?;
    let page = pages::form(&token, &building_name, &Typed::default(), &FieldErrors::default(), &new_nonce());
    Ok(Html(page.into_string()).into_response())
}

async fn file_request(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Result<Response, ElinkError> {
    let (building, building_name) = building_of(&state, &token).await?;
    let client = client_of(&state.elink, &request);
    let limits = state.elink.limits;
    if !lock(&state.elink.posts).allow(client, limits.posts_per_address, limits.window, Instant::now()) {
        tracing::warn!(%client, "e-link posts throttled");
        return Err(ElinkError::TooMany);
    }
    let pairs = form_pairs(request.into_body()).await?;
    let typed = Typed {
        category: field(&pairs, "category").to_string(),
        description: field(&pairs, "description").to_string(),
        room: field(&pairs, "room").to_string(),
        name: field(&pairs, "name").to_string(),
        phone: field(&pairs, "phone").to_string(),
    };
    let nonce = field(&pairs, "nonce");
    let again = |errors: &FieldErrors| {
        let page = pages::form(&token, &building_name, &typed, errors, &new_nonce());
        (StatusCode::UNPROCESSABLE_ENTITY, Html(page.into_string())).into_response()
    };
    let help = match check(&typed, nonce) {
        Ok(help) => help,
        Err(errors) => return Ok(again(&errors)),
    };
    let store = state.elink.store()?;
    let outcome = {
        let help = help.clone();
        tokio::task::spawn_blocking(move || {
            store.file_request(building, &help, limits.filed_per_building_hour, now_millis())
        })
        .await
        .map_err(|e| ElinkError::Internal(e.to_string()))??
    };
    match outcome {
        FileOutcome::Filed { reference } | FileOutcome::AlreadyFiled { reference } => {
            Ok(Html(pages::receipt(&token, &building_name, &reference, help.category).into_string()).into_response())
        }
        FileOutcome::NonceSpent => Ok(again(&FieldErrors {
            form: Some("页面已过期，请核对后再提交一次"),
            ..FieldErrors::default()
        })),
        FileOutcome::BuildingBusy => Err(ElinkError::TooMany),
        FileOutcome::NoGridWorker => Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            Html(pages::message("暂时无法受理", "本楼栋暂未安排网格员。请拨打社区居委会电话求助。").into_string()),
        )
            .into_response()),
        FileOutcome::Refused { message } => {
            Err(ElinkError::Internal(format!("the push path refused an e-link case: {message}")))
        }
    }
}

async fn status_page(State(state): State<AppState>, Path(token): Path<String>) -> Result<Response, ElinkError> {
    let (_, building_name) = building_of(&state, &token).await?;
    Ok(Html(pages::lookup(&token, &building_name, "", "", None).into_string()).into_response())
}

async fn status_lookup(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Result<Response, ElinkError> {
    let (building, building_name) = building_of(&state, &token).await?;
    let client = client_of(&state.elink, &request);
    let limits = state.elink.limits;
    if !lock(&state.elink.lookups).allow(client, limits.lookups_per_address, limits.window, Instant::now()) {
        tracing::warn!(%client, "e-link status lookups throttled");
        return Err(ElinkError::TooMany);
    }
    let pairs = form_pairs(request.into_body()).await?;
    let typed_reference = field(&pairs, "reference");
    let typed_phone = field(&pairs, "phone");
    // A malformed pair gets the same answer as a wrong one, without a database read.
    let found = match (normalize_reference(typed_reference), normalize_phone(typed_phone)) {
        (Some(reference), Some(phone)) => {
            let store = state.elink.store()?;
            tokio::task::spawn_blocking(move || store.request_status(building, &reference, &phone))
                .await
                .map_err(|e| ElinkError::Internal(e.to_string()))??
        }
        _ => None,
    };
    let keep = |s: &str| s.chars().filter(|c| !c.is_control()).take(30).collect::<String>();
    let page = match &found {
        Some(status) => pages::status(&token, &building_name, status),
        None => pages::lookup(
            &token,
            &building_name,
            &keep(typed_reference),
            &keep(typed_phone),
            Some("没有找到与这个受理编号和电话对应的求助，请核对后重试。"),
        ),
    };
    Ok(Html(page.into_string()).into_response())
}

/// The URL of a building's e-link page under `base_url` (e.g. `https://grid.example.cn`).
pub fn link_url(base_url: &str, link: &BuildingLink) -> String {
    format!("{}{PREFIX}{}", base_url.trim_end_matches('/'), link.token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_mobiles_or_landlines() {
        assert_eq!(normalize_phone("138 0013 8000").as_deref(), Some("13800138000"));
        assert_eq!(normalize_phone("0731-8456 2211").as_deref(), Some("073184562211"));
        assert_eq!(normalize_phone("1380013800"), None);
        assert_eq!(normalize_phone("13800138000\u{0}"), None);
        assert_eq!(normalize_phone("+86 138 0013 8000").as_deref(), Some("13800138000"));
        assert_eq!(normalize_phone("12800138000"), None, "no mobile numbers start with 12");
        assert_eq!(normalize_phone(""), None);
    }

    #[test]
    fn only_the_first_fields_of_a_body_are_read() {
        let body: String = (0..1000).map(|i| format!("f{i}=x&")).collect();
        assert_eq!(form_urlencoded_pairs(body.as_bytes()).len(), FIELDS_MAX);
        assert_eq!(form_urlencoded_pairs(b"name=%E7%8E%8B&phone=1").first().unwrap().1, "王");
    }

    fn forwarded(values: &[&[u8]]) -> axum::http::HeaderMap {
        let mut headers = axum::http::HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_bytes(value).unwrap());
        }
        headers
    }

    #[test]
    fn the_forwarded_client_is_the_rightmost_untrusted_hop_of_a_trusted_peer_only() {
        let proxy = IpAddr::from([127, 0, 0, 1]);
        let inner = IpAddr::from([10, 0, 0, 2]);
        let trusted = [proxy, inner];
        let phone = IpAddr::from([36, 112, 8, 9]);
        let at = |peer: IpAddr, values: &[&[u8]]| client_address(peer, &forwarded(values), &trusted);
        assert_eq!(at(proxy, &[b"36.112.8.9"]), phone);
        // A forged left part is the client's own text: ignored.
        assert_eq!(at(proxy, &[b"1.2.3.4, 36.112.8.9"]), phone);
        assert_eq!(at(proxy, &[b"garbage, 36.112.8.9"]), phone);
        // Two proxies of ours in a row, as one header or two lines.
        assert_eq!(at(proxy, &[b"36.112.8.9, 10.0.0.2"]), phone);
        assert_eq!(at(proxy, &[b"36.112.8.9", b"10.0.0.2"]), phone);
        // The v4-mapped form of a trusted peer is the same peer.
        assert_eq!(at("::ffff:127.0.0.1".parse().unwrap(), &[b"36.112.8.9"]), phone);
        assert_eq!(at(proxy, &[b"2408:8207:1::5"]), "2408:8207:1::5".parse::<IpAddr>().unwrap());
        // Malformed where the client should be: the peer.
        for bad in
            [&b""[..], b"36.112.8.9,", b"36.112.8.9:443", b"unknown", b"36.112.8.999", b"\xff\xfe", b"1.2.3.4 5.6.7.8"]
        {
            assert_eq!(at(proxy, &[bad]), proxy, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(at(proxy, &[b"36.112.8.9", &[0xe4, 0xb8, 0xad]]), proxy, "a line that is not text");
        assert_eq!(client_address(proxy, &axum::http::HeaderMap::new(), &trusted), proxy, "no header");
        // An overlong header: only its right end is read.
        let padded = format!("{}36.112.8.9", "9.9.9.9, ".repeat(20_000));
        assert_eq!(at(proxy, &[padded.as_bytes()]), phone);
        let all_ours = format!("{}127.0.0.1", "10.0.0.2, ".repeat(100));
        assert_eq!(at(proxy, &[all_ours.as_bytes()]), inner, "only proxies of ours: the farthest looked at");
        // An untrusted peer's header is never read.
        assert_eq!(at(phone, &[b"8.8.8.8"]), phone);
        assert_eq!(client_address(proxy, &forwarded(&[b"8.8.8.8"]), &[]), proxy, "no trusted proxy at all");
    }

    #[test]
    fn an_address_is_refused_past_its_window_count_and_admitted_after_it() {
        let mut windows = AddressWindows::default();
        let start = Instant::now();
        let client = IpAddr::from([10, 0, 0, 7]);
        let window = Duration::from_secs(60);
        assert!((0..3).all(|_| windows.allow(client, 3, window, start)));
        assert!(!windows.allow(client, 3, window, start));
        assert!(windows.allow(IpAddr::from([10, 0, 0, 8]), 3, window, start));
        assert!(windows.allow(client, 3, window, start + window));
    }
}
