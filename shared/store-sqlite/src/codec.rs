//! Row values ↔ domain values: timestamps, JSON documents, ids, the list cursor, and the mapping
//! of SQLite and JSON failures to [`StoreError`].

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use rnd_domain::ids::OrderId;
use rnd_domain::ports::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Maps SQLite failures to [`StoreError::Backend`], keeping the source.
pub(crate) trait DbResultExt<T> {
    /// The value, or the SQLite error as [`StoreError::Backend`].
    fn db(self) -> Result<T, StoreError>;
}

impl<T> DbResultExt<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(StoreError::backend)
    }
}

/// A timestamp as stored: RFC 3339 with nine fractional digits and `Z`. Fixed width (for years
/// 0–9999), so text order is time order and it round-trips exactly.
pub(crate) fn encode_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Parses a stored timestamp; fails with [`StoreError::Corrupt`] naming `column`.
pub(crate) fn decode_time(column: &str, text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::corrupt_by(format!("{column} is not a timestamp"), e))
}

/// A TTL attribute: epoch seconds of `t` (rounded down, as `DateTime::timestamp`).
pub(crate) fn ttl_of(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

/// Serializes a domain value as a JSON document. Fails (with [`StoreError::Backend`]) only if
/// the value cannot be represented, which the domain types never do.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(StoreError::backend)
}

/// Parses a stored JSON document; fails with [`StoreError::Corrupt`] naming `what` (e.g.
/// `order o-1`), never quoting the document.
pub(crate) fn from_json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt_by(what, e))
}

/// Parses a stored value with its domain parser; fails with [`StoreError::Corrupt`] naming
/// `column`.
pub(crate) fn parse_column<'a, T, E: Into<rnd_domain::ports::BoxError>>(
    column: &str,
    text: &'a str,
    parse: impl FnOnce(&'a str) -> Result<T, E>,
) -> Result<T, StoreError> {
    parse(text).map_err(|e| StoreError::corrupt_by(format!("{column} is invalid"), e))
}

/// Converts a stored non-negative integer (a sequence, a position) to `u64`.
pub(crate) fn to_u64(column: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::corrupt(format!("{column} is negative")))
}

/// Converts a sequence or position to SQLite's integer; fails with [`StoreError::Corrupt`]
/// past `i64::MAX` (no real store gets there).
pub(crate) fn to_i64(column: &str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::corrupt(format!("{column} is out of range")))
}

/// Where a page of orders stopped: the last order's `(created_at, order_id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// `created_at` of the last order returned, as stored.
    pub(crate) created_at: String,
    /// Its id.
    pub(crate) order_id: OrderId,
}

const CURSOR_SEPARATOR: char = '|';

impl Cursor {
    /// The opaque form handed to clients: lowercase hex of `{created_at}|{order_id}`.
    pub(crate) fn encode(&self) -> String {
        let plain = format!("{}{CURSOR_SEPARATOR}{}", self.created_at, self.order_id);
        plain
            .bytes()
            .fold(String::with_capacity(plain.len() * 2), |mut out, b| {
                let _ = write!(out, "{b:02x}");
                out
            })
    }

    /// Parses a cursor made by [`Cursor::encode`]. Fails with [`StoreError::InvalidCursor`] for
    /// anything else.
    pub(crate) fn decode(text: &str) -> Result<Cursor, StoreError> {
        let malformed = || StoreError::InvalidCursor;
        if text.is_empty() || !text.len().is_multiple_of(2) || text.len() > 1024 {
            return Err(malformed());
        }
        let bytes = (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(malformed)?;
        let plain = String::from_utf8(bytes).map_err(|_| malformed())?;
        let (created_at, order_id) = plain.split_once(CURSOR_SEPARATOR).ok_or_else(malformed)?;
        let time = DateTime::parse_from_rfc3339(created_at).map_err(|_| malformed())?;
        let order_id = OrderId::parse(order_id).map_err(|_| malformed())?;
        // Re-encode the time so the comparison with the stored text is exact.
        Ok(Cursor {
            created_at: encode_time(time.with_timezone(&Utc)),
            order_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn stored_timestamps_sort_like_time_and_round_trip() {
        // GIVEN two instants a nanosecond apart and one with a whole second
        let a = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        let b = a + chrono::Duration::nanoseconds(1);
        let c = a + chrono::Duration::seconds(10);
        // WHEN they are encoded
        let (ta, tb, tc) = (encode_time(a), encode_time(b), encode_time(c));
        // THEN text order is time order and decoding gives the same instants
        assert!(ta < tb && tb < tc);
        assert_eq!(ta.len(), tc.len());
        assert_eq!(decode_time("t", &tb).unwrap(), b);
    }

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        // GIVEN a cursor
        let cursor = Cursor {
            created_at: encode_time(Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()),
            order_id: OrderId::parse("o-1").unwrap(),
        };
        // WHEN it is encoded and decoded
        let text = cursor.encode();
        // THEN it is the same cursor, and malformed cursors are refused as such
        assert_eq!(Cursor::decode(&text).unwrap(), cursor);
        let no_time = "323032347c6f2d31"; // "2024|o-1"
        let bad_id = &format!("{text}23"); // an id ending in '#'
        for bad in ["", "abc", "zz", "6f2d31", no_time, bad_id, "ffff", "é0"] {
            match Cursor::decode(bad) {
                Err(StoreError::InvalidCursor) => {}
                other => panic!("{bad}: expected InvalidCursor, got {other:?}"),
            }
        }
    }
}
