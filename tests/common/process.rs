//! `keyledger serve` as a child process for tests that drive the real binary: a free loopback port, start,
//! wait until ready, and stop (SIGTERM, then kill) when dropped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs `keyledger --data DATA ARGS…` to completion.
pub fn keyledger(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("keyledger runs")
}

/// Polls `done` every 100 ms for up to 20 s, failing the test with `what` if it never holds.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(20), "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The bootstrap admin key `keyledger init` printed.
pub fn admin_key_from(init_output: &str) -> String {
    init_output
        .split_whitespace()
        .find(|w| w.starts_with("kl_keyledger_"))
        .expect("the bootstrap admin key is printed")
        .to_string()
}

/// A `keyledger serve` child over plain HTTP on 127.0.0.1.
pub struct Served {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Served {
    /// Starts `keyledger --data DATA serve` with `extra` arguments and waits until /healthz answers.
    pub fn start(data: &Path, extra: &[&str]) -> Served {
        Self::start_with_env(data, extra, &[])
    }

    /// [`Served::start`] with extra environment variables.
    pub fn start_with_env(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Served {
        let addr = format!("127.0.0.1:{}", free_port());
        let log = data.with_extension("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_keyledger"))
            .arg("--data")
            .arg(data)
            .args(["serve", "--addr", &addr])
            .args(extra)
            .env_remove("KEYLEDGER_SIGNING_KEY")
            .env_remove("KEYLEDGER_SIGNING_KEY_FILE")
            .env("KEYLEDGER_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(&log).expect("a log file"),
            ))
            .spawn()
            .expect("serve starts");
        let served = Served {
            child,
            base: format!("http://{addr}"),
            log,
        };
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("a client");
        wait_until("serve answers /healthz", || {
            client
                .get(format!("{}/healthz", served.base))
                .send()
                .is_ok_and(|r| r.status().is_success())
        });
        served
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: sending a signal to our own child process by pid has no memory-safety preconditions.
        let sent = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(sent, 0, "the signal reaches the server");
    }

    /// Stops the server with SIGTERM and returns whether it exited successfully, with its log.
    pub fn stop(mut self) -> (bool, String) {
        self.signal(libc::SIGTERM);
        let ok = self.child.wait().is_ok_and(|s| s.success());
        (ok, std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
