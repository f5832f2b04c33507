//! The demo's rewritten ledger: a copy of the tour's data directory taken just after `init` (same signing key,
//! same origin) is given another history, as someone holding the key and the files could. The tour's witness
//! refuses its checkpoint, and a monitor that verified the real ledger over its tlog-tiles API reports a fork when
//! the copy is served in its place.

use super::io;
use super::witnessing::DemoWitness;
use crate::api::AppState;
use crate::datadir::{DataDir, KeySource};
use crate::event::{Actor, EventData, KeyUsed, VerifyCode};
use crate::ledger::{AppendEvents, Ledger};
use crate::monitor::{poll, Outcome, TrustedKey};
use crate::LedgerError;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// The copy taken after `init`, in a temporary directory of its own.
pub(super) struct ForkBase(tempfile::TempDir);

/// What the witness and the monitor said about the rewritten copy.
#[derive(Debug, Clone, Default)]
pub struct ForkRun {
    /// The size of the real ledger the monitor verified.
    pub verified: u64,
    /// The size of the rewritten copy's checkpoint.
    pub forged: u64,
    /// `conflict: …` when the witness refused the copy's checkpoint.
    pub witness_answer: String,
    /// The monitor's finding about the copy (`monitor: FORK at size …`).
    pub finding: Option<String>,
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Closes the just-initialised `ledger`, copies its directory and opens it again. Only for the embedded store
/// (a PostgreSQL log is not in the directory): `None` then.
pub(super) fn keep_base(
    mut ledger: Ledger,
    dir: &DataDir,
) -> Result<(Ledger, Option<ForkBase>), LedgerError> {
    if dir.config()?.store.is_some() {
        return Ok((ledger, None));
    }
    ledger.close();
    drop(ledger);
    let base = tempfile::Builder::new()
        .prefix("keyledger-demo-fork-")
        .tempdir()
        .map_err(|e| LedgerError::io("creating the fork's directory", e))?;
    let copy = base.path().join("data");
    copy_dir(dir.root(), &copy).map_err(|e| LedgerError::io("copying the data directory", e))?;
    // The copy neither alerts nor submits to the witness by itself: the step asks the witness explicitly.
    std::fs::write(copy.join("keyledger.toml"), "")
        .map_err(|e| LedgerError::io("writing the copy's keyledger.toml", e))?;
    let _ = std::fs::remove_file(copy.join("demo-webhook.secret"));
    let reopened = dir.open(&KeySource::File(dir.key_path()))?;
    Ok((reopened, Some(ForkBase(base))))
}

/// Unknown-key uses from one address per 256, `count` of them, in batches.
fn rewrite(ledger: &Ledger, count: u64) -> Result<(), LedgerError> {
    let mut left = count;
    while left > 0 {
        let batch = left.min(4096);
        let events = (0..batch)
            .map(|n| {
                EventData::KeyUsed(KeyUsed {
                    key_id: None,
                    prefix: None,
                    outcome: VerifyCode::NotFound,
                    ip: Some(format!("203.0.113.{}", (left - n) % 256)),
                    user_agent: Some("rewritten/1.0".into()),
                    scope: None,
                    project: None,
                    gateway_ip: None,
                    overlap: false,
                    method: None,
                    path: None,
                    committed: None,
                })
            })
            .collect();
        ledger.submit_blocking(AppendEvents {
            actor: Actor::System,
            request_id: None,
            events,
        })?;
        left -= batch;
    }
    Ok(())
}

/// A ledger's API on a loopback port, for the monitor.
struct Served {
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

fn serve(
    runtime: &tokio::runtime::Runtime,
    ledger: &Arc<Ledger>,
    dir: &DataDir,
) -> Result<Served, LedgerError> {
    let state = AppState::new(
        ledger.clone(),
        dir.anchor_public_key()?,
        dir.identity()?.origin,
    );
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| LedgerError::io("binding a port for the monitor", e))?;
    let url = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|e| LedgerError::io("the monitor's port", e))?
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = runtime.spawn(crate::api::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Ok(Served { url, stop, task })
}

impl Served {
    /// Stops serving, so that the server no longer holds the ledger.
    fn stop(self, runtime: &tokio::runtime::Runtime) {
        let _ = self.stop.send(());
        let _ = runtime.block_on(self.task);
    }
}

/// The step's second half: the witness and a monitor against the rewritten copy. `audit_secret` is a key with
/// `ledger:audit` on the real ledger (the copy gets one of its own).
pub(super) fn run(
    runtime: &tokio::runtime::Runtime,
    real: &Arc<Ledger>,
    dir: &DataDir,
    base: Option<ForkBase>,
    witness: &DemoWitness,
    audit_secret: &str,
    out: &mut dyn Write,
) -> Result<Option<ForkRun>, LedgerError> {
    let Some(ForkBase(base)) = base else {
        writeln!(
            out,
            "   (the rewritten copy is skipped: the log is in PostgreSQL, not in the directory)"
        )
        .map_err(io)?;
        return Ok(None);
    };
    let trusted = TrustedKey::parse(&hex::encode(dir.anchor_public_key()?.as_bytes()))
        .map_err(LedgerError::Config)?;
    let served = serve(runtime, real, dir)?;
    let mut source = super::super::monitor_cmd::HttpSource::new(&served.url, audit_secret)
        .map_err(|e| LedgerError::Config(e.to_string()))?;
    let polled = poll(&mut source, &trusted, None);
    served.stop(runtime);
    let state = match polled {
        Ok(Outcome::Verified { state, .. }) => state,
        Ok(Outcome::Found(finding)) => return Err(LedgerError::Config(finding.to_string())),
        Err(e) => return Err(LedgerError::Config(e.to_string())),
    };
    let verified = state.size();
    writeln!(
        out,
        "   a monitor (`keyledger monitor`) read the served tiles of all {verified} events and verified the checkpoint"
    )
    .map_err(io)?;

    let copy = DataDir::new(base.path().join("data"));
    let forged = Arc::new(copy.open(&KeySource::File(copy.key_path()))?);
    // Longer than anything the witness cosigned (the monitor's own reads were recorded as uses meanwhile), so that
    // the witness judges the other history itself rather than a shorter log.
    let have = forged.durable_seq();
    let longest = verified
        .max(real.durable_seq())
        .max(witness.cosigned_size(&copy.identity()?.origin));
    rewrite(&forged, longest.saturating_sub(have) + 64)?;
    let (checkpoint, note) = forged.checkpoint_blocking()?;
    writeln!(
        out,
        "   a copy of the directory taken after init (same key, same origin) got another history of {} events, \
         signed with the ledger's key",
        checkpoint.size
    )
    .map_err(io)?;
    let witness_answer = witness.ask(forged.store().as_ref(), &note)?;
    writeln!(out, "   the witness, asked to cosign it: {witness_answer}").map_err(io)?;

    let system = crate::keys::Requester::new(Actor::System, None);
    let config = super::key(
        "monitor",
        "keyledger",
        "security-team",
        &["ledger:audit"],
        &[],
        None,
    );
    let issued = forged.submit_blocking(crate::keys::CreateKey::new(system, &config)?)?;
    let served = serve(runtime, &forged, &copy)?;
    let mut source =
        super::super::monitor_cmd::HttpSource::new(&served.url, issued.secret.expose())
            .map_err(|e| LedgerError::Config(e.to_string()))?;
    let polled = poll(&mut source, &trusted, Some(&state));
    served.stop(runtime);
    if let Ok(mut forged) = Arc::try_unwrap(forged) {
        forged.close();
    }
    let finding = match polled {
        Ok(Outcome::Found(finding)) => Some(finding.to_string()),
        Ok(Outcome::Verified { .. }) => None,
        Err(e) => Some(format!("monitor: could not poll: {e}")),
    };
    writeln!(
        out,
        "   the monitor, pointed at the copy as if it were the ledger: {}",
        finding
            .as_deref()
            .unwrap_or("no finding (THIS WOULD BE A BUG)")
    )
    .map_err(io)?;
    Ok(Some(ForkRun {
        verified,
        forged: checkpoint.size,
        witness_answer,
        finding,
    }))
}
