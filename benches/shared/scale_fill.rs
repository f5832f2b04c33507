//! The scale bench's traffic and its filling child: key uses through the real writer, appended in a process of its
//! own so that the writer's RSS is measured alone.

use keyledger::datadir::DataDir;
use keyledger::event::{Actor, EventData, KeyUsed, VerifyCode};
use keyledger::ledger::{AppendEvents, Ledger};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const BATCH: usize = 4000;

/// A key's client IPs: each key is used from three addresses of its own.
pub fn ip_of(key_index: usize, n: u64) -> String {
    let host = key_index * 3 + (n % 3) as usize;
    format!("10.{}.{}.{}", host >> 16 & 255, host >> 8 & 255, host & 255)
}

/// Appends realistic key uses (a valid use of a random key from one of its IPs, 3% denied) until `target`.
pub fn fill_to(ledger: &Ledger, keys: &[Uuid], target: u64, batch_number: &mut u64) {
    let agents = [
        "billing-service/2.14.1 (linux; x86_64) reqwest/0.12",
        "curl/8.5.0",
        "python-requests/2.32.3",
    ];
    while ledger.durable_seq() < target {
        let commands: Vec<AppendEvents> = (0..2)
            .map(|_| {
                *batch_number += 1;
                let base = *batch_number * BATCH as u64;
                let events = (0..BATCH as u64)
                    .map(|i| {
                        let n = (base + i).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17;
                        let key_index = (n % keys.len() as u64) as usize;
                        EventData::KeyUsed(KeyUsed {
                            key_id: Some(keys[key_index]),
                            prefix: Some("kl_prod_Ab3dEf9".into()),
                            outcome: if n % 33 == 0 {
                                VerifyCode::InsufficientScope
                            } else {
                                VerifyCode::Valid
                            },
                            ip: Some(ip_of(key_index, n)),
                            user_agent: Some(agents[(n % 3) as usize].into()),
                            scope: Some("orders:read".into()),
                            project: None,
                            gateway_ip: None,
                            overlap: false,
                            method: None,
                            path: None,
                            committed: None,
                        })
                    })
                    .collect();
                AppendEvents {
                    actor: Actor::System,
                    request_id: Some(format!("r-{batch_number}")),
                    events,
                }
            })
            .collect();
        // Plain threads: rayon's pool is the writer's, for signing large batches.
        std::thread::scope(|scope| {
            for command in commands {
                scope.spawn(|| ledger.submit_blocking(command).expect("append"));
            }
        });
    }
}

pub fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Fills the ledger at `data` to `size` events in a process of its own (this bench, re-run with
/// `KEYLEDGER_SCALE_FILL_TO`), so that the writer's RSS is its own and not what earlier rows left in this process.
/// Returns the fill rate and the child's peak RSS in MiB.
pub fn fill_in_child(data: &Path, keys: &[Uuid], size: u64, batch_number: &mut u64) -> (f64, f64) {
    let keys_file = data.with_extension("keys");
    let listed: Vec<String> = keys.iter().map(Uuid::to_string).collect();
    std::fs::write(&keys_file, listed.join("\n")).expect("write the keys");
    let output = Command::new(std::env::current_exe().expect("this bench"))
        .arg("--bench")
        .env("KEYLEDGER_SCALE_FILL_TO", size.to_string())
        .env("KEYLEDGER_SCALE_FILL_DIR", data)
        .env("KEYLEDGER_SCALE_FILL_KEYS", &keys_file)
        .env("KEYLEDGER_SCALE_FILL_BATCH", batch_number.to_string())
        .output()
        .expect("run the filling child");
    assert!(
        output.status.success(),
        "the filling child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = String::from_utf8_lossy(&output.stdout);
    let line = report
        .lines()
        .find_map(|line| line.strip_prefix("filled "))
        .expect("the child reports its fill");
    let fields: Vec<f64> = line
        .split(' ')
        .map(|f| f.parse().expect("numbers"))
        .collect();
    *batch_number = fields[2] as u64;
    (fields[0], fields[1])
}

/// The child's side of [`fill_in_child`]: prints `filled RATE PEAK_RSS_MIB BATCH_NUMBER`.
pub fn fill_child(target: u64) {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set"));
    let data = std::path::PathBuf::from(var("KEYLEDGER_SCALE_FILL_DIR"));
    let keys: Vec<Uuid> = std::fs::read_to_string(var("KEYLEDGER_SCALE_FILL_KEYS"))
        .expect("read the keys")
        .lines()
        .map(|line| line.parse().expect("a key id"))
        .collect();
    let mut batch_number: u64 = var("KEYLEDGER_SCALE_FILL_BATCH").parse().expect("a number");
    let ledger = DataDir::new(&data)
        .open(&keyledger::datadir::KeySource::Default)
        .expect("open");
    let filled_from = ledger.durable_seq();
    let fill_started = Instant::now();
    let sampling = std::sync::atomic::AtomicBool::new(true);
    let writer_rss = std::thread::scope(|scope| {
        // The writer's RSS, sampled every 10 s while it appends: it must stay flat as the log grows.
        let sampler = scope.spawn(|| {
            let mut peak = 0u64;
            let mut last_sample = Instant::now() - Duration::from_secs(10);
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                if last_sample.elapsed() >= Duration::from_secs(10) {
                    peak = peak.max(rss_kib(std::process::id(), "VmRSS:"));
                    last_sample = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            peak.max(rss_kib(std::process::id(), "VmRSS:"))
        });
        fill_to(&ledger, &keys, target, &mut batch_number);
        sampling.store(false, std::sync::atomic::Ordering::Relaxed);
        sampler.join().expect("sampler") as f64 / 1024.0
    });
    let rate = (ledger.durable_seq() - filled_from) as f64 / fill_started.elapsed().as_secs_f64();
    drop(ledger);
    println!("filled {rate} {writer_rss} {batch_number}");
}
