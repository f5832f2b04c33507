//! The shell examples of README.md, docs/API.md and docs/OPERATIONS.md run as written, so docs and binary cannot
//! drift: every ```sh block of a document, in order, in one `bash` with `set -euo pipefail`, in an empty
//! directory, with this build's `keyledger` first on PATH. `cargo …` lines are skipped (the binary is built),
//! `127.0.0.1:8080` moves to a free port, and curl runs with `--fail` (from a private .curlrc), so an example
//! answered with an HTTP error fails here, although it only prints the error when pasted. ```text blocks are
//! output or placeholders and never run. Documents whose shell blocks are synopses are listed as not run; in every
//! document, each `keyledger …` command line, in a shell block or in inline code, must parse with the binary's
//! clap definition (tests/docs_examples/commands.rs), so that an unknown flag fails here.
#![cfg(unix)]

#[path = "docs_examples/commands.rs"]
mod commands;
#[path = "common/skip.rs"]
mod skip;

use commands::{dry_parse, keyledger_commands, metavariables, snippets};
use std::env;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one document's examples may take before they are killed.
const LIMIT: Duration = Duration::from_secs(120);

/// The ```sh blocks of `doc`, in order, without `cargo …` lines. A fence that does not say whether it runs
/// (``` or ```bash) fails the test.
fn sh_blocks(name: &str, doc: &str) -> String {
    let mut script = String::new();
    let mut fence: Option<bool> = None; // inside a block: whether it is `sh`
    for (number, line) in doc.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```").map(str::trim) {
            let unclear = fence.is_none() && matches!(info, "" | "bash" | "shell" | "zsh");
            assert!(!unclear, "{name}:{}: mark it ```sh or ```text", number + 1);
            fence = match fence {
                Some(_) => None, // the end of a block
                None => Some(info == "sh"),
            };
        } else if fence == Some(true) && !trimmed.starts_with("cargo ") {
            script.push_str(line);
            script.push('\n');
        }
    }
    assert!(fence.is_none(), "{name}: a code block is not closed");
    script
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

fn installed(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs the examples of `relative` (a path from the repository root) after `prelude` and fails with the script
/// and its output unless they exit 0 within `LIMIT`.
fn run_examples(relative: &str, prelude: &str) {
    let missing = ["bash", "curl", "python3"]
        .into_iter()
        .find(|t| !installed(t));
    if let Some(tool) = missing {
        skip::skip(
            tool,
            &format!("the examples of {relative} need `{tool}`, not installed here"),
        );
        return;
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    let doc = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let port = free_port();
    let body = sh_blocks(relative, &doc).replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    assert!(!body.trim().is_empty(), "{relative} has no ```sh block");
    assert!(
        !body.contains(":8080"),
        "{relative}: write the server's address as 127.0.0.1:8080, so this test can move it to a free port"
    );

    let tmp = tempfile::tempdir().expect("a temporary directory");
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).expect("a working directory");
    std::fs::write(tmp.path().join(".curlrc"), "fail\nshow-error\n").expect("a .curlrc");
    let script = format!(
        "set -euo pipefail\ncd '{}'\n{prelude}{body}",
        work.display()
    );
    let log_path = tmp.path().join("output.log");
    // Appended to: a `tee /dev/stderr` in the examples reopens (and empties) it; later writes must land at its end.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .expect("an output file");
    let bin = Path::new(env!("CARGO_BIN_EXE_keyledger")).parent();
    let bin = bin.expect("the binary's directory").display();
    let path = format!("{bin}:{}", env::var("PATH").unwrap_or_default());

    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(&script)
        .env("PATH", path)
        .env("TMPDIR", tmp.path()) // `mktemp -d` in the README lands in here, and goes with it
        .env("CURL_HOME", tmp.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("the output file again"))
        .stderr(log)
        .process_group(0); // its own group: whatever the script leaves running is stopped with it
    for (name, _) in env::vars_os() {
        if name.to_string_lossy().starts_with("KEYLEDGER_") {
            command.env_remove(name); // no data directory, server or signing key of the caller's
        }
    }
    let mut child = command.spawn().expect("bash starts");
    let started = Instant::now();
    let status = loop {
        match child.try_wait().expect("waiting for bash") {
            Some(status) => break Some(status),
            None if started.elapsed() > LIMIT => break None,
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    // SAFETY: sends a signal to the process group this test created (bash, and a `serve` it may have left
    // running); no memory is involved. The group outlives bash while any member is left.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();

    let output = std::fs::read(&log_path).unwrap_or_default();
    let verdict = match status {
        Some(status) if status.success() => return,
        Some(status) => format!("failed ({status})"),
        None => format!("did not finish within {} s", LIMIT.as_secs()),
    };
    let output = String::from_utf8_lossy(&output);
    panic!(
        "the examples of {relative} {verdict}\n--- script ---\n{script}\n--- output ---\n{output}"
    );
}

#[test]
fn readme_tour_runs_as_written() {
    run_examples("README.md", "");
}

#[test]
fn api_examples_run_as_written() {
    run_examples("docs/API.md", "");
}

#[test]
fn operations_routine_runs_as_written() {
    run_examples("docs/OPERATIONS.md", "");
}

#[test]
fn gateways_key_command_runs_as_written() {
    // The gateway's key is created on an existing ledger.
    run_examples("docs/GATEWAYS.md", "keyledger init >/dev/null\n");
}

/// Documents whose ```sh blocks run above. Every other document's blocks are synopses or fragments (placeholders,
/// a server of the reader's) and must be listed in `NOT_RUN`; their `keyledger …` lines are parsed below.
const RUN: &[&str] = &[
    "README.md",
    "docs/API.md",
    "docs/OPERATIONS.md",
    "docs/GATEWAYS.md",
];
const NOT_RUN: &[&str] = &["docs/ANOMALIES.md", "docs/KEYS.md"];

/// README.md and every docs/*.md, as (path from the repository root, text).
fn documents() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut names = vec!["README.md".to_string()];
    let docs = std::fs::read_dir(root.join("docs")).expect("docs/");
    let mut found: Vec<String> = docs
        .map(|entry| {
            entry
                .expect("a docs/ entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    found.sort();
    names.extend(found);
    names
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(root.join(&name)).expect("a document");
            (name, text)
        })
        .collect()
}

#[test]
fn every_document_with_shell_blocks_is_run_or_listed_as_not_run() {
    for (name, doc) in documents() {
        let has_sh = doc.lines().any(|l| {
            let info = l.trim_start().strip_prefix("```").map(str::trim);
            matches!(info, Some("sh" | "bash" | "shell" | "console"))
        });
        let listed = RUN.contains(&name.as_str()) || NOT_RUN.contains(&name.as_str());
        assert!(
            !has_sh || listed,
            "{name} has shell blocks: run them (docs_examples.rs RUN, and a test) or list it in NOT_RUN"
        );
    }
}

/// Every `keyledger …` command line in README.md and docs/*.md — in shell blocks and in `inline code` — parses
/// with the binary's clap definition, so an unknown flag (exit 2 when pasted) fails here.
#[test]
fn every_keyledger_command_in_the_docs_parses() {
    let mut bad = Vec::new();
    let mut checked = 0;
    for (name, doc) in documents() {
        for (line, snippet) in snippets(&doc) {
            for args in keyledger_commands(&snippet) {
                checked += 1;
                if let Err(error) = dry_parse(&args) {
                    let shown: Vec<&str> = args.iter().map(|w| w.text.as_str()).collect();
                    bad.push(format!(
                        "{name}:{line}: keyledger {}\n{error}",
                        shown.join(" ")
                    ));
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} keyledger commands found: the extraction broke"
    );
    assert!(
        bad.is_empty(),
        "{} documented commands do not parse:\n\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn the_parse_check_catches_an_unknown_flag_and_reads_the_shell_as_written() {
    let parse = |snippet: &str| -> Vec<Result<(), String>> {
        keyledger_commands(snippet)
            .iter()
            .map(|args| dry_parse(args))
            .collect()
    };
    let wrong = "keyledger key create --name nginx-edge --owner platform --scopes ledger:verify";
    assert!(matches!(parse(wrong).as_slice(), [Err(e)] if e.contains("--scopes")));
    assert!(matches!(parse("keyledger key lisst").as_slice(), [Err(_)]));
    let written = r#"ID=$(keyledger key create --name a --env x --owner o --scope s:r --json | jq -r .key.key_id) # c
/usr/bin/time -f "%e s" keyledger --data DIR replay; keyledger audit prove SEQ [--size N] && keyledger key …"#;
    let parsed = parse(written);
    assert_eq!(parsed.len(), 4, "{parsed:?}");
    assert!(parsed.iter().all(Result::is_ok), "{parsed:?}");
    assert_eq!(
        metavariables("--consistency-from <size of the checkpoint> -o w.jsonl"),
        "--consistency-from X -o w.jsonl"
    );
}
