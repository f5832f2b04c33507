//! Replay: rebuilds every projection from the log in seq order, checking each link of the chain on the way,
//! recomputing the Merkle tree from the event hashes and comparing it with every stored checkpoint (whose
//! signature is checked), and checking the signature of every event after the newest checkpoint. A record
//! changed anywhere changes its hash, which breaks either the chain or a signed root; so the ledger never opens
//! (or appends to) a log that does not verify.

use super::checkpointer::SignedCheckpoint;
use crate::audit::checkpoint::{stored_checkpoints_from, Checkpoint};
use crate::audit::tree::Frontier;
use crate::chain::{chain_hash, verify_hash_signature, Hash32, GENESIS_PREV};
use crate::error::{LedgerError, LedgerResult};
use crate::event::{Event, EventData};
use crate::projection::Projections;
use crate::signers::SignerRegistry;
use crate::store::{link_before, Head, LogStore, StoredRecord};
use crate::time::LedgerTime;
use rayon::prelude::*;

const CHUNK: usize = 4096;

/// What a replay produced.
#[derive(Clone)]
pub struct ReplayOutcome {
    pub projections: Projections,
    pub signers: SignerRegistry,
    /// The last event replayed (the log's head for a full replay).
    pub head: Option<Head>,
    pub events: u64,
    /// The checkpoint origin named by `ledger.initialized`.
    pub origin: Option<String>,
    /// The Merkle tree's right edge, recomputed from the replayed event hashes.
    pub frontier: Frontier,
    /// The newest stored checkpoint within the replayed events (its root and signature checked).
    pub latest_checkpoint: Option<SignedCheckpoint>,
}

/// [`replay_log_with`] starting after `start` (genesis, or a loaded snapshot).
pub(crate) fn replay_from(
    store: &dyn LogStore,
    as_of: Option<LedgerTime>,
    progress: Option<&dyn Fn(u64)>,
    start: Resume,
) -> LedgerResult<ReplayOutcome> {
    let stored_head = store.head()?;
    let last = store.last_record()?;
    match (&stored_head, &last) {
        (Some(head), Some(record)) if head.seq != record.seq || head.hash != record.hash => {
            return Err(LedgerError::Corrupt {
                seq: head.seq.min(record.seq),
                problem: format!(
                    "the head names seq {} but the newest record is seq {} (events removed or added behind the writer)",
                    head.seq, record.seq
                ),
            })
        }
        (None, Some(record)) => {
            return Err(LedgerError::Corrupt { seq: record.seq, problem: "records exist but the head is missing".into() })
        }
        (Some(head), None) => {
            return Err(LedgerError::Corrupt { seq: head.seq, problem: "the head names events that are missing".into() })
        }
        _ => {}
    }
    let end = match as_of {
        Some(time) => store.first_seq_at_or_after(time.plus_micros(1))?,
        None => stored_head.map_or(1, |h| h.seq + 1),
    };
    let (outcome, unreached) = replay_range(store, start, end, Apply::Projections, progress, None)?;
    if as_of.is_none() {
        if let Some(size) = unreached {
            let held = outcome.head.map_or(0, |h| h.seq);
            return Err(LedgerError::Corrupt {
                seq: held + 1,
                problem: format!(
                    "a stored checkpoint covers {size} events but the log holds {held}: its tail was cut"
                ),
            });
        }
        check_tail_signatures(store, &outcome)?;
    }
    Ok(outcome)
}

/// Where a replay starts: from genesis, or after a persisted state (ledger::snapshot) whose last event is `prev`.
pub(crate) struct Resume {
    pub outcome: ReplayOutcome,
    pub prev: Hash32,
}

impl Resume {
    pub fn genesis(projections: Projections) -> Self {
        Self {
            outcome: ReplayOutcome {
                projections,
                signers: SignerRegistry::default(),
                head: None,
                events: 0,
                origin: None,
                frontier: Frontier::default(),
                latest_checkpoint: None,
            },
            prev: GENESIS_PREV,
        }
    }
}

/// A follower's hook: each checked record with its event and the signers in force; an error stops the replay.
pub(crate) type Visitor<'a> =
    &'a mut dyn FnMut(&StoredRecord, &Event, &SignerRegistry) -> LedgerResult<()>;

/// Whether a replay feeds the projections, only checks the chain (the startup check of a snapshot's prefix), or
/// hands each checked event to a visitor (a follower applying the events to the projections it serves).
pub(crate) enum Apply<'a> {
    Projections,
    ChainOnly,
    Visit(Visitor<'a>),
}

/// Replays the records after `start` up to (not including) seq `end`, checking each link, each signer statement
/// and each stored checkpoint the recomputed tree reaches. `cancel` stops a long check early (an `Err` is not
/// returned for that: the outcome simply ends where it stopped). Also returns the size of the first stored
/// checkpoint the replay did not reach, if any.
pub(crate) fn replay_range(
    store: &dyn LogStore,
    start: Resume,
    end: u64,
    apply: Apply<'_>,
    progress: Option<&dyn Fn(u64)>,
    cancel: Option<&std::sync::atomic::AtomicBool>,
) -> LedgerResult<(ReplayOutcome, Option<u64>)> {
    let from = start.outcome.frontier.size() + 1;
    replay_checked(store, start, end, apply, progress, cancel).map_err(|err| match err {
        // A changed body inside a sealed block breaks a link or a checkpoint only further on (audit/tiles.rs).
        LedgerError::Corrupt { seq, problem } => {
            match crate::audit::tiles::first_unrecorded_leaf(store, from, seq) {
                Some(changed) if changed < seq => LedgerError::Corrupt {
                    seq: changed,
                    problem: format!(
                        "the hash of its body is not the leaf the Merkle tree recorded for it: body changed \
                         (found at event {seq}: {problem})"
                    ),
                },
                _ => LedgerError::Corrupt { seq, problem },
            }
        }
        other => other,
    })
}

fn replay_checked(
    store: &dyn LogStore,
    start: Resume,
    end: u64,
    mut apply: Apply<'_>,
    progress: Option<&dyn Fn(u64)>,
    cancel: Option<&std::sync::atomic::AtomicBool>,
) -> LedgerResult<(ReplayOutcome, Option<u64>)> {
    let Resume { mut outcome, prev } = start;
    let resumed_at = outcome.frontier.size();
    let mut checkpoints = stored_checkpoints_from(store, resumed_at + 1)?
        .into_iter()
        .filter(|(size, _)| *size > resumed_at)
        .peekable();
    let mut expected = resumed_at + 1;
    let cancelled = || cancel.is_some_and(|flag| flag.load(std::sync::atomic::Ordering::Relaxed));
    std::thread::scope(|scope| -> LedgerResult<()> {
        // Reading and decoding the next chunks (a thread, then both cores) overlaps applying this one.
        let (sender, chunks) = std::sync::mpsc::sync_channel::<DecodedChunk>(2);
        let from = expected;
        scope.spawn(move || decode_chunks(store, from, end.max(from), prev, sender, cancelled));
        for chunk in chunks {
            if cancelled() {
                break;
            }
            let (chunk, decoded) = chunk?;
            for (record, event) in chunk.iter().zip(decoded) {
                if record.seq != expected {
                    return Err(LedgerError::Corrupt {
                        seq: expected,
                        problem: format!(
                            "event {expected} is missing (next stored is {})",
                            record.seq
                        ),
                    });
                }
                let event = event?;
                match outcome.signers.signer_for(record.seq) {
                    Some(signer) if signer.id == record.signer => {}
                    _ if record.seq == 1 => {}
                    _ => {
                        return Err(LedgerError::Corrupt {
                            seq: record.seq,
                            problem: format!(
                                "signed by {} which is not the signer in force",
                                record.signer
                            ),
                        })
                    }
                }
                outcome
                    .signers
                    .observe(&event)
                    .map_err(|e| LedgerError::Corrupt {
                        seq: record.seq,
                        problem: e.to_string(),
                    })?;
                if let EventData::LedgerInitialized(init) = &event.data {
                    outcome.origin.get_or_insert_with(|| init.origin.clone());
                }
                match &mut apply {
                    Apply::Projections => outcome.projections.apply(&event),
                    Apply::ChainOnly => {}
                    Apply::Visit(visit) => visit(record, &event, &outcome.signers)?,
                }
                outcome.frontier.push(&record.hash);
                while let Some((size, note)) =
                    checkpoints.next_if(|(size, _)| *size <= outcome.frontier.size())
                {
                    let checkpoint = check_checkpoint(&outcome, size, &note)?;
                    outcome.latest_checkpoint = Some((checkpoint, note));
                }
                expected += 1;
                outcome.events += 1;
                outcome.head = Some(Head {
                    seq: record.seq,
                    hash: record.hash,
                    time: record.time,
                });
            }
            if let Some(report) = progress {
                report(expected - 1);
            }
        }
        // Dropping the receiver on an early return stops the decoding thread at its next send.
        Ok(())
    })?;
    let unreached = checkpoints.next().map(|(size, _)| size);
    Ok((outcome, unreached))
}

/// A chunk of stored records with each one's event (or why it does not decode or link), or the read error that
/// ended the scan.
type DecodedChunk = LedgerResult<(Vec<StoredRecord>, Vec<LedgerResult<Event>>)>;

/// Reads `from..to` in chunks and checks each record's link and body on both cores, sending the chunks in order
/// until the log ends, a read fails, `cancelled` says so or the receiver is gone.
fn decode_chunks(
    store: &dyn LogStore,
    from: u64,
    to: u64,
    mut prev: Hash32,
    sender: std::sync::mpsc::SyncSender<DecodedChunk>,
    cancelled: impl Fn() -> bool,
) {
    // The reading stays on this thread: a third thread reading ahead (store::with_read_ahead) measured slower
    // here on two cores, since this thread already runs ahead of the applying one.
    let mut records = store.scan(from, to);
    while !cancelled() {
        let chunk: Vec<StoredRecord> = match records.by_ref().take(CHUNK).collect::<Result<_, _>>()
        {
            Ok(chunk) => chunk,
            Err(err) => {
                let _ = sender.send(Err(err.into()));
                return;
            }
        };
        let Some(last) = chunk.last() else {
            return;
        };
        let first_prev = std::mem::replace(&mut prev, last.hash);
        let decoded: Vec<LedgerResult<Event>> = chunk
            .par_iter()
            .enumerate()
            .map(|(i, record)| check_record(record, link_before(&chunk, i, &first_prev)))
            .collect();
        if sender.send(Ok((chunk, decoded))).is_err() {
            return;
        }
    }
}

/// A stored checkpoint of `size` events must be signed by the signer of event `size` (or of the next one) and
/// carry the root recomputed from the events.
fn check_checkpoint(outcome: &ReplayOutcome, size: u64, note: &str) -> LedgerResult<Checkpoint> {
    let corrupt = |problem: String| LedgerError::Corrupt { seq: size, problem };
    let checkpoint = [size, size + 1]
        .iter()
        .filter_map(|seq| outcome.signers.signer_for(*seq))
        .find_map(|signer| Checkpoint::verify_note(note, &signer.key).ok())
        .ok_or_else(|| {
            corrupt(format!(
                "the stored checkpoint of {size} events is not signed by the signer in force"
            ))
        })?;
    if checkpoint.size != size || checkpoint.root != outcome.frontier.root() {
        return Err(corrupt(format!(
            "the log's first {size} events no longer have the root the stored checkpoint signed"
        )));
    }
    Ok(checkpoint)
}

fn check_record(record: &StoredRecord, link: &Hash32) -> LedgerResult<Event> {
    if chain_hash(link, &record.body) != record.hash {
        return Err(LedgerError::Corrupt {
            seq: record.seq,
            problem: "hash does not match the body and the previous event's hash".into(),
        });
    }
    let event = Event::decode(&record.body).map_err(|source| LedgerError::Decode {
        seq: record.seq,
        source,
    })?;
    if event.seq != record.seq || event.time != record.time {
        return Err(LedgerError::Corrupt {
            seq: record.seq,
            problem: format!(
                "stored at seq {} but its body says seq {}",
                record.seq, event.seq
            ),
        });
    }
    Ok(event)
}

pub(crate) fn check_tail_signatures(
    store: &dyn LogStore,
    outcome: &ReplayOutcome,
) -> LedgerResult<()> {
    let Some(head) = outcome.head else {
        return Ok(());
    };
    // Events up to the newest checkpoint are covered by its signed root, recomputed during the replay.
    let from = outcome
        .latest_checkpoint
        .as_ref()
        .map_or(1, |(checkpoint, _)| checkpoint.size + 1);
    for record in store.scan(from, head.seq + 1) {
        let record = record?;
        let signer =
            outcome
                .signers
                .signer_for(record.seq)
                .ok_or_else(|| LedgerError::Corrupt {
                    seq: record.seq,
                    problem: "no signer is known for this event".into(),
                })?;
        if signer.id != record.signer
            || !verify_hash_signature(&signer.key, &record.hash, &record.signature)
        {
            return Err(LedgerError::Corrupt {
                seq: record.seq,
                problem: "signature does not verify".into(),
            });
        }
    }
    Ok(())
}
