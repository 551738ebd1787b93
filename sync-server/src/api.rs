//! HTTP: the accept loop, the router, its layers, the auth extractor and the thin handlers.
//!
//! Connection path ([`serve`], [`serve_tls`]): a slot under the connection cap -> accept ->
//! (TLS handshake within `Limits::tls_handshake_timeout`) -> HTTP/1.1 with a header-read
//! timeout and an idle timeout -> router. Request path: trace -> gzip response
//! compression -> error envelope for bare statuses -> timeout -> gzip request decompression ->
//! body limit (on inflated bytes) -> handler. A handler authenticates (extractor), decodes,
//! hands the work to the [`Store`] on a blocking thread, and encodes (a sync's acks as one
//! status byte per change when the device asks for compact acks).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gridlink_shared::protocol::{
    self, CONTENT_TYPE as CBOR, CompactAcks, EnrollRequest, EnrollResponse, ErrorCode, MeResponse, PROTOCOL_VERSION,
    SyncRequest,
};
use gridlink_shared::time::now_millis;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};
use tower::ServiceExt;
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::console::{Console, ConsoleStore};
use crate::error::ApiError;
use crate::store::{AuthedDevice, PushLimits, Store, StoreError};

/// Limits of the HTTP layer.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request body, after gzip decompression too.
    pub body_bytes: usize,
    /// A request (body included) must be answered within this.
    pub request_timeout: Duration,
    /// Wrong enrolment codes accepted per minute, server-wide, before `/v1/enroll` answers
    /// 429 for the rest of that minute. Codes are short enough to type, so guessing them
    /// online must be slow; enrolments are rare, so a server-wide budget costs little.
    /// Attempts still being checked count against it too: when they fill what is left of the
    /// budget, a further attempt waits for one of them to be decided (a training day's burst
    /// of honest enrolments queues for milliseconds instead of getting 429s). On PostgreSQL
    /// the wrong codes of every server process on the database count (attempts in flight only
    /// in their own).
    pub enroll_failures_per_minute: usize,
    /// The "minute" of `enroll_failures_per_minute`; only tests shorten it.
    pub enroll_window: Duration,
    /// A client must send a request's whole header block within this, or the connection is
    /// closed (slow or silent clients cannot hold connections). hyper starts the clock when it
    /// waits for a request, so it also closes keep-alive connections idle for this long.
    pub header_read_timeout: Duration,
    /// A connection with no request in a handler and no byte moving either way for this long
    /// is closed: keep-alive connections idle between requests (if this is shorter than
    /// `header_read_timeout`) and clients that stop reading their response.
    pub idle_timeout: Duration,
    /// Connections open at once. At the cap the server stops accepting (new connections wait
    /// in the listen backlog) until one closes, so it never runs out of file descriptors;
    /// keep it well under `ulimit -n`.
    pub max_connections: usize,
    /// `/healthz` answers 503 if the store has not answered its check within this.
    pub health_timeout: Duration,
    /// What one sync may push: bytes and operations per change, changes and operations per
    /// request. Checked before automerge parses anything.
    pub push: PushLimits,
    /// With TLS, a client must finish its handshake within this or the connection is closed
    /// (a client that connects and sends half a ClientHello holds nothing for long).
    pub tls_handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(60),
            enroll_failures_per_minute: 20,
            enroll_window: Duration::from_secs(60),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            // Under the usual default of 1,024 file descriptors, with room for the database.
            max_connections: 512,
            health_timeout: Duration::from_secs(5),
            push: PushLimits::default(),
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub limits: Limits,
    /// Recent wrong enrolment codes and the attempts being checked now.
    enroll_throttle: Arc<EnrollGate>,
    /// One store health check at a time, so probes piling up behind a stuck store wait here
    /// instead of each holding a blocking thread.
    health_check: Arc<Semaphore>,
    /// The supervisors' web console under `/console` (its store, login policy, hashing gate);
    /// [`Console::unavailable`] on a store without it (PostgreSQL, for now).
    pub console: Console,
    /// The residents' grid e-link under `/e/` (its store and rate limits);
    /// [`crate::elink::Elink::unavailable`] on a store without it.
    pub elink: crate::elink::Elink,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(store: impl Store + ConsoleStore + crate::elink::ElinkStore) -> Self {
        let store = Arc::new(store);
        AppState {
            console: Console::new(store.clone()),
            elink: crate::elink::Elink::new(store.clone()),
            store,
            limits: Limits::default(),
            enroll_throttle: Arc::default(),
            health_check: Arc::new(Semaphore::new(1)),
        }
    }

    /// The state of a server that serves only the phones' API (`/v1/...`, `/healthz`) from
    /// `store`: `/console` and `/e/` answer 503 pages saying so.
    pub fn sync_only(store: impl Store) -> Self {
        AppState {
            store: Arc::new(store),
            limits: Limits::default(),
            enroll_throttle: Arc::default(),
            health_check: Arc::new(Semaphore::new(1)),
            console: Console::unavailable(),
            elink: crate::elink::Elink::unavailable(),
        }
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Runs a storage call on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || f(store.as_ref())).await??)
    }

    /// Reserves one enrolment attempt under the server-wide throttle, or answers 429 once the
    /// window's wrong codes fill the budget. The check and the reservation are one step under
    /// the lock, so a burst of concurrent guesses cannot all pass the check before any of them
    /// is counted; attempts in flight hold budget as if wrong, and when they hold the rest of
    /// it, this waits until one is decided and checks again (within the request's timeout).
    /// `shared` is the count of wrong codes in the window across every process on the store
    /// (PostgreSQL), which includes this process's own once recorded.
    async fn reserve_enroll_attempt(&self, shared: usize) -> Result<EnrollAttempt, ApiError> {
        let gate = &self.enroll_throttle;
        let limit = self.limits.enroll_failures_per_minute;
        loop {
            // Registered before the check, so a decision between the check and the wait is
            // not missed.
            let settled = gate.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            {
                let mut throttle = lock(&gate.counts);
                let window = self.limits.enroll_window;
                while throttle.failures.front().is_some_and(|t| t.elapsed() >= window) {
                    throttle.failures.pop_front();
                }
                let failures = throttle.failures.len().max(shared);
                if failures >= limit {
                    tracing::warn!(recent_failures = failures, "enrolment throttled after repeated wrong codes");
                    return Err(ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        ErrorCode::TooManyRequests,
                        "Too many wrong enrolment codes; try again in a minute",
                    ));
                }
                if failures + throttle.in_flight < limit {
                    throttle.in_flight += 1;
                    return Ok(EnrollAttempt { gate: gate.clone(), failed: true });
                }
            }
            settled.await;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded data stays consistent even if a holder panicked (plain counters).
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The enrolment throttle's counts, and the signal that an attempt was decided.
#[derive(Debug, Default)]
struct EnrollGate {
    counts: Mutex<EnrollThrottle>,
    settled: Notify,
}

/// Wrong enrolment codes of the current window, and attempts not yet decided.
#[derive(Debug, Default)]
struct EnrollThrottle {
    failures: VecDeque<Instant>,
    in_flight: usize,
}

/// One reserved enrolment attempt. It counts as a wrong code until the store says otherwise,
/// also when the request is dropped half-way (its blocking check may still run).
struct EnrollAttempt {
    gate: Arc<EnrollGate>,
    failed: bool,
}

impl Drop for EnrollAttempt {
    fn drop(&mut self) {
        {
            let mut throttle = lock(&self.gate.counts);
            throttle.in_flight -= 1;
            if self.failed {
                throttle.failures.push_back(Instant::now());
            }
        }
        self.gate.settled.notify_waiters();
    }
}

/// The whole HTTP API. The console and the e-link are mounted only if the state's store
/// serves them; otherwise their paths answer 503 pages saying they are not available yet.
pub fn router(state: AppState) -> Router {
    let limits = state.limits;
    let console = match state.console.is_available() {
        true => crate::console::router(state.clone()),
        false => crate::console::unavailable_router(),
    };
    let elink = match state.elink.is_available() {
        true => crate::elink::router(),
        false => crate::elink::unavailable_router(),
    };
    Router::new()
        .route("/v1/sync", post(sync))
        .route("/v1/enroll", post(enroll))
        .route("/v1/me", get(me))
        .route("/healthz", get(healthz))
        .merge(console)
        .merge(elink)
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        // The limit sits inside decompression, so it counts inflated bytes (no gzip bombs).
        .layer(RequestBodyLimitLayer::new(limits.body_bytes))
        .layer(RequestDecompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout))
        .layer(axum::middleware::from_fn(envelope_for_bare_errors))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
}

/// Serves the API on `listener` until `shutdown` resolves, then stops accepting, closes idle
/// connections and finishes the requests in flight (a sync that was committed still gets its
/// reply). A connection that has not sent a request yet is left to the header-read timeout,
/// so shutdown takes at most about that long plus the slowest request.
///
/// HTTP/1.1 with keep-alive, as `axum::serve` spoke before, plus what it lacked: a
/// header-read timeout, an idle timeout and a cap on open connections (see [`Limits`]), so
/// clients that connect and say nothing cannot exhaust the file descriptors.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, None, shutdown).await
}

/// [`serve`] over TLS (`tls` from [`crate::tls::load`]): the handshake runs after the
/// connection has its slot under the cap and must finish within
/// `Limits::tls_handshake_timeout`; then the connection is served exactly as a plain one.
/// A client speaking plain HTTP to the port fails its handshake and is closed.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, Some(tokio_rustls::TlsAcceptor::from(tls)), shutdown).await
}

async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    /// At most one "limit reached" warning this often, however often the cap is hit.
    const LIMIT_WARNING_EVERY: Duration = Duration::from_secs(60);

    let limits = state.limits;
    let app = router(state);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    let max_connections = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max_connections));
    let graceful = GracefulShutdown::new();
    let mut last_warning: Option<Instant> = None;
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        // A slot first, then accept: at the cap, new connections wait in the kernel's
        // backlog instead of being accepted and costing a descriptor each.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if last_warning.is_none_or(|at| at.elapsed() >= LIMIT_WARNING_EVERY) {
                    tracing::warn!("connection limit reached ({max_connections} open); new connections wait");
                    last_warning = Some(Instant::now());
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break, // Never closed; nothing more to serve if it were.
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // The client gave up before we got to it.
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    // E.g. out of file descriptors: wait for some to close rather than spin.
                    tracing::error!(%error, "accept failed; retrying in a second");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };

        let activity = Arc::new(Activity::new());
        let tracked = Tracked { inner: stream, activity: activity.clone() };
        let connection = Connection {
            http: http.clone(),
            app: app.clone(),
            watcher: graceful.watcher(),
            activity,
            idle_timeout: limits.idle_timeout,
            remote,
        };
        let tls = tls.clone();
        let handshake_timeout = limits.tls_handshake_timeout;
        tokio::spawn(async move {
            // The slot is held until the connection ends, handshake included.
            let _slot = slot;
            let Some(acceptor) = tls else {
                return connection.drive(tracked, false).await;
            };
            match tokio::time::timeout(handshake_timeout, acceptor.accept(tracked)).await {
                Ok(Ok(stream)) => connection.drive(stream, true).await,
                Ok(Err(error)) => tracing::debug!(%remote, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%remote, "TLS handshake took too long; closed"),
            }
        });
    }

    // Refuse new connections at once, then let the open ones finish their requests.
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// One accepted connection, ready to be served once its stream (plain or TLS) is there.
struct Connection {
    http: hyper::server::conn::http1::Builder,
    app: Router,
    watcher: hyper_util::server::graceful::Watcher,
    activity: Arc<Activity>,
    idle_timeout: Duration,
    remote: std::net::SocketAddr,
}

impl Connection {
    /// Serves HTTP/1.1 on `stream` until the client closes, it idles out, or shutdown. Over
    /// TLS every cookie the server sets (the console's) is marked `Secure`, so a browser never
    /// sends it over plain HTTP.
    async fn drive<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(self, stream: S, tls: bool) {
        let Connection { http, app, watcher, activity, idle_timeout, remote } = self;
        let service = {
            let activity = activity.clone();
            hyper::service::service_fn(move |mut request: axum::http::Request<Incoming>| {
                // The peer address, for the e-link's per-address rate limits.
                request.extensions_mut().insert(axum::extract::ConnectInfo(remote));
                let busy = Activity::busy(&activity);
                let app = app.clone();
                async move {
                    let _busy = busy;
                    let mut response = app.oneshot(request).await?;
                    if tls {
                        secure_cookies(response.headers_mut());
                    }
                    Ok::<_, std::convert::Infallible>(response)
                }
            })
        };
        let connection = watcher.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::select! {
            result = connection => {
                if let Err(error) = result {
                    tracing::debug!(%remote, %error, "connection ended with an error");
                }
            }
            () = activity.idle_for(idle_timeout) => tracing::debug!(%remote, "closed an idle connection"),
        }
    }
}

/// Adds `Secure` to every `Set-Cookie` of a response served over TLS.
fn secure_cookies(headers: &mut axum::http::HeaderMap) {
    use axum::http::header::SET_COOKIE;
    let cookies: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(SET_COOKIE);
    for cookie in cookies {
        let secured = match cookie.to_str() {
            Ok(text) if !text.to_ascii_lowercase().contains("; secure") => {
                HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(cookie)
            }
            _ => cookie,
        };
        headers.append(SET_COOKIE, secured);
    }
}

fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(error.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

/// What the idle timer of one connection watches: when a byte last moved, and how many of
/// its requests are in a handler (a slow handler is not idleness; the request timeout
/// bounds it).
struct Activity {
    opened: Instant,
    /// Milliseconds after `opened` of the last byte read or written.
    last_millis: AtomicU64,
    busy: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity { opened: Instant::now(), last_millis: AtomicU64::new(0), busy: AtomicUsize::new(0) }
    }

    fn touch(&self) {
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_millis.store(now, Ordering::SeqCst);
    }

    fn quiet_for(&self) -> Duration {
        self.opened.elapsed().saturating_sub(Duration::from_millis(self.last_millis.load(Ordering::SeqCst)))
    }

    /// Marks a request as in a handler until the guard drops.
    fn busy(this: &Arc<Self>) -> Busy {
        this.busy.fetch_add(1, Ordering::SeqCst);
        Busy(this.clone())
    }

    /// Resolves once the connection has been idle for `limit`.
    async fn idle_for(&self, limit: Duration) {
        let limit = limit.max(Duration::from_millis(1));
        loop {
            let quiet = self.quiet_for();
            if quiet >= limit && self.busy.load(Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep(limit.saturating_sub(quiet).max(Duration::from_millis(1)).min(limit)).await;
        }
    }
}

struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        // The idle clock restarts when the handler ends, not when its last byte came in.
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The TCP stream, noting every byte that moves for the idle timer.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Gives error statuses produced by layers (timeout, body limit, decompression, method not
/// allowed) the same JSON envelope as the handlers' own errors. Not under `/console`: the web
/// console answers with HTML error pages of its own.
async fn envelope_for_bare_errors(request: Request, next: Next) -> Response {
    if crate::console::owns(request.uri().path()) {
        return crate::console::html_errors(request, next).await;
    }
    if crate::elink::owns(request.uri().path()) {
        // The e-link answers its errors with Chinese pages of its own.
        return next.run(request).await;
    }
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        if status.is_server_error() {
            tracing::error!(%status, "a layer answered with a server error");
        }
        return ApiError::from_status(status).into_response();
    }
    response
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "No such endpoint")
}

/// `ok` if the store answers a trivial read within `Limits::health_timeout`, else 503 (so a
/// load balancer or monitor sees a server whose database is gone or stuck).
async fn healthz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    let store = state.store.clone();
    let gate = state.health_check.clone();
    let check = async move {
        let permit = gate.acquire_owned().await.map_err(|_| StoreError::Backend("health check gate closed".into()))?;
        // The permit is held until the check really ends, even if this request gave up.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            store.health()
        })
        .await
        .map_err(|error| StoreError::Backend(format!("health check task failed: {error}")))?
    };
    let unavailable = || ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Internal, "Storage is unavailable");
    match tokio::time::timeout(state.limits.health_timeout, check).await {
        Ok(Ok(())) => Ok("ok"),
        Ok(Err(error)) => {
            tracing::error!(%error, "health check: the store failed");
            Err(unavailable())
        }
        Err(_) => {
            tracing::error!(budget = ?state.limits.health_timeout, "health check: the store did not answer in time");
            Err(unavailable())
        }
    }
}

impl FromRequestParts<AppState> for AuthedDevice {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("Missing Authorization: Bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_string())
            .ok_or_else(|| ApiError::unauthorized("Authorization must be 'Bearer <token>'"))?;
        state.blocking(move |store| store.authenticate(&token)).await
    }
}

/// A CBOR request body.
struct Cbor(Bytes);

impl<S: Send + Sync> FromRequest<S> for Cbor {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !content_type.starts_with(CBOR) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                format!("Expected Content-Type: {CBOR}"),
            ));
        }
        Ok(Cbor(Bytes::from_request(request, state).await?))
    }
}

/// A JSON request body whose rejections use the error envelope.
struct ApiJson<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(ApiJson(value))
    }
}

/// Just the version field, read before the rest so a newer client gets a clear answer even
/// if its message no longer parses as ours.
#[derive(Deserialize)]
struct VersionProbe {
    protocol: u32,
}

async fn sync(State(state): State<AppState>, device: AuthedDevice, Cbor(body): Cbor) -> Result<Response, ApiError> {
    let probe: VersionProbe =
        protocol::decode(&body).map_err(|e| ApiError::bad_request(format!("Sync request is not valid CBOR: {e}")))?;
    if probe.protocol != PROTOCOL_VERSION {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::UnsupportedProtocol,
            format!("Protocol {} is not supported; this server speaks {PROTOCOL_VERSION}", probe.protocol),
        ));
    }
    let request: SyncRequest =
        protocol::decode(&body).map_err(|e| ApiError::bad_request(format!("Malformed sync request: {e}")))?;
    // Sequence numbers live in SQLite integers: a cursor past i64::MAX is nobody's.
    let beyond = |n: u64| i64::try_from(n).is_err();
    if let Some((scope, _)) = request.cursors.iter().find(|(_, cursor)| match cursor {
        protocol::Cursor::Seq { seq } => beyond(*seq),
        protocol::Cursor::Snapshotting { upto, .. } => beyond(*upto),
        protocol::Cursor::Start => false,
    }) {
        return Err(ApiError::bad_request(format!("The cursor of scope {scope} is out of range")));
    }
    let device_id = device.device;
    let pushed = request.changes.len();
    let max_changes = state.limits.push.max_changes;
    if request.changes.len() > max_changes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("A sync may push at most {max_changes} changes; this one has {}", request.changes.len()),
        ));
    }
    let limits = state.limits.push;
    let compact_acks = request.compact_acks;
    let mut response = state.blocking(move |store| store.sync(device_id, &request, &limits, now_millis())).await?;
    let rejected = response.acks.iter().filter(|a| matches!(a.status, protocol::AckStatus::Rejected { .. })).count();
    if compact_acks {
        // The device knows which change each ack is for: one status byte each, not ~117.
        response.compact_acks = Some(CompactAcks::from_acks(&response.acks, pushed));
        response.acks = Vec::new();
    }
    tracing::info!(
        device = %device_id,
        user = %device.principal.user,
        pushed,
        rejected,
        items = response.items.len(),
        more = response.more,
        "sync"
    );
    let mut reply = protocol::encode(&response).into_response();
    reply.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(CBOR));
    Ok(reply)
}

async fn enroll(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<EnrollRequest>,
) -> Result<Json<EnrollResponse>, ApiError> {
    let since = now_millis().saturating_sub(i64::try_from(state.limits.enroll_window.as_millis()).unwrap_or(i64::MAX));
    let shared = state.blocking(move |store| store.enroll_failures_since(since)).await?;
    let mut attempt = state.reserve_enroll_attempt(shared.unwrap_or(0)).await?;
    let result = state.blocking(move |store| store.enroll(&request, now_millis())).await;
    attempt.failed = matches!(&result, Err(error)
        if matches!(error.code, ErrorCode::CodeInvalid | ErrorCode::CodeExpired | ErrorCode::CodeUsed));
    drop(attempt);
    Ok(Json(result?))
}

async fn me(device: AuthedDevice) -> Json<MeResponse> {
    Json(MeResponse { principal: device.principal, device: device.device, actor: device.actor })
}
