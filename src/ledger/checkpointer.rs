//! When the writer signs checkpoints: every 1,024 events, at least every `checkpoints.interval_secs` while events
//! arrive, when asked (`audit checkpoint`, the API, exports) and at clean shutdown — always in the batch it
//! covers, so a stored checkpoint is never ahead of the durable log. Checkpoints at multiples of 1,024 are kept
//! as a series; of the others only the newest is kept, so the stored set grows with the log / 1,024 and no faster.

use crate::audit::checkpoint::{checkpoint_key, Checkpoint, CHECKPOINT_EVERY};
use crate::audit::tree::Frontier;
use crate::chain::{LedgerSigner, SignError};
use crate::store::AppendBatch;
use std::time::{Duration, Instant};

/// A signed checkpoint and its note.
pub type SignedCheckpoint = (Checkpoint, String);

pub(crate) struct Checkpointer {
    pub origin: Option<String>,
    interval: Duration,
    last_at: Instant,
    latest: Option<SignedCheckpoint>,
    /// The stored checkpoint that is not a multiple of 1,024, if any (replaced by the next such one).
    loose: Option<u64>,
}

impl Checkpointer {
    pub fn new(
        origin: Option<String>,
        interval: Duration,
        latest: Option<SignedCheckpoint>,
    ) -> Self {
        let loose = latest
            .as_ref()
            .map(|(c, _)| c.size)
            .filter(|size| size % CHECKPOINT_EVERY != 0);
        Self {
            origin,
            interval,
            last_at: Instant::now(),
            latest,
            loose,
        }
    }

    pub fn latest_size(&self) -> u64 {
        self.latest.as_ref().map_or(0, |(c, _)| c.size)
    }

    pub fn latest(&self) -> Option<&SignedCheckpoint> {
        self.latest.as_ref()
    }

    /// Called after each leaf is pushed: a checkpoint at every multiple of 1,024.
    pub fn after_leaf(
        &mut self,
        frontier: &Frontier,
        signer: &LedgerSigner,
        batch: &mut AppendBatch,
        notes: &mut Vec<String>,
    ) -> Result<(), SignError> {
        if frontier.size() % CHECKPOINT_EVERY == 0 {
            self.sign_into(frontier, signer, batch, notes)?;
        }
        Ok(())
    }

    /// Called at the end of a batch: a checkpoint when one is asked for or the interval has passed, unless the
    /// newest one already covers the tree.
    pub fn at_batch_end(
        &mut self,
        frontier: &Frontier,
        signer: &LedgerSigner,
        batch: &mut AppendBatch,
        notes: &mut Vec<String>,
        forced: bool,
    ) -> Result<(), SignError> {
        let behind = frontier.size() > self.latest_size();
        if behind && (forced || self.last_at.elapsed() >= self.interval) {
            self.sign_into(frontier, signer, batch, notes)?;
        }
        Ok(())
    }

    fn sign_into(
        &mut self,
        frontier: &Frontier,
        signer: &LedgerSigner,
        batch: &mut AppendBatch,
        notes: &mut Vec<String>,
    ) -> Result<(), SignError> {
        let Some(origin) = &self.origin else {
            return Ok(());
        };
        let checkpoint = Checkpoint {
            origin: origin.clone(),
            size: frontier.size(),
            root: frontier.root(),
        };
        let note = checkpoint.sign(signer)?;
        if let Some(old) = self.loose.take() {
            batch.side_removals.push(checkpoint_key(old));
        }
        if checkpoint.size % CHECKPOINT_EVERY != 0 {
            self.loose = Some(checkpoint.size);
        }
        batch
            .side
            .push((checkpoint_key(checkpoint.size), note.clone().into_bytes()));
        notes.push(note.clone());
        self.last_at = Instant::now();
        self.latest = Some((checkpoint, note));
        Ok(())
    }
}
