//! A real server on an ephemeral loopback port over a fresh ledger with an admin key, and a JSON client for it.
#![allow(dead_code)]

// Also part of `common` in tests that use both; each copy is self-contained.
#[allow(clippy::duplicate_mod)]
#[path = "pg.rs"]
mod pg;

use keyledger::api::{serve, AppState};
use keyledger::datadir::DataDir;
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
    pub dir: DataDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _tmp: Arc<tempfile::TempDir>,
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
    start_with(toml, None).await
}

/// A server over a ledger whose clock is `clock`.
pub async fn start_clocked(clock: Arc<keyledger::clock::ManualClock>) -> Server {
    start_with("", Some(clock)).await
}

/// A server over a ledger with `keyledger.toml` holding `toml`, whose clock is `clock`.
pub async fn start_clocked_with_config(
    toml: &str,
    clock: Arc<keyledger::clock::ManualClock>,
) -> Server {
    start_with(toml, Some(clock)).await
}

async fn start_with(toml: &str, clock: Option<Arc<keyledger::clock::ManualClock>>) -> Server {
    let toml = toml.to_string();
    let (tmp, dir, ledger) = tokio::task::spawn_blocking(move || {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let mut dir = DataDir::new(tmp.path().join("data"));
        if let Some(clock) = clock {
            dir = dir.with_clock(clock);
        }
        std::fs::create_dir_all(dir.root()).expect("data directory");
        if !toml.is_empty() {
            std::fs::write(dir.config_path(), toml).expect("keyledger.toml");
        }
        pg::use_test_store(&dir);
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
    listen(
        Arc::new(ledger),
        dir,
        admin.secret.expose().to_string(),
        Arc::new(tmp),
    )
    .await
}

async fn listen(
    ledger: Arc<keyledger::ledger::Ledger>,
    dir: DataDir,
    admin: String,
    tmp: Arc<tempfile::TempDir>,
) -> Server {
    let identity = dir.identity().unwrap();
    let anchor = dir.anchor_public_key().unwrap();
    let config = dir.config().unwrap();
    let witnessing = keyledger::audit::witnessed::WitnessQuorum::from_config(
        &config.witnesses,
        &config.witness_policy,
    )
    .unwrap();
    let state = AppState::new(ledger.clone(), anchor, identity.origin)
        .configured(&config.authz, &config.http, &config.alerts)
        .witnessed_by(witnessing);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Server {
        base,
        admin,
        ledger,
        anchor,
        dir,
        stop: Some(stop),
        task: Some(task),
        _tmp: tmp,
    }
}

impl Server {
    /// Stops the server, closes the ledger (final checkpoint, fsync) and serves the same data directory again.
    pub async fn restart(mut self) -> Server {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        let (dir, admin, tmp, ledger) = (
            self.dir.clone(),
            self.admin.clone(),
            self._tmp.clone(),
            self.ledger.clone(),
        );
        drop(self);
        // A connection task may drop its copy of the app state a moment after the graceful shutdown returned.
        let released = std::time::Instant::now();
        while Arc::strong_count(&ledger) > 1
            && released.elapsed() < std::time::Duration::from_secs(5)
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let reopen_dir = dir.clone();
        let reopened = tokio::task::spawn_blocking(move || {
            let mut ledger =
                Arc::try_unwrap(ledger).unwrap_or_else(|_| panic!("the ledger is still shared"));
            ledger.close();
            drop(ledger);
            reopen_dir
                .open(&keyledger::datadir::KeySource::default())
                .expect("reopen")
        })
        .await
        .unwrap();
        listen(Arc::new(reopened), dir, admin, tmp).await
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

/// Creates a key through the API as the admin; returns its id and secret.
pub async fn new_key(s: &Server, body: Value) -> (String, String) {
    let (status, created) = call(
        &client(),
        reqwest::Method::POST,
        format!("{}/v1/keys", s.base),
        Some(&s.admin),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    (
        created["key"]["key_id"].as_str().unwrap().to_string(),
        created["secret"].as_str().unwrap().to_string(),
    )
}
