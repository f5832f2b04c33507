//! Connecting to PostgreSQL: the password from the environment, the URL without it for messages, and the schema
//! migrations applied at open.

use super::backend;
use crate::store::StoreResult;
use postgres::Client;

/// Schema migrations, applied in order; `kl_schema` records the version reached.
pub(super) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE kl_events (seq bigint PRIMARY KEY, time_us bigint NOT NULL, record bytea NOT NULL);
CREATE INDEX kl_events_time ON kl_events (time_us, seq);
CREATE TABLE kl_head (id int PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL, hash bytea NOT NULL, time_us bigint NOT NULL);
CREATE TABLE kl_key_index (key_id uuid NOT NULL, seq bigint NOT NULL, PRIMARY KEY (key_id, seq));
CREATE TABLE kl_time_index (time_us bigint NOT NULL, seq bigint NOT NULL, PRIMARY KEY (time_us, seq));
CREATE TABLE kl_lifecycle_index (seq bigint PRIMARY KEY);
CREATE TABLE kl_attribute_index (digest bytea NOT NULL, seq bigint NOT NULL, PRIMARY KEY (digest, seq));
CREATE TABLE kl_side (key bytea PRIMARY KEY, value bytea NOT NULL);
"#,
    r#"
CREATE TABLE kl_leader (id int PRIMARY KEY CHECK (id = 1), address text NOT NULL, since timestamptz NOT NULL);
"#,
];

/// The schema version a reader (a follower, which never migrates) needs: the writer migrates first.
pub(super) fn check_schema(client: &mut Client) -> StoreResult<()> {
    let exists: bool = client
        .query_one("SELECT to_regclass('kl_schema') IS NOT NULL", &[])
        .map_err(backend)?
        .get(0);
    let version: i32 = if exists {
        client
            .query_opt("SELECT version FROM kl_schema", &[])
            .map_err(backend)?
            .map_or(0, |row| row.get(0))
    } else {
        0
    };
    if version as usize != MIGRATIONS.len() {
        return Err(backend(format!(
            "the schema is at version {version} and this keyledger reads version {}: start the writer \
             (`keyledger serve`, which migrates) with this version of keyledger first",
            MIGRATIONS.len()
        )));
    }
    Ok(())
}

/// The password from $KEYLEDGER_PG_PASSWORD, or from the file $KEYLEDGER_PG_PASSWORD_FILE names (trailing newline
/// removed).
pub(super) fn password_from_env() -> StoreResult<Option<String>> {
    if let Ok(password) = std::env::var("KEYLEDGER_PG_PASSWORD") {
        return Ok(Some(password));
    }
    match std::env::var_os("KEYLEDGER_PG_PASSWORD_FILE") {
        Some(path) => std::fs::read_to_string(&path)
            .map(|text| Some(text.trim_end_matches(['\r', '\n']).to_string()))
            .map_err(|e| backend(format!("reading $KEYLEDGER_PG_PASSWORD_FILE: {e}"))),
        None => Ok(None),
    }
}

/// The URL without its password, for messages.
pub(super) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

pub(super) fn migrate(client: &mut Client) -> StoreResult<()> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS kl_schema (version int NOT NULL)")
        .map_err(backend)?;
    let version: i32 = client
        .query_opt("SELECT version FROM kl_schema", &[])
        .map_err(backend)?
        .map_or(0, |row| row.get(0));
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let mut tx = client.transaction().map_err(backend)?;
        tx.batch_execute(migration).map_err(backend)?;
        tx.execute("DELETE FROM kl_schema", &[]).map_err(backend)?;
        tx.execute("INSERT INTO kl_schema VALUES ($1)", &[&(index as i32 + 1)])
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}
