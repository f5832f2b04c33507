//! Memory and snapshot size per key (issue 26): the projections of N keys, each created and then used from two
//! addresses (so that every rule holds state for it), measured in a child process per N so that each RSS figure
//! starts from a clean heap. Reports RSS bytes per key, what the writer's copy of the key state adds per key
//! (taken as `Ledger::open` takes it, then one more round of uses applied to both key states), the signed
//! snapshot's body bytes per key (MessagePack with zstd) and the time to encode and decode it.
//! Run: `cargo bench --bench state` (KEYLEDGER_STATE_SIZES, default `10000,100000,1000000`).

use keyledger::event::{Actor, Event, EventData, KeyConfig, KeyCreated, KeyUsed, VerifyCode};
use keyledger::projection::Projections;
use keyledger::time::LedgerTime;
use std::time::Instant;
use uuid::Uuid;

const USES_PER_KEY: u64 = 6;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0)
        * 1024
}

fn config(n: u64) -> KeyConfig {
    KeyConfig {
        name: format!("service-{n}"),
        owner: format!("team-{}", n % 50),
        scopes: vec!["payments:read".into(), "payments:write".into()],
        environment: if n % 3 == 0 { "production" } else { "staging" }.into(),
        ..Default::default()
    }
}

fn event(seq: u64, time: LedgerTime, data: EventData) -> Event {
    Event {
        seq,
        time,
        id: Uuid::from_u128(u128::from(seq)),
        actor: Actor::System,
        request_id: None,
        data,
    }
}

/// A use of key `n` from `ip`.
fn use_of(n: u64, outcome: VerifyCode, ip: String) -> EventData {
    EventData::KeyUsed(KeyUsed {
        key_id: Some(Uuid::from_u128(u128::from(n))),
        prefix: None,
        outcome,
        ip: Some(ip),
        user_agent: Some("billing-service/2.14.1".into()),
        scope: Some("payments:read".into()),
        project: None,
        gateway_ip: None,
        overlap: false,
        method: None,
        path: None,
        committed: None,
    })
}

/// Builds the projections of `keys` keys and prints one table row.
fn measure(keys: u64) {
    let before = rss_bytes();
    let started = Instant::now();
    let mut projections = Projections::new(Default::default());
    let t0 = LedgerTime::parse("2026-12-01T00:00:00Z").expect("a valid time");
    let mut seq = 0u64;
    for n in 0..keys {
        seq += 1;
        projections.apply(&event(
            seq,
            t0.plus_micros(seq as i64),
            EventData::KeyCreated(KeyCreated {
                key_id: Uuid::from_u128(u128::from(n)),
                prefix: format!("kl_live_{n:08x}"),
                secret_sha256: format!("{:064x}", u128::from(n) * 0x9E37_79B9),
                config: config(n),
                rotated_from: None,
            }),
        ));
    }
    for round in 0..USES_PER_KEY {
        for n in 0..keys {
            seq += 1;
            let host = n * 2 + round % 2;
            let outcome = match round {
                3 => VerifyCode::InsufficientScope,
                _ => VerifyCode::Valid,
            };
            let ip = format!("10.{}.{}.{}", host >> 16 & 255, host >> 8 & 255, host & 255);
            projections.apply(&event(
                seq,
                t0.plus_micros(seq as i64),
                use_of(n, outcome, ip),
            ));
        }
    }
    let built = started.elapsed();
    let rss = rss_bytes().saturating_sub(before);
    // The writer keeps a copy of the key state (taken at open) that runs ahead of the published one: take it as
    // `Ledger::open` does, then apply one more round of allowed uses to both key states, as a serving ledger would.
    let mut writer_keys = projections.keys.clone();
    for n in 0..keys {
        seq += 1;
        let ip = format!("10.9.{}.{}", n >> 8 & 255, n & 255);
        let used = event(
            seq,
            t0.plus_micros(seq as i64),
            use_of(n, VerifyCode::Valid, ip),
        );
        writer_keys.apply(&used);
        projections.keys.apply(&used);
    }
    let writer_copy = rss_bytes().saturating_sub(before).saturating_sub(rss);
    let started = Instant::now();
    let packed = rmp_serde::to_vec_named(&projections).expect("the projections serialise");
    let body = zstd::bulk::compress(&packed, 3).expect("zstd compresses");
    let encode = started.elapsed();
    let started = Instant::now();
    let unpacked = zstd::stream::decode_all(body.as_slice()).expect("zstd decompresses");
    let back: Projections = rmp_serde::from_slice(&unpacked).expect("the snapshot reads back");
    let decode = started.elapsed();
    assert_eq!(back.keys.len() as u64, keys);
    assert_eq!(writer_keys.len() as u64, keys);
    println!(
        "| {keys} | {} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
        seq,
        built.as_secs_f64(),
        rss as f64 / keys as f64,
        writer_copy as f64 / keys as f64,
        body.len() as f64 / keys as f64,
        encode.as_secs_f64() * 1000.0,
        decode.as_secs_f64() * 1000.0,
    );
}

fn main() {
    if let Some(keys) = std::env::var("KEYLEDGER_STATE_CHILD")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        measure(keys);
        return;
    }
    let sizes =
        std::env::var("KEYLEDGER_STATE_SIZES").unwrap_or_else(|_| "10000,100000,1000000".into());
    println!(
        "| keys | events applied | build s | RSS B/key | writer's copy B/key | snapshot B/key | encode ms | decode ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let exe = std::env::current_exe().expect("the bench binary");
    for size in sizes.split(',') {
        let status = std::process::Command::new(&exe)
            .env("KEYLEDGER_STATE_CHILD", size.trim())
            .status()
            .expect("run the measurement");
        assert!(status.success(), "the measurement of {size} keys failed");
    }
}
