//! The attributes incident queries filter on that no other index covers — client IP and request id — and the
//! 16-byte digests under which the attribute index files each event, so that such a filter reads only matching
//! events. (An actor key is in the key index, lifecycle types in the lifecycle index; indexing the type and actor of
//! every `key.used` as well cost a quarter of the write throughput for filters that match most of the log.)

use super::{Event, EventData};
use sha2::{Digest, Sha256};

/// An attribute the events index is kept for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attribute {
    Ip,
    RequestId,
}

impl Attribute {
    fn tag(self) -> &'static str {
        match self {
            Attribute::Ip => "ip",
            Attribute::RequestId => "request_id",
        }
    }
}

/// The index digest of `attribute = value`: the first 16 bytes of
/// SHA-256("keyledger/attribute/v1\n" ‖ attribute ‖ "\n" ‖ value). Fixed width, so any value (even one with
/// separators in it) makes an unambiguous, prefix-free entry.
pub fn attribute_digest(attribute: Attribute, value: &str) -> [u8; 16] {
    let mut hasher = Sha256::new();
    hasher.update(b"keyledger/attribute/v1\n");
    hasher.update(attribute.tag().as_bytes());
    hasher.update(b"\n");
    hasher.update(value.as_bytes());
    let digest = hasher.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

impl Event {
    /// The attribute digests this event is indexed under: its request id when it has one, and the client IP of a
    /// `key.used`.
    pub fn attribute_digests(&self) -> Vec<[u8; 16]> {
        let mut digests = Vec::with_capacity(2);
        if let Some(request_id) = &self.request_id {
            digests.push(attribute_digest(Attribute::RequestId, request_id));
        }
        // A committed address is not filed under its plain digest (a dictionary would reverse it, and erasing the
        // value must not leave it findable): the index holds only what the body shows.
        if let EventData::KeyUsed(used) = &self.data {
            if let Some(ip) = used.ip.as_ref().filter(|_| used.committed.is_none()) {
                digests.push(attribute_digest(Attribute::Ip, ip));
            }
        }
        digests
    }
}
