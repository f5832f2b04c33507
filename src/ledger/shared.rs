//! State shared by the writer, the flusher, the background threads and readers of an open ledger.

use super::StartupCheck;
use crate::error::LedgerError;
use crate::metrics::Metrics;
use crate::projection::rollup_open::OpenHour;
use crate::projection::{PendingAction, Projections};
use crate::store::LogStore;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::sync::watch;

/// State shared by the writer, the flusher and readers.
pub(crate) struct Shared {
    pub store: Arc<dyn LogStore>,
    /// The writer's open hour of usage rollups (empty on a follower, which counts that hour from its events).
    pub open_hour: OpenHour,
    pub(super) projections: RwLock<Projections>,
    /// The last seq that is durable and applied to the projections; readers never look past it.
    pub durable_seq: AtomicU64,
    pub metrics: Metrics,
    pub(super) committed: watch::Sender<u64>,
    /// Set once a write or fsync failed: the ledger then refuses every command (fail-stop).
    pub(super) failed: OnceLock<String>,
    /// Set while the signing key cannot sign: commands are refused until it signs again.
    pub(super) signer_down: Mutex<Option<String>>,
    /// Actions requested by projections, waiting for the writer.
    pub(super) follow_ups: Mutex<Vec<PendingAction>>,
    pub(super) startup_check: Mutex<StartupCheck>,
    /// Set when the ledger closes: background threads stop.
    pub stopping: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub fn read_projections(&self) -> RwLockReadGuard<'_, Projections> {
        // A panic while holding the lock leaves consistent data (apply is infallible); keep serving.
        self.projections
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn write_projections(&self) -> RwLockWriteGuard<'_, Projections> {
        self.projections
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn notify_committed(&self, last_seq: u64) {
        self.committed.send_replace(last_seq);
    }

    /// Why commands are refused now: a failed write or fsync (until reopened), or a key that cannot sign (until
    /// it signs again).
    pub fn failure(&self) -> Option<String> {
        self.stopped().or_else(|| self.signer_down())
    }

    /// Why the ledger stopped for good (a failed write or fsync), if it did.
    pub fn stopped(&self) -> Option<String> {
        self.failed.get().cloned()
    }

    fn signer_down(&self) -> Option<String> {
        self.signer_down
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records that the key cannot sign; returns the reason and whether it was signing until now.
    pub fn set_signer_down(&self, error: &crate::chain::SignError) -> (String, bool) {
        let mut down = self.signer_down.lock().unwrap_or_else(|p| p.into_inner());
        let first = down.is_none();
        let reason = down
            .get_or_insert_with(|| {
                format!("{error}; appends resume when the signing key signs again")
            })
            .clone();
        (reason, first)
    }

    pub fn clear_signer_down(&self) {
        self.signer_down
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    /// Records the first failure and returns the reason every later command is refused with.
    pub fn fail(&self, error: &LedgerError) -> String {
        tracing::error!(error = %error, "the ledger stops accepting commands until reopened");
        self.failed
            .get_or_init(|| {
                format!("{error}; the ledger stopped accepting writes and must be reopened")
            })
            .clone()
    }

    pub fn set_startup_check(&self, check: StartupCheck) {
        *self.startup_check.lock().unwrap_or_else(|p| p.into_inner()) = check;
    }

    pub fn add_follow_ups(&self, actions: Vec<PendingAction>) {
        self.follow_ups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(actions);
    }

    pub fn take_follow_ups(&self) -> Vec<PendingAction> {
        std::mem::take(&mut *self.follow_ups.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
