//! The single writer, as a two-stage pipeline. The writer thread drains commands into a batch, plans their
//! events against its own key state, signs them (on both cores) and writes the batch atomically; the flusher
//! thread makes written batches durable (one fsync may cover several), publishes them to the projections and
//! answers the callers. Planning batch N+1 overlaps the fsync of batch N; nobody hears "done" before the fsync.
//!
//! A failed write or fsync stops the ledger (fail-stop): the store cannot un-write a batch, so every later
//! command is refused until the ledger is reopened, and replay decides what is on record.

use super::checkpointer::Checkpointer;
use super::command::{PlanContext, StagedEvent};
use super::job::Job;
use super::signer_watch::{keys_as_of, signer_down};
use super::witnessing::WitnessSink;
use super::writer_jobs::{action_job, WakeJob};
use super::Shared;
use crate::audit::anchor::AnchorSink;
use crate::audit::tiles::Tiles;
use crate::audit::tree::Frontier;
use crate::chain::{Hash32, LedgerSigner, SignError};
use crate::clock::SharedClock;
use crate::error::{LedgerError, LedgerResult};
use crate::event::{Event, EventData};
use crate::projection::rollup_open::RollupWriter;
use crate::projection::KeyState;
use crate::store::{AppendBatch, StoredRecord};
use crate::time::LedgerTime;
use rayon::prelude::*;
use std::sync::atomic::Ordering;
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Instant;
use tokio::sync::mpsc;

/// Most commands in one group commit.
pub const MAX_BATCH_COMMANDS: usize = 1024;
const SIGNER_RETIRED: &str = "the signing key was rotated; reopen the ledger with the new key";
/// From this many events on, a batch is signed on both cores (rayon).
const PARALLEL_SIGN_MIN: usize = 256;
/// With the key on a PKCS#11 token a signature costs a round trip to it (~0.4 ms on SoftHSM2 against ~25 µs in
/// memory), so any batch of two or more is signed from the pool, one token session per thread.
const PARALLEL_TOKEN_SIGN_MIN: usize = 2;
/// Written-but-not-durable batches the writer may run ahead of the flusher.
const PIPELINE_DEPTH: usize = 2;

/// The writer's own view of the tail and of key state (ahead of the published state by the batches in flight).
pub(crate) struct WriterState {
    pub keys: KeyState,
    /// The Merkle tree's right edge, one leaf per event written.
    pub frontier: Frontier,
    /// The tree's partial tiles, grown with the frontier; each batch writes the tiles it changed.
    pub tiles: Tiles,
    pub checkpointer: Checkpointer,
    pub next_seq: u64,
    pub last_time: LedgerTime,
    pub prev_hash: Hash32,
    pub clock: SharedClock,
    /// The open hour's usage rollup cells (in memory; packed into the store when the hour closes).
    pub rollups: RollupWriter,
    /// The day keys that seal committed personal fields, when `[personal] commit` is on.
    pub vault: Option<Arc<crate::personal::vault::Vault>>,
}

/// A written batch on its way to durability.
struct Written {
    jobs: Vec<Box<dyn Job>>,
    events: Vec<Event>,
    /// Whether anything was written that the next fsync must cover.
    wrote: bool,
    /// Checkpoint notes written in this batch, for the anchor once they are durable.
    notes: Vec<String>,
}

/// Where durable checkpoint notes go besides the store: the anchor and the witnesses.
pub(crate) struct NoteSinks {
    pub anchor: Option<AnchorSink>,
    pub witnesses: Option<WitnessSink>,
}

impl NoteSinks {
    fn send(&self, note: String) {
        if let Some(witnesses) = &self.witnesses {
            witnesses.send(note.clone());
        }
        if let Some(anchor) = &self.anchor {
            anchor.send(note);
        }
    }
}

/// Starts the writer and flusher threads.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    signer: LedgerSigner,
    state: WriterState,
    commands: mpsc::Receiver<Box<dyn Job>>,
    wake: mpsc::WeakSender<Box<dyn Job>>,
    sinks: NoteSinks,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    let (to_flusher, flusher_inbox) = std_mpsc::sync_channel(PIPELINE_DEPTH);
    let flusher_shared = shared.clone();
    let flusher = std::thread::Builder::new()
        .name("keyledger-flusher".into())
        .spawn(move || run_flusher(flusher_shared, flusher_inbox, wake, sinks))?;
    let writer = std::thread::Builder::new()
        .name("keyledger-writer".into())
        .spawn(move || run_writer(shared, signer, state, commands, to_flusher))?;
    Ok(vec![writer, flusher])
}

fn run_writer(
    shared: Arc<Shared>,
    signer: LedgerSigner,
    mut state: WriterState,
    mut commands: mpsc::Receiver<Box<dyn Job>>,
    to_flusher: std_mpsc::SyncSender<Written>,
) {
    // A pool of its own for signing large batches: callers blocked in `submit_blocking` on the global rayon
    // pool's threads would otherwise leave the writer no thread to sign with (a deadlock).
    let sign_pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("keyledger-sign-{i}"))
        .build()
        .ok();
    let mut staged: Vec<StagedEvent> = Vec::new();
    // After a signer rotation this key may sign nothing more: the ledger must be reopened with the new key.
    let mut signer_retired = false;
    while let Some(first) = commands.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH_COMMANDS {
            match commands.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if let Some(reason) = shared
            .failure()
            .or_else(|| signer_retired.then(|| SIGNER_RETIRED.to_string()))
        {
            jobs.into_iter().for_each(|job| job.finish(Some(&reason)));
            continue;
        }
        let follow_ups = shared.take_follow_ups();
        // Kept to be asked again if the batch cannot be signed.
        let kept_follow_ups = follow_ups.clone();
        jobs.extend(follow_ups.into_iter().map(action_job));
        let tail_before = (state.next_seq, state.last_time, state.prev_hash);
        let mut ctx = PlanContext {
            state: &mut state.keys,
            staged: &mut staged,
            next_seq: state.next_seq,
            last_time: state.last_time,
            prev_hash: state.prev_hash,
            clock: state.clock.as_ref(),
            commit_personal: state.vault.is_some(),
        };
        // The batch ends at a signer rotation: nothing after it may be signed with the retiring key.
        let mut planned = jobs.len();
        for (position, job) in jobs.iter_mut().enumerate() {
            job.plan(&mut ctx);
            let rotated = ctx
                .staged
                .last()
                .is_some_and(|item| matches!(item.event.data, EventData::SignerRotated(_)));
            if rotated {
                signer_retired = true;
                planned = position + 1;
                break;
            }
        }
        (state.next_seq, state.last_time, state.prev_hash) =
            (ctx.next_seq, ctx.last_time, ctx.prev_hash);
        let refused = jobs.split_off(planned);
        let forced = jobs.iter().any(|job| job.wants_checkpoint());
        refused
            .into_iter()
            .for_each(|job| job.finish(Some(SIGNER_RETIRED)));
        // A key that cannot sign (a token gone) fails the batch before anything is written or changed but the
        // plan, which is undone: appends stop until the key signs again.
        let records = match sign_records(&signer, sign_pool.as_ref(), &mut staged) {
            Ok(records) => records,
            Err(error) => {
                signer_retired = false;
                (state.next_seq, state.last_time, state.prev_hash) = tail_before;
                state.keys = keys_as_of(&shared, tail_before.0.saturating_sub(1));
                staged.clear();
                shared.add_follow_ups(kept_follow_ups);
                let reason = signer_down(&shared, &signer, &error);
                jobs.into_iter().for_each(|job| job.finish(Some(&reason)));
                continue;
            }
        };
        let sealed = match state.vault.as_deref() {
            Some(vault) => super::personal_seal::seal_batch(vault, &staged),
            None => Ok(None),
        };
        let sealed = match sealed {
            Ok(sealed) => sealed,
            Err(error) => {
                let reason = shared.fail(&error);
                jobs.into_iter().for_each(|job| job.finish(Some(&reason)));
                staged.clear();
                continue;
            }
        };
        let empty = staged.is_empty();
        let (wrote, notes) = match write(
            &shared,
            &signer,
            &mut state,
            &mut staged,
            records,
            sealed,
            forced,
        ) {
            Ok(written) => written,
            // A checkpoint of earlier events that could not be signed changed nothing yet.
            Err(LedgerError::Sign(error)) if empty => {
                shared.add_follow_ups(kept_follow_ups);
                let reason = signer_down(&shared, &signer, &error);
                jobs.into_iter().for_each(|job| job.finish(Some(&reason)));
                continue;
            }
            Err(error) => {
                let reason = shared.fail(&error);
                jobs.into_iter().for_each(|job| job.finish(Some(&reason)));
                staged.clear();
                continue;
            }
        };
        if forced {
            match state.checkpointer.latest() {
                Some(checkpoint) => jobs
                    .iter_mut()
                    .filter(|job| job.wants_checkpoint())
                    .for_each(|job| job.take_checkpoint(checkpoint)),
                None => tracing::warn!("a checkpoint was asked for before the log has an origin"),
            }
        }
        let events = staged.drain(..).map(|item| item.event).collect();
        let written = Written {
            jobs,
            events,
            wrote,
            notes,
        };
        if to_flusher.send(written).is_err() {
            return;
        }
    }
    // Clean shutdown: a last checkpoint covering everything written, unless the ledger failed.
    if shared.failure().is_none() {
        if let Ok((wrote, notes)) = write(
            &shared,
            &signer,
            &mut state,
            &mut staged,
            Vec::new(),
            None,
            true,
        ) {
            let _ = to_flusher.send(Written {
                jobs: Vec::new(),
                events: Vec::new(),
                wrote,
                notes,
            });
        }
    }
}

/// Signs the staged events (taking their bodies into the records). Batches of the sizes group commit usually
/// produces are signed on the writer thread (measured faster: waking other threads costs more than it saves);
/// large batches (bulk appends) are signed on both cores.
fn sign_records(
    signer: &LedgerSigner,
    sign_pool: Option<&rayon::ThreadPool>,
    staged: &mut [StagedEvent],
) -> Result<Vec<StoredRecord>, SignError> {
    let to_record = |item: &mut StagedEvent| -> Result<StoredRecord, SignError> {
        Ok(StoredRecord {
            seq: item.event.seq,
            time: item.event.time,
            hash: item.hash,
            signature: signer.sign_hash(&item.hash)?,
            signer: signer.id(),
            body: std::mem::take(&mut item.body),
        })
    };
    if let Some(pool) = sign_pool.filter(|_| {
        let least = match signer.on_token() {
            true => PARALLEL_TOKEN_SIGN_MIN,
            false => PARALLEL_SIGN_MIN,
        };
        staged.len() >= least
    }) {
        pool.install(|| staged.par_iter_mut().map(to_record).collect())
    } else {
        staged.iter_mut().map(to_record).collect()
    }
}

/// Writes the batch of signed `records` for the staged events, with the side entries and checkpoints it brings.
/// Returns whether anything was written and the checkpoint notes the batch holds.
fn write(
    shared: &Shared,
    signer: &LedgerSigner,
    state: &mut WriterState,
    staged: &mut [StagedEvent],
    records: Vec<StoredRecord>,
    sealed: Option<(Vec<u8>, Vec<u8>)>,
    forced_checkpoint: bool,
) -> LedgerResult<(bool, Vec<String>)> {
    let mut batch = AppendBatch {
        records,
        ..Default::default()
    };
    batch.side.extend(sealed);
    let mut notes = Vec::new();
    let events = || staged.iter().map(|item| &item.event);
    // The open hour's cells as they were before this batch, written with it: never ahead of the log.
    batch.side.extend(
        state
            .rollups
            .checkpoint(forced_checkpoint && staged.is_empty()),
    );
    state.rollups.pack_closed(events(), &mut batch);
    for (position, item) in staged.iter().enumerate() {
        let event = &item.event;
        batch.index_event(event, position);
        if let EventData::LedgerInitialized(init) = &event.data {
            state
                .checkpointer
                .origin
                .get_or_insert_with(|| init.origin.clone());
        }
        state.tiles.push(&mut state.frontier, &item.hash);
        state
            .checkpointer
            .after_leaf(&state.frontier, signer, &mut batch, &mut notes)?;
        if let EventData::SignerRotated(rotation) = &event.data {
            batch.side.push((
                crate::audit::rotations::signer_side_key(event.seq),
                rotation.new_public_key.clone().into_bytes(),
            ));
        }
    }
    batch.side.extend(state.tiles.take_changed());
    state.checkpointer.at_batch_end(
        &state.frontier,
        signer,
        &mut batch,
        &mut notes,
        forced_checkpoint,
    )?;
    if batch.is_empty() {
        return Ok((false, notes));
    }
    shared.store.write_batch(&batch)?;
    if let Some(last) = staged.last() {
        state.rollups.publish(events(), (last.event.seq, last.hash));
    }
    Ok((true, notes))
}

fn run_flusher(
    shared: Arc<Shared>,
    inbox: std_mpsc::Receiver<Written>,
    wake: mpsc::WeakSender<Box<dyn Job>>,
    sinks: NoteSinks,
) {
    while let Ok(first) = inbox.recv() {
        let mut written = vec![first];
        written.extend(inbox.try_iter());
        let events: usize = written.iter().map(|w| w.events.len()).sum();
        let started = Instant::now();
        let synced = if !written.iter().any(|w| w.wrote) || shared.stopped().is_some() {
            Ok(())
        } else {
            shared.store.sync()
        };
        if let Err(error) = synced {
            let reason = shared.fail(&LedgerError::from(error));
            for batch in written {
                batch
                    .jobs
                    .into_iter()
                    .for_each(|job| job.finish(Some(&reason)));
            }
            continue;
        }
        if events > 0 {
            shared.metrics.record_commit(events, started.elapsed());
            let mut last_seq = 0;
            let actions = {
                let mut projections = shared.write_projections();
                for event in written.iter().flat_map(|w| &w.events) {
                    projections.apply(event);
                    last_seq = event.seq;
                }
                projections.take_actions()
            };
            shared.durable_seq.store(last_seq, Ordering::Release);
            shared.notify_committed(last_seq);
            if !actions.is_empty() {
                shared.add_follow_ups(actions);
                if let Some(sender) = wake.upgrade() {
                    // A full queue means the writer is busy and will pick the actions up anyway.
                    let _ = sender.try_send(Box::new(WakeJob));
                }
            }
        }
        for batch in written {
            batch.notes.into_iter().for_each(|note| sinks.send(note));
            batch.jobs.into_iter().for_each(|job| job.finish(None));
        }
    }
}
