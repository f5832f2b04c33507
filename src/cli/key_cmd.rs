//! `keyledger key …` and `keyledger history`: the key lifecycle from the command line.

use super::key_args::*;
use super::key_output::*;
use super::key_request::{config_of, patch_of, read_secret_arg, verify_request};
use super::remote::Remote;
use super::{Cli, CliError, CliResult, EXIT_FAILED};
use crate::event::Actor;
use crate::keys::*;
use crate::ledger::keys_as_of;
use crate::ledger::Ledger;
use crate::time::LedgerTime;

fn operator() -> Requester {
    Requester::new(Actor::local_operator(), None)
}

fn open(cli: &Cli) -> Result<Ledger, CliError> {
    Ok(cli.data_dir().open(&cli.key_source())?)
}

pub fn run(cli: &Cli, command: &KeyCommand) -> CliResult {
    if let Some(remote) = Remote::from_cli(cli)? {
        return super::remote_keys::run(&remote, command);
    }
    let now = LedgerTime::now();
    match command {
        KeyCommand::Create(args) => {
            let config = config_of(args)?;
            let ledger = open(cli)?;
            let issued = ledger.submit_blocking(CreateKey::new(operator(), &config)?)?;
            print_issued(
                &issued.key,
                issued.secret.expose(),
                issued.seq,
                args.config.json,
                now,
            )
        }
        KeyCommand::List(args) => {
            let filter = KeyFilter {
                environment: args.environment.clone(),
                owner: args.owner.clone(),
                status: args.status,
                project: args.project.clone(),
                scope: args.scope.clone(),
            };
            let (state, at) = state_at(cli, args.as_of)?;
            let limit = args.limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
            let keys = list_keys(&state, &filter, at, 0, limit);
            if args.json {
                return print_json(&keys.iter().map(|k| key_json(k, at)).collect::<Vec<_>>());
            }
            print_key_table(&keys, at);
            Ok(())
        }
        KeyCommand::Show(args) => {
            let (state, at) = state_at(cli, args.as_of)?;
            let key = state.get(&args.key_id).ok_or_else(|| {
                CliError::new(EXIT_FAILED, format!("key {} not found", args.key_id))
            })?;
            if args.json {
                return print_json(&key_json(key, at));
            }
            print_key(key, at);
            Ok(())
        }
        KeyCommand::Update(args) => {
            let patch = patch_of(args);
            let ledger = open(cli)?;
            let key = ledger.submit_blocking(UpdateKey::new(operator(), args.key_id, &patch)?)?;
            show(&key, args.config.json, now)
        }
        KeyCommand::Rotate(args) => {
            let ledger = open(cli)?;
            let issued = ledger.submit_blocking(RotateKey {
                who: operator(),
                key_id: args.key_id,
                overlap_seconds: args.overlap,
            })?;
            print_rotated(
                args.key_id,
                args.overlap,
                &issued.key,
                issued.secret.expose(),
                issued.seq,
                args.json,
                now,
            )
        }
        KeyCommand::Revoke(args) => revoke(cli, args, now),
        KeyCommand::Suspend(args) => {
            let until = args.end(now);
            let key = open(cli)?.submit_blocking(SuspendKey {
                who: operator(),
                key_id: args.key_id,
                until,
                reason: args.reason.clone(),
            })?;
            show(&key, args.json, now)
        }
        KeyCommand::Reactivate(args) => {
            let key = open(cli)?.submit_blocking(ReactivateKey {
                who: operator(),
                key_id: args.key_id,
                reason: args.reason.clone(),
            })?;
            show(&key, args.json, now)
        }
        KeyCommand::Verify(args) => {
            let secret = verify_request(args)?;
            let command = VerifyKey::new(
                &secret,
                args.ip,
                args.scope.clone(),
                args.user_agent.clone(),
            )
            .by(Actor::local_operator(), None)
            .for_project(args.project.clone());
            let answer = open(cli)?.submit_blocking(command)?;
            print_verify(&answer, args.json)
        }
        KeyCommand::Find(args) => find(cli, args, now),
    }
}

fn revoke(cli: &Cli, args: &RevokeArgs, now: LedgerTime) -> CliResult {
    let ledger = open(cli)?;
    let Some(owner) = &args.owner else {
        let key_id = args
            .key_id
            .ok_or_else(|| CliError::new(2, "give a key id or --owner"))?;
        let key = ledger.submit_blocking(RevokeKey {
            who: operator(),
            key_id,
            reason: args.reason.clone(),
        })?;
        return show(&key, args.json, now);
    };
    let revoked = ledger.submit_blocking(RevokeOwnerKeys {
        who: operator(),
        owner: owner.clone(),
        reason: args.reason.clone(),
    })?;
    print_owner_revoked(owner, &revoked, args.json, now)
}

fn show(key: &crate::projection::KeyRecord, json: bool, now: LedgerTime) -> CliResult {
    if json {
        return print_json(&key_json(key, now));
    }
    print_key(key, now);
    Ok(())
}

/// The key state now (from a full replay of the log) or as of a past time (snapshot + replay).
fn state_at(
    cli: &Cli,
    as_of: Option<LedgerTime>,
) -> Result<(crate::projection::KeyState, LedgerTime), CliError> {
    let store = cli.data_dir().open_store()?;
    let durable = store
        .head()
        .map_err(crate::LedgerError::from)?
        .map_or(0, |h| h.seq);
    let at = as_of.unwrap_or_else(LedgerTime::now);
    let (state, _) = keys_as_of(store.as_ref(), at, durable)?;
    Ok((state, at))
}

fn find(cli: &Cli, args: &FindArgs, now: LedgerTime) -> CliResult {
    let hash = hash_of_leak(&read_secret_arg(&args.secret_or_hash)?)?;
    let ledger = open(cli)?;
    let key_id = ledger
        .projections()
        .keys
        .by_secret_hash(&hash)
        .map(|k| k.key_id)
        .ok_or_else(|| CliError::new(EXIT_FAILED, "no key has this secret"))?;
    let key = if args.revoke {
        let reason = args
            .reason
            .clone()
            .or_else(|| Some("leaked secret found".into()));
        Some(ledger.submit_blocking(RevokeKey {
            who: operator(),
            key_id,
            reason,
        })?)
    } else {
        None
    };
    let key = key
        .or_else(|| ledger.projections().keys.get(&key_id).cloned())
        .ok_or_else(|| CliError::new(EXIT_FAILED, "key vanished"))?;
    let history = key_history(ledger.store().as_ref(), key_id, ledger.durable_seq())?;
    print_found(&key, args.revoke, &history, args.json, now)
}

pub fn history(cli: &Cli, args: &HistoryArgs) -> CliResult {
    if let Some(remote) = Remote::from_cli(cli)? {
        return super::remote_keys::history(&remote, args);
    }
    let store = cli.data_dir().open_store()?;
    let durable = store
        .head()
        .map_err(crate::LedgerError::from)?
        .map_or(0, |h| h.seq);
    let events = key_history(store.as_ref(), args.key_id, durable)?;
    if events.is_empty() {
        return Err(CliError::new(
            EXIT_FAILED,
            format!("no events for key {}", args.key_id),
        ));
    }
    print_history(&events, args.json)
}
