//! Accepting a connection under the cap: each holds one of `max_connections` places until it closes; one beyond
//! them is answered 503 `too_many_connections` and closed (over TLS it is closed before any handshake).

use super::stream::Guarded;
use super::Limits;
use axum_server::accept::Accept;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;

/// How long a refused connection is given to take its answer (and close) before it is dropped.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// At most one warning about refused connections in this long.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// An acceptor (axum-server's) that guards the connections `inner` accepts: the cap, and [`Guarded`] streams.
#[derive(Clone)]
pub struct Guard<A> {
    inner: A,
    limits: Limits,
    places: Arc<Semaphore>,
    /// Whether refusals can be answered in plain HTTP (not over TLS).
    plain: bool,
    warned: Arc<Mutex<Option<std::time::Instant>>>,
}

impl<A> Guard<A> {
    /// Guards the connections `inner` accepts; `plain`: they speak HTTP as accepted (no TLS).
    pub fn new(inner: A, limits: Limits, plain: bool) -> Self {
        Self {
            inner,
            limits,
            places: Arc::new(Semaphore::new(limits.max_connections)),
            plain,
            warned: Arc::default(),
        }
    }

    fn warn_full(&self) {
        let Ok(mut warned) = self.warned.lock() else {
            return;
        };
        if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            *warned = Some(std::time::Instant::now());
            tracing::warn!(
                limit = self.limits.max_connections,
                "refusing connections: as many are open as --max-connections allows"
            );
        }
    }
}

impl<A, I, S> Accept<I, S> for Guard<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Guarded<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let Ok(place) = self.places.clone().try_acquire_owned() else {
            self.warn_full();
            let (plain, limit) = (self.plain, self.limits.max_connections);
            return Box::pin(async move {
                if plain {
                    let _ = tokio::time::timeout(REFUSAL_LINGER, answer_full(stream, limit)).await;
                }
                Err(io::Error::other(format!(
                    "{limit} connections are open, the limit"
                )))
            });
        };
        let accepted = self.inner.accept(stream, service);
        let limits = self.limits;
        Box::pin(async move {
            let (stream, service) = accepted.await?;
            Ok((Guarded::new(stream, limits, place), service))
        })
    }
}

/// Answers a connection beyond the cap with a 503 in the API's error shape, then reads (and drops) what the caller
/// sent until it closes, so that closing sends no reset that could destroy the answer.
async fn answer_full<I: AsyncRead + AsyncWrite + Unpin>(
    mut stream: I,
    limit: usize,
) -> io::Result<()> {
    let body = serde_json::json!({ "error": {
        "code": "too_many_connections",
        "message": format!("the server has {limit} connections open, its limit; retry shortly"),
    }})
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nretry-after: 1\r\nconnection: close\r\nx-request-id: {}\r\n\r\n{body}",
        body.len(),
        uuid::Uuid::now_v7()
    );
    let mut written = 0;
    while written < answer.len() {
        let n = poll_fn(|cx| Pin::new(&mut stream).poll_write(cx, &answer.as_bytes()[written..]))
            .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        written += n;
    }
    poll_fn(|cx| Pin::new(&mut stream).poll_shutdown(cx)).await?;
    let mut chunk = [0u8; 4096];
    let mut drained = 0;
    while drained < 64 * 1024 {
        let mut buf = ReadBuf::new(&mut chunk);
        poll_fn(|cx| Pin::new(&mut stream).poll_read(cx, &mut buf)).await?;
        if buf.filled().is_empty() {
            break;
        }
        drained += buf.filled().len();
    }
    Ok(())
}
