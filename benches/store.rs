//! The embedded store alone (issue 25): appends `key.used` records with realistic 360-byte bodies straight into
//! `SledStore` in group commits of 64 events (postings for a key, an IP and a request id each; no signing, no
//! projections), to 1M, 3M and 10M events (KEYLEDGER_STORE_SIZES), and gives at each size the process RSS (peak
//! of samples every 10 s), sled items per event, bytes on disk per event, a full scan's rate and a key query.
//! Run: `cargo bench --bench store`. docs/PERFORMANCE.md keeps the table.

use keyledger::chain::SignerId;
use keyledger::store::{AppendBatch, LogStore, SledStore, StoredRecord};
use keyledger::time::LedgerTime;
use std::time::{Duration, Instant};
use uuid::Uuid;

const BATCH: u64 = 64;
const KEYS: u64 = 100_000;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn body(seq: u64, key: Uuid, ip: &str) -> Vec<u8> {
    format!(
        "{{\"actor\":{{\"kind\":\"key\",\"key_id\":\"01a24d27-551b-71bc-93df-18007daf0d95\"}},\"data\":{{\"ip\":\"{ip}\",\
         \"key_id\":\"{key}\",\"outcome\":\"valid\",\"prefix\":\"kl_prod_Ab3dEf9\",\"scope\":\"orders:read\",\
         \"user_agent\":\"billing-service/2.14.1 (linux; x86_64) reqwest/0.12\"}},\"request_id\":\"r-{seq}\",\
         \"seq\":{seq},\"time\":\"2026-12-06T21:{:02}:{:02}.{:06}Z\",\"type\":\"key.used\",\"v\":1}}",
        seq / 60_000_000 % 60,
        seq / 1_000_000 % 60,
        seq % 1_000_000
    )
    .into_bytes()
}

fn append_to(store: &SledStore, from: u64, to: u64, peak: &mut f64, sampled: &mut Instant) {
    let mut seq = from;
    while seq <= to {
        let mut batch = AppendBatch::default();
        let batch_first = seq;
        for _ in 0..BATCH.min(to + 1 - seq) {
            let n = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17;
            let key = Uuid::from_u128(u128::from(n % KEYS) + 1);
            let ip = format!("10.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255);
            let record = StoredRecord {
                seq,
                time: LedgerTime::from_micros(1_765_000_000_000_000 + seq as i64 * 100),
                hash: Sha::of(seq),
                signature: [7; 64],
                signer: SignerId([1; 8]),
                body: body(seq, key, &ip),
            };
            batch.key_index.push((key, seq));
            let ip_digest = Sha::digest16(ip.as_bytes());
            let request_digest = Sha::digest16(format!("r-{seq}").as_bytes());
            batch.attribute_index.push((ip_digest, seq));
            batch.attribute_index.push((request_digest, seq));
            batch.records.push(record);
            seq += 1;
        }
        if with_tiles() {
            batch.side.extend(tiles_completed(batch_first, seq - 1));
        }
        store.append(&batch).expect("append");
        if sampled.elapsed() >= Duration::from_secs(10) {
            *peak = peak.max(rss_mib());
            *sampled = Instant::now();
        }
    }
}

/// `KEYLEDGER_STORE_TILES=1`: also write the Merkle tiles the writer would, to see what they cost the store.
fn with_tiles() -> bool {
    std::env::var("KEYLEDGER_STORE_TILES").is_ok_and(|v| v == "1")
}

/// The tiles the writer writes for the leaves `first..=last` (audit/tiles.rs): each leaf tile once full, and the
/// level-1 tile (partial or full) whenever a leaf tile completes.
fn tiles_completed(first: u64, last: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    let key = |level: u8, index: u64| {
        let mut key = b"tile/".to_vec();
        key.push(level);
        key.extend_from_slice(&index.to_be_bytes());
        key
    };
    let mut out = Vec::new();
    for leaves in (first..=last).filter(|leaves| leaves % 256 == 0) {
        out.push((key(0, leaves / 256 - 1), vec![1; 8192]));
        let (index, width) = match leaves / 256 % 256 {
            0 => (leaves / 65_536 - 1, 256),
            width => (leaves / 65_536, width),
        };
        out.push((key(1, index), vec![2; 32 * width as usize]));
    }
    out
}

struct Sha;

impl Sha {
    fn of(seq: u64) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(seq.to_be_bytes()).into()
    }
    fn digest16(bytes: &[u8]) -> [u8; 16] {
        use sha2::Digest;
        let full: [u8; 32] = sha2::Sha256::digest(bytes).into();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }
}

fn main() {
    let sizes: Vec<u64> = std::env::var("KEYLEDGER_STORE_SIZES")
        .unwrap_or_else(|_| "1000000,3000000,10000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("sizes are integers"))
        .collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("log");
    let store = SledStore::open(&path).expect("open");
    println!("| events | append events/s | RSS MiB (peak, sampled every 10 s) | sled items/event | bytes/event on disk (body) | of which segments | live bytes/event | full scan MB/s of bodies | 1,000 newest of a key ms |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut head = 0u64;
    let (mut peak, mut sampled) = (rss_mib(), Instant::now());
    for size in sizes {
        let started = Instant::now();
        append_to(&store, head + 1, size, &mut peak, &mut sampled);
        let rate = (size - head) as f64 / started.elapsed().as_secs_f64();
        head = size;
        store.sync().expect("sync");
        peak = peak.max(rss_mib());
        let items = store.item_count() as f64 / size as f64;
        let disk = store.size_on_disk().expect("size") as f64 / size as f64;
        let live = store.live_bytes() as f64 / size as f64;
        let segments = store.segment_bytes_on_disk() as f64 / size as f64;
        let mean_body = body(size, Uuid::from_u128(1), "10.1.2.3").len();
        let scan_started = Instant::now();
        let bytes: usize = store
            .scan(1, u64::MAX)
            .map(|r| r.expect("record").body.len())
            .sum();
        let scan_rate = bytes as f64 / scan_started.elapsed().as_secs_f64() / 1e6;
        let query_started = Instant::now();
        let newest = store
            .key_seqs_rev(Uuid::from_u128(42), 1, u64::MAX)
            .take(1000)
            .count();
        let query_ms = query_started.elapsed().as_secs_f64() * 1e3;
        println!(
            "| {size} | {rate:.0} | {peak:.0} | {items:.4} | {disk:.0} ({mean_body}) | {segments:.0} | {live:.0} | {scan_rate:.0} | {query_ms:.1} ({newest} found) |"
        );
    }
}
