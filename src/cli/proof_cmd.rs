//! `keyledger audit checkpoint|export|verify-export|prove|consistency`: what compliance takes out of the system and
//! checks without trusting it.

use super::progress::events_bar;
use super::window_args::WindowArgs;
use super::{Cli, CliError, CliResult, EXIT_FAILED, EXIT_VERIFY_FAILED};
use crate::audit::checkpoint::verifier_key;
use crate::audit::checkpoint::Checkpoint;
use crate::audit::export::{newest_stored_checkpoint, write_export, ExportRequest};
use crate::audit::merkle::{consistency_proof, inclusion_proof};
use crate::audit::tree::{stored_root, StoredTree};
use crate::audit::verify_export::verify_export;
use crate::chain::parse_public_key_hex;
use crate::datadir::DataDir;
use crate::LedgerError;
use clap::Args;
use serde_json::json;
use std::io::BufReader;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub window: WindowArgs,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Include a consistency proof from a checkpoint of this size that the reader kept.
    #[arg(long)]
    pub consistency_from: Option<u64>,
    /// Export against the newest checkpoint the configured witness quorum cosigned (its note carries the
    /// cosignatures, for `verify-export --witness-key`).
    #[arg(long)]
    pub witnessed: bool,
}

#[derive(Args, Debug)]
pub struct VerifyExportArgs {
    /// The export file (JSON lines, as `audit export` writes it).
    pub file: PathBuf,
    /// The ledger's first public key: 64 hex digits, or a file holding them (signing.pub).
    #[arg(long)]
    pub public_key: String,
    /// An older checkpoint note kept elsewhere: the export must prove the log grew from it.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// A witness's verifier key (`name+keyid+base64`, cosignature/v1); repeat for several. The export's
    /// checkpoint must carry verifying cosignatures by `--quorum` of them.
    #[arg(long = "witness-key", value_name = "VKEY")]
    pub witness_keys: Vec<String>,
    /// How many of the `--witness-key`s must have cosigned (default: all of them).
    #[arg(long, requires = "witness_keys")]
    pub quorum: Option<usize>,
}

#[derive(Args, Debug)]
pub struct ProveArgs {
    /// The seq of the event to prove.
    pub seq: u64,
    /// Tree size to prove against (default: the whole log).
    #[arg(long)]
    pub size: Option<u64>,
}

#[derive(Args, Debug)]
pub struct ConsistencyArgs {
    /// Size (event count) of the older checkpoint.
    pub old_size: u64,
    /// Size of the newer one (default: the log as it is now).
    pub new_size: Option<u64>,
}

/// A checkpoint of the log as it is now: made by the writer when the signing key is at hand (and the ledger
/// then stays open for the caller), else the newest one the writer stored.
fn checkpoint_now(cli: &Cli, dir: &DataDir) -> Result<(Checkpoint, String, Source), CliError> {
    if dir.load_signer(&cli.key_source()).is_ok() {
        let ledger = dir.open(&cli.key_source())?;
        let (checkpoint, note) = ledger.checkpoint_blocking()?;
        return Ok((checkpoint, note, Source::Ledger(ledger)));
    }
    let store = dir.open_store()?;
    let (checkpoint, note) = newest_stored_checkpoint(store.as_ref())?;
    Ok((checkpoint, note, Source::Store(store)))
}

enum Source {
    Ledger(crate::ledger::Ledger),
    Store(std::sync::Arc<dyn crate::store::LogStore>),
}

impl Source {
    fn store(&self) -> &dyn crate::store::LogStore {
        match self {
            Source::Ledger(ledger) => ledger.store().as_ref(),
            Source::Store(store) => store.as_ref(),
        }
    }
}

#[derive(Args, Debug)]
pub struct CheckpointArgs {
    /// Print {"origin", "size", "root", "verifier_key", "note"} instead of the bare note.
    #[arg(long)]
    pub json: bool,
}

pub fn checkpoint(cli: &Cli, args: &CheckpointArgs) -> CliResult {
    let dir = cli.data_dir();
    let identity = dir.identity()?;
    let (checkpoint, note, source) = checkpoint_now(cli, &dir)?;
    let public = match &source {
        Source::Ledger(ledger) => parse_public_key_hex(ledger.signer_public_hex())
            .map_err(|e| CliError::new(EXIT_FAILED, e.to_string()))?,
        Source::Store(_) => dir.anchor_public_key()?,
    };
    if args.json {
        return super::key_output::print_json(&serde_json::json!({
            "origin": identity.origin,
            "size": checkpoint.size,
            "root": hex::encode(checkpoint.root),
            "verifier_key": verifier_key(&identity.origin, &public),
            "note": note,
        }));
    }
    print!("{note}");
    eprintln!(
        "checkpoint of {} events; verifier key: {}",
        checkpoint.size,
        verifier_key(&identity.origin, &public)
    );
    eprintln!("keep this note somewhere keyledger cannot rewrite; `audit verify --anchor` and `audit verify-export --checkpoint` check against it");
    Ok(())
}

pub fn export(cli: &Cli, args: &ExportArgs) -> CliResult {
    let dir = cli.data_dir();
    let identity = dir.identity()?;
    let (checkpoint, note, source) = if args.witnessed {
        let store = dir.open_store()?;
        let (checkpoint, note) = super::witnessed_cmd::newest_witnessed(&dir, store.as_ref())?;
        (checkpoint, note, Source::Store(store))
    } else {
        checkpoint_now(cli, &dir)?
    };
    let store = source.store();
    let request = ExportRequest {
        from: args.window.from,
        to: args.window.to,
        consistency_from: args.consistency_from,
        first_seq: None,
    };
    let bar = events_bar(checkpoint.size, "exporting");
    let update = |n: u64| bar.set_position(n);
    let summary = match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|e| LedgerError::io(format!("creating {}", path.display()), e))?;
            let mut out = std::io::BufWriter::new(file);
            write_export(
                store,
                &request,
                &checkpoint,
                &note,
                &identity.public_key,
                &mut out,
                Some(&update),
            )?
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            write_export(
                store,
                &request,
                &checkpoint,
                &note,
                &identity.public_key,
                &mut out,
                Some(&update),
            )?
        }
    };
    bar.finish_and_clear();
    eprintln!(
        "exported events {}..={} ({} events, {} bytes) with a checkpoint of {} events",
        summary.from_seq, summary.to_seq, summary.events, summary.bytes, summary.tree_size
    );
    Ok(())
}

pub fn verify_export_file(args: &VerifyExportArgs) -> CliResult {
    let given = args.public_key.trim();
    let looks_like_hex = given.len() == 64 && given.chars().all(|c| c.is_ascii_hexdigit());
    let key_text = if looks_like_hex {
        given.to_string()
    } else {
        std::fs::read_to_string(given).map_err(|e| {
            CliError::new(
                2,
                format!(
                    "--public-key {given}: not 64 hex digits, and the file cannot be read: {e}"
                ),
            )
        })?
    };
    let anchor = parse_public_key_hex(&key_text)
        .map_err(|e| CliError::new(2, format!("--public-key {given}: {e}")))?;
    let older = match &args.checkpoint {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| CliError::new(EXIT_FAILED, format!("{}: {e}", path.display())))?,
        ),
        None => None,
    };
    let witnesses = super::witnessed_cmd::quorum_of(&args.witness_keys, args.quorum)?;
    let file = std::fs::File::open(&args.file)
        .map_err(|e| CliError::new(EXIT_FAILED, format!("{}: {e}", args.file.display())))?;
    let started = std::time::Instant::now();
    match verify_export(BufReader::new(file), anchor, older.as_deref()) {
        Ok(check) => {
            let cosigners =
                super::witnessed_cmd::check_export(witnesses.as_ref(), &check, args.json)?;
            if args.json {
                println!(
                    "{}",
                    json!({ "ok": true, "result": check, "witnessed_by": cosigners })
                );
            } else {
                println!(
                    "OK: events {}..={} ({} events) verify; included in the signed checkpoint of {} events (root {}){} ({:.2?})",
                    check.from_seq,
                    check.to_seq,
                    check.events,
                    check.tree_size,
                    &check.root[..16],
                    check.consistency_from.map(|m| format!("; the log grew consistently from the kept checkpoint of {m} events")).unwrap_or_default(),
                    started.elapsed()
                );
                if let Some(cosigners) = &cosigners {
                    println!(
                        "OK: the checkpoint is witnessed, cosigned by {}",
                        cosigners.join(", ")
                    );
                }
            }
            Ok(())
        }
        Err(failure) => {
            if args.json {
                println!("{}", json!({ "ok": false, "failure": failure }));
            }
            Err(CliError::new(
                EXIT_VERIFY_FAILED,
                format!("export verification FAILED at {failure}"),
            ))
        }
    }
}

pub fn prove(cli: &Cli, args: &ProveArgs) -> CliResult {
    let store = cli.data_dir().open_store()?;
    let head = store
        .head()
        .map_err(LedgerError::from)?
        .map_or(0, |h| h.seq);
    let size = args.size.unwrap_or(head);
    if args.seq == 0 || args.seq > size || size > head {
        return Err(CliError::new(2, format!("need 1 <= seq <= size <= {head}")));
    }
    let record = store
        .get(args.seq)
        .map_err(LedgerError::from)?
        .ok_or_else(|| CliError::new(EXIT_FAILED, "event missing"))?;
    let proof = inclusion_proof(
        &StoredTree {
            store: store.as_ref(),
        },
        args.seq - 1,
        size,
    )?;
    let root = stored_root(store.as_ref(), size)?;
    let out = json!({ "seq": args.seq, "leaf_index": args.seq - 1, "event_hash": hex::encode(record.hash), "tree_size": size, "root": hex::encode(root), "proof": proof.iter().map(hex::encode).collect::<Vec<_>>() });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(())
}

pub fn consistency(cli: &Cli, args: &ConsistencyArgs) -> CliResult {
    let store = cli.data_dir().open_store()?;
    let head = store
        .head()
        .map_err(LedgerError::from)?
        .map_or(0, |h| h.seq);
    let new = args.new_size.unwrap_or(head);
    if args.old_size == 0 || args.old_size > new || new > head {
        return Err(CliError::new(2, format!("need 1 <= old <= new <= {head}")));
    }
    let proof = consistency_proof(
        &StoredTree {
            store: store.as_ref(),
        },
        args.old_size,
        new,
    )?;
    let out = json!({ "old_size": args.old_size, "old_root": hex::encode(stored_root(store.as_ref(), args.old_size)?), "new_size": new, "new_root": hex::encode(stored_root(store.as_ref(), new)?), "proof": proof.iter().map(hex::encode).collect::<Vec<_>>() });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(())
}
