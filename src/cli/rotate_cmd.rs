//! `keyledger audit rotate-signer`: a new signing key, a file or one on a PKCS#11 token, endorsed on the record by
//! the old one; between kinds too (a file key onto a token and back).

use super::{Cli, CliError, CliResult};
use crate::datadir::rotation::{rotate, NewKey, RotateTo, Rotation};
use crate::token::{SignerConfig, SignerKind};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

/// Usage errors exit 2, as clap's do.
const EXIT_USAGE: u8 = 2;

#[derive(Args, Debug)]
pub struct RotateSignerArgs {
    /// Why, for the record (kept in the `ledger.signer_rotated` event).
    #[arg(long)]
    pub reason: Option<String>,
    /// Where the new key is kept: `file` (signing.key) or `pkcs11` (generated on a token, non-extractable).
    /// Default: where the current key is.
    #[arg(long, value_parser = ["file", "pkcs11"])]
    pub to: Option<String>,
    /// The PKCS#11 module, with `--to pkcs11` (default: the current [signer]'s, when that is on a token).
    #[arg(long, value_name = "PATH")]
    pub pkcs11_module: Option<PathBuf>,
    /// The token's label, with `--to pkcs11` (default: the current [signer]'s, when that is on a token).
    #[arg(long)]
    pub token_label: Option<String>,
    /// The new key's label on the token, with `--to pkcs11` (required): generated there unless the token holds a
    /// key by that label already (which must not be the current signer).
    #[arg(long)]
    pub key_label: Option<String>,
    /// A file holding the token's user PIN, with `--to pkcs11` (written to [signer] pin_file; without it the PIN
    /// comes from $KEYLEDGER_PKCS11_PIN, or the current [signer]'s pin_file on the same token).
    #[arg(long, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
}

/// Where the arguments put the new key, given the `[signer]` in force.
fn target(args: &RotateSignerArgs, current: &SignerConfig) -> Result<RotateTo, CliError> {
    let to_token = match args.to.as_deref() {
        Some("pkcs11") => true,
        Some(_) => false,
        None => current.is_pkcs11(),
    };
    if !to_token {
        let given = [
            ("--pkcs11-module", args.pkcs11_module.is_some()),
            ("--token-label", args.token_label.is_some()),
            ("--key-label", args.key_label.is_some()),
            ("--pin-file", args.pin_file.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
            return Err(CliError::new(
                EXIT_USAGE,
                format!("{flag} applies to --to pkcs11 only (the new key is a file)"),
            ));
        }
        return Ok(RotateTo::File);
    }
    // Module and token default to the current [signer]'s when that is on a token.
    let on_token = current.is_pkcs11();
    let required = |flag: &str| {
        CliError::new(
            EXIT_USAGE,
            format!("{flag} is required with --to pkcs11 when the current signing key is not on a token"),
        )
    };
    let module = (args.pkcs11_module.clone())
        .or_else(|| current.module.clone().filter(|_| on_token))
        .ok_or_else(|| required("--pkcs11-module"))?;
    let token_label = (args.token_label.clone())
        .or_else(|| current.token_label.clone().filter(|_| on_token))
        .ok_or_else(|| required("--token-label"))?;
    let key_label = args.key_label.clone().ok_or_else(|| {
        CliError::new(
            EXIT_USAGE,
            "--key-label is required with --to pkcs11: the label of the new key on the token",
        )
    })?;
    let same_token = on_token
        && current.module.as_ref() == Some(&module)
        && current.token_label.as_ref() == Some(&token_label);
    if same_token && current.key_label.as_ref() == Some(&key_label) {
        return Err(CliError::new(
            EXIT_USAGE,
            format!("--key-label {key_label:?} names the current signing key; give the new key another label"),
        ));
    }
    let pin_file = match &args.pin_file {
        Some(file) => Some(file.clone()),
        None if same_token => current.pin_file.clone(),
        None => None,
    };
    Ok(RotateTo::Token(SignerConfig {
        kind: SignerKind::Pkcs11,
        module: Some(module),
        token_label: Some(token_label),
        key_label: Some(key_label),
        pin_file,
    }))
}

pub fn rotate_signer(cli: &Cli, args: &RotateSignerArgs) -> CliResult {
    let dir = cli.data_dir();
    let current = dir.config()?.signer;
    let to = target(args, &current)?;
    let rotation = rotate(&dir, &cli.key_source(), &to, args.reason.clone())?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "Signer rotated at seq {}: {} → {} (endorsed by the old key).",
        rotation.seq, rotation.old_id, rotation.new_id
    );
    let _ = report(&mut out, &rotation);
    let _ = writeln!(
        out,
        "Verifiers still need only the first public key ({}).",
        dir.public_key_path().display()
    );
    Ok(())
}

/// Where the new key is, and what becomes of the old one.
fn report(out: &mut impl Write, rotation: &Rotation) -> std::io::Result<()> {
    match &rotation.new_key {
        NewKey::Token {
            token_label,
            key_label,
        } => writeln!(
            out,
            "New signing key on the PKCS#11 token {token_label:?}, labelled {key_label:?} (generated there, \
             non-extractable; proven to sign before the rotation was recorded); keyledger.toml's [signer] names it."
        )?,
        NewKey::File { path, in_dir } => {
            writeln!(
                out,
                "New signing key written to {} (mode 0600) before the rotation was recorded.",
                path.display()
            )?;
            if rotation.old_signer.is_pkcs11() {
                writeln!(out, "keyledger.toml's [signer] now says kind = \"file\".")?;
            }
            if !in_dir {
                writeln!(out, "Move it into your secrets manager and point KEYLEDGER_SIGNING_KEY / --signing-key at it before the next start.")?;
            }
        }
    }
    let seq = rotation.seq;
    if let Some(retired) = &rotation.retired_key {
        writeln!(
            out,
            "The old key file is now {}: it can sign nothing the log accepts after seq {seq}. Destroy it (shred) once \
             no backup needs it: whoever holds it could still sign a rewritten history up to that seq.",
            retired.display()
        )?;
    } else if !rotation.old_signer.is_pkcs11() && matches!(rotation.new_key, NewKey::Token { .. }) {
        writeln!(
            out,
            "The old key came from outside the data directory ($KEYLEDGER_SIGNING_KEY[_FILE] / --signing-key) and is no \
             longer read: it can sign nothing the log accepts after seq {seq}; remove it from your secrets manager once \
             no backup needs it."
        )?;
    }
    if rotation.old_signer.is_pkcs11() {
        writeln!(
            out,
            "The old key stays on its token, labelled {:?}: it can sign nothing the log accepts after seq {seq}; \
             delete it there once no backup needs it.",
            rotation.old_signer.key_label.as_deref().unwrap_or_default()
        )?;
    }
    Ok(())
}
