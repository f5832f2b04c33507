//! The stored form of a projection snapshot (FORMAT.md §4): a small JSON header naming the format, the event and
//! the signature, and a body (`keyledger-snapshot/3`) of length-prefixed sections — the ledger's facts, the key
//! state, usage, anomaly windows and pending actions — each zstd-compressed MessagePack, so that a server decodes
//! the key state on one thread while the rest decodes on another. Format 2 (one compressed MessagePack document)
//! is still read. Bodies of the JSON format before it (`keyledger-snapshot/1`) are read only for an archived
//! prefix's base state, which no replay can rebuild; their anomaly windows are not carried over (their findings are
//! in the log).

use crate::error::{LedgerError, LedgerResult};
use crate::projection::anomaly::AnomalyState;
use crate::projection::usage::UsageState;
use crate::projection::{KeyState, PendingAction, Projections};
use crate::time::LedgerTime;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub(super) const FORMAT: &str = "keyledger-snapshot/3";
pub(super) const FORMAT_V2: &str = "keyledger-snapshot/2";
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

/// A format-3 body's first section: the body's fields but the projections' parts.
#[derive(Serialize, Deserialize)]
struct Facts {
    seq: u64,
    hash: String,
    time: LedgerTime,
    origin: Option<String>,
    signers: Vec<(String, u64)>,
    frontier_root: String,
    latest_checkpoint: Option<String>,
    applied_seq: u64,
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
    let domain: &[u8] = match format {
        FORMAT_V1 => b"keyledger/snapshot/v1\n",
        FORMAT_V2 => b"keyledger/snapshot/v2\n",
        _ => b"keyledger/snapshot/v3\n",
    };
    let mut hasher = Sha256::new();
    hasher.update(domain);
    hasher.update(body);
    hasher.finalize().into()
}

fn section<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> LedgerResult<()> {
    let packed = rmp_serde::to_vec_named(value).map_err(|e| LedgerError::Config(e.to_string()))?;
    let compressed = zstd::bulk::compress(&packed, LEVEL)
        .map_err(|e| LedgerError::io("compressing the projection snapshot", e))?;
    let length = u32::try_from(compressed.len())
        .map_err(|_| LedgerError::Config("a snapshot section is over 4 GiB".into()))?;
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&compressed);
    Ok(())
}

/// The stored bytes of `body`: five sections, each a u32 BE length and zstd-compressed MessagePack.
pub(super) fn encode_body(body: &Body) -> LedgerResult<Vec<u8>> {
    let facts = Facts {
        seq: body.seq,
        hash: body.hash.clone(),
        time: body.time,
        origin: body.origin.clone(),
        signers: body.signers.clone(),
        frontier_root: body.frontier_root.clone(),
        latest_checkpoint: body.latest_checkpoint.clone(),
        applied_seq: body.projections.applied_seq,
    };
    let mut out = Vec::new();
    section(&mut out, &facts)?;
    section(&mut out, &body.projections.keys)?;
    section(&mut out, &body.projections.usage)?;
    section(&mut out, &body.projections.anomalies)?;
    section(&mut out, body.projections.pending_actions())?;
    Ok(out)
}

/// The five sections of a format-3 body.
fn split_sections(mut bytes: &[u8]) -> Result<[&[u8]; 5], String> {
    let mut sections = [&bytes[..0]; 5];
    for slot in &mut sections {
        let Some((length, rest)) = bytes.split_first_chunk::<4>() else {
            return Err("the snapshot body is cut short".into());
        };
        let length = u32::from_be_bytes(*length) as usize;
        let Some(section) = rest.get(..length) else {
            return Err("the snapshot body is cut short".into());
        };
        *slot = section;
        bytes = &rest[length..];
    }
    if !bytes.is_empty() {
        return Err("the snapshot body has bytes after its sections".into());
    }
    Ok(sections)
}

fn decode_section<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, String> {
    let packed = zstd::stream::decode_all(bytes)
        .map_err(|e| format!("the snapshot's {what} do not decompress: {e}"))?;
    rmp_serde::from_slice(&packed).map_err(|e| format!("the snapshot's {what} are unreadable: {e}"))
}

fn decode_v3(bytes: &[u8]) -> Result<Body, String> {
    let [facts, keys, usage, anomalies, pending] = split_sections(bytes)?;
    // The key state is most of a snapshot: it decodes on its own thread beside the rest.
    let (keys, rest) = std::thread::scope(|scope| {
        let keys = scope.spawn(|| decode_section::<KeyState>(keys, "keys"));
        let rest = (|| {
            Ok::<_, String>((
                decode_section::<Facts>(facts, "facts")?,
                decode_section::<UsageState>(usage, "usage figures")?,
                decode_section::<AnomalyState>(anomalies, "anomaly windows")?,
                decode_section::<Vec<PendingAction>>(pending, "pending actions")?,
            ))
        })();
        let keys = keys
            .join()
            .unwrap_or_else(|_| Err("decoding the snapshot's keys failed".into()));
        (keys, rest)
    });
    let (facts, usage, anomalies, pending) = rest?;
    Ok(Body {
        seq: facts.seq,
        hash: facts.hash,
        time: facts.time,
        origin: facts.origin,
        signers: facts.signers,
        frontier_root: facts.frontier_root,
        latest_checkpoint: facts.latest_checkpoint,
        projections: Projections::from_parts(keys?, usage, anomalies, facts.applied_seq, pending),
    })
}

/// The body stored as `format`, or why it cannot be read.
pub(super) fn decode_body(format: &str, bytes: &[u8]) -> Result<Body, String> {
    match format {
        FORMAT => decode_v3(bytes),
        FORMAT_V2 => {
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
