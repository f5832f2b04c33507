//! The outbox: one task per sink delivers, in order and at least once, the alerts derived from the log after its
//! persisted cursor (advanced only once an alert is acknowledged or given up), then the pending time-based
//! alerts; a watcher (`watcher`) raises those (rotation due/overdue, expiring, a failed self-verification) once
//! per deadline, marking them fired in the same write that queues them. A failing sink retries with exponential
//! backoff and jitter on its own task: appends and the other sinks never wait for it.

use super::deliveries::{self, blocking, AlertMetrics, Delivery, DeliveryStatus, Outcome};
use super::sign::{signature_header, ALERT_ID_HEADER, SIGNATURE_HEADER};
use super::{Alert, AlertsConfig, SinkConfig, SinkFormat};
use crate::error::{LedgerError, LedgerResult};
use crate::event::Event;
use crate::ledger::Ledger;
use rand_core::{OsRng, RngCore};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// Lifecycle events read per pass (alerts only come from lifecycle events, never from `key.used`).
const READ_CHUNK: usize = 512;
/// How often a sink looks for pending alerts when nothing is appended.
const IDLE_WAKE: Duration = Duration::from_secs(1);
/// How often a cursor that moved past events without alerts is persisted (a durable write each time). Saving it
/// late costs a restart only a re-read of those events: they raised no alert for this sink.
const CURSOR_SAVE_EVERY: Duration = Duration::from_secs(10);

/// The running outbox; its tasks stop when it is dropped.
pub struct Outbox {
    pub metrics: Arc<AlertMetrics>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Outbox {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

struct Sink {
    config: SinkConfig,
    secret: Zeroizing<Vec<u8>>,
    client: reqwest::Client,
}

impl Outbox {
    /// Starts the sinks `config` names (reading their secrets) and the time-based watcher, on the current tokio
    /// runtime. `ledger` must be the writer (a follower delivers nothing).
    pub fn start(
        ledger: Arc<Ledger>,
        config: &AlertsConfig,
        origin: String,
    ) -> Result<Outbox, String> {
        let metrics = Arc::new(AlertMetrics::default());
        let mut tasks = Vec::new();
        let mut sinks = Vec::new();
        for sink in &config.sinks {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(sink.timeout_secs))
                .user_agent(concat!("keyledger-alerts/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("alert sink {:?}: {e}", sink.name))?;
            sinks.push(Arc::new(Sink {
                config: sink.clone(),
                secret: sink.secret()?,
                client,
            }));
        }
        if sinks.is_empty() {
            return Ok(Outbox { metrics, tasks });
        }
        let origin = Arc::new(origin);
        let sink_names: Vec<SinkConfig> = sinks.iter().map(|s| s.config.clone()).collect();
        tasks.push(tokio::spawn(super::watcher::watch_deadlines(
            ledger.clone(),
            config.clone(),
            sink_names,
            origin.clone(),
        )));
        for sink in sinks {
            tasks.push(tokio::spawn(run_sink(
                ledger.clone(),
                sink,
                metrics.clone(),
                origin.clone(),
            )));
        }
        Ok(Outbox { metrics, tasks })
    }
}

async fn run_sink(
    ledger: Arc<Ledger>,
    sink: Arc<Sink>,
    metrics: Arc<AlertMetrics>,
    origin: Arc<String>,
) {
    let mut committed = ledger.subscribe();
    let name = sink.config.name.clone();
    let start = ledger.durable_seq();
    let cursor = blocking(&ledger, {
        let name = name.clone();
        move |store| {
            deliveries::prune(store, &name)?;
            match store.get_side(&deliveries::cursor_key(&name))? {
                Some(bytes) => Ok(bytes.try_into().map(u64::from_be_bytes).unwrap_or(start)),
                None => {
                    // A new sink starts at the present: it is not sent the ledger's history.
                    store.put_side(&[(
                        deliveries::cursor_key(&name),
                        start.to_be_bytes().to_vec(),
                    )])?;
                    Ok(start)
                }
            }
        }
    })
    .await;
    let mut cursor = match cursor {
        Ok(cursor) => cursor,
        Err(error) => {
            tracing::error!(sink = %name, %error, "alert sink cannot start");
            return;
        }
    };
    let mut saved = cursor;
    let mut last_save = std::time::Instant::now();
    loop {
        if let Err(error) = deliver_pending(&ledger, &sink, &metrics).await {
            tracing::warn!(sink = %name, %error, "delivering pending alerts failed");
        }
        match deliver_from_log(&ledger, &sink, &metrics, &origin, cursor, &mut saved).await {
            Ok(next) => cursor = next,
            Err(error) => tracing::warn!(sink = %name, %error, "reading the log for alerts failed"),
        }
        if cursor > saved && last_save.elapsed() >= CURSOR_SAVE_EVERY {
            match save_cursor(&ledger, &name, cursor).await {
                Ok(()) => saved = cursor,
                Err(error) => {
                    tracing::warn!(sink = %name, %error, "saving the alert cursor failed")
                }
            }
            last_save = std::time::Instant::now();
        }
        if cursor < ledger.durable_seq() {
            continue;
        }
        tokio::select! {
            changed = committed.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(IDLE_WAKE) => {}
        }
    }
}

async fn deliver_pending(
    ledger: &Arc<Ledger>,
    sink: &Sink,
    metrics: &AlertMetrics,
) -> LedgerResult<()> {
    let prefix = deliveries::pending_prefix(&sink.config.name);
    let pending = blocking(ledger, move |store| {
        store
            .scan_side(&prefix)
            .map(|entry| entry.map_err(LedgerError::from))
            .collect::<LedgerResult<Vec<_>>>()
    })
    .await?;
    for (key, value) in pending {
        if let Ok(alert) = serde_json::from_slice::<Alert>(&value) {
            deliver(ledger, sink, metrics, &alert).await?;
        }
        blocking(ledger, move |store| Ok(store.remove_side(&[key])?)).await?;
    }
    Ok(())
}

/// Delivers the alerts of the lifecycle events after `cursor` (up to a chunk); returns the new cursor. The cursor
/// is persisted (and `saved` moved) after every delivered alert, so that a restart never sends one twice for
/// want of a save.
async fn deliver_from_log(
    ledger: &Arc<Ledger>,
    sink: &Sink,
    metrics: &AlertMetrics,
    origin: &str,
    cursor: u64,
    saved: &mut u64,
) -> LedgerResult<u64> {
    let durable = ledger.durable_seq();
    if durable <= cursor {
        return Ok(cursor);
    }
    let events = blocking(ledger, move |store| {
        let mut events = Vec::new();
        for seq in store
            .lifecycle_seqs(cursor + 1, durable + 1)
            .take(READ_CHUNK)
        {
            let seq = seq?;
            let record = store.get(seq)?.ok_or_else(|| LedgerError::Corrupt {
                seq,
                problem: "the lifecycle index names a missing event".into(),
            })?;
            events.push(
                Event::decode(&record.body)
                    .map_err(|source| LedgerError::Decode { seq, source })?,
            );
        }
        Ok(events)
    })
    .await?;
    let reached = if events.len() == READ_CHUNK {
        events.last().map_or(durable, |e| e.seq)
    } else {
        durable
    };
    for event in events {
        let alert = {
            let projections = ledger.projections();
            super::alert_for_event(&event, &projections, origin)
        };
        let Some(alert) = alert.filter(|a| sink.config.wants(&a.kind)) else {
            continue;
        };
        deliver(ledger, sink, metrics, &alert).await?;
        save_cursor(ledger, &sink.config.name, event.seq).await?;
        *saved = event.seq;
    }
    Ok(reached)
}

async fn save_cursor(ledger: &Arc<Ledger>, sink: &str, seq: u64) -> LedgerResult<()> {
    let key = deliveries::cursor_key(sink);
    blocking(ledger, move |store| {
        Ok(store.put_side(&[(key, seq.to_be_bytes().to_vec())])?)
    })
    .await
}

/// The body a sink receives for `alert`.
fn body(alert: &Alert, format: SinkFormat) -> Vec<u8> {
    let value = match format {
        SinkFormat::Json => serde_json::to_value(alert).unwrap_or_default(),
        SinkFormat::Slack => serde_json::json!({
            "text": format!("[keyledger {}] {}: {} (alert {})", alert.severity, alert.kind, alert.summary, alert.id),
        }),
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

/// Sends `alert` until the sink acknowledges it (2xx) or `give_up_after_secs` pass; records every outcome.
async fn deliver(
    ledger: &Arc<Ledger>,
    sink: &Sink,
    metrics: &AlertMetrics,
    alert: &Alert,
) -> LedgerResult<()> {
    let config = &sink.config;
    let body = body(alert, config.format);
    let mut record = Delivery::start(alert, &config.name, ledger.now());
    let started = std::time::Instant::now();
    let give_up = Duration::from_secs(config.give_up_after_secs);
    let mut delay = Duration::from_millis(config.retry_initial_ms);
    loop {
        record.attempts += 1;
        let timestamp = chrono::Utc::now().timestamp();
        let sent = sink
            .client
            .post(&config.url)
            .header("content-type", "application/json")
            .header(
                SIGNATURE_HEADER,
                signature_header(&sink.secret, timestamp, &body),
            )
            .header(ALERT_ID_HEADER, &alert.id)
            .body(body.clone())
            .send()
            .await;
        record.updated_at = ledger.now();
        match sent {
            Ok(response) if response.status().is_success() => {
                record.status = DeliveryStatus::Delivered;
                record.http_status = Some(response.status().as_u16());
                record.last_error = None;
                metrics.count(&config.name, Outcome::Delivered);
                return save(ledger, record).await;
            }
            Ok(response) => {
                record.http_status = Some(response.status().as_u16());
                record.last_error = Some(format!("the sink answered {}", response.status()));
            }
            Err(error) => {
                record.http_status = None;
                record.last_error = Some(error.without_url().to_string());
            }
        }
        metrics.count(&config.name, Outcome::FailedAttempt);
        if started.elapsed() + delay > give_up {
            record.status = DeliveryStatus::Failed;
            metrics.count(&config.name, Outcome::GivenUp);
            tracing::warn!(sink = %config.name, alert = %alert.id, "gave up delivering an alert");
            return save(ledger, record).await;
        }
        save(ledger, record.clone()).await?;
        tokio::time::sleep(jittered(delay)).await;
        delay = (delay * 2).min(Duration::from_secs(config.retry_max_secs));
    }
}

async fn save(ledger: &Arc<Ledger>, record: Delivery) -> LedgerResult<()> {
    blocking(ledger, move |store| record.save(store)).await
}

/// `delay` scaled by a random factor in [0.5, 1.5), so that retries from many ledgers do not arrive together.
fn jittered(delay: Duration) -> Duration {
    let factor = 0.5 + f64::from(OsRng.next_u32()) / f64::from(u32::MAX);
    delay.mul_f64(factor)
}
