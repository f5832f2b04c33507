//! Incident filters (event type, client IP, actor, request id), shared by `GET /v1/events` and
//! `keyledger events`: checking them, choosing the index that narrows a query most, and matching an event.
//! Every filter is still applied to each event read; the index only decides which events are read.

use crate::error::{LedgerError, LedgerResult};
use crate::event::attributes::{attribute_digest, Attribute};
use crate::event::{Event, EventData};
use crate::store::{LogStore, StoreIter, StoreResult};
use uuid::Uuid;

/// The filters beside the time window and the key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IncidentFilter {
    pub event_type: Option<String>,
    pub ip: Option<String>,
    /// `system`, `key:UUID` (or a bare UUID), or `operator:NAME`.
    pub actor: Option<String>,
    pub request_id: Option<String>,
}

impl IncidentFilter {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Refuses filters that could never match, naming them.
    pub fn check(&self) -> LedgerResult<()> {
        if let Some(ip) = &self.ip {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(LedgerError::invalid("ip", "not an IP address"));
            }
        }
        if let Some(actor) = &self.actor {
            let ok = actor == "system"
                || actor
                    .strip_prefix("key:")
                    .is_some_and(|id| Uuid::parse_str(id).is_ok())
                || Uuid::parse_str(actor).is_ok()
                || actor
                    .strip_prefix("operator:")
                    .is_some_and(|n| !n.is_empty());
            if !ok {
                return Err(LedgerError::invalid(
                    "actor",
                    "one of system, key:UUID, a key UUID, or operator:NAME",
                ));
            }
        }
        if let Some(t) = &self.event_type {
            if !EventData::TYPE_NAMES.contains(&t.as_str()) {
                return Err(LedgerError::invalid(
                    "type",
                    format!(
                        "unknown event type {t:?}; one of {}",
                        EventData::TYPE_NAMES.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether `event` passes every filter.
    pub fn matches(&self, event: &Event) -> bool {
        let used = match &event.data {
            EventData::KeyUsed(used) => Some(used),
            _ => None,
        };
        self.event_type
            .as_deref()
            .is_none_or(|t| event.type_name() == t)
            && self
                .ip
                .as_deref()
                .is_none_or(|ip| used.and_then(|u| u.ip.as_deref()) == Some(ip))
            && self.actor.as_deref().is_none_or(|a| {
                event.actor.to_string() == a
                    || event.actor.key_id().is_some_and(|k| k.to_string() == a)
            })
            && self
                .request_id
                .as_deref()
                .is_none_or(|r| event.request_id.as_deref() == Some(r))
    }

    /// The seqs in `from..to` worth reading for this filter (and `key`), ascending, from the index that narrows
    /// most: the key index, the attribute index (request id, IP), an actor key's entries in the key and
    /// lifecycle indexes, the lifecycle index (a type other than `key.used`), or else the whole window.
    pub fn candidates<'a>(
        &self,
        store: &'a dyn LogStore,
        key: Option<Uuid>,
        from: u64,
        to: u64,
    ) -> LedgerResult<StoreIter<'a, u64>> {
        if let Some(key) = key {
            return Ok(store.key_seqs(key, from, to));
        }
        if crate::store::has_attribute_index(store)? {
            if let Some(request_id) = &self.request_id {
                let digest = attribute_digest(Attribute::RequestId, request_id);
                return Ok(store.attribute_seqs(digest, from, to));
            }
            if let Some(ip) = &self.ip {
                return Ok(store.attribute_seqs(attribute_digest(Attribute::Ip, ip), from, to));
            }
        }
        let actor_key = self
            .actor
            .as_deref()
            .and_then(|a| Uuid::parse_str(a.strip_prefix("key:").unwrap_or(a)).ok());
        if let Some(actor) = actor_key {
            return Ok(Box::new(merged(
                store.key_seqs(actor, from, to),
                store.lifecycle_seqs(from, to),
            )));
        }
        Ok(match self.event_type.as_deref() {
            Some(t) if t != "key.used" => store.lifecycle_seqs(from, to),
            _ => Box::new((from..to).map(Ok)),
        })
    }
}

/// The union of two ascending seq streams, ascending, each seq once.
fn merged<'a>(
    a: StoreIter<'a, u64>,
    b: StoreIter<'a, u64>,
) -> impl Iterator<Item = StoreResult<u64>> + Send + 'a {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || {
        let next_a = match a.peek() {
            Some(Ok(seq)) => Some(*seq),
            Some(Err(_)) => return a.next(),
            None => None,
        };
        let next_b = match b.peek() {
            Some(Ok(seq)) => Some(*seq),
            Some(Err(_)) => return b.next(),
            None => None,
        };
        match (next_a, next_b) {
            (Some(x), Some(y)) if x == y => {
                b.next();
                a.next()
            }
            (Some(x), Some(y)) if x < y => a.next(),
            (Some(_), Some(_)) | (None, Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, None) => None,
        }
    })
}
