//! The scope grammar and what a held scope grants. A scope is one or more segments joined by `:`, each of
//! letters, digits and `._-/`; `*` as the whole scope grants everything, and `*` as the whole last segment
//! (`payments:*`) grants every scope under that prefix (`payments:read`, `payments:refunds:write`).
//! Nothing else is a wildcard: `experiments.*` is refused at input rather than silently matching nothing.

use crate::error::{LedgerError, LedgerResult};

/// The scope that grants every scope.
pub const EVERYTHING: &str = "*";
/// Scopes under this prefix are keyledger's own (read, audit, admin, verify).
pub const LEDGER_PREFIX: &str = "ledger:";
/// The scope that administers the ledger (create, change and revoke keys).
pub const LEDGER_ADMIN: &str = "ledger:admin";
/// Reading keys, history, usage and anomalies.
pub const LEDGER_READ: &str = "ledger:read";
/// Exports, proofs and verification of the chain.
pub const LEDGER_AUDIT: &str = "ledger:audit";
/// What a gateway needs to ask `POST /v1/verify`.
pub const LEDGER_VERIFY: &str = "ledger:verify";
pub const MAX_SCOPE_LEN: usize = 64;

fn segment_ok(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
}

/// Checks one scope against the grammar; the error names `field` and says what is allowed.
pub fn check(field: &str, scope: &str) -> LedgerResult<()> {
    let well_formed = scope == EVERYTHING || {
        let segments: Vec<&str> = scope.split(':').collect();
        let (last, rest) = segments.split_last().unwrap_or((&"", &[]));
        rest.iter().all(|s| segment_ok(s))
            && (segment_ok(last) || (*last == "*" && !rest.is_empty()))
    };
    if scope.len() > MAX_SCOPE_LEN || !well_formed {
        return Err(LedgerError::invalid(
            field,
            format!(
                "{scope:?} is not a scope: segments of letters, digits and ._-/ joined by ':' (at most \
                 {MAX_SCOPE_LEN} characters); '*' only as the whole scope or as the whole last segment \
                 (payments:*)"
            ),
        ));
    }
    Ok(())
}

/// True when `held` grants `required`: the same scope, `*`, or a `prefix:*` whose prefix starts `required`.
pub fn grants(held: &str, required: &str) -> bool {
    held == required
        || held == EVERYTHING
        || held
            .strip_suffix('*')
            .is_some_and(|prefix| prefix.ends_with(':') && required.starts_with(prefix))
}

/// True when some scope in `held` grants `required`.
pub fn any_grants(held: &[String], required: &str) -> bool {
    held.iter().any(|scope| grants(scope, required))
}

/// True when `held` grants everything `requested` would grant (so handing out `requested` gives no more power).
pub fn covers(held: &[String], requested: &str) -> bool {
    if requested == EVERYTHING {
        return held.iter().any(|s| s == EVERYTHING);
    }
    if let Some(prefix) = requested.strip_suffix('*') {
        // `a:b:*` is covered by `*`, `a:*` or `a:b:*`: a wildcard whose prefix starts ours.
        return held.iter().any(|s| {
            s == EVERYTHING
                || s.strip_suffix('*')
                    .is_some_and(|p| p.ends_with(':') && prefix.starts_with(p))
        });
    }
    any_grants(held, requested)
}

/// True when a scope grants some of keyledger's own scopes (`ledger:…`, `ledger:*` or `*`).
pub fn reaches_ledger(scope: &str) -> bool {
    scope == EVERYTHING || scope.starts_with(LEDGER_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(scopes: &[&str]) -> Vec<String> {
        scopes.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_grammar_accepts_exact_prefix_wildcards_and_everything_only() {
        for ok in ["read", "payments:read", "payments:*", "a.b:c-d/e:*", "*"] {
            assert!(check("scopes", ok).is_ok(), "{ok}");
        }
        for bad in [
            "experiments.*",
            "pay*",
            ":read",
            "a::b",
            "a:",
            "*:read",
            "a:*:b",
            "a b",
            "",
        ] {
            let err = check("scopes", bad).unwrap_err().to_string();
            assert!(
                err.starts_with("scopes") && err.contains("'*' only"),
                "{bad}: {err}"
            );
        }
        assert!(check("scopes", &"a".repeat(65)).is_err());
    }

    #[test]
    fn wildcards_grant_what_is_under_them_and_nothing_beside() {
        assert!(grants("payments:*", "payments:read"));
        assert!(grants("payments:*", "payments:refunds:write"));
        assert!(!grants("payments:*", "payments"));
        assert!(!grants("payments:*", "paymentsx:read"));
        assert!(grants("*", "ledger:admin"));
        assert!(grants("read", "read") && !grants("read", "write"));
    }

    #[test]
    fn covering_needs_a_wildcard_at_least_as_wide() {
        assert!(covers(&held(&["ledger:*"]), "ledger:admin"));
        assert!(covers(&held(&["ledger:*"]), "ledger:*"));
        assert!(!covers(&held(&["ledger:admin"]), "ledger:*"));
        assert!(!covers(&held(&["ledger:*"]), "*"));
        assert!(covers(&held(&["*"]), "*"));
        assert!(covers(&held(&["a:*"]), "a:b:*"));
        assert!(!covers(&held(&["a:b:*"]), "a:*"));
        assert!(
            reaches_ledger("ledger:read") && reaches_ledger("*") && !reaches_ledger("payments:*")
        );
    }
}
