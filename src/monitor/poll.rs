//! One poll: fetch and verify the checkpoint, compare it with the verified state, and extend the verified right
//! edge with the new entries until it must give the checkpoint's root.

use super::frontier::Frontier;
use super::state::MonitorState;
use super::{Finding, MonitorError, Source, TrustedKey, BUNDLE_WIDTH};
use crate::audit::checkpoint::{Checkpoint, CheckpointError};
use crate::chain::Hash32;

/// What a poll concluded.
#[derive(Debug)]
pub enum Outcome {
    /// The checkpoint verified and extends the state: the new state, to be saved.
    Verified {
        state: MonitorState,
        new_entries: u64,
    },
    /// Something is wrong with the ledger; the state must be kept as it was.
    Found(Finding),
}

/// Polls `source` once against `state` (`None`: nothing verified yet, so every entry from leaf 0 is read).
pub fn poll(
    source: &mut dyn Source,
    trusted: &TrustedKey,
    state: Option<&MonitorState>,
) -> Result<Outcome, MonitorError> {
    let note = source.checkpoint()?;
    let checkpoint = match Checkpoint::verify_note(&note, &trusted.key) {
        Ok(checkpoint) => checkpoint,
        Err(CheckpointError::Malformed(why)) => {
            return Err(MonitorError::Unreachable(format!(
                "the checkpoint is not a signed note: {why}"
            )))
        }
        Err(error) => {
            return Ok(Outcome::Found(Finding::BadSignature {
                detail: format!("checkpoint {}: {error}", describe(&note)),
            }))
        }
    };
    if let Some(origin) = &trusted.origin {
        if *origin != checkpoint.origin {
            return Ok(Outcome::Found(Finding::BadSignature {
                detail: format!(
                    "the checkpoint names origin {:?}, the verifier key {origin:?}",
                    checkpoint.origin
                ),
            }));
        }
    }
    if let Some(state) = state {
        if state.origin != checkpoint.origin {
            return Err(MonitorError::OtherLedger(format!(
                "the state follows origin {:?} but the ledger's checkpoint names {:?}: another ledger? (use \
                 another --state directory for it)",
                state.origin, checkpoint.origin
            )));
        }
        if checkpoint.size < state.size() {
            return Ok(Outcome::Found(Finding::Cut {
                verified: state.size(),
                size: checkpoint.size,
            }));
        }
        if checkpoint.size == state.size() && checkpoint.root != state.root {
            return Ok(Outcome::Found(Finding::Fork {
                size: checkpoint.size,
                detail: format!(
                    "the checkpoint's root {} is not the root {} verified at this size",
                    hex::encode(checkpoint.root),
                    hex::encode(state.root)
                ),
            }));
        }
    }
    let mut frontier = state.map(|s| s.frontier.clone()).unwrap_or_default();
    let from = frontier.size();
    extend(source, &mut frontier, checkpoint.size)?;
    let computed = frontier.root();
    if computed != checkpoint.root {
        let detail = match from {
            0 => format!(
                "the checkpoint's root {} is not the root {} of the {} entries the ledger serves",
                hex::encode(checkpoint.root),
                hex::encode(computed),
                checkpoint.size
            ),
            _ => format!(
                "the checkpoint's root {} is not the root {} of the {from} entries verified before followed by \
                 the {} new ones: history before {from} was rewritten, or the entries served are not the tree \
                 signed",
                hex::encode(checkpoint.root),
                hex::encode(computed),
                checkpoint.size - from
            ),
        };
        return Ok(Outcome::Found(Finding::Fork {
            size: checkpoint.size,
            detail,
        }));
    }
    Ok(Outcome::Verified {
        new_entries: checkpoint.size - from,
        state: MonitorState {
            origin: checkpoint.origin,
            root: checkpoint.root,
            frontier,
        },
    })
}

/// The note's first line and size, for a message (never more than that of what the server sent).
fn describe(note: &str) -> String {
    let mut lines = note.lines();
    let origin: String = lines.next().unwrap_or_default().chars().take(200).collect();
    let size: String = lines.next().unwrap_or_default().chars().take(20).collect();
    format!("{origin:?} at size {size:?}")
}

/// Pushes leaves `frontier.size() .. size` onto `frontier`, reading the entry bundles that hold them.
fn extend(source: &mut dyn Source, frontier: &mut Frontier, size: u64) -> Result<(), MonitorError> {
    while frontier.size() < size {
        let next = frontier.size();
        let index = next / BUNDLE_WIDTH;
        let first = index * BUNDLE_WIDTH;
        let width = (size - first).min(BUNDLE_WIDTH);
        let bundle = source.entries(index, width)?;
        let hashes = parse_bundle(&bundle, width).ok_or_else(|| {
            MonitorError::Unreachable(format!(
                "entry bundle {index} (width {width}) is not {width} entries of 32 bytes"
            ))
        })?;
        for hash in &hashes[(next - first) as usize..] {
            frontier.push(hash);
        }
    }
    Ok(())
}

/// A bundle's entries: each a big-endian u16 length (32) and an event hash; `None` unless exactly `width`.
fn parse_bundle(bytes: &[u8], width: u64) -> Option<Vec<Hash32>> {
    let mut hashes = Vec::with_capacity(width as usize);
    let mut rest = bytes;
    while !rest.is_empty() {
        let (length, tail) = rest.split_first_chunk::<2>()?;
        if u16::from_be_bytes(*length) != 32 {
            return None;
        }
        let (hash, tail) = tail.split_first_chunk::<32>()?;
        hashes.push(*hash);
        rest = tail;
    }
    (hashes.len() as u64 == width).then_some(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::LedgerSigner;
    use sha2::{Digest, Sha256};

    /// A log in memory: its signer, origin and event hashes.
    struct Memory {
        signer: LedgerSigner,
        origin: String,
        events: Vec<Hash32>,
        size: u64,
    }

    impl Source for Memory {
        fn checkpoint(&mut self) -> Result<String, MonitorError> {
            let mut frontier = Frontier::default();
            for event in &self.events[..self.size as usize] {
                frontier.push(event);
            }
            let checkpoint = Checkpoint {
                origin: self.origin.clone(),
                size: self.size,
                root: frontier.root(),
            };
            Ok(checkpoint.sign(&self.signer).unwrap())
        }

        fn entries(&mut self, index: u64, width: u64) -> Result<Vec<u8>, MonitorError> {
            let first = (index * BUNDLE_WIDTH) as usize;
            Ok(self.events[first..first + width as usize]
                .iter()
                .flat_map(|h| [&[0u8, 32][..], h].concat())
                .collect())
        }
    }

    fn log(salt: &str, n: u32) -> Memory {
        Memory {
            signer: LedgerSigner::from_seed(&[7; 32]),
            origin: "ledger.example/m".into(),
            events: (0..n)
                .map(|i| Sha256::digest(format!("{salt}{i}")).into())
                .collect(),
            size: 0,
        }
    }

    fn verified(outcome: Outcome) -> MonitorState {
        match outcome {
            Outcome::Verified { state, .. } => state,
            Outcome::Found(finding) => panic!("{finding}"),
        }
    }

    #[test]
    fn growth_across_bundles_verifies_and_a_rewrite_a_cut_and_a_stranger_are_found() {
        let mut a = log("a", 700);
        let trusted = TrustedKey {
            key: a.signer.public_key(),
            origin: None,
        };
        let mut state = None;
        for size in [0, 1, 255, 256, 257, 600, 700] {
            a.size = size;
            state = Some(verified(poll(&mut a, &trusted, state.as_ref()).unwrap()));
        }
        let mut b = log("a", 800);
        b.events[10] = [0; 32];
        b.size = 800;
        let found = poll(&mut b, &trusted, state.as_ref()).unwrap();
        assert!(matches!(
            found,
            Outcome::Found(Finding::Fork { size: 800, .. })
        ));
        b.size = 700;
        let found = poll(&mut b, &trusted, state.as_ref()).unwrap();
        assert!(matches!(
            found,
            Outcome::Found(Finding::Fork { size: 700, .. })
        ));
        b.size = 300;
        let found = poll(&mut b, &trusted, state.as_ref()).unwrap();
        assert!(matches!(
            found,
            Outcome::Found(Finding::Cut {
                verified: 700,
                size: 300
            })
        ));
        let mut stranger = log("a", 800);
        stranger.signer = LedgerSigner::from_seed(&[8; 32]);
        let found = poll(&mut stranger, &trusted, state.as_ref()).unwrap();
        assert!(matches!(
            found,
            Outcome::Found(Finding::BadSignature { .. })
        ));
    }
}
