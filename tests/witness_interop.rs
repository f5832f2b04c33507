//! keyledger's checkpoint notes, verifier keys and cosignature lines against an implementation nobody here wrote:
//! Cloudflare's `signed_note` (C2SP signed-note). Its published 0.2.0 knows Ed25519 note keys (type 0x01) and
//! the signature-line framing, not cosignature/v1 itself, so the cosignature's bytes are checked here by
//! keyledger alone, and its line by the crate's parser.

use keyledger::audit::checkpoint::{verifier_key, Checkpoint};
use keyledger::audit::cosignature::{NamedKey, NOTE_ED25519};
use keyledger::chain::LedgerSigner;
use keyledger::witness::state::StateDir;
use keyledger::witness::Witness;
use signed_note::{generate_key, Note, StandardSigner, StandardVerifier, VerifierList};

const ORIGIN: &str = "ledger.example/interop";

fn checkpoint(size: u64) -> Checkpoint {
    Checkpoint {
        origin: ORIGIN.into(),
        size,
        root: [size as u8; 32],
    }
}

#[test]
fn a_ledger_checkpoint_and_a_witness_cosignature_read_with_signed_note() {
    let log = LedgerSigner::from_seed(&[5; 32]);
    let note = checkpoint(1).sign(&log).unwrap();
    // The log's signature verifies with the crate, from keyledger's verifier key string.
    let vkey = verifier_key(ORIGIN, &log.public_key());
    let known = VerifierList::new(vec![Box::new(StandardVerifier::new(&vkey).unwrap())]);
    let parsed = Note::from_bytes(note.as_bytes()).unwrap();
    let (verified, unverified) = parsed.verify(&known).unwrap();
    assert_eq!((verified.len(), unverified.len()), (1, 0));

    // The witness's cosignature, appended, is a signature line the crate parses (an unknown key to it).
    let tmp = tempfile::tempdir().unwrap();
    let dir = StateDir::new(tmp.path());
    dir.init("witness.example/w1").unwrap();
    let witness = Witness::open(
        dir,
        vec![NamedKey::new(ORIGIN, NOTE_ED25519, log.public_key())],
    )
    .unwrap();
    let line = witness
        .add_checkpoint(&format!("old 0\n\n{note}"), 1_700_000_000)
        .unwrap();
    let cosigned = format!("{note}{line}");
    let parsed = Note::from_bytes(cosigned.as_bytes()).unwrap();
    let (verified, unverified) = parsed.verify(&known).unwrap();
    assert_eq!((verified.len(), unverified.len()), (1, 1));
    assert_eq!(unverified[0].name(), "witness.example/w1");
    assert_eq!(
        unverified[0].signature().len(),
        8 + 64,
        "timestamp and signature"
    );
}

#[test]
fn a_checkpoint_signed_by_signed_note_is_cosigned_by_keyledgers_witness() {
    // The log's key made and used by the crate; keyledger reads its verifier key and its signature.
    let (skey, vkey) = generate_key(&mut rand_core::OsRng, ORIGIN);
    let signer = StandardSigner::new(&skey).unwrap();
    let mut note = Note::new(checkpoint(7).body().as_bytes(), &[]).unwrap();
    note.add_sigs(&[&signer]).unwrap();
    let text = String::from_utf8(note.to_bytes()).unwrap();
    let log = NamedKey::parse_vkey(&vkey, NOTE_ED25519).unwrap();
    assert_eq!(log.to_vkey(), vkey, "the same verifier key string back");
    assert_eq!(
        Checkpoint::verify_note(&text, &log.key).unwrap(),
        checkpoint(7)
    );

    let tmp = tempfile::tempdir().unwrap();
    let dir = StateDir::new(tmp.path());
    dir.init("witness.example/w1").unwrap();
    let witness = Witness::open(dir, vec![log]).unwrap();
    assert!(witness
        .add_checkpoint(&format!("old 0\n\n{text}"), 1)
        .is_ok());
    // A note the crate signed for another origin is not this log's.
    let (other, _) = generate_key(&mut rand_core::OsRng, ORIGIN);
    let mut forged = Note::new(checkpoint(8).body().as_bytes(), &[]).unwrap();
    forged
        .add_sigs(&[&StandardSigner::new(&other).unwrap()])
        .unwrap();
    let forged = String::from_utf8(forged.to_bytes()).unwrap();
    let refused = witness
        .add_checkpoint(&format!("old 7\n\n{forged}"), 2)
        .unwrap_err();
    assert_eq!(refused.status, reqwest::StatusCode::FORBIDDEN);
}
