//! The API's error shape: `{"error":{"code":"…","message":"…"}}` with a stable code and the HTTP status it maps to.

use crate::error::LedgerError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An error answered as JSON.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Seconds until a retry can succeed, sent as `Retry-After` (on 429).
    pub retry_after_secs: Option<u64>,
    /// Where writes go instead, on a read-only follower's 503 (`"leader"` in the body).
    pub leader: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
            retry_after_secs: None,
            leader: None,
        }
    }

    /// A 500 whose detail goes to the server's log only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error answered as 500");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error; the server log has the details",
        )
    }

    pub fn retry_after(mut self, secs: Option<u64>) -> Self {
        self.retry_after_secs = secs;
        self
    }

    pub fn bad_request(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{field}: {message}"),
        )
    }
}

impl From<LedgerError> for ApiError {
    fn from(error: LedgerError) -> Self {
        let status = match &error {
            LedgerError::Invalid { .. } => StatusCode::BAD_REQUEST,
            LedgerError::NotFound { .. } => StatusCode::NOT_FOUND,
            LedgerError::Conflict { .. } => StatusCode::CONFLICT,
            LedgerError::Forbidden { .. } => StatusCode::FORBIDDEN,
            LedgerError::Archived { .. } => StatusCode::GONE,
            LedgerError::WriteFailed(_)
            | LedgerError::Sign(_)
            | LedgerError::WriterStopped
            | LedgerError::ReadOnly { .. }
            | LedgerError::Store(crate::store::StoreError::ReadOnly) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Internal detail (paths, storage messages) stays in the server's log.
            tracing::error!(error = %error, "internal error answered as 500");
            "internal error; the server log has the details".to_string()
        } else {
            error.to_string()
        };
        let leader = match &error {
            LedgerError::ReadOnly { leader } => leader.clone(),
            _ => None,
        };
        Self {
            leader,
            ..Self::new(status, error.code(), message)
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        LedgerError::from(error).into()
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "body_too_large"
        } else {
            "invalid_body"
        };
        Self::new(
            if status.is_client_error() {
                status
            } else {
                StatusCode::BAD_REQUEST
            },
            code,
            rejection.body_text(),
        )
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            rejection.body_text(),
        )
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            rejection.body_text(),
        )
    }
}

/// Marks a response whose error says the stored log cannot be trusted; a middleware then stops the ledger.
#[derive(Clone, Debug)]
pub struct IntegrityFailure(pub String);

/// Anything in `text` shaped like a keyledger secret (`kl_…` with a long body) replaced by a marker, so that no
/// error answer echoes a secret sent in the wrong field (e.g. `{"ip": "kl_production_…"}`).
pub fn redact_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("kl_") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let run = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if run >= 20 {
            out.push_str("kl_…(redacted)");
        } else {
            out.push_str(&tail[..run]);
        }
        rest = &tail[run..];
    }
    out.push_str(rest);
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let failure = (self.code == "log_corrupt").then(|| IntegrityFailure(self.message.clone()));
        let message = redact_secrets(&self.message);
        let mut body = json!({ "error": { "code": self.code, "message": message } });
        if let Some(leader) = &self.leader {
            body["error"]["leader"] = json!(leader);
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(failure) = failure {
            response.extensions_mut().insert(failure);
        }
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// An optional RFC 3339 query parameter; a bad one is a 400 naming `field`.
pub fn time_param(
    field: &str,
    text: &Option<String>,
) -> ApiResult<Option<crate::time::LedgerTime>> {
    text.as_deref()
        .map(|t| {
            crate::time::LedgerTime::parse_at(t, crate::time::LedgerTime::now())
                .map_err(|e| ApiError::bad_request(field, e))
        })
        .transpose()
}

/// An optional UUID query parameter; a bad one is a 400 naming `field`.
pub fn uuid_param(field: &str, text: &Option<String>) -> ApiResult<Option<uuid::Uuid>> {
    text.as_deref()
        .map(|t| {
            uuid::Uuid::parse_str(t)
                .map_err(|_| ApiError::bad_request(field, format!("{t:?} is not a UUID")))
        })
        .transpose()
}
