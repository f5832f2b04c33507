//! Key state is a pure function of the log: "as of" past instants gives exactly what held then, any random command sequence leaves the live projection equal to a fresh replay, and no secret
//! ever reaches the data directory or the log output.

mod common;

use keyledger::datadir::KeySource;
use keyledger::event::{Actor, KeyConfig, KeyPatch};
use keyledger::keys::*;
use keyledger::ledger::keys_as_of;
use keyledger::ledger::{replay_from_snapshot, replay_log, Ledger};
use keyledger::projection::{KeyState, KeyStatus};
use keyledger::time::LedgerTime;
use proptest::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

fn who() -> Requester {
    Requester::new(Actor::System, None)
}

fn config(name: &str) -> KeyConfig {
    KeyConfig {
        name: name.into(),
        owner: "o".into(),
        scopes: vec!["read".into()],
        environment: "staging".into(),
        ..Default::default()
    }
}

/// A canonical text of a key state, for comparing two of them.
fn fingerprint(state: &KeyState) -> String {
    let mut entries = state.snapshot_entries();
    entries.sort_by_key(|e| e.key.key_id);
    serde_json::to_string(&entries).unwrap()
}

fn pause() -> LedgerTime {
    std::thread::sleep(Duration::from_millis(5));
    let t = LedgerTime::now();
    std::thread::sleep(Duration::from_millis(5));
    t
}

#[test]
fn as_of_gives_the_state_that_held_at_each_instant() {
    let (_tmp, _dir, ledger) = common::fresh_ledger();
    let a = ledger
        .submit_blocking(CreateKey::new(who(), &config("a")).unwrap())
        .unwrap()
        .key
        .key_id;
    let t1 = pause();
    ledger
        .submit_blocking(SuspendKey {
            who: who(),
            key_id: a,
            until: None,
            reason: None,
        })
        .unwrap();
    let b = ledger
        .submit_blocking(CreateKey::new(who(), &config("b")).unwrap())
        .unwrap()
        .key
        .key_id;
    let t2 = pause();
    ledger
        .submit_blocking(ReactivateKey {
            who: who(),
            key_id: a,
            reason: None,
        })
        .unwrap();
    ledger
        .submit_blocking(
            UpdateKey::new(
                who(),
                b,
                &KeyPatch {
                    owner: Some("new-owner".into()),
                    ..Default::default()
                },
            )
            .unwrap(),
        )
        .unwrap();
    let t3 = pause();
    ledger
        .submit_blocking(RevokeKey {
            who: who(),
            key_id: a,
            reason: None,
        })
        .unwrap();
    let t4 = pause();

    let store = ledger.store().clone();
    let durable = ledger.durable_seq();
    let check = |label: &str| {
        let at = |t| keys_as_of(store.as_ref(), t, durable).unwrap().0;
        let s1 = at(t1);
        assert_eq!(s1.len(), 1, "{label}");
        assert_eq!(
            s1.get(&a).unwrap().status_at(t1),
            KeyStatus::Active,
            "{label}"
        );
        let s2 = at(t2);
        assert_eq!(
            s2.get(&a).unwrap().status_at(t2),
            KeyStatus::Suspended,
            "{label}"
        );
        assert_eq!(s2.get(&b).unwrap().config.owner, "o", "{label}");
        let s3 = at(t3);
        assert_eq!(
            s3.get(&a).unwrap().status_at(t3),
            KeyStatus::Active,
            "{label}"
        );
        assert_eq!(s3.get(&b).unwrap().config.owner, "new-owner", "{label}");
        let s4 = at(t4);
        assert_eq!(
            s4.get(&a).unwrap().status_at(t4),
            KeyStatus::Revoked,
            "{label}"
        );
        assert_eq!(
            fingerprint(&s4),
            fingerprint(&ledger.projections().keys),
            "{label}: as of now equals live"
        );
    };
    check("before any use");
    // Uses in between change nothing about lifecycle state as of each instant.
    let again = ledger
        .submit_blocking(CreateKey::new(who(), &config("c")).unwrap())
        .unwrap();
    ledger
        .submit_blocking(VerifyKey::new(again.secret.expose(), None, None, None))
        .unwrap();
    let s3 = keys_as_of(store.as_ref(), t3, ledger.durable_seq())
        .unwrap()
        .0;
    assert_eq!(s3.len(), 2);
}

#[derive(Clone, Debug)]
enum Op {
    Create,
    Update(usize),
    Rotate(usize, u32),
    Revoke(usize),
    Suspend(usize),
    Reactivate(usize),
    Verify(usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Create),
        1 => (0..8usize).prop_map(Op::Update),
        1 => (0..8usize, 0..3u32).prop_map(|(k, o)| Op::Rotate(k, o)),
        1 => (0..8usize).prop_map(Op::Revoke),
        1 => (0..8usize).prop_map(Op::Suspend),
        1 => (0..8usize).prop_map(Op::Reactivate),
        3 => (0..8usize, any::<bool>()).prop_map(|(k, ok)| Op::Verify(k, ok)),
    ]
}

fn run_ops(ledger: &Ledger, ops: &[Op]) {
    run_ops_calling(ledger, ops, |_| {});
}

/// [`run_ops`], calling `before_op` with each op's position before running it.
fn run_ops_calling(ledger: &Ledger, ops: &[Op], mut before_op: impl FnMut(usize)) {
    let mut keys: Vec<(Uuid, String)> = Vec::new();
    let pick = |keys: &Vec<(Uuid, String)>, i: usize| keys.get(i % keys.len().max(1)).cloned();
    for (position, op) in ops.iter().enumerate() {
        before_op(position);
        // Refusals are part of the test: the rules decide, the projection must follow either way.
        match op.clone() {
            Op::Create => {
                let issued = ledger
                    .submit_blocking(
                        CreateKey::new(who(), &config(&format!("k{}", keys.len()))).unwrap(),
                    )
                    .unwrap();
                keys.push((issued.key.key_id, issued.secret.expose().to_string()));
            }
            Op::Update(i) => {
                if let Some((id, _)) = pick(&keys, i) {
                    let patch = KeyPatch {
                        rate_limit_per_minute: Some(1 + i as u32),
                        ..Default::default()
                    };
                    let _ = ledger.submit_blocking(UpdateKey::new(who(), id, &patch).unwrap());
                }
            }
            Op::Rotate(i, overlap) => {
                if let Some((id, _)) = pick(&keys, i) {
                    if let Ok(issued) = ledger.submit_blocking(RotateKey {
                        who: who(),
                        key_id: id,
                        overlap_seconds: overlap,
                    }) {
                        keys.push((issued.key.key_id, issued.secret.expose().to_string()));
                    }
                }
            }
            Op::Revoke(i) => {
                if let Some((id, _)) = pick(&keys, i) {
                    let _ = ledger.submit_blocking(RevokeKey {
                        who: who(),
                        key_id: id,
                        reason: None,
                    });
                }
            }
            Op::Suspend(i) => {
                if let Some((id, _)) = pick(&keys, i) {
                    let _ = ledger.submit_blocking(SuspendKey {
                        who: who(),
                        key_id: id,
                        until: None,
                        reason: None,
                    });
                }
            }
            Op::Reactivate(i) => {
                if let Some((id, _)) = pick(&keys, i) {
                    let _ = ledger.submit_blocking(ReactivateKey {
                        who: who(),
                        key_id: id,
                        reason: None,
                    });
                }
            }
            Op::Verify(i, well_formed) => {
                if let Some((_, secret)) = pick(&keys, i) {
                    let presented = if well_formed {
                        secret
                    } else {
                        format!("{secret}x")
                    };
                    ledger
                        .submit_blocking(VerifyKey::new(
                            &presented,
                            "10.0.0.1".parse().ok(),
                            Some("read".into()),
                            None,
                        ))
                        .unwrap();
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn any_command_sequence_leaves_the_live_projection_equal_to_a_replay(ops in prop::collection::vec(op(), 1..40)) {
        let (_tmp, _dir, ledger) = common::fresh_ledger();
        run_ops(&ledger, &ops);
        common::wait_for_findings(&ledger);
        let live = fingerprint(&ledger.projections().keys);
        let replayed = replay_log(ledger.store().as_ref(), None, None).unwrap();
        prop_assert_eq!(live, fingerprint(&replayed.projections.keys));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    /// Issue 13: start-up from persisted state (a snapshot taken anywhere, then the tail) gives exactly the
    /// projections a replay from seq 1 gives: keys, usage, anomaly windows and pending actions.
    #[test]
    fn persisted_state_plus_tail_equals_a_full_replay(
        ops in prop::collection::vec(op(), 1..50),
        split in 0..50usize,
    ) {
        let (_tmp, dir, ledger) = common::fresh_ledger();
        let mut taken = None;
        run_ops_calling(&ledger, &ops, |position| {
            if position == split.min(ops.len() - 1) {
                taken = Some((ledger.write_snapshot().unwrap(), ledger.durable_seq()));
            }
        });
        let (written, durable) = taken.expect("the hook ran");
        // A finding the last operation made may be recorded just after the snapshot: its event is in the tail.
        prop_assert!(written.is_some_and(|seq| seq <= durable), "{:?} of {}", written, durable);
        common::wait_for_findings(&ledger);
        let signer = dir.load_signer(&KeySource::Default).unwrap();
        let store = ledger.store().as_ref();
        let resumed = replay_from_snapshot(store, &[signer], &Default::default())
            .unwrap()
            .expect("the snapshot is usable");
        let full = replay_log(store, None, None).unwrap();
        prop_assert_eq!(resumed.head, full.head);
        prop_assert_eq!(resumed.frontier.root(), full.frontier.root());
        prop_assert_eq!(resumed.projections, full.projections);
    }
}

/// Collects everything the tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn no_issued_secret_reaches_the_data_directory_or_the_log_output() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (tmp, _dir, mut ledger) = common::fresh_ledger();
    let mut secrets = Vec::new();
    for n in 0..5 {
        let issued = ledger
            .submit_blocking(CreateKey::new(who(), &config(&format!("k{n}"))).unwrap())
            .unwrap();
        tracing::info!(key = ?issued.secret, "issued");
        ledger
            .submit_blocking(VerifyKey::new(issued.secret.expose(), None, None, None))
            .unwrap();
        let rotated = ledger
            .submit_blocking(RotateKey {
                who: who(),
                key_id: issued.key.key_id,
                overlap_seconds: 60,
            })
            .unwrap();
        secrets.push(issued.secret.expose().to_string());
        secrets.push(rotated.secret.expose().to_string());
    }
    ledger.close();
    drop(ledger);
    let mut files = vec![tmp.path().to_path_buf()];
    let mut scanned = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        scanned += bytes.len();
        for secret in &secrets {
            let body = &secret.as_bytes()[secret.len() - 28..];
            assert!(
                !bytes.windows(body.len()).any(|w| w == body),
                "{} holds (part of) a secret",
                path.display()
            );
        }
    }
    assert!(scanned > 0);
    let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(output.contains("issued"), "the subscriber captured output");
    for secret in &secrets {
        assert!(
            !output.contains(secret.as_str()),
            "log output holds a secret"
        );
    }
}

/// The writer's copy of the key state (a clone taken at open) shares each key's configuration with the published
/// one: uses (last use, rate limiter) leave it shared, an update gives the updated state its own, and the other
/// state keeps the configuration it had.
#[test]
fn a_cloned_key_state_shares_configurations_until_an_update() {
    use keyledger::event::{Event, EventData, KeyCreated, KeyUpdated};
    let event = |seq: u64, data: EventData| Event {
        seq,
        time: LedgerTime::from_micros(1_700_000_000_000_000 + seq as i64),
        id: Uuid::from_u128(u128::from(seq)),
        actor: Actor::System,
        request_id: None,
        data,
    };
    let key_id = Uuid::from_u128(7);
    let mut published = KeyState::default();
    published.apply(&event(
        1,
        EventData::KeyCreated(KeyCreated {
            key_id,
            prefix: "kl_test_0007".into(),
            secret_sha256: "ab".repeat(32),
            config: config("shared"),
            rotated_from: None,
        }),
    ));
    let mut writer = published.clone();
    let shared = |a: &KeyState, b: &KeyState| {
        Arc::ptr_eq(
            &a.get(&key_id).unwrap().config,
            &b.get(&key_id).unwrap().config,
        )
    };
    assert!(shared(&published, &writer));
    let used = event(2, common::used(Some(key_id), "a use"));
    writer.apply(&used);
    published.apply(&used);
    assert!(
        shared(&published, &writer),
        "a use copied the configuration"
    );
    assert!(writer.get(&key_id).unwrap().last_used_at.is_some());
    let update = event(
        3,
        EventData::KeyUpdated(KeyUpdated {
            key_id,
            changes: KeyPatch {
                owner: Some("new-owner".into()),
                ..Default::default()
            },
        }),
    );
    writer.apply(&update);
    assert!(!shared(&published, &writer));
    assert_eq!(writer.get(&key_id).unwrap().config.owner, "new-owner");
    assert_eq!(published.get(&key_id).unwrap().config.owner, "o");
    published.apply(&update);
    assert_eq!(published, writer);
}
