//! Persisted projection state: a signed snapshot of every projection as of one event, so that a serving ledger
//! starts by replaying only the events after it (O(keys) + tail instead of O(events)). The log stays the only
//! source of truth: a snapshot that is missing, unsigned, built under other anomaly rules or naming an event the
//! log does not hold is ignored (a full replay follows), and the events before it are checked in the background
//! (see `snapshot_check`). Stored form: FORMAT.md §4 and `snapshot_format`.

use super::replay::Resume;
use super::snapshot_format::{decode_body, digest, encode_body, Body, Header, FORMAT, FORMAT_V1};
use super::ReplayOutcome;
use crate::audit::checkpoint::{stored_checkpoints, Checkpoint};
use crate::audit::tree::Frontier;
use crate::chain::{verify_hash_signature, Hash32, LedgerSigner, SignerId};
use crate::error::{LedgerError, LedgerResult};
use crate::projection::AnalysisRules;
use crate::projection::Projections;
use crate::signers::SignerRegistry;
use crate::store::{Head, LogStore};
use ed25519_dalek::VerifyingKey;

/// Where a snapshot is kept: a small header (read first) and the body, as two side entries.
#[derive(Clone, Copy)]
pub(crate) struct Slot {
    header: &'static [u8],
    body: &'static [u8],
}

/// The state `serve` starts from.
pub(crate) const SERVING: Slot = Slot {
    header: b"snapshot/projections/header",
    body: b"snapshot/projections/body",
};

/// The state after the archived prefix: where every replay starts once events were archived.
pub(crate) const ARCHIVE_BASE: Slot = Slot {
    header: b"archive/base/header",
    body: b"archive/base/body",
};
/// What a loaded snapshot gives the opening ledger.
pub(crate) struct Loaded {
    pub resume: Resume,
    /// The snapshot's last event, and the Merkle root over the events up to it: what the prefix check confirms.
    pub head: Head,
    pub root: Hash32,
}

/// The seq the snapshot in `slot` covers (0 when there is none, its header is unreadable or of an older format).
pub(crate) fn stored_seq(store: &dyn LogStore, slot: Slot) -> LedgerResult<u64> {
    let header = store.get_side(slot.header)?;
    Ok(header
        .and_then(|bytes| serde_json::from_slice::<Header>(&bytes).ok())
        .filter(|h| h.format == FORMAT)
        .map_or(0, |h| h.seq))
}

/// Persists `projections` (as of their `applied_seq`) in `slot`, signed by `signer`, which must be the signer
/// in force after that event. Returns the seq written, or `None` when there was nothing to write. The caller
/// decides whether the stored snapshot is older (startup::Snapshotter reads its header before cloning).
pub(crate) fn write(
    store: &dyn LogStore,
    slot: Slot,
    signer: &LedgerSigner,
    signers: &SignerRegistry,
    origin: Option<String>,
    projections: &Projections,
) -> LedgerResult<Option<u64>> {
    let seq = projections.applied_seq;
    if seq == 0 {
        return Ok(None);
    }
    if signers.signer_for(seq + 1).map(|s| s.key) != Some(signer.public_key()) {
        return Ok(None);
    }
    store.put_side(&encode(store, slot, signer, signers, origin, projections)?)?;
    Ok(Some(seq))
}

/// The side entries that persist `projections` in `slot` (for a caller that stores them with others in one
/// step), signed by `signer`.
pub(crate) fn encode(
    store: &dyn LogStore,
    slot: Slot,
    signer: &LedgerSigner,
    signers: &SignerRegistry,
    origin: Option<String>,
    projections: &Projections,
) -> LedgerResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let seq = projections.applied_seq;
    let record = store.get(seq)?.ok_or_else(|| LedgerError::Corrupt {
        seq,
        problem: "the projections name an event the log does not hold".into(),
    })?;
    let latest_checkpoint = stored_checkpoints(store)?
        .into_iter()
        .rev()
        .find(|(size, _)| *size <= seq)
        .map(|(_, note)| note);
    let body = Body {
        seq,
        hash: hex::encode(record.hash),
        time: record.time,
        origin,
        signers: signers.to_persisted(),
        frontier_root: hex::encode(Frontier::load(store, seq)?.root()),
        latest_checkpoint,
        projections: projections.clone(),
    };
    let body = encode_body(&body)?;
    let header = Header {
        format: FORMAT.into(),
        seq,
        hash: hex::encode(record.hash),
        signer: signer.id().to_string(),
        signature: hex::encode(signer.sign_hash(&digest(FORMAT, &body))?),
    };
    let header = serde_json::to_vec(&header).map_err(|e| LedgerError::Config(e.to_string()))?;
    Ok(vec![
        (slot.header.to_vec(), header),
        (slot.body.to_vec(), body),
    ])
}

/// Loads the stored snapshot if it can be trusted and used: signed by one of `signers` (the keys the ledger
/// was opened with), built under the anomaly rules of `rules`, and naming an event the log holds with the
/// same hash and Merkle root. Otherwise says why (the caller replays the whole log instead).
pub(crate) fn load(
    store: &dyn LogStore,
    slot: Slot,
    keys: &[VerifyingKey],
    rules: &AnalysisRules,
) -> LedgerResult<Result<Loaded, String>> {
    let Some(header) = store.get_side(slot.header)? else {
        return Ok(Err("no snapshot is stored".into()));
    };
    let Ok(header) = serde_json::from_slice::<Header>(&header) else {
        return Ok(Err("the snapshot header is unreadable".into()));
    };
    if header.format == FORMAT_V1 && slot.body != ARCHIVE_BASE.body {
        // Its anomaly windows are of the rules before counter windows: replaying gives the state of today's.
        return Ok(Err(format!(
            "the snapshot is {FORMAT_V1} (JSON, before counter windows), which is not read any more; the log is \
             replayed and a {FORMAT} snapshot written"
        )));
    }
    let Some(body) = store.get_side(slot.body)? else {
        return Ok(Err("the snapshot body is missing".into()));
    };
    let mut signature = [0u8; 64];
    let signed = hex::decode_to_slice(&header.signature, &mut signature).is_ok()
        && keys.iter().any(|key| {
            SignerId::of(key).to_string() == header.signer
                && verify_hash_signature(key, &digest(&header.format, &body), &signature)
        });
    if !signed {
        return Ok(Err(
            "the snapshot is not signed by this ledger's signing key".into(),
        ));
    }
    let body = match decode_body(&header.format, &body) {
        Ok(body) => body,
        Err(why) => return Ok(Err(why)),
    };
    Ok(resume_from(store, &header, body, rules, slot))
}

fn resume_from(
    store: &dyn LogStore,
    header: &Header,
    body: Body,
    rules: &AnalysisRules,
    slot: Slot,
) -> Result<Loaded, String> {
    let seq = body.seq;
    let hash = parse_hash(&body.hash).ok_or("the snapshot's hash is malformed")?;
    if seq != header.seq || body.hash != header.hash || body.projections.applied_seq != seq {
        return Err("the snapshot's header and body disagree".into());
    }
    let record = store
        .get(seq)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the log does not hold event {seq}, the snapshot's last"))?;
    if record.hash != hash {
        return Err(format!(
            "event {seq} no longer has the hash the snapshot names"
        ));
    }
    let frontier = Frontier::load(store, seq).map_err(|e| e.to_string())?;
    if Some(frontier.root()) != parse_hash(&body.frontier_root) {
        return Err("the stored Merkle tree does not have the snapshot's root".into());
    }
    let signers = SignerRegistry::from_persisted(&body.signers).ok_or("a signer is malformed")?;
    let latest_checkpoint = match body.latest_checkpoint {
        Some(note) => Some((verify_checkpoint(&signers, &note)?, note)),
        None => None,
    };
    let projections = if slot.body == ARCHIVE_BASE.body {
        // No replay can rebuild the archived prefix under other rules: its state stands as recorded.
        body.projections.restored_as_recorded(rules.clone())
    } else {
        body.projections
            .restored(rules.clone())
            .ok_or("the snapshot was built under other [anomaly] rules")?
    };
    let root = frontier.root();
    let head = Head {
        seq,
        hash,
        time: body.time,
    };
    Ok(Loaded {
        resume: Resume {
            outcome: ReplayOutcome {
                projections,
                signers,
                head: Some(head),
                events: seq,
                origin: body.origin,
                frontier,
                latest_checkpoint,
            },
            prev: hash,
        },
        head,
        root,
    })
}

fn verify_checkpoint(signers: &SignerRegistry, note: &str) -> Result<Checkpoint, String> {
    let (unverified, _, _) = Checkpoint::parse_note(note).map_err(|e| e.to_string())?;
    [unverified.size, unverified.size + 1]
        .iter()
        .filter_map(|seq| signers.signer_for(*seq))
        .find_map(|signer| Checkpoint::verify_note(note, &signer.key).ok())
        .ok_or_else(|| "the snapshot's checkpoint is not signed by the signer in force".into())
}

fn parse_hash(text: &str) -> Option<Hash32> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).ok().map(|_| hash)
}
