//! `keyledger store salvage DIR --to NEW`: copies every intact event of a damaged ledger, from the first up to the
//! first damage, into a new ledger, verifies it with the ledger's public key, and reports where it stopped and
//! which stored checkpoint the salvaged events still match. The damaged ledger is only read.

use super::remote::local_only;
use super::{Cli, CliError, CliResult, EXIT_FAILED, EXIT_VERIFY_FAILED};
use crate::audit::checkpoint::{checkpoint_key, stored_checkpoints, Checkpoint, CHECKPOINT_EVERY};
use crate::audit::rotations::{rotation_seqs, signer_side_key};
use crate::audit::tree::Frontier;
use crate::audit::{verify_log, VerifyRange};
use crate::chain::LedgerSigner;
use crate::datadir::DataDir;
use crate::event::Event;
use crate::store::salvage::{ChainFollower, SalvageSource};
use crate::store::{AppendBatch, LogStore, SledStore, ATTRIBUTE_INDEX_MARKER};
use crate::LedgerError;
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct SalvageArgs {
    /// The damaged data directory (only read).
    pub dir: PathBuf,
    /// The new data directory to create with the salvaged events.
    #[arg(long, value_name = "NEW")]
    pub to: PathBuf,
}

/// Records per batch written to the new ledger.
const SALVAGE_BATCH: usize = 4_096;
/// A verification failure inside what was copied cuts the copy before it; this many times at most.
const ATTEMPTS: usize = 3;

fn failed(what: impl std::fmt::Display) -> CliError {
    CliError::new(EXIT_FAILED, what.to_string())
}

pub fn salvage(cli: &Cli, args: &SalvageArgs) -> CliResult {
    local_only(cli, "store salvage")?;
    let source_dir = DataDir::new(&args.dir);
    if source_dir.config()?.store.is_some() {
        return Err(failed(
            "this ledger's log lives in PostgreSQL: salvage reads the embedded log only",
        ));
    }
    if !source_dir.db_path().is_dir() {
        return Err(failed(format!(
            "{} holds no log directory: nothing to salvage",
            args.dir.display()
        )));
    }
    if args.to.exists() {
        return Err(failed(format!(
            "{} exists: salvage into a new directory",
            args.to.display()
        )));
    }
    let public = source_dir.anchor_public_key()?;
    copy_identity(&args.dir, &args.to)?;
    let target_dir = DataDir::new(&args.to);
    let scratch = args.to.join("salvage-scratch");
    let mut source =
        SalvageSource::open(&source_dir.db_path(), &scratch).map_err(LedgerError::from)?;
    let archived = match source.store() {
        Some(store) => crate::store::archived_prefix(store)
            .map_err(LedgerError::from)?
            .is_some(),
        None => false,
    };
    if archived {
        drop(source);
        // Best effort: the directory holds only the copied identity files and sled's scratch copy.
        let _ = std::fs::remove_dir_all(&args.to);
        return Err(failed(
            "this ledger was archived (its first events live in archive files): salvage reads whole logs only; \
             restore the archive into a full copy first",
        ));
    }
    let mut limit = u64::MAX;
    let mut stop: Option<String> = None;
    let mut attempt = 0;
    let (salvaged, checkpoint, verified) = loop {
        attempt += 1;
        let log = target_dir.db_path();
        if log.exists() {
            std::fs::remove_dir_all(&log).map_err(|e| failed(format!("{}: {e}", log.display())))?;
        }
        let target = SledStore::open(&log).map_err(LedgerError::from)?;
        let resign = if source.reads_sled() {
            None
        } else {
            // The checkpoints lived in sled: the salvaged events get new ones, signed with the ledger's key.
            Some(Resign {
                origin: source_dir.identity()?.origin,
                signer: source_dir.load_signer(&cli.key_source())?,
            })
        };
        let (copied, why) = copy_intact(&source, &target, limit, resign)?;
        if source.reads_sled() && copied < source.sealed_events() {
            source.give_up_sled(format!(
                "it gave {copied} events, fewer than the {} in the segments' sealed blocks: it fell back to an \
                 older state",
                source.sealed_events()
            ));
            attempt -= 1;
            continue;
        }
        if let Some(why) = why {
            stop.get_or_insert(why);
        }
        let checkpoint = copy_side_entries(&source, &target, copied)?;
        crate::audit::tiles::write_all_tiles(&target)?;
        target
            .put_side(&[(ATTRIBUTE_INDEX_MARKER.to_vec(), Vec::new())])
            .map_err(LedgerError::from)?;
        target.sync().map_err(LedgerError::from)?;
        let verified = verify_log(&target, public, VerifyRange::default(), None)?;
        match verified.first_problem() {
            None => break (copied, checkpoint, verified),
            Some(problem) if problem.seq > 1 && attempt < ATTEMPTS => {
                stop = Some(format!(
                    "event {} fails verification: {}",
                    problem.seq, problem.detail
                ));
                limit = problem.seq - 1;
            }
            Some(problem) => {
                return Err(CliError::new(
                    EXIT_VERIFY_FAILED,
                    format!(
                        "the salvaged events in {} do not verify (event {}: {}); nothing usable was salvaged ({})",
                        args.to.display(),
                        problem.seq,
                        problem.detail,
                        source.describe()
                    ),
                ))
            }
        }
    };
    let resigned = !source.reads_sled();
    let newest_stored = match source.store() {
        Some(store) => stored_checkpoints(store)?.last().map(|(size, _)| *size),
        None => None,
    };
    let how = source.describe();
    drop(source);
    std::fs::remove_dir_all(&scratch).map_err(|e| failed(format!("{}: {e}", scratch.display())))?;
    println!(
        "salvaged events 1..={salvaged} into {} and verified them with {} ({} signatures)",
        args.to.display(),
        source_dir.public_key_path().display(),
        verified.signatures_checked
    );
    match &stop {
        Some(why) => println!("stopped at the first damage: {why}"),
        None => println!("no damage found: every stored event was salvaged"),
    }
    println!("{how}");
    match checkpoint {
        _ if resigned => println!(
            "the stored checkpoints were in sled: checkpoints at every 1,024 salvaged events were signed again \
             with the ledger's key; compare them with the checkpoints you kept outside (audit verify --anchors)"
        ),
        Some(size) => println!("the salvaged events match the stored checkpoint of {size} events"),
        None => println!("no stored checkpoint lies within the salvaged events"),
    }
    if let Some(newest) = newest_stored.filter(|size| *size > salvaged) {
        println!(
            "the newest stored checkpoint covers {newest} events: events {}..={newest} were in the log and are lost",
            salvaged + 1
        );
    }
    Ok(())
}

/// Copies the ledger's own files (configuration, identity, keys) into the new directory, not its log.
fn copy_identity(from: &Path, to: &Path) -> CliResult {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |e: std::io::Error| failed(format!("{path}: {e}"))
    };
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let name = entry.file_name();
        if entry.file_type().map_err(io(&entry.path()))?.is_file()
            && name != super::serve::SERVE_URL_FILE
        {
            // fs::copy keeps the permissions: signing.key stays readable by its owner only.
            std::fs::copy(entry.path(), to.join(&name)).map_err(io(&entry.path()))?;
        }
    }
    Ok(())
}

/// Copies events from seq 1 on while each is readable and continues the chain, at most `limit`; returns how
/// many and why it stopped before the end (`None`: the source ended).
/// What signs the checkpoints of a salvage that could not read the stored ones.
struct Resign {
    origin: String,
    signer: LedgerSigner,
}

fn copy_intact(
    source: &SalvageSource,
    target: &SledStore,
    limit: u64,
    resign: Option<Resign>,
) -> Result<(u64, Option<String>), CliError> {
    let mut chain = ChainFollower::default();
    let mut tree = Frontier::default();
    let mut batch = AppendBatch::default();
    let mut why = None;
    for record in source.records() {
        if chain.accepted() >= limit {
            break;
        }
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                why = Some(format!("after event {}: {error}", chain.accepted()));
                break;
            }
        };
        if let Err(problem) = chain.accept(&record) {
            why = Some(problem);
            break;
        }
        let event = match Event::decode(&record.body) {
            Ok(event) => event,
            Err(error) => {
                why = Some(format!("event {} does not decode: {error}", record.seq));
                break;
            }
        };
        batch.index_event(&event, batch.records.len());
        tree.push(&record.hash);
        if let Some(resign) = resign
            .as_ref()
            .filter(|_| tree.size() % CHECKPOINT_EVERY == 0)
        {
            let checkpoint = Checkpoint {
                origin: resign.origin.clone(),
                size: tree.size(),
                root: tree.root(),
            };
            batch.side.push((
                checkpoint_key(checkpoint.size),
                checkpoint
                    .sign(&resign.signer)
                    .map_err(LedgerError::from)?
                    .into_bytes(),
            ));
        }
        batch.records.push(record);
        if batch.records.len() == SALVAGE_BATCH {
            target
                .append(&std::mem::take(&mut batch))
                .map_err(LedgerError::from)?;
        }
    }
    target.append(&batch).map_err(LedgerError::from)?;
    Ok((chain.accepted(), why))
}

/// Copies the signer entries and checkpoints that lie within the salvaged events; returns the newest checkpoint's
/// size (verification then checks it against the rebuilt tree).
fn copy_side_entries(
    source: &SalvageSource,
    target: &SledStore,
    salvaged: u64,
) -> Result<Option<u64>, CliError> {
    let Some(store) = source.store() else {
        return Ok(None);
    };
    let mut entries = Vec::new();
    let mut newest = None;
    for (size, note) in stored_checkpoints(store)? {
        if size <= salvaged {
            newest = Some(size);
            entries.push((checkpoint_key(size), note.into_bytes()));
        }
    }
    for seq in rotation_seqs(store)? {
        let key = signer_side_key(seq);
        if let (true, Some(value)) = (
            seq <= salvaged,
            store.get_side(&key).map_err(LedgerError::from)?,
        ) {
            entries.push((key, value));
        }
    }
    target.put_side(&entries).map_err(LedgerError::from)?;
    Ok(newest)
}
