//! The stored record: an event's canonical body with its chain hash, signature and signer, and its byte layout.

use crate::chain::{Hash32, SignerId};
use crate::time::LedgerTime;

/// Layout version of an encoded record (first byte).
const RECORD_FORMAT: u8 = 1;
const HEADER_LEN: usize = 1 + 8 + 32 + 64 + 8;

/// One log entry as stored: `seq` is the store key; the rest is the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    pub seq: u64,
    /// The event's ledger time, copied from the body so that time seeks need not parse JSON.
    pub time: LedgerTime,
    pub hash: Hash32,
    pub signature: [u8; 64],
    pub signer: SignerId,
    /// The canonical JSON body, byte for byte as hashed.
    pub body: Vec<u8>,
}

/// Why stored bytes are not a record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("record at seq {seq} is malformed: {what}")]
pub struct RecordDecodeError {
    pub seq: u64,
    pub what: &'static str,
}

impl StoredRecord {
    /// `format(1) ‖ time(i64 BE) ‖ hash(32) ‖ signature(64) ‖ signer id(8) ‖ body`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.body.len());
        out.push(RECORD_FORMAT);
        out.extend_from_slice(&self.time.as_micros().to_be_bytes());
        out.extend_from_slice(&self.hash);
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(&self.signer.0);
        out.extend_from_slice(&self.body);
        out
    }

    pub fn decode(seq: u64, bytes: &[u8]) -> Result<Self, RecordDecodeError> {
        let err = |what| RecordDecodeError { seq, what };
        if bytes.len() < HEADER_LEN {
            return Err(err("shorter than its header"));
        }
        if bytes[0] != RECORD_FORMAT {
            return Err(err("unknown record format"));
        }
        let mut time = [0u8; 8];
        time.copy_from_slice(&bytes[1..9]);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes[9..41]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&bytes[41..105]);
        let mut signer = [0u8; 8];
        signer.copy_from_slice(&bytes[105..113]);
        Ok(StoredRecord {
            seq,
            time: LedgerTime::from_micros(i64::from_be_bytes(time)),
            hash,
            signature,
            signer: SignerId(signer),
            body: bytes[HEADER_LEN..].to_vec(),
        })
    }

    /// Reads only the time from an encoded record (for time seeks).
    pub fn decode_time(bytes: &[u8]) -> Option<LedgerTime> {
        let raw: [u8; 8] = bytes.get(1..9)?.try_into().ok()?;
        Some(LedgerTime::from_micros(i64::from_be_bytes(raw)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_short_or_unknown() {
        let record = StoredRecord {
            seq: 9,
            time: LedgerTime::from_micros(-5),
            hash: [3; 32],
            signature: [4; 64],
            signer: SignerId([5; 8]),
            body: b"{\"v\":1}".to_vec(),
        };
        let bytes = record.encode();
        assert_eq!(StoredRecord::decode(9, &bytes).unwrap(), record);
        assert_eq!(StoredRecord::decode_time(&bytes), Some(record.time));
        assert!(StoredRecord::decode(9, &bytes[..50]).is_err());
        let mut other = bytes.clone();
        other[0] = 9;
        assert!(StoredRecord::decode(9, &other).is_err());
    }
}
