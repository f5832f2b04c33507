//! The reference model of the anomaly rules for the property test: the rules as they were before counter
//! windows, keeping every use inside each window (memory that grows with traffic). Two changes, both documented
//! in docs/ANOMALIES.md: the denied-share window starts at its oldest bucket, and evidence is the newest
//! [`EVIDENCE`] seqs.

use super::anomaly_windows::{denied_window_start, EVIDENCE};
use super::rules::AnomalyConfig;
use crate::event::{AnomalyDetected, AnomalyPolicy, Event, EventData, KeyUsed, VerifyCode};
use crate::time::LedgerTime;
use std::collections::{HashMap, HashSet, VecDeque};
use uuid::Uuid;

/// Networks remembered per key for the new-network rule; past this, new networks are not reported.
const MAX_NETWORKS: usize = 256;
/// Evidence seqs kept per finding.
const MAX_EVIDENCE: usize = EVIDENCE;
/// Source IPs tracked for probing; the oldest is forgotten past this.
const MAX_PROBE_SOURCES: usize = 10_000;

/// A rule's finding before cooldown: (rule, severity, window start, observed, threshold, evidence seqs).
type Candidate = (&'static str, &'static str, LedgerTime, u64, u64, Vec<u64>);

#[derive(Default)]
struct KeyWindows {
    uses: VecDeque<(LedgerTime, u64, String)>,
    ip_counts: HashMap<String, u32>,
    outcomes: VecDeque<(LedgerTime, u64, bool)>,
    denied_in_window: u64,
    buckets: VecDeque<(i64, u64)>,
    networks: HashSet<String>,
    hours: u32,
    first_use: Option<LedgerTime>,
    allowed_uses: u64,
    cooldown: HashMap<String, LedgerTime>,
}

#[derive(Default)]
pub struct ModelState {
    config: AnomalyConfig,
    keys: HashMap<Uuid, KeyWindows>,
    probes: HashMap<String, VecDeque<(LedgerTime, u64)>>,
    probe_order: VecDeque<String>,
    probe_cooldown: HashMap<String, LedgerTime>,
}

fn network_of(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
        Err(_) => ip.to_string(),
    }
}

impl ModelState {
    pub fn new(config: AnomalyConfig) -> Self {
        Self {
            config,
            ..Default::default()
        }
    }

    /// Applies an event, judging a key use by the used key's own `policy` on top of the defaults; returns the
    /// anomalies it caused (for actions).
    pub fn apply(&mut self, event: &Event, policy: Option<&AnomalyPolicy>) -> Vec<AnomalyDetected> {
        match &event.data {
            EventData::KeyUsed(used) => self.on_use(event, used, policy),
            _ => Vec::new(),
        }
    }

    fn on_use(
        &mut self,
        event: &Event,
        used: &KeyUsed,
        policy: Option<&AnomalyPolicy>,
    ) -> Vec<AnomalyDetected> {
        let mut fired = Vec::new();
        let Some(key_id) = used.key_id else {
            if let Some(ip) = &used.ip {
                fired.extend(self.probing(event, ip));
            }
            return fired;
        };
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
        let ip = used.ip.clone().unwrap_or_default();
        let mut candidates: Vec<Candidate> = Vec::new();

        // Any attempt with a key that may no longer be used.
        if matches!(
            used.outcome,
            VerifyCode::Revoked | VerifyCode::Expired | VerifyCode::Retired
        ) {
            candidates.push(("dead_key_use", "high", t, 1, 0, vec![event.seq]));
        }

        // Distinct IPs within the window.
        let window_start = t.plus_secs(-c.distinct_ips_window_secs);
        while w.uses.front().is_some_and(|(at, _, _)| *at < window_start) {
            if let Some((_, _, old)) = w.uses.pop_front() {
                if let Some(count) = w.ip_counts.get_mut(&old) {
                    *count -= 1;
                    if *count == 0 {
                        w.ip_counts.remove(&old);
                    }
                }
            }
        }
        w.uses.push_back((t, event.seq, ip.clone()));
        *w.ip_counts.entry(ip.clone()).or_default() += 1;
        let distinct = w.ip_counts.len() as u64;
        if distinct > distinct_ips_max {
            let evidence = w
                .uses
                .iter()
                .rev()
                .take(MAX_EVIDENCE)
                .map(|u| u.1)
                .collect();
            candidates.push((
                "distinct_ips",
                "high",
                window_start,
                distinct,
                distinct_ips_max,
                evidence,
            ));
        }

        // Denied share within the window.
        let denied_start = denied_window_start(t, c.denied_window_secs);
        while w
            .outcomes
            .front()
            .is_some_and(|(at, _, _)| *at < denied_start)
        {
            if let Some((_, _, denied)) = w.outcomes.pop_front() {
                w.denied_in_window -= u64::from(denied);
            }
        }
        let denied = !used.outcome.is_allowed();
        w.outcomes.push_back((t, event.seq, denied));
        w.denied_in_window += u64::from(denied);
        let volume = w.outcomes.len() as u64;
        if volume >= c.denied_min_volume && w.denied_in_window * 100 > denied_percent * volume {
            let evidence = w
                .outcomes
                .iter()
                .rev()
                .filter(|o| o.2)
                .take(MAX_EVIDENCE)
                .map(|o| o.1)
                .collect();
            candidates.push((
                "denied_rate",
                "medium",
                denied_start,
                w.denied_in_window * 100 / volume,
                denied_percent,
                evidence,
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
        let history: Vec<u64> = w
            .buckets
            .iter()
            .filter(|(b, _)| *b < bucket)
            .map(|(_, n)| *n)
            .collect();
        if history.len() as u64 >= c.rate_min_baseline_buckets && current >= c.rate_min_volume {
            // Missing buckets in the trailing span count as zero uses.
            let baseline = (history.iter().sum::<u64>() / c.rate_baseline_buckets).max(1);
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
            let network = network_of(&ip);
            let warm = w.allowed_uses > c.new_network_warmup_uses
                || t.secs_since(first) > c.new_network_warmup_secs;
            if !w.networks.contains(&network) && w.networks.len() < MAX_NETWORKS {
                if warm && !ip.is_empty() {
                    candidates.push(("new_network", "low", t, 1, 0, vec![event.seq]));
                }
                w.networks.insert(network);
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
        for (rule, severity, window_start, observed, threshold, evidence) in candidates {
            if disabled(rule) {
                continue;
            }
            // One finding per rule and key per window: quiet until the window that fired has passed.
            if w.cooldown.get(rule).is_some_and(|until| t < *until) {
                continue;
            }
            let window_secs = match rule {
                "distinct_ips" => c.distinct_ips_window_secs,
                "denied_rate" => c.denied_window_secs,
                "rate_spike" => c.rate_bucket_secs,
                _ => 600,
            };
            w.cooldown
                .insert(rule.to_string(), t.plus_secs(window_secs));
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
        if !self.probes.contains_key(ip) {
            if self.probe_order.len() >= MAX_PROBE_SOURCES {
                if let Some(oldest) = self.probe_order.pop_front() {
                    self.probes.remove(&oldest);
                    self.probe_cooldown.remove(&oldest);
                }
            }
            self.probe_order.push_back(ip.to_string());
        }
        let attempts = self.probes.entry(ip.to_string()).or_default();
        let start = t.plus_secs(-c.probing_window_secs);
        while attempts.front().is_some_and(|(at, _)| *at < start) {
            attempts.pop_front();
        }
        attempts.push_back((t, event.seq));
        let observed = attempts.len() as u64;
        if observed <= c.probing_max || self.probe_cooldown.get(ip).is_some_and(|until| t < *until)
        {
            return Vec::new();
        }
        let evidence = attempts
            .iter()
            .rev()
            .take(MAX_EVIDENCE)
            .map(|a| a.1)
            .collect();
        self.probe_cooldown
            .insert(ip.to_string(), t.plus_secs(c.probing_window_secs));
        vec![AnomalyDetected {
            anomaly_id: format!("probing-{ip}-{}", event.seq),
            key_id: None,
            rule: "probing".into(),
            severity: "medium".into(),
            window_start: start,
            window_end: t,
            observed,
            threshold: c.probing_max,
            evidence,
            action: None,
        }]
    }
}
