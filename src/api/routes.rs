//! The one list of routes: each path, the methods it answers and its entry in the OpenAPI document. The router
//! and the document are both built from it.

use super::{
    alerts, analysis, audit, authz, console_asset, events, events_stream, healthz, key_list, keys,
    metrics, openapi, tlog, verify, AppState,
};
use axum::routing::{any, get, post, MethodRouter};

/// Paths the router serves that the OpenAPI document leaves out: the console's page and files (a browser's, not
/// an API client's), and forward-auth's catch-all, which answers for any path below `/v1/authz` as for
/// `/v1/authz` itself (documented there), and the tlog tiles, whose paths and bytes c2sp.org/tlog-tiles defines
/// (docs/API.md).
pub const UNDOCUMENTED: &[&str] = &[
    "/",
    "/console/{file}",
    "/v1/authz/{*path}",
    "/v1/tlog/tile/{*path}",
];

/// One route: its path, the methods it answers, and what the OpenAPI document says of it (`None` for the
/// routes served on purpose without documenting them: [`UNDOCUMENTED`]).
pub struct Route {
    pub path: &'static str,
    pub methods: MethodRouter<AppState>,
    pub doc: Option<fn() -> openapi::PathItem>,
}

fn route(
    path: &'static str,
    methods: MethodRouter<AppState>,
    doc: fn() -> openapi::PathItem,
) -> Route {
    Route {
        path,
        methods,
        doc: Some(doc),
    }
}

fn undocumented(path: &'static str, methods: MethodRouter<AppState>) -> Route {
    Route {
        path,
        methods,
        doc: None,
    }
}

/// Every route the router serves, with the methods each answers and its entry in the OpenAPI document: the one
/// list of routes. The router and the document are built from it and nothing else; tests/http_api.rs asks the
/// running server (not this list) which methods each documented path answers.
pub fn routes() -> Vec<Route> {
    use openapi as doc;
    vec![
        undocumented("/", get(crate::console::index)),
        undocumented("/console/{file}", get(console_asset)),
        route("/healthz", get(healthz), doc::healthz),
        route("/metrics", get(metrics), doc::metrics),
        route("/v1/openapi.json", get(openapi), doc::openapi_json),
        route(
            "/v1/keys",
            get(key_list::list).post(keys::create),
            doc::keys,
        ),
        route("/v1/keys/find", post(keys::find), doc::keys_find),
        route(
            "/v1/keys/{id}",
            get(keys::show).patch(keys::update).delete(keys::revoke),
            doc::keys_id,
        ),
        route(
            "/v1/keys/{id}/events",
            get(keys::history),
            doc::keys_id_events,
        ),
        route(
            "/v1/keys/{id}/rotate",
            post(keys::rotate),
            doc::keys_id_rotate,
        ),
        route(
            "/v1/keys/{id}/suspend",
            post(keys::suspend),
            doc::keys_id_suspend,
        ),
        route(
            "/v1/keys/{id}/reactivate",
            post(keys::reactivate),
            doc::keys_id_reactivate,
        ),
        route(
            "/v1/owners/{owner}/revoke",
            post(keys::revoke_owner),
            doc::owners_owner_revoke,
        ),
        route("/v1/events", get(events::list), doc::events),
        route(
            "/v1/events/stream",
            get(events_stream::stream),
            doc::events_stream,
        ),
        route("/v1/verify", post(verify::verify), doc::verify),
        route("/v1/authz", any(authz::authz), doc::authz),
        undocumented("/v1/authz/{*path}", any(authz::authz)),
        route("/v1/usage", get(analysis::usage), doc::usage),
        route("/v1/anomalies", get(analysis::anomalies), doc::anomalies),
        route(
            "/v1/reports/{name}",
            get(analysis::reports),
            doc::reports_name,
        ),
        route("/v1/audit/verify", get(audit::verify), doc::audit_verify),
        route(
            "/v1/audit/checkpoint",
            get(audit::checkpoint),
            doc::audit_checkpoint,
        ),
        route("/v1/audit/export", get(audit::export), doc::audit_export),
        route(
            "/v1/alerts/deliveries",
            get(alerts::deliveries),
            doc::alerts_deliveries,
        ),
        route(
            "/v1/tlog/checkpoint",
            get(tlog::checkpoint),
            doc::tlog_checkpoint,
        ),
        undocumented("/v1/tlog/tile/{*path}", get(tlog::tile)),
    ]
}

/// The OpenAPI document of [`routes`], as served at `/v1/openapi.json` and checked in as docs/openapi.json.
pub fn openapi_text() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let paths = routes()
            .into_iter()
            .filter_map(|route| route.doc.map(|doc| (route.path, doc())))
            .collect();
        openapi::to_text(&openapi::document(paths))
    })
}
