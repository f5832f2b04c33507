//! Opaque paging cursors: base64url of a JSON document that carries everything needed to continue a query.

use super::error::{ApiError, ApiResult};
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The cursor text for `state`.
pub fn encode<T: Serialize>(state: &T) -> String {
    let json = serde_json::to_vec(state).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// The state a cursor carries; anything else is a 400 naming `cursor`.
pub fn decode<T: DeserializeOwned>(text: &str) -> ApiResult<T> {
    let bad = || ApiError::bad_request("cursor", "not a cursor returned by this endpoint");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

/// The refusal when a cursor arrives with filters other than those of the query it continues.
pub fn mismatch() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "cursor_mismatch",
        "this cursor continues a query with other filters; send the cursor alone (or with the same filters)",
    )
}
