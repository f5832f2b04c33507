//! One request head, scanned line by line as it arrives, with httparse's grammar for requests and hyper's rules
//! for the framing headers: whole (and how its body is framed), not yet whole, or refused (with the status and
//! a message naming the problem: a target over 8 KiB, a head over 32 KiB or 100 fields, a byte httparse refuses).

use axum::http::StatusCode;

/// Longest request target (path and query) accepted: a longer one is answered 414.
pub const MAX_TARGET_BYTES: usize = 8 * 1024;
/// Largest request head (request line and header fields) accepted: a larger one is answered 431.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// Most header fields in one request (hyper's own limit): more are answered 431.
pub const MAX_HEADERS: usize = 100;

/// A head answered before it reaches the router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
    /// The method and target of the request line, when it arrived whole and sound.
    pub line: Option<(String, String)>,
    /// The caller's `X-Request-Id`, when its field arrived whole and well-formed.
    pub request_id: Option<String>,
}

/// Where hyper's chunked decoder is (its states, with the size being read or the data left).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Chunked {
    Start,
    Size(u64),
    SizeLws(u64),
    Extension(u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    Trailer,
    TrailerLf,
    EndCr,
    EndLf,
}

/// How a head's body is framed, and what follows the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Next {
    Head,
    Length(u64),
    Chunked(Chunked),
    /// Something this does not follow (an upgrade, CONNECT): hand everything up from here on.
    Pass,
}

/// The result of scanning the head held so far.
pub(super) enum Scanned {
    Whole { len: usize, next: Next },
    Partial,
    Refuse(Refusal),
}

/// A head scanned line by line as it arrives (each line once).
#[derive(Debug, Default)]
pub(super) struct HeadScan {
    /// Where the next line starts.
    at: usize,
    line: Option<(String, String)>,
    http11: bool,
    fields: usize,
    request_id: Option<String>,
    transfer_encoding: Option<bool>,
    content_length: Option<u64>,
    bad_length: bool,
    opaque: bool,
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_target(b: u8) -> bool {
    (b'!'..=0x7e).contains(&b) || b >= 0x80
}

fn is_value(b: u8) -> bool {
    b == b'\t' || (b' '..=0x7e).contains(&b) || b >= 0x80
}

impl HeadScan {
    /// A refusal of this head, naming what arrived of it.
    pub(super) fn refusal(&self, status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
            line: self.line.clone(),
            request_id: self.request_id.clone(),
        }
    }

    fn refuse(&self, status: StatusCode, message: impl Into<String>) -> Scanned {
        Scanned::Refuse(self.refusal(status, message))
    }

    pub(super) fn scan(&mut self, held: &[u8]) -> Scanned {
        loop {
            let rest = &held[self.at..];
            let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
                if self.line.is_none() {
                    // The request line so far: a target already too long is refused without waiting for its end.
                    let method = rest.iter().take_while(|&&b| is_token(b)).count();
                    if rest.get(method) == Some(&b' ') {
                        let target = rest[method + 1..]
                            .iter()
                            .take_while(|&&b| is_target(b))
                            .count();
                        if target > MAX_TARGET_BYTES {
                            return self.too_long_target();
                        }
                    }
                }
                if held.len() > MAX_HEAD_BYTES {
                    return self.too_large();
                }
                return Scanned::Partial;
            };
            let end = self.at + newline + 1;
            let mut line = &rest[..newline];
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            self.at = end;
            if self.line.is_none() {
                if line.is_empty() {
                    continue; // empty lines before the request line are skipped, as httparse does
                }
                if let Err(refused) = self.request_line(line) {
                    return refused;
                }
            } else if line.is_empty() {
                if end > MAX_HEAD_BYTES {
                    return self.too_large();
                }
                return self.whole(end);
            } else {
                self.fields += 1;
                if self.fields > MAX_HEADERS {
                    return self.refuse(
                        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        format!("the request has more than {MAX_HEADERS} header fields"),
                    );
                }
                if let Err(refused) = self.field(line) {
                    return refused;
                }
            }
            if end > MAX_HEAD_BYTES {
                return self.too_large();
            }
        }
    }

    fn too_long_target(&self) -> Scanned {
        self.refuse(
            StatusCode::URI_TOO_LONG,
            format!("the request target is longer than {MAX_TARGET_BYTES} bytes"),
        )
    }

    fn too_large(&self) -> Scanned {
        self.refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request line and header fields are larger than {MAX_HEAD_BYTES} bytes"),
        )
    }

    fn request_line(&mut self, line: &[u8]) -> Result<(), Scanned> {
        let malformed = || self.refuse(StatusCode::BAD_REQUEST, "malformed request line");
        let method = line.iter().take_while(|&&b| is_token(b)).count();
        if method == 0 || line.get(method) != Some(&b' ') {
            return Err(malformed());
        }
        let rest = &line[method + 1..];
        let target = rest.iter().take_while(|&&b| is_target(b)).count();
        if target > MAX_TARGET_BYTES {
            return Err(self.too_long_target());
        }
        if target == 0 || rest.get(target) != Some(&b' ') {
            return Err(malformed());
        }
        self.http11 = match &rest[target + 1..] {
            b"HTTP/1.1" => true,
            b"HTTP/1.0" => false,
            _ => return Err(malformed()),
        };
        if axum::http::Uri::try_from(&rest[..target]).is_err() {
            return Err(self.refuse(
                StatusCode::BAD_REQUEST,
                "the request target is not a valid URI",
            ));
        }
        let method = String::from_utf8_lossy(&line[..method]).into_owned();
        // CONNECT asks for a tunnel, which hyper handles: follow no further.
        self.opaque |= method == "CONNECT";
        self.line = Some((
            method,
            String::from_utf8_lossy(&rest[..target]).into_owned(),
        ));
        Ok(())
    }

    fn field(&mut self, line: &[u8]) -> Result<(), Scanned> {
        let name_len = line.iter().take_while(|&&b| is_token(b)).count();
        if name_len == 0 || line.get(name_len) != Some(&b':') {
            return Err(self.refuse(StatusCode::BAD_REQUEST, "malformed header field line"));
        }
        let name = String::from_utf8_lossy(&line[..name_len]).to_ascii_lowercase();
        let raw = &line[name_len + 1..];
        if let Some(&bad) = raw.iter().find(|&&b| !is_value(b)) {
            return Err(self.refuse(
                StatusCode::BAD_REQUEST,
                format!("header field {name}: control character 0x{bad:02x} in its value"),
            ));
        }
        let value = raw.trim_ascii();
        match name.as_str() {
            "x-request-id" if self.request_id.is_none() => {
                self.request_id = std::str::from_utf8(value)
                    .ok()
                    .filter(|v| {
                        !v.is_empty()
                            && v.len() <= 128
                            && v.chars()
                                .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c))
                    })
                    .map(str::to_string);
            }
            "transfer-encoding" => {
                if !self.http11 {
                    return Err(self.refuse(
                        StatusCode::BAD_REQUEST,
                        "Transfer-Encoding in an HTTP/1.0 request",
                    ));
                }
                let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
                self.transfer_encoding =
                    Some(value.is_ascii() && last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
            // After Transfer-Encoding, hyper ignores Content-Length.
            "content-length" if self.transfer_encoding.is_none() => {
                let parsed = std::str::from_utf8(value)
                    .ok()
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<u64>().ok());
                match (parsed, self.content_length) {
                    (Some(n), None) => self.content_length = Some(n),
                    (Some(n), Some(before)) if n == before => {}
                    _ => self.bad_length = true,
                }
            }
            "upgrade" => self.opaque |= self.http11,
            _ => {}
        }
        Ok(())
    }

    /// The head ends at `len`: how its body is framed (hyper's rules for requests).
    fn whole(&mut self, len: usize) -> Scanned {
        if self.bad_length {
            return self.refuse(StatusCode::BAD_REQUEST, "invalid Content-Length");
        }
        let next = match self.transfer_encoding {
            Some(true) => Next::Chunked(Chunked::Start),
            Some(false) => {
                return self.refuse(
                    StatusCode::BAD_REQUEST,
                    "Transfer-Encoding whose last coding is not chunked",
                )
            }
            None => match self.content_length {
                Some(0) | None => Next::Head,
                Some(n) => Next::Length(n),
            },
        };
        let next = if self.opaque { Next::Pass } else { next };
        Scanned::Whole { len, next }
    }
}
