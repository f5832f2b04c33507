//! The stored form of a projection snapshot (FORMAT.md §4): a small JSON header naming the format, the event and
//! the signature, and a body that is zstd-compressed MessagePack (`keyledger-snapshot/2`). Bodies of the JSON
//! format before it (`keyledger-snapshot/1`) are read only for an archived prefix's base state, which no replay
//! can rebuild; their anomaly windows are not carried over (their findings are in the log).

use crate::error::{LedgerError, LedgerResult};
use crate::projection::Projections;
use crate::time::LedgerTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub(super) const FORMAT: &str = "keyledger-snapshot/2";
pub(super) const FORMAT_V1: &str = "keyledger-snapshot/1";
/// zstd level of the body: the snapshot is written in the background, so a smaller file is worth a little time.
const LEVEL: i32 = 3;

#[derive(Serialize, Deserialize)]
pub(super) struct Header {
    pub format: String,
    pub seq: u64,
    pub hash: String,
    pub signer: String,
    pub signature: String,
}

#[derive(Serialize, Deserialize)]
pub(super) struct Body {
    pub seq: u64,
    pub hash: String,
    pub time: LedgerTime,
    pub origin: Option<String>,
    /// `(public key hex, first seq)` of every signer up to `seq + 1`.
    pub signers: Vec<(String, u64)>,
    /// Root of the Merkle tree over the first `seq` events.
    pub frontier_root: String,
    /// The newest stored checkpoint covering at most `seq` events (its signed note).
    pub latest_checkpoint: Option<String>,
    pub projections: Projections,
}

/// A `keyledger-snapshot/1` body: the same fields, JSON, with projections of that version.
#[derive(Deserialize)]
struct BodyV1 {
    seq: u64,
    hash: String,
    time: LedgerTime,
    origin: Option<String>,
    signers: Vec<(String, u64)>,
    frontier_root: String,
    latest_checkpoint: Option<String>,
    projections: serde_json::Value,
}

/// The digest a snapshot's signature covers: SHA-256(domain tag of its format ‖ stored body bytes).
pub(super) fn digest(format: &str, body: &[u8]) -> [u8; 32] {
    let domain: &[u8] = if format == FORMAT_V1 {
        b"keyledger/snapshot/v1\n"
    } else {
        b"keyledger/snapshot/v2\n"
    };
    let mut hasher = Sha256::new();
    hasher.update(domain);
    hasher.update(body);
    hasher.finalize().into()
}

/// The stored bytes of `body`.
pub(super) fn encode_body(body: &Body) -> LedgerResult<Vec<u8>> {
    let packed = rmp_serde::to_vec_named(body).map_err(|e| LedgerError::Config(e.to_string()))?;
    zstd::bulk::compress(&packed, LEVEL)
        .map_err(|e| LedgerError::io("compressing the projection snapshot", e))
}

/// The body stored as `format`, or why it cannot be read.
pub(super) fn decode_body(format: &str, bytes: &[u8]) -> Result<Body, String> {
    match format {
        FORMAT => {
            let packed = zstd::stream::decode_all(bytes)
                .map_err(|e| format!("the snapshot body does not decompress: {e}"))?;
            rmp_serde::from_slice(&packed)
                .map_err(|e| format!("the snapshot body is unreadable: {e}"))
        }
        FORMAT_V1 => {
            let old: BodyV1 = serde_json::from_slice(bytes)
                .map_err(|e| format!("the snapshot body is unreadable: {e}"))?;
            let projections = Projections::from_v1_json(old.projections)
                .map_err(|e| format!("the snapshot's projections are unreadable: {e}"))?;
            Ok(Body {
                seq: old.seq,
                hash: old.hash,
                time: old.time,
                origin: old.origin,
                signers: old.signers,
                frontier_root: old.frontier_root,
                latest_checkpoint: old.latest_checkpoint,
                projections,
            })
        }
        other => Err(format!("snapshot format {other} is not {FORMAT}")),
    }
}
