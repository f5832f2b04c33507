//! `keyledger key …` and `history` in client mode: the API requests that stand for each command, with the
//! answers printed by the same functions as the local commands.

use super::key_args::*;
use super::key_output::*;
use super::key_request::{config_of, patch_of, read_secret_arg, verify_request};
use super::remote::Remote;
use super::{CliError, CliResult, EXIT_FAILED};
use crate::event::Event;
use crate::keys::VerifyAnswer;
use crate::projection::KeyRecord;
use crate::time::LedgerTime;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

fn unexpected(e: impl std::fmt::Display) -> CliError {
    CliError::new(
        EXIT_FAILED,
        format!("unexpected answer from the server: {e}"),
    )
}

/// A key as the API shows it (its record with the status in force) turned back into a record.
fn record(mut view: Value) -> Result<KeyRecord, CliError> {
    if let Value::Object(map) = &mut view {
        let status = map.get("status").cloned().unwrap_or(Value::Null);
        map.insert("recorded_status".into(), status);
        map.remove("usage");
    }
    serde_json::from_value(view).map_err(unexpected)
}

/// A page of events as the API sends it: canonical bodies, decoded as the log's reader decodes them.
fn event(page_item: Value) -> Result<Event, CliError> {
    let body = serde_json::to_vec(&page_item["event"]).map_err(unexpected)?;
    Event::decode(&body).map_err(unexpected)
}

#[derive(Deserialize)]
struct Issued {
    key: Value,
    secret: String,
    seq: u64,
}

fn key_path(id: Uuid) -> String {
    format!("/v1/keys/{id}")
}

fn reason_body(reason: &Option<String>) -> Value {
    match reason {
        Some(reason) => json!({ "reason": reason }),
        None => json!({}),
    }
}

pub fn run(remote: &Remote, command: &KeyCommand) -> CliResult {
    let now = LedgerTime::now();
    match command {
        KeyCommand::Create(args) => {
            let body = serde_json::to_value(config_of(args)?).map_err(unexpected)?;
            let issued: Issued = remote.send_json(Method::POST, "/v1/keys", Some(&body))?;
            let key = record(issued.key)?;
            print_issued(&key, &issued.secret, issued.seq, args.config.json, now)
        }
        KeyCommand::List(args) => {
            let at = args.as_of.unwrap_or(now);
            let views = list(remote, args)?;
            if args.json {
                return print_json(&views);
            }
            let keys = views
                .into_iter()
                .map(record)
                .collect::<Result<Vec<_>, _>>()?;
            print_key_table(&keys, at);
            Ok(())
        }
        KeyCommand::Show(args) => {
            let view = match args.as_of {
                None => remote.get(&key_path(args.key_id), &[])?,
                Some(at) => {
                    let past = ListArgs {
                        environment: None,
                        owner: None,
                        status: None,
                        project: None,
                        scope: None,
                        as_of: Some(at),
                        limit: None,
                        json: true,
                    };
                    list(remote, &past)?
                        .into_iter()
                        .find(|k| k["key_id"] == json!(args.key_id))
                        .ok_or_else(|| {
                            CliError::new(EXIT_FAILED, format!("key {} not found", args.key_id))
                        })?
                }
            };
            show(view, args.json, args.as_of.unwrap_or(now))
        }
        KeyCommand::Update(args) => {
            let body = patch_body(args)?;
            let view = remote.send_json(Method::PATCH, &key_path(args.key_id), Some(&body))?;
            show(view, args.config.json, now)
        }
        KeyCommand::Rotate(args) => {
            let body = json!({ "overlap_seconds": args.overlap });
            let path = format!("{}/rotate", key_path(args.key_id));
            let issued: Issued = remote.send_json(Method::POST, &path, Some(&body))?;
            let key = record(issued.key)?;
            print_rotated(
                args.key_id,
                args.overlap,
                &key,
                &issued.secret,
                issued.seq,
                args.json,
                now,
            )
        }
        KeyCommand::Revoke(args) => revoke(remote, args, now),
        KeyCommand::Suspend(args) => {
            let until = args.end(now);
            let mut body = reason_body(&args.reason);
            if let Some(until) = until {
                body["until"] = json!(until.to_string());
            }
            let path = format!("{}/suspend", key_path(args.key_id));
            let view = remote.send_json(Method::POST, &path, Some(&body))?;
            show(view, args.json, now)
        }
        KeyCommand::Reactivate(args) => {
            let path = format!("{}/reactivate", key_path(args.key_id));
            let view = remote.send_json(Method::POST, &path, Some(&reason_body(&args.reason)))?;
            show(view, args.json, now)
        }
        KeyCommand::Verify(args) => {
            let secret = verify_request(args)?;
            let body = json!({
                "secret": secret,
                "ip": args.ip.map(|ip| ip.to_string()),
                "scope": args.scope,
                "user_agent": args.user_agent,
                "project": args.project,
            });
            let answer: VerifyAnswer = remote.send_json(Method::POST, "/v1/verify", Some(&body))?;
            print_verify(&answer, args.json)
        }
        KeyCommand::Find(args) => find(remote, args, now),
    }
}

/// The keys of a listing, following the cursor to the last page or until `--limit` keys were read.
fn list(remote: &Remote, args: &ListArgs) -> Result<Vec<Value>, CliError> {
    // The largest page the server gives.
    const MAX_PAGE: u64 = crate::api::key_list::MAX_KEYS_PAGE as u64;
    let wanted = args.limit.unwrap_or(u64::MAX);
    let mut query = vec![("limit", wanted.min(MAX_PAGE).to_string())];
    let filters = [
        ("environment", args.environment.clone()),
        ("owner", args.owner.clone()),
        ("status", args.status.map(|s| s.as_str().to_string())),
        ("project", args.project.clone()),
        ("scope", args.scope.clone()),
        ("as_of", args.as_of.map(|t| t.to_string())),
    ];
    query.extend(filters.into_iter().filter_map(|(k, v)| Some((k, v?))));
    if wanted <= MAX_PAGE {
        let mut page: Value = remote.get("/v1/keys", &query)?;
        return match page.get_mut("keys").map(Value::take) {
            Some(Value::Array(views)) => Ok(views),
            _ => Err(CliError::new(
                EXIT_FAILED,
                "unexpected answer from the server: no keys list",
            )),
        };
    }
    let mut views = Vec::new();
    remote.pages("/v1/keys", &query, "keys", |view| {
        views.push(view);
        Ok(())
    })?;
    views.truncate(usize::try_from(wanted).unwrap_or(usize::MAX));
    Ok(views)
}

fn show(view: Value, json: bool, now: LedgerTime) -> CliResult {
    let key = record(view)?;
    if json {
        return print_json(&key_json(&key, now));
    }
    print_key(&key, now);
    Ok(())
}

/// The PATCH body of `key update`: the fields given, and null for each `--clear`ed one.
fn patch_body(args: &UpdateArgs) -> Result<Value, CliError> {
    let patch = patch_of(args);
    let mut body = Map::new();
    let given = serde_json::to_value(&patch).map_err(unexpected)?;
    if let Value::Object(fields) = given {
        for (field, value) in fields {
            if !value.is_null() && field != "clear" {
                body.insert(field, value);
            }
        }
    }
    for field in &patch.clear {
        let name = serde_json::to_value(field).map_err(unexpected)?;
        if let Some(name) = name.as_str() {
            body.insert(name.to_string(), Value::Null);
        }
    }
    Ok(Value::Object(body))
}

fn revoke(remote: &Remote, args: &RevokeArgs, now: LedgerTime) -> CliResult {
    let body = reason_body(&args.reason);
    let Some(owner) = &args.owner else {
        let key_id = args
            .key_id
            .ok_or_else(|| CliError::new(2, "give a key id or --owner"))?;
        let view = remote.send_json(Method::DELETE, &key_path(key_id), Some(&body))?;
        return show(view, args.json, now);
    };
    #[derive(Deserialize)]
    struct Revoked {
        revoked: Vec<Value>,
    }
    let owner_segment =
        percent_encoding::utf8_percent_encode(owner, percent_encoding::NON_ALPHANUMERIC);
    let path = format!("/v1/owners/{owner_segment}/revoke");
    let answer: Revoked = remote.send_json(Method::POST, &path, Some(&body))?;
    let keys = answer
        .revoked
        .into_iter()
        .map(record)
        .collect::<Result<Vec<_>, _>>()?;
    print_owner_revoked(owner, &keys, args.json, now)
}

fn find(remote: &Remote, args: &FindArgs, now: LedgerTime) -> CliResult {
    let text = read_secret_arg(&args.secret_or_hash)?;
    let is_hash = text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit());
    let mut body = json!({ "revoke": args.revoke });
    body[if is_hash { "sha256" } else { "secret" }] = json!(text);
    if let Some(reason) = &args.reason {
        body["reason"] = json!(reason);
    }
    #[derive(Deserialize)]
    struct Found {
        key: Value,
        history: Vec<Value>,
    }
    let found: Found = remote.send_json(Method::POST, "/v1/keys/find", Some(&body))?;
    let history = found
        .history
        .into_iter()
        .map(|body| event(json!({ "event": body })))
        .collect::<Result<Vec<_>, _>>()?;
    print_found(&record(found.key)?, args.revoke, &history, args.json, now)
}

pub fn history(remote: &Remote, args: &HistoryArgs) -> CliResult {
    let mut events = Vec::new();
    let path = format!("{}/events", key_path(args.key_id));
    remote.pages(&path, &[("limit", "1000".into())], "events", |item| {
        events.push(event(item)?);
        Ok(())
    })?;
    print_history(&events, args.json)
}
