//! The deadline index of the time-based alerts: every key's next alert moment in time order, so that a sweep
//! visits only the keys whose moment has come instead of walking every key each interval.
//!
//! A key's alerts are each in force over an interval of time (for its state as the projections hold it):
//! `key.rotation_due` from the notice to the deadline, `key.rotation_overdue` from the deadline on,
//! `key.expiring` from `expiry_notice_days` before the expiry to the expiry, all cut short when the key stops
//! being live (revoked, expired, retired). The index files each key under the earliest start of an interval that
//! is still to come; a sweep raises what [`super::time_alerts`] would raise for the keys it pops and files each
//! under its next start. A key that changes is filed again from its new state ([`Deadlines::changed`]).

use super::Alert;
use crate::projection::{KeyRecord, KeyStatus, Projections};
use crate::time::LedgerTime;
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

/// Keys by their next alert moment.
#[derive(Debug, Default)]
pub struct Deadlines {
    queue: BTreeSet<(LedgerTime, Uuid)>,
    /// Each filed key's moment, so that it can be found in `queue` and replaced.
    moments: HashMap<Uuid, LedgerTime>,
    expiry_notice_days: u32,
    ledger: String,
    visited: u64,
}

/// Which intervals still count when a key is filed at `from`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Filing {
    /// The key is new to the index or changed: an alert in force at `from` has not been raised yet, so it counts.
    Fresh,
    /// The key was just visited at `from`: what was in force then was raised, only later starts count.
    Visited,
}

impl Deadlines {
    /// The index of every key of `projections` as of `now` (O(keys), once).
    pub fn build(
        projections: &Projections,
        now: LedgerTime,
        expiry_notice_days: u32,
        ledger: &str,
    ) -> Deadlines {
        let mut index = Deadlines {
            expiry_notice_days,
            ledger: ledger.to_string(),
            ..Deadlines::default()
        };
        for key in projections.keys.iter() {
            let moment = index.next_moment(projections, key, now, Filing::Fresh);
            index.file(key.key_id, moment);
        }
        index
    }

    /// Files `keys` again from their state in `projections` (they changed since they were filed), as of `now`.
    pub fn changed(
        &mut self,
        projections: &Projections,
        keys: impl IntoIterator<Item = Uuid>,
        now: LedgerTime,
    ) {
        for key_id in keys {
            let moment = projections
                .keys
                .get(&key_id)
                .and_then(|key| self.next_moment(projections, key, now, Filing::Fresh));
            self.file(key_id, moment);
        }
    }

    /// The alerts in force at `now` for the keys whose moment has come (each visited once), exactly what
    /// [`super::time_alerts`] raises for those keys; every other key is left alone. The caller deduplicates by id.
    pub fn sweep(&mut self, projections: &Projections, now: LedgerTime) -> Vec<Alert> {
        let mut alerts = Vec::new();
        while let Some(&(at, key_id)) = self.queue.first() {
            if at > now {
                break;
            }
            self.queue.remove(&(at, key_id));
            self.moments.remove(&key_id);
            self.visited += 1;
            let Some(key) = projections.keys.get(&key_id) else {
                continue;
            };
            super::key_time_alerts(
                projections,
                key,
                now,
                self.expiry_notice_days,
                &self.ledger,
                &mut alerts,
            );
            let next = self.next_moment(projections, key, now, Filing::Visited);
            self.file(key_id, next);
        }
        alerts
    }

    /// Makes `keys` due again at `now` at the latest: what a sweep raised for them could not be queued.
    pub fn revisit(&mut self, keys: impl IntoIterator<Item = Uuid>, now: LedgerTime) {
        for key_id in keys {
            let at = self.moments.get(&key_id).map_or(now, |at| (*at).min(now));
            self.file(key_id, Some(at));
        }
    }

    /// How many keys the sweeps have visited so far (a key per popped moment).
    pub fn visited(&self) -> u64 {
        self.visited
    }

    /// How many keys have a moment to come.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The earliest moment filed, if any.
    pub fn next_due(&self) -> Option<LedgerTime> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// Replaces `key_id`'s moment (none: the key leaves the index).
    fn file(&mut self, key_id: Uuid, moment: Option<LedgerTime>) {
        if let Some(old) = self.moments.remove(&key_id) {
            self.queue.remove(&(old, key_id));
        }
        if let Some(at) = moment {
            self.queue.insert((at, key_id));
            self.moments.insert(key_id, at);
        }
    }

    /// The next moment at which a sweep must look at `key`: the earliest start, among its alerts' intervals, that
    /// a sweep at or after `from` could still find in force and that was not raised yet (see [`Filing`]).
    fn next_moment(
        &self,
        projections: &Projections,
        key: &KeyRecord,
        from: LedgerTime,
        filing: Filing,
    ) -> Option<LedgerTime> {
        // Live (active or suspended) until the first of its expiry and its retirement: `KeyRecord::status_at`.
        if !matches!(
            key.recorded_status,
            KeyStatus::Active | KeyStatus::Suspended
        ) {
            return None;
        }
        let live_until = [key.config.expires_at, key.retires_at]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(LedgerTime::MAX);
        let thresholds = super::thresholds(projections, key, self.expiry_notice_days);
        let mut intervals = Vec::with_capacity(3);
        if let Some((notice, deadline)) = thresholds.rotation {
            intervals.push((notice, deadline));
            intervals.push((deadline, LedgerTime::MAX));
        }
        if let Some(expiry) = thresholds.expiry {
            intervals.push(expiry);
        }
        intervals
            .into_iter()
            .map(|(start, end)| (start, end.min(live_until)))
            .filter(|&(start, end)| start < end)
            .filter(|&(start, end)| start > from || (filing == Filing::Fresh && end > from))
            .map(|(start, _)| start)
            .min()
    }
}
