//! A read-only follower (`serve --follower`): opens a log another process writes (PostgreSQL), then follows it —
//! woken by the store's change feed or a poll — checking every new record's chain link, signer and signature
//! before applying it to the projections it serves. It never writes: no writer, no snapshots, no follow-up
//! actions (the leader records those).

use super::replay::{check_tail_signatures, replay_range, Apply, Resume};
use super::{snapshot, ReplayOutcome, Shared};
use crate::chain::verify_hash_signature;
use crate::error::{LedgerError, LedgerResult};
use crate::projection::AnalysisRules;
use crate::store::{Head, LogStore};
use crate::time::LedgerTime;
use ed25519_dalek::VerifyingKey;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

/// How long a follower waits for a change notice before reading the head anyway.
const POLL: Duration = Duration::from_millis(500);

/// Where a follower stands, for `/healthz` and the lag figures.
#[derive(Default)]
pub struct FollowerStatus {
    /// The writer's head seq at the follower's last look.
    leader_seq: AtomicU64,
    /// The time (µs since the epoch) of the oldest event the follower has seen stored but not yet applied; 0
    /// when caught up.
    behind_since_micros: AtomicU64,
    /// The newest stored checkpoint the follower has checked (what its proofs and exports are cut at).
    latest_checkpoint: std::sync::Mutex<Option<super::SignedCheckpoint>>,
    /// The writer's advertised address, as last read.
    leader: std::sync::Mutex<Option<String>>,
}

/// A follower's position, as `/healthz` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerPosition {
    pub applied_seq: u64,
    pub leader_seq: u64,
    /// How far the follower's view trails the event it has yet to apply (0 when caught up).
    pub lag: Duration,
}

impl FollowerStatus {
    pub(crate) fn latest_checkpoint(&self) -> Option<super::SignedCheckpoint> {
        self.latest_checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn leader(&self) -> Option<String> {
        self.leader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn refresh_leader(&self, store: &dyn LogStore) {
        match store.advertised_writer() {
            Ok(address) => *self.leader.lock().unwrap_or_else(|p| p.into_inner()) = address,
            Err(error) => tracing::warn!(%error, "could not read the writer's advertised address"),
        }
    }

    fn set_latest_checkpoint(&self, checkpoint: Option<super::SignedCheckpoint>) {
        *self
            .latest_checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = checkpoint;
    }

    fn position(&self, applied_seq: u64, now: LedgerTime) -> FollowerPosition {
        let since = self.behind_since_micros.load(Ordering::Acquire);
        let lag = if since == 0 {
            Duration::ZERO
        } else {
            Duration::from_micros(now.as_micros().saturating_sub(since as i64) as u64)
        };
        FollowerPosition {
            applied_seq,
            leader_seq: self.leader_seq.load(Ordering::Acquire).max(applied_seq),
            lag,
        }
    }
}

/// The replayed state a follower starts from: the stored snapshot (checked with `keys`) plus the events after
/// it, or the whole log; always up to one head read once, so a writer appending meanwhile cannot confuse it.
pub(crate) fn open_state(
    store: &dyn LogStore,
    keys: &[VerifyingKey],
    rules: &AnalysisRules,
) -> LedgerResult<(ReplayOutcome, Option<(Head, crate::chain::Hash32)>)> {
    let end = store.head()?.map_or(1, |h| h.seq + 1);
    let (start, prefix) = match snapshot::load(store, snapshot::SERVING, keys, rules)? {
        Ok(loaded) if loaded.head.seq >= crate::store::archived_size(store)? => {
            (loaded.resume, Some((loaded.head, loaded.root)))
        }
        _ => (
            super::replay_start::replay_start(store, rules.clone())?,
            None,
        ),
    };
    let (outcome, _) = replay_range(store, start, end, Apply::Projections, None, None)?;
    check_tail_signatures(store, &outcome)?;
    Ok((outcome, prefix))
}

/// Starts the thread that keeps `shared`'s projections current with the log. `chain` is the replayed state
/// (its projections are already in `shared`).
pub(crate) fn spawn(
    shared: Arc<Shared>,
    status: Arc<FollowerStatus>,
    chain: ReplayOutcome,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("keyledger-follower".into())
        .spawn(move || {
            status.set_latest_checkpoint(chain.latest_checkpoint.clone());
            follow(&shared, &status, chain)
        })
}

fn follow(shared: &Shared, status: &FollowerStatus, mut chain: ReplayOutcome) {
    while !shared.stopping.load(Ordering::Relaxed) {
        status.refresh_leader(shared.store.as_ref());
        // Cheap: a follower's chain state holds no projections (those are in `shared`).
        let before = chain.clone();
        match catch_up(shared, status, chain) {
            Ok(next) => chain = next,
            Err(error) => {
                // A record that does not check out is fail-stop, as for the writer; a lost connection is retried.
                if error.is_integrity_failure() {
                    shared.fail(&error);
                    return;
                }
                tracing::warn!(%error, "following the log failed; retrying");
                std::thread::sleep(POLL);
                match resume_after_failure(shared, before) {
                    Some(resumed) => chain = resumed,
                    None => return,
                }
                continue;
            }
        }
        if let Err(error) = shared.store.wait_for_appends(POLL) {
            tracing::warn!(%error, "waiting for the writer's notices failed; polling");
            std::thread::sleep(POLL);
        }
    }
}

/// After a failed catch-up the chain state it took was consumed, though some of its events may already be
/// applied (the projections only ever receive checked events): catch the state taken `before` it up to the
/// projections' position by a chain-only replay of just those events.
fn resume_after_failure(shared: &Shared, before: ReplayOutcome) -> Option<ReplayOutcome> {
    let applied = shared.durable_seq.load(Ordering::Acquire);
    let prev = before.head.map_or(crate::chain::GENESIS_PREV, |h| h.hash);
    let resume = Resume {
        outcome: before,
        prev,
    };
    match replay_range(
        shared.store.as_ref(),
        resume,
        applied + 1,
        Apply::ChainOnly,
        None,
        Some(&shared.stopping),
    ) {
        Ok((outcome, _)) => Some(outcome),
        Err(error) => {
            tracing::warn!(%error, "could not resume following the log");
            None
        }
    }
}

/// Applies every record stored after `chain`'s head, checking each; returns the new chain state.
fn catch_up(
    shared: &Shared,
    status: &FollowerStatus,
    chain: ReplayOutcome,
) -> LedgerResult<ReplayOutcome> {
    let Some(head) = shared.store.head()? else {
        return Ok(chain);
    };
    status.leader_seq.store(head.seq, Ordering::Release);
    let applied = chain.head.map_or(0, |h| h.seq);
    if head.seq <= applied {
        status.behind_since_micros.store(0, Ordering::Release);
        return Ok(chain);
    }
    if status.behind_since_micros.load(Ordering::Acquire) == 0 {
        if let Some(next) = shared.store.get(applied + 1)? {
            status
                .behind_since_micros
                .store(next.time.as_micros().max(1) as u64, Ordering::Release);
        }
    }
    let prev = chain.head.map_or(crate::chain::GENESIS_PREV, |h| h.hash);
    let mut visit = |record: &crate::store::StoredRecord,
                     event: &crate::event::Event,
                     signers: &crate::signers::SignerRegistry| {
        let signed = signers
            .signer_for(record.seq)
            .is_some_and(|s| verify_hash_signature(&s.key, &record.hash, &record.signature));
        if !signed {
            return Err(LedgerError::Corrupt {
                seq: record.seq,
                problem: "signature does not verify".into(),
            });
        }
        let mut projections = shared.write_projections();
        projections.apply(event);
        // The leader records the actions projections ask for; a follower only shows their outcome.
        drop(projections.take_actions());
        drop(projections);
        shared.durable_seq.store(record.seq, Ordering::Release);
        status
            .behind_since_micros
            .store(record.time.as_micros().max(1) as u64, Ordering::Release);
        Ok(())
    };
    let resume = Resume {
        outcome: chain,
        prev,
    };
    let (outcome, _) = replay_range(
        shared.store.as_ref(),
        resume,
        head.seq + 1,
        Apply::Visit(&mut visit),
        None,
        Some(&shared.stopping),
    )?;
    let reached = outcome.head.map_or(0, |h| h.seq);
    if reached >= head.seq {
        status.behind_since_micros.store(0, Ordering::Release);
    }
    status.set_latest_checkpoint(outcome.latest_checkpoint.clone());
    shared.notify_committed(reached);
    Ok(outcome)
}

/// The follower's position as of `now`.
pub(crate) fn position(
    shared: &Shared,
    status: &FollowerStatus,
    now: LedgerTime,
) -> FollowerPosition {
    status.position(shared.durable_seq.load(Ordering::Acquire), now)
}

impl super::Ledger {
    /// Opens a log another process writes, read-only: replays it (checking every record, the snapshot with
    /// `keys`), then follows the writer's appends on a thread of its own. Commands are refused with
    /// [`LedgerError::ReadOnly`] naming the writer's advertised address.
    pub fn open_follower(
        store: Arc<dyn LogStore>,
        keys: Vec<ed25519_dalek::VerifyingKey>,
        rules: AnalysisRules,
        clock: crate::clock::SharedClock,
    ) -> LedgerResult<Self> {
        let (mut chain, unchecked_prefix) = open_state(store.as_ref(), &keys, &rules)?;
        let durable = chain.head.map_or(0, |h| h.seq);
        let mut projections = std::mem::replace(
            &mut chain.projections,
            crate::projection::Projections::new(rules),
        );
        drop(projections.take_actions());
        let (committed, _) = tokio::sync::watch::channel(durable);
        let shared = Arc::new(Shared {
            store,
            open_hour: Default::default(),
            projections: RwLock::new(projections),
            durable_seq: AtomicU64::new(durable),
            metrics: crate::metrics::Metrics::default(),
            committed,
            failed: OnceLock::new(),
            signer_down: Mutex::new(None),
            follow_ups: Mutex::new(Vec::new()),
            startup_check: Mutex::new(super::StartupCheck::Passed),
            stopping: std::sync::atomic::AtomicBool::new(false),
        });
        let status = Arc::new(FollowerStatus::default());
        let signers = chain.signers.clone();
        let start = |e| LedgerError::io("starting the follower threads", e);
        let mut threads = vec![spawn(shared.clone(), status.clone(), chain).map_err(start)?];
        if let Some((head, root)) = unchecked_prefix {
            threads.push(
                super::startup::spawn_prefix_check(shared.clone(), head, root).map_err(start)?,
            );
        }
        Ok(Self {
            shared,
            commands: None,
            threads: Mutex::new(threads),
            signer_public_hex: signers
                .current()
                .map_or_else(String::new, |s| hex::encode(s.key.as_bytes())),
            signers,
            clock,
            snapshotter: None,
            opened_from_snapshot: None,
            snapshot_refused: None,
            follower: Some(status),
        })
    }

    /// Where a follower stands (`None` for the writer).
    pub fn follower_position(&self) -> Option<FollowerPosition> {
        let status = self.follower.as_ref()?;
        Some(position(&self.shared, status, self.clock.now()))
    }

    /// The address the writer advertises (`serve --advertise`), as the store records it.
    pub fn leader_address(&self) -> Option<String> {
        if let Some(status) = &self.follower {
            return status.leader();
        }
        match self.shared.store.advertised_writer() {
            Ok(address) => address,
            Err(error) => {
                tracing::warn!(%error, "could not read the writer's advertised address");
                None
            }
        }
    }

    /// The refusal a follower answers a command with.
    pub(super) fn read_only(&self) -> LedgerError {
        LedgerError::ReadOnly {
            leader: self.leader_address(),
        }
    }
}
