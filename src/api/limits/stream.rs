//! A guarded connection's stream, between the socket (or TLS) and hyper: it holds each request head back until it
//! is whole and sound, hands hyper a stand-in request instead of a head that is refused or late, closes a
//! connection on which no request begins, and holds one of the server's connection places until it is dropped.

use super::wire::{Step, Wire};
use super::Limits;
use axum::http::StatusCode;
use bytes::{Buf, Bytes, BytesMut};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

/// How much is read from the socket at a time.
const READ_CHUNK: usize = 8 * 1024;
/// After a refusal, how long (and how much) the caller's further bytes are read and dropped before the
/// connection closes, so that closing with unread bytes sends no reset that could destroy the answer.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;
/// A late head is answered this much before hyper's own idle limit would close the connection silently.
const MARGIN: Duration = Duration::from_millis(50);

/// What a deadline ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deadline {
    /// A head that began did not arrive whole in time: answered 408.
    Late,
    /// No request began on a new connection: closed.
    Idle,
}

/// A connection's stream, guarded.
pub struct Guarded<S> {
    inner: S,
    limits: Limits,
    wire: Wire,
    /// Bytes read from `inner`, not yet handed to hyper.
    held: BytesMut,
    eof: bool,
    accepted: Instant,
    /// When the stream reached the current head (the connection's start, or the end of the last body).
    head_since: Instant,
    /// When the current head's first byte arrived.
    first_byte: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
    stand_in: Option<Bytes>,
    /// A stand-in was made: nothing more from the caller reaches hyper.
    refused: bool,
    discarded: usize,
    shut: bool,
    _place: OwnedSemaphorePermit,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, limits: Limits, place: OwnedSemaphorePermit) -> Self {
        let now = Instant::now();
        Self {
            inner,
            limits,
            wire: Wire::default(),
            held: BytesMut::new(),
            eof: false,
            accepted: now,
            head_since: now,
            first_byte: None,
            timer: Box::pin(tokio::time::sleep_until(now + limits.idle_timeout)),
            timer_at: None,
            stand_in: None,
            refused: false,
            discarded: 0,
            shut: false,
            _place: place,
        }
    }

    /// The deadline the stream is under now, if any. Between requests on a kept-alive connection there is none
    /// here: hyper's own header timeout (set to the idle limit) closes it, since only hyper knows when the last
    /// answer was written.
    fn deadline(&self) -> Option<(Instant, Deadline)> {
        if !self.wire.in_head() {
            return None;
        }
        match self.first_byte {
            Some(first) => {
                let idle = self.head_since + self.limits.idle_timeout.saturating_sub(MARGIN);
                Some((
                    (first + self.limits.header_timeout).min(idle),
                    Deadline::Late,
                ))
            }
            None if self.wire.heads() == 0 => {
                Some((self.accepted + self.limits.idle_timeout, Deadline::Idle))
            }
            None => None,
        }
    }

    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Option<Deadline> {
        let (at, what) = self.deadline()?;
        if self.timer_at != Some(at) {
            self.timer.as_mut().reset(at);
            self.timer_at = Some(at);
        }
        self.timer.as_mut().poll(cx).is_ready().then_some(what)
    }

    fn refuse(&mut self, refusal: &super::head::Refusal) {
        self.stand_in = Some(Bytes::from(super::stand_in(refusal)));
        self.refused = true;
        self.held.clear();
    }

    /// The head now arriving is late: answered 408.
    fn late(&mut self) {
        let message = format!(
            "the request line and header fields did not arrive within {}",
            humantime::format_duration(self.limits.header_timeout)
        );
        match self.wire.refusal(StatusCode::REQUEST_TIMEOUT, message) {
            Some(refusal) => self.refuse(&refusal),
            None => self.wire.pass(),
        }
    }
}

impl<S: AsyncRead + Unpin> Guarded<S> {
    /// Reads and drops what the caller still sends (up to [`LINGER_BYTES`]); ready once it closed or the cap
    /// is reached.
    fn poll_discard(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut chunk = [0u8; READ_CHUNK];
        while !self.eof && self.discarded < LINGER_BYTES {
            let mut buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    self.discarded += buf.filled().len()
                }
                Poll::Ready(_) => self.eof = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if let Some(stand_in) = &mut this.stand_in {
                let n = stand_in.len().min(out.remaining());
                out.put_slice(&stand_in[..n]);
                stand_in.advance(n);
                if stand_in.is_empty() {
                    this.stand_in = None;
                }
                return Poll::Ready(Ok(()));
            }
            if this.refused {
                // hyper answers the stand-in and closes; it must not see the caller's end (it would abort the
                // answer), so this never becomes ready.
                let _ = this.poll_discard(cx);
                return Poll::Pending;
            }
            if out.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if !this.held.is_empty() || this.eof {
                match this.wire.step(&this.held, this.eof) {
                    Step::Release(n) => {
                        let bytes = this.held.split_to(n.min(out.remaining()));
                        out.put_slice(&bytes);
                        this.wire.released(&bytes);
                        if this.wire.in_head() {
                            // The body ended: the next head begins (perhaps already partly here).
                            let now = Instant::now();
                            this.head_since = now;
                            this.first_byte = (!this.held.is_empty()).then_some(now);
                        }
                        return Poll::Ready(Ok(()));
                    }
                    Step::Refuse(refusal) => {
                        this.refuse(&refusal);
                        continue;
                    }
                    Step::Wait => {}
                }
            }
            match this.poll_deadline(cx) {
                Some(Deadline::Late) => {
                    this.late();
                    continue;
                }
                Some(Deadline::Idle) => {
                    // Nothing was handed up yet, so hyper is not answering anything: an end is a clean close.
                    this.eof = true;
                    this.wire.pass();
                    continue;
                }
                None => {}
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut buf = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut buf))?;
            if buf.filled().is_empty() {
                this.eof = true;
            } else {
                if this.wire.in_head() && this.held.is_empty() {
                    this.first_byte = Some(Instant::now());
                }
                this.held.extend_from_slice(buf.filled());
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.shut {
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.shut = true;
            if this.refused {
                let until = Instant::now() + LINGER;
                this.timer.as_mut().reset(until);
                this.timer_at = Some(until);
            }
        }
        if this.refused && this.timer.as_mut().poll(cx).is_pending() {
            ready!(this.poll_discard(cx));
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
