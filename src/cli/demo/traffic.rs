//! Simulated traffic for the demo: services verifying their keys from their usual networks, a leaked key used
//! from many addresses, a probing burst against a revoked key, and stragglers still on a rotated-away key.

use crate::event::Actor;
use crate::keys::VerifyKey;
use crate::ledger::Ledger;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// One stream of verifications: which secret, from which addresses, for which scope.
#[derive(Clone)]
pub struct Stream {
    pub label: &'static str,
    pub secret: String,
    pub ips: Vec<IpAddr>,
    pub scope: &'static str,
    pub user_agent: &'static str,
    pub count: usize,
}

impl Stream {
    pub fn new(
        label: &'static str,
        secret: &str,
        ips: Vec<IpAddr>,
        scope: &'static str,
        user_agent: &'static str,
        count: usize,
    ) -> Self {
        Self {
            label,
            secret: secret.to_string(),
            ips,
            scope,
            user_agent,
            count,
        }
    }
}

/// Addresses `prefix.0.1`… (a service's own network), `n` of them.
pub fn network(prefix: &str, n: u8) -> Vec<IpAddr> {
    (1..=n)
        .filter_map(|host| format!("{prefix}.{host}").parse().ok())
        .collect()
}

/// Addresses scattered over the documentation ranges and beyond, as a leaked key sees them.
pub fn scattered(n: usize) -> Vec<IpAddr> {
    (0..n)
        .filter_map(|i| match i % 3 {
            0 => format!("203.0.113.{}", 10 + i).parse().ok(),
            1 => format!("198.51.100.{}", 20 + i).parse().ok(),
            _ => format!("2001:db8:{:x}::{:x}", 0x40 + i, i + 1).parse().ok(),
        })
        .collect()
}

/// Outcome counts of a run, by stream label then outcome code.
pub type Tally = BTreeMap<&'static str, BTreeMap<&'static str, usize>>;

/// Runs the streams with `workers` concurrent callers; every verification is durably recorded before it counts.
pub async fn run(
    ledger: Arc<Ledger>,
    streams: Vec<Stream>,
    workers: usize,
) -> Result<Tally, crate::LedgerError> {
    let mut jobs: Vec<(usize, usize)> = Vec::new();
    for (index, stream) in streams.iter().enumerate() {
        jobs.extend((0..stream.count).map(|n| (index, n)));
    }
    // Interleave the streams the way real traffic arrives: a deterministic shuffle.
    let len = jobs.len().max(1);
    for i in 0..jobs.len() {
        let j = (i.wrapping_mul(7_919).wrapping_add(13)) % len;
        jobs.swap(i, j);
    }
    let streams = Arc::new(streams);
    let jobs = Arc::new(jobs);
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let (ledger, streams, jobs) = (ledger.clone(), streams.clone(), jobs.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            for &(index, n) in jobs.iter().skip(worker).step_by(workers) {
                let stream = &streams[index];
                let ip = stream.ips[n % stream.ips.len()];
                let command = VerifyKey::new(
                    &stream.secret,
                    Some(ip),
                    Some(stream.scope.to_string()),
                    Some(stream.user_agent.to_string()),
                )
                .by(Actor::System, Some(format!("demo-{index}-{n}")));
                let answer = ledger.submit(command).await?;
                *tally
                    .entry(stream.label)
                    .or_default()
                    .entry(answer.code.as_str())
                    .or_default() += 1;
            }
            Ok::<_, crate::LedgerError>(tally)
        }));
    }
    let mut total = Tally::new();
    for task in tasks {
        let tally = task
            .await
            .map_err(|e| crate::LedgerError::Config(format!("traffic task failed: {e}")))??;
        for (label, codes) in tally {
            for (code, count) in codes {
                *total.entry(label).or_default().entry(code).or_default() += count;
            }
        }
    }
    Ok(total)
}
