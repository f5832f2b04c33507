//! A real server on an ephemeral loopback port over a fresh ledger with an admin key, and a JSON client for it.
#![allow(dead_code)]

use keyledger::api::{serve, AppState};
use keyledger::event::{Actor, KeyConfig};
use keyledger::keys::{CreateKey, Requester};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use std::sync::Arc;

pub struct Server {
    pub base: String,
    pub admin: String,
    pub ledger: Arc<keyledger::ledger::Ledger>,
    pub anchor: ed25519_dalek::VerifyingKey,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _tmp: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn start() -> Server {
    start_with_config("").await
}

/// A server over a ledger whose `keyledger.toml` holds `toml`.
pub async fn start_with_config(toml: &str) -> Server {
    let toml = toml.to_string();
    let (tmp, dir, ledger) = tokio::task::spawn_blocking(move || {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let dir = keyledger::datadir::DataDir::new(tmp.path().join("data"));
        std::fs::create_dir_all(dir.root()).expect("data directory");
        if !toml.is_empty() {
            std::fs::write(dir.config_path(), toml).expect("keyledger.toml");
        }
        let (ledger, _) = dir.init(None).expect("init");
        (tmp, dir, ledger)
    })
    .await
    .unwrap();
    let config = KeyConfig {
        name: "admin".into(),
        owner: "ops".into(),
        scopes: [
            "ledger:admin",
            "ledger:read",
            "ledger:audit",
            "ledger:verify",
        ]
        .map(String::from)
        .to_vec(),
        environment: "keyledger".into(),
        ..Default::default()
    };
    let admin = ledger
        .submit(CreateKey::new(Requester::new(Actor::System, None), &config).unwrap())
        .await
        .unwrap();
    let ledger = Arc::new(ledger);
    let identity = dir.identity().unwrap();
    let anchor = dir.anchor_public_key().unwrap();
    let state = AppState {
        ledger: ledger.clone(),
        anchor,
        origin: identity.origin,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Server {
        base,
        admin: admin.secret.expose().to_string(),
        ledger,
        anchor,
        stop: Some(stop),
        _tmp: tmp,
    }
}

pub fn client() -> Client {
    Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

pub async fn call(
    c: &Client,
    method: reqwest::Method,
    url: String,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = c.request(method, url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}
