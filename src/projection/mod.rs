//! Projections: caches of the log, pure functions of its events (time comes from the events, never the clock).
//! The writer keeps a private copy of the key state for validating commands and applies each durable batch to
//! the published set that readers see; a replay from the log gives the same result.

mod keys;

pub use keys::{KeyRecord, KeyState, KeyStatus};

use crate::event::Event;

/// Every projection readers can query, as of the last durable event.
#[derive(Clone, Debug, Default)]
pub struct Projections {
    pub keys: KeyState,
    /// The seq of the last event applied.
    pub applied_seq: u64,
}

impl Projections {
    pub fn apply(&mut self, event: &Event) {
        self.keys.apply(event);
        self.applied_seq = event.seq;
    }
}
