//! The lines of an export file, read strictly: one JSON object per LF-terminated line, no CR, no duplicate
//! member names at any depth (two parsers must never see two different bodies), only the members its kind
//! allows (docs/FORMAT.md §10); and the record lines' hash, link and signature fields.

use crate::canonical::canonical_value_bytes;
use crate::chain::{chain_hash, Hash32};
use crate::event::Event;
use crate::time::LedgerTime;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Where and why an export failed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[error("line {line}{}: {problem}", seq.map(|s| format!(" (seq {s})")).unwrap_or_default())]
pub struct ExportFailure {
    pub line: u64,
    pub seq: Option<u64>,
    pub problem: String,
}

pub(super) type Check<T> = Result<T, ExportFailure>;

pub(super) fn fail<T>(line: u64, seq: Option<u64>, problem: impl Into<String>) -> Check<T> {
    Err(ExportFailure {
        line,
        seq,
        problem: problem.into(),
    })
}

/// Members each kind of line may have.
fn allowed(kind: &str) -> Option<&'static [&'static str]> {
    const RECORD: &[&str] = &[
        "kind",
        "seq",
        "prev_hash",
        "hash",
        "signature",
        "signer_id",
        "body",
    ];
    const PROVED: &[&str] = &[
        "kind",
        "seq",
        "prev_hash",
        "hash",
        "signature",
        "signer_id",
        "body",
        "inclusion",
    ];
    Some(match kind {
        "header" => &[
            "kind",
            "format",
            "version",
            "origin",
            "anchor_public_key",
            "requested_from",
            "requested_to",
            "from_seq",
            "to_seq",
            "tree_size",
        ],
        "event" => RECORD,
        "endorsement" | "boundary" => PROVED,
        "checkpoint" => &["kind", "note"],
        "inclusion" => &["kind", "seq", "proof"],
        "consistency" => &["kind", "old_size", "proof"],
        "end" => &["kind", "events"],
        _ => return None,
    })
}

/// Parses one line (without its LF) into a JSON object, refusing CR, duplicate names and unknown members.
pub(super) fn parse_line(text: &str, line: u64) -> Check<Value> {
    if text.ends_with('\r') {
        return fail(
            line,
            None,
            "line ends with CR: export lines end with LF alone",
        );
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = StrictValue::deserialize_from(&mut deserializer)
        .and_then(|v| deserializer.end().map(|_| v))
        .or_else(|e| fail(line, None, format!("not a JSON object: {e}")))?;
    let Value::Object(members) = &value else {
        return fail(line, None, "not a JSON object");
    };
    let kind = members
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(names) = allowed(kind) else {
        return fail(line, None, format!("unknown kind {kind:?}"));
    };
    if let Some(unknown) = members.keys().find(|name| !names.contains(&name.as_str())) {
        return fail(
            line,
            None,
            format!("unknown member {unknown:?} in a {kind} line"),
        );
    }
    Ok(value)
}

/// A JSON value whose objects may not repeat a member name.
struct StrictValue;

impl StrictValue {
    fn deserialize_from<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

struct StrictSeed;

impl<'de> de::DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        StrictValue::deserialize_from(deserializer)
    }
}

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("not a finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let value = map.next_value_seed(StrictSeed)?;
            if members.insert(name.clone(), value).is_some() {
                return Err(de::Error::custom(format!("duplicate member {name:?}")));
            }
        }
        Ok(Value::Object(members))
    }
}

pub(super) fn hash_field(value: &Value, field: &str, line: u64) -> Check<Hash32> {
    hex_of(&value[field]).map_or_else(
        || {
            fail(
                line,
                value["seq"].as_u64(),
                format!("{field} is not 64 hex digits"),
            )
        },
        Ok,
    )
}

fn hex_of(value: &Value) -> Option<Hash32> {
    value
        .as_str()
        .and_then(|t| hex::decode(t).ok())
        .and_then(|b| b.try_into().ok())
}

pub(super) fn proof_field(value: &Value, field: &str, line: u64) -> Check<Vec<Hash32>> {
    let items = value[field]
        .as_array()
        .map_or_else(|| fail(line, None, format!("{field} is missing")), Ok)?;
    items
        .iter()
        .map(|item| {
            hex_of(item).map_or_else(
                || {
                    fail(
                        line,
                        None,
                        format!("{field} holds a hash that is not 64 hex digits"),
                    )
                },
                Ok,
            )
        })
        .collect()
}

/// A checked record line: its event, hash and signature (the signature is checked by the caller).
pub(super) struct RecordLine {
    pub seq: u64,
    pub event: Event,
    pub hash: Hash32,
    pub signature: [u8; 64],
    pub signer_id: String,
}

/// The first checks of [`check_record`] given the previous event's hash: seq present, prev_hash well formed and
/// equal to `want`.
pub(super) fn check_link(value: &Value, line: u64, want: &Hash32) -> Check<()> {
    let seq = value["seq"]
        .as_u64()
        .map_or_else(|| fail(line, None, "seq is missing"), Ok)?;
    if hash_field(value, "prev_hash", line)? != *want {
        return fail(line, Some(seq), "prev_hash is not the previous event's hash (an event was removed, inserted or reordered)");
    }
    Ok(())
}

pub(super) fn check_record(
    value: &Value,
    line: u64,
    expected_prev: Option<&Hash32>,
) -> Check<RecordLine> {
    if let Some(want) = expected_prev {
        check_link(value, line, want)?;
    }
    let seq = value["seq"]
        .as_u64()
        .map_or_else(|| fail(line, None, "seq is missing"), Ok)?;
    let prev = hash_field(value, "prev_hash", line)?;
    let hash = hash_field(value, "hash", line)?;
    let body = canonical_value_bytes(&value["body"])
        .or_else(|e| fail(line, Some(seq), format!("body: {e}")))?;
    if chain_hash(&prev, &body) != hash {
        return fail(line, Some(seq), "hash does not match SHA-256(domain ‖ prev_hash ‖ canonical body): the body was changed");
    }
    let event = Event::decode(&body).or_else(|e| fail(line, Some(seq), e.to_string()))?;
    if event.seq != seq {
        return fail(line, Some(seq), format!("the body says seq {}", event.seq));
    }
    let signature: [u8; 64] = value["signature"]
        .as_str()
        .and_then(|t| hex::decode(t).ok())
        .and_then(|b| b.try_into().ok())
        .map_or_else(
            || fail(line, Some(seq), "signature is not 128 hex digits"),
            Ok,
        )?;
    let signer_id = value["signer_id"].as_str().unwrap_or_default().to_string();
    Ok(RecordLine {
        seq,
        event,
        hash,
        signature,
        signer_id,
    })
}

/// The header's claims, checked against each other and against the trusted key.
pub(super) struct Header {
    pub from_seq: u64,
    pub to_seq: u64,
    pub size: u64,
    pub origin: String,
    pub requested_from: Option<LedgerTime>,
    pub requested_to: Option<LedgerTime>,
}

fn optional_time(header: &Value, field: &str) -> Check<Option<LedgerTime>> {
    match &header[field] {
        Value::Null => Ok(None),
        Value::String(text) => LedgerTime::parse(text)
            .map(Some)
            .or_else(|e| fail(1, None, format!("{field}: {e}"))),
        _ => fail(
            1,
            None,
            format!("{field} must be null or a ledger time string"),
        ),
    }
}

pub(super) fn parse_header(header: &Value, trusted_key_hex: &str) -> Check<Header> {
    if header["kind"] != "header"
        || header["format"] != "keyledger-export"
        || header["version"] != 1
    {
        return fail(1, None, "not a keyledger export (version 1) header");
    }
    if header["anchor_public_key"].as_str() != Some(trusted_key_hex) {
        return fail(1, None, format!("the header names anchor key {}, not the trusted key {trusted_key_hex}: this export is of another ledger or was altered", header["anchor_public_key"]));
    }
    let number = |field: &str| {
        header[field].as_u64().map_or_else(
            || fail(1, None, format!("{field} is not a non-negative integer")),
            Ok,
        )
    };
    let (from_seq, to_seq, size) = (number("from_seq")?, number("to_seq")?, number("tree_size")?);
    if from_seq == 0 || from_seq > size + 1 || to_seq > size || to_seq + 1 < from_seq {
        return fail(
            1,
            None,
            format!("the window {from_seq}..={to_seq} does not fit a tree of {size} events"),
        );
    }
    let origin = header["origin"]
        .as_str()
        .map_or_else(|| fail(1, None, "origin is missing"), Ok)?
        .to_string();
    let requested_from = optional_time(header, "requested_from")?;
    let requested_to = optional_time(header, "requested_to")?;
    if requested_from.is_none() && from_seq != 1 {
        return fail(1, None, format!("requested_from is null (from the first event) but the window starts at seq {from_seq}: events are missing at the start"));
    }
    if requested_to.is_none() && to_seq != size {
        return fail(1, None, format!("requested_to is null (up to the checkpoint) but the window ends at seq {to_seq} of {size}: events are missing at the end"));
    }
    Ok(Header {
        from_seq,
        to_seq,
        size,
        origin,
        requested_from,
        requested_to,
    })
}
