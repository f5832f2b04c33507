//! Commands: what callers ask the writer to do, and the context in which the writer plans their events.

use crate::chain::{chain_hash, Hash32};
use crate::clock::Clock;
use crate::error::{LedgerError, LedgerResult};
use crate::event::{Actor, Event, EventData};
use crate::projection::KeyState;
use crate::time::LedgerTime;
use uuid::Uuid;

/// A unit of work for the writer. `plan` runs on the writer thread against the current key state; it must check
/// everything before its first `emit` (an error after an emit would leave that event in the batch).
/// `plan` must not block: it runs while every other caller waits.
pub trait Command: Send + 'static {
    type Output: Send + 'static;
    fn plan(&mut self, ctx: &mut PlanContext<'_>) -> LedgerResult<Self::Output>;
}

/// An event planned in this batch: hashed, applied to the writer's state, not yet signed or durable.
pub(crate) struct StagedEvent {
    pub event: Event,
    pub body: Vec<u8>,
    pub hash: Hash32,
    /// What opens the event's committed personal fields, to be sealed beside it.
    pub openings: Option<crate::event::personal_fields::Openings>,
}

/// What a command sees while it is planned: the key state (including this batch's earlier events) and a way to
/// append events.
pub struct PlanContext<'a> {
    pub(crate) state: &'a mut KeyState,
    pub(crate) staged: &'a mut Vec<StagedEvent>,
    pub(crate) next_seq: u64,
    pub(crate) last_time: LedgerTime,
    pub(crate) prev_hash: Hash32,
    pub(crate) clock: &'a dyn Clock,
    /// Whether `key.used` events commit to their personal fields (body version 2).
    pub(crate) commit_personal: bool,
}

impl PlanContext<'_> {
    /// The key state as of every event so far, including those planned earlier in this batch.
    pub fn state(&self) -> &KeyState {
        self.state
    }

    /// The ledger time the next event will carry: the clock, but never earlier than the last event.
    pub fn now(&self) -> LedgerTime {
        self.clock.now().max(self.last_time)
    }

    /// Appends an event to the batch, applies it to the writer's key state and returns it.
    pub fn emit(
        &mut self,
        actor: Actor,
        request_id: Option<String>,
        data: EventData,
    ) -> LedgerResult<&Event> {
        let mut event = Event {
            seq: self.next_seq,
            time: self.now(),
            id: Uuid::now_v7(),
            actor,
            request_id,
            data,
        };
        let openings = match &mut event.data {
            EventData::KeyUsed(used)
                if self.commit_personal
                    && (used.ip.is_some()
                        || used.gateway_ip.is_some()
                        || used.user_agent.is_some()) =>
            {
                Some(crate::event::personal_fields::commit(used))
            }
            _ => None,
        };
        let body = event.canonical_body()?;
        let hash = chain_hash(&self.prev_hash, &body);
        self.state.apply(&event);
        self.next_seq += 1;
        self.last_time = event.time;
        self.prev_hash = hash;
        self.staged.push(StagedEvent {
            event,
            body,
            hash,
            openings,
        });
        // The push above makes `last` present.
        self.staged
            .last()
            .map(|staged| &staged.event)
            .ok_or(LedgerError::WriterStopped)
    }
}

/// Appends the given events as they are (no state checks): for ledger-level events and for tests and benchmarks.
pub struct AppendEvents {
    pub actor: Actor,
    pub request_id: Option<String>,
    pub events: Vec<EventData>,
}

impl Command for AppendEvents {
    /// The seqs the events received.
    type Output = Vec<u64>;

    fn plan(&mut self, ctx: &mut PlanContext<'_>) -> LedgerResult<Vec<u64>> {
        let mut seqs = Vec::with_capacity(self.events.len());
        for data in self.events.drain(..) {
            let seq = ctx
                .emit(self.actor.clone(), self.request_id.clone(), data)?
                .seq;
            seqs.push(seq);
        }
        Ok(seqs)
    }
}
