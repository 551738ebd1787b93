//! HTTP: the router, its layers, the auth extractor and the thin handlers.
//!
//! Request path: trace -> gzip response compression -> error envelope for bare statuses ->
//! timeout -> gzip request decompression -> body limit (on inflated bytes) -> handler. A handler authenticates
//! (extractor), decodes, hands the work to the [`Store`] on a blocking thread, and encodes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gridlink_shared::protocol::{
    self, CONTENT_TYPE as CBOR, EnrollRequest, EnrollResponse, ErrorCode, MeResponse, PROTOCOL_VERSION, SyncRequest,
};
use gridlink_shared::time::now_millis;
use serde::Deserialize;
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::store::{AuthedDevice, Store};

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
    pub enroll_failures_per_minute: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(60),
            enroll_failures_per_minute: 20,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub limits: Limits,
    /// When recent wrong enrolment codes were tried (the last minute's worth).
    enroll_failures: Arc<std::sync::Mutex<std::collections::VecDeque<std::time::Instant>>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(store: impl Store) -> Self {
        AppState { store: Arc::new(store), limits: Limits::default(), enroll_failures: Arc::default() }
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
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let limits = state.limits;
    Router::new()
        .route("/v1/sync", post(sync))
        .route("/v1/enroll", post(enroll))
        .route("/v1/me", get(me))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        // The limit sits inside decompression, so it counts inflated bytes (no gzip bombs).
        .layer(RequestBodyLimitLayer::new(limits.body_bytes))
        .layer(RequestDecompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout))
        .layer(axum::middleware::map_response(envelope_for_bare_errors))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes the requests in
/// flight (a sync that was committed still gets its reply).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

/// Gives error statuses produced by layers (timeout, body limit, decompression, method not
/// allowed) the same JSON envelope as the handlers' own errors.
async fn envelope_for_bare_errors(response: Response) -> Response {
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

async fn healthz() -> &'static str {
    "ok"
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
    let device_id = device.device;
    let pushed = request.changes.len();
    let response = state.blocking(move |store| store.sync(device_id, &request, now_millis())).await?;
    let rejected = response.acks.iter().filter(|a| matches!(a.status, protocol::AckStatus::Rejected { .. })).count();
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
    const WINDOW: Duration = Duration::from_secs(60);
    let recent_failures = {
        let mut failures = state.enroll_failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while failures.front().is_some_and(|t| t.elapsed() > WINDOW) {
            failures.pop_front();
        }
        failures.len()
    };
    if recent_failures >= state.limits.enroll_failures_per_minute {
        tracing::warn!(recent_failures, "enrolment throttled after repeated wrong codes");
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyRequests,
            "Too many wrong enrolment codes; try again in a minute",
        ));
    }
    let result = state.blocking(move |store| store.enroll(&request, now_millis())).await;
    if let Err(error) = &result
        && matches!(error.code, ErrorCode::CodeInvalid | ErrorCode::CodeExpired | ErrorCode::CodeUsed)
    {
        state
            .enroll_failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push_back(std::time::Instant::now());
    }
    Ok(Json(result?))
}

async fn me(device: AuthedDevice) -> Json<MeResponse> {
    Json(MeResponse { principal: device.principal, device: device.device, actor: device.actor })
}
