//! Client mode: with KEYLEDGER_ADDR and KEYLEDGER_TOKEN every operator command talks to a running `serve`, prints
//! what the local command prints and exits with the same codes; a locked data directory says how to reach the
//! server.
#![cfg(unix)]

mod common;
#[path = "common/process.rs"]
mod process;

use process::{admin_key_from, Served};
use serde_json::Value;
use std::path::Path;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary on `data`, in client mode when `server` is given.
fn keyledger(data: &Path, server: Option<(&str, &str)>, args: &[&str]) -> Run {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_keyledger"));
    command
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("KEYLEDGER_SIGNING_KEY")
        .env_remove("KEYLEDGER_SIGNING_KEY_FILE")
        .env_remove("KEYLEDGER_ADDR")
        .env_remove("KEYLEDGER_TOKEN");
    if let Some((addr, token)) = server {
        command
            .env("KEYLEDGER_ADDR", addr)
            .env("KEYLEDGER_TOKEN", token);
    }
    let out = command.output().expect("run keyledger");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(run: Run) -> String {
    assert_eq!(
        run.code, 0,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    run.stdout
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn served_ledger() -> (tempfile::TempDir, std::path::PathBuf, String, Served) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (code, init) = common::run_cli(&data, &["init"]);
    assert_eq!(code, 0, "{init}");
    let admin = admin_key_from(&init);
    let served = Served::start(&data, &[]);
    (tmp, data, admin, served)
}

#[test]
fn every_operator_command_works_through_the_server_with_the_local_output() {
    let (_tmp, data, admin, served) = served_ledger();
    let remote = Some((served.base.as_str(), admin.as_str()));
    let run = |args: &[&str]| keyledger(&data, remote, args);

    let created = json(&ok(run(&[
        "key",
        "create",
        "--name",
        "billing",
        "--env",
        "live",
        "--owner",
        "team-pay",
        "--scope",
        "payments:read",
        "--json",
    ])));
    let id = created["key"]["key_id"].as_str().unwrap().to_string();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("kl_live_"), "{created}");

    let table = ok(run(&["key", "list"]));
    assert!(table.starts_with("KEY ID"), "{table}");
    assert!(
        table.contains("billing") && table.contains("2 key(s)"),
        "{table}"
    );
    let first = ok(run(&["key", "list", "--limit", "1"]));
    assert!(
        first.contains("1 key(s)") && !first.contains("billing"),
        "--limit 1 gives the oldest key, the admin's: {first}"
    );
    let shown = ok(run(&["key", "show", &id]));
    assert!(shown.contains("owner        team-pay"), "{shown}");

    let updated = json(&ok(run(&[
        "key",
        "update",
        &id,
        "--rate-limit",
        "100",
        "--json",
    ])));
    assert_eq!(updated["rate_limit_per_minute"], 100, "{updated}");
    let valid = ok(run(&[
        "key",
        "verify",
        &secret,
        "--scope",
        "payments:read",
        "--ip",
        "10.0.0.1",
    ]));
    assert!(valid.starts_with("VALID"), "{valid}");
    let denied = run(&["key", "verify", &secret, "--scope", "payments:write"]);
    assert_eq!(
        denied.code, 5,
        "a denial exits 5 in client mode too: {}",
        denied.stderr
    );
    assert!(
        denied.stdout.starts_with("DENIED: insufficient_scope"),
        "{}",
        denied.stdout
    );

    let suspended = json(&ok(run(&[
        "key", "suspend", &id, "--for", "1h", "--reason", "drill", "--json",
    ])));
    assert_eq!(suspended["status"], "suspended");
    ok(run(&["key", "reactivate", &id]));
    let rotated = ok(run(&["key", "rotate", &id, "--overlap", "1h"]));
    assert!(
        rotated.starts_with(&format!("Rotated {id} → ")),
        "{rotated}"
    );

    let history = ok(run(&["history", &id]));
    for kind in [
        "key.created",
        "key.updated",
        "key.used",
        "key.suspended",
        "key.rotated",
    ] {
        assert!(history.contains(kind), "{kind} in {history}");
    }
    let usage = ok(run(&["usage", "--from", "-1h"]));
    assert!(
        usage.contains(&format!("billing ({id})")),
        "usage names the key: {usage}"
    );
    assert!(ok(run(&["anomalies"])).ends_with("anomalies\n"));
    assert!(ok(run(&["report", "rotation"])).contains("key(s)"));
    let verified = ok(run(&["audit", "verify"]));
    assert!(verified.starts_with("OK: events 1..="), "{verified}");
    let note = ok(run(&["audit", "checkpoint"]));
    assert!(note.contains('—'), "a signed note: {note}");

    let export = data.with_extension("export.jsonl");
    ok(run(&["audit", "export", "-o", export.to_str().unwrap()]));
    let offline = keyledger(
        &data,
        None,
        &[
            "audit",
            "verify-export",
            export.to_str().unwrap(),
            "--public-key",
            data.join("signing.pub").to_str().unwrap(),
        ],
    );
    assert_eq!(
        offline.code, 0,
        "the export fetched through the server verifies: {}",
        offline.stderr
    );

    let found = json(&ok(run(&["key", "find", &secret, "--revoke", "--json"])));
    assert_eq!(found["key"]["status"], "revoked", "{found}");

    // What client mode printed equals what the local commands print once the server has stopped.
    let remote_events = ok(run(&["events"]));
    let remote_history = ok(run(&["history", &id, "--json"]));
    let remote_keys = json(&ok(run(&["key", "show", &id, "--json"])));
    let (stopped, log) = served.stop();
    assert!(stopped, "{log}");
    let local = |args: &[&str]| ok(keyledger(&data, None, args));
    let local_events = local(&["events"]);
    // The local log also holds the server's final checkpoint, if any, after the events the client saw.
    assert!(local_events.starts_with(&remote_events), "events differ");
    assert!(remote_events.lines().count() >= 12, "{remote_events}");
    assert_eq!(remote_history, local(&["history", &id, "--json"]));
    assert_eq!(remote_keys, json(&local(&["key", "show", &id, "--json"])));
}

#[test]
fn a_locked_data_directory_names_the_server_to_use() {
    let (_tmp, data, _admin, served) = served_ledger();
    let refused = keyledger(&data, None, &["key", "list"]);
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains(&format!("KEYLEDGER_ADDR={}", served.base)),
        "{}",
        refused.stderr
    );
}

#[test]
fn client_mode_refusals_are_messages_with_exit_codes() {
    let (_tmp, data, admin, served) = served_ledger();
    let base = served.base.as_str();

    let missing = keyledger(
        &data,
        Some((base, &admin)),
        &["key", "show", "01a20f98-88a2-77e4-aedc-722c469957f0"],
    );
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("not found"), "{}", missing.stderr);

    let bad_token = keyledger(&data, Some((base, "kl_live_nope")), &["key", "list"]);
    assert_eq!(bad_token.code, 1);
    assert!(
        bad_token.stderr.contains("refused $KEYLEDGER_TOKEN"),
        "{}",
        bad_token.stderr
    );

    let invalid = keyledger(
        &data,
        Some((base, &admin)),
        &[
            "key",
            "create",
            "--name",
            "x",
            "--env",
            "live",
            "--owner",
            "o",
            "--scope",
            "a",
            "--allow-ip",
            "10.0.0.1/8",
        ],
    );
    assert_eq!(invalid.code, 1, "{}", invalid.stderr);
    assert!(
        invalid.stderr.contains("ip_allowlist"),
        "{}",
        invalid.stderr
    );

    let local_only = keyledger(&data, Some((base, &admin)), &["replay"]);
    assert_eq!(local_only.code, 2);
    assert!(
        local_only.stderr.contains("unset KEYLEDGER_ADDR"),
        "{}",
        local_only.stderr
    );

    let mut no_token = std::process::Command::new(env!("CARGO_BIN_EXE_keyledger"));
    let no_token = no_token
        .args(["--server", base, "key", "list"])
        .env_remove("KEYLEDGER_TOKEN")
        .output()
        .unwrap();
    assert_eq!(no_token.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("KEYLEDGER_TOKEN"));

    let port = process::free_port();
    let unreachable = keyledger(
        &data,
        Some((&format!("http://127.0.0.1:{port}"), &admin)),
        &["key", "list"],
    );
    assert_eq!(unreachable.code, 1);
    assert!(
        unreachable.stderr.contains("cannot reach the server"),
        "{}",
        unreachable.stderr
    );
}
