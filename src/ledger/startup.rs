//! How a ledger gets its state when it opens (a full replay, or a snapshot plus the tail with the prefix checked
//! in the background), and the thread that keeps persisting snapshots while it runs.

use super::replay::replay_from;
use super::snapshot;
use super::{replay_log_with, ReplayOutcome, Shared};
use crate::audit::anchor::AnchorConfig;
use crate::chain::LedgerSigner;
use crate::error::{LedgerError, LedgerResult};
use crate::projection::AnalysisRules;
use crate::signers::SignerRegistry;
use crate::store::{Head, LogStore};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How an opening ledger builds its projections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Startup {
    /// Replay and check every event before answering anyone (CLI commands, `replay`).
    #[default]
    Full,
    /// Load the persisted snapshot, replay and check only the events after it, and check the events before it in
    /// the background; a problem found there stops the ledger (fail-stop). Falls back to `Full` when no usable
    /// snapshot is stored. What `serve` uses: start-up costs O(keys + tail), not O(events).
    Snapshot,
}

/// Where the background check of a snapshot's prefix stands (reported by `/healthz`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartupCheck {
    /// Every event was checked before the ledger opened, or the background check finished.
    Passed,
    /// Events up to `upto` (the snapshot's) are being checked in the background.
    Running { upto: u64 },
    /// The background check found a problem; the ledger stopped accepting writes.
    Failed(String),
}

/// The replayed state, and the prefix still to check when it came from a snapshot.
pub(crate) struct Opened {
    pub replayed: ReplayOutcome,
    pub unchecked_prefix: Option<(Head, crate::chain::Hash32)>,
    /// The seq of the snapshot the state was loaded from (`None` after a full replay).
    pub from_snapshot: Option<u64>,
    /// Why the stored snapshot was not used, when there was one to consider.
    pub snapshot_refused: Option<String>,
}

pub(crate) fn open_state(
    store: &dyn LogStore,
    candidates: &[LedgerSigner],
    rules: &AnalysisRules,
    startup: Startup,
) -> LedgerResult<Opened> {
    let mut refused = None;
    if startup == Startup::Snapshot {
        match snapshot::load(store, snapshot::SERVING, &public_keys(candidates), rules)? {
            Ok(loaded) if loaded.head.seq < crate::store::archived_size(store)? => {
                tracing::info!(
                    "the projection snapshot predates the archived prefix; replaying from its base"
                );
            }
            Ok(loaded) => {
                tracing::info!(
                    seq = loaded.head.seq,
                    "opening from the projection snapshot; replaying only the events after it"
                );
                let replayed = replay_from(store, None, None, loaded.resume)?;
                return Ok(Opened {
                    replayed,
                    unchecked_prefix: Some((loaded.head, loaded.root)),
                    from_snapshot: Some(loaded.head.seq),
                    snapshot_refused: None,
                });
            }
            Err(why) => {
                tracing::info!(reason = %why, "replaying the whole log");
                refused = Some(why);
            }
        }
    }
    let replayed = replay_log_with(store, None, None, rules.clone())?;
    // The replay checked the signatures after the newest checkpoint only (the ones before are covered by its
    // signed root); a server also checks those in the background, so a damaged signature is found at start.
    let unchecked_prefix = match (startup, replayed.head) {
        (Startup::Snapshot, Some(head)) => Some((head, replayed.frontier.root())),
        _ => None,
    };
    Ok(Opened {
        replayed,
        unchecked_prefix,
        from_snapshot: None,
        snapshot_refused: refused,
    })
}

/// Refuses to write to a log that is behind, or not consistent with, the newest checkpoint kept in its anchor
/// (a restored backup that lost anchored events must not regrow over them). With only `anchor.command` set the
/// writer cannot read the anchor back and checks the stored checkpoints alone (it says so in the log).
pub(crate) fn check_anchor(
    store: &dyn LogStore,
    replayed: &ReplayOutcome,
    config: &AnchorConfig,
) -> LedgerResult<()> {
    let kept = match config.read_kept() {
        Ok(Some(kept)) => kept,
        Ok(None) => {
            if config.command.is_some() {
                tracing::warn!("anchor.command is set without anchor.read_command or anchor.file: the writer cannot read the anchor back to check this log against it");
            }
            return Ok(());
        }
        Err(why) => {
            return Err(LedgerError::Config(format!(
                "could not read the anchor back to check the log against it: {why}"
            )))
        }
    };
    let Some(origin) = replayed.origin.as_deref() else {
        return Ok(());
    };
    let held = replayed.head.map_or(0, |h| h.seq);
    let checked = crate::audit::anchor_check::check_writer_against(
        store,
        replayed.signers.entries(),
        origin,
        &kept,
        held,
    )?;
    if let Some(size) = checked {
        tracing::info!(
            kept = size,
            held,
            "the log holds the newest anchored checkpoint"
        );
    }
    Ok(())
}

/// The state a [`Startup::Snapshot`] open builds (the stored snapshot plus the events after it), without
/// opening a writer; `Err(reason)` inside when no usable snapshot is stored. For comparing it with a full replay.
pub fn replay_from_snapshot(
    store: &dyn LogStore,
    signers: &[LedgerSigner],
    rules: &AnalysisRules,
) -> LedgerResult<Result<ReplayOutcome, String>> {
    Ok(
        match snapshot::load(store, snapshot::SERVING, &public_keys(signers), rules)? {
            Ok(loaded) => Ok(replay_from(store, None, None, loaded.resume)?),
            Err(why) => Err(why),
        },
    )
}

fn public_keys(signers: &[LedgerSigner]) -> Vec<ed25519_dalek::VerifyingKey> {
    signers.iter().map(LedgerSigner::public_key).collect()
}

/// Checks the snapshot's prefix on a thread of its own; a problem stops the ledger.
pub(crate) fn spawn_prefix_check(
    shared: Arc<Shared>,
    head: Head,
    root: crate::chain::Hash32,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    shared.set_startup_check(StartupCheck::Running { upto: head.seq });
    std::thread::Builder::new()
        .name("keyledger-startup-check".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            match super::snapshot_check::check_prefix(
                shared.store.as_ref(),
                head,
                root,
                &shared.stopping,
            ) {
                Ok(true) => {
                    tracing::info!(
                        events = head.seq,
                        secs = started.elapsed().as_secs_f64(),
                        "the events before the projection snapshot verify"
                    );
                    shared.set_startup_check(StartupCheck::Passed);
                }
                Ok(false) => {}
                Err(error) => {
                    let reason = shared.fail(&error);
                    shared.set_startup_check(StartupCheck::Failed(reason));
                }
            }
        })
}

/// What persisting a snapshot needs besides the projections.
pub(crate) struct Snapshotter {
    pub signer: LedgerSigner,
    pub signers: SignerRegistry,
    pub origin: Option<String>,
    /// The first seq this ledger wrote: a signer rotation at or after it retires `signer`.
    pub opened_next_seq: u64,
}

impl Snapshotter {
    /// Persists the current projections unless nothing changed since the stored snapshot, the ledger failed, or
    /// the signer was rotated while open (the next open, with the new key, writes one).
    pub fn write(&self, shared: &Shared) -> LedgerResult<Option<u64>> {
        if shared.failure().is_some() || self.signer_rotated(shared.store.as_ref())? {
            return Ok(None);
        }
        let durable = shared.durable_seq.load(Ordering::Acquire);
        if durable == 0
            || durable <= snapshot::stored_seq(shared.store.as_ref(), snapshot::SERVING)?
        {
            return Ok(None);
        }
        let (signers, origin) = match self.signers.current() {
            Some(_) => (self.signers.clone(), self.origin.clone()),
            None => from_genesis(shared.store.as_ref())?,
        };
        // A clone under the read lock (O(keys)), serialised after it is released.
        let projections = shared.read_projections().clone();
        snapshot::write(
            shared.store.as_ref(),
            snapshot::SERVING,
            &self.signer,
            &signers,
            origin,
            &projections,
        )
    }

    fn signer_rotated(&self, store: &dyn LogStore) -> LedgerResult<bool> {
        Ok(crate::audit::rotations::rotation_seqs(store)?
            .iter()
            .any(|seq| *seq >= self.opened_next_seq))
    }
}

/// The first signer and the origin, from the genesis event (for a ledger opened on an empty log).
fn from_genesis(store: &dyn LogStore) -> LedgerResult<(SignerRegistry, Option<String>)> {
    let mut signers = SignerRegistry::default();
    let mut origin = None;
    if let Some(record) = store.get(1)? {
        let event = crate::event::Event::decode(&record.body)
            .map_err(|source| crate::error::LedgerError::Decode { seq: 1, source })?;
        signers
            .observe(&event)
            .map_err(|e| crate::error::LedgerError::Corrupt {
                seq: 1,
                problem: e.to_string(),
            })?;
        if let crate::event::EventData::LedgerInitialized(init) = &event.data {
            origin = Some(init.origin.clone());
        }
    }
    Ok((signers, origin))
}

/// Writes a snapshot every `interval` while the ledger runs.
pub(crate) fn spawn_snapshots(
    shared: Arc<Shared>,
    snapshotter: Arc<Snapshotter>,
    interval: Duration,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("keyledger-snapshots".into())
        .spawn(move || loop {
            let deadline = std::time::Instant::now() + interval;
            while std::time::Instant::now() < deadline {
                if shared.stopping.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::park_timeout(Duration::from_millis(200).min(interval));
            }
            match snapshotter.write(&shared) {
                Ok(Some(seq)) => tracing::debug!(seq, "persisted a projection snapshot"),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(error = %error, "could not persist a projection snapshot")
                }
            }
        })
}
