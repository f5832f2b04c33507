//! What happened to each alert at each sink: delivery records kept as side entries (newest 1,000 per sink), the
//! outbox's persisted state (cursor, pending time-based alerts, fired marks), and Prometheus counters.

use super::Alert;
use crate::error::{LedgerError, LedgerResult};
use crate::ledger::Ledger;
use crate::store::LogStore;
use crate::time::LedgerTime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// Delivery records kept per sink; older ones are removed.
pub const KEPT_PER_SINK: usize = 1_000;

const DELIVERY_PREFIX: &str = "alerts/delivery/";

pub(super) fn cursor_key(sink: &str) -> Vec<u8> {
    format!("alerts/cursor/{sink}").into_bytes()
}

pub(super) fn pending_prefix(sink: &str) -> Vec<u8> {
    format!("alerts/pending/{sink}/").into_bytes()
}

pub(super) fn pending_key(sink: &str, alert_id: &str) -> Vec<u8> {
    let mut key = pending_prefix(sink);
    key.extend_from_slice(alert_id.as_bytes());
    key
}

pub(super) fn fired_key(alert_id: &str) -> Vec<u8> {
    format!("alerts/fired/{alert_id}").into_bytes()
}

fn delivery_key(sink: &str, alert_id: &str) -> Vec<u8> {
    format!("{DELIVERY_PREFIX}{sink}/{alert_id}").into_bytes()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// The sink answered 2xx.
    Delivered,
    /// Attempts failed; more follow (with backoff).
    Retrying,
    /// Given up after the sink's `give_up_after_secs`.
    Failed,
}

/// One alert at one sink.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub alert_id: String,
    pub sink: String,
    pub kind: String,
    pub summary: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub first_attempt_at: LedgerTime,
    pub updated_at: LedgerTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl Delivery {
    pub(super) fn start(alert: &Alert, sink: &str, now: LedgerTime) -> Self {
        Self {
            alert_id: alert.id.clone(),
            sink: sink.to_string(),
            kind: alert.kind.clone(),
            summary: alert.summary.clone(),
            status: DeliveryStatus::Retrying,
            attempts: 0,
            first_attempt_at: now,
            updated_at: now,
            http_status: None,
            last_error: None,
        }
    }

    pub(super) fn save(&self, store: &dyn LogStore) -> LedgerResult<()> {
        let value = serde_json::to_vec(self)
            .map_err(|e| crate::error::LedgerError::Config(e.to_string()))?;
        store.put_side(&[(delivery_key(&self.sink, &self.alert_id), value)])?;
        Ok(())
    }
}

/// The delivery records, newest first, optionally of one sink and one status, at most `limit`.
pub fn list(
    store: &dyn LogStore,
    sink: Option<&str>,
    status: Option<DeliveryStatus>,
    limit: usize,
) -> LedgerResult<Vec<Delivery>> {
    let prefix = match sink {
        Some(sink) => format!("{DELIVERY_PREFIX}{sink}/"),
        None => DELIVERY_PREFIX.to_string(),
    };
    let mut out = Vec::new();
    for entry in store.scan_side(prefix.as_bytes()) {
        let (_, value) = entry?;
        if let Ok(delivery) = serde_json::from_slice::<Delivery>(&value) {
            if status.is_none_or(|s| s == delivery.status) {
                out.push(delivery);
            }
        }
    }
    out.sort_by(|a, b| {
        b.updated_at
            .cmp(&a.updated_at)
            .then(b.alert_id.cmp(&a.alert_id))
    });
    out.truncate(limit);
    Ok(out)
}

/// Removes all but the newest [`KEPT_PER_SINK`] records of `sink`.
pub(super) fn prune(store: &dyn LogStore, sink: &str) -> LedgerResult<()> {
    let all = list(store, Some(sink), None, usize::MAX)?;
    let old: Vec<Vec<u8>> = all
        .iter()
        .skip(KEPT_PER_SINK)
        .filter(|d| d.status != DeliveryStatus::Retrying)
        .map(|d| delivery_key(sink, &d.alert_id))
        .collect();
    if !old.is_empty() {
        store.remove_side(&old)?;
    }
    Ok(())
}

/// Counters per sink, exposed on `/metrics`.
#[derive(Default)]
pub struct AlertMetrics {
    sinks: Mutex<BTreeMap<String, [u64; 3]>>,
}

#[derive(Clone, Copy)]
pub(super) enum Outcome {
    Delivered = 0,
    FailedAttempt = 1,
    GivenUp = 2,
}

impl AlertMetrics {
    pub(super) fn count(&self, sink: &str, outcome: Outcome) {
        let mut sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        sinks.entry(sink.to_string()).or_default()[outcome as usize] += 1;
    }

    /// Prometheus text: `keyledger_alert_deliveries_total{sink,result}`.
    pub fn render(&self) -> String {
        let sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::from("# TYPE keyledger_alert_deliveries_total counter\n");
        for (sink, counts) in sinks.iter() {
            for (result, n) in ["delivered", "failed_attempt", "given_up"]
                .iter()
                .zip(counts)
            {
                let _ = writeln!(
                    out,
                    "keyledger_alert_deliveries_total{{sink=\"{sink}\",result=\"{result}\"}} {n}"
                );
            }
        }
        out
    }
}

/// Runs blocking store work off the async workers.
pub(super) async fn blocking<T: Send + 'static>(
    ledger: &Arc<Ledger>,
    work: impl FnOnce(&dyn LogStore) -> LedgerResult<T> + Send + 'static,
) -> LedgerResult<T> {
    let store = ledger.store().clone();
    tokio::task::spawn_blocking(move || work(store.as_ref()))
        .await
        .map_err(|e| LedgerError::Config(format!("an alert task failed: {e}")))?
}
