//! How the key commands print: a readable table or block for people, JSON (`--json`) for scripts.

use super::table::{plain_table, print_table};
use super::{CliError, CliResult, EXIT_DENIED, EXIT_FAILED};
use crate::event::Event;
use crate::keys::VerifyAnswer;
use crate::projection::KeyRecord;
use crate::time::LedgerTime;
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

pub use crate::keys::view::key_json;

pub fn print_json<T: Serialize + ?Sized>(value: &T) -> CliResult {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::new(EXIT_FAILED, e.to_string()))?;
    println!("{text}");
    Ok(())
}

pub fn print_key(key: &KeyRecord, now: LedgerTime) {
    println!(
        "key {}  {}  [{}]",
        key.key_id,
        key.config.name,
        key.status_at(now).as_str()
    );
    println!("  prefix       {}", key.prefix);
    println!("  owner        {}", key.config.owner);
    println!("  environment  {}", key.config.environment);
    println!("  scopes       {}", key.config.scopes.join(", "));
    if !key.config.description.is_empty() {
        println!("  description  {}", key.config.description);
    }
    if !key.config.project_ids.is_empty() {
        println!("  projects     {}", key.config.project_ids.join(", "));
    }
    if !key.config.ip_allowlist.is_empty() {
        println!("  allowed IPs  {}", key.config.ip_allowlist.join(", "));
    }
    if let Some(limit) = key.config.rate_limit_per_minute {
        println!("  rate limit   {limit}/min");
    }
    if let Some(policy) = &key.config.rotation_policy {
        println!(
            "  rotation     every {} days (notify {} days before)",
            policy.every_days, policy.notify_days_before
        );
    }
    for (name, value) in &key.config.metadata {
        println!("  meta         {name}={value}");
    }
    println!(
        "  created      {} (seq {})",
        key.created_at, key.created_seq
    );
    if let Some(at) = key.config.expires_at {
        println!("  expires      {at}");
    }
    if let Some(from) = key.rotated_from {
        println!("  rotated from {from}");
    }
    if let Some(to) = key.rotated_to {
        let until = key.retires_at.map(|t| t.to_string()).unwrap_or_default();
        println!("  rotated to   {to} (old key works until {until})");
    }
    if let Some(reason) = &key.status_reason {
        println!("  reason       {reason}");
    }
    if let Some(until) = key
        .suspended_until
        .filter(|_| key.status_at(now) == crate::projection::KeyStatus::Suspended)
    {
        println!("  suspended until {until}");
    }
    match (&key.last_used_at, &key.last_used_ip) {
        (Some(at), ip) => println!("  last used    {at} from {}", ip.as_deref().unwrap_or("?")),
        (None, _) => println!("  last used    never"),
    }
}

pub fn print_key_table(keys: &[KeyRecord], now: LedgerTime) {
    let mut table = plain_table(
        &[
            "KEY ID",
            "NAME",
            "ENVIRONMENT",
            "STATUS",
            "OWNER",
            "LAST USED",
            "PREFIX",
        ],
        &[],
    );
    for key in keys {
        table.add_row([
            key.key_id.to_string(),
            truncate(&key.config.name, 24),
            truncate(&key.config.environment, 12),
            key.status_at(now).as_str().to_string(),
            truncate(&key.config.owner, 16),
            last_used_column(key.last_used_at),
            key.prefix.clone(),
        ]);
    }
    print_table(&table);
    println!("{} key(s)", keys.len());
}

/// A LAST USED table cell: the time to the second, or "never".
pub fn last_used_column(at: Option<LedgerTime>) -> String {
    at.map_or_else(
        || "never".to_string(),
        |t| t.to_datetime().format("%Y-%m-%d %H:%M:%SZ").to_string(),
    )
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        text.chars().take(width - 1).chain(['…']).collect()
    }
}

/// Prints a newly issued secret once, with the warning that it will not be shown again.
pub fn print_issued(
    key: &KeyRecord,
    secret: &str,
    seq: u64,
    json: bool,
    now: LedgerTime,
) -> CliResult {
    if json {
        return print_json(&json!({ "key": key_json(key, now), "secret": secret, "seq": seq }));
    }
    print_key(key, now);
    println!();
    println!("  secret       {secret}");
    println!();
    println!("  This secret is shown once and never again: keyledger keeps only its SHA-256. Store it now.");
    Ok(())
}

pub fn print_history(events: &[Event], json: bool) -> CliResult {
    if json {
        let bodies: Vec<Value> = events.iter().filter_map(|e| e.body_value().ok()).collect();
        return print_json(&bodies);
    }
    for event in events {
        println!(
            "{:>8}  {}  {:<18}  {:<28}  {}",
            event.seq,
            event.time,
            event.type_name(),
            event.actor.to_string(),
            summary(event)
        );
    }
    println!("{} event(s)", events.len());
    Ok(())
}

/// One line about what an event says.
pub fn summary(event: &Event) -> String {
    use crate::event::EventData::*;
    match &event.data {
        KeyCreated(d) => format!("{} ({}, {})", d.config.name, d.config.environment, d.prefix),
        KeyUpdated(d) => serde_json::to_string(&d.changes).unwrap_or_default(),
        KeyRotated(d) => format!(
            "→ {} (old works until {})",
            d.new_key_id, d.old_key_retires_at
        ),
        KeyRevoked(d) | KeyReactivated(d) | KeyExpired(d) => d.reason.clone().unwrap_or_default(),
        KeySuspended(d) => format!(
            "{} until {}",
            d.reason.clone().unwrap_or_default(),
            d.until
                .map(|t| t.to_string())
                .unwrap_or_else(|| "reactivated".into())
        ),
        KeyUsed(d) => format!(
            "{} ip={} scope={}{}",
            d.outcome.as_str(),
            d.ip.as_deref().unwrap_or("-"),
            d.scope.as_deref().unwrap_or("-"),
            if d.overlap { " (overlap)" } else { "" }
        ),
        AnomalyDetected(d) => format!(
            "{} observed {} > {} ({})",
            d.rule, d.observed, d.threshold, d.severity
        ),
        PolicySet(d) => format!("every {} days", d.rotation.every_days),
        LedgerInitialized(d) => format!("ledger {}", d.ledger_id),
        SignerRotated(d) => format!("new signer {}", d.new_signer_id),
    }
}

/// Prints a verification's answer; a denial is exit code 5.
pub fn print_verify(answer: &VerifyAnswer, json: bool) -> CliResult {
    print_verify_answer(answer, json)?;
    if answer.valid {
        return Ok(());
    }
    Err(CliError::new(
        EXIT_DENIED,
        format!("denied: {}", answer.code.as_str()),
    ))
}

/// The key a rotation issued, after a line saying how long the old one keeps working.
pub fn print_rotated(
    old: Uuid,
    overlap_secs: u32,
    new: &KeyRecord,
    secret: &str,
    seq: u64,
    json: bool,
    now: LedgerTime,
) -> CliResult {
    if !json {
        println!(
            "Rotated {old} → {}; the old key works for {overlap_secs} more second(s).\n",
            new.key_id
        );
    }
    print_issued(new, secret, seq, json, now)
}

/// The keys an owner's offboarding revoked.
pub fn print_owner_revoked(
    owner: &str,
    revoked: &[KeyRecord],
    json: bool,
    now: LedgerTime,
) -> CliResult {
    if json {
        return print_json(&revoked.iter().map(|k| key_json(k, now)).collect::<Vec<_>>());
    }
    if revoked.is_empty() {
        println!("{owner} has no active or suspended keys; nothing was revoked.");
        return Ok(());
    }
    println!("Revoked {} key(s) of {owner}:", revoked.len());
    print_key_table(revoked, now);
    Ok(())
}

/// The key a leaked secret belongs to, whether it was just revoked, and its history.
pub fn print_found(
    key: &KeyRecord,
    revoked: bool,
    history: &[Event],
    json: bool,
    now: LedgerTime,
) -> CliResult {
    if json {
        let bodies: Vec<_> = history.iter().filter_map(|e| e.body_value().ok()).collect();
        return print_json(
            &json!({ "key": key_json(key, now), "revoked": revoked, "history": bodies }),
        );
    }
    print_key(key, now);
    if revoked {
        println!("\nRevoked: the next verification of this secret is refused.");
    }
    println!("\nHistory:");
    print_history(history, false)
}

fn print_verify_answer(answer: &VerifyAnswer, json: bool) -> CliResult {
    if json {
        return print_json(answer);
    }
    let verdict = if answer.valid { "VALID" } else { "DENIED" };
    let key = answer
        .key_id
        .map(|k| k.to_string())
        .unwrap_or_else(|| "-".into());
    println!(
        "{verdict}: {} (key {key}, recorded as seq {})",
        answer.code.as_str(),
        answer.seq
    );
    if answer.overlap {
        let until = answer.retires_at.map(|t| t.to_string()).unwrap_or_default();
        println!("  this key was rotated; it works only until {until} — switch to its successor");
    }
    Ok(())
}
