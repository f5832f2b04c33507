//! Projections: caches of the log, pure functions of its events (time comes from the events, never the clock).
//! The writer keeps a private copy of the key state for validating commands and applies each durable batch to
//! the published set that readers see; a replay from the log gives the same result.

pub mod anomaly;
#[cfg(test)]
mod anomaly_model;
#[cfg(test)]
mod anomaly_tests;
mod anomaly_windows;
mod key_record;
mod keys;
pub mod listing;
pub mod reports;
pub mod rollup;
mod rollup_cells;
pub mod rollup_checkpoint;
pub mod rollup_open;
pub mod rules;
pub mod scope;
pub mod usage;
mod usage_rows;
mod usage_window;

pub use keys::{KeyRecord, KeyState, KeyStatus, RateStatus, SnapshotEntry};
pub use rules::{AnalysisRules, AnomalyConfig, RotationDefaults};

use crate::event::{AnomalyDetected, Event, EventData};
use anomaly::AnomalyState;
use usage::UsageState;

/// What a projection asks the writer to record: every anomaly a rule finds, as `anomaly.detected`, and for a
/// rule that suspends the key (`suspend_for_secs`, with `action` set) the suspension's own event after it, with
/// the system as actor. A projection drops the request when it sees the `anomaly.detected` with the same `anomaly_id`, so a
/// replay re-queues only actions that were never recorded (e.g. after a crash) and never repeats one.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingAction {
    pub anomaly: AnomalyDetected,
    /// Suspend `anomaly.key_id` for this many seconds.
    pub suspend_for_secs: Option<u32>,
}

/// How long a firing of `rule` suspends `key`, if at all: the key's own policy decides when it says; otherwise
/// the `[anomaly]` defaults, except that keys holding keyledger's own scopes (`ledger:*`, `*`) are never
/// suspended by default, since suspending a gateway's or an administrator's key is an outage of its own.
fn suspension_for(key: &KeyRecord, rule: &str, rules: &AnalysisRules) -> Option<u32> {
    let policy = key.config.anomaly_policy.as_ref();
    let suspend_on = match policy.and_then(|p| p.suspend_on.as_ref()) {
        Some(rules) => rules,
        None if key
            .config
            .scopes
            .iter()
            .any(|s| crate::projection::scope::reaches_ledger(s)) =>
        {
            return None
        }
        None => &rules.anomaly.suspend_on,
    };
    suspend_on.iter().any(|r| r == rule).then(|| {
        policy
            .and_then(|p| p.suspend_for_secs)
            .unwrap_or(rules.anomaly.suspend_for_secs)
    })
}

/// Every projection readers can query, as of the last durable event. Its serialised form is what a snapshot
/// persists (ledger::snapshot); the configuration is not part of it but the anomaly rules it was built with are.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Projections {
    pub keys: KeyState,
    pub usage: UsageState,
    pub anomalies: AnomalyState,
    #[serde(skip)]
    pub rules: AnalysisRules,
    /// The seq of the last event applied.
    pub applied_seq: u64,
    pending_actions: Vec<PendingAction>,
}

impl Projections {
    pub fn new(rules: AnalysisRules) -> Self {
        Self {
            anomalies: AnomalyState::new(rules.anomaly.clone()),
            rules,
            ..Default::default()
        }
    }

    pub fn apply(&mut self, event: &Event) {
        self.keys.apply(event);
        self.usage.apply(event);
        let used_key = match &event.data {
            EventData::KeyUsed(used) => used.key_id.and_then(|id| self.keys.get(&id)),
            _ => None,
        };
        let fired = self.anomalies.apply(
            event,
            used_key.and_then(|k| k.config.anomaly_policy.as_ref()),
        );
        for finding in fired {
            let key = finding.key_id.and_then(|id| self.keys.get(&id));
            let secs = key.and_then(|k| suspension_for(k, &finding.rule, &self.rules));
            let anomaly = AnomalyDetected {
                action: secs.map(|secs| format!("suspend_key for {secs}s")),
                ..finding
            };
            self.pending_actions.push(PendingAction {
                anomaly,
                suspend_for_secs: secs,
            });
        }
        if let EventData::AnomalyDetected(recorded) = &event.data {
            self.pending_actions
                .retain(|action| action.anomaly.anomaly_id != recorded.anomaly_id);
        }
        self.applied_seq = event.seq;
    }

    /// Projections loaded from a snapshot, given the configuration in force; `None` when they were built under
    /// other anomaly rules (a replay under the current rules would then give another state).
    pub fn restored(mut self, rules: AnalysisRules) -> Option<Self> {
        if self.anomalies.config() != &rules.anomaly {
            return None;
        }
        self.rules = rules;
        Some(self)
    }

    /// Projections loaded from the archived prefix's base state: kept whatever the anomaly rules are now (new
    /// events are judged by the configured rules; the windows carried over keep their state).
    pub fn restored_as_recorded(mut self, rules: AnalysisRules) -> Self {
        self.anomalies.set_config(rules.anomaly.clone());
        self.rules = rules;
        self
    }

    /// Projections from a `keyledger-snapshot/1` body (JSON): keys, usage and requested actions as they were;
    /// the anomaly windows of that version's rules start empty.
    pub fn from_v1_json(value: serde_json::Value) -> Result<Self, serde_json::Error> {
        #[derive(serde::Deserialize)]
        struct ProjectionsV1 {
            keys: KeyState,
            usage: UsageState,
            applied_seq: u64,
            #[serde(default)]
            pending_actions: Vec<PendingAction>,
        }
        let old: ProjectionsV1 = serde_json::from_value(value)?;
        Ok(Self {
            keys: old.keys,
            usage: old.usage,
            applied_seq: old.applied_seq,
            pending_actions: old.pending_actions,
            ..Default::default()
        })
    }

    /// The actions requested and not yet recorded, as a snapshot stores them.
    pub fn pending_actions(&self) -> &[PendingAction] {
        &self.pending_actions
    }

    /// Projections from their parts as a snapshot stored them (the configuration is set by the caller).
    pub fn from_parts(
        keys: KeyState,
        usage: UsageState,
        anomalies: AnomalyState,
        applied_seq: u64,
        pending_actions: Vec<PendingAction>,
    ) -> Self {
        Self {
            keys,
            usage,
            anomalies,
            applied_seq,
            pending_actions,
            ..Default::default()
        }
    }

    /// Actions requested by projections and not yet recorded.
    pub fn take_actions(&mut self) -> Vec<PendingAction> {
        std::mem::take(&mut self.pending_actions)
    }
}
