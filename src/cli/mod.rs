//! The command line: global options, the command tree, exit codes and the error printer.
//!
//! Exit codes: 0 success; 1 the command failed (message on stderr); 2 bad usage; 3 verification found a problem
//! (tampering or corruption); 4 the data directory is in use by another process; 5 `key verify` was denied.

mod admin_cmd;
mod alerts_cmd;
mod analysis_cmd;
mod analysis_output;
mod archive_cmd;
mod audit_cmd;
mod audit_verify;
pub mod demo;

mod events_cmd;
mod events_follow;
mod key_args;
mod key_cmd;
pub mod key_output;
mod key_request;
mod monitor_cmd;
mod progress;
mod proof_cmd;
mod remote;
mod remote_audit;
mod remote_keys;
mod rotate_cmd;
mod serve;
mod store_cmd;
mod store_migrate;
mod store_report;
mod store_salvage;
mod table;
mod window_args;
mod witness_cmd;
mod witnessed_cmd;

use crate::datadir::{DataDir, KeySource};
use crate::error::LedgerError;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

pub const DEFAULT_DATA_DIR: &str = "./keyledger-data";
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_VERIFY_FAILED: u8 = 3;
pub const EXIT_IN_USE: u8 = 4;
pub const EXIT_DENIED: u8 = 5;
/// `monitor --once` could not reach the ledger (a finding is [`EXIT_VERIFY_FAILED`]).
pub const EXIT_UNREACHABLE: u8 = 6;

#[derive(Parser, Debug)]
#[command(
    name = "keyledger",
    version,
    about = "An audit-first API-key ledger: every key action and use, hash-chained and signed."
)]
pub struct Cli {
    /// Data directory holding the ledger [default: ./keyledger-data].
    #[arg(long, global = true, env = "KEYLEDGER_DATA")]
    pub data: Option<PathBuf>,
    /// Signing key file (64 hex digits). Default: $KEYLEDGER_SIGNING_KEY, $KEYLEDGER_SIGNING_KEY_FILE, <data>/signing.key.
    #[arg(long, global = true)]
    pub signing_key: Option<PathBuf>,
    /// Talk to a running `keyledger serve` at this URL instead of opening the data directory (client mode);
    /// authenticates with the key in $KEYLEDGER_TOKEN.
    #[arg(long, global = true, env = "KEYLEDGER_ADDR", value_name = "URL")]
    pub server: Option<String>,
    /// In client mode, trust this CA certificate (PEM) for the server's TLS certificate, beside the system roots.
    #[arg(long, global = true, env = "KEYLEDGER_CACERT", value_name = "PEM_FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Log lines (stderr, level from $KEYLEDGER_LOG, default warn) as text or as one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new ledger: data directory, signing key (0600), public key and the first event.
    Init(events_cmd::InitArgs),
    /// Print events as JSON lines (canonical bodies), optionally for a time window or one key.
    Events(events_cmd::EventsArgs),
    /// Issue and manage API keys.
    #[command(subcommand)]
    Key(Box<key_args::KeyCommand>),
    /// Every event concerning one key.
    History(key_args::HistoryArgs),
    /// Usage over a time window, grouped by key, IP, user agent, scope or owner.
    Usage(analysis_cmd::UsageArgs),
    /// Anomalies found by the rules (replayed from the log).
    Anomalies(analysis_cmd::AnomaliesArgs),
    /// Reports: stale, rotation, expiring, overlap, owner OWNER, credentials.
    Report(analysis_cmd::ReportArgs),
    /// Rebuild every projection from the log (optionally as of a time) and summarise.
    Replay(analysis_cmd::ReplayArgs),
    /// Audit commands: verify, checkpoints, exports and proofs.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// The log's store: `store copy` moves a ledger between the embedded store and PostgreSQL.
    #[command(subcommand)]
    Store(store_cmd::StoreCommand),
    /// Alerts: the webhook sinks and what happened to each delivery.
    #[command(subcommand)]
    Alerts(alerts_cmd::AlertsCommand),
    /// Serve the HTTP API (loopback by default).
    Serve(serve::ServeArgs),
    /// Administration from the server: `admin recover` issues a new admin key when every other is lost.
    #[command(subcommand)]
    Admin(admin_cmd::AdminCommand),
    /// Run a guided tour on a fresh ledger (a new temporary directory unless --data is given).
    Demo(demo::DemoArgs),
    /// A witness for other ledgers (C2SP tlog-witness): `witness init`, `witness serve`.
    #[command(subcommand)]
    Witness(witness_cmd::WitnessCommand),
    /// Audit a served ledger independently: follow its checkpoints and tiles, exit 3 on a fork, a cut or a bad
    /// signature.
    Monitor(monitor_cmd::MonitorArgs),
}

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl From<LedgerError> for CliError {
    fn from(error: LedgerError) -> Self {
        let code = match error.code() {
            "data_dir_in_use" => EXIT_IN_USE,
            "log_corrupt" => EXIT_VERIFY_FAILED,
            _ => EXIT_FAILED,
        };
        let message = match &error {
            LedgerError::Invalid { field, message } => match flag_for(field) {
                Some(flag) => format!("{flag} ({field}): {message}"),
                None => error.to_string(),
            },
            _ => error.to_string(),
        };
        CliError { code, message }
    }
}

/// The command-line flag that sets a configuration field, so that a refusal speaks the operator's vocabulary.
fn flag_for(field: &str) -> Option<&'static str> {
    Some(match field.split('.').next().unwrap_or(field) {
        "name" => "--name",
        "environment" => "--env",
        "owner" => "--owner",
        "description" => "--description",
        "scopes" => "--scope",
        "project_ids" => "--project",
        "metadata" => "--meta",
        "ip_allowlist" => "--allow-ip",
        "rate_limit_per_minute" => "--rate-limit",
        "expires_at" => "--expires",
        "anomaly_policy" => "--anomaly-policy",
        "rotation_policy" if field.ends_with("notify_days_before") => "--notify-days-before",
        "rotation_policy" => "--rotate-every-days",
        "user_agent" => "--user-agent",
        "scope" => "--scope",
        "project" => "--project",
        "until" => "--until",
        "reason" => "--reason",
        "overlap_seconds" => "--overlap",
        _ => return None,
    })
}

impl CliError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

pub type CliResult = Result<(), CliError>;

impl Cli {
    pub fn data_dir(&self) -> DataDir {
        DataDir::new(
            self.data
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        )
    }

    pub fn key_source(&self) -> KeySource {
        self.signing_key
            .clone()
            .map(KeySource::File)
            .unwrap_or_default()
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    if !matches!(cli.command, Command::Serve(_)) {
        quiet_on_closed_pipe();
    }
    // A server reports failed anchoring on /healthz and /metrics while it runs; a command, by its exit code.
    let serving = matches!(cli.command, Command::Serve(_));
    let result = run(&cli).and_then(|()| match crate::audit::anchor::failures_in_this_process() {
        0 => Ok(()),
        _ if serving => Ok(()),
        failed => Err(CliError::new(
            EXIT_FAILED,
            format!("{failed} checkpoint(s) could not be anchored outside the data directory (see the log above); the events themselves are recorded"),
        )),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", error.message);
            if error.code == EXIT_IN_USE {
                eprintln!("{}", in_use_hint(&cli));
            }
            ExitCode::from(error.code)
        }
    }
}

fn run(cli: &Cli) -> CliResult {
    let local = match &cli.command {
        Command::Init(_) => Some("init"),
        Command::Replay(_) => Some("replay"),
        Command::Admin(_) => Some("admin"),
        Command::Serve(_) => Some("serve"),
        _ => None,
    };
    if let Some(command) = local {
        remote::local_only(cli, command)?;
    }
    match &cli.command {
        Command::Init(args) => events_cmd::init(cli, args),
        Command::Events(args) => events_cmd::events(cli, args),
        Command::Key(command) => key_cmd::run(cli, command),
        Command::History(args) => key_cmd::history(cli, args),
        Command::Usage(args) => analysis_cmd::usage(cli, args),
        Command::Anomalies(args) => analysis_cmd::anomalies(cli, args),
        Command::Report(args) => analysis_cmd::run_report(cli, args),
        Command::Replay(args) => analysis_cmd::run_replay(cli, args),
        Command::Audit(command) => audit_cmd::run(cli, command),
        Command::Store(command) => store_cmd::run(cli, command),
        Command::Alerts(command) => alerts_cmd::run(cli, command),
        Command::Demo(args) => demo::run(cli, args),
        Command::Admin(command) => admin_cmd::run(cli, command),
        Command::Serve(args) => serve::run(cli, args),
        Command::Witness(command) => witness_cmd::run(command),
        Command::Monitor(args) => monitor_cmd::run(cli, args),
    }
}

/// How to reach the process that holds the data directory: its server, through client mode.
fn in_use_hint(cli: &Cli) -> String {
    let url = std::fs::read_to_string(cli.data_dir().root().join(serve::SERVE_URL_FILE))
        .ok()
        .map(|text| text.trim().to_string())
        .filter(|url| !url.is_empty());
    let url = url.as_deref().unwrap_or("http://127.0.0.1:8080");
    format!(
        "hint: `keyledger serve` is probably running on this data directory; send the command to it instead:\n  \
         export KEYLEDGER_ADDR={url} KEYLEDGER_TOKEN=<a key with the scopes the command needs>\n  \
         (or pass --server {url})"
    )
}

/// A command whose output is cut short by a closed pipe (`keyledger events | head -1`) ends as a Unix filter
/// does, by SIGPIPE (exit 141 in a shell), instead of panicking in `println!`. Not for `serve`, whose sockets
/// must keep reporting a closed peer as an error.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called once at start-up before any other thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYLEDGER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in files or log collectors.
        .with_ansi(std::io::stderr().is_terminal());
    // A second initialisation (in tests) is harmless; keep the first.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod help_tests {
    use super::Cli;
    use clap::CommandFactory;

    fn undocumented(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let documented = arg.get_help().is_some() || arg.get_long_help().is_some();
            if !documented && !matches!(arg.get_id().as_str(), "help" | "version") {
                missing.push(format!("{path} --{}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            undocumented(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }

    #[test]
    fn every_flag_of_every_command_has_help() {
        let mut missing = Vec::new();
        undocumented(&Cli::command(), "keyledger", &mut missing);
        assert!(missing.is_empty(), "flags without help: {missing:#?}");
    }
}
