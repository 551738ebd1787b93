//! A browser for the web console's tests over `oneshot`: it keeps cookies as `Set-Cookie`
//! says (so a session, the login form's token and the language persist), posts url-encoded
//! forms, and reads the CSRF token out of the last page's forms.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use tower::ServiceExt;

/// One response, its body as text.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<&str> {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok())
    }

    /// The value of the first hidden `csrf` field on the page.
    pub fn csrf(&self) -> String {
        csrf_in(&self.body).unwrap_or_else(|| panic!("no csrf field on the page: {}", self.body))
    }

    /// The `Set-Cookie` headers, as sent.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).collect()
    }

    /// The text of the form's error message, if the page shows one.
    pub fn form_error(&self) -> Option<String> {
        let start = self.body.find("class=\"form-error\"")?;
        let text = &self.body[start..];
        let text = &text[text.find('>')? + 1..];
        Some(text[..text.find('<')?].to_string())
    }
}

/// The value of the first hidden `csrf` field in `html`.
pub fn csrf_in(html: &str) -> Option<String> {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker)? + marker.len();
    Some(html[start..start + html[start..].find('"')?].to_string())
}

/// A browser against one router.
pub struct Browser {
    pub app: Router,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(app: Router) -> Self {
        Browser { app, cookies: BTreeMap::new() }
    }

    /// The value of cookie `name`, if the browser holds it.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Request::get(path), Body::empty()).await
    }

    /// Posts `fields` url-encoded.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let builder = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::CONTENT_LENGTH, body.len());
        self.send(builder, Body::from(body)).await
    }

    /// Posts a body as it is, with the headers of `builder`.
    pub async fn send(&mut self, mut builder: axum::http::request::Builder, body: Body) -> Page {
        if !self.cookies.is_empty() {
            let cookie: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            builder = builder.header(header::COOKIE, cookie.join("; "));
        }
        let response = self.app.clone().oneshot(builder.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let page = Page { status, headers, body: String::from_utf8(bytes.to_vec()).unwrap() };
        for set in page.set_cookies() {
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        page
    }

    /// Opens the login page and submits `login` and `password` with its token; returns the
    /// answer to the POST (a 303 to the console when it worked).
    pub async fn sign_in(&mut self, login: &str, password: &str) -> Page {
        let form = self.get("/console/login").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let csrf = form.csrf();
        self.post("/console/login", &[("login", login), ("password", password), ("csrf", &csrf)]).await
    }

    /// Signs in and checks that it worked.
    pub async fn signed_in(app: Router, login: &str, password: &str) -> Browser {
        let mut browser = Browser::new(app);
        let answer = browser.sign_in(login, password).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        assert_eq!(answer.location(), Some("/console"));
        browser
    }
}
