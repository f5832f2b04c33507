//! `keyledger witness`: a witness for other ledgers (C2SP tlog-witness). `init` makes its directory and key and
//! prints its verifier key, which the ledgers it witnesses configure; `serve` answers `POST /add-checkpoint`.

use super::{CliError, CliResult, EXIT_FAILED};
use crate::audit::cosignature::{NamedKey, NOTE_ED25519};
use crate::witness::state::StateDir;
use crate::witness::{router, Witness};
use clap::{Args, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Subcommand, Debug)]
pub enum WitnessCommand {
    /// Create a witness: its directory, key (mode 0600) and name; prints the verifier key ledgers configure.
    Init(WitnessInitArgs),
    /// Cosign the checkpoints of the ledgers named by --log (POST /add-checkpoint), until Ctrl-C or SIGTERM.
    Serve(WitnessServeArgs),
}

#[derive(Args, Debug)]
pub struct WitnessInitArgs {
    /// The witness's directory (its key and what it cosigned last for each ledger).
    #[arg(long)]
    pub state: PathBuf,
    /// The witness's name: a schema-less URL such as witness.example.com/w1.
    #[arg(long)]
    pub name: String,
}

#[derive(Args, Debug)]
pub struct WitnessServeArgs {
    /// The witness's directory, made by `keyledger witness init`.
    #[arg(long)]
    pub state: PathBuf,
    /// A ledger to witness, as its checkpoint verifier key (`keyledger audit checkpoint` prints it:
    /// origin+keyid+base64 key). Repeat for each ledger.
    #[arg(long = "log", required = true)]
    pub logs: Vec<String>,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub addr: SocketAddr,
}

pub fn run(command: &WitnessCommand) -> CliResult {
    match command {
        WitnessCommand::Init(args) => {
            let dir = StateDir::new(&args.state);
            dir.init(&args.name)?;
            let witness = Witness::open(dir, Vec::new())?;
            println!("witness {} created in {}", args.name, args.state.display());
            println!("its verifier key (give it to the ledgers it witnesses):");
            println!("  {}", witness.vkey());
            Ok(())
        }
        WitnessCommand::Serve(args) => serve(args),
    }
}

fn serve(args: &WitnessServeArgs) -> CliResult {
    let logs = args
        .logs
        .iter()
        .map(|vkey| {
            NamedKey::parse_vkey(vkey, NOTE_ED25519)
                .map_err(|e| CliError::new(2, format!("--log {vkey}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let witness = Arc::new(Witness::open(StateDir::new(&args.state), logs)?);
    let failed = |e: std::io::Error| CliError::new(EXIT_FAILED, format!("witness serve: {e}"));
    let runtime = tokio::runtime::Runtime::new().map_err(failed)?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(failed)?;
        let address = listener.local_addr().map_err(failed)?;
        println!(
            "keyledger witness serving on http://{address} for {} ledger(s); its key: {}",
            args.logs.len(),
            witness.vkey()
        );
        axum::serve(listener, router(witness))
            .with_graceful_shutdown(super::serve::stop_signal())
            .await
            .map_err(failed)
    })
}
