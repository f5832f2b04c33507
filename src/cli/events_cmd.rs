//! `keyledger init` and `keyledger events`.

use super::remote::Remote;
use super::window_args::WindowArgs;
use super::{Cli, CliError, CliResult, EXIT_FAILED};
use crate::chain::LedgerSigner;
use crate::checked::CheckedReader;
use crate::datadir::SIGNING_KEY_ENV;
use crate::event::Actor;
use crate::incident::IncidentFilter;
use crate::keys::{CreateKey, Requester};
use crate::query::seq_range;
use clap::Args;
use std::io::Write;
use uuid::Uuid;

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Take the signing key from $KEYLEDGER_SIGNING_KEY / --signing-key instead of generating one
    /// (for keys kept in a secrets manager; nothing secret is written to the data directory).
    #[arg(long)]
    pub external_key: bool,
    /// Keep the log in PostgreSQL instead of the embedded store: a URL without password
    /// (postgres://user@host/db; the password from $KEYLEDGER_PG_PASSWORD or $KEYLEDGER_PG_PASSWORD_FILE).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Where the signing key is generated and kept: `file` (signing.key, the default) or `pkcs11` (an HSM or
    /// SoftHSM2 token; the PIN from $KEYLEDGER_PKCS11_PIN or [signer] pin_file, never a flag).
    #[arg(long, value_parser = ["file", "pkcs11"], default_value = "file")]
    pub signer: String,
    /// The PKCS#11 module (shared library), with `--signer pkcs11`.
    #[arg(long, value_name = "PATH", required_if_eq("signer", "pkcs11"))]
    pub pkcs11_module: Option<std::path::PathBuf>,
    /// The token's label, with `--signer pkcs11`.
    #[arg(long, required_if_eq("signer", "pkcs11"))]
    pub token_label: Option<String>,
    /// The key's label on the token, with `--signer pkcs11`: generated there unless the token already holds it.
    #[arg(long, required_if_eq("signer", "pkcs11"))]
    pub key_label: Option<String>,
}

pub fn init(cli: &Cli, args: &InitArgs) -> CliResult {
    let dir = cli.data_dir();
    let external = if args.external_key {
        let signer: LedgerSigner = dir.load_signer(&cli.key_source()).map_err(|e| {
            CliError::new(
                EXIT_FAILED,
                format!("--external-key needs ${SIGNING_KEY_ENV} or --signing-key: {e}"),
            )
        })?;
        Some(signer)
    } else {
        None
    };
    let external_used = external.is_some();
    if let Some(url) = &args.store {
        dir.set_store(url)?;
    }
    if args.signer == "pkcs11" {
        dir.set_signer(&crate::token::SignerConfig {
            kind: crate::token::SignerKind::Pkcs11,
            module: args.pkcs11_module.clone(),
            token_label: args.token_label.clone(),
            key_label: args.key_label.clone(),
            pin_file: None,
        })?;
    }
    let (ledger, identity) = dir.init(external)?;
    let bootstrap = crate::keys::admin_key_config(
        "bootstrap-admin",
        "created by init; use it to create named admin keys, then revoke it",
    );
    let admin = ledger.submit_blocking(CreateKey::new(
        Requester::new(Actor::local_operator(), None),
        &bootstrap,
    )?)?;
    println!("Initialized keyledger in {}", dir.root().display());
    println!("  ledger id   {}", identity.ledger_id);
    println!("  origin      {}", identity.origin);
    println!(
        "  signer      {} (public key in {})",
        identity.signer_id,
        dir.public_key_path().display()
    );
    let token = dir.config()?.signer;
    if token.is_pkcs11() {
        println!(
            "  signing key on the PKCS#11 token {:?}, labelled {:?} (generated there, non-extractable)",
            token.token_label.unwrap_or_default(),
            token.key_label.unwrap_or_default()
        );
    } else if external_used {
        println!("  signing key supplied from outside; not stored in the data directory");
    } else {
        println!(
            "  signing key {} (mode 0600) — keep it secret, back it up separately",
            dir.key_path().display()
        );
    }
    println!();
    println!(
        "Bootstrap admin key (scopes ledger:admin, ledger:read, ledger:audit, ledger:verify):"
    );
    println!("  {}", admin.secret.expose());
    println!("This key is shown once and never again: keyledger keeps only its SHA-256.");
    Ok(())
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    #[command(flatten)]
    pub window: WindowArgs,
    /// Only events concerning this key id.
    #[arg(long)]
    pub key: Option<Uuid>,
    /// Only events of this type (e.g. key.revoked, key.used).
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: Option<String>,
    /// Only key uses from this client IP.
    #[arg(long)]
    pub ip: Option<String>,
    /// Only events by this actor: system, key:UUID (or a bare key id), operator:NAME.
    #[arg(long)]
    pub actor: Option<String>,
    /// Only events carrying this request id.
    #[arg(long)]
    pub request_id: Option<String>,
    /// Accepted for symmetry with the other listings: events are always printed as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Keep printing events as they become durable, from a running server (needs --server); reconnects where
    /// it left off. Starts with the next new event unless --from or --after says otherwise.
    #[arg(long, conflicts_with = "to")]
    pub follow: bool,
    /// With --follow: start after this seq (e.g. the last one a previous run printed).
    #[arg(long, value_name = "SEQ", requires = "follow", conflicts_with = "from")]
    pub after: Option<u64>,
}

pub fn events(cli: &Cli, args: &EventsArgs) -> CliResult {
    if let Some(remote) = Remote::from_cli(cli)? {
        if args.follow {
            let filters = super::events_follow::FollowFilters {
                from: args.window.from,
                key: args.key,
                incident: incident_filter(args),
            };
            return super::events_follow::follow(&remote, &filters, args.after);
        }
        return remote_events(&remote, args);
    }
    if args.follow {
        return Err(super::events_follow::needs_server());
    }
    let store = cli.data_dir().open_store()?;
    let durable = store
        .head()
        .map_err(crate::LedgerError::from)?
        .map_or(0, |h| h.seq);
    let filter = args.window.filter(args.key);
    let incident = incident_filter(args);
    incident.check()?;
    let (start, end) =
        seq_range(store.as_ref(), &filter, durable).map_err(crate::LedgerError::from)?;
    let mut reader = CheckedReader::new(store.as_ref());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for seq in incident.candidates(store.as_ref(), args.key, start, end)? {
        let seq = seq.map_err(crate::LedgerError::from)?;
        let record = reader.get_indexed(seq)?;
        if !incident.is_empty() {
            let event = crate::event::Event::decode(&record.body)
                .map_err(|source| crate::LedgerError::Decode { seq, source })?;
            if !incident.matches(&event) {
                continue;
            }
        }
        let written = out
            .write_all(&record.body)
            .and_then(|_| out.write_all(b"\n"));
        if written.is_err() {
            // The reader went away (e.g. `| head`): stop quietly.
            return Ok(());
        }
    }
    let _ = out.flush();
    Ok(())
}

fn incident_filter(args: &EventsArgs) -> IncidentFilter {
    IncidentFilter {
        event_type: args.event_type.clone(),
        ip: args.ip.clone(),
        actor: args.actor.clone(),
        request_id: args.request_id.clone(),
    }
}

/// The same JSON lines, fetched page by page from `GET /v1/events`.
fn remote_events(remote: &Remote, args: &EventsArgs) -> CliResult {
    let mut query = args.window.query(args.key);
    let incident = incident_filter(args);
    let filters = [
        ("type", incident.event_type),
        ("ip", incident.ip),
        ("actor", incident.actor),
        ("request_id", incident.request_id),
    ];
    query.extend(
        filters
            .into_iter()
            .filter_map(|(name, value)| Some((name, value?))),
    );
    query.push(("limit", "1000".to_string()));
    #[derive(serde::Deserialize)]
    struct Item {
        event: Box<serde_json::value::RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct Page {
        events: Vec<Item>,
        next_cursor: Option<String>,
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut page: Page = remote.get("/v1/events", &query)?;
    loop {
        for item in &page.events {
            // The canonical body exactly as stored, as the local command prints it.
            if writeln!(out, "{}", item.event.get()).is_err() {
                // The reader went away (e.g. `| head`): stop quietly.
                return Ok(());
            }
        }
        let Some(cursor) = page.next_cursor.take() else {
            let _ = out.flush();
            return Ok(());
        };
        page = remote.get("/v1/events", &[("cursor", cursor)])?;
    }
}
