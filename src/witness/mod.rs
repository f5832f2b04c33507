//! `keyledger witness serve`: a witness of its own, the server side of C2SP `tlog-witness`. For each log it is
//! configured with (an origin and the log's note key) it keeps the latest checkpoint it cosigned; a submitted
//! checkpoint is cosigned (cosignature/v1) only when its signature verifies and a consistency proof from that
//! checkpoint shows the log only grew. A fork (same size, another root; or a proof that fails) and a rollback are
//! refused, and the state is persisted before any cosignature leaves, under one lock, so that two submissions
//! can never roll it back. One witness serves many ledgers.

pub mod state;

use crate::audit::checkpoint::Checkpoint;
use crate::audit::cosignature::{cosign, NamedKey, COSIGNATURE_V1};
use crate::audit::merkle::verify_consistency;
use crate::chain::Hash32;
use crate::error::LedgerResult;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::SigningKey;
use state::{Cosigned, StateDir, WitnessState};
use std::sync::{Arc, Mutex};

/// The most consistency proof lines a request may carry (tlog-witness).
const MAX_PROOF_LINES: usize = 63;
/// The content type of a 409's body: the size the witness last cosigned.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// A witness: its name and key, the logs it follows and what it cosigned last for each.
pub struct Witness {
    name: String,
    key: SigningKey,
    logs: Vec<NamedKey>,
    dir: StateDir,
    state: Mutex<WitnessState>,
}

/// A refused submission: the status the protocol names, and a body.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub body: String,
}

fn refuse(status: StatusCode, why: impl Into<String>) -> Refusal {
    Refusal {
        status,
        body: format!("{}\n", why.into()),
    }
}

/// The parts of an `add-checkpoint` body.
struct Submission<'a> {
    old: u64,
    proof: Vec<Hash32>,
    note: &'a str,
}

fn parse(body: &str) -> Result<Submission<'_>, Refusal> {
    let bad = |why: &str| refuse(StatusCode::BAD_REQUEST, why);
    let (head, note) = body
        .split_once("\n\n")
        .ok_or_else(|| bad("no blank line before the checkpoint"))?;
    let mut lines = head.split('\n');
    let old = lines
        .next()
        .and_then(|line| line.strip_prefix("old "))
        .filter(|n| *n == "0" || !n.starts_with('0'))
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| bad("the first line must be `old <size>`"))?;
    let mut proof = Vec::new();
    for line in lines {
        let hash: Hash32 = B64
            .decode(line)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| bad("a consistency proof line is not a base64 hash"))?;
        proof.push(hash);
    }
    if proof.len() > MAX_PROOF_LINES {
        return Err(bad("more than 63 consistency proof lines"));
    }
    Ok(Submission { old, proof, note })
}

impl Witness {
    /// The witness of the directory `dir` (its key from `keyledger witness init`), following `logs`.
    pub fn open(dir: StateDir, logs: Vec<NamedKey>) -> LedgerResult<Self> {
        let key = dir.key()?;
        let name = dir.name()?;
        let state = dir.load()?;
        Ok(Self {
            name,
            key,
            logs,
            dir,
            state: Mutex::new(state),
        })
    }

    /// The witness's verifier key (cosignature/v1), as logs configure it.
    pub fn vkey(&self) -> String {
        NamedKey::new(&self.name, COSIGNATURE_V1, self.key.verifying_key()).to_vkey()
    }

    /// What the witness last cosigned for `origin`.
    pub fn cosigned(&self, origin: &str) -> Option<Cosigned> {
        self.lock().logs.get(origin).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WitnessState> {
        // A panic while holding the lock leaves the state as persisted last: the memory copy is replaced below
        // only after the file was, so it is still the right one.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Handles one `add-checkpoint` body: the cosignature line(s), or why not. `now` is the cosignature's time.
    pub fn add_checkpoint(&self, body: &str, now: u64) -> Result<String, Refusal> {
        let submission = parse(body)?;
        let (checkpoint, note_body, _) = Checkpoint::parse_note(submission.note)
            .map_err(|e| refuse(StatusCode::BAD_REQUEST, e.to_string()))?;
        let keys: Vec<&NamedKey> = self
            .logs
            .iter()
            .filter(|log| log.name == checkpoint.origin)
            .collect();
        if keys.is_empty() {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                format!("this witness does not follow {:?}", checkpoint.origin),
            ));
        }
        if !keys
            .iter()
            .any(|log| Checkpoint::verify_note(submission.note, &log.key).is_ok())
        {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "no signature by a key this witness trusts for the origin",
            ));
        }
        if submission.old > checkpoint.size {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "the old size is larger than the checkpoint's",
            ));
        }
        let mut state = self.lock();
        let latest = state.logs.get(&checkpoint.origin).cloned();
        let (latest_size, latest_root) = match &latest {
            Some(cosigned) => (cosigned.size, Some(cosigned.root.clone())),
            None => (0, None),
        };
        let conflict = || Refusal {
            status: StatusCode::CONFLICT,
            body: format!("{latest_size}\n"),
        };
        if submission.old != latest_size {
            return Err(conflict());
        }
        let root = B64.encode(checkpoint.root);
        if let Some(latest_root) = latest_root.as_deref() {
            let old_root: Hash32 = B64
                .decode(latest_root)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .unwrap_or([0; 32]);
            if latest_size == checkpoint.size && latest_root != root {
                return Err(conflict());
            }
            if !verify_consistency(
                latest_size,
                checkpoint.size,
                &old_root,
                &checkpoint.root,
                &submission.proof,
            ) {
                return Err(refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "the consistency proof does not verify",
                ));
            }
        } else if !submission.proof.is_empty() {
            return Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "a proof from size 0 must be empty",
            ));
        }
        let mut next = state.clone();
        next.logs.insert(
            checkpoint.origin.clone(),
            Cosigned {
                size: checkpoint.size,
                root,
            },
        );
        self.dir.store(&next).map_err(|e| {
            tracing::error!(error = %e, "the witness could not persist its state");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the witness could not persist its state",
            )
        })?;
        *state = next;
        Ok(cosign(&self.key, &self.name, &note_body, now))
    }
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return (StatusCode::BAD_REQUEST, "the body is not UTF-8\n").into_response();
    };
    let text = text.to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let answer = tokio::task::spawn_blocking(move || witness.add_checkpoint(&text, now)).await;
    match answer {
        Ok(Ok(lines)) => (StatusCode::OK, lines).into_response(),
        Ok(Err(refusal)) if refusal.status == StatusCode::CONFLICT => (
            refusal.status,
            [(header::CONTENT_TYPE, SIZE_CONTENT_TYPE)],
            refusal.body,
        )
            .into_response(),
        Ok(Err(refusal)) => (refusal.status, refusal.body).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response(),
    }
}

/// The witness's HTTP interface: `POST /add-checkpoint`.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .with_state(witness)
}
