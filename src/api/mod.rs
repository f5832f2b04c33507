//! The HTTP API (axum): routes under `/v1`, authenticated with keyledger's own keys, JSON errors with stable
//! codes, a body size limit, request timeouts, request logs without secrets, and graceful shutdown.

pub mod alerts;
pub mod analysis;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod conventions;
pub mod cursor;
pub mod error;
pub mod events;
pub mod events_stream;
mod events_stream_read;
pub mod follower_auth;
pub mod idempotency;
pub mod key_bodies;
pub mod key_list;
pub mod keys;
pub mod limits;
pub mod openapi;
mod routes;
pub mod tlog;
pub mod verify;

pub use routes::{openapi_text, routes, Route, UNDOCUMENTED};

use crate::ledger::Ledger;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use ed25519_dalek::VerifyingKey;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Longest a request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub ledger: Arc<Ledger>,
    /// The ledger's first public key (trust anchor).
    pub anchor: VerifyingKey,
    pub origin: String,
    pub in_flight: Arc<idempotency::InFlight>,
    /// Trusted proxies and route rules for `/v1/authz`.
    pub authz: Arc<crate::gateway::Authz>,
    /// On a read-only follower: how it has the leader verify (and record) the keys it is presented.
    pub leader_auth: Option<Arc<follower_auth::LeaderAuth>>,
    /// The alert outbox's counters, when it runs (the writer with sinks configured).
    pub alert_metrics: Option<Arc<crate::alerts::deliveries::AlertMetrics>>,
    /// Browser origins allowed to call the API (`[http] cors_origins`).
    pub cors_origins: Vec<String>,
    /// The webhook sinks (`[alerts]`), shown by `/v1/alerts`.
    pub alerts: Arc<crate::alerts::AlertsConfig>,
    /// The witnesses whose cosignatures make a checkpoint witnessed (`[[witnesses]]`, `[witness_policy]`).
    pub witnessing: Arc<crate::audit::witnessed::WitnessQuorum>,
}

impl AppState {
    /// The state with no gateway rules and no browser origins; [`AppState::configured`] sets them.
    pub fn new(ledger: Arc<Ledger>, anchor: VerifyingKey, origin: String) -> Self {
        Self {
            ledger,
            anchor,
            origin,
            in_flight: Arc::default(),
            authz: Arc::default(),
            leader_auth: None,
            alert_metrics: None,
            cors_origins: Vec::new(),
            alerts: Arc::default(),
            witnessing: Arc::default(),
        }
    }

    /// The `[authz]`, `[http]` and `[alerts]` sections of keyledger.toml.
    pub fn configured(
        mut self,
        authz: &crate::gateway::AuthzConfig,
        http: &conventions::HttpConfig,
        alerts: &crate::alerts::AlertsConfig,
    ) -> Self {
        self.alerts = Arc::new(alerts.clone());
        // keyledger.toml was validated (which compiles the rules) when it was loaded.
        self.authz = Arc::new(authz.compile().unwrap_or_default());
        self.cors_origins = http.cors_origins.clone();
        self
    }

    /// Serve witnessed checkpoints: those cosigned by `quorum` (none when no witness is configured).
    pub fn witnessed_by(mut self, quorum: crate::audit::witnessed::WitnessQuorum) -> Self {
        self.witnessing = Arc::new(quorum);
        self
    }

    /// The state of a follower, which authenticates callers through the leader.
    pub fn following(mut self, leader_auth: follower_auth::LeaderAuth) -> Self {
        self.leader_auth = Some(Arc::new(leader_auth));
        self
    }
}

/// `GET /console/{file}`: the console's scripts and style sheet.
async fn console_asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    crate::console::asset(&file).unwrap_or_else(|| {
        error::ApiError::new(
            StatusCode::NOT_FOUND,
            "no_route",
            format!("no console file {file:?}"),
        )
        .into_response()
    })
}

/// `/healthz`'s account of the process's role: the leader (the writer), or a follower and how far behind it is.
fn role(ledger: &Ledger) -> serde_json::Value {
    match ledger.follower_position() {
        None => json!({ "role": "leader" }),
        Some(position) => json!({
            "role": "follower",
            "leader": ledger.leader_address(),
            "applied_seq": position.applied_seq,
            "leader_seq": position.leader_seq,
            "lag_seconds": position.lag.as_secs_f64(),
        }),
    }
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.ledger.failure() {
        None => (
            StatusCode::OK,
            Json(json!({
                // Degraded: the ledger writes, but checkpoints are not reaching the anchor outside it.
                "status": match state.ledger.metrics().anchor_failures.load(std::sync::atomic::Ordering::Relaxed) {
                    0 => "ok",
                    _ => "degraded",
                },
                "anchor_failures": state.ledger.metrics().anchor_failures.load(std::sync::atomic::Ordering::Relaxed),
                "replication": role(&state.ledger),
                "durable_seq": state.ledger.durable_seq(),
                "startup_check": match state.ledger.startup_check() {
                    crate::ledger::StartupCheck::Running { upto } => json!({ "state": "running", "upto": upto }),
                    crate::ledger::StartupCheck::Passed => json!({ "state": "passed" }),
                    crate::ledger::StartupCheck::Failed(reason) => json!({ "state": "failed", "reason": reason }),
                },
            })),
        ),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "failed", "reason": reason })),
        ),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.ledger.metrics().render();
    if let Some(alerts) = &state.alert_metrics {
        text.push_str(&alerts.render());
    }
    let store = state.ledger.store().clone();
    if let Ok(Ok(bytes)) = tokio::task::spawn_blocking(move || store.size_on_disk()).await {
        text.push_str(&format!(
            "# TYPE keyledger_store_bytes gauge\nkeyledger_store_bytes {bytes}\n"
        ));
    }
    text.push_str(&format!(
        "# TYPE keyledger_durable_seq gauge\nkeyledger_durable_seq {}\n",
        state.ledger.durable_seq()
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_text())
}

async fn not_found() -> error::ApiError {
    error::ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "no such endpoint; see /v1/openapi.json",
    )
}

/// A read that found a changed or missing record stops the ledger: writes are refused and `/healthz` answers 503
/// until an operator has looked (the log cannot be trusted, so neither can anything derived from it).
async fn stop_on_integrity_failure(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let response = next.run(request).await;
    if let Some(error::IntegrityFailure(message)) = response.extensions().get() {
        state.ledger.stop_untrusted(message);
    }
    response
}

/// The router with every route and layer.
pub fn router(state: AppState) -> Router {
    let router = routes()
        .into_iter()
        .fold(Router::new(), |router, route| router.route(route.path, route.methods))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), idempotency::idempotency))
        .layer(axum::middleware::from_fn_with_state(state.clone(), stop_on_integrity_failure))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        // Heads refused on the connection (408, 414, 431, 400) arrive as stand-ins: answered here, and logged.
        .layer(axum::middleware::from_fn(limits::answer_refused))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<_>| {
                    // Method, path and request id only: never other headers (keys) or bodies (secrets).
                    let id = request.headers().get(conventions::REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
                })
                .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(tower_http::LatencyUnit::Micros)),
        )
        ;
    let origins = state.cors_origins.clone();
    let router = match conventions::cors(&origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(axum::middleware::from_fn(conventions::conventions))
        .with_state(state)
}

/// Serves until `shutdown` resolves, with the default [`limits::Limits`]; in-flight requests get up to
/// [`REQUEST_TIMEOUT`] to finish, then the caller closes the ledger.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_limited(listener, state, limits::Limits::default(), shutdown).await
}

/// [`serve`] with `limits` on its connections: how long a request head may take, how long a connection may stay
/// idle, how many may be open.
pub async fn serve_limited(
    listener: tokio::net::TcpListener,
    state: AppState,
    limits: limits::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (app, handle) = prepare(state, shutdown);
    let plain = axum_server::accept::DefaultAcceptor::new();
    let mut server = axum_server::Server::<std::net::SocketAddr>::from_listener(listener)
        .acceptor(limits::Guard::new(plain, limits, true))
        .handle(handle);
    // Between requests hyper closes a kept-alive connection after the idle limit (only it knows when an answer
    // was written); the guard answers a head that began but did not finish (408).
    server
        .http_builder()
        .http1()
        .header_read_timeout(limits.idle_timeout);
    server.serve(app).await
}

/// [`serve_limited`] over TLS (rustls): `tls` may be reloaded while serving.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    state: AppState,
    tls: axum_server::tls_rustls::RustlsConfig,
    limits: limits::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (app, handle) = prepare(state, shutdown);
    let tls = axum_server::tls_rustls::RustlsAcceptor::new(tls);
    let mut server = axum_server::from_tcp(listener)?
        .acceptor(limits::Guard::new(tls, limits, false))
        .handle(handle);
    server
        .http_builder()
        .http1()
        .header_read_timeout(limits.idle_timeout);
    server.serve(app).await
}

/// The app to serve, and a handle that stops it gracefully once `shutdown` resolves: open event streams are
/// ended (they never finish on their own) and connections get up to [`REQUEST_TIMEOUT`] to finish.
fn prepare(
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (
    axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Router, std::net::SocketAddr>,
    axum_server::Handle<std::net::SocketAddr>,
) {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    let streams = events_stream::StreamShutdown::default();
    let app = router(state)
        .layer(axum::Extension(streams.clone()))
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move {
        shutdown.await;
        streams.close();
        stopper.graceful_shutdown(Some(REQUEST_TIMEOUT));
    });
    (app, handle)
}
