//! Anomaly rules: deterministic functions of the event stream (time from the events, never the clock). Each
//! finding names its rule, key, window, observed value, threshold, severity and evidence seqs, and has an id
//! derived from those, so a replay finds exactly the same anomalies. State is fixed-size per key and per probing
//! source (`anomaly_windows`), whatever the traffic; findings are not kept here but recorded in the log as
//! `anomaly.detected` events and listed from it (`listing`).

use super::anomaly_windows::{
    denied_window_start, ip_key, network_key, DeniedBuckets, DistinctIps, Recent, EVIDENCE,
};
use super::rules::AnomalyConfig;
use crate::event::{AnomalyDetected, AnomalyPolicy, Event, EventData, KeyUsed, VerifyCode};
use crate::time::LedgerTime;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use uuid::Uuid;

pub use super::rules::KEY_RULES;

/// What a finding's `observed` and `threshold` count, per rule (for people reading them).
pub fn unit_of(rule: &str) -> &'static str {
    match rule {
        "distinct_ips" => "distinct IPs",
        "denied_rate" => "percent denied",
        "rate_spike" => "uses in the bucket",
        "dead_key_use" => "use(s) of a dead key",
        "new_network" => "new network(s)",
        "unusual_hour" => "(hour of day, UTC)",
        "probing" => "failed attempts from one IP",
        _ => "",
    }
}

/// Networks remembered per key for the new-network rule; past this, new networks are not reported.
const MAX_NETWORKS: usize = 256;
/// Source IPs tracked for probing; the oldest is forgotten past this.
const MAX_PROBE_SOURCES: usize = 10_000;

/// A rule's finding before cooldown: (rule, severity, window start, observed, threshold, evidence seqs).
type Candidate = (&'static str, &'static str, LedgerTime, u64, u64, Vec<u64>);

/// One anomaly as listed: the finding recorded in an `anomaly.detected` event, and that event's seq.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Anomaly {
    #[serde(flatten)]
    pub finding: AnomalyDetected,
    /// Seq of the `anomaly.detected` event that records the finding.
    pub seq: u64,
}

/// What the rules remember about one key: fixed-size, whatever its traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
struct KeyWindows {
    /// The newest uses, for the distinct-IP rule's evidence.
    uses: Recent,
    ips: DistinctIps,
    denied: DeniedBuckets,
    /// The newest denied uses, for the denied-share rule's evidence.
    denied_uses: Recent,
    buckets: VecDeque<(i64, u64)>,
    /// Sorted; at most [`MAX_NETWORKS`].
    networks: Vec<u128>,
    hours: u32,
    first_use: Option<LedgerTime>,
    allowed_uses: u64,
    /// Per rule of [`KEY_RULES`]: quiet until this time.
    cooldown: [Option<LedgerTime>; 6],
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AnomalyState {
    config: AnomalyConfig,
    keys: HashMap<Uuid, KeyWindows>,
    /// Per source IP: its newest failed attempts (at most `probing_max + 1`, or [`EVIDENCE`]) and cooldown.
    probes: HashMap<u128, (Recent, Option<LedgerTime>)>,
    probe_order: VecDeque<u128>,
    /// Findings made so far (each one is recorded as an `anomaly.detected` event).
    found: u64,
}

impl AnomalyState {
    pub fn new(config: AnomalyConfig) -> Self {
        Self {
            config,
            ..Default::default()
        }
    }

    pub fn set_config(&mut self, config: AnomalyConfig) {
        self.config = config;
    }

    pub fn config(&self) -> &AnomalyConfig {
        &self.config
    }

    /// How many findings the rules made so far.
    pub fn found(&self) -> u64 {
        self.found
    }

    /// Keys with rule state, and probing sources tracked: what the state's size follows.
    pub fn tracked(&self) -> (usize, usize) {
        (self.keys.len(), self.probes.len())
    }

    /// Applies an event, judging a key use by the used key's own `policy` on top of the defaults; returns the
    /// anomalies it caused.
    pub fn apply(&mut self, event: &Event, policy: Option<&AnomalyPolicy>) -> Vec<AnomalyDetected> {
        let EventData::KeyUsed(used) = &event.data else {
            return Vec::new();
        };
        let fired = match used.key_id {
            Some(key_id) => self.on_use(event, key_id, used, policy),
            None => match &used.ip {
                Some(ip) => self.probing(event, ip),
                None => Vec::new(),
            },
        };
        self.found += fired.len() as u64;
        fired
    }

    fn on_use(
        &mut self,
        event: &Event,
        key_id: Uuid,
        used: &KeyUsed,
        policy: Option<&AnomalyPolicy>,
    ) -> Vec<AnomalyDetected> {
        let c = &self.config;
        let distinct_ips_max = policy
            .and_then(|p| p.distinct_ips_max)
            .unwrap_or(c.distinct_ips_max);
        let denied_percent = policy
            .and_then(|p| p.denied_percent)
            .unwrap_or(c.denied_percent);
        let rate_factor = policy.and_then(|p| p.rate_factor).unwrap_or(c.rate_factor);
        let t = event.time;
        let w = self.keys.entry(key_id).or_default();
        let ip = used.ip.as_deref().unwrap_or_default();
        let mut candidates: Vec<Candidate> = Vec::new();

        // Any attempt with a key that may no longer be used.
        if matches!(
            used.outcome,
            VerifyCode::Revoked | VerifyCode::Expired | VerifyCode::Retired
        ) {
            candidates.push(("dead_key_use", "high", t, 1, 0, vec![event.seq]));
        }

        // Distinct IPs within the window, counted up to the threshold + 1.
        let window_start = t.plus_secs(-c.distinct_ips_window_secs);
        w.uses.push(t, event.seq, EVIDENCE);
        let cap = usize::try_from(distinct_ips_max.saturating_add(1)).unwrap_or(usize::MAX);
        let distinct = w.ips.see(ip_key(ip), t, window_start, cap);
        if distinct > distinct_ips_max {
            candidates.push((
                "distinct_ips",
                "high",
                window_start,
                distinct,
                distinct_ips_max,
                w.uses.evidence(window_start),
            ));
        }

        // Denied share within the window's buckets.
        let denied = !used.outcome.is_allowed();
        let denied_start = denied_window_start(t, c.denied_window_secs);
        let (volume, denied_in_window) = w.denied.count(t, denied, c.denied_window_secs);
        if denied {
            w.denied_uses.push(t, event.seq, EVIDENCE);
        }
        if volume >= c.denied_min_volume && denied_in_window * 100 > denied_percent * volume {
            candidates.push((
                "denied_rate",
                "medium",
                denied_start,
                denied_in_window * 100 / volume,
                denied_percent,
                w.denied_uses.evidence(denied_start),
            ));
        }

        // Request rate against the key's own trailing baseline.
        let bucket = t.as_micros().div_euclid(c.rate_bucket_secs * 1_000_000);
        match w.buckets.back_mut() {
            Some((b, count)) if *b == bucket => *count += 1,
            _ => w.buckets.push_back((bucket, 1)),
        }
        while w
            .buckets
            .front()
            .is_some_and(|(b, _)| *b < bucket - c.rate_baseline_buckets as i64)
        {
            w.buckets.pop_front();
        }
        let current = w.buckets.back().map_or(0, |(_, n)| *n);
        let (history_buckets, history_uses) = w
            .buckets
            .iter()
            .filter(|(b, _)| *b < bucket)
            .fold((0u64, 0u64), |(n, sum), (_, uses)| (n + 1, sum + uses));
        if history_buckets >= c.rate_min_baseline_buckets && current >= c.rate_min_volume {
            // Missing buckets in the trailing span count as zero uses.
            let baseline = (history_uses / c.rate_baseline_buckets).max(1);
            if current > rate_factor * baseline {
                let start = LedgerTime::from_micros(bucket * c.rate_bucket_secs * 1_000_000);
                candidates.push((
                    "rate_spike",
                    "medium",
                    start,
                    current,
                    rate_factor * baseline,
                    vec![event.seq],
                ));
            }
        }

        if used.outcome.is_allowed() {
            let first = *w.first_use.get_or_insert(t);
            w.allowed_uses += 1;
            // A network never seen before, once the key has a history.
            let network = network_key(ip);
            let warm = w.allowed_uses > c.new_network_warmup_uses
                || t.secs_since(first) > c.new_network_warmup_secs;
            if let Err(at) = w.networks.binary_search(&network) {
                if w.networks.len() < MAX_NETWORKS {
                    if warm && !ip.is_empty() {
                        candidates.push(("new_network", "low", t, 1, 0, vec![event.seq]));
                    }
                    w.networks.insert(at, network);
                }
            }
            // An hour of the day at which the key was never used.
            let hour_bit = 1u32 << event.time.hour_of_day();
            if w.hours & hour_bit == 0 {
                if t.secs_since(first) > c.unusual_hour_warmup_secs {
                    candidates.push((
                        "unusual_hour",
                        "low",
                        t,
                        u64::from(event.time.hour_of_day()),
                        0,
                        vec![event.seq],
                    ));
                }
                w.hours |= hour_bit;
            }
        }

        let disabled =
            |rule: &str| policy.is_some_and(|p| p.disabled_rules.iter().any(|r| r == rule));
        let mut fired = Vec::new();
        for (rule, severity, window_start, observed, threshold, evidence) in candidates {
            if disabled(rule) {
                continue;
            }
            let Some(slot) = KEY_RULES.iter().position(|r| *r == rule) else {
                continue;
            };
            // One finding per rule and key per window: quiet until the window that fired has passed.
            if w.cooldown[slot].is_some_and(|until| t < until) {
                continue;
            }
            let window_secs = match rule {
                "distinct_ips" => c.distinct_ips_window_secs,
                "denied_rate" => c.denied_window_secs,
                "rate_spike" => c.rate_bucket_secs,
                _ => 600,
            };
            w.cooldown[slot] = Some(t.plus_secs(window_secs));
            fired.push(AnomalyDetected {
                anomaly_id: format!("{rule}-{key_id}-{}", event.seq),
                key_id: Some(key_id),
                rule: rule.to_string(),
                severity: severity.to_string(),
                window_start,
                window_end: t,
                observed,
                threshold,
                evidence,
                action: None,
            });
        }
        fired
    }

    fn probing(&mut self, event: &Event, ip: &str) -> Vec<AnomalyDetected> {
        let c = &self.config;
        let t = event.time;
        let source = ip_key(ip);
        if !self.probes.contains_key(&source) {
            if self.probe_order.len() >= MAX_PROBE_SOURCES {
                if let Some(oldest) = self.probe_order.pop_front() {
                    self.probes.remove(&oldest);
                }
            }
            self.probe_order.push_back(source);
        }
        let (attempts, cooldown) = self.probes.entry(source).or_default();
        let start = t.plus_secs(-c.probing_window_secs);
        let cap = usize::try_from(c.probing_max.saturating_add(1))
            .unwrap_or(usize::MAX)
            .max(EVIDENCE);
        attempts.push(t, event.seq, cap);
        // Exact up to `cap`: the ring holds the newest `cap` attempts.
        let observed = attempts.since(start).count() as u64;
        if observed <= c.probing_max || cooldown.is_some_and(|until| t < until) {
            return Vec::new();
        }
        *cooldown = Some(t.plus_secs(c.probing_window_secs));
        vec![AnomalyDetected {
            anomaly_id: format!("probing-{ip}-{}", event.seq),
            key_id: None,
            rule: "probing".into(),
            severity: "medium".into(),
            window_start: start,
            window_end: t,
            observed,
            threshold: c.probing_max,
            evidence: attempts.evidence(start),
            action: None,
        }]
    }
}
