//! `keyledger serve`: the HTTP API over the data directory, with the expiry sweep running every minute, and the
//! limits on its connections (how long a request head may take, how long one may stay idle, how many are open).

use super::{Cli, CliError, CliResult, LogFormat, EXIT_FAILED};
use crate::api::limits::{Limits, DEFAULT_MAX_CONNECTIONS};
use crate::api::{serve_limited, serve_tls, AppState};
use crate::event::Actor;
use crate::keys::{Requester, SweepExpired};
use axum_server::tls_rustls::RustlsConfig;
use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// While serving, the data directory holds the server's URL here, so that a command refused because the
/// directory is in use can say where to send it instead.
pub const SERVE_URL_FILE: &str = "serve.url";

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Listen on a non-loopback address over plain HTTP, e.g. behind a proxy that terminates TLS on the same
    /// host or network. Without it such an address is refused: bearer keys would cross the network in clear.
    #[arg(long)]
    pub allow_plain_http: bool,
    /// Serve HTTPS with this certificate chain (PEM). Needs --tls-key; reloaded on SIGHUP.
    #[arg(
        long,
        env = "KEYLEDGER_TLS_CERT",
        requires = "tls_key",
        value_name = "PEM_FILE"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM, PKCS#8, PKCS#1 or SEC1) of --tls-cert. Reloaded on SIGHUP.
    #[arg(
        long,
        env = "KEYLEDGER_TLS_KEY",
        requires = "tls_cert",
        value_name = "PEM_FILE"
    )]
    pub tls_key: Option<PathBuf>,
    /// Wait for the ledger's current writer (another `serve` on the same PostgreSQL store) to stop or die, then
    /// take over: open, replay and listen. Nothing listens while waiting.
    #[arg(long, conflicts_with = "follower")]
    pub standby: bool,
    /// Serve reads only, following the log the writer appends to PostgreSQL (any number of followers, on any
    /// host). Writes and /v1/verify answer 503 naming the leader; callers' keys are verified (and their use
    /// recorded) by the leader, with this follower's own ledger:verify key from $KEYLEDGER_FOLLOWER_KEY(_FILE).
    /// Needs no signing key.
    #[arg(long)]
    pub follower: bool,
    /// The URL clients and followers should use to reach this server when it is the writer (default: the scheme
    /// and --addr); followers name it in their 503 answers and send verifications to it.
    #[arg(long, value_name = "URL")]
    pub advertise: Option<String>,
    /// How long a request's head (request line and header fields) may take to arrive from its first byte; a
    /// later one is answered 408 and its connection closed (e.g. 10s, 500ms).
    #[arg(
        long,
        env = "KEYLEDGER_HEADER_TIMEOUT",
        value_name = "DURATION",
        default_value = "10s",
        value_parser = humantime::parse_duration
    )]
    pub header_timeout: Duration,
    /// How long a connection may stay open with no request begun (a new one, or one kept alive between
    /// requests); it is then closed without an answer. Keep it above a proxy's idle upstream timeout.
    #[arg(
        long,
        env = "KEYLEDGER_IDLE_TIMEOUT",
        value_name = "DURATION",
        default_value = "75s",
        value_parser = humantime::parse_duration
    )]
    pub idle_timeout: Duration,
    /// How many connections may be open at once; more are answered 503 (closed, over TLS) until some close.
    #[arg(long, env = "KEYLEDGER_MAX_CONNECTIONS", value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
}

impl ServeArgs {
    fn tls_files(&self) -> Option<(PathBuf, PathBuf)> {
        Some((self.tls_cert.clone()?, self.tls_key.clone()?))
    }

    fn limits(&self) -> Limits {
        Limits {
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
        }
    }
}

/// Says `message` on stderr: a line of text, or with `--log-format json` a JSON line shaped like the log's own,
/// so that the stream stays one format. Shown whatever the log level.
fn say(format: LogFormat, message: &str) {
    match format {
        LogFormat::Text => eprintln!("{message}"),
        LogFormat::Json => eprintln!(
            "{}",
            serde_json::json!({
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "level": "INFO",
                "fields": { "message": message },
                "target": "keyledger::serve",
            })
        ),
    }
}

pub fn run(cli: &Cli, args: &ServeArgs) -> CliResult {
    let format = cli.log_format;
    let limits = args.limits();
    limits.check().map_err(|e| CliError::new(2, e))?;
    let tls = args.tls_files();
    if tls.is_none() && !args.addr.ip().is_loopback() && !args.allow_plain_http {
        return Err(CliError::new(
            2,
            format!(
                "refusing to serve plain HTTP on {}: keys are bearer tokens and would cross the network in clear. \
                 Serve HTTPS with --tls-cert and --tls-key, or put a TLS-terminating proxy in front (docs/OPERATIONS.md) \
                 and pass --allow-plain-http, or listen on 127.0.0.1",
                args.addr
            ),
        ));
    }
    let mut dir = cli.data_dir();
    if args.standby {
        dir = dir.waiting_for_writer();
        say(
            format,
            "keyledger standby: waiting for the ledger's writer lock",
        );
    }
    let identity = dir.identity()?;
    let leader_auth = if args.follower {
        Some(crate::api::follower_auth::LeaderAuth::from_env().map_err(|e| CliError::new(2, e))?)
    } else {
        None
    };
    let ledger = Arc::new(if args.follower {
        dir.open_follower()?
    } else {
        dir.open_with(&cli.key_source(), crate::ledger::Startup::Snapshot)?
    });
    if args.standby {
        say(format, "keyledger standby: took over as the writer");
    }
    let origin = identity.origin.clone();
    let config = dir.config()?;
    let mut state = AppState::new(ledger.clone(), dir.anchor_public_key()?, identity.origin)
        .configured(&config.authz, &config.http, &config.alerts)
        .witnessed_by(
            crate::audit::witnessed::WitnessQuorum::from_config(
                &config.witnesses,
                &config.witness_policy,
            )
            .map_err(|e| CliError::new(2, e))?,
        );
    if let Some(leader_auth) = leader_auth {
        state = state.following(leader_auth);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(EXIT_FAILED, e.to_string()))?;
    runtime.block_on(async {
        let listener = std::net::TcpListener::bind(args.addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| CliError::new(EXIT_FAILED, format!("binding {}: {e}", args.addr)))?;
        let tls_config = match &tls {
            Some((cert, key)) => Some(load_tls(cert, key).await?),
            None => None,
        };
        // Alerts leave from the writer only; a sink without its secret stops the start (exit 2) before anything
        // is announced.
        let (_outbox, sinks) = if args.follower {
            (None, 0)
        } else {
            let outbox = crate::alerts::outbox::Outbox::start(
                ledger.clone(),
                &config.alerts,
                origin.clone(),
            )
            .map_err(|e| CliError::new(2, e))?;
            state.alert_metrics = Some(outbox.metrics.clone());
            (Some(outbox), config.alerts.sinks.len())
        };
        say(
            format,
            &format!(
                "keyledger {} {} on {}://{} (Ctrl-C or SIGTERM to stop{})",
                if args.follower {
                    "following (read-only)"
                } else {
                    "serving"
                },
                dir.root().display(),
                if tls.is_some() { "https" } else { "http" },
                args.addr,
                if tls.is_some() {
                    "; SIGHUP reloads the certificate"
                } else {
                    ""
                }
            ),
        );
        if sinks > 0 {
            say(format, &format!("alerts: delivering to {sinks} sink(s)"));
        }
        let url_file = dir.root().join(SERVE_URL_FILE);
        let scheme = if tls.is_some() { "https" } else { "http" };
        if let Err(error) = std::fs::write(&url_file, format!("{scheme}://{}\n", args.addr)) {
            tracing::warn!(%error, "could not note the address in {}", url_file.display());
        }
        if !args.follower {
            let advertised = args
                .advertise
                .clone()
                .unwrap_or_else(|| format!("{scheme}://{}", args.addr));
            let store = ledger.store().clone();
            match tokio::task::spawn_blocking(move || store.advertise_writer(&advertised)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, "could not advertise this writer's address")
                }
                Err(error) => tracing::warn!(%error, "could not advertise this writer's address"),
            }
        }
        let sweeper = ledger.clone();
        let follower = args.follower;
        let sweep = tokio::spawn(async move {
            if follower {
                // The leader sweeps expiries and purges idempotency records; a follower writes nothing.
                return;
            }
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                if let Err(error) = sweeper
                    .submit(SweepExpired {
                        who: Requester::new(Actor::System, None),
                    })
                    .await
                {
                    tracing::warn!(%error, "expiry sweep failed");
                }
                let store = sweeper.clone();
                match tokio::task::spawn_blocking(move || {
                    crate::api::idempotency::purge_expired(&store)
                })
                .await
                {
                    Ok(Err(error)) => tracing::warn!(%error, "purging idempotency records failed"),
                    Err(error) => tracing::warn!(%error, "purging idempotency records failed"),
                    Ok(Ok(_)) => {}
                }
            }
        });
        let shutdown = async move {
            stop_signal().await;
            say(
                format,
                "shutting down: finishing in-flight requests, then a final checkpoint",
            );
        };
        let served = match (tls_config, tls) {
            (Some(config), Some((cert, key))) => {
                let reload = tokio::spawn(reload_on_sighup(config.clone(), cert, key, format));
                let served = serve_tls(listener, state, config, limits, shutdown).await;
                reload.abort();
                served
            }
            _ => match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => serve_limited(listener, state, limits, shutdown).await,
                Err(error) => Err(error),
            },
        };
        let _ = std::fs::remove_file(&url_file);
        served.map_err(|e| CliError::new(EXIT_FAILED, e.to_string()))?;
        sweep.abort();
        Ok::<(), CliError>(())
    })?;
    drop(runtime);
    match Arc::try_unwrap(ledger) {
        // Closing drains the writer, which signs and fsyncs a final checkpoint.
        Ok(mut ledger) => ledger.close(),
        Err(_) => tracing::warn!("the ledger is still shared at shutdown; it closes when released"),
    }
    say(format, "stopped");
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, what process managers and Kubernetes send to stop a service.
pub(super) async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server gracefully");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn load_tls(cert: &Path, key: &Path) -> Result<RustlsConfig, CliError> {
    RustlsConfig::from_pem_file(cert, key).await.map_err(|e| {
        CliError::new(
            EXIT_FAILED,
            format!(
                "loading the TLS certificate {} and key {}: {e}",
                cert.display(),
                key.display()
            ),
        )
    })
}

/// Reloads the certificate and key on every SIGHUP (after a renewal); a failed reload keeps the current pair.
async fn reload_on_sighup(config: RustlsConfig, cert: PathBuf, key: PathBuf, format: LogFormat) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; restart to load a renewed certificate");
            return;
        };
        while hangups.recv().await.is_some() {
            match config.reload_from_pem_file(&cert, &key).await {
                Ok(()) => say(
                    format,
                    &format!("reloaded the TLS certificate from {}", cert.display()),
                ),
                Err(error) => say(
                    format,
                    &format!(
                        "could not reload the TLS certificate ({error}); still serving the previous one"
                    ),
                ),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (config, cert, key, format);
}
