//! The signing key on a PKCS#11 token (issue 30), against SoftHSM2 (Debian `softhsm2`; CI installs it): `init`
//! with `[signer] kind = "pkcs11"` generates the key on the token, sensitive and non-extractable (PKCS#11 will not
//! give its value), and writes no key file; events signed on the token verify with the public key alone and
//! carry its signer id; a wrong PIN at start is a clear error naming the variable; a token that disappears
//! while the ledger runs stops appends (nothing acknowledged is lost) instead of signing with anything else, and
//! a server signs again without a restart once the token is back with the same key (never with another).

mod common;

use common::softhsm::{token, Token, MODULE, PIN};
#[path = "common/process.rs"]
mod process;

use keyledger::chain::LedgerSigner;
use keyledger::datadir::{DataDir, KeySource};
use keyledger::token::{SignerConfig, SignerKind, TokenKey, PIN_ENV};
use std::path::Path;

fn cli(token: &Token, data: &Path, pin: &str, args: &[&str]) -> (i32, String) {
    let env = [
        ("SOFTHSM2_CONF", token.conf.as_os_str()),
        (PIN_ENV, std::ffi::OsStr::new(pin)),
    ];
    common::run_cli_with(data, args, &env)
}

/// One test runs everything in this process that needs SoftHSM's configuration, which it reads once, at
/// C_Initialize; the CLI runs get it from their environment.
#[test]
fn a_ledger_signs_with_a_key_that_never_leaves_the_token() {
    let Some(token) = token() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");

    // A wrong PIN is a clear error naming where the PIN came from; no ledger is created, and the [signer]
    // section `init --signer pkcs11` wrote stays for the next try.
    let init = INIT_ON_TOKEN;
    let (code, out) = cli(&token, &data, "0000", &init);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains(&format!("${PIN_ENV}")), "{out}");
    assert!(!data.join("ledger.json").exists());
    let written = std::fs::read_to_string(data.join("keyledger.toml")).unwrap();
    assert!(written.contains("kind = \"pkcs11\""), "{written}");

    let (code, out) = cli(&token, &data, PIN, &["init"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("on the PKCS#11 token"), "{out}");
    assert!(
        !data.join("signing.key").exists(),
        "no key file for a token's key"
    );
    let (code, out) = cli(
        &token,
        &data,
        PIN,
        &[
            "key",
            "create",
            "--name",
            "ci",
            "--env",
            "prod",
            "--owner",
            "team",
            "--scope",
            "deploy:prod",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = cli(&token, &data, PIN, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");

    // Every event carries the token key's signer id and verifies with signing.pub alone.
    std::env::set_var("SOFTHSM2_CONF", &token.conf);
    std::env::set_var(PIN_ENV, PIN);
    let dir = DataDir::new(&data);
    let public = dir.anchor_public_key().unwrap();
    let store = dir.open_store().unwrap();
    let signer_id = keyledger::chain::SignerId::of(&public);
    let mut events = 0;
    for record in store.scan(1, u64::MAX) {
        let record = record.unwrap();
        assert_eq!(record.signer, signer_id, "seq {}", record.seq);
        assert!(keyledger::chain::verify_hash_signature(
            &public,
            &record.hash,
            &record.signature
        ));
        events += 1;
    }
    assert!(events >= 2);
    drop(store);

    // The private key cannot be read through PKCS#11, and the token's key is the ledger's.
    let config: SignerConfig = dir.config().unwrap().signer;
    assert_eq!(config.kind, SignerKind::Pkcs11);
    let key = TokenKey::open(&config, false).unwrap();
    assert_eq!(key.public_key(), public);
    assert!(!key.private_value_readable().unwrap());
    let signer = LedgerSigner::from_token(key);
    assert!(signer.seed_hex().is_none());

    // With the token gone, appends stop with a clear error and nothing is acknowledged.
    let ledger = dir.open(&KeySource::Default).unwrap();
    let before = ledger.durable_seq();
    std::fs::remove_dir_all(&token.tokens).unwrap();
    let result = ledger.submit_blocking(keyledger::ledger::AppendEvents {
        actor: keyledger::event::Actor::System,
        request_id: None,
        events: vec![common::used(None, "after the token left")],
    });
    let error = result.unwrap_err().to_string();
    assert!(error.contains("could not sign"), "{error}");
    assert_eq!(ledger.durable_seq(), before);
    assert!(ledger.failure().is_some());
    drop(ledger);
    drop(signer);
    // What was acknowledged is all there, and verifies.
    let store = dir.open_store().unwrap();
    assert_eq!(store.head().unwrap().map(|h| h.seq), Some(before));
}

const INIT_ON_TOKEN: [&str; 9] = [
    "init",
    "--signer",
    "pkcs11",
    "--pkcs11-module",
    MODULE,
    "--token-label",
    "keyledger-test",
    "--key-label",
    "ledger-signing",
];

/// A running server whose token goes away: appends are refused (503) and `/healthz` answers 503 with the reason;
/// a token that comes back holding another key under the label is not used; when the token comes back as it was,
/// the server signs again without a restart, with the same key, and nothing refused meanwhile is on the record.
#[test]
fn a_server_signs_again_when_its_token_comes_back() {
    let Some(token) = token() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (code, out) = cli(&token, &data, PIN, &INIT_ON_TOKEN);
    assert_eq!(code, 0, "{out}");
    let admin = process::admin_key_from(&out);
    let conf = token.conf.to_string_lossy().to_string();
    let served = process::Served::start_with_env(
        &data,
        &[],
        &[("SOFTHSM2_CONF", conf.as_str()), (PIN_ENV, PIN)],
    );
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let create = |name: &str| {
        let response = client
            .post(format!("{}/v1/keys", served.base))
            .bearer_auth(&admin)
            .json(&serde_json::json!({
                "name": name, "owner": "team", "environment": "prod", "scopes": ["deploy:prod"]
            }))
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().unwrap_or_default())
    };
    let health = || {
        let response = client
            .get(format!("{}/healthz", served.base))
            .send()
            .unwrap();
        (
            response.status().as_u16(),
            response.text().unwrap_or_default(),
        )
    };
    let (status, body) = create("before");
    assert_eq!(status, 201, "{body}");

    let saved = tmp.path().join("tokens-saved");
    common::copy_dir(&token.tokens, &saved);
    std::fs::remove_dir_all(&token.tokens).unwrap();
    let (status, body) = create("while-gone");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("could not sign"), "{body}");
    let (status, body) = health();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("appends resume when"), "{body}");

    // A token by the same label holding another key by the same label: the server keeps refusing.
    std::fs::create_dir_all(&token.tokens).unwrap();
    let other = tmp.path().join("other");
    token.init();
    let (code, out) = cli(&token, &other, PIN, &INIT_ON_TOKEN);
    assert_eq!(code, 0, "{out}");
    process::wait_until("the watcher refuses the other key", || {
        std::fs::read_to_string(&served.log)
            .unwrap_or_default()
            .contains("refusing to sign with it")
    });
    let (status, body) = create("other-key");
    assert_eq!(status, 503, "{body}");

    // The token as it was: appends resume without a restart.
    std::fs::remove_dir_all(&token.tokens).unwrap();
    common::copy_dir(&saved, &token.tokens);
    process::wait_until("/healthz answers 200 again", || health().0 == 200);
    // The refused create left nothing behind in the writer's view: its name is free.
    let (status, body) = create("while-gone");
    assert_eq!(status, 201, "{body}");
    let (stopped, log) = served.stop();
    assert!(stopped, "{log}");
    assert!(log.contains("appends resume"), "{log}");

    let (code, out) = cli(&token, &data, PIN, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    // Every event is signed by the ledger's one key, and only the keys acknowledged are on the record.
    let dir = DataDir::new(&data);
    let public = dir.anchor_public_key().unwrap();
    let signer_id = keyledger::chain::SignerId::of(&public);
    let store = dir.open_store().unwrap();
    let mut names = Vec::new();
    for record in store.scan(1, u64::MAX) {
        let record = record.unwrap();
        assert_eq!(record.signer, signer_id, "seq {}", record.seq);
        let event = keyledger::event::Event::decode(&record.body).unwrap();
        if let keyledger::event::EventData::KeyCreated(created) = event.data {
            names.push(created.config.name);
        }
    }
    assert!(
        names.ends_with(&["before".to_string(), "while-gone".to_string()]),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n == "other-key"), "{names:?}");
}
