//! The ledger: opens a data directory's log, replays it into projections (checking the chain), owns the single
//! writer thread, and gives callers a handle to submit commands (submit.rs) and to read durable state.

pub mod archive;
pub mod as_of;
mod backfill;
mod checkpointer;
mod command;
mod follower;
mod job;
mod open_hour;
mod personal_seal;
mod replay;
mod replay_start;
pub mod settings;
mod shared;
mod signer_watch;
pub(crate) mod snapshot;
mod snapshot_check;
mod snapshot_format;
mod startup;
mod submit;
mod usage;
mod witnessing;
mod writer;
mod writer_jobs;

pub use as_of::{keys_as_of, lifecycle_as_of};
pub use checkpointer::SignedCheckpoint;
pub use command::{AppendEvents, Command, PlanContext};
pub use follower::FollowerPosition;
pub use replay::ReplayOutcome;
pub(crate) use replay::{replay_range, Apply};
pub use replay_start::{replay_log, replay_log_with};
pub use settings::LedgerSettings;
pub(crate) use shared::Shared;
pub use startup::{replay_from_snapshot, Startup, StartupCheck};
pub use writer::MAX_BATCH_COMMANDS;

use crate::chain::LedgerSigner;
use crate::clock::SharedClock;
use crate::error::{LedgerError, LedgerResult};
use crate::metrics::Metrics;
use crate::projection::Projections;
use crate::signers::SignerRegistry;
use crate::store::LogStore;
use job::Job;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, watch};
use writer::WriterState;

/// How many commands may wait for the writer before callers are slowed down (backpressure).
const COMMAND_QUEUE: usize = 16 * 1024;

/// A handle on an open ledger. Dropping it stops the writer after the commands already queued.
pub struct Ledger {
    shared: Arc<Shared>,
    commands: Option<mpsc::Sender<Box<dyn Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    signers: SignerRegistry,
    signer_public_hex: String,
    clock: SharedClock,
    snapshotter: Option<Arc<startup::Snapshotter>>,
    opened_from_snapshot: Option<u64>,
    snapshot_refused: Option<String>,
    /// Set on a read-only follower (which has no writer).
    follower: Option<Arc<follower::FollowerStatus>>,
}

impl Ledger {
    /// Opens the log in `store`: replays it (refusing a log whose chain, checkpoints or tail signatures do not
    /// verify) and starts the writer, which signs with `signer`. `signer` must be the ledger's current signer.
    pub fn open(store: Arc<dyn LogStore>, signer: LedgerSigner) -> LedgerResult<Self> {
        Self::open_with(store, vec![signer], LedgerSettings::default())
    }

    /// [`Ledger::open`] with the configuration (anomaly rules, checkpoints, anchor), signing with whichever of
    /// `candidates` is the ledger's current signer (a pending key after an interrupted rotation is a candidate).
    pub fn open_with(
        store: Arc<dyn LogStore>,
        candidates: Vec<LedgerSigner>,
        settings: LedgerSettings,
    ) -> LedgerResult<Self> {
        Self::open_with_clock(store, candidates, settings, crate::clock::system())
    }

    /// [`Ledger::open_with`], taking the time of new events from `clock`.
    pub fn open_with_clock(
        store: Arc<dyn LogStore>,
        candidates: Vec<LedgerSigner>,
        settings: LedgerSettings,
        clock: SharedClock,
    ) -> LedgerResult<Self> {
        Self::open_with_startup(store, candidates, settings, clock, Startup::Full)
    }

    /// [`Ledger::open_with_clock`], building the projections as `startup` says.
    pub fn open_with_startup(
        store: Arc<dyn LogStore>,
        candidates: Vec<LedgerSigner>,
        settings: LedgerSettings,
        clock: SharedClock,
        startup: Startup,
    ) -> LedgerResult<Self> {
        let interval = std::time::Duration::from_secs(settings.checkpoints.interval_secs);
        let snapshot_interval = std::time::Duration::from_secs(settings.snapshots.interval_secs);
        let anchor_config = settings.anchor.clone();
        store.check_writable()?;
        // The open hour's checkpointed cells decode on a second thread while the projections load.
        let (opened, prefetched) = std::thread::scope(|scope| {
            let ahead = scope.spawn(|| open_hour::prefetch(store.as_ref()));
            let opened = startup::open_state(store.as_ref(), &candidates, &settings.rules, startup);
            // A failed read ahead is read again, and its error reported, where the rollups open.
            (opened, ahead.join().ok().and_then(Result::ok).flatten())
        });
        let opened = opened?;
        let replayed = opened.replayed;
        startup::check_anchor(store.as_ref(), &replayed, &anchor_config)?;
        let opened_from_snapshot = opened.from_snapshot;
        let snapshot_refused = opened.snapshot_refused.clone();
        // After the replay, which has checked every record this reads.
        let backfilled = backfill::ensure_attribute_index(store.as_ref())?;
        if backfilled > 0 {
            tracing::info!(
                entries = backfilled,
                "filed the existing events in the attribute index"
            );
        }
        let rollups = open_hour::prepare(store.as_ref(), prefetched)?;
        let signer = match replayed.signers.current() {
            Some(current) => candidates
                .into_iter()
                .find(|candidate| candidate.public_key() == current.key)
                .ok_or_else(|| {
                    LedgerError::Config(format!(
                        "the signing key given is not this ledger's current signer ({})",
                        current.id
                    ))
                })?,
            None => candidates
                .into_iter()
                .next()
                .ok_or_else(|| LedgerError::Config("no signing key was given".into()))?,
        };
        let head = replayed.head;
        let tiles = crate::audit::tiles::Tiles::load(store.as_ref(), replayed.frontier.size())?;
        tiles.check(&replayed.frontier)?;
        let state = WriterState {
            keys: replayed.projections.keys.clone(),
            frontier: replayed.frontier.clone(),
            tiles,
            checkpointer: checkpointer::Checkpointer::new(
                replayed.origin.clone(),
                interval,
                replayed.latest_checkpoint.clone(),
            ),
            next_seq: head.map_or(1, |h| h.seq + 1),
            last_time: head.map_or(crate::time::LedgerTime::MIN, |h| h.time),
            prev_hash: head.map_or(crate::chain::GENESIS_PREV, |h| h.hash),
            clock: clock.clone(),
            rollups,
            vault: settings
                .personal_vault
                .as_ref()
                .map(|dir| Arc::new(crate::personal::vault::Vault::new(dir))),
        };
        let durable = head.map_or(0, |h| h.seq);
        let (committed, _) = watch::channel(durable);
        let mut projections = replayed.projections;
        let leftover_actions = writer_jobs::late_findings(projections.take_actions(), head);
        let shared = Arc::new(Shared {
            store,
            open_hour: state.rollups.shared(),
            projections: RwLock::new(projections),
            durable_seq: AtomicU64::new(durable),
            metrics: Metrics::default(),
            committed,
            failed: OnceLock::new(),
            signer_down: Mutex::new(None),
            follow_ups: Mutex::new(leftover_actions),
            startup_check: Mutex::new(StartupCheck::Passed),
            stopping: std::sync::atomic::AtomicBool::new(false),
        });
        let snapshotter = Arc::new(startup::Snapshotter {
            signer: signer.duplicate(),
            signers: replayed.signers.clone(),
            origin: replayed.origin.clone(),
            opened_next_seq: durable + 1,
        });
        let (sender, receiver) = mpsc::channel(COMMAND_QUEUE);
        let signer_public_hex = signer.public_key_hex();
        let start = |e| LedgerError::io("starting the writer threads", e);
        let anchor = crate::audit::anchor::AnchorSink::start(
            &anchor_config,
            shared.metrics.anchor_failures.clone(),
        )
        .map_err(start)?;
        let (anchor, anchor_thread) = match anchor {
            Some((sink, thread)) => (Some(sink), Some(thread)),
            None => (None, None),
        };
        let witnesses = witnessing::WitnessSink::start(
            &settings.witnesses,
            &settings.witness_policy,
            shared.clone(),
        )?;
        let (witnesses, witness_thread) = match witnesses {
            Some((sink, thread)) => (Some(sink), Some(thread)),
            None => (None, None),
        };
        let sinks = writer::NoteSinks { anchor, witnesses };
        let mut threads = writer::spawn(
            shared.clone(),
            signer,
            state,
            receiver,
            sender.downgrade(),
            sinks,
        )
        .map_err(start)?;
        threads.extend(anchor_thread);
        threads.extend(witness_thread);
        if let Some((head, root)) = opened.unchecked_prefix {
            threads.push(startup::spawn_prefix_check(shared.clone(), head, root).map_err(start)?);
        }
        threads.push(
            startup::spawn_snapshots(shared.clone(), snapshotter.clone(), snapshot_interval)
                .map_err(start)?,
        );
        if !shared
            .follow_ups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
        {
            // Actions requested before a restart but never recorded: wake the writer to record them now.
            let _ = sender.try_send(Box::new(writer_jobs::WakeJob));
        }
        Ok(Self {
            shared,
            commands: Some(sender),
            threads: Mutex::new(threads),
            signers: replayed.signers,
            signer_public_hex,
            clock,
            snapshotter: Some(snapshotter),
            opened_from_snapshot,
            snapshot_refused,
            follower: None,
        })
    }

    /// Persists the projections now (see ledger::snapshot); returns the seq covered, or `None` when nothing
    /// needed writing.
    pub fn write_snapshot(&self) -> LedgerResult<Option<u64>> {
        match &self.snapshotter {
            Some(snapshotter) => snapshotter.write(&self.shared),
            None => Ok(None),
        }
    }

    /// The seq of the snapshot this ledger started from (`None` after a full replay).
    pub fn opened_from_snapshot(&self) -> Option<u64> {
        self.opened_from_snapshot
    }

    /// Why the stored projection snapshot was not used at open (a full replay followed), if there was one.
    pub fn snapshot_refused(&self) -> Option<&str> {
        self.snapshot_refused.as_deref()
    }

    /// Where the check of the events before the snapshot the ledger opened from stands.
    pub fn startup_check(&self) -> StartupCheck {
        self.shared
            .startup_check
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops the ledger because a read found that the stored log cannot be trusted (a record that does not
    /// match its hash or chain link): every later command is refused and health checks fail until it is reopened.
    pub fn stop_untrusted(&self, reason: &str) {
        self.shared.fail(&LedgerError::Config(format!(
            "a read found the stored log changed: {reason}"
        )));
    }

    pub fn store(&self) -> &Arc<dyn LogStore> {
        &self.shared.store
    }

    /// The projections as of the last durable event.
    pub fn projections(&self) -> RwLockReadGuard<'_, Projections> {
        self.shared.read_projections()
    }

    /// Why the ledger stopped accepting writes, if it did.
    pub fn failure(&self) -> Option<String> {
        self.shared.failure()
    }

    /// The last durable seq (0 for an empty log).
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable_seq.load(Ordering::Acquire)
    }

    /// A receiver that changes whenever a batch becomes durable (its value is the new last seq).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.committed.subscribe()
    }

    /// The current time by the ledger's clock: what status, expiry and overlap are judged against.
    pub fn now(&self) -> crate::time::LedgerTime {
        self.clock.now()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Signers as known when the ledger was opened.
    pub fn signers(&self) -> &SignerRegistry {
        &self.signers
    }

    pub fn signer_public_hex(&self) -> &str {
        &self.signer_public_hex
    }

    /// Stops accepting commands, lets the writer finish what is queued and waits for it.
    pub fn close(&mut self) {
        self.commands.take();
        self.shared.stopping.store(true, Ordering::Relaxed);
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for handle in threads {
            handle.thread().unpark();
            // A panicked thread has nothing left to flush; its panic was already reported.
            let _ = handle.join();
        }
        // The next start replays only what comes after this.
        if let Some(snapshotter) = self.snapshotter.take() {
            if let Err(error) = snapshotter.write(&self.shared) {
                tracing::warn!(error = %error, "could not persist a projection snapshot at shutdown");
            }
        }
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.close();
    }
}
