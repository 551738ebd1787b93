//! File uploads: the few console POSTs that take a `multipart/form-data` body (a file) instead
//! of a short url-encoded form, each with its own body limit. The [`guard`](super::guard)
//! asks `limit_for` which paths these are, reads their body within that limit, and checks the
//! `csrf` part (`csrf_of`) as it checks every form's field; handlers take [`Upload`].

use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;

use super::errors::ConsoleError;
use super::form::{CSRF_FIELD, VerifiedBody};
use super::session::ConsoleUser;
use crate::api::AppState;

/// Largest roster CSV the console accepts: a street's roster (tens of thousands of households)
/// is a few MiB; the importer holds the whole file in memory, so the bound is deliberate.
pub const ROSTER_UPLOAD_BYTES: usize = 5 * 1024 * 1024;

/// The upload paths and their body limits.
const UPLOADS: &[(&str, usize)] = &[(super::admin::ROSTER_PATH, ROSTER_UPLOAD_BYTES)];

/// Parts a form may have; anything past this is refused (a real form has two or three).
const MAX_PARTS: usize = 8;

/// The body limit of `path` if it takes an upload.
pub(crate) fn limit_for(path: &str) -> Option<usize> {
    UPLOADS.iter().find(|(p, _)| *p == path).map(|(_, limit)| *limit)
}

/// Whether the request says it is `multipart/form-data`.
pub(crate) fn is_multipart(headers: &HeaderMap) -> bool {
    boundary(headers).is_some()
}

fn boundary(headers: &HeaderMap) -> Option<String> {
    let content_type = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    multer::parse_boundary(content_type).ok()
}

/// One part of an uploaded form.
#[derive(Clone, Debug)]
pub struct Part {
    pub name: String,
    /// The file's name as the browser sent it, for a file part.
    pub file_name: Option<String>,
    pub data: Bytes,
}

/// Every part of a multipart body already read within its limit. `None` if it is not a
/// well-formed multipart body.
pub(crate) async fn parts_of(headers: &HeaderMap, bytes: &Bytes) -> Option<Vec<Part>> {
    let boundary = boundary(headers)?;
    let mut multipart = multer::Multipart::new(Body::from(bytes.clone()).into_data_stream(), boundary);
    let mut parts = Vec::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                if parts.len() >= MAX_PARTS {
                    return None;
                }
                let name = field.name().unwrap_or_default().to_string();
                let file_name = field.file_name().map(str::to_string);
                let data = field.bytes().await.ok()?;
                parts.push(Part { name, file_name, data });
            }
            Ok(None) => return Some(parts),
            Err(error) => {
                tracing::debug!(%error, "console: a multipart body did not parse");
                return None;
            }
        }
    }
}

/// The `csrf` part of a multipart body, for the guard.
pub(crate) async fn csrf_of(headers: &HeaderMap, bytes: &Bytes) -> String {
    let Some(parts) = parts_of(headers, bytes).await else { return String::new() };
    parts
        .into_iter()
        .find(|p| p.name == CSRF_FIELD && p.file_name.is_none())
        .and_then(|p| String::from_utf8(p.data.to_vec()).ok())
        .unwrap_or_default()
}

/// A POSTed upload whose CSRF part matched the session's, its parts, and the user who sent it.
#[derive(Clone, Debug)]
pub struct Upload {
    pub user: ConsoleUser,
    pub parts: Vec<Part>,
}

impl Upload {
    /// The first part named `name`.
    pub fn part(&self, name: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.name == name)
    }
}

impl FromRequestParts<AppState> for Upload {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let VerifiedBody(bytes) = parts.extensions.get::<VerifiedBody>().cloned().ok_or_else(|| {
            ConsoleError::internal(format!("{} was routed around the console guard", parts.uri.path()))
        })?;
        let fields = parts_of(&parts.headers, &bytes).await.ok_or_else(|| {
            ConsoleError::bad_request("上传的内容不完整或有误。", "The upload is incomplete or malformed.")
        })?;
        let user = ConsoleUser::from_request_parts(parts, state).await?;
        Ok(Upload { user, parts: fields })
    }
}
