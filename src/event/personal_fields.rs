//! A `key.used` event's personal fields committed (body version 2) and revealed again: [`commit`] gives each
//! value a fresh salt, puts the commitments in the event and returns the openings, which are kept beside the event
//! (sealed under their day's key, `crate::personal::vault`); [`reveal`] puts values back from openings, only those
//! that open the commitments the signed body carries.

use super::{Committed, KeyUsed};
use crate::personal::commit::{Commitment, Opening, OpeningError};
use serde::{Deserialize, Serialize};

/// The openings of one event's committed fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Openings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Opening>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_ip: Option<Opening>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<Opening>,
}

fn commit_one(field: &'static str, value: &Option<String>) -> (Option<Opening>, Option<String>) {
    match value {
        Some(value) => {
            let (opening, commitment) = Opening::new(field, value);
            (Some(opening), Some(hex::encode(commitment)))
        }
        None => (None, None),
    }
}

/// Commits `used`'s personal fields (their values stay in memory) and returns what opens the commitments.
pub fn commit(used: &mut KeyUsed) -> Openings {
    let (ip, ip_c) = commit_one("ip", &used.ip);
    let (gateway_ip, gateway_c) = commit_one("gateway_ip", &used.gateway_ip);
    let (user_agent, agent_c) = commit_one("user_agent", &used.user_agent);
    used.committed = Some(Committed {
        ip: ip_c,
        gateway_ip: gateway_c,
        user_agent: agent_c,
    });
    Openings {
        ip,
        gateway_ip,
        user_agent,
    }
}

fn reveal_one(
    field: &'static str,
    committed: &Option<String>,
    opening: &Option<Opening>,
) -> Result<Option<String>, OpeningError> {
    match (committed, opening) {
        (Some(committed), Some(opening)) => {
            let mut commitment: Commitment = [0; 32];
            hex::decode_to_slice(committed, &mut commitment)
                .map_err(|_| OpeningError::Mismatch(field))?;
            opening.check(field, &commitment)?;
            Ok(Some(opening.value.clone()))
        }
        (None, Some(_)) => Err(OpeningError::Mismatch(field)),
        (_, None) => Ok(None),
    }
}

/// Puts back the values `openings` opens; refuses an opening that does not open its commitment (or has none).
/// A field without an opening stays `None` (erased, or never given).
pub fn reveal(used: &mut KeyUsed, openings: &Openings) -> Result<(), OpeningError> {
    let committed = used.committed.clone().unwrap_or_default();
    let ip = reveal_one("ip", &committed.ip, &openings.ip)?;
    let gateway_ip = reveal_one("gateway_ip", &committed.gateway_ip, &openings.gateway_ip)?;
    let user_agent = reveal_one("user_agent", &committed.user_agent, &openings.user_agent)?;
    (used.ip, used.gateway_ip, used.user_agent) = (ip, gateway_ip, user_agent);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, Event, EventData, EventDecodeError, VerifyCode};
    use crate::time::LedgerTime;
    use uuid::Uuid;

    fn used_event() -> Event {
        Event {
            seq: 9,
            time: LedgerTime::from_micros(1_765_000_000_000_000),
            id: Uuid::from_u128(9),
            actor: Actor::System,
            request_id: None,
            data: EventData::KeyUsed(KeyUsed {
                key_id: Some(Uuid::from_u128(1)),
                prefix: Some("kl_live_abc".into()),
                outcome: VerifyCode::Valid,
                ip: Some("203.0.113.7".into()),
                user_agent: Some("curl/8.5".into()),
                scope: Some("read".into()),
                project: None,
                gateway_ip: None,
                overlap: false,
                method: None,
                path: None,
                committed: None,
            }),
        }
    }

    fn used(event: &mut Event) -> &mut KeyUsed {
        match &mut event.data {
            EventData::KeyUsed(used) => used,
            _ => unreachable!("a key.used event"),
        }
    }

    #[test]
    fn a_committed_body_holds_commitments_and_the_openings_give_the_values_back() {
        let plain = used_event();
        let mut event = plain.clone();
        let openings = commit(used(&mut event));
        let body = event.canonical_body().unwrap();
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(
            text.contains(r#""v":2"#) && text.contains(r#""committed":{"ip":""#),
            "{text}"
        );
        assert!(
            !text.contains("203.0.113.7") && !text.contains("curl/8.5"),
            "{text}"
        );
        assert!(
            !text.contains("gateway_ip"),
            "no commitment for an absent field: {text}"
        );

        let mut decoded = Event::decode(&body).unwrap();
        assert_eq!(used(&mut decoded).ip, None);
        // Decoded again, the body is byte for byte the one that was hashed.
        assert_eq!(decoded.canonical_body().unwrap(), body);
        reveal(used(&mut decoded), &openings).unwrap();
        let mut expected = plain;
        used(&mut expected).committed = used(&mut event).committed.clone();
        assert_eq!(decoded, expected);

        // Erased: no openings, no values, the body unchanged.
        let mut erased = Event::decode(&body).unwrap();
        reveal(used(&mut erased), &Openings::default()).unwrap();
        assert_eq!(used(&mut erased).ip, None);
        assert_eq!(erased.canonical_body().unwrap(), body);
    }

    #[test]
    fn an_opening_for_another_address_is_refused() {
        let mut event = used_event();
        let mut openings = commit(used(&mut event));
        let body = event.canonical_body().unwrap();
        if let Some(ip) = &mut openings.ip {
            ip.value = "198.51.100.9".into();
        }
        let mut decoded = Event::decode(&body).unwrap();
        assert_eq!(
            reveal(used(&mut decoded), &openings),
            Err(OpeningError::Mismatch("ip"))
        );
        // An opening for a field the body has no commitment for is refused too.
        let mut event = used_event();
        let mut openings = commit(used(&mut event));
        openings.gateway_ip = openings.ip.clone();
        let mut decoded = Event::decode(&event.canonical_body().unwrap()).unwrap();
        assert_eq!(
            reveal(used(&mut decoded), &openings),
            Err(OpeningError::Mismatch("gateway_ip"))
        );
    }

    #[test]
    fn versions_and_fields_must_agree() {
        let mut event = used_event();
        commit(used(&mut event));
        let body = String::from_utf8(event.canonical_body().unwrap()).unwrap();
        // A version 2 body that also carries a value, and a version 1 body with commitments: both refused.
        let with_value = body.replace(r#""outcome""#, r#""ip":"203.0.113.7","outcome""#);
        assert!(matches!(
            Event::decode(with_value.as_bytes()),
            Err(EventDecodeError::Version(2))
        ));
        let as_v1 = body.replace(r#""v":2"#, r#""v":1"#);
        assert!(matches!(
            Event::decode(as_v1.as_bytes()),
            Err(EventDecodeError::Version(1))
        ));
        // An old (version 1) key.used still decodes as it always did.
        let old = used_event().canonical_body().unwrap();
        assert!(String::from_utf8(old.clone()).unwrap().contains(r#""v":1"#));
        assert_eq!(Event::decode(&old).unwrap(), used_event());
    }
}
