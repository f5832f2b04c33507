//! `keyledger serve`: the HTTP API over the data directory, with the expiry sweep running every minute.

use super::{Cli, CliError, CliResult, EXIT_FAILED};
use crate::api::{serve, AppState};
use crate::event::Actor;
use crate::keys::{Requester, SweepExpired};
use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Listen on a non-loopback address over plain HTTP, e.g. behind a proxy that terminates TLS on the same
    /// host or network. Without it such an address is refused: bearer keys would cross the network in clear.
    #[arg(long)]
    pub allow_plain_http: bool,
}

pub fn run(cli: &Cli, args: &ServeArgs) -> CliResult {
    if !args.addr.ip().is_loopback() && !args.allow_plain_http {
        return Err(CliError::new(
            2,
            format!(
                "refusing to serve plain HTTP on {}: keys are bearer tokens and would cross the network in clear. \
                 Put a TLS-terminating proxy in front (docs/OPERATIONS.md) and pass --allow-plain-http, or listen on \
                 127.0.0.1",
                args.addr
            ),
        ));
    }
    let dir = cli.data_dir();
    let identity = dir.identity()?;
    let ledger = Arc::new(dir.open(&cli.key_source())?);
    let state = AppState::new(ledger.clone(), dir.anchor_public_key()?, identity.origin);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(EXIT_FAILED, e.to_string()))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|e| CliError::new(EXIT_FAILED, format!("binding {}: {e}", args.addr)))?;
        eprintln!(
            "keyledger serving {} on http://{} (Ctrl-C or SIGTERM to stop)",
            dir.root().display(),
            args.addr
        );
        let sweeper = ledger.clone();
        let sweep = tokio::spawn(async move {
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
        serve(listener, state, shutdown)
            .await
            .map_err(|e| CliError::new(EXIT_FAILED, e.to_string()))?;
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
