//! Projections: caches of the log, pure functions of its events (time comes from the events, never the clock).
//! The writer keeps a private copy of the key state for validating commands and applies each durable batch to
//! the published set that readers see; a replay from the log gives the same result.

pub mod as_of;
mod keys;

pub use as_of::keys_as_of;
pub use keys::{KeyRecord, KeyState, KeyStatus, SnapshotEntry};

use crate::event::{AnomalyDetected, Event};

/// An action a projection asks the writer to take (e.g. suspend a key when an anomaly rule fires). The writer
/// records it as `anomaly.detected` (with `action` set) followed by the action's own event, with the system as
/// actor. A projection drops the request when it sees the `anomaly.detected` with the same `anomaly_id`, so a
/// replay re-queues only actions that were never recorded (e.g. after a crash) and never repeats one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingAction {
    pub anomaly: AnomalyDetected,
    /// Suspend `anomaly.key_id` for this many seconds.
    pub suspend_for_secs: Option<u32>,
}

/// Every projection readers can query, as of the last durable event.
#[derive(Clone, Debug, Default)]
pub struct Projections {
    pub keys: KeyState,
    /// The seq of the last event applied.
    pub applied_seq: u64,
    pending_actions: Vec<PendingAction>,
}

impl Projections {
    pub fn apply(&mut self, event: &Event) {
        self.keys.apply(event);
        self.applied_seq = event.seq;
    }

    /// Actions requested by projections and not yet recorded.
    pub fn take_actions(&mut self) -> Vec<PendingAction> {
        std::mem::take(&mut self.pending_actions)
    }
}
