//! Forward-auth through a real nginx on loopback (issue 17): requests/s and p50/p99 of the same GET through nginx
//! to a small upstream, once without auth and once with `auth_request` to keyledger's `/v1/authz` (docs/GATEWAYS.md's
//! configuration), 64 connections each, in one run. Needs nginx (Debian: nginx-light); says so and stops without.
//! Run: `cargo bench --bench gateway`. Traffic stays on 127.0.0.1 and stops after a fixed time.

#[path = "shared/load.rs"]
mod load;

use keyledger::api::{serve, AppState};
use keyledger::cli::demo::nginx::{echo_upstream, find_binary, Nginx};
use keyledger::datadir::DataDir;
use keyledger::event::{Actor, KeyConfig};
use keyledger::gateway::{AuthzConfig, RouteRule};
use keyledger::keys::{CreateKey, Requester};
use std::sync::Arc;
use std::time::Duration;

const RUN_FOR: Duration = Duration::from_secs(10);

fn main() {
    let Some(binary) = find_binary() else {
        println!("gateway benchmark skipped: nginx is not installed (Debian: apt-get install nginx-light)");
        return;
    };
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = DataDir::new(tmp.path().join("data"));
    let (ledger, identity) = dir.init(None).expect("init");
    let ledger = Arc::new(ledger);
    let create = |name: &str, scopes: &[&str], environment: &str| {
        let config = KeyConfig {
            name: name.into(),
            owner: "bench".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            environment: environment.into(),
            ..Default::default()
        };
        ledger
            .submit_blocking(
                CreateKey::new(Requester::new(Actor::System, None), &config).expect("config"),
            )
            .expect("create")
            .secret
            .expose()
            .to_string()
    };
    let gateway = create("nginx-edge", &["ledger:verify"], "keyledger");
    let client_key = create("storefront", &["orders:read"], "production");
    let authz = AuthzConfig {
        trusted_proxies: vec!["127.0.0.1".into()],
        routes: vec![RouteRule {
            methods: vec!["GET".into()],
            path: "/orders/**".into(),
            scope: "orders:read".into(),
        }],
    }
    .compile()
    .expect("authz");
    let mut state = AppState::new(
        ledger.clone(),
        dir.anchor_public_key().expect("anchor"),
        identity.origin,
    );
    state.authz = Arc::new(authz);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
        let api = listener.local_addr().expect("address");
        tokio::spawn(serve(listener, state, std::future::pending()));
        let (upstream, _) = echo_upstream().await.expect("upstream");
        let plain_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        // The same upstream through nginx without auth: the baseline.
        let plain = format!(
            "server {{ listen 127.0.0.1:{plain_port}; location / {{ proxy_pass http://orders_api; }} }}"
        );
        let proxy = Nginx::start(&binary, api, upstream, &gateway, &plain).expect("nginx");
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .expect("client");
        let mut alone = load::drive(
            &client,
            format!("http://127.0.0.1:{plain_port}/orders/1"),
            &client_key,
            None,
            RUN_FOR,
        )
        .await;
        let mut authed = load::drive(&client, format!("{}/orders/1", proxy.base()), &client_key, None, RUN_FOR).await;
        let (rate_alone, p50_alone, p99_alone) = alone.figures();
        let (rate_authed, p50_authed, p99_authed) = authed.figures();
        println!("| path | requests/s | p50 | p99 |");
        println!("|---|---|---|---|");
        println!("| nginx → upstream | {rate_alone:.0} | {p50_alone:.2?} | {p99_alone:.2?} |");
        println!("| nginx → keyledger /v1/authz → upstream | {rate_authed:.0} | {p50_authed:.2?} | {p99_authed:.2?} |");
        println!(
            "forward-auth adds {:.2?} at p50 and {:.2?} at p99; every authorised request is a durable key.used event ({} events)",
            p50_authed.saturating_sub(p50_alone),
            p99_authed.saturating_sub(p99_alone),
            ledger.durable_seq()
        );
    });
}
