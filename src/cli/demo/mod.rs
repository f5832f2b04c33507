//! `keyledger demo`: the newcomer's guided tour on a fresh ledger — keys across environments, a simulated day of
//! traffic with a leaked key and a probing burst, a rotation with stragglers, finding and revoking the leaked key,
//! an incident time-window question, a full verification and, when nginx is installed, keys checked by nginx
//! through forward-auth, and the alerts a local webhook received — every step printed with its timing. Steps 2-3
//! live in `issue`, 5-6 in `findings`, 7 in `leak`, 8-10 in `investigate`, 11 in `gateway`, 12 in `alerts`.

mod alerts;
mod findings;
mod fork;
mod gateway;
mod investigate;
mod issue;
mod leak;
pub mod nginx;
pub mod receiver;
mod traffic;
mod witnessing;

pub use gateway::GatewayRun;

use super::{Cli, CliError, CliResult, EXIT_FAILED};
use crate::datadir::DataDir;
use crate::event::{Actor, VerifyCode};
use crate::keys::{CreateKey, Requester};
use crate::time::LedgerTime;
use crate::LedgerError;
use clap::Args;
use issue::key;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use traffic::{network, scattered, Stream};
use uuid::Uuid;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Uses to simulate (the day of traffic).
    #[arg(long, default_value_t = 200_000)]
    pub uses: usize,
    /// Keep the demo's log in PostgreSQL (a URL to an empty database) instead of the embedded store.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
}

/// What the demo did, for tests to hold it to its claims.
#[derive(Debug, Default)]
pub struct DemoSummary {
    pub data_dir: PathBuf,
    pub events: u64,
    pub uses: usize,
    pub leaked_key: Option<Uuid>,
    pub leaked_key_revoked: bool,
    /// The outcome of presenting the leaked secret after its revocation.
    pub leaked_after_revoke: Option<VerifyCode>,
    pub leaked_distinct_ips: usize,
    pub stragglers: usize,
    pub probing_attempts: usize,
    pub chain_verified: bool,
    pub anomaly_rules: Vec<String>,
    pub leaked_auto_suspended: bool,
    pub export_verified: bool,
    /// The forward-auth step's statuses, when nginx was there to run it.
    pub gateway: Option<GatewayRun>,
    /// The kinds of the signed alerts about the leaked key that reached the demo's webhook receiver.
    pub leaked_alerts: Vec<String>,
    /// The read-only key the tour issues for signing in to the web console.
    pub console_key: Option<String>,
    /// The size of the newest checkpoint the tour's witness cosigned.
    pub witnessed_size: Option<u64>,
    /// What the witness and the monitor said of a rewritten copy of the ledger (same key, another history).
    pub fork: Option<fork::ForkRun>,
}

pub fn run(cli: &Cli, args: &DemoArgs) -> CliResult {
    let root: PathBuf = match &cli.data {
        Some(path) => path.clone(),
        None => tempfile::Builder::new()
            .prefix("keyledger-demo-")
            .tempdir()
            .map_err(|e| {
                CliError::new(EXIT_FAILED, format!("creating a temporary directory: {e}"))
            })?
            .keep(),
    };
    if let Some(url) = &args.store {
        DataDir::new(&root).set_store(url)?;
    }
    let mut out = std::io::stdout().lock();
    run_demo(&root, args.uses, &mut out)?;
    Ok(())
}

/// Closes the ledger while the runtime still serves the tour's witness, so that the closing checkpoint is cosigned
/// too; the outbox's aborted tasks let go of their handles on the runtime shortly after it is dropped.
fn close_while_serving(mut ledger: Arc<crate::ledger::Ledger>) {
    let waited = Instant::now();
    loop {
        match Arc::try_unwrap(ledger) {
            Ok(mut open) => return open.close(),
            // Closed when the last handle drops, with the runtime.
            Err(_) if waited.elapsed() > std::time::Duration::from_secs(2) => return,
            Err(shared) => {
                ledger = shared;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

fn step(out: &mut dyn Write, number: usize, title: &str) -> std::io::Result<Instant> {
    writeln!(out, "\n{number}. {title}")?;
    Ok(Instant::now())
}

fn io(e: std::io::Error) -> LedgerError {
    LedgerError::io("writing demo output", e)
}

/// Runs the tour in `root` (which must not hold a ledger yet), writing what a person reads to `out`.
pub fn run_demo(root: &Path, uses: usize, out: &mut dyn Write) -> Result<DemoSummary, LedgerError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| LedgerError::io("starting the runtime", e))?;
    let dir = DataDir::new(root);
    let mut summary = DemoSummary {
        data_dir: root.to_path_buf(),
        ..Default::default()
    };
    writeln!(
        out,
        "keyledger demo — an embedded ledger in {}",
        root.display()
    )
    .map_err(io)?;

    let started = step(
        out,
        1,
        "Initialize the ledger (signing key, public key, first event)",
    )
    .map_err(io)?;
    // An existing ledger's keyledger.toml is left alone: init refuses that directory below.
    let (demo_alerts, witness) = match dir.is_initialized() {
        true => (None, None),
        false => (
            Some(alerts::configure(&runtime, root)?),
            Some(witnessing::plan(&runtime, root)?),
        ),
    };
    let (ledger, identity) = dir.init(None)?;
    let mut witness = witness.ok_or_else(|| LedgerError::Config("the ledger exists".into()))?;
    witness.serve(&runtime, &dir)?;
    let (ledger, fork_base) = fork::keep_base(ledger, &dir)?;
    let ledger = Arc::new(ledger);
    let demo_alerts = demo_alerts.ok_or_else(|| LedgerError::Config("the ledger exists".into()))?;
    let outbox = demo_alerts.start(&runtime, &ledger, identity.origin.clone())?;
    writeln!(
        out,
        "   ledger {} — signer {} — public key in {} ({:.0?})",
        identity.ledger_id,
        identity.signer_id,
        dir.public_key_path().display(),
        started.elapsed()
    )
    .map_err(io)?;

    let admin = Requester::new(
        Actor::Operator {
            name: "demo".into(),
        },
        None,
    );
    let issue::Issued {
        keys: issued,
        rotated,
        billing_old,
    } = issue::run(out, &ledger, &admin)?;

    let secret = |name: &str| issued[name].secret.expose().to_string();
    let share = |part: usize| uses * part / 100;
    let streams = vec![
        Stream::new(
            "billing-api (new key)",
            rotated.secret.expose(),
            network("10.20.1", 4),
            "payments:write",
            "billing/2.14",
            share(35),
        ),
        Stream::new(
            "billing-api (old key, stragglers)",
            &billing_old,
            network("10.20.9", 2),
            "payments:read",
            "billing/2.13",
            share(3),
        ),
        Stream::new(
            "search-indexer",
            &secret("search-indexer"),
            network("10.30.2", 3),
            "catalog:read",
            "indexer/5.1",
            share(30),
        ),
        Stream::new(
            "partner-acme",
            &secret("partner-acme"),
            network("198.18.4", 2),
            "orders:read",
            "acme-sync/1.0",
            share(15),
        ),
        Stream::new(
            "analytics-etl",
            &secret("analytics-etl"),
            network("10.40.0", 2),
            "events:read",
            "etl/0.9",
            share(10),
        ),
        Stream::new(
            "scanner (unknown keys)",
            crate::secret::Secret::generate("production").expose(),
            network("192.0.2", 1),
            "payments:read",
            "zgrab/0.x",
            share(1).max(100),
        ),
        Stream::new(
            "ci-deploy (leaked)",
            &secret("ci-deploy"),
            scattered(37),
            "deploy:prod",
            "curl/8.5.0",
            share(6),
        ),
        Stream::new(
            "legacy-reporting (revoked, probing)",
            &secret("legacy-reporting"),
            scattered(5),
            "reports:read",
            "python-requests/2.31",
            share(1).max(50),
        ),
    ];
    let simulated: usize = streams.iter().map(|s| s.count).sum();
    let started = step(out, 4, &format!("Simulate a day of traffic: {simulated} verifications from 64 concurrent callers, each recorded durably")).map_err(io)?;
    let window_start = LedgerTime::now();
    let tally = runtime.block_on(traffic::run(ledger.clone(), streams, 64))?;
    let window_end = LedgerTime::now();
    let elapsed = started.elapsed();
    for (label, codes) in &tally {
        let codes: Vec<String> = codes
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        writeln!(out, "   {label:<36} {}", codes.join(", ")).map_err(io)?;
    }
    writeln!(
        out,
        "   {simulated} uses in {elapsed:.2?} = {:.0} durable verifications/s",
        simulated as f64 / elapsed.as_secs_f64()
    )
    .map_err(io)?;
    summary.uses = simulated;
    summary.probing_attempts = tally
        .get("legacy-reporting (revoked, probing)")
        .map_or(0, |codes| codes.values().sum());

    findings::run(
        out,
        &ledger,
        issued["ci-deploy"].key.key_id,
        issued["billing-api"].key.key_id,
        &mut summary,
    )?;

    let leaked_secret = secret("ci-deploy");
    let leaked_id = leak::run(out, &ledger, &admin, &leaked_secret, &mut summary)?;

    let export_path = investigate::run(
        out,
        &ledger,
        &dir,
        &identity.public_key,
        (window_start, window_end),
        leaked_id,
        &mut summary,
    )?;

    summary.gateway = gateway::run(
        11,
        &runtime,
        &ledger,
        (dir.anchor_public_key()?, identity.origin.clone()),
        &leaked_secret,
        out,
    )?;
    summary.leaked_alerts = demo_alerts.show(12, leaked_id, out)?;
    // A read-only key (ledger:read and ledger:audit) for the web console, shown once like every new key; the
    // monitor of the last step reads the ledger's tiles with it.
    let console_config = key(
        "console-reader",
        "keyledger",
        "security-team",
        &["ledger:read", "ledger:audit"],
        &[],
        None,
    );
    let console = ledger.submit_blocking(CreateKey::new(admin.clone(), &console_config)?)?;
    summary.console_key = Some(console.secret.expose().to_string());
    summary.witnessed_size = witness.show_cosigned(13, &ledger, out)?;
    summary.fork = fork::run(
        &runtime,
        &ledger,
        &dir,
        fork_base,
        &witness,
        console.secret.expose(),
        out,
    )?;

    drop(outbox);
    close_while_serving(ledger);
    drop(runtime);
    let data = root.display();
    writeln!(out, "\nTry next (against this data directory):").map_err(io)?;
    writeln!(out, "   keyledger --data {data} key list").map_err(io)?;
    writeln!(out, "   keyledger --data {data} history {leaked_id}").map_err(io)?;
    writeln!(out, "   keyledger --data {data} events --from {window_start} --to {window_end} --key {leaked_id} | head").map_err(io)?;
    writeln!(
        out,
        "   keyledger --data {data} key list --as-of {window_start}"
    )
    .map_err(io)?;
    writeln!(out, "   keyledger --data {data} anomalies").map_err(io)?;
    writeln!(out, "   keyledger --data {data} report overlap").map_err(io)?;
    writeln!(
        out,
        "   keyledger audit verify-export {} --public-key {}",
        export_path.display(),
        dir.public_key_path().display()
    )
    .map_err(io)?;
    writeln!(out, "   keyledger --data {data} audit verify").map_err(io)?;
    writeln!(
        out,
        "   keyledger --data {data} serve     # the HTTP API on 127.0.0.1:8080 (docs/API.md)"
    )
    .map_err(io)?;
    if let Some(console_key) = &summary.console_key {
        writeln!(out, "\nThe console: run the serve command above, open http://127.0.0.1:8080 and sign in with this").map_err(io)?;
        writeln!(
            out,
            "read-only key (ledger:read, ledger:audit; shown once): {console_key}"
        )
        .map_err(io)?;
    }
    Ok(summary)
}
