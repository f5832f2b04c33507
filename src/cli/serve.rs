//! `keyledger serve`: the HTTP API over the data directory, with the expiry sweep running every minute.

use super::{Cli, CliError, CliResult, EXIT_FAILED};
use crate::api::{serve, serve_tls, AppState};
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
}

impl ServeArgs {
    fn tls_files(&self) -> Option<(PathBuf, PathBuf)> {
        Some((self.tls_cert.clone()?, self.tls_key.clone()?))
    }
}

pub fn run(cli: &Cli, args: &ServeArgs) -> CliResult {
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
        eprintln!("keyledger standby: waiting for the ledger's writer lock");
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
        eprintln!("keyledger standby: took over as the writer");
    }
    let origin = identity.origin.clone();
    let mut state = AppState::new(ledger.clone(), dir.anchor_public_key()?, identity.origin);
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
        eprintln!(
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
        );
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
        // Alerts leave from the writer only; a sink without its secret stops the start (exit 2).
        let _outbox = if args.follower {
            None
        } else {
            let config = ledger.projections().config.alerts.clone();
            let outbox =
                crate::alerts::outbox::Outbox::start(ledger.clone(), &config, origin.clone())
                    .map_err(|e| CliError::new(2, e))?;
            if !config.sinks.is_empty() {
                eprintln!("alerts: delivering to {} sink(s)", config.sinks.len());
            }
            state.alert_metrics = Some(outbox.metrics.clone());
            Some(outbox)
        };
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
        let shutdown = async {
            stop_signal().await;
            eprintln!("shutting down: finishing in-flight requests, then a final checkpoint");
        };
        let served = match (tls_config, tls) {
            (Some(config), Some((cert, key))) => {
                let reload = tokio::spawn(reload_on_sighup(config.clone(), cert, key));
                let served = serve_tls(listener, state, config, shutdown).await;
                reload.abort();
                served
            }
            _ => match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => serve(listener, state, shutdown).await,
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
    eprintln!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, what process managers and Kubernetes send to stop a service.
async fn stop_signal() {
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
async fn reload_on_sighup(config: RustlsConfig, cert: PathBuf, key: PathBuf) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; restart to load a renewed certificate");
            return;
        };
        while hangups.recv().await.is_some() {
            match config.reload_from_pem_file(&cert, &key).await {
                Ok(()) => eprintln!("reloaded the TLS certificate from {}", cert.display()),
                Err(error) => eprintln!(
                    "could not reload the TLS certificate ({error}); still serving the previous one"
                ),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (config, cert, key);
}
