//! keyledger.toml's sections that commands write: where the log lives (`--store`) and where the signing key is
//! (`--signer pkcs11` before `init`; `audit rotate-signer` between kinds rewrites `[signer]` atomically).

use super::{sync_dir, write_new_file, DataDir};
use crate::error::{LedgerError, LedgerResult};
use crate::token::SignerConfig;
use std::fs;
use std::path::Path;

impl DataDir {
    /// Records in keyledger.toml that the log lives at `url` (PostgreSQL), before `init`.
    pub fn set_store(&self, url: &str) -> LedgerResult<()> {
        fs::create_dir_all(&self.root)
            .map_err(|e| LedgerError::io(format!("creating {}", self.root.display()), e))?;
        let path = self.config_path();
        let existing = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(LedgerError::io(format!("reading {}", path.display()), e)),
        };
        if self.config()?.store.is_some() {
            return Err(LedgerError::Config(format!(
                "{} already names a store",
                path.display()
            )));
        }
        // A top-level key must come before the first [section].
        let line = format!("store = {}\n", toml::Value::String(url.to_string()));
        fs::write(&path, format!("{line}{existing}"))
            .map_err(|e| LedgerError::io(format!("writing {}", path.display()), e))?;
        self.config().map(|_| ())
    }

    /// Writes a `[signer]` section for `signer` into keyledger.toml (refusing to replace one), before `init`.
    pub fn set_signer(&self, signer: &SignerConfig) -> LedgerResult<()> {
        fs::create_dir_all(&self.root)
            .map_err(|e| LedgerError::io(format!("creating {}", self.root.display()), e))?;
        let path = self.config_path();
        if self.config()?.signer != SignerConfig::default() {
            return Err(LedgerError::Config(format!(
                "{} already has a [signer] section",
                path.display()
            )));
        }
        signer.validate().map_err(LedgerError::Config)?;
        let section = signer_section(signer)?;
        let existing = fs::read_to_string(&path).unwrap_or_default();
        fs::write(&path, format!("{existing}\n{section}"))
            .map_err(|e| LedgerError::io(format!("writing {}", path.display()), e))?;
        self.config().map(|_| ())
    }

    /// Makes keyledger.toml's `[signer]` section say `signer`, keeping every other line of the file: the section is
    /// replaced where it stands (or appended), the result is checked to parse with every other section unchanged,
    /// and written atomically ([`replace_file`]). Does nothing when the file already says so.
    pub(super) fn replace_signer(&self, signer: &SignerConfig) -> LedgerResult<()> {
        if self.config()?.signer == *signer {
            return Ok(());
        }
        signer.validate().map_err(LedgerError::Config)?;
        let path = self.config_path();
        let existing = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(LedgerError::io(format!("reading {}", path.display()), e)),
        };
        let section = signer_section(signer)?;
        let rewritten = with_signer_section(&existing, &section);
        let refused = || {
            LedgerError::Config(format!(
                "{}: the [signer] section cannot be rewritten in place (is it written as a [signer] table?); \
                 replace it by hand with:\n{section}",
                path.display()
            ))
        };
        let (Ok(before), Ok(after)) = (
            toml::from_str::<toml::Table>(&existing),
            toml::from_str::<toml::Table>(&rewritten),
        ) else {
            return Err(refused());
        };
        let others = |table: &toml::Table| {
            let mut table = table.clone();
            table.remove("signer");
            table
        };
        let parsed: crate::config::AnalysisConfig =
            toml::from_str(&rewritten).map_err(|_| refused())?;
        if others(&before) != others(&after) || parsed.signer != *signer {
            return Err(refused());
        }
        parsed
            .validate()
            .map_err(|e| LedgerError::Config(format!("{}: {e}", path.display())))?;
        let mode = permissions_of(&path).unwrap_or(0o644);
        replace_file(&path, rewritten.as_bytes(), mode)
    }
}

/// `[signer]` and its fields, as TOML text ending in a newline.
fn signer_section(signer: &SignerConfig) -> LedgerResult<String> {
    toml::to_string(&std::collections::BTreeMap::from([("signer", signer)]))
        .map_err(|e| LedgerError::Config(e.to_string()))
}

/// The table name of a header line (`[name]`, with an optional comment), or `Some("")` for `[[array]]`.
fn header(line: &str) -> Option<&str> {
    let code = line.split('#').next().unwrap_or_default().trim();
    if code.starts_with("[[") {
        return Some("");
    }
    code.strip_prefix('[')?.strip_suffix(']').map(str::trim)
}

/// `text` with its `[signer]` section (header to the next header, less the blank and comment lines before that
/// one) replaced by `section`, or with `section` appended when it has none.
fn with_signer_section(text: &str, section: &str) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let Some(start) = lines.iter().position(|l| header(l) == Some("signer")) else {
        let gap = if text.is_empty() || text.ends_with("\n\n") {
            ""
        } else if text.ends_with('\n') {
            "\n"
        } else {
            "\n\n"
        };
        return format!("{text}{gap}{section}");
    };
    let mut end = lines[start + 1..]
        .iter()
        .position(|l| header(l).is_some())
        .map_or(lines.len(), |at| start + 1 + at);
    while end > start + 1 && {
        let line = lines[end - 1].trim();
        line.is_empty() || line.starts_with('#')
    } {
        end -= 1;
    }
    let mut out: String = lines[..start].concat();
    out.push_str(section);
    out.push_str(&lines[end..].concat());
    out
}

#[cfg(unix)]
fn permissions_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn permissions_of(_path: &Path) -> Option<u32> {
    None
}

/// Replaces `path` with `contents` so that a crash leaves the old file or the new one, whole: a temporary file
/// beside it (mode `mode`) is written and fsynced, renamed over `path`, and the directory fsynced.
pub(super) fn replace_file(path: &Path, contents: &[u8], mode: u32) -> LedgerResult<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let temporary = path.with_file_name(name);
    match fs::remove_file(&temporary) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(LedgerError::io(
                format!("removing {}", temporary.display()),
                e,
            ))
        }
    }
    write_new_file(&temporary, contents, mode)?;
    fs::rename(&temporary, path).map_err(|e| {
        LedgerError::io(
            format!("renaming {} to {}", temporary.display(), path.display()),
            e,
        )
    })?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

#[cfg(test)]
mod tests {
    use super::with_signer_section;

    const TOKEN: &str = "[signer]\nkind = \"pkcs11\"\nkey_label = \"k\"\n";

    #[test]
    fn the_signer_section_is_replaced_where_it_stands_and_nothing_else_moves() {
        let text = "store = \"x\"\n\n[signer] # the key\nkind = \"file\"\n\n# checkpoints\n[checkpoints]\n\
                    interval_secs = 5\n";
        assert_eq!(
            with_signer_section(text, TOKEN),
            format!("store = \"x\"\n\n{TOKEN}\n# checkpoints\n[checkpoints]\ninterval_secs = 5\n")
        );
        let last = "[anomaly]\nx = 1\n[signer]\nkind = \"pkcs11\"\n";
        assert_eq!(
            with_signer_section(last, "[signer]\nkind = \"file\"\n"),
            "[anomaly]\nx = 1\n[signer]\nkind = \"file\"\n"
        );
        assert_eq!(
            with_signer_section("[[witnesses]]\nname = \"w\"", TOKEN),
            format!("[[witnesses]]\nname = \"w\"\n\n{TOKEN}")
        );
        assert_eq!(with_signer_section("", TOKEN), TOKEN);
    }
}
