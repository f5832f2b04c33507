//! The shell examples of README.md, docs/API.md and docs/OPERATIONS.md run as written, so docs and binary cannot
//! drift: every ```sh block of a document, in order, in one `bash` with `set -euo pipefail`, in an empty
//! directory, with this build's `keyledger` first on PATH. `cargo …` lines are skipped (the binary is built),
//! `127.0.0.1:8080` moves to a free port, and curl runs with `--fail` (from a private .curlrc), so an example
//! answered with an HTTP error fails here, although it only prints the error when pasted. ```text blocks are
//! output or placeholders and never run.
#![cfg(unix)]

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

/// Runs the examples of `relative` (a path from the repository root) and fails with the script and its output
/// unless they exit 0 within `LIMIT`.
fn run_examples(relative: &str) {
    let missing = ["bash", "curl", "python3"]
        .into_iter()
        .find(|t| !installed(t));
    if let Some(tool) = missing {
        eprintln!("skipping the examples of {relative}: they need `{tool}`, not installed here");
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
    let script = format!("set -euo pipefail\ncd '{}'\n{body}", work.display());
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
    run_examples("README.md");
}

#[test]
fn api_examples_run_as_written() {
    run_examples("docs/API.md");
}

#[test]
fn operations_routine_runs_as_written() {
    run_examples("docs/OPERATIONS.md");
}
