//! The framing of an HTTP/1 request stream, followed as its bytes arrive, so that each request's head can be held
//! back until it is whole and checked (target length, head size, field count, bytes) before hyper parses it. The
//! grammar is httparse's and hyper's for requests, so both agree on where every head and body ends; what this does
//! not follow exactly (HTTP/2, an upgrade, CONNECT, a body framing it cannot follow) turns the rest of the
//! connection into a pass-through, where hyper's own rules and limits apply.

use super::head::{Chunked, HeadScan, Next, Refusal, Scanned};

/// The start of the HTTP/2 connection preface (prior knowledge, or after ALPN `h2`).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// What to do with the bytes held so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Hand this many bytes from the front to hyper (a whole head, body bytes, or anything in pass-through).
    Release(usize),
    /// The head is not whole yet: read more.
    Wait,
    /// The head is refused.
    Refuse(Refusal),
}

#[derive(Debug)]
enum Phase {
    /// At (or inside) a request head, not yet released.
    Head(HeadScan),
    /// A whole head being handed up, then `next`.
    Releasing {
        left: usize,
        next: Next,
    },
    Length(u64),
    Chunked(Chunked),
    Pass,
}

impl From<Next> for Phase {
    fn from(next: Next) -> Self {
        match next {
            Next::Head => Phase::Head(HeadScan::default()),
            Next::Length(left) => Phase::Length(left),
            Next::Chunked(state) => Phase::Chunked(state),
            Next::Pass => Phase::Pass,
        }
    }
}

/// The state of one connection's request stream.
#[derive(Debug)]
pub struct Wire {
    phase: Phase,
    heads: u64,
}

impl Default for Wire {
    fn default() -> Self {
        Self {
            phase: Phase::Head(HeadScan::default()),
            heads: 0,
        }
    }
}

fn clamp(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl Wire {
    /// Whether the stream is at a request head that has not been handed up (empty or partly arrived).
    pub fn in_head(&self) -> bool {
        matches!(self.phase, Phase::Head(_))
    }

    /// How many heads were handed up so far.
    pub fn heads(&self) -> u64 {
        self.heads
    }

    /// A refusal of the head now arriving (`None` between heads), naming what arrived of it.
    pub fn refusal(&self, status: axum::http::StatusCode, message: String) -> Option<Refusal> {
        match &self.phase {
            Phase::Head(scan) => Some(scan.refusal(status, message)),
            _ => None,
        }
    }

    /// Stops following the framing: everything is handed up as it comes.
    pub fn pass(&mut self) {
        self.phase = Phase::Pass;
    }

    /// What to do with `held`, the bytes read and not yet handed up (`eof`: no more will come).
    pub fn step(&mut self, held: &[u8], eof: bool) -> Step {
        match &mut self.phase {
            Phase::Head(scan) => {
                let preface = held.len().min(H2_PREFACE.len());
                if preface > 0 && held[..preface] == H2_PREFACE[..preface] {
                    if preface < H2_PREFACE.len() && !eof {
                        return Step::Wait;
                    }
                    self.phase = Phase::Pass;
                    return Step::Release(held.len());
                }
                match scan.scan(held) {
                    Scanned::Whole { len, next } => {
                        self.heads += 1;
                        self.phase = Phase::Releasing { left: len, next };
                        Step::Release(len)
                    }
                    Scanned::Refuse(refusal) => Step::Refuse(refusal),
                    Scanned::Partial if eof => {
                        // The caller hung up mid-head: hyper sees what came and closes.
                        self.phase = Phase::Pass;
                        Step::Release(held.len())
                    }
                    Scanned::Partial => Step::Wait,
                }
            }
            Phase::Releasing { left, .. } => Step::Release((*left).min(held.len())),
            Phase::Length(left) => Step::Release(clamp(*left).min(held.len())),
            Phase::Chunked(state) => {
                let mut state = *state;
                match chunk_advance(&mut state, held) {
                    (n, Outcome::End) => Step::Release(n),
                    // Past a byte hyper refuses, the rest is handed up (and the connection ends there).
                    _ => Step::Release(held.len()),
                }
            }
            Phase::Pass => Step::Release(held.len()),
        }
    }

    /// Records that `bytes` (as released by [`Wire::step`]) were handed up.
    pub fn released(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            match &mut self.phase {
                Phase::Head(_) | Phase::Pass => return,
                Phase::Releasing { left, next } => {
                    let n = (*left).min(rest.len());
                    *left -= n;
                    rest = &rest[n..];
                    if *left == 0 {
                        self.phase = Phase::from(*next);
                    }
                }
                Phase::Length(left) => {
                    let n = clamp(*left).min(rest.len());
                    *left -= n as u64;
                    rest = &rest[n..];
                    if *left == 0 {
                        self.phase = Phase::from(Next::Head);
                    }
                }
                Phase::Chunked(state) => match chunk_advance(state, rest) {
                    (n, Outcome::End) => {
                        rest = &rest[n..];
                        self.phase = Phase::from(Next::Head);
                    }
                    (_, Outcome::Invalid) => self.phase = Phase::Pass,
                    (_, Outcome::More) => return,
                },
            }
        }
    }
}

enum Outcome {
    More,
    End,
    Invalid,
}

/// Follows a chunked body over `bytes`: how many belong to it (up to its end) and whether it ended there, needs
/// more, or holds a byte hyper's decoder refuses.
fn chunk_advance(state: &mut Chunked, bytes: &[u8]) -> (usize, Outcome) {
    let mut at = 0;
    while at < bytes.len() {
        if let Chunked::Data(left) = *state {
            let n = clamp(left).min(bytes.len() - at);
            at += n;
            let left = left - n as u64;
            *state = if left == 0 {
                Chunked::DataCr
            } else {
                Chunked::Data(left)
            };
            continue;
        }
        match chunk_step(*state, bytes[at]) {
            Some(Some(next)) => *state = next,
            Some(None) => return (at + 1, Outcome::End),
            None => return (at, Outcome::Invalid),
        }
        at += 1;
    }
    (at, Outcome::More)
}

/// One byte of a chunked body as hyper's decoder reads it: the next state, `Some(None)` at the body's end, or
/// `None` for a byte it refuses.
fn chunk_step(state: Chunked, byte: u8) -> Option<Option<Chunked>> {
    use Chunked::*;
    let digit = (byte as char).to_digit(16).map(u64::from);
    let grow = |size: u64, d: u64| size.checked_mul(16).and_then(|s| s.checked_add(d));
    let next = match (state, byte, digit) {
        (Start, _, Some(d)) => Size(d),
        (Size(size), _, Some(d)) => Size(grow(size, d)?),
        (Size(size) | SizeLws(size), b'\t' | b' ', _) => SizeLws(size),
        (Size(size) | SizeLws(size), b';', _) => Extension(size),
        (Size(size) | SizeLws(size) | Extension(size), b'\r', _) => SizeLf(size),
        (Extension(_), b'\n', _) => return None,
        (Extension(size), _, _) => Extension(size),
        (SizeLf(0), b'\n', _) => EndCr,
        (SizeLf(size), b'\n', _) => Data(size),
        (DataCr, b'\r', _) => DataLf,
        (DataLf, b'\n', _) => Start,
        (Trailer, b'\r', _) => TrailerLf,
        (Trailer, _, _) => Trailer,
        (TrailerLf, b'\n', _) => EndCr,
        (EndCr, b'\r', _) => EndLf,
        (EndCr, _, _) => Trailer,
        (EndLf, b'\n', _) => return Some(None),
        _ => return None,
    };
    Some(Some(next))
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
