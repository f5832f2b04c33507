//! Counters the ledger keeps about itself (appends, batch sizes, commit latency, verify outcomes), exposed as
//! Prometheus text by the HTTP API.

use crate::event::VerifyCode;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (µs) of the commit latency histogram buckets.
const COMMIT_BUCKETS_MICROS: [u64; 8] = [250, 500, 1_000, 2_000, 5_000, 10_000, 50_000, 250_000];

#[derive(Debug, Default)]
pub struct Metrics {
    pub events_appended: AtomicU64,
    pub batches_committed: AtomicU64,
    pub largest_batch: AtomicU64,
    commit_micros_total: AtomicU64,
    commit_buckets: [AtomicU64; COMMIT_BUCKETS_MICROS.len()],
    verify_outcomes: [AtomicU64; VerifyCode::ALL.len()],
    /// Checkpoints that could not be handed to the anchor (file or command), shared with its delivery thread.
    pub anchor_failures: std::sync::Arc<AtomicU64>,
    /// Times the signing key stopped signing (each ends when it signs again).
    pub signer_failures: AtomicU64,
    /// Per configured witness (by name): what the writer's witnessing thread saw.
    pub witnesses: std::sync::Mutex<std::collections::BTreeMap<String, WitnessCounters>>,
}

/// What came of one witness's submissions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WitnessCounters {
    /// The size of the newest checkpoint it cosigned.
    pub cosigned_size: u64,
    pub cosignatures: u64,
    /// Submissions that failed (unreachable, refused, an answer that did not verify); tried again.
    pub failures: u64,
    /// Conflicts: the witness holds a history this log does not continue. Never retried.
    pub conflicts: u64,
    /// Why, for the conflict found (submissions to it stop until the writer restarts).
    pub conflict: Option<String>,
}

impl Metrics {
    pub fn record_commit(&self, events: usize, elapsed: Duration) {
        let events = events as u64;
        self.events_appended.fetch_add(events, Ordering::Relaxed);
        self.batches_committed.fetch_add(1, Ordering::Relaxed);
        self.largest_batch.fetch_max(events, Ordering::Relaxed);
        let micros = elapsed.as_micros() as u64;
        self.commit_micros_total
            .fetch_add(micros, Ordering::Relaxed);
        for (bound, bucket) in COMMIT_BUCKETS_MICROS.iter().zip(&self.commit_buckets) {
            if micros <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Updates the counters of the witness `name`.
    pub fn witness(&self, name: &str, update: impl FnOnce(&mut WitnessCounters)) {
        // A panic while holding the lock leaves counters, still worth reporting.
        let mut witnesses = self.witnesses.lock().unwrap_or_else(|p| p.into_inner());
        update(witnesses.entry(name.to_string()).or_default());
    }

    /// Each witness's counters, by name.
    pub fn witness_counters(&self) -> Vec<(String, WitnessCounters)> {
        let witnesses = self.witnesses.lock().unwrap_or_else(|p| p.into_inner());
        witnesses
            .iter()
            .map(|(name, counters)| (name.clone(), counters.clone()))
            .collect()
    }

    pub fn record_verify(&self, code: VerifyCode) {
        if let Some(index) = VerifyCode::ALL.iter().position(|c| *c == code) {
            self.verify_outcomes[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let batches = self.batches_committed.load(Ordering::Relaxed);
        let _ = writeln!(out, "# TYPE keyledger_events_appended_total counter");
        let _ = writeln!(
            out,
            "keyledger_events_appended_total {}",
            self.events_appended.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE keyledger_anchor_failures_total counter");
        let _ = writeln!(
            out,
            "keyledger_anchor_failures_total {}",
            self.anchor_failures.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE keyledger_signer_failures_total counter");
        let _ = writeln!(
            out,
            "keyledger_signer_failures_total {}",
            self.signer_failures.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE keyledger_batches_committed_total counter");
        let _ = writeln!(out, "keyledger_batches_committed_total {batches}");
        let _ = writeln!(out, "# TYPE keyledger_largest_batch_events gauge");
        let _ = writeln!(
            out,
            "keyledger_largest_batch_events {}",
            self.largest_batch.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE keyledger_commit_seconds histogram");
        for (bound, bucket) in COMMIT_BUCKETS_MICROS.iter().zip(&self.commit_buckets) {
            let _ = writeln!(
                out,
                "keyledger_commit_seconds_bucket{{le=\"{}\"}} {}",
                *bound as f64 / 1e6,
                bucket.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "keyledger_commit_seconds_bucket{{le=\"+Inf\"}} {batches}"
        );
        let _ = writeln!(
            out,
            "keyledger_commit_seconds_sum {}",
            self.commit_micros_total.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "keyledger_commit_seconds_count {batches}");
        let _ = writeln!(out, "# TYPE keyledger_verify_total counter");
        for (code, count) in VerifyCode::ALL.iter().zip(&self.verify_outcomes) {
            let _ = writeln!(
                out,
                "keyledger_verify_total{{outcome=\"{}\"}} {}",
                code.as_str(),
                count.load(Ordering::Relaxed)
            );
        }
        render_witnesses(&mut out, &self.witness_counters());
        out
    }
}

fn render_witnesses(out: &mut String, witnesses: &[(String, WitnessCounters)]) {
    if witnesses.is_empty() {
        return;
    }
    type Read = fn(&WitnessCounters) -> u64;
    let series: [(&str, &str, Read); 4] = [
        ("keyledger_witness_cosigned_size", "gauge", |c| {
            c.cosigned_size
        }),
        ("keyledger_witness_cosignatures_total", "counter", |c| {
            c.cosignatures
        }),
        ("keyledger_witness_failures_total", "counter", |c| {
            c.failures
        }),
        ("keyledger_witness_conflicts_total", "counter", |c| {
            c.conflicts
        }),
    ];
    for (metric, kind, read) in series {
        let _ = writeln!(out, "# TYPE {metric} {kind}");
        for (name, counters) in witnesses {
            let name = name.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(out, "{metric}{{witness=\"{name}\"}} {}", read(counters));
        }
    }
}
