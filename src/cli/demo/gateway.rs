//! The demo's forward-auth step: nginx, when installed, runs docs/GATEWAYS.md's configuration in front of a small
//! service and asks the ledger about every request; without nginx the step says why it was skipped.

use super::nginx::{echo_upstream, find_binary, Nginx};
use super::{io, key, step};
use crate::api::AppState;
use crate::event::{Actor, EventData};
use crate::gateway::{AuthzConfig, RouteRule};
use crate::keys::{CreateKey, Requester};
use crate::ledger::Ledger;
use crate::LedgerError;
use ed25519_dalek::VerifyingKey;
use std::io::Write;
use std::sync::Arc;

/// What the step showed: the three requests' statuses (allowed, wrong scope, revoked key).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GatewayRun {
    pub allowed: u16,
    pub wrong_scope: u16,
    pub revoked: u16,
    /// `key.used` events the step's requests left with their method and path.
    pub recorded: usize,
}

fn rule(methods: &[&str], scope: &str) -> RouteRule {
    RouteRule {
        methods: methods.iter().map(|m| m.to_string()).collect(),
        path: "/orders/**".into(),
        scope: scope.into(),
    }
}

/// Runs step `number`: `revoked_secret` is a key revoked earlier in the tour.
pub(super) fn run(
    number: usize,
    runtime: &tokio::runtime::Runtime,
    ledger: &Arc<Ledger>,
    (anchor, origin): (VerifyingKey, String),
    revoked_secret: &str,
    out: &mut dyn Write,
) -> Result<Option<GatewayRun>, LedgerError> {
    let started = step(
        out,
        number,
        "Put keyledger in front of a service: nginx auth_request to /v1/authz (docs/GATEWAYS.md)",
    )
    .map_err(io)?;
    let Some(binary) = find_binary() else {
        writeln!(
            out,
            "   skipped: nginx is not installed here (Debian: apt-get install nginx-light)"
        )
        .map_err(io)?;
        return Ok(None);
    };
    let system = Requester::new(Actor::System, None);
    let create = |name: &str, env: &str, scopes: &[&str]| -> Result<String, LedgerError> {
        let config = key(name, env, "team-storefront", scopes, &[], None);
        let issued = ledger.submit_blocking(CreateKey::new(system.clone(), &config)?)?;
        Ok(issued.secret.expose().to_string())
    };
    let gateway = create("nginx-edge", "keyledger", &["ledger:verify"])?;
    let storefront = create("storefront-web", "production", &["orders:read"])?;
    let authz = AuthzConfig {
        trusted_proxies: vec!["127.0.0.1".into()],
        routes: vec![
            rule(&["GET", "HEAD"], "orders:read"),
            rule(&[], "orders:write"),
        ],
    }
    .compile()
    .map_err(LedgerError::Config)?;
    let before = ledger.durable_seq();
    let mut state = AppState::new(ledger.clone(), anchor, origin);
    state.authz = Arc::new(authz);
    let failed = |e: std::io::Error| LedgerError::io("running the gateway step", e);
    let run = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let api = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::api::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        let (upstream, seen) = echo_upstream().await?;
        let proxy = Nginx::start(&binary, api, upstream, &gateway, "")?;
        let client = reqwest::Client::new();
        let ask = |method: reqwest::Method, secret: &str| {
            client
                .request(method, format!("{}/orders/42", proxy.base()))
                .header("x-api-key", secret)
                .send()
        };
        let status = |r: reqwest::Result<reqwest::Response>| {
            r.map(|r| r.status().as_u16())
                .map_err(std::io::Error::other)
        };
        let run = GatewayRun {
            allowed: status(ask(reqwest::Method::GET, &storefront).await)?,
            wrong_scope: status(ask(reqwest::Method::POST, &storefront).await)?,
            revoked: status(ask(reqwest::Method::GET, revoked_secret).await)?,
            recorded: 0,
        };
        let seen_name = seen.lock().ok().and_then(|seen| {
            seen.first()?
                .get("x-keyledger-key-name")?
                .to_str()
                .ok()
                .map(str::to_string)
        });
        drop(proxy);
        let _ = stop.send(());
        let _ = server.await;
        Ok::<_, std::io::Error>((run, seen_name))
    });
    let (mut run, seen_name) = run.map_err(failed)?;
    let after = ledger.durable_seq();
    for record in ledger.store().scan(before + 1, after + 1) {
        let record = record?;
        let event =
            crate::event::Event::decode(&record.body).map_err(|source| LedgerError::Decode {
                seq: record.seq,
                source,
            })?;
        if matches!(&event.data, EventData::KeyUsed(used) if used.path.is_some()) {
            run.recorded += 1;
        }
    }
    writeln!(
        out,
        "   GET  /orders/42 as storefront-web → {}; the service saw X-Keyledger-Key-Name: {}",
        run.allowed,
        seen_name.as_deref().unwrap_or("(nothing)")
    )
    .map_err(io)?;
    writeln!(out, "   POST /orders/42 as storefront-web → {} (the route rule asks orders:write); the service never saw it", run.wrong_scope).map_err(io)?;
    writeln!(
        out,
        "   GET  /orders/42 with ci-deploy's revoked secret → {}",
        run.revoked
    )
    .map_err(io)?;
    writeln!(
        out,
        "   3 requests through nginx, {} key.used events with method and path ({:.0?})",
        run.recorded,
        started.elapsed()
    )
    .map_err(io)?;
    Ok(Some(run))
}
