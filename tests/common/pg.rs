//! PostgreSQL for tests: a throwaway cluster from Debian's packages (`initdb`/`pg_ctl`, run as the `postgres` user
//! when the tests run as root) in a temporary directory, or the cluster named by `KEYLEDGER_TEST_PG` (a URL to a
//! database whose role may create databases; `.ci/run` starts one). Each caller gets a fresh database.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

#[allow(clippy::duplicate_mod)]
#[path = "skip.rs"]
mod skip;

/// Why PostgreSQL tests cannot run here, for the skip message.
pub const HOW_TO_RUN: &str =
    "install Debian's postgresql package (apt-get install postgresql), or set \
     KEYLEDGER_TEST_PG=postgres://user@host:port/db; .ci/run does the former";

/// A running cluster, stopped when dropped.
pub struct Cluster {
    pub url_base: String,
    data: PathBuf,
    bin: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self._dir.is_some() {
            let _ = as_postgres(&self.bin.join("pg_ctl"))
                .args(["-D"])
                .arg(&self.data)
                .args(["-m", "immediate", "stop"])
                .output();
        }
    }
}

fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `program` run as the `postgres` user when we are root (initdb refuses root).
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts a throwaway cluster on loopback, or explains why it cannot.
pub fn start_cluster() -> Result<Cluster, String> {
    if let Ok(url) = std::env::var("KEYLEDGER_TEST_PG") {
        let base = url
            .rsplit_once('/')
            .map_or(url.clone(), |(base, _)| base.to_string());
        return Ok(Cluster {
            url_base: base,
            data: PathBuf::new(),
            bin: PathBuf::new(),
            _dir: None,
        });
    }
    let bin = bin_dir().ok_or_else(|| format!("PostgreSQL is not installed: {HOW_TO_RUN}"))?;
    let dir = tempfile::Builder::new()
        .prefix("keyledger-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    if is_root() {
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .map_err(|e| e.to_string())?;
        if !chown.success() {
            return Err("cannot hand the cluster directory to the postgres user".into());
        }
    }
    let data = dir.path().join("data");
    let initdb = as_postgres(&bin.join("initdb"))
        .args([
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !initdb.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        ));
    }
    let port = free_port();
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
        dir.path().display()
    );
    let started = as_postgres(&bin.join("pg_ctl"))
        .arg("-D")
        .arg(&data)
        .args(["-o", &options, "-l"])
        .arg(dir.path().join("server.log"))
        .args(["-w", "start"])
        .output()
        .map_err(|e| format!("pg_ctl: {e}"))?;
    if !started.status.success() {
        return Err(format!(
            "pg_ctl start failed: {}",
            std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
        ));
    }
    Ok(Cluster {
        url_base: format!("postgres://postgres@127.0.0.1:{port}"),
        data,
        bin,
        _dir: Some(dir),
    })
}

impl Cluster {
    /// A new, empty database on the cluster; returns its URL.
    pub fn fresh_database(&self) -> String {
        let name = format!("kl_{}", uuid::Uuid::now_v7().simple());
        let admin = format!("{}/postgres", self.url_base);
        let mut client =
            postgres::Client::connect(&admin, postgres::NoTls).expect("connect to the cluster");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a database");
        format!("{}/{name}", self.url_base)
    }
}

/// The cluster `.ci/run` started (`KEYLEDGER_TEST_PG`), for suites that run over PostgreSQL when asked.
pub fn from_env() -> Option<Cluster> {
    std::env::var("KEYLEDGER_TEST_PG")
        .ok()
        .and_then(|_| start_cluster().ok())
}

/// When `KEYLEDGER_TEST_PG` names a cluster, points `dir` (before `init`) at a fresh database on it: the same suites
/// then run over PostgreSQL (`.ci/run` runs them both ways).
pub fn use_test_store(dir: &keyledger::datadir::DataDir) {
    if let Some(cluster) = from_env() {
        dir.set_store(&cluster.fresh_database())
            .expect("keyledger.toml names the test database");
    }
}

/// A cluster for a test that needs one; `None` (the test then returns) after printing why it is skipped. Only a
/// missing PostgreSQL is a skip: an installed one that does not start (initdb, pg_ctl) fails the test.
pub fn cluster_or_skip() -> Option<Cluster> {
    if std::env::var_os("KEYLEDGER_TEST_PG").is_none() && bin_dir().is_none() {
        skip::skip(
            "PostgreSQL",
            &format!("PostgreSQL is not installed: {HOW_TO_RUN}"),
        );
        return None;
    }
    match start_cluster() {
        Ok(cluster) => Some(cluster),
        Err(reason) => {
            panic!("PostgreSQL is installed but the test cluster did not start: {reason}")
        }
    }
}
