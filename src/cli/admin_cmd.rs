//! `keyledger admin recover`: for the day every administrator key is lost, revoked or suspended anyway. Run on
//! the server with the data directory (the server stopped, since the directory is locked while it runs), it
//! issues a new admin key, recorded as a `key.created` event by the local operator like every other change.

use super::key_output::print_issued;
use super::{Cli, CliResult};
use crate::event::Actor;
use crate::keys::{admin_key_config, CreateKey, Requester};
use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Issue a new admin key from the server's command line (recorded as an event); its secret is printed once.
    Recover(RecoverArgs),
}

#[derive(Args, Debug)]
pub struct RecoverArgs {
    /// Why, for the record (kept in the new key's description).
    #[arg(long, default_value = "locked out of every admin key")]
    pub reason: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, command: &AdminCommand) -> CliResult {
    let AdminCommand::Recover(args) = command;
    let ledger = cli.data_dir().open(&cli.key_source())?;
    let now = ledger.now();
    let name = format!(
        "recovery-admin-{}",
        now.to_datetime().format("%Y%m%dT%H%M%S%.6fZ")
    );
    let config = admin_key_config(
        &name,
        &format!("issued by `keyledger admin recover`: {}", args.reason),
    );
    let who = Requester::new(Actor::local_operator(), Some("admin-recover".into()));
    let issued = ledger.submit_blocking(CreateKey::new(who, &config)?)?;
    if !args.json {
        println!(
            "Recovery admin key issued (recorded as seq {}).\n",
            issued.seq
        );
    }
    print_issued(
        &issued.key,
        issued.secret.expose(),
        issued.seq,
        args.json,
        now,
    )
}
