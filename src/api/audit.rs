//! `/v1/audit`: verification of the stored chain, the current signed checkpoint, and streamed exports in the
//! same format as `keyledger audit export`.

use super::auth::{Audit, Authenticated};
use super::error::{time_param, ApiError, ApiResult};
use super::AppState;
use crate::audit::export::{write_export, ExportRequest};
use crate::audit::{verify_log, VerifyRange};
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub async fn verify(
    State(state): State<AppState>,
    _: Authenticated<Audit>,
) -> ApiResult<Json<Value>> {
    let ledger = state.ledger.clone();
    let anchor = state.anchor;
    let durable = ledger.durable_seq();
    let report = tokio::task::spawn_blocking(move || {
        verify_log(
            ledger.store().as_ref(),
            anchor,
            VerifyRange {
                from: 1,
                to: Some(durable),
            },
            None,
        )
    })
    .await
    .map_err(|e| ApiError::from(crate::LedgerError::Config(e.to_string())))??;
    Ok(Json(json!({ "ok": report.is_ok(), "report": report })))
}

pub async fn checkpoint(
    State(state): State<AppState>,
    _: Authenticated<Audit>,
) -> ApiResult<Json<Value>> {
    let (checkpoint, note) = state.ledger.checkpoint().await?;
    let public = crate::chain::parse_public_key_hex(state.ledger.signer_public_hex())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let witnessed = match super::tlog::witnessed_checkpoint(&state).await? {
        Some((witnessed, note)) => json!({
            "size": witnessed.size,
            "root": hex::encode(witnessed.root),
            "cosigners": state.witnessing.check_note(&note).unwrap_or_default(),
            "note": note,
        }),
        None => Value::Null,
    };
    Ok(Json(json!({
        "origin": state.origin,
        "size": checkpoint.size,
        "root": hex::encode(checkpoint.root),
        "verifier_key": crate::audit::checkpoint::verifier_key(&state.origin, &public),
        "note": note,
        "witnessed": witnessed,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    from: Option<String>,
    to: Option<String>,
    consistency_from: Option<u64>,
    /// Export against the newest checkpoint the witness quorum cosigned (its note carries the cosignatures).
    #[serde(default)]
    witnessed: bool,
}

/// Sends what the export writer writes down a channel, so the response streams in constant memory.
struct ChannelWriter(mpsc::Sender<Result<Bytes, std::io::Error>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub async fn export(
    State(state): State<AppState>,
    _: Authenticated<Audit>,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = query?;
    let request = ExportRequest {
        from: time_param("from", &q.from)?,
        to: time_param("to", &q.to)?,
        consistency_from: q.consistency_from,
        first_seq: None,
    };
    let (checkpoint, note) = if q.witnessed {
        if !state.witnessing.is_set() {
            // The request is well-formed; this ledger's configuration cannot answer it.
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "no_witnesses",
                "witnessed: no witness is configured ([[witnesses]] in keyledger.toml), so no checkpoint is witnessed",
            ));
        }
        super::tlog::witnessed_checkpoint(&state)
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "not_witnessed",
                    "no checkpoint has been cosigned by the witness quorum yet",
                )
            })?
    } else {
        state.ledger.checkpoint().await?
    };
    if let Some(old) = request
        .consistency_from
        .filter(|old| *old == 0 || *old > checkpoint.size)
    {
        return Err(ApiError::bad_request(
            "consistency_from",
            format!("{old} is not 1..={}", checkpoint.size),
        ));
    }
    let (sender, mut receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let ledger = state.ledger.clone();
    let anchor_hex = hex::encode(state.anchor.as_bytes());
    tokio::task::spawn_blocking(move || {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter(sender));
        if let Err(error) = write_export(
            ledger.store().as_ref(),
            &request,
            &checkpoint,
            &note,
            &anchor_hex,
            &mut out,
            None,
        ) {
            tracing::warn!(%error, "export stream ended early");
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}
