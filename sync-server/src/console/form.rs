//! Forms that change something. Every POST to the console passes the [`guard`], which reads the
//! body (bounded), checks its `csrf` field against the session's token and refuses the request
//! (403) otherwise, whatever the handler; so a page author cannot forget the check. What is
//! left for pages: render forms with [`post_form`] (it adds the token) and take [`CsrfForm`]
//! in the handler (it parses the checked body and carries the user).
//!
//! [`guard`]: super::guard

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use maud::{Markup, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::errors::ConsoleError;
use super::session::ConsoleUser;
use crate::api::AppState;

/// Name of the hidden field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// A form body the guard has read within the limit and whose CSRF token it has checked.
#[derive(Clone, Debug)]
pub(crate) struct VerifiedBody(pub Bytes);

/// A POSTed form whose CSRF token matched the session's, parsed as `T`, and the user who sent
/// it. Take this in every POST handler:
///
/// ```ignore
/// #[derive(serde::Deserialize)]
/// struct Reassign { case: CaseId, to: UserId }
///
/// async fn reassign(CsrfForm { user, form }: CsrfForm<Reassign>) -> Result<Response, ConsoleError> { ... }
/// ```
///
/// `T` sees every field but `csrf` is already checked; unknown fields are ignored unless `T`
/// says otherwise. A body that does not parse as `T` is a 400 page.
#[derive(Clone, Debug)]
pub struct CsrfForm<T> {
    pub user: ConsoleUser,
    pub form: T,
}

/// For forms with nothing but the token (a sign-out button).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct NoFields {}

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for CsrfForm<T> {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let form = checked_form(parts)?;
        let user = ConsoleUser::from_request_parts(parts, state).await?;
        Ok(CsrfForm { user, form })
    }
}

/// The guard-checked body of this request parsed as `T`. Fails closed (500) if the request
/// did not pass the guard, which would be a routing mistake, never a client's.
pub(crate) fn checked_form<T: DeserializeOwned>(parts: &Parts) -> Result<T, ConsoleError> {
    let VerifiedBody(bytes) = parts
        .extensions
        .get::<VerifiedBody>()
        .ok_or_else(|| ConsoleError::internal(format!("{} was routed around the console guard", parts.uri.path())))?;
    serde_urlencoded::from_bytes(bytes).map_err(|error| {
        tracing::debug!(%error, path = parts.uri.path(), "console: a form did not parse");
        ConsoleError::bad_request("表单内容不完整或有误。", "The form is incomplete or malformed.")
    })
}

/// The hidden CSRF field; [`post_form`] adds it for you.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(token); }
}

/// A `<form method="post">` to `action` with the session's CSRF token and `fields` inside.
/// Render every state-changing form with this.
pub fn post_form(user: &ConsoleUser, action: &str, fields: Markup) -> Markup {
    html! {
        form method="post" action=(action) {
            (csrf_field(user.csrf_token()))
            (fields)
        }
    }
}

/// Compares two secrets in time independent of where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn a_token_only_form_parses_as_no_fields() {
        let _: NoFields = serde_urlencoded::from_bytes(b"csrf=abc").unwrap();
    }
}
