//! Replay: rebuilds every projection from the log in seq order, checking each link of the chain on the way and
//! the signatures of the newest events, so that the ledger never appends to a log whose tail does not verify.

use crate::chain::{chain_hash, verify_hash_signature, Hash32, GENESIS_PREV};
use crate::config::AnalysisConfig;
use crate::error::{LedgerError, LedgerResult};
use crate::event::Event;
use crate::projection::Projections;
use crate::signers::SignerRegistry;
use crate::store::{Head, LogStore, StoredRecord};
use crate::time::LedgerTime;
use rayon::prelude::*;

/// How many of the newest events have their signatures checked when a ledger is opened.
pub const TAIL_SIGNATURES_CHECKED: u64 = 1024;
const CHUNK: usize = 4096;

/// What a replay produced.
pub struct ReplayOutcome {
    pub projections: Projections,
    pub signers: SignerRegistry,
    /// The last event replayed (the log's head for a full replay).
    pub head: Option<Head>,
    pub events: u64,
    /// The checkpoint origin named by `ledger.initialized`.
    pub origin: Option<String>,
}

/// Replays the log into fresh projections, up to and including the last event at or before `as_of` (all events
/// when `None`). `progress` is told the seq reached after each chunk.
pub fn replay_log(
    store: &dyn LogStore,
    as_of: Option<LedgerTime>,
    progress: Option<&dyn Fn(u64)>,
) -> LedgerResult<ReplayOutcome> {
    replay_log_with(store, as_of, progress, AnalysisConfig::default())
}

/// [`replay_log`] with the analysis configuration the projections use.
pub fn replay_log_with(
    store: &dyn LogStore,
    as_of: Option<LedgerTime>,
    progress: Option<&dyn Fn(u64)>,
    config: AnalysisConfig,
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
    let mut outcome = ReplayOutcome {
        projections: Projections::new(config),
        signers: SignerRegistry::default(),
        head: None,
        events: 0,
        origin: None,
    };
    let mut prev: Hash32 = GENESIS_PREV;
    let mut expected = 1u64;
    let mut records = store.scan(1, end);
    loop {
        let chunk: Vec<StoredRecord> = records.by_ref().take(CHUNK).collect::<Result<_, _>>()?;
        if chunk.is_empty() {
            break;
        }
        let first_prev = prev;
        let decoded: Vec<LedgerResult<Event>> = chunk
            .par_iter()
            .enumerate()
            .map(|(i, record)| {
                let link = if i == 0 {
                    first_prev
                } else {
                    chunk[i - 1].hash
                };
                check_record(record, &link)
            })
            .collect();
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
            outcome.projections.apply(&event);
            prev = record.hash;
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
    if as_of.is_none() {
        check_tail_signatures(store, &outcome)?;
    }
    Ok(outcome)
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

fn check_tail_signatures(store: &dyn LogStore, outcome: &ReplayOutcome) -> LedgerResult<()> {
    let Some(head) = outcome.head else {
        return Ok(());
    };
    let from = head.seq.saturating_sub(TAIL_SIGNATURES_CHECKED - 1).max(1);
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
