//! The demo's witness: a `keyledger witness` of its own on a loopback port, listed in the tour's keyledger.toml
//! before the ledger exists, so that the writer submits every checkpoint to it from the first one; and the last
//! step, which shows the newest checkpoint it cosigned and a rewritten copy of the ledger (same key, same origin,
//! another history) refused by the witness and caught by a monitor.

use super::{io, step};
use crate::audit::cosignature::{NamedKey, COSIGNATURE_V1, NOTE_ED25519};
use crate::audit::cosigned::{cosigners, newest_witnessed};
use crate::audit::witness_client::{WitnessConfig, WitnessPolicy};
use crate::datadir::DataDir;
use crate::ledger::Ledger;
use crate::witness::state::StateDir;
use crate::witness::Witness;
use crate::LedgerError;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The witness's name in the tour.
pub const NAME: &str = "witness.demo.local/w1";
/// How long the last step waits for the writer's newest checkpoint to be cosigned.
const WAIT: Duration = Duration::from_secs(15);

/// A witness planned before the ledger exists: its key, and the port it will answer on.
pub(super) struct DemoWitness {
    state: tempfile::TempDir,
    listener: Option<tokio::net::TcpListener>,
    pub url: String,
    pub vkey: String,
    witness: Option<Arc<Witness>>,
}

fn failed(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Config(format!("the demo's witness: {e}"))
}

/// Makes the witness's key and port and lists it in `root`'s keyledger.toml (which the alerts step puts back).
pub(super) fn plan(
    runtime: &tokio::runtime::Runtime,
    root: &Path,
) -> Result<DemoWitness, LedgerError> {
    let state = tempfile::Builder::new()
        .prefix("keyledger-demo-witness-")
        .tempdir()
        .map_err(|e| LedgerError::io("creating the witness's directory", e))?;
    let key = StateDir::new(state.path()).init(NAME)?;
    let vkey = NamedKey::new(NAME, COSIGNATURE_V1, key.verifying_key()).to_vkey();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| LedgerError::io("binding the witness's port", e))?;
    let url = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|e| LedgerError::io("the witness's port", e))?
    );
    let config = root.join("keyledger.toml");
    let existing = std::fs::read_to_string(&config).unwrap_or_default();
    std::fs::write(
        &config,
        format!("{existing}\n[[witnesses]]\nurl = \"{url}\"\nkey = \"{vkey}\"\n"),
    )
    .map_err(|e| LedgerError::io(format!("writing {}", config.display()), e))?;
    Ok(DemoWitness {
        state,
        listener: Some(listener),
        url,
        vkey,
        witness: None,
    })
}

impl DemoWitness {
    /// Starts answering, for the ledger of `dir` (its origin and key are known once it exists).
    pub fn serve(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        dir: &DataDir,
    ) -> Result<(), LedgerError> {
        let log = NamedKey::new(
            &dir.identity()?.origin,
            NOTE_ED25519,
            dir.anchor_public_key()?,
        );
        let witness = Arc::new(Witness::open(StateDir::new(self.state.path()), vec![log])?);
        let listener = self
            .listener
            .take()
            .ok_or_else(|| failed("already serving"))?;
        let app = crate::witness::router(witness.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });
        self.witness = Some(witness);
        Ok(())
    }

    /// The size the witness last cosigned for `origin` (0 before the first).
    pub fn cosigned_size(&self, origin: &str) -> u64 {
        self.witness
            .as_ref()
            .and_then(|w| w.cosigned(origin))
            .map_or(0, |c| c.size)
    }

    fn keys(&self) -> Result<Vec<NamedKey>, LedgerError> {
        Ok(vec![
            NamedKey::parse_vkey(&self.vkey, COSIGNATURE_V1).map_err(failed)?
        ])
    }

    /// Step `number`, first half: the writer's newest checkpoint, cosigned by the witness. Returns its size.
    pub fn show_cosigned(
        &self,
        number: usize,
        ledger: &Ledger,
        out: &mut dyn Write,
    ) -> Result<Option<u64>, LedgerError> {
        let started = step(
            out,
            number,
            &format!("Nobody has to trust the operator: a witness ({NAME}, {}) cosigns the ledger's checkpoints", self.url),
        )
        .map_err(io)?;
        let (checkpoint, _) = ledger.checkpoint_blocking()?;
        let keys = self.keys()?;
        let waited = Instant::now();
        let witnessed = loop {
            let found = newest_witnessed(ledger.store().as_ref(), &keys, 1)?;
            match found {
                Some((c, note)) if c.size >= checkpoint.size => break Some((c, note)),
                _ if waited.elapsed() > WAIT => break found,
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let Some((witnessed, note)) = witnessed else {
            writeln!(out, "   no checkpoint was cosigned within {WAIT:?}").map_err(io)?;
            return Ok(None);
        };
        writeln!(
            out,
            "   the writer submitted each checkpoint with a consistency proof; the newest, of {} events, came back \
             cosigned by {} (cosignature/v1):",
            witnessed.size,
            cosigners(&note, &keys)
                .iter()
                .map(|k| k.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
        .map_err(io)?;
        for line in note.lines() {
            let shown: String = line.chars().take(100).collect();
            writeln!(out, "     {shown}").map_err(io)?;
        }
        writeln!(
            out,
            "   (`audit verify --witnessed` asks the witness again; `audit export --witnessed` carries the \
             cosignature for `verify-export --witness-key`) ({:.0?})",
            started.elapsed()
        )
        .map_err(io)?;
        Ok(Some(witnessed.size))
    }

    /// The witness asked about `note` (another ledger's checkpoint of the same origin and key): its answer.
    pub fn ask(
        &self,
        store: &dyn crate::store::LogStore,
        note: &str,
    ) -> Result<String, LedgerError> {
        let config = WitnessConfig {
            name: None,
            url: self.url.clone(),
            key: self.vkey.clone(),
        };
        let asked = crate::audit::witnessed::ask_witnesses(
            store,
            note,
            &[config],
            &WitnessPolicy::default(),
        )
        .map_err(failed)?;
        Ok(asked
            .answers
            .first()
            .map(|a| format!("{}: {}", a.outcome, a.detail))
            .unwrap_or_default())
    }
}
