//! `keyledger monitor URL`: an independent auditor of a served ledger. It polls the ledger's signed checkpoint and
//! tlog-tiles entry bundles with a `ledger:audit` key (`$KEYLEDGER_TOKEN`, as client mode reads it), keeps what it
//! verified in its own directory (`monitor::state`), and stops with exit 3 on a fork, a cut or a bad signature,
//! optionally sending a signed alert to a webhook first.

use super::remote::{refusal, root_cause, Remote, TOKEN_ENV};
use super::{Cli, CliError, CliResult, Command, EXIT_FAILED, EXIT_UNREACHABLE, EXIT_VERIFY_FAILED};
use crate::alerts::SinkConfig;
use crate::api::tlog::encode_index;
use crate::monitor::alert::{alert_for, Webhook};
use crate::monitor::state::{MonitorState, StateDir};
use crate::monitor::{poll, Finding, MonitorError, Outcome, Source, TrustedKey, BUNDLE_WIDTH};
use crate::time::LedgerTime;
use clap::Args;
use reqwest::blocking::Response;
use reqwest::{Method, StatusCode};
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

#[derive(Args, Debug, Clone)]
pub struct MonitorArgs {
    /// The ledger's URL (a `keyledger serve`), e.g. https://ledger.example.com; the monitor authenticates with the
    /// key in $KEYLEDGER_TOKEN, which needs only the ledger:audit scope.
    pub url: String,
    /// The ledger's checkpoint key: 64 hex digits (its signing.pub, or a file holding them; the origin is then
    /// read from the checkpoints) or its checkpoint verifier key (`keyledger audit checkpoint --json` prints it).
    #[arg(long)]
    pub public_key: String,
    /// The monitor's directory: what it verified last, in monitor-state.json (created on the first poll).
    #[arg(long)]
    pub state: PathBuf,
    /// Poll once and exit: 0 the ledger verified, 3 a finding, 6 the ledger could not be reached.
    #[arg(long)]
    pub once: bool,
    /// Seconds between two polls (without --once).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub interval: u64,
    /// Also send each finding to this URL as a signed alert (the ledger's alert format and signature).
    #[arg(long, requires = "webhook_secret_file")]
    pub webhook: Option<String>,
    /// The file holding the webhook's signing secret (at least 16 bytes; a trailing newline is removed).
    #[arg(long, requires = "webhook")]
    pub webhook_secret_file: Option<PathBuf>,
}

/// The ledger's API as a [`Source`].
pub(super) struct HttpSource {
    base: String,
    client: Client,
}

/// How requests reach the ledger.
enum Client {
    /// Client mode's connection: `$KEYLEDGER_TOKEN`, `--ca-cert`.
    Remote(Remote),
    /// A plain client with a token given in code (the demo's loopback ledgers).
    Plain {
        client: reqwest::blocking::Client,
        token: Zeroizing<String>,
    },
}

impl HttpSource {
    /// A source for the ledger at `url` (http or https with the system's roots), authenticating with `token`.
    pub(super) fn new(url: &str, token: &str) -> Result<HttpSource, String> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("keyledger-monitor/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(HttpSource {
            base: url.trim_end_matches('/').to_string(),
            client: Client::Plain {
                client,
                token: Zeroizing::new(token.to_string()),
            },
        })
    }

    fn get(&self, path: &str) -> Result<Response, MonitorError> {
        let request = match &self.client {
            Client::Remote(remote) => remote.request(Method::GET, path),
            Client::Plain { client, token } => client
                .get(format!("{}{path}", self.base))
                .bearer_auth(token.as_str()),
        };
        let response = request
            .send()
            .map_err(|e| MonitorError::Unreachable(format!("{}: {}", self.base, root_cause(&e))))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let message = format!("GET {path}: {} ({status})", refusal(response).message);
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST => {
                MonitorError::Refused(message)
            }
            _ => MonitorError::Unreachable(message),
        })
    }
}

impl Source for HttpSource {
    fn checkpoint(&mut self) -> Result<String, MonitorError> {
        let path = "/v1/tlog/checkpoint";
        self.get(path)?
            .text()
            .map_err(|e| MonitorError::Unreachable(format!("GET {path}: {}", root_cause(&e))))
    }

    fn entries(&mut self, index: u64, width: u64) -> Result<Vec<u8>, MonitorError> {
        let mut path = format!("/v1/tlog/tile/entries/{}", encode_index(index));
        if width < BUNDLE_WIDTH {
            path.push_str(&format!(".p/{width}"));
        }
        let bytes = self.get(&path)?.bytes();
        bytes
            .map(|b| b.to_vec())
            .map_err(|e| MonitorError::Unreachable(format!("GET {path}: {}", root_cause(&e))))
    }
}

pub fn run(cli: &Cli, args: &MonitorArgs) -> CliResult {
    let usage = |message: String| CliError::new(2, message);
    let key_text = match Path::new(&args.public_key) {
        path if path.is_file() => std::fs::read_to_string(path)
            .map_err(|e| usage(format!("--public-key {}: {e}", path.display())))?,
        _ => args.public_key.clone(),
    };
    let trusted = TrustedKey::parse(&key_text).map_err(|e| usage(format!("--public-key: {e}")))?;
    let webhook = match (&args.webhook, &args.webhook_secret_file) {
        (Some(url), Some(file)) => Some(webhook(url, file)?),
        _ => None,
    };
    let base = args.url.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(usage(format!(
            "{base:?} is not the ledger's URL: give one such as https://ledger.example.com"
        )));
    }
    if !std::env::var(TOKEN_ENV).is_ok_and(|t| !t.trim().is_empty()) {
        return Err(usage(format!(
            "the monitor needs a key to read the ledger's checkpoints with: set ${TOKEN_ENV} (a key with the \
             ledger:audit scope)"
        )));
    }
    // Client mode's connection (token, --ca-cert, TLS), pointed at the monitored ledger.
    let client = Cli {
        data: None,
        signing_key: None,
        server: Some(base.to_string()),
        ca_cert: cli.ca_cert.clone(),
        log_format: cli.log_format,
        command: Command::Monitor(args.clone()),
    };
    let remote = Remote::from_cli(&client)?
        .ok_or_else(|| CliError::new(EXIT_FAILED, "no ledger URL to monitor"))?;
    let mut source = HttpSource {
        base: remote.base.clone(),
        client: Client::Remote(remote),
    };
    let dir = StateDir::new(&args.state);
    let mut state = dir
        .load()
        .map_err(|e| CliError::new(EXIT_FAILED, e.to_string()))?;
    if let Some(state) = &state {
        eprintln!(
            "monitor: following {} at {base} from the verified size {}",
            state.origin,
            state.size()
        );
    }
    loop {
        match poll(&mut source, &trusted, state.as_ref()) {
            Ok(Outcome::Verified {
                state: verified,
                new_entries,
            }) => {
                if args.once || state.as_ref() != Some(&verified) {
                    println!(
                        "monitor: verified {} at size {} (+{new_entries} entries), root {}",
                        verified.origin,
                        verified.size(),
                        hex::encode(verified.root)
                    );
                }
                if state.as_ref() != Some(&verified) {
                    dir.store(&verified)
                        .map_err(|e| CliError::new(EXIT_FAILED, e.to_string()))?;
                }
                state = Some(verified);
                if args.once {
                    return Ok(());
                }
            }
            Ok(Outcome::Found(finding)) => {
                return Err(found(
                    &finding,
                    state.as_ref(),
                    &trusted,
                    base,
                    webhook.as_ref(),
                ))
            }
            Err(error) if error.is_transient() => {
                if args.once {
                    return Err(CliError::new(EXIT_UNREACHABLE, format!("monitor: {error}")));
                }
                eprintln!("monitor: {error}; trying again in {}s", args.interval);
            }
            Err(error) => return Err(CliError::new(EXIT_FAILED, format!("monitor: {error}"))),
        }
        std::thread::sleep(Duration::from_secs(args.interval));
    }
}

/// The webhook of `--webhook`, its secret read as an alert sink's `secret_file` is.
fn webhook(url: &str, secret_file: &Path) -> Result<Webhook, CliError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(CliError::new(
            2,
            format!("--webhook {url:?} is not an http(s) URL"),
        ));
    }
    let sink = SinkConfig {
        name: "monitor".into(),
        url: url.to_string(),
        secret_file: Some(secret_file.to_path_buf()),
        ..SinkConfig::default()
    };
    let secret = sink
        .secret()
        .map_err(|e| CliError::new(2, format!("--webhook-secret-file: {e}")))?;
    Webhook::new(url, secret).map_err(|e| CliError::new(EXIT_FAILED, e))
}

/// Reports a finding on stderr and to the webhook; the error the monitor exits with.
fn found(
    finding: &Finding,
    state: Option<&MonitorState>,
    trusted: &TrustedKey,
    base: &str,
    webhook: Option<&Webhook>,
) -> CliError {
    eprintln!("{finding}");
    let origin = state
        .map(|s| s.origin.clone())
        .or_else(|| trusted.origin.clone())
        .unwrap_or_else(|| base.to_string());
    if let Some(webhook) = webhook {
        let alert = alert_for(finding, &origin, base, LedgerTime::now());
        match webhook.send(&alert) {
            Ok(()) => eprintln!("monitor: alert {} sent to {}", alert.id, webhook.url),
            Err(error) => eprintln!("monitor: the alert could not be sent: {error}"),
        }
    }
    let kept = state.map_or_else(
        || "nothing was verified before".to_string(),
        |s| format!("the state stays at the verified size {}", s.size()),
    );
    CliError::new(
        EXIT_VERIFY_FAILED,
        format!(
            "{}: the ledger {origin} at {base} failed monitoring; {kept}",
            finding.kind()
        ),
    )
}
