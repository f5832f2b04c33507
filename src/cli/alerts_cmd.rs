//! `keyledger alerts sinks|deliveries`: the webhook sinks keyledger.toml names (without secrets) and what
//! happened to each alert at each sink — from the data directory, or from a running server with --server.

use super::remote::Remote;
use super::{Cli, CliError, CliResult};
use crate::alerts::deliveries::{list, Delivery};
use crate::api::alerts::{parse_status, sinks_view};
use clap::{Args, Subcommand};
use serde_json::Value;

#[derive(Subcommand, Debug)]
pub enum AlertsCommand {
    /// The configured webhook sinks: name, URL, kinds, format and where the secret comes from (never the secret).
    Sinks(SinksArgs),
    /// Alert deliveries, newest first: delivered, retrying (with the last error) or failed.
    Deliveries(DeliveriesArgs),
}

#[derive(Args, Debug)]
pub struct SinksArgs {
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DeliveriesArgs {
    /// Only this sink's deliveries.
    #[arg(long)]
    pub sink: Option<String>,
    /// Only deliveries in this state: delivered, retrying or failed.
    #[arg(long)]
    pub status: Option<String>,
    /// At most this many (1-1000).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, command: &AlertsCommand) -> CliResult {
    match command {
        AlertsCommand::Sinks(args) => sinks(cli, args),
        AlertsCommand::Deliveries(args) => deliveries(cli, args),
    }
}

fn fetch(remote: &Remote, query: Vec<(&str, String)>) -> Result<Value, CliError> {
    remote.get("/v1/alerts/deliveries", &query)
}

fn sinks(cli: &Cli, args: &SinksArgs) -> CliResult {
    let sinks: Vec<Value> = match Remote::from_cli(cli)? {
        Some(remote) => fetch(&remote, vec![("limit", "1".into())])?["sinks"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        None => sinks_view(&cli.data_dir().config()?.alerts),
    };
    if sinks.is_empty() && !args.json {
        println!("no alert sinks are configured ([[alerts.sinks]] in keyledger.toml; docs/API.md, \"Alerts\")");
    }
    for sink in sinks {
        if args.json {
            println!("{sink}");
        } else {
            println!(
                "{}  {}  format={}  kinds={}  secret from {}",
                sink["name"].as_str().unwrap_or(""),
                sink["url"].as_str().unwrap_or(""),
                sink["format"].as_str().unwrap_or(""),
                sink["kinds"],
                sink["secret"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

fn deliveries(cli: &Cli, args: &DeliveriesArgs) -> CliResult {
    let status = args
        .status
        .as_deref()
        .map(|s| {
            parse_status(s)
                .ok_or_else(|| CliError::new(2, "--status: one of delivered, retrying, failed"))
        })
        .transpose()?;
    if !(1..=1000).contains(&args.limit) {
        return Err(CliError::new(2, "--limit must be 1-1000"));
    }
    let found: Vec<Delivery> = match Remote::from_cli(cli)? {
        Some(remote) => {
            let mut query = vec![("limit", args.limit.to_string())];
            query.extend(args.sink.clone().map(|s| ("sink", s)));
            query.extend(args.status.clone().map(|s| ("status", s)));
            serde_json::from_value(fetch(&remote, query)?["deliveries"].take()).map_err(|e| {
                CliError::new(super::EXIT_FAILED, format!("the server's answer: {e}"))
            })?
        }
        None => {
            let store = cli.data_dir().open_store()?;
            list(store.as_ref(), args.sink.as_deref(), status, args.limit)?
        }
    };
    for delivery in found {
        if args.json {
            println!("{}", serde_json::to_string(&delivery).unwrap_or_default());
        } else {
            println!(
                "{}  {:<9}  {}  {}  attempts={}{}  {}",
                delivery.updated_at,
                format!("{:?}", delivery.status).to_lowercase(),
                delivery.sink,
                delivery.alert_id,
                delivery.attempts,
                delivery
                    .last_error
                    .map(|e| format!(" last_error={e:?}"))
                    .unwrap_or_default(),
                delivery.summary
            );
        }
    }
    Ok(())
}
