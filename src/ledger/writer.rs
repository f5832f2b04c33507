//! The single writer: drains commands into a batch, plans their events, signs them, writes the batch atomically
//! and durably, then publishes it to the projections and answers every caller of the batch.

use super::command::{Command, PlanContext, StagedEvent};
use super::Shared;
use crate::chain::{Hash32, LedgerSigner};
use crate::error::{LedgerError, LedgerResult};
use crate::event::{Actor, EventData, KeySuspended};
use crate::projection::{KeyState, KeyStatus, PendingAction};
use crate::store::{AppendBatch, StoredRecord};
use crate::time::LedgerTime;
use rayon::prelude::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most commands in one group commit.
pub const MAX_BATCH_COMMANDS: usize = 1024;
/// Sparse time index stride: an entry for the first event of a batch and every this-many events after.
const TIME_INDEX_STRIDE: usize = 64;
/// Below this many events a batch is signed on the writer thread; above, on both cores.
const PARALLEL_SIGN_MIN: usize = 32;

/// A command with its reply channel, type-erased so one channel carries every command type.
pub(crate) trait Job: Send {
    /// Plans the command; returns whether it emitted events.
    fn plan(&mut self, ctx: &mut PlanContext<'_>) -> bool;
    /// Answers the caller: `write_error` is set when the batch could not be made durable.
    fn finish(self: Box<Self>, write_error: Option<&str>);
}

pub(crate) struct PendingCommand<C: Command> {
    pub command: C,
    pub planned: Option<LedgerResult<C::Output>>,
    pub emitted: bool,
    pub reply: oneshot::Sender<LedgerResult<C::Output>>,
}

impl<C: Command> Job for PendingCommand<C> {
    fn plan(&mut self, ctx: &mut PlanContext<'_>) -> bool {
        let before = ctx.staged.len();
        self.planned = Some(self.command.plan(ctx));
        self.emitted = ctx.staged.len() > before;
        self.emitted
    }

    fn finish(self: Box<Self>, write_error: Option<&str>) {
        let answer = match (write_error, self.emitted) {
            (Some(message), true) => Err(LedgerError::WriteFailed(message.to_string())),
            _ => self.planned.unwrap_or(Err(LedgerError::WriterStopped)),
        };
        // A caller that stopped waiting is not an error for the ledger.
        let _ = self.reply.send(answer);
    }
}

/// The writer's own view of the tail and of key state (ahead of the published state by the batch in flight).
pub(crate) struct WriterState {
    pub keys: KeyState,
    pub next_seq: u64,
    pub last_time: LedgerTime,
    pub prev_hash: Hash32,
}

pub(crate) fn run(
    shared: Arc<Shared>,
    signer: Arc<LedgerSigner>,
    mut state: WriterState,
    mut commands: mpsc::Receiver<Box<dyn Job>>,
) {
    let mut jobs: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH_COMMANDS);
    let mut staged: Vec<StagedEvent> = Vec::new();
    // Actions left over from replay (requested but never recorded) run first.
    let mut follow_ups: Vec<Box<dyn Job>> = action_jobs(&shared);
    loop {
        if follow_ups.is_empty() {
            match commands.blocking_recv() {
                Some(first) => jobs.push(first),
                None => break,
            }
        } else {
            jobs.append(&mut follow_ups);
        }
        while jobs.len() < MAX_BATCH_COMMANDS {
            match commands.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let tail_before = (state.next_seq, state.last_time, state.prev_hash);
        {
            let mut ctx = PlanContext {
                state: &mut state.keys,
                staged: &mut staged,
                next_seq: state.next_seq,
                last_time: state.last_time,
                prev_hash: state.prev_hash,
            };
            for job in jobs.iter_mut() {
                job.plan(&mut ctx);
            }
            state.next_seq = ctx.next_seq;
            state.last_time = ctx.last_time;
            state.prev_hash = ctx.prev_hash;
        }
        let write_error = if staged.is_empty() {
            None
        } else {
            commit(&shared, &signer, &staged).err()
        };
        if let Some(error) = &write_error {
            tracing::error!(error = %error, "group commit failed; the batch was not recorded");
            // Roll the writer back to the last durable state.
            (state.next_seq, state.last_time, state.prev_hash) = tail_before;
            state.keys = shared.read_projections().keys.clone();
        }
        let message = write_error.map(|e| e.to_string());
        for job in jobs.drain(..) {
            job.finish(message.as_deref());
        }
        if message.is_none() && !staged.is_empty() {
            follow_ups = action_jobs(&shared);
        }
        staged.clear();
    }
}

fn action_jobs(shared: &Shared) -> Vec<Box<dyn Job>> {
    shared
        .write_projections()
        .take_actions()
        .into_iter()
        .map(|action| {
            let (reply, _) = tokio::sync::oneshot::channel();
            Box::new(PendingCommand {
                command: RecordAction(action),
                planned: None,
                emitted: false,
                reply,
            }) as Box<dyn Job>
        })
        .collect()
}

/// Records an action a projection asked for: `anomaly.detected`, then the suspension if the key is still active.
struct RecordAction(PendingAction);

impl Command for RecordAction {
    type Output = ();

    fn plan(&mut self, ctx: &mut PlanContext<'_>) -> LedgerResult<()> {
        let now = ctx.now();
        let action = &self.0;
        let suspend = action
            .suspend_for_secs
            .zip(action.anomaly.key_id)
            .filter(|(_, key_id)| {
                ctx.state()
                    .get(key_id)
                    .is_some_and(|key| key.status_at(now) == KeyStatus::Active)
            });
        ctx.emit(
            Actor::System,
            None,
            EventData::AnomalyDetected(action.anomaly.clone()),
        )?;
        if let Some((secs, key_id)) = suspend {
            let data = EventData::KeySuspended(KeySuspended {
                key_id,
                reason: Some(format!(
                    "anomaly {} ({})",
                    action.anomaly.anomaly_id, action.anomaly.rule
                )),
                until: Some(now.plus_secs(i64::from(secs))),
            });
            ctx.emit(Actor::System, None, data)?;
        }
        Ok(())
    }
}

fn commit(shared: &Shared, signer: &LedgerSigner, staged: &[StagedEvent]) -> LedgerResult<()> {
    let sign = |item: &StagedEvent| StoredRecord {
        seq: item.event.seq,
        time: item.event.time,
        hash: item.hash,
        signature: signer.sign_hash(&item.hash),
        signer: signer.id(),
        body: item.body.clone(),
    };
    let records: Vec<StoredRecord> = if staged.len() >= PARALLEL_SIGN_MIN {
        staged.par_iter().map(sign).collect()
    } else {
        staged.iter().map(sign).collect()
    };
    let mut batch = AppendBatch {
        records,
        ..Default::default()
    };
    for (position, item) in staged.iter().enumerate() {
        let event = &item.event;
        if position % TIME_INDEX_STRIDE == 0 {
            batch.time_index.push((event.time, event.seq));
        }
        for key in event.data.key_ids().into_iter().flatten() {
            batch.key_index.push((key, event.seq));
        }
        if let EventData::SignerRotated(rotation) = &event.data {
            batch.side.push((
                super::signer_side_key(event.seq),
                rotation.new_public_key.clone().into_bytes(),
            ));
        }
    }
    let started = std::time::Instant::now();
    shared.store.append(&batch)?;
    shared
        .metrics
        .record_commit(staged.len(), started.elapsed());
    let last_seq = batch.records.last().map_or(0, |r| r.seq);
    {
        let mut projections = shared.write_projections();
        for item in staged {
            projections.apply(&item.event);
        }
    }
    shared.durable_seq.store(last_seq, Ordering::Release);
    shared.notify_committed(staged);
    Ok(())
}
