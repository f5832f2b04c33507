//! The demo's alerts: a webhook receiver on 127.0.0.1 stands in for the security team's endpoint, a sink for it
//! goes into keyledger.toml before the ledger opens, and the last step prints what arrived about the leaked key,
//! each request's signature checked.

use super::receiver::Receiver;
use super::{io, step};
use crate::alerts::outbox::Outbox;
use crate::ledger::Ledger;
use crate::LedgerError;
use rand_core::{OsRng, RngCore};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long the step waits for the leaked key's alerts.
const WAIT: Duration = Duration::from_secs(10);

/// The receiver and the alert kinds the demo's sink asks for.
pub(super) struct DemoAlerts {
    receiver: Receiver,
    /// keyledger.toml as it was, restored when the tour ends: the receiver is gone then, and a `serve` on the
    /// demo's directory should not retry a dead sink.
    config_path: std::path::PathBuf,
    config_before: String,
    secret_file: std::path::PathBuf,
}

/// Starts the receiver and names it as a sink in `root`'s keyledger.toml (before the ledger opens).
pub(super) fn configure(
    runtime: &tokio::runtime::Runtime,
    root: &Path,
) -> Result<DemoAlerts, LedgerError> {
    let mut raw = [0u8; 24];
    OsRng.fill_bytes(&mut raw);
    let secret = format!("whsec_{}", hex::encode(raw));
    let receiver = runtime
        .block_on(Receiver::start(secret.as_bytes(), 0, Duration::ZERO))
        .map_err(|e| LedgerError::io("starting the demo's webhook receiver", e))?;
    std::fs::create_dir_all(root)
        .map_err(|e| LedgerError::io(format!("creating {}", root.display()), e))?;
    let secret_file = root.join("demo-webhook.secret");
    crate::datadir::write_private_file(&secret_file, secret.as_bytes())?;
    let config = root.join("keyledger.toml");
    let existing = std::fs::read_to_string(&config).unwrap_or_default();
    let sink = format!(
        "\n[[alerts.sinks]]\nname = \"security-team\"\nurl = \"{}\"\nsecret_file = \"{}\"\n\
         kinds = [\"anomaly.detected\", \"key.suspended\", \"key.revoked\"]\n",
        receiver.url,
        secret_file.display()
    );
    std::fs::write(&config, format!("{existing}{sink}"))
        .map_err(|e| LedgerError::io(format!("writing {}", config.display()), e))?;
    Ok(DemoAlerts {
        receiver,
        config_path: config,
        config_before: existing,
        secret_file,
    })
}

impl DemoAlerts {
    /// Starts delivering (on `runtime`) once the ledger is open.
    pub(super) fn start(
        &self,
        runtime: &tokio::runtime::Runtime,
        ledger: &Arc<Ledger>,
        origin: String,
    ) -> Result<Outbox, LedgerError> {
        let _entered = runtime.enter();
        let config = crate::config::AnalysisConfig::load(&self.config_path)?.alerts;
        Outbox::start(ledger.clone(), &config, origin).map_err(LedgerError::Config)
    }

    /// Step `number`: prints the alerts about `leaked` that reached the receiver; returns their kinds.
    pub(super) fn show(
        &self,
        number: usize,
        leaked: Uuid,
        out: &mut dyn Write,
    ) -> Result<Vec<String>, LedgerError> {
        let started = step(
            out,
            number,
            &format!(
                "Alerts: what the security team's webhook ({}) received about ci-deploy",
                self.receiver.url
            ),
        )
        .map_err(io)?;
        let about_leaked = |receiver: &Receiver| -> Vec<(bool, serde_json::Value)> {
            receiver
                .received()
                .into_iter()
                .filter_map(|r| {
                    Some((
                        r.signed,
                        serde_json::from_slice::<serde_json::Value>(&r.body).ok()?,
                    ))
                })
                .filter(|(_, alert)| alert["key"]["key_id"] == leaked.to_string())
                .collect()
        };
        let waited = Instant::now();
        while about_leaked(&self.receiver)
            .iter()
            .all(|(_, a)| a["kind"] != "key.revoked")
            && waited.elapsed() < WAIT
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let alerts = about_leaked(&self.receiver);
        for (signed, alert) in &alerts {
            writeln!(
                out,
                "   {} [{}] {} — signature {}",
                alert["kind"].as_str().unwrap_or(""),
                alert["severity"].as_str().unwrap_or(""),
                alert["summary"].as_str().unwrap_or(""),
                if *signed {
                    "verified"
                } else {
                    "DID NOT VERIFY"
                }
            )
            .map_err(io)?;
        }
        std::fs::write(&self.config_path, &self.config_before)
            .map_err(|e| LedgerError::io(format!("writing {}", self.config_path.display()), e))?;
        let _ = std::fs::remove_file(&self.secret_file);
        if alerts.is_empty() {
            writeln!(out, "   nothing arrived within {WAIT:?}").map_err(io)?;
        }
        writeln!(
            out,
            "   (each delivered at least once, HMAC-signed; `keyledger alerts deliveries` lists them) ({:.0?})",
            started.elapsed()
        )
        .map_err(io)?;
        Ok(alerts
            .iter()
            .filter(|(signed, _)| *signed)
            .filter_map(|(_, a)| a["kind"].as_str().map(str::to_string))
            .collect())
    }
}
