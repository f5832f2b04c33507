//! Client mode: with `--server URL` (or `KEYLEDGER_ADDR`) and `KEYLEDGER_TOKEN`, commands talk to a running
//! `keyledger serve` through its HTTP API instead of opening the data directory, as Vault's CLI does with
//! `VAULT_ADDR`/`VAULT_TOKEN`. Answers are turned back into the types the local commands print, so output and
//! exit codes are the same either way.

use super::{Cli, CliError, EXIT_FAILED};
use crate::time::LedgerTime;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

// Beside this file (src/cli/remote_tls.rs), as a child of client mode.
#[path = "remote_tls.rs"]
mod tls;

/// Where the token comes from; never a flag, so that it stays out of shell history and `ps`.
pub const TOKEN_ENV: &str = "KEYLEDGER_TOKEN";

/// A connection to a running server.
pub struct Remote {
    /// The server's URL, without a trailing slash.
    pub(super) base: String,
    token: String,
    client: Client,
}

impl Remote {
    /// The server named by `--server`/`KEYLEDGER_ADDR`, if any.
    pub fn from_cli(cli: &Cli) -> Result<Option<Remote>, CliError> {
        let Some(server) = &cli.server else {
            return Ok(None);
        };
        let base = server.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CliError::new(
                2,
                format!("--server {base:?}: give a URL such as http://127.0.0.1:8080"),
            ));
        }
        let token = std::env::var(TOKEN_ENV)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                CliError::new(
                    2,
                    format!("--server needs a key to authenticate with: set ${TOKEN_ENV} (a key with the scopes the command needs)"),
                )
            })?;
        let mut builder = Client::builder()
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("keyledger-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &cli.ca_cert {
            let pem = std::fs::read(path).map_err(|e| {
                CliError::new(EXIT_FAILED, format!("--ca-cert {}: {e}", path.display()))
            })?;
            let tls = tls::client_config(&pem).map_err(|e| {
                CliError::new(EXIT_FAILED, format!("--ca-cert {}: {e}", path.display()))
            })?;
            builder = builder.use_preconfigured_tls(tls);
        }
        let client = builder
            .build()
            .map_err(|e| CliError::new(EXIT_FAILED, format!("HTTP client: {e}")))?;
        Ok(Some(Remote {
            base,
            token: token.trim().to_string(),
            client,
        }))
    }

    /// An authenticated request, for the caller to send (`events --follow` reads the answer as a stream and
    /// retries failures that [`Remote::get`] would report).
    pub(super) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// Sends a request; a refusal becomes the server's own message with the CLI's exit code for it.
    fn send(&self, request: RequestBuilder) -> Result<Response, CliError> {
        let response = request.send().map_err(|e| {
            CliError::new(
                EXIT_FAILED,
                format!(
                    "cannot reach the server at {}: {}",
                    self.base,
                    root_cause(&e)
                ),
            )
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(refusal(response))
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, CliError> {
        decode(self.send(self.request(Method::GET, path).query(query))?)
    }

    /// A GET whose body is passed through as text (CSV, checkpoint notes, exports).
    pub fn get_text(&self, path: &str, query: &[(&str, String)]) -> Result<Response, CliError> {
        self.send(self.request(Method::GET, path).query(query))
    }

    pub fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, CliError> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        decode(self.send(request)?)
    }

    /// Every page of a cursor-paged listing: `items` of each page, following `next_cursor` to the end.
    pub fn pages(
        &self,
        path: &str,
        query: &[(&str, String)],
        items: &str,
        mut each: impl FnMut(Value) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        let mut page: Value = self.get(path, query)?;
        loop {
            if let Some(Value::Array(list)) = page.get_mut(items).map(Value::take) {
                for item in list {
                    each(item)?;
                }
            }
            match page.get("next_cursor").and_then(Value::as_str) {
                Some(cursor) => {
                    page = self.get(path, &[("cursor", cursor.to_string())])?;
                }
                None => return Ok(()),
            }
        }
    }
}

fn decode<T: DeserializeOwned>(response: Response) -> Result<T, CliError> {
    response.json().map_err(|e| {
        CliError::new(
            EXIT_FAILED,
            format!("unexpected answer from the server: {e}"),
        )
    })
}

pub(super) fn refusal(response: Response) -> CliError {
    let status = response.status();
    let body: Value = response.json().unwrap_or(Value::Null);
    let message = body["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| status.to_string());
    let message = match status {
        StatusCode::UNAUTHORIZED => format!("the server refused ${TOKEN_ENV}: {message}"),
        StatusCode::FORBIDDEN => format!("${TOKEN_ENV} may not do this: {message}"),
        _ => message,
    };
    CliError::new(EXIT_FAILED, message)
}

/// The innermost error, which names what actually failed (connection refused, certificate unknown…).
pub(super) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The `from`/`to`/`key_id` query parameters of a window.
pub fn window_query(
    from: Option<LedgerTime>,
    to: Option<LedgerTime>,
    key: Option<Uuid>,
) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(from) = from {
        query.push(("from", from.to_string()));
    }
    if let Some(to) = to {
        query.push(("to", to.to_string()));
    }
    if let Some(key) = key {
        query.push(("key_id", key.to_string()));
    }
    query
}

/// For commands that need the data directory itself.
pub fn local_only(cli: &Cli, command: &str) -> Result<(), CliError> {
    if cli.server.is_some() {
        return Err(CliError::new(
            2,
            format!(
                "`{command}` works on a data directory, not through --server/KEYLEDGER_ADDR: unset KEYLEDGER_ADDR \
                 (or drop --server) and run it on the ledger's host, with serve stopped if it uses that directory"
            ),
        ));
    }
    Ok(())
}
