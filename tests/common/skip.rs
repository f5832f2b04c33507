//! A test that needs a program this machine lacks (PostgreSQL, nginx, Chromium, python3…) says why it does not run
//! and returns; where CI asks for every dependency (`KEYLEDGER_REQUIRE_ALL=1`, set by `.ci/run`), it fails instead,
//! so that a green run proves every such test ran.
#![allow(dead_code)]

/// Whether every dependency-needing test must run (`KEYLEDGER_REQUIRE_ALL=1`).
pub fn all_required() -> bool {
    std::env::var("KEYLEDGER_REQUIRE_ALL").is_ok_and(|value| value == "1")
}

/// Reports the skip of a test that cannot run for want of `dependency`; panics where every dependency is required.
pub fn skip(dependency: &str, reason: &str) {
    skip_unless(all_required(), dependency, reason);
}

/// [`skip`] with the requirement given (tested without touching the process's environment).
pub fn skip_unless(required: bool, dependency: &str, reason: &str) {
    assert!(
        !required,
        "{dependency} is required here (KEYLEDGER_REQUIRE_ALL=1) but {reason}"
    );
    eprintln!("SKIPPED ({dependency}): {reason}");
}
