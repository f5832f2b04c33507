//! The key commands as an operator runs them: `last used` shown, offboarding an owner, recovery of an admin
//! key, project-bound verification and no overlap advice for a refused key.

mod common;

use serde_json::Value;
use std::path::Path;

fn cli(data: &Path, args: &[&str]) -> (i32, String) {
    common::run_cli(data, args)
}

fn ok_json(data: &Path, args: &[&str]) -> Value {
    let (code, text) = cli(data, args);
    assert_eq!(code, 0, "{args:?}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

fn ledger() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (code, text) = cli(&data, &["init"]);
    assert_eq!(code, 0, "{text}");
    (tmp, data)
}

fn create(data: &Path, name: &str, owner: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec![
        "key", "create", "--name", name, "--env", "prod", "--owner", owner, "--scope", "read",
        "--json",
    ];
    args.extend_from_slice(extra);
    let created = ok_json(data, &args);
    (
        created["key"]["key_id"].as_str().unwrap().to_string(),
        created["secret"].as_str().unwrap().to_string(),
    )
}

#[test]
fn key_show_and_list_report_the_last_use() {
    let (_tmp, data) = ledger();
    let (id, secret) = create(&data, "svc", "team-a", &[]);
    for _ in 0..5 {
        let (code, text) = cli(&data, &["key", "verify", &secret, "--ip", "198.51.100.4"]);
        assert_eq!(code, 0, "{text}");
    }
    let (code, shown) = cli(&data, &["key", "show", &id]);
    assert_eq!(code, 0, "{shown}");
    let line = shown.lines().find(|l| l.contains("last used")).unwrap();
    assert!(
        line.contains("198.51.100.4") && !line.contains("never"),
        "{shown}"
    );
    let (code, table) = cli(&data, &["key", "list"]);
    assert_eq!(code, 0, "{table}");
    let row = table.lines().find(|l| l.contains(&id)).unwrap();
    assert!(
        table.contains("LAST USED") && !row.contains("never"),
        "{table}"
    );
    let listed = ok_json(&data, &["key", "list", "--json"]);
    let key = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == id.as_str())
        .unwrap();
    assert!(key["last_used_at"].is_string(), "{key}");
    assert_eq!(key["last_used_ip"], "198.51.100.4");
    let at = key["last_used_at"].as_str().unwrap().to_string();
    let past = ok_json(&data, &["key", "show", &id, "--as-of", &at, "--json"]);
    assert_eq!(
        past["last_used_at"].as_str(),
        Some(at.as_str()),
        "as of the last use"
    );
}

#[test]
fn key_list_limit_gives_the_oldest_keys_first_and_refuses_zero() {
    let (_tmp, data) = ledger();
    let ids: Vec<String> = (0..4)
        .map(|i| create(&data, &format!("svc-{i}"), "team-a", &[]).0)
        .collect();
    let key_ids = |args: &[&str]| -> Vec<String> {
        ok_json(&data, args)
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["key_id"].as_str().unwrap().to_string())
            .collect()
    };
    let all = key_ids(&["key", "list", "--json"]);
    let created: Vec<&String> = all.iter().filter(|id| ids.contains(id)).collect();
    assert_eq!(created, ids.iter().collect::<Vec<_>>(), "oldest first");
    let limited = key_ids(&["key", "list", "--limit", "3", "--json"]);
    assert_eq!(limited, all[..3], "the first three of the whole list");
    let (code, text) = cli(&data, &["key", "list", "--limit", "0"]);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("--limit"), "{text}");
}

#[test]
fn revoking_by_owner_revokes_and_prints_every_live_key_of_the_owner() {
    let (_tmp, data) = ledger();
    let (a, _) = create(&data, "a", "mallory", &[]);
    let (b, _) = create(&data, "b", "mallory", &[]);
    let (other, _) = create(&data, "c", "alice", &[]);
    let (code, text) = cli(
        &data,
        &["key", "revoke", "--owner", "mallory", "--reason", "left"],
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("Revoked 2 key(s) of mallory") && text.contains(&a) && text.contains(&b),
        "{text}"
    );
    assert!(!text.contains(&other), "{text}");
    let (code, text) = cli(&data, &["key", "revoke", "--owner", "mallory"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("nothing was revoked"), "{text}");
    let (code, text) = cli(&data, &["key", "revoke"]);
    assert_ne!(code, 0, "a key id or --owner is required: {text}");
}

#[test]
fn admin_recover_issues_a_new_admin_key_on_the_record() {
    let (_tmp, data) = ledger();
    let recovered = ok_json(
        &data,
        &[
            "admin",
            "recover",
            "--reason",
            "lost the bootstrap key",
            "--json",
        ],
    );
    let id = recovered["key"]["key_id"].as_str().unwrap();
    let scopes: Vec<&str> = recovered["key"]["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(scopes.contains(&"ledger:admin"), "{recovered}");
    assert!(recovered["secret"]
        .as_str()
        .unwrap()
        .starts_with("kl_keyledger_"));
    let history = ok_json(&data, &["history", id, "--json"]);
    let created = &history.as_array().unwrap()[0];
    assert_eq!(created["type"], "key.created", "{created}");
    assert_eq!(created["request_id"], "admin-recover", "{created}");
    assert_eq!(created["actor"]["kind"], "operator", "{created}");
    // A second recovery gets a name of its own.
    let again = ok_json(&data, &["admin", "recover", "--json"]);
    assert_ne!(again["key"]["name"], recovered["key"]["name"]);
}

#[test]
fn verify_names_the_project_and_gives_no_overlap_advice_for_a_refused_key() {
    let (_tmp, data) = ledger();
    let (id, secret) = create(&data, "bound", "team-a", &["--project", "shop"]);
    let (code, text) = cli(&data, &["key", "verify", &secret, "--project", "shop"]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = cli(&data, &["key", "verify", &secret, "--project", "blog"]);
    assert_eq!(code, 5, "{text}");
    assert!(text.contains("project_not_allowed"), "{text}");
    let (code, text) = cli(&data, &["key", "rotate", &id, "--overlap", "1h"]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = cli(&data, &["key", "revoke", &id]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = cli(&data, &["key", "verify", &secret, "--project", "shop"]);
    assert_eq!(code, 5, "{text}");
    assert!(text.contains("DENIED: revoked"), "{text}");
    assert!(!text.contains("switch to its successor"), "{text}");
}

#[test]
fn an_anomaly_policy_is_set_and_cleared_from_the_command_line() {
    let (_tmp, data) = ledger();
    let (id, _) = create(
        &data,
        "gw",
        "edge",
        &[
            "--anomaly-policy",
            r#"{"suspend_on":[],"distinct_ips_max":50}"#,
        ],
    );
    let shown = ok_json(&data, &["key", "show", &id, "--json"]);
    assert_eq!(shown["anomaly_policy"]["distinct_ips_max"], 50, "{shown}");
    assert_eq!(
        shown["anomaly_policy"]["suspend_on"],
        serde_json::json!([]),
        "{shown}"
    );
    let (code, text) = cli(
        &data,
        &[
            "key",
            "update",
            &id,
            "--anomaly-policy",
            r#"{"suspend_on":["nonsense"]}"#,
        ],
    );
    assert_ne!(code, 0, "an unknown rule is refused: {text}");
    assert!(text.contains("anomaly_policy.suspend_on"), "{text}");
    let updated = ok_json(
        &data,
        &["key", "update", &id, "--clear", "anomaly_policy", "--json"],
    );
    assert!(updated.get("anomaly_policy").is_none(), "{updated}");
    let (code, text) = cli(&data, &["key", "update", &id, "--clear", "name"]);
    assert_eq!(code, 2, "name cannot be cleared: {text}");
}

#[test]
#[cfg(unix)]
fn a_closed_pipe_ends_a_listing_quietly() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    let (_tmp, dir) = common::ledger_with_uses(3_000, &[uuid::Uuid::from_u128(7)]);
    for args in [
        vec!["events"],
        vec!["history", "00000000-0000-0000-0000-000000000007"],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyledger"))
            .arg("--data")
            .arg(dir.root())
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty());
        // The reader is dropped here: the pipe closes with most of the output unread.
        let out = child.wait_with_output().unwrap();
        let status = out.status;
        assert!(
            status.success() || status.signal() == Some(13),
            "{args:?}: {status:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}

#[test]
fn the_cli_refuses_what_the_api_refuses() {
    let (_tmp, data) = ledger();
    let (_, secret) = create(&data, "svc", "team-a", &[]);
    let long_agent = "u".repeat(600);
    for (args, field) in [
        (
            vec![
                "key",
                "create",
                "--name",
                "a",
                "--env",
                "prod",
                "--owner",
                "o",
                "--scope",
                "read",
                "--rotate-every-days",
                "30",
                "--notify-days-before",
                "100000",
            ],
            "rotation_policy.notify_days_before",
        ),
        (
            vec![
                "key",
                "create",
                "--name",
                "b",
                "--env",
                "prod",
                "--owner",
                "o",
                "--scope",
                "read",
                "--allow-ip",
                "10.0.0.1/8",
            ],
            "ip_allowlist",
        ),
        (
            vec!["key", "verify", &secret, "--user-agent", &long_agent],
            "user_agent",
        ),
    ] {
        let (code, text) = cli(&data, &args);
        assert_ne!(code, 0, "{args:?}: {text}");
        assert!(text.contains(field), "{args:?}: {text}");
    }
    let (code, text) = cli(
        &data,
        &[
            "key",
            "create",
            "--name",
            "c",
            "--environment",
            "prod",
            "--owner",
            "o",
            "--scope",
            "read",
            "--rate-limit-per-minute",
            "0",
        ],
    );
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("--rate-limit (rate_limit_per_minute)"),
        "refusals name the flag: {text}"
    );
    let (code, text) = cli(&data, &["events", "--from", "-1h"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("key.created"),
        "relative times work on the command line: {text}"
    );
}

#[test]
fn the_operator_is_named_even_without_user_in_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .arg("--data")
        .arg(&data)
        .arg("init")
        .env_remove("USER")
        .env_remove("LOGNAME")
        .output()
        .unwrap();
    assert!(out.status.success());
    let (code, text) = cli(&data, &["events"]);
    assert_eq!(code, 0, "{text}");
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let name = first["actor"]["name"].as_str().unwrap();
    assert!(!name.is_empty() && name != "unknown", "{first}");
}

#[test]
fn a_missing_public_key_file_is_named_as_missing() {
    let (_tmp, data) = ledger();
    let export = data.parent().unwrap().join("window.jsonl");
    let (code, text) = cli(&data, &["audit", "export", "-o", export.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = cli(
        &data,
        &[
            "audit",
            "verify-export",
            export.to_str().unwrap(),
            "--public-key",
            "no-such/signing.pub",
        ],
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("no-such/signing.pub") && text.contains("cannot be read"),
        "{text}"
    );
}

#[test]
fn every_listing_takes_json() {
    let (_tmp, data) = ledger();
    let checkpoint = ok_json(&data, &["audit", "checkpoint", "--json"]);
    assert!(checkpoint["size"].as_u64().unwrap() >= 2, "{checkpoint}");
    assert_eq!(checkpoint["root"].as_str().unwrap().len(), 64);
    assert!(checkpoint["note"]
        .as_str()
        .unwrap()
        .contains(checkpoint["origin"].as_str().unwrap()));
    let (code, text) = cli(&data, &["events", "--json"]);
    assert_eq!(code, 0, "{text}");
    for line in text.lines() {
        serde_json::from_str::<Value>(line).unwrap();
    }
}

#[test]
fn usage_and_anomalies_name_the_key_and_give_units() {
    let (_tmp, data) = ledger();
    let (id, secret) = create(&data, "billing-api", "team-a", &[]);
    for host in 1..=7 {
        let ip = format!("192.0.2.{host}");
        let (code, text) = cli(&data, &["key", "verify", &secret, "--ip", &ip]);
        assert!(code == 0 || code == 5, "{text}");
    }
    let (code, usage) = cli(&data, &["usage"]);
    assert_eq!(code, 0, "{usage}");
    assert!(usage.contains(&format!("billing-api ({id})")), "{usage}");
    let (code, report) = cli(&data, &["report", "credentials"]);
    assert_eq!(code, 0, "{report}");
    let header = report.lines().next().unwrap();
    assert!(
        header.starts_with("KEY ID") && header.contains("LAST USED"),
        "{report}"
    );
    let row = report.lines().find(|l| l.contains("billing-api")).unwrap();
    assert_eq!(
        row.find("team-a"),
        header.find("OWNER"),
        "columns line up:\n{report}"
    );
    let (code, anomalies) = cli(&data, &["anomalies"]);
    assert_eq!(code, 0, "{anomalies}");
    let line = anomalies
        .lines()
        .find(|l| l.contains("distinct_ips"))
        .unwrap_or_else(|| panic!("{anomalies}"));
    assert!(
        line.contains("billing-api") && line.contains("distinct IPs (threshold 5)"),
        "{line}"
    );
}

#[test]
fn serve_refuses_plain_http_off_loopback_unless_told() {
    let (_tmp, data) = ledger();
    let (code, text) = cli(&data, &["serve", "--addr", "0.0.0.0:0"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--allow-plain-http"), "{text}");
}
