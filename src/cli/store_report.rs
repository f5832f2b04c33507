//! How the store commands (store_cmd.rs, store_migrate.rs) name the first problem that verifying a copied or
//! migrated log found.

/// The first problem verification found, as the store commands name it.
pub(super) fn first_problem(report: &crate::audit::VerifyReport) -> Option<String> {
    report
        .first_problem()
        .map(|p| format!("seq {}: {:?}: {}", p.seq, p.kind, p.detail))
}
