//! Authentication on a read-only follower: a follower cannot append, yet every use of a key must be recorded, so
//! it asks the leader — as a gateway would, with its own `ledger:verify` key — through `POST /v1/verify`. The
//! leader records the `key.used` event (actor: the follower's key, `gateway_ip`: the follower) and decides with
//! the authoritative state (revocations, rate limits), so a follower's lag never lets a revoked key read.

use super::auth::presented;
use super::error::ApiError;
use crate::keys::VerifyAnswer;
use axum::http::{HeaderMap, StatusCode};
use std::net::SocketAddr;
use std::time::Duration;
use zeroize::Zeroizing;

/// The environment variable holding the follower's own key (`_FILE`: a file holding it).
pub const FOLLOWER_KEY_ENV: &str = "KEYLEDGER_FOLLOWER_KEY";

/// How long a follower waits for the leader's answer before answering 503.
const LEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The follower's client for the leader's `/v1/verify`.
pub struct LeaderAuth {
    client: reqwest::Client,
    credential: Zeroizing<String>,
}

impl LeaderAuth {
    /// The follower's key from `$KEYLEDGER_FOLLOWER_KEY` or the file `$KEYLEDGER_FOLLOWER_KEY_FILE` names.
    pub fn from_env() -> Result<Self, String> {
        let credential = match std::env::var(FOLLOWER_KEY_ENV) {
            Ok(key) => key,
            Err(_) => match std::env::var_os(format!("{FOLLOWER_KEY_ENV}_FILE")) {
                Some(path) => std::fs::read_to_string(&path)
                    .map_err(|e| format!("reading ${FOLLOWER_KEY_ENV}_FILE: {e}"))?,
                None => {
                    return Err(format!(
                        "a follower records every use of a key through the leader: set ${FOLLOWER_KEY_ENV} (or \
                         ${FOLLOWER_KEY_ENV}_FILE) to a keyledger key with the ledger:verify scope"
                    ))
                }
            },
        };
        let credential = Zeroizing::new(credential.trim().to_string());
        if credential.is_empty() {
            return Err(format!("${FOLLOWER_KEY_ENV} is empty"));
        }
        let client = reqwest::Client::builder()
            .timeout(LEADER_TIMEOUT)
            .build()
            .map_err(|e| format!("building the HTTP client for the leader: {e}"))?;
        Ok(Self { client, credential })
    }

    /// Asks the leader at `leader` to verify the key `headers` present for `scope`, recording the use.
    pub async fn verify(
        &self,
        leader: Option<String>,
        headers: &HeaderMap,
        peer: SocketAddr,
        scope: &str,
        request_id: &str,
    ) -> Result<VerifyAnswer, ApiError> {
        let unavailable = |message: String| {
            let mut error = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "leader_unavailable",
                message,
            );
            error.leader = leader.clone();
            error
        };
        let Some(base) = leader.as_deref() else {
            return Err(unavailable(
                "no leader is advertised, and a follower records the use of a key through the leader".into(),
            ));
        };
        let secret = Zeroizing::new(presented(headers).unwrap_or_default());
        let user_agent = super::auth::user_agent(headers);
        let body = serde_json::json!({
            "secret": secret.as_str(),
            "ip": peer.ip().to_string(),
            "scope": scope,
            "user_agent": user_agent,
            "request_id": request_id,
        });
        let response = self
            .client
            .post(format!("{}/v1/verify", base.trim_end_matches('/')))
            .bearer_auth(self.credential.as_str())
            .header("x-request-id", request_id)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                unavailable(format!(
                    "the leader at {base} did not answer: {}",
                    e.without_url()
                ))
            })?;
        let status = response.status();
        if !status.is_success() {
            let detail = response.text().await.unwrap_or_default();
            tracing::warn!(%status, %detail, "the leader refused the follower's verification");
            return Err(unavailable(format!(
                "the leader at {base} refused this follower's own key ({status}): check ${FOLLOWER_KEY_ENV}"
            )));
        }
        response
            .json::<VerifyAnswer>()
            .await
            .map_err(|e| unavailable(format!("the leader's answer was unreadable: {e}")))
    }
}
