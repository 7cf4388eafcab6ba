//! Timestamps written as `chrono` writes them (RFC 3339 in UTC, `Z`, the fraction in 0, 3, 6 or
//! 9 digits), only faster: `chrono`'s `Serialize` goes through several layers of
//! `core::fmt`, and the live item's four timestamps were serialized about ten times per
//! location update (its row, its change's images, its metered size, its events), a tenth of
//! the local stack's instructions. For `#[serde(serialize_with = "…")]` on the hot types;
//! reading stays `chrono`'s.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serializer;

/// Serializes `at` exactly as `chrono` does.
pub fn rfc3339<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buffer = [0_u8; 30];
    match write(at, &mut buffer) {
        Some(text) => serializer.serialize_str(text),
        // Years outside 0–9999 and leap seconds: chrono's own form.
        None => serde::Serialize::serialize(at, serializer),
    }
}

/// [`rfc3339`] for an optional timestamp (`None` as `chrono`'s `Option` does: a unit).
pub fn rfc3339_option<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    /// Borrows the timestamp so `serialize_some` writes it with [`rfc3339`].
    struct Fast<'a>(&'a DateTime<Utc>);
    impl serde::Serialize for Fast<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            rfc3339(self.0, serializer)
        }
    }
    match at {
        Some(at) => serializer.serialize_some(&Fast(at)),
        None => serializer.serialize_none(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]Z` in `buffer`; `None` for what this form
/// does not cover.
fn write<'a>(at: &DateTime<Utc>, buffer: &'a mut [u8; 30]) -> Option<&'a str> {
    let year = u32::try_from(at.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = at.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    buffer[..20].copy_from_slice(b"0000-00-00T00:00:00.");
    put(buffer, 0, year, 4);
    put(buffer, 5, at.month(), 2);
    put(buffer, 8, at.day(), 2);
    put(buffer, 11, at.hour(), 2);
    put(buffer, 14, at.minute(), 2);
    put(buffer, 17, at.second(), 2);
    let end = match nanos {
        0 => 19,
        _ if nanos.is_multiple_of(1_000_000) => put(buffer, 20, nanos / 1_000_000, 3),
        _ if nanos.is_multiple_of(1_000) => put(buffer, 20, nanos / 1_000, 6),
        _ => put(buffer, 20, nanos, 9),
    };
    buffer[end] = b'Z';
    std::str::from_utf8(&buffer[..=end]).ok()
}

/// Writes `value`'s last `width` decimal digits at `at`; returns where they end.
fn put(buffer: &mut [u8; 30], at: usize, mut value: u32, width: usize) -> usize {
    for place in buffer[at..at + width].iter_mut().rev() {
        // `value % 10` is below 10.
        *place = b'0' + (value % 10) as u8;
        value /= 10;
    }
    at + width
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serializes with [`rfc3339`].
    struct Fast(DateTime<Utc>);
    impl serde::Serialize for Fast {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            rfc3339(&self.0, serializer)
        }
    }

    #[test]
    fn timestamps_are_written_exactly_as_chrono_writes_them() {
        // GIVEN instants across the years with every kind of fraction (none, milli-, micro-,
        // nanoseconds), and the edges of the form
        let mut instants = vec![
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            DateTime::from_timestamp(0, 0).unwrap(),
            DateTime::from_timestamp(-62_167_219_200, 0).unwrap(), // 0000-01-01
            DateTime::from_timestamp(253_402_300_799, 999_999_999).unwrap(), // 9999-12-31
            DateTime::from_timestamp(1_483_228_799, 1_500_000_000).unwrap(), // leap second
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let seconds = i64::try_from(next() % 6_000_000_000).unwrap() - 2_000_000_000;
            let nanos = u32::try_from(next() % 1_000_000_000).unwrap();
            let nanos = match next() % 4 {
                0 => 0,
                1 => nanos / 1_000_000 * 1_000_000,
                2 => nanos / 1_000 * 1_000,
                _ => nanos,
            };
            instants.push(DateTime::from_timestamp(seconds, nanos).unwrap());
        }
        for at in instants {
            // WHEN each is serialized by both
            // THEN the text is the same
            assert_eq!(
                serde_json::to_string(&Fast(at)).unwrap(),
                serde_json::to_string(&at).unwrap(),
                "{at:?}"
            );
        }
    }
}
