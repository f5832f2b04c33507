//! Events: the envelope every log entry carries, the closed set of event types, and their canonical body.
//!
//! A body is the canonical JSON object
//! `{"actor":…,"data":…,"id":…,"request_id":…,"seq":…,"time":…,"type":…,"v":1}` (`request_id` omitted when
//! absent). `docs/FORMAT.md` is the normative description.

pub mod attributes;
mod kinds;
pub mod personal_fields;

pub use kinds::*;

use crate::canonical::{canonical_value_bytes, CanonicalError};
use crate::time::LedgerTime;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use uuid::Uuid;

/// The version of the body layout; a body with another `v` is rejected.
pub const BODY_VERSION: u64 = 1;
/// The layout of a `key.used` body whose personal fields are committed ([`Committed`]): as version 1, with
/// `data.committed` in place of `data.ip`, `data.gateway_ip` and `data.user_agent`.
pub const COMMITTED_BODY_VERSION: u64 = 2;

/// Who caused an event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// keyledger itself: expiry sweeps, anomaly actions.
    System,
    /// A request authenticated with a keyledger key (admin, service or gateway key).
    Key { key_id: Uuid },
    /// Someone at the CLI on the ledger's machine, by their user name.
    Operator { name: String },
}

impl Actor {
    /// The CLI's operator: the OS user running the command.
    /// The operating-system user running the CLI: `$USER`, `$LOGNAME`, else the account of the process's uid
    /// (containers often set neither variable), else `uid:N`.
    pub fn local_operator() -> Self {
        let name = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(account_name);
        Actor::Operator { name }
    }

    pub fn key_id(&self) -> Option<Uuid> {
        match self {
            Actor::Key { key_id } => Some(*key_id),
            _ => None,
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::System => f.write_str("system"),
            Actor::Key { key_id } => write!(f, "key:{key_id}"),
            Actor::Operator { name } => write!(f, "operator:{name}"),
        }
    }
}

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum EventDecodeError {
    #[error("body is not a valid event: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("unsupported body version {0}")]
    Version(u64),
}

macro_rules! event_types {
    ($($variant:ident($data:ty) = $name:literal),* $(,)?) => {
        /// The type of an event and its data.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum EventData {
            $($variant($data)),*
        }

        impl EventData {
            /// Every event type name, in declaration order.
            pub const TYPE_NAMES: &'static [&'static str] = &[$($name),*];

            /// The `type` string of the body, e.g. `key.created`.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(EventData::$variant(_) => $name),*
                }
            }

            fn data_value(&self) -> Result<Value, serde_json::Error> {
                match self {
                    $(EventData::$variant(data) => serde_json::to_value(data)),*
                }
            }

            fn from_parts(type_name: &str, data: &RawValue) -> Result<Self, EventDecodeError> {
                match type_name {
                    $($name => Ok(EventData::$variant(serde_json::from_str(data.get())?)),)*
                    other => Err(EventDecodeError::UnknownType(other.to_string())),
                }
            }
        }
    };
}

event_types! {
    LedgerInitialized(LedgerInitialized) = "ledger.initialized",
    KeyCreated(KeyCreated) = "key.created",
    KeyUpdated(KeyUpdated) = "key.updated",
    KeyRotated(KeyRotated) = "key.rotated",
    KeyRevoked(KeyStatusChange) = "key.revoked",
    KeySuspended(KeySuspended) = "key.suspended",
    KeyReactivated(KeyStatusChange) = "key.reactivated",
    KeyExpired(KeyStatusChange) = "key.expired",
    KeyUsed(KeyUsed) = "key.used",
    PolicySet(PolicySet) = "policy.set",
    AnomalyDetected(AnomalyDetected) = "anomaly.detected",
    SignerRotated(SignerRotated) = "ledger.signer_rotated",
}

impl EventData {
    /// Every type but `key.used`: the events that change key state, indexed so "as of" can skip the uses.
    pub fn is_lifecycle(&self) -> bool {
        !matches!(self, EventData::KeyUsed(_))
    }

    /// The keys this event concerns, for the by-key index (at most two: a rotation names old and new).
    pub fn key_ids(&self) -> [Option<Uuid>; 2] {
        match self {
            EventData::KeyCreated(d) => [Some(d.key_id), None],
            EventData::KeyUpdated(d) => [Some(d.key_id), None],
            EventData::KeyRotated(d) => [Some(d.key_id), Some(d.new_key_id)],
            EventData::KeyRevoked(d) | EventData::KeyReactivated(d) | EventData::KeyExpired(d) => {
                [Some(d.key_id), None]
            }
            EventData::KeySuspended(d) => [Some(d.key_id), None],
            EventData::KeyUsed(d) => [d.key_id, None],
            EventData::PolicySet(d) => [d.key_id, None],
            EventData::AnomalyDetected(d) => [d.key_id, None],
            EventData::LedgerInitialized(_) | EventData::SignerRotated(_) => [None, None],
        }
    }
}

/// One event: the envelope and its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub seq: u64,
    pub time: LedgerTime,
    pub id: Uuid,
    pub actor: Actor,
    pub request_id: Option<String>,
    pub data: EventData,
}

#[derive(Deserialize)]
struct RawBody<'a> {
    v: u64,
    seq: u64,
    time: LedgerTime,
    id: Uuid,
    actor: Actor,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(rename = "type", borrow)]
    type_name: Cow<'a, str>,
    #[serde(borrow)]
    data: &'a RawValue,
}

impl Event {
    /// The keys this event concerns, for the by-key index: those its data names, and for a `key.used` whose
    /// actor is a key (a gateway's verification) that key too, since the call was also a use of it.
    pub fn key_ids(&self) -> [Option<Uuid>; 2] {
        match (&self.data, self.actor.key_id()) {
            (EventData::KeyUsed(used), Some(actor)) if used.key_id != Some(actor) => {
                [used.key_id, Some(actor)]
            }
            _ => self.data.key_ids(),
        }
    }

    /// The body as a JSON value (the object that is canonicalized for hashing).
    pub fn body_value(&self) -> Result<Value, CanonicalError> {
        let mut body = Map::new();
        let committed = matches!(&self.data, EventData::KeyUsed(used) if used.committed.is_some());
        body.insert(
            "v".into(),
            Value::from(match committed {
                true => COMMITTED_BODY_VERSION,
                false => BODY_VERSION,
            }),
        );
        body.insert("seq".into(), Value::from(self.seq));
        body.insert("time".into(), Value::String(self.time.to_string()));
        body.insert("id".into(), Value::String(self.id.to_string()));
        body.insert("actor".into(), serde_json::to_value(&self.actor)?);
        if let Some(request_id) = &self.request_id {
            body.insert("request_id".into(), Value::String(request_id.clone()));
        }
        body.insert("type".into(), Value::String(self.data.type_name().into()));
        let mut data = self.data.data_value()?;
        if let (true, Value::Object(fields)) = (committed, &mut data) {
            // The values stay beside the event, sealed; the body holds their commitments only.
            for field in crate::personal::commit::FIELDS {
                fields.remove(field);
            }
        }
        body.insert("data".into(), data);
        Ok(Value::Object(body))
    }

    /// The canonical body bytes: what is hashed into the chain.
    pub fn canonical_body(&self) -> Result<Vec<u8>, CanonicalError> {
        canonical_value_bytes(&self.body_value()?)
    }

    /// Decodes a body. It does not check that the bytes are canonical; the chain hash covers the exact bytes.
    pub fn decode(body: &[u8]) -> Result<Self, EventDecodeError> {
        let raw: RawBody = serde_json::from_slice(body)?;
        if raw.v != BODY_VERSION && raw.v != COMMITTED_BODY_VERSION {
            return Err(EventDecodeError::Version(raw.v));
        }
        let data = EventData::from_parts(&raw.type_name, raw.data)?;
        // Version 2 is exactly a `key.used` with commitments and none of the values they stand for.
        let committed = match &data {
            EventData::KeyUsed(used) => used.committed.is_some().then(|| {
                used.ip.is_none() && used.gateway_ip.is_none() && used.user_agent.is_none()
            }),
            _ => None,
        };
        let expected = match committed {
            Some(true) => COMMITTED_BODY_VERSION,
            Some(false) => return Err(EventDecodeError::Version(raw.v)),
            None => BODY_VERSION,
        };
        if raw.v != expected {
            return Err(EventDecodeError::Version(raw.v));
        }
        Ok(Event {
            seq: raw.seq,
            time: raw.time,
            id: raw.id,
            actor: raw.actor,
            request_id: raw.request_id,
            data,
        })
    }

    pub fn type_name(&self) -> &'static str {
        self.data.type_name()
    }
}

/// The account name of the process's uid from the password database, or `uid:N`.
fn account_name() -> String {
    #[cfg(unix)]
    {
        // SAFETY: getuid cannot fail; getpwuid returns null or a pointer to a static record whose pw_name is a
        // NUL-terminated string, copied out at once (the CLI reads it from one thread).
        unsafe {
            let uid = libc::getuid();
            let entry = libc::getpwuid(uid);
            if !entry.is_null() && !(*entry).pw_name.is_null() {
                if let Ok(name) = std::ffi::CStr::from_ptr((*entry).pw_name).to_str() {
                    if !name.is_empty() {
                        return name.to_string();
                    }
                }
            }
            format!("uid:{uid}")
        }
    }
    #[cfg(not(unix))]
    {
        "unknown".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event {
            seq: 7,
            time: LedgerTime::parse("2026-11-24T02:10:00.123456Z").unwrap(),
            id: Uuid::parse_str("019a0000-0000-7000-8000-000000000001").unwrap(),
            actor: Actor::System,
            request_id: Some("req-1".into()),
            data: EventData::KeyRevoked(KeyStatusChange {
                key_id: Uuid::parse_str("019a0000-0000-7000-8000-0000000000aa").unwrap(),
                reason: Some("leaked".into()),
            }),
        }
    }

    #[test]
    fn body_is_canonical_and_round_trips() {
        let event = sample();
        let body = event.canonical_body().unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"actor":{"kind":"system"},"data":{"key_id":"019a0000-0000-7000-8000-0000000000aa","reason":"leaked"},"id":"019a0000-0000-7000-8000-000000000001","request_id":"req-1","seq":7,"time":"2026-11-24T02:10:00.123456Z","type":"key.revoked","v":1}"#
        );
        assert_eq!(Event::decode(&body).unwrap(), event);
    }

    #[test]
    fn unknown_type_and_version_are_refused() {
        let body = sample().canonical_body().unwrap();
        let text = String::from_utf8(body).unwrap();
        let unknown = text.replace("key.revoked", "key.vanished");
        assert!(
            matches!(Event::decode(unknown.as_bytes()), Err(EventDecodeError::UnknownType(t)) if t == "key.vanished")
        );
        let v2 = text.replace("\"v\":1", "\"v\":2");
        assert!(matches!(
            Event::decode(v2.as_bytes()),
            Err(EventDecodeError::Version(2))
        ));
    }
}
