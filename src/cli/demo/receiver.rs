//! A webhook receiver on 127.0.0.1 for the demo and the tests: records every request (headers and body), checks
//! its signature, and can be told to fail its first N requests (500) or to answer slowly.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub alert_id: String,
    pub signature: String,
    pub body: Vec<u8>,
    /// Whether the signature verified with the receiver's secret (within 5 minutes).
    pub signed: bool,
    /// Whether the receiver answers 2xx (acknowledges it). Recorded on arrival: a sender that dies while the
    /// receiver is still answering never sees the acknowledgement, and sends it again.
    pub acknowledged: bool,
}

struct Inner {
    secret: Vec<u8>,
    fail_first: usize,
    delay: Duration,
    seen: AtomicUsize,
    received: Mutex<Vec<Received>>,
}

/// A running receiver; it stops when dropped.
pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Listens on 127.0.0.1 (a free port) on the current runtime; fails (500) the first `fail_first` requests
    /// and waits `delay` before answering each.
    pub async fn start(
        secret: &[u8],
        fail_first: usize,
        delay: Duration,
    ) -> std::io::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let inner = Arc::new(Inner {
            secret: secret.to_vec(),
            fail_first,
            delay,
            seen: AtomicUsize::new(0),
            received: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "the webhook receiver stopped");
            }
        });
        Ok(Receiver { url, inner, task })
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.inner
            .received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let signature = header(crate::alerts::sign::SIGNATURE_HEADER);
    let now = chrono::Utc::now().timestamp();
    let signed = crate::alerts::sign::verify(&inner.secret, &signature, &body, now, 300);
    let acknowledged = inner.seen.fetch_add(1, Ordering::SeqCst) >= inner.fail_first;
    inner
        .received
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Received {
            alert_id: header(crate::alerts::sign::ALERT_ID_HEADER),
            signature,
            body: body.to_vec(),
            signed,
            acknowledged,
        });
    tokio::time::sleep(inner.delay).await;
    if acknowledged {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}
