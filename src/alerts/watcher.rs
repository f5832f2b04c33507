//! The deadline watcher: the task that raises the time-based alerts (rotation due/overdue, expiring) and a failed
//! self-verification once each, also across restarts. It builds a [`Deadlines`] index once, then keeps it current
//! from the lifecycle events appended since its last sweep, so that an interval costs O(keys changed + keys due)
//! instead of a walk over every key and a store read per alert in force.

use super::deadlines::Deadlines;
use super::deliveries;
use super::deliveries::blocking;
use super::{Alert, AlertsConfig, SinkConfig};
use crate::error::{LedgerError, LedgerResult};
use crate::event::Event;
use crate::ledger::Ledger;
use crate::store::LogStore;
use crate::time::LedgerTime;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How many times a sweep reads the changes again when more events were applied meanwhile, before it sweeps with
/// those keys still filed from their previous state (they are filed again at the next sweep).
const CATCH_UP_TRIES: usize = 3;

/// The index and the last seq whose key changes it holds.
struct Watch {
    index: Deadlines,
    seen: u64,
}

impl Watch {
    /// Every key of the projections, once (O(keys)).
    fn build(ledger: &Ledger, now: LedgerTime, config: &AlertsConfig, origin: &str) -> Watch {
        let projections = ledger.projections();
        Watch {
            index: Deadlines::build(&projections, now, config.expiry_notice_days, origin),
            seen: projections.applied_seq,
        }
    }

    /// Files `changed` again and sweeps, unless the projections moved past `seen` (and `force` is false): the
    /// keys of those events would be swept from their old filing.
    fn sweep(
        &mut self,
        ledger: &Ledger,
        changed: &mut Vec<Uuid>,
        now: LedgerTime,
        force: bool,
    ) -> Option<Vec<Alert>> {
        let projections = ledger.projections();
        if projections.applied_seq > self.seen && !force {
            return None;
        }
        self.index.changed(&projections, changed.drain(..), now);
        Some(self.index.sweep(&projections, now))
    }
}

/// The keys named by the lifecycle events with `after < seq <= through` (every change of a key is one; `key.used`
/// changes nothing a deadline depends on), sorted and without repeats.
pub(super) fn changed_keys(
    store: &dyn LogStore,
    after: u64,
    through: u64,
) -> LedgerResult<Vec<Uuid>> {
    let mut keys = Vec::new();
    for seq in store.lifecycle_seqs(after + 1, through.saturating_add(1)) {
        let seq = seq?;
        let record = store.get(seq)?.ok_or_else(|| LedgerError::Corrupt {
            seq,
            problem: "the lifecycle index names a missing event".into(),
        })?;
        let event =
            Event::decode(&record.body).map_err(|source| LedgerError::Decode { seq, source })?;
        keys.extend(event.data.key_ids().into_iter().flatten());
    }
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

/// Raises the time-based alerts (and a failed self-verification) once per deadline, across restarts.
pub(super) async fn watch_deadlines(
    ledger: Arc<Ledger>,
    config: AlertsConfig,
    sinks: Vec<SinkConfig>,
    origin: Arc<String>,
) {
    let mut every = tokio::time::interval(Duration::from_secs(config.check_interval_secs));
    let mut watch: Option<Watch> = None;
    loop {
        every.tick().await;
        let now = ledger.now();
        let watch = match watch.as_mut() {
            Some(watch) => watch,
            None => {
                let built = tokio::task::spawn_blocking({
                    let (ledger, config, origin) = (ledger.clone(), config.clone(), origin.clone());
                    move || Watch::build(&ledger, now, &config, &origin)
                })
                .await;
                match built {
                    Ok(built) => watch.insert(built),
                    Err(error) => {
                        tracing::warn!(%error, "could not index the key deadlines");
                        continue;
                    }
                }
            }
        };
        let mut alerts = sweep(&ledger, watch, now, &config, &origin).await;
        let failure = match ledger.startup_check() {
            crate::ledger::StartupCheck::Failed(reason) => Some(reason),
            _ => ledger.failure().filter(|r| r.contains("stored log")),
        };
        if let Some(reason) = failure {
            alerts.push(super::verification_failed(&reason, now, &origin));
        }
        for (witness, counters) in ledger.metrics().witness_counters() {
            if let Some(reason) = counters.conflict {
                alerts.push(super::witness_conflict(&witness, &reason, now, &origin));
            }
        }
        let keys: Vec<Uuid> = alerts
            .iter()
            .filter_map(|a| a.key.as_ref().map(|k| k.key_id))
            .collect();
        let sinks = sinks.clone();
        let queued = blocking(&ledger, move |store| queue(store, alerts, &sinks)).await;
        if let Err(error) = queued {
            tracing::warn!(%error, "could not queue time-based alerts");
            // The next sweep raises what is still in force for these keys; the fired marks skip what was queued.
            watch.index.revisit(keys, now);
        }
    }
}

/// Brings `watch` up to the projections' last event and sweeps it at `now`.
async fn sweep(
    ledger: &Arc<Ledger>,
    watch: &mut Watch,
    now: LedgerTime,
    config: &AlertsConfig,
    origin: &str,
) -> Vec<Alert> {
    let mut changed = Vec::new();
    let mut attempt = 0;
    loop {
        let applied = ledger.projections().applied_seq;
        if applied > watch.seen {
            let after = watch.seen;
            match blocking(ledger, move |store| changed_keys(store, after, applied)).await {
                Ok(keys) => {
                    changed.extend(keys);
                    watch.seen = applied;
                }
                Err(error) => {
                    tracing::warn!(%error, "could not read the key changes; indexing every key again");
                    changed.clear();
                    *watch = Watch::build(ledger, now, config, origin);
                }
            }
        }
        if let Some(alerts) = watch.sweep(ledger, &mut changed, now, attempt >= CATCH_UP_TRIES) {
            return alerts;
        }
        attempt += 1;
    }
}

/// Queues each alert not fired yet for the sinks that want its kind, marking it fired in the same write.
fn queue(store: &dyn LogStore, alerts: Vec<Alert>, sinks: &[SinkConfig]) -> LedgerResult<()> {
    for alert in alerts {
        let fired = deliveries::fired_key(&alert.id);
        if store.get_side(&fired)?.is_some() {
            continue;
        }
        let body = serde_json::to_vec(&alert).map_err(|e| LedgerError::Config(e.to_string()))?;
        let mut entries = vec![(fired, b"1".to_vec())];
        for sink in sinks.iter().filter(|s| s.wants(&alert.kind)) {
            entries.push((deliveries::pending_key(&sink.name, &alert.id), body.clone()));
        }
        // The mark and the queue entries in one write: never marked without being queued.
        store.put_side(&entries)?;
    }
    Ok(())
}
