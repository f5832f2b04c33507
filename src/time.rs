//! Ledger time: UTC instants with microsecond precision, their RFC 3339 text form and parsing of user input.

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Microseconds since the Unix epoch, UTC. Serialized as RFC 3339 with exactly six fractional digits and `Z`,
/// e.g. `2026-11-24T02:10:00.000000Z`, so that the text sorts in the same order as the instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LedgerTime(i64);

/// Why a piece of text is not a time.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid time {input:?}: expected RFC 3339 (e.g. 2026-11-24T02:10:00Z), a date (2026-11-24), `now`, or a time \
     relative to now (-1h, -90m, +2d)"
)]
pub struct TimeParseError {
    pub input: String,
}

impl LedgerTime {
    pub const MIN: LedgerTime = LedgerTime(i64::MIN);
    pub const MAX: LedgerTime = LedgerTime(i64::MAX);

    pub fn now() -> Self {
        Self(Utc::now().timestamp_micros())
    }

    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    pub fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    pub fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1_000_000)))
    }

    pub fn plus_micros(self, micros: i64) -> Self {
        Self(self.0.saturating_add(micros))
    }

    /// Whole seconds from `earlier` to `self` (negative when `earlier` is later).
    pub fn secs_since(self, earlier: LedgerTime) -> i64 {
        (self.0 - earlier.0).div_euclid(1_000_000)
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        // from_timestamp_micros only fails outside ±262,000 years; clamp to the epoch rather than panic.
        DateTime::from_timestamp_micros(self.0).unwrap_or_default()
    }

    /// Parses RFC 3339 (any offset, any fraction up to microseconds) or a bare date meaning its midnight UTC.
    pub fn parse(input: &str) -> Result<Self, TimeParseError> {
        let err = || TimeParseError {
            input: input.to_string(),
        };
        let trimmed = input.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(trimmed) {
            return Ok(Self(dt.with_timezone(&Utc).timestamp_micros()));
        }
        let date = NaiveDate::parse_from_str(trimmed, "%Y-%m-%d").map_err(|_| err())?;
        let midnight = date.and_hms_opt(0, 0, 0).ok_or_else(err)?;
        Ok(Self(Utc.from_utc_datetime(&midnight).timestamp_micros()))
    }

    /// [`LedgerTime::parse`], plus what people type: `now`, or a signed duration from `now` (`-1h`, `-15m`,
    /// `+2d`, any unit humantime knows). Only for input; stored events always carry absolute times.
    pub fn parse_at(input: &str, now: LedgerTime) -> Result<Self, TimeParseError> {
        let trimmed = input.trim();
        if trimmed == "now" {
            return Ok(now);
        }
        let signed = trimmed
            .strip_prefix('-')
            .map(|rest| (-1i64, rest))
            .or_else(|| trimmed.strip_prefix('+').map(|rest| (1, rest)));
        match signed {
            Some((sign, rest)) => {
                let duration =
                    humantime::parse_duration(rest.trim()).map_err(|_| TimeParseError {
                        input: input.to_string(),
                    })?;
                let micros = i64::try_from(duration.as_micros()).map_err(|_| TimeParseError {
                    input: input.to_string(),
                })?;
                Ok(now.plus_micros(sign * micros))
            }
            None => Self::parse(trimmed),
        }
    }

    /// Hour of the day (0-23, UTC).
    pub fn hour_of_day(self) -> u32 {
        (self.0.div_euclid(3_600_000_000).rem_euclid(24)) as u32
    }
}

impl fmt::Display for LedgerTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            &self
                .to_datetime()
                .to_rfc3339_opts(SecondsFormat::Micros, true),
        )
    }
}

/// Command-line input: absolute, `now` or relative to the system clock.
impl std::str::FromStr for LedgerTime {
    type Err = TimeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_at(s, Self::now())
    }
}

impl Serialize for LedgerTime {
    /// RFC 3339 text in human-readable formats (event bodies, the API); microseconds in binary ones (the
    /// projection snapshot), which is smaller and needs no parsing.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for LedgerTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() {
            return i64::deserialize(deserializer).map(Self);
        }
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_six_digits_and_round_trips() {
        let t = LedgerTime::parse("2026-11-24T02:10:00.5+01:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-24T01:10:00.500000Z");
        assert_eq!(LedgerTime::parse(&t.to_string()).unwrap(), t);
        assert_eq!(
            LedgerTime::parse("2026-11-24").unwrap().to_string(),
            "2026-11-24T00:00:00.000000Z"
        );
    }

    #[test]
    fn rejects_garbage_and_names_it() {
        let err = LedgerTime::parse("yesterday").unwrap_err();
        assert!(err.to_string().contains("yesterday"));
    }

    #[test]
    fn now_and_relative_times_are_input_only() {
        let now = LedgerTime::parse("2026-11-24T02:10:00Z").unwrap();
        assert_eq!(LedgerTime::parse_at("now", now).unwrap(), now);
        assert_eq!(
            LedgerTime::parse_at("-1h", now).unwrap(),
            now.plus_secs(-3600)
        );
        assert_eq!(
            LedgerTime::parse_at("+90m", now).unwrap(),
            now.plus_secs(5400)
        );
        assert_eq!(
            LedgerTime::parse_at("2026-11-24", now)
                .unwrap()
                .hour_of_day(),
            0
        );
        assert!(LedgerTime::parse_at("-soon", now).is_err());
        assert!(
            LedgerTime::parse("-1h").is_err(),
            "stored times are absolute"
        );
    }

    #[test]
    fn hour_of_day_is_utc() {
        assert_eq!(
            LedgerTime::parse("2026-11-24T23:59:59Z")
                .unwrap()
                .hour_of_day(),
            23
        );
    }
}
