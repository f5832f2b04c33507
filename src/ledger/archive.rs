//! Archival: the oldest events leave the live store as a verifiable export (FORMAT.md §9), while the chain, the
//! Merkle tree and the projections continue from a signed base state at the cut. The store records the archived
//! prefix (its size, the hash of its last event, the checkpoint covering it); replays and verification start
//! from there, and a read that reaches into the prefix is an `archived` error naming the archive file.

use super::snapshot::{self, ARCHIVE_BASE};
use super::{replay_range, Apply, Ledger};
use crate::audit::checkpoint::{checkpoint_key, Checkpoint, CHECKPOINT_EVERY};
use crate::audit::export::{write_export, ExportRequest};
use crate::audit::rotations::rotation_seqs;
use crate::audit::tree::STORED_LEVEL;
use crate::chain::LedgerSigner;
use crate::error::{LedgerError, LedgerResult};
use crate::projection::AnalysisRules;
use crate::store::{archived_size, ArchivedPrefix, LogStore, PREFIX_KEY};
use crate::time::LedgerTime;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::{BufReader, Read};
use std::path::Path;

/// Records of a 16-event block stay together. With Merkle tiles (which stay when the records go) the tree needs
/// none of them; a ledger archived before tiles computes its proofs below level 4 from them.
const BLOCK: u64 = 1 << STORED_LEVEL;

/// What `archive` did.
#[derive(Clone, Debug, Serialize)]
pub struct ArchiveSummary {
    pub from_seq: u64,
    pub to_seq: u64,
    pub events: u64,
    pub bytes: u64,
    pub file_sha256: String,
    pub records_removed: u64,
}

/// Archives the events before `before`, cut at a multiple of 1,024 (where a checkpoint is stored), to `out` (a
/// new file), checks the file as `verify-export` would, then records the prefix and its base state and removes
/// the archived records from the live store. The genesis, signer rotations and the last Merkle block stay.
pub fn archive(
    ledger: &Ledger,
    signer: &LedgerSigner,
    before: LedgerTime,
    out: &Path,
    rules: &AnalysisRules,
) -> LedgerResult<ArchiveSummary> {
    let store = ledger.store().as_ref();
    let previous = archived_size(store)?;
    let older = store
        .first_seq_at_or_after(before)?
        .min(ledger.durable_seq() + 1)
        .saturating_sub(1);
    let mut size = older / CHECKPOINT_EVERY * CHECKPOINT_EVERY;
    // The next archive's window starts at size + 1 and is stated by its time: the cut must fall where time steps.
    while size > previous && !time_steps_after(store, size)? {
        size -= CHECKPOINT_EVERY;
    }
    if size <= previous {
        return Err(LedgerError::invalid(
            "before",
            format!(
                "{older} events are older than {before}, {previous} are archived already, and archives are cut \
                 at multiples of 1,024 events: nothing to archive"
            ),
        ));
    }
    let note = store
        .get_side(&checkpoint_key(size))?
        .ok_or_else(|| LedgerError::Config(format!("no checkpoint of {size} events is stored")))?;
    let note = String::from_utf8_lossy(&note).into_owned();
    let (checkpoint, _, _) = Checkpoint::parse_note(&note).map_err(|e| LedgerError::Corrupt {
        seq: size,
        problem: e.to_string(),
    })?;
    let written = write_file(ledger, &checkpoint, &note, previous, out)?;

    let start = super::replay_start::replay_start(store, rules.clone())?;
    let (base, _) = replay_range(store, start, size + 1, Apply::Projections, None, None)?;
    let head = base.head.ok_or_else(|| LedgerError::Corrupt {
        seq: size,
        problem: "the replay to the cut found no events".into(),
    })?;
    let mut entries = snapshot::encode(
        store,
        ARCHIVE_BASE,
        signer,
        &base.signers,
        base.origin.clone(),
        &base.projections,
    )?;
    let prefix = ArchivedPrefix {
        size,
        last_hash: hex::encode(head.hash),
        last_time: head.time,
        checkpoint: note,
        file: out.display().to_string(),
        file_sha256: written.sha256.clone(),
        archived_at: ledger.now(),
        previous,
    };
    let prefix = serde_json::to_vec(&prefix).map_err(|e| LedgerError::Config(e.to_string()))?;
    entries.push((PREFIX_KEY.to_vec(), prefix));
    // The counts of the open hour's archived events: its rollups are not stored until the hour closes.
    entries.extend(crate::projection::rollup_open::archived_part(store, size)?);
    // Readers switch to the base with this one atomic step; the removal after it only frees space.
    store.put_side(&entries)?;
    let records_removed = store.prune_archived(size, &kept_records(store, size)?)?;
    Ok(ArchiveSummary {
        from_seq: previous + 1,
        to_seq: size,
        events: size - previous,
        bytes: written.bytes,
        file_sha256: written.sha256,
        records_removed,
    })
}

fn time_steps_after(store: &dyn LogStore, seq: u64) -> LedgerResult<bool> {
    match (store.get(seq)?, store.get(seq + 1)?) {
        (Some(last), Some(next)) => Ok(last.time < next.time),
        _ => Ok(true),
    }
}

struct Written {
    bytes: u64,
    sha256: String,
}

/// Writes events previous+1..=size with the checkpoint of `size` events to a new file, syncs it, and checks it
/// with the offline verifier before anything is removed.
fn write_file(
    ledger: &Ledger,
    checkpoint: &Checkpoint,
    note: &str,
    previous: u64,
    out: &Path,
) -> LedgerResult<Written> {
    let io = |what: &str, e| LedgerError::io(format!("{what} {}", out.display()), e);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(|e| io("creating", e))?;
    let mut writer = std::io::BufWriter::new(file);
    let anchor = ledger
        .signers()
        .entries()
        .first()
        .map(|s| s.key)
        .ok_or_else(|| LedgerError::Config("the ledger has no signer".into()))?;
    let request = ExportRequest {
        first_seq: Some(previous + 1),
        ..Default::default()
    };
    let summary = write_export(
        ledger.store().as_ref(),
        &request,
        checkpoint,
        note,
        &hex::encode(anchor.as_bytes()),
        &mut writer,
        None,
    )?;
    let file = writer
        .into_inner()
        .map_err(|e| io("writing", e.into_error()))?;
    file.sync_all().map_err(|e| io("syncing", e))?;
    let mut hasher = Sha256::new();
    let mut reader = BufReader::new(std::fs::File::open(out).map_err(|e| io("reading", e))?);
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buffer).map_err(|e| io("reading", e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    let reader = BufReader::new(std::fs::File::open(out).map_err(|e| io("reading", e))?);
    let check =
        crate::audit::verify_export::verify_export(reader, anchor, None).map_err(|failure| {
            LedgerError::Config(format!(
                "the archive written to {} does not verify (line {}: {}); nothing was removed",
                out.display(),
                failure.line,
                failure.problem
            ))
        })?;
    if check.events != summary.events || check.to_seq != checkpoint.size {
        return Err(LedgerError::Config(format!(
            "the archive written to {} holds {} events, not {}; nothing was removed",
            out.display(),
            check.events,
            summary.events
        )));
    }
    Ok(Written {
        bytes: summary.bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Records that stay after the cut: the genesis (pinned by ledger.json), the Merkle blocks around each signer
/// rotation (exports carry them as endorsements, with proofs), and the last block before the cut (the boundary
/// of the next export).
fn kept_records(store: &dyn LogStore, size: u64) -> LedgerResult<Vec<u64>> {
    let block_of = |seq: u64| {
        let start = (seq - 1) / BLOCK * BLOCK + 1;
        start..=start + BLOCK - 1
    };
    let mut keep: Vec<u64> = vec![1];
    for seq in rotation_seqs(store)? {
        if seq <= size {
            keep.extend(block_of(seq.saturating_sub(1).max(1)));
            keep.extend(block_of(seq));
        }
    }
    keep.extend(block_of(size));
    Ok(keep)
}
