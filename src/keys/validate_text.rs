//! The checks under every text field of a key (validate.rs uses them for every field): free text, labels that identify a key
//! (no keyledger secret pasted in, no invisible characters that change how text displays, named by code point
//! and never repeating the value) and tokens of letters, digits and a few marks; and the refusal they return.

use crate::error::{LedgerError, LedgerResult};

pub(super) fn invalid<T>(field: &str, message: impl Into<String>) -> LedgerResult<T> {
    Err(LedgerError::invalid(field, message))
}

/// Invisible characters that change how the text around them displays: controls, bidi embeddings, overrides,
/// isolates and marks, zero-width characters, line and paragraph separators, and the other format characters.
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}' | '\u{070F}'
            | '\u{0890}'..='\u{0891}' | '\u{08E2}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}' | '\u{110CD}' | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}' | '\u{E0001}' | '\u{E0020}'..='\u{E007F}')
}

fn no_secret(field: &str, value: &str) -> LedgerResult<()> {
    if crate::secret::contains_secret(value) {
        return invalid(
            field,
            "holds a keyledger secret (kl_…), which never belongs here; consider it exposed and rotate its key",
        );
    }
    Ok(())
}

/// Refuses a secret or an invisible character in `value` without repeating it (the code point is named).
pub(super) fn clean(field: &str, value: &str) -> LedgerResult<()> {
    no_secret(field, value)?;
    match value.chars().find(|c| invisible(*c)) {
        Some(c) => invalid(
            field,
            format!(
                "must not contain control, bidi or zero-width characters (found U+{:04X})",
                u32::from(c)
            ),
        ),
        None => Ok(()),
    }
}

/// Free text (a description): no secret, no control characters.
pub(super) fn text(field: &str, value: &str, max: usize, required: bool) -> LedgerResult<String> {
    let trimmed = value.trim();
    no_secret(field, trimmed)?;
    if required && trimmed.is_empty() {
        return invalid(field, "must not be empty");
    }
    if trimmed.chars().count() > max {
        return invalid(field, format!("at most {max} characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return invalid(field, "must not contain control characters");
    }
    Ok(trimmed.to_string())
}

/// Text that identifies a key (a name, an owner, a metadata value): also no invisible characters.
pub(super) fn label(field: &str, value: &str, max: usize, required: bool) -> LedgerResult<String> {
    clean(field, value.trim())?;
    text(field, value, max, required)
}

pub(super) fn token(field: &str, value: &str, max: usize, extra: &str) -> LedgerResult<String> {
    clean(field, value)?;
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    if ok {
        Ok(value.to_string())
    } else {
        invalid(
            field,
            format!("{value:?} is not allowed: 1-{max} of letters, digits and {extra:?}"),
        )
    }
}
