//! The fixed-size state the anomaly rules keep per key and per probing source: the newest uses (for evidence),
//! the most recently seen distinct IPs up to a cap, denied shares in time buckets, compact IP and network keys.
//! Nothing here grows with the number of uses; docs/ANOMALIES.md names each bound.

use crate::time::LedgerTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;

/// Evidence seqs a finding carries (the newest uses that count for it).
pub const EVIDENCE: usize = 10;
/// Buckets the denied-share window is counted in.
pub const DENIED_BUCKETS: i64 = 15;

/// A client IP as recorded (any text), packed into 16 bytes: the text itself when it is at most 15 bytes long
/// (every IPv4 address), else a 15-byte SHA-256 prefix tagged `0xFF`. Equal texts give equal keys; different
/// texts of up to 15 bytes never collide, longer ones with probability 2^-120.
pub fn ip_key(ip: &str) -> u128 {
    let mut bytes = [0u8; 16];
    let text = ip.as_bytes();
    if text.len() <= 15 {
        bytes[..text.len()].copy_from_slice(text);
        bytes[15] = text.len() as u8;
    } else {
        let digest = Sha256::digest(text);
        bytes[..15].copy_from_slice(&digest[..15]);
        bytes[15] = 0xFF;
    }
    u128::from_le_bytes(bytes)
}

/// The network of a client IP for the new-network rule: its /24 (IPv4) or /48 (IPv6), tagged `0xF1` / `0xF2`
/// in the top byte (which an [`ip_key`] never has); text that is no IP address stands for itself.
pub fn network_key(ip: &str) -> u128 {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            (0xF1u128 << 120) | u128::from(u32::from_be_bytes([0, a, b, c]))
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            (0xF2u128 << 120)
                | (u128::from(s[0]) << 32)
                | (u128::from(s[1]) << 16)
                | u128::from(s[2])
        }
        Err(_) => ip_key(ip),
    }
}

/// The newest `(time, seq)` entries, at most `cap` of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recent(VecDeque<(LedgerTime, u64)>);

impl Recent {
    pub fn push(&mut self, time: LedgerTime, seq: u64, cap: usize) {
        self.0.push_back((time, seq));
        while self.0.len() > cap.max(1) {
            self.0.pop_front();
        }
    }

    /// Entries at or after `start`, newest first.
    pub fn since(&self, start: LedgerTime) -> impl Iterator<Item = (LedgerTime, u64)> + '_ {
        self.0
            .iter()
            .rev()
            .take_while(move |(at, _)| *at >= start)
            .copied()
    }

    /// Seqs of the newest entries at or after `start`, newest first, at most [`EVIDENCE`].
    pub fn evidence(&self, start: LedgerTime) -> Vec<u64> {
        self.since(start)
            .take(EVIDENCE)
            .map(|(_, seq)| seq)
            .collect()
    }
}

/// The distinct IPs seen within a sliding window, exact up to `cap`: the `cap` most recently seen, each with the
/// time it was last seen. The count it gives is `min(distinct IPs in the window, cap)`: when more than `cap` IPs
/// were seen, the ones forgotten were seen before every one kept, so they leave the window first, and while `cap`
/// kept ones remain in it the true count is at least `cap`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistinctIps(Vec<(u128, LedgerTime)>);

impl DistinctIps {
    /// Records `ip` seen at `time`, forgets IPs last seen before `start`, and returns the count.
    pub fn see(&mut self, ip: u128, time: LedgerTime, start: LedgerTime, cap: usize) -> u64 {
        self.0.retain(|(_, seen)| *seen >= start);
        match self.0.iter_mut().find(|(key, _)| *key == ip) {
            Some(entry) => entry.1 = time,
            None => self.0.push((ip, time)),
        }
        while self.0.len() > cap.max(1) {
            if let Some(oldest) = (0..self.0.len()).min_by_key(|&i| self.0[i].1) {
                self.0.swap_remove(oldest);
            }
        }
        self.0.len() as u64
    }
}

/// Uses and denied uses of one key in time buckets: the current bucket and the `DENIED_BUCKETS - 1` before it,
/// only the buckets that had uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeniedBuckets(VecDeque<(i64, u64, u64)>);

/// The bucket width of a denied-share window of `window_secs`, in microseconds.
pub fn denied_bucket_micros(window_secs: i64) -> i64 {
    (window_secs.saturating_mul(1_000_000) / DENIED_BUCKETS).max(1)
}

/// Where the denied-share window of a use at `time` starts: the start of the oldest of its buckets.
pub fn denied_window_start(time: LedgerTime, window_secs: i64) -> LedgerTime {
    let width = denied_bucket_micros(window_secs);
    let bucket = time.as_micros().div_euclid(width);
    LedgerTime::from_micros((bucket - (DENIED_BUCKETS - 1)).saturating_mul(width))
}

impl DeniedBuckets {
    /// Counts a use at `time` and returns `(uses, denied)` within the window.
    pub fn count(&mut self, time: LedgerTime, denied: bool, window_secs: i64) -> (u64, u64) {
        let bucket = time
            .as_micros()
            .div_euclid(denied_bucket_micros(window_secs));
        while self
            .0
            .front()
            .is_some_and(|(b, _, _)| *b <= bucket - DENIED_BUCKETS)
        {
            self.0.pop_front();
        }
        match self.0.back_mut() {
            Some((b, uses, refused)) if *b == bucket => {
                *uses += 1;
                *refused += u64::from(denied);
            }
            _ => self.0.push_back((bucket, 1, u64::from(denied))),
        }
        self.0
            .iter()
            .fold((0, 0), |(uses, refused), (_, u, d)| (uses + u, refused + d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_keys_are_exact_for_short_text_and_tagged_apart_from_networks() {
        assert_eq!(ip_key("10.0.0.1"), ip_key("10.0.0.1"));
        assert_ne!(ip_key("10.0.0.1"), ip_key("10.0.0.10"));
        assert_ne!(ip_key(""), ip_key("\0"));
        let long = "2001:db8:85a3::8a2e:370:7334";
        assert_eq!(ip_key(long) >> 120, 0xFF);
        assert_ne!(ip_key(long), ip_key("2001:db8:85a3::8a2e:370:7335"));
        assert_eq!(network_key("10.1.2.3"), network_key("10.1.2.200"));
        assert_ne!(network_key("10.1.2.3"), network_key("10.1.3.3"));
        assert_eq!(
            network_key("2001:db8:1::1"),
            network_key("2001:db8:1:ffff::2")
        );
        assert_ne!(network_key("\u{f1}"), network_key("0.0.0.0"));
    }

    #[test]
    fn distinct_ips_count_up_to_the_cap_and_forget_the_oldest() {
        let t = |s: i64| LedgerTime::from_micros(s * 1_000_000);
        let mut ips = DistinctIps::default();
        for i in 0..10u128 {
            assert_eq!(ips.see(i, t(i as i64), t(0), 4), (i as u64 + 1).min(4));
        }
        // IPs 6..=9 are kept; at t=108 with a 100 s window only 8 and 9 are inside, plus the new one.
        assert_eq!(ips.see(42, t(108), t(8), 4), 3);
    }

    #[test]
    fn denied_buckets_keep_the_window_and_drop_what_left_it() {
        let t = |s: i64| LedgerTime::from_micros(s * 1_000_000);
        let mut buckets = DeniedBuckets::default();
        assert_eq!(buckets.count(t(0), true, 900), (1, 1));
        assert_eq!(buckets.count(t(59), false, 900), (2, 1));
        assert_eq!(buckets.count(t(60 * 14), false, 900), (3, 1));
        // Bucket 15 starts a window whose oldest bucket is 1: bucket 0 has left it.
        assert_eq!(buckets.count(t(60 * 15), false, 900), (2, 0));
        assert_eq!(denied_window_start(t(60 * 15 + 5), 900), t(60));
    }
}
