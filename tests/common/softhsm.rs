//! A SoftHSM2 token of a test's own (its directory and configuration in a temporary directory), for the PKCS#11
//! signer's tests; `None`, with the skip reported, where softhsm2 is not installed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const TOKEN_LABEL: &str = "keyledger-test";
pub const PIN: &str = "4321";

pub struct Token {
    _tmp: tempfile::TempDir,
    pub conf: PathBuf,
    pub tokens: PathBuf,
}

/// A fresh token labelled [`TOKEN_LABEL`] with user PIN [`PIN`].
pub fn token() -> Option<Token> {
    let installed = Path::new(MODULE).exists()
        && Command::new("softhsm2-util")
            .arg("--version")
            .output()
            .is_ok();
    if !installed {
        super::skip::skip(
            "softhsm2",
            "SoftHSM2 is not installed (apt-get install softhsm2)",
        );
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tokens = tmp.path().join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = tmp.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            tokens.display()
        ),
    )
    .unwrap();
    let token = Token {
        _tmp: tmp,
        conf,
        tokens,
    };
    token.init();
    Some(token)
}

impl Token {
    /// Initialises a token labelled [`TOKEN_LABEL`] in this token directory.
    pub fn init(&self) {
        let init = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", TOKEN_LABEL])
            .args(["--pin", PIN, "--so-pin", "87654321"])
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .unwrap();
        assert!(init.status.success(), "{init:?}");
    }
}
