//! A signing key that stops signing (a PKCS#11 token removed, logged out or refusing) stops appends without
//! stopping the ledger for good: the batch that could not be signed is undone, every command is refused with the
//! reason (`/healthz` answers 503) and a watcher thread tries the key again until it signs, when appends resume.

use super::Shared;
use crate::chain::{LedgerSigner, SignError};
use crate::projection::KeyState;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How often a key that failed is tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// The key state as of event `written`, to put back the writer's view after a batch that was planned but never
/// signed: from the projections, once every batch written before it is durable (they then hold exactly that).
pub(super) fn keys_as_of(shared: &Shared, written: u64) -> KeyState {
    while shared.durable_seq.load(Ordering::Acquire) < written && shared.stopped().is_none() {
        std::thread::sleep(Duration::from_millis(1));
    }
    shared.read_projections().keys.clone()
}

/// Marks the key as unable to sign (starting the watcher unless one runs) and returns the reason commands are
/// refused with.
pub(super) fn signer_down(
    shared: &Arc<Shared>,
    signer: &LedgerSigner,
    error: &SignError,
) -> String {
    let (reason, first) = shared.set_signer_down(error);
    if first {
        tracing::error!(error = %error, "the signing key cannot sign; appends stop until it signs again");
        shared
            .metrics
            .signer_failures
            .fetch_add(1, Ordering::Relaxed);
        let (shared, signer) = (shared.clone(), signer.duplicate());
        let started = std::thread::Builder::new()
            .name("keyledger-signer-watch".into())
            .spawn(move || watch(&shared, &signer));
        if let Err(e) = started {
            tracing::error!(error = %e, "could not start the signer watcher; reopen the ledger once the key is back");
        }
    }
    reason
}

fn watch(shared: &Shared, signer: &LedgerSigner) {
    let mut last_error = String::new();
    loop {
        std::thread::sleep(RETRY_EVERY);
        if shared.stopping.load(Ordering::Relaxed) || shared.stopped().is_some() {
            return;
        }
        match signer.recover() {
            Ok(()) => {
                shared.clear_signer_down();
                tracing::info!(signer = %signer.id(), "the signing key signs again; appends resume");
                return;
            }
            Err(error) => {
                let error = error.to_string();
                if error != last_error {
                    tracing::warn!(error = %error, "the signing key still cannot sign");
                    last_error = error;
                }
            }
        }
    }
}
