//! The read-only web console (issue 16), served by `keyledger serve` at `/`: HTML, CSS and JavaScript written in
//! this project and embedded in the binary. It calls only the public API with the key the user signs in with,
//! so it can do nothing that key cannot. A strict Content-Security-Policy allows only these files.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// Every asset: (file name, content type, content).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/dom.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/charts.js"),
    ),
    (
        "keys.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/keys.js"),
    ),
    (
        "key.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/key.js"),
    ),
    (
        "incident.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/incident.js"),
    ),
    (
        "health.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/health.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("assets/favicon.svg"),
    ),
];

const INDEX: &str = include_str!("assets/index.html");

/// Only the console's own files; no inline script or style, no other origin, never framed.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                      img-src 'self' data: blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn with_headers(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-cache"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// `GET /`: the console's page.
pub async fn index() -> Response {
    with_headers("text/html; charset=utf-8", INDEX)
}

/// `GET /console/{file}`: its scripts and style sheet; `None` for a file the console does not have (the API
/// answers that with its JSON 404).
pub fn asset(file: &str) -> Option<Response> {
    ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .map(|(_, content_type, body)| with_headers(content_type, body))
}
