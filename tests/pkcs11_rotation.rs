//! `audit rotate-signer` between kinds, against SoftHSM2: a file key moves onto a PKCS#11 token, to another key
//! there, and back to a file, with one chain that verifies (and exports) with the first public key alone, each
//! event signed by the key in force for its range and keyledger.toml's `[signer]` saying which that is. A rotation
//! killed with SIGKILL before its commit, after it, or half-way through finishing leaves a ledger that opens with
//! the right key: the old one before the commit, the new one after.
//!
//! Nothing in this process opens the token (SoftHSM reads its configuration once per process): the CLI and the
//! child processes do, each with the test's own SOFTHSM2_CONF.
#![cfg(unix)]

mod common;

use common::softhsm::{token, Token, MODULE, PIN, TOKEN_LABEL};

use keyledger::chain::{parse_public_key_hex, SignerId};
use keyledger::datadir::{rotation, DataDir, KeySource};
use keyledger::event::{Event, EventData};
use keyledger::token::{SignerConfig, SignerKind, PIN_ENV};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const CHILD_DIR: &str = "KEYLEDGER_ROTATION_CHILD_DIR";
const CHILD_STAGE: &str = "KEYLEDGER_ROTATION_CHILD_STAGE";
/// `file`, or the label of the new key on the token.
const CHILD_TO: &str = "KEYLEDGER_ROTATION_CHILD_TO";

fn cli(token: &Token, data: &Path, args: &[&str]) -> (i32, String) {
    let env = [
        ("SOFTHSM2_CONF", token.conf.as_os_str()),
        (PIN_ENV, std::ffi::OsStr::new(PIN)),
    ];
    common::run_cli_with(data, args, &env)
}

fn ok(token: &Token, data: &Path, args: &[&str]) -> String {
    let (code, out) = cli(token, data, args);
    assert_eq!(code, 0, "{args:?}: {out}");
    out
}

/// Creates a key (an event signed by the key in force) and checks the whole log.
fn sign_and_verify(token: &Token, data: &Path, name: &str) {
    let create = ["key", "create", "--name", name, "--env", "prod"];
    ok(
        token,
        data,
        &[&create[..], &["--owner", "team", "--scope", "deploy:prod"]].concat(),
    );
    ok(token, data, &["audit", "verify"]);
}

fn token_signer(key_label: &str) -> SignerConfig {
    SignerConfig {
        kind: SignerKind::Pkcs11,
        module: Some(MODULE.into()),
        token_label: Some(TOKEN_LABEL.into()),
        key_label: Some(key_label.into()),
        pin_file: None,
    }
}

fn id_of(public_hex: &str) -> String {
    SignerId::of(&parse_public_key_hex(public_hex).unwrap()).to_string()
}

/// `[signer]` as keyledger.toml says now.
fn signer_in_config(data: &Path) -> SignerConfig {
    DataDir::new(data).config().unwrap().signer
}

/// `(seq, signer id)` pairs.
type Signed = Vec<(u64, String)>;

/// The signer id of every record, and the `(seq, new signer id)` of every rotation.
fn signers_on_record(data: &Path) -> (Signed, Signed) {
    let store = DataDir::new(data).open_store().unwrap();
    let (mut signed, mut rotations) = (Vec::new(), Vec::new());
    for record in store.scan(1, u64::MAX) {
        let record = record.unwrap();
        signed.push((record.seq, record.signer.to_string()));
        if let EventData::SignerRotated(r) = Event::decode(&record.body).unwrap().data {
            rotations.push((record.seq, r.new_signer_id));
        }
    }
    (signed, rotations)
}

fn last_signer(data: &Path) -> String {
    signers_on_record(data).0.pop().unwrap().1
}

/// `audit rotate-signer` with `args` (split at spaces).
fn rotate(token: &Token, data: &Path, args: &str) -> (i32, String) {
    let args: Vec<&str> = ["audit", "rotate-signer"]
        .into_iter()
        .chain(args.split_whitespace())
        .collect();
    cli(token, data, &args)
}

#[test]
fn rotating_file_to_pkcs11_to_file_keeps_one_verifiable_chain() {
    let Some(token) = token() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    ok(&token, &data, &["init"]);
    sign_and_verify(&token, &data, "on-file");
    let pub_file = data.join("signing.pub");
    let first_id = id_of(&std::fs::read_to_string(&pub_file).unwrap());

    // Bad combinations are refused (exit 2) before anything changes.
    let onto = format!("--to pkcs11 --pkcs11-module {MODULE} --token-label {TOKEN_LABEL}");
    for (args, says) in [
        ("--to pkcs11 --key-label x", "--pkcs11-module is required"),
        (
            "--to file --key-label x",
            "--key-label applies to --to pkcs11 only",
        ),
        ("--pin-file /x", "--pin-file applies to --to pkcs11 only"),
        (onto.as_str(), "--key-label is required"),
    ] {
        let (code, out) = rotate(&token, &data, args);
        assert_eq!(code, 2, "{args}: {out}");
        assert!(out.contains(says), "{args}: {out}");
    }
    assert_eq!(signer_in_config(&data), SignerConfig::default());
    assert!(data.join("signing.key").exists());

    // A file key onto the token.
    let (code, out) = rotate(&token, &data, &format!("{onto} --key-label ledger-a"));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("token \"keyledger-test\", labelled \"ledger-a\""),
        "{out}"
    );
    let retired = data.join(format!("signing.key.retired-{first_id}"));
    assert!(out.contains(&retired.display().to_string()), "{out}");
    assert!(
        out.contains("can sign nothing the log accepts after seq"),
        "{out}"
    );
    assert!(
        !data.join("signing.key").exists(),
        "no key file while on the token"
    );
    assert!(retired.exists() && !data.join("signer.next.toml").exists());
    assert_eq!(signer_in_config(&data), token_signer("ledger-a"));
    sign_and_verify(&token, &data, "on-token-a");

    // The current key by its label is refused; another key on the same token needs only its label.
    let (code, out) = rotate(&token, &data, "--key-label ledger-a");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("names the current signing key"), "{out}");
    let (code, out) = rotate(&token, &data, "--key-label ledger-b");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("The old key stays on its token, labelled \"ledger-a\""),
        "{out}"
    );
    assert_eq!(signer_in_config(&data), token_signer("ledger-b"));
    sign_and_verify(&token, &data, "on-token-b");
    // A retired key is not taken back.
    let (code, out) = rotate(&token, &data, &format!("{onto} --key-label ledger-a"));
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("was this ledger's signer"), "{out}");

    // Off the token, back to a file.
    let (code, out) = rotate(&token, &data, "--to file");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&data.join("signing.key").display().to_string()),
        "{out}"
    );
    assert!(out.contains("kind = \"file\""), "{out}");
    assert_eq!(
        signer_in_config(&data),
        SignerConfig::default(),
        "kind = file, no pkcs11 fields"
    );
    let toml = std::fs::read_to_string(data.join("keyledger.toml")).unwrap();
    assert!(toml.contains("[signer]\nkind = \"file\"\n"), "{toml}");
    assert!(data.join("signing.key").exists());
    sign_and_verify(&token, &data, "on-file-again");

    // One chain: every record signed by the key in force for its range; the export verifies offline.
    let export = tmp.path().join("export.jsonl");
    let export = export.to_str().unwrap();
    ok(&token, &data, &["audit", "export", "-o", export]);
    let public = pub_file.to_str().unwrap();
    let out = ok(
        &token,
        &data,
        &["audit", "verify-export", export, "--public-key", public],
    );
    assert!(out.starts_with("OK"), "{out}");
    let (signed, rotations) = signers_on_record(&data);
    assert_eq!(rotations.len(), 3, "{rotations:?}");
    for (seq, signer) in &signed {
        let in_force = (rotations.iter().rev())
            .find(|(at, _)| at < seq)
            .map_or(&first_id, |(_, id)| id);
        assert_eq!(signer, in_force, "seq {seq}");
    }
    for (at, id) in &rotations {
        let signs = signed.iter().any(|(seq, s)| seq > at && s == id);
        assert!(signs, "{id} signed nothing");
    }
}

/// Not a test on its own: the body of the child process (returns at once unless `KEYLEDGER_ROTATION_CHILD_DIR`
/// is set). Opens the ledger, prepares a rotation to `KEYLEDGER_ROTATION_CHILD_TO`, prints `STAGE 0 <new public
/// key>`, and unless the stage asked for is 0 commits it and prints `STAGE 1 <new public key>`; then waits to be
/// killed.
#[test]
fn rotation_child() {
    let Ok(root) = std::env::var(CHILD_DIR) else {
        return;
    };
    let stage: u32 = std::env::var(CHILD_STAGE).unwrap().parse().unwrap();
    let to = std::env::var(CHILD_TO).unwrap();
    let dir = DataDir::new(root);
    let ledger = dir
        .open(&KeySource::Default)
        .expect("child opens the ledger");
    let new = match to.as_str() {
        "file" => rotation::prepare(&dir),
        label => rotation::prepare_token(&dir, &ledger, &token_signer(label)),
    }
    .expect("prepare");
    println!("\nSTAGE 0 {}", new.public_key_hex());
    if stage > 0 {
        rotation::commit(&ledger, &new, None).expect("commit");
        println!("\nSTAGE 1 {}", new.public_key_hex());
    }
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// Runs the child until it reports `stage`, then kills it (SIGKILL); returns the new key's public key.
fn killed_after(token: &Token, data: &Path, stage: u32, to: &str) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "rotation_child",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_DIR, data)
        .env(CHILD_STAGE, stage.to_string())
        .env(CHILD_TO, to)
        .env("SOFTHSM2_CONF", &token.conf)
        .env(PIN_ENV, PIN)
        .env_remove("KEYLEDGER_SIGNING_KEY")
        .env_remove("KEYLEDGER_SIGNING_KEY_FILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let marker = format!("STAGE {stage} ");
    let public = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            Some(
                line[line.find(&marker)? + marker.len()..]
                    .trim()
                    .to_string(),
            )
        });
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    public.unwrap_or_else(|| panic!("the child never reached stage {stage}"))
}

#[test]
fn a_kill_9_during_rotation_leaves_a_ledger_that_opens_with_the_right_key() {
    let Some(token) = token() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let marker = data.join("signer.next.toml");
    let key_file = data.join("signing.key");
    ok(&token, &data, &["init"]);
    sign_and_verify(&token, &data, "k0");
    let first = id_of(&std::fs::read_to_string(data.join("signing.pub")).unwrap());

    // File → token, killed after prepare: the old key stays in force, the marker is discarded.
    let a = killed_after(&token, &data, 0, "rot-a");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&marker).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the marker is written 0600");
    sign_and_verify(&token, &data, "k1");
    assert_eq!(last_signer(&data), first);
    assert!(!marker.exists() && key_file.exists());
    assert_eq!(signer_in_config(&data), SignerConfig::default());

    // The retry takes the key the first attempt left on the token; killed after the commit, before finishing.
    assert_eq!(killed_after(&token, &data, 1, "rot-a"), a);
    assert!(marker.exists() && key_file.exists());
    assert_eq!(signer_in_config(&data), SignerConfig::default());
    sign_and_verify(&token, &data, "k2");
    assert_eq!(last_signer(&data), id_of(&a));
    assert_eq!(signer_in_config(&data), token_signer("rot-a"));
    assert!(!marker.exists() && !key_file.exists());
    assert!(data.join(format!("signing.key.retired-{first}")).exists());

    // Token → file, killed after the commit; then keyledger.toml rewritten as finishing does first, the key file
    // not yet moved (keyledger.toml says file, and there is no signing.key).
    let f = killed_after(&token, &data, 1, "file");
    assert!(data.join("signing.key.next").exists());
    std::fs::write(data.join("keyledger.toml"), "[signer]\nkind = \"file\"\n").unwrap();
    sign_and_verify(&token, &data, "k3");
    assert_eq!(last_signer(&data), id_of(&f));
    assert!(key_file.exists() && !data.join("signing.key.next").exists());

    // File → token, killed after the commit; keyledger.toml rewritten, the old key file not yet retired.
    let b = killed_after(&token, &data, 1, "rot-b");
    let pending: toml::Table = toml::from_str(&std::fs::read_to_string(&marker).unwrap()).unwrap();
    assert_eq!(pending["public_key"].as_str(), Some(b.as_str()));
    let section = toml::to_string(&toml::Table::from_iter([(
        "signer".to_string(),
        pending["signer"].clone(),
    )]))
    .unwrap();
    std::fs::write(data.join("keyledger.toml"), section).unwrap();
    sign_and_verify(&token, &data, "k4");
    assert_eq!(last_signer(&data), id_of(&b));
    assert_eq!(signer_in_config(&data), token_signer("rot-b"));
    assert!(!marker.exists() && !key_file.exists());
    assert!(data
        .join(format!("signing.key.retired-{}", id_of(&f)))
        .exists());

    // Token → file, killed after prepare: the token's key stays in force, the pending key file is discarded.
    killed_after(&token, &data, 0, "file");
    sign_and_verify(&token, &data, "k5");
    assert_eq!(last_signer(&data), id_of(&b));
    assert_eq!(signer_in_config(&data), token_signer("rot-b"));
    assert!(!data.join("signing.key.next").exists() && !key_file.exists());
}
