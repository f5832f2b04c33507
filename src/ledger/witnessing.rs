//! The writer's witnessing thread: every checkpoint, once durable, goes to each configured witness (the newest
//! one only, when several wait), with a consistency proof from the size that witness last cosigned. Each
//! cosignature is kept beside its checkpoint (audit::cosigned); failures are counted and tried again with the
//! next checkpoint or after a pause; a conflict (the witness holds a history this log does not continue) is
//! logged, counted, raised as an alert by the alert watcher, and that witness is not asked again until the writer
//! restarts, so the writer never pushes a fork at it.

use super::Shared;
use crate::audit::checkpoint::Checkpoint;
use crate::audit::cosigned::add_cosignature;
use crate::audit::witness_client::{Outcome, WitnessClient, WitnessConfig, WitnessPolicy};
use crate::error::{LedgerError, LedgerResult};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

/// How long a failed submission waits for the next checkpoint before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(15);

/// Hands durable checkpoint notes to the witnessing thread.
pub(crate) struct WitnessSink {
    notes: mpsc::Sender<String>,
}

impl WitnessSink {
    /// Starts the thread; `None` when no witness is configured.
    pub fn start(
        witnesses: &[WitnessConfig],
        policy: &WitnessPolicy,
        shared: Arc<Shared>,
    ) -> LedgerResult<Option<(Self, std::thread::JoinHandle<()>)>> {
        if witnesses.is_empty() {
            return Ok(None);
        }
        let clients = witnesses
            .iter()
            .map(|w| WitnessClient::new(w, policy))
            .collect::<Result<Vec<_>, _>>()
            .map_err(LedgerError::Config)?;
        for client in &clients {
            shared.metrics.witness(client.name(), |_| {});
        }
        let (notes, inbox) = mpsc::channel::<String>();
        let handle = std::thread::Builder::new()
            .name("keyledger-witnessing".into())
            .spawn(move || run(clients, inbox, &shared))
            .map_err(|e| LedgerError::io("starting the witnessing thread", e))?;
        Ok(Some((Self { notes }, handle)))
    }

    pub fn send(&self, note: String) {
        // The thread ends only when this sender is dropped; a send cannot fail before that.
        let _ = self.notes.send(note);
    }
}

/// A witness and whether it still has to cosign the newest note.
struct Follow {
    client: WitnessClient,
    owed: bool,
    conflicted: bool,
}

fn run(clients: Vec<WitnessClient>, inbox: mpsc::Receiver<String>, shared: &Shared) {
    let mut follows: Vec<Follow> = clients
        .into_iter()
        .map(|client| Follow {
            client,
            owed: false,
            conflicted: false,
        })
        .collect();
    let mut newest: Option<String> = None;
    loop {
        let retrying = follows.iter().any(|f| f.owed && !f.conflicted);
        let next = if retrying {
            inbox.recv_timeout(RETRY_AFTER)
        } else {
            inbox.recv().map_err(|_| RecvTimeoutError::Disconnected)
        };
        match next {
            Ok(note) => {
                // Only the newest of the notes waiting matters: a witness cosigns the latest tree it sees.
                newest = Some(inbox.try_iter().last().unwrap_or(note));
                follows.iter_mut().for_each(|f| f.owed = !f.conflicted);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let Some(note) = newest.as_deref() else {
            continue;
        };
        for follow in follows.iter_mut().filter(|f| f.owed && !f.conflicted) {
            submit(follow, note, shared);
        }
    }
}

fn submit(follow: &mut Follow, note: &str, shared: &Shared) {
    let name = follow.client.name().to_string();
    let size = Checkpoint::parse_note(note).map_or(0, |(c, _, _)| c.size);
    match follow.client.submit(shared.store.as_ref(), note) {
        Outcome::Cosigned { line, .. } => {
            match add_cosignature(shared.store.as_ref(), size, note, &line) {
                Ok(_) => {
                    follow.owed = false;
                    shared.metrics.witness(&name, |c| {
                        c.cosigned_size = size;
                        c.cosignatures += 1;
                    });
                    tracing::debug!(witness = %name, size, "checkpoint cosigned");
                }
                Err(error) => {
                    shared.metrics.witness(&name, |c| c.failures += 1);
                    tracing::error!(witness = %name, size, %error, "could not keep a cosignature");
                }
            }
        }
        Outcome::Failed { reason } => {
            shared.metrics.witness(&name, |c| c.failures += 1);
            tracing::warn!(witness = %name, size, %reason, "a witness did not cosign; trying again later");
        }
        Outcome::Conflict { reason } => {
            follow.conflicted = true;
            follow.owed = false;
            shared.metrics.witness(&name, |c| {
                c.conflicts += 1;
                c.conflict = Some(reason.clone());
            });
            tracing::error!(witness = %name, size, %reason, "WITNESS CONFLICT: not submitting to this witness again until restart");
        }
    }
}
