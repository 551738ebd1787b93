//! One error type for every HTTP failure. Each becomes the JSON envelope
//! `{"error": {"code": "...", "message": "..."}}`; faults are logged and answered with a
//! generic message so internals never reach a client.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gridlink_shared::protocol::{ErrorBody, ErrorCode, ErrorEnvelope};

use crate::store::StoreError;

/// An HTTP failure with its status, machine code and human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
    }

    /// A fault: the detail goes to the log, the client gets a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, ErrorCode::Internal.en())
    }

    /// The envelope a bare status gets (404 from the fallback, 408 from the timeout, ...).
    pub fn from_status(status: StatusCode) -> Self {
        let code = match status {
            StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
            StatusCode::FORBIDDEN => ErrorCode::Forbidden,
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::REQUEST_TIMEOUT => ErrorCode::Timeout,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            StatusCode::TOO_MANY_REQUESTS => ErrorCode::TooManyRequests,
            s if s.is_server_error() => ErrorCode::Internal,
            _ => ErrorCode::BadRequest,
        };
        let message = match status {
            StatusCode::METHOD_NOT_ALLOWED => "Method not allowed on this path".to_string(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported content type or content encoding".to_string(),
            _ => code.en().to_string(),
        };
        ApiError::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let envelope = ErrorEnvelope { error: ErrorBody { code: self.code, message: self.message } };
        (self.status, Json(envelope)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let status = StatusCode::UNAUTHORIZED;
        match error {
            StoreError::Unauthorized => ApiError::unauthorized("Missing or invalid token"),
            StoreError::DeviceRevoked => ApiError::new(
                status,
                ErrorCode::DeviceRevoked,
                "This device was revoked; ask your admin for a new code",
            ),
            StoreError::DeviceWiped => ApiError::new(
                StatusCode::GONE,
                ErrorCode::DeviceWiped,
                "This device was wiped remotely: erase its data and key; ask your admin to enrol it again",
            ),
            StoreError::CodeInvalid => ApiError::new(status, ErrorCode::CodeInvalid, "Enrolment code is invalid"),
            StoreError::CodeExpired => {
                ApiError::new(status, ErrorCode::CodeExpired, "Enrolment code has expired; ask for a new one")
            }
            StoreError::CodeUsed => {
                ApiError::new(status, ErrorCode::CodeUsed, "Enrolment code was already used; ask for a new one")
            }
            StoreError::NotFound(what) => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, what),
            StoreError::Invalid(message) => ApiError::bad_request(message),
            StoreError::Backend(detail) | StoreError::Retryable(detail) => ApiError::internal(detail),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "Expected Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(bytes) => ApiError::from(bytes),
            other if status == StatusCode::PAYLOAD_TOO_LARGE => ApiError::from_status(status).with(other.body_text()),
            other => ApiError::bad_request(other.body_text()),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
        } else {
            ApiError::bad_request(format!("Could not read the request body: {}", rejection.body_text()))
        }
    }
}

impl ApiError {
    fn with(mut self, message: String) -> Self {
        self.message = message;
        self
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(error: tokio::task::JoinError) -> Self {
        ApiError::internal(format!("storage task failed: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_statuses_map_to_stable_codes_and_faults_say_nothing_inside() {
        assert_eq!(ApiError::from_status(StatusCode::REQUEST_TIMEOUT).code, ErrorCode::Timeout);
        assert_eq!(ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE).code, ErrorCode::PayloadTooLarge);
        assert_eq!(ApiError::from_status(StatusCode::NOT_FOUND).code, ErrorCode::NotFound);
        assert_eq!(ApiError::from_status(StatusCode::BAD_GATEWAY).code, ErrorCode::Internal);
        let fault = ApiError::from(StoreError::Backend("disk I/O error at /srv/gridlink/server.db".into()));
        assert_eq!(fault.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!fault.message.contains("/srv"), "internals never reach the client");
    }
}
