//! Test vectors pin the format: a small log built from fixed inputs (seed, times, ids) must reproduce the
//! bodies, hashes and signatures in `fixtures/chain-v1/` byte for byte. Regenerate deliberately with
//! `KEYLEDGER_WRITE_FIXTURES=1 cargo test --test vectors` (a format change is a breaking change).

use keyledger::chain::{chain_hash, verify_hash_signature, LedgerSigner, GENESIS_PREV};
use keyledger::event::*;
use keyledger::time::LedgerTime;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use uuid::Uuid;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/chain-v1")
}

fn at(text: &str) -> LedgerTime {
    LedgerTime::parse(text).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x019a_0000_0000_7000_8000_0000_0000_0000 | n)
}

fn events() -> Vec<Event> {
    let key = id(0xaa);
    let successor = id(0xbb);
    let operator = Actor::Operator {
        name: "alice".into(),
    };
    let config = KeyConfig {
        name: "billing-api".into(),
        description: "Billing service → payments gateway".into(),
        owner: "team-billing".into(),
        scopes: vec!["payments:read".into(), "payments:write".into()],
        environment: "production".into(),
        project_ids: vec!["proj-7".into()],
        expires_at: Some(at("2027-11-24T00:00:00Z")),
        metadata: BTreeMap::from([
            ("cost-center".to_string(), "cc-42".to_string()),
            ("note".into(), "quote\" and ü".into()),
        ]),
        ip_allowlist: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
        rate_limit_per_minute: Some(600),
        rotation_policy: Some(RotationPolicy {
            every_days: 90,
            notify_days_before: 14,
        }),
        anomaly_policy: None,
    };
    let data = vec![
        (
            operator.clone(),
            EventData::LedgerInitialized(LedgerInitialized {
                ledger_id: id(1),
                origin: format!("keyledger.local/{}", id(1)),
                public_key: signer().public_key_hex(),
                signer_id: signer().id().to_string(),
            }),
        ),
        (
            operator.clone(),
            EventData::KeyCreated(KeyCreated {
                key_id: key,
                prefix: "kl_prod_Ab3dE".into(),
                secret_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                    .into(),
                config: config.clone(),
                rotated_from: None,
            }),
        ),
        (
            Actor::Key { key_id: key },
            EventData::KeyUsed(KeyUsed {
                key_id: Some(key),
                prefix: Some("kl_prod_Ab3dE".into()),
                outcome: VerifyCode::Valid,
                ip: Some("10.1.2.3".into()),
                user_agent: Some("billing/2.4".into()),
                scope: Some("payments:read".into()),
                project: None,
                gateway_ip: None,
                overlap: false,
                method: None,
                path: None,
                committed: None,
            }),
        ),
        (
            operator.clone(),
            EventData::KeyRotated(KeyRotated {
                key_id: key,
                new_key_id: successor,
                overlap_seconds: 3600,
                old_key_retires_at: at("2026-11-24T03:10:00Z"),
            }),
        ),
        (
            Actor::System,
            EventData::KeyUsed(KeyUsed {
                key_id: None,
                prefix: None,
                outcome: VerifyCode::BadFormat,
                ip: Some("203.0.113.9".into()),
                user_agent: None,
                scope: None,
                project: None,
                gateway_ip: None,
                overlap: false,
                method: None,
                path: None,
                committed: None,
            }),
        ),
        (
            operator,
            EventData::KeyRevoked(KeyStatusChange {
                key_id: key,
                reason: Some("leaked in a CI log".into()),
            }),
        ),
    ];
    data.into_iter()
        .enumerate()
        .map(|(i, (actor, data))| Event {
            seq: i as u64 + 1,
            time: at("2026-11-24T02:10:00Z").plus_micros(i as i64 * 1_500_250),
            id: id(0x100 + i as u128),
            actor,
            request_id: (i == 2).then(|| "req-8c1f".to_string()),
            data,
        })
        .collect()
}

fn signer() -> LedgerSigner {
    LedgerSigner::from_seed(&[7u8; 32])
}

fn build_lines() -> Vec<String> {
    let signer = signer();
    let mut prev = GENESIS_PREV;
    events()
        .iter()
        .map(|event| {
            let body = event.canonical_body().unwrap();
            let hash = chain_hash(&prev, &body);
            let signature = signer.sign_hash(&hash).unwrap();
            assert!(verify_hash_signature(
                &signer.public_key(),
                &hash,
                &signature
            ));
            let line = json!({
                "seq": event.seq,
                "body": String::from_utf8(body).unwrap(),
                "prev_hash": hex::encode(prev),
                "hash": hex::encode(hash),
                "signature": hex::encode(signature),
                "signer_id": signer.id().to_string(),
            });
            prev = hash;
            serde_json::to_string(&line).unwrap()
        })
        .collect()
}

#[test]
fn fixture_log_reproduces_byte_for_byte() {
    let lines = build_lines();
    let log_text = lines.join("\n") + "\n";
    let public = signer().public_key_hex() + "\n";
    let dir = fixture_dir();
    if std::env::var("KEYLEDGER_WRITE_FIXTURES").is_ok() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("log.jsonl"), &log_text).unwrap();
        std::fs::write(dir.join("public_key.hex"), &public).unwrap();
        std::fs::write(dir.join("signing_seed.hex"), hex::encode([7u8; 32]) + "\n").unwrap();
    }
    let stored =
        std::fs::read_to_string(dir.join("log.jsonl")).expect("fixtures/chain-v1/log.jsonl");
    for (n, (built, stored)) in lines.iter().zip(stored.lines()).enumerate() {
        assert_eq!(built, stored, "line {} differs from the fixture", n + 1);
    }
    assert_eq!(lines.len(), stored.lines().count());
    assert_eq!(
        public,
        std::fs::read_to_string(dir.join("public_key.hex")).unwrap()
    );
}

#[test]
fn fixture_bodies_decode_to_the_events_they_came_from() {
    let stored = std::fs::read_to_string(fixture_dir().join("log.jsonl")).unwrap();
    for (line, event) in stored.lines().zip(events()) {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let body = value["body"].as_str().unwrap();
        assert_eq!(Event::decode(body.as_bytes()).unwrap(), event);
    }
}

/// The forged-export vectors in fixtures/export-v1 (also checked by the independent Python verifier in CI):
/// the Rust verifier must give each the verdict recorded beside it.
#[test]
fn export_vectors_give_their_recorded_verdicts() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/export-v1");
    let key_hex = std::fs::read_to_string(root.join("public_key.hex")).unwrap();
    let anchor = keyledger::chain::parse_public_key_hex(&key_hex).unwrap();
    let vectors: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("vectors.json")).unwrap()).unwrap();
    let vectors = vectors.as_array().expect("a list of vectors");
    assert!(vectors.len() >= 10);
    for vector in vectors {
        let file = vector["file"].as_str().unwrap();
        let text = std::fs::read(root.join(file)).unwrap();
        let verdict = keyledger::audit::verify_export::verify_export(text.as_slice(), anchor, None);
        assert_eq!(
            verdict.is_ok(),
            vector["valid"].as_bool().unwrap(),
            "{file} ({}): {verdict:?}",
            vector["why"]
        );
    }
}
