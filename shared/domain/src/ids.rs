//! Validated identifiers: order, user and connection ids.
//!
//! Parse, don't validate: once a value is an [`OrderId`], it has a sane length and charset, so
//! it is safe to put in a key, a room name or a log line.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// Longest id we accept (UUIDs are 36, ULIDs 26, API Gateway connection ids 16).
pub const MAX_ID_LEN: usize = 128;

fn check(field: &'static str, value: &str, extra: &[char]) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_ID_LEN} characters"),
        ));
    }
    let ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') || extra.contains(&c));
    if !ok {
        return Err(ValidationError::new(
            field,
            "may contain only letters, digits, '-', '_' and '.'",
        ));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $extra:expr, $pattern:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Exactly the ids [`Self::parse`] accepts, as a JSON Schema (ECMA-262) pattern: 1 to
            /// [`MAX_ID_LEN`] characters of its alphabet. The OpenAPI document uses it.
            pub const PATTERN: &'static str = $pattern;

            /// Parses an id; fails with a [`ValidationError`] naming the field when it is empty,
            /// longer than [`MAX_ID_LEN`] or has characters outside the allowed set.
            pub fn parse(value: impl Into<String>) -> Result<Self, ValidationError> {
                let value = value.into();
                check($field, &value, $extra)?;
                Ok(Self(value))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValidationError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        /// Exactly what [`Self::parse`] accepts (the protocol's JSON Schemas, docs/asyncapi.yaml).
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_ID_LEN,
                    "pattern": Self::PATTERN,
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// An order's id.
    OrderId,
    "orderId",
    &[],
    "^[A-Za-z0-9._-]{1,128}$"
);
id_type!(
    /// A user's id (the JWT `sub`).
    UserId,
    "userId",
    &['@', '|', ':'],
    "^[A-Za-z0-9._@|:-]{1,128}$"
);
id_type!(
    /// An API Gateway WebSocket connection id (base64-like, e.g. `L0SM9cOFvHcCIhw=`).
    ConnectionId,
    "connectionId",
    &['=', '+', '/'],
    "^[A-Za-z0-9._=+/-]{1,128}$"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_sane_length_and_charset_parse() {
        assert!(OrderId::parse("0b8f6a1e-4c1d-4b0a-9a55-2f1c7d9e8a01").is_ok());
        assert!(UserId::parse("auth0|user-42").is_ok());
        assert!(ConnectionId::parse("L0SM9cOFvHcCIhw=").is_ok());
    }

    #[test]
    fn empty_overlong_and_strange_ids_are_refused_naming_the_field() {
        let err = OrderId::parse("").unwrap_err();
        assert_eq!(err.field, "orderId");
        assert!(OrderId::parse("a".repeat(MAX_ID_LEN + 1)).is_err());
        assert!(OrderId::parse("ORDER#1").is_err());
        assert!(OrderId::parse("a b").is_err());
        assert!(OrderId::parse("ä").is_err());
        assert!(UserId::parse("x\n").is_err());
    }

    #[test]
    fn ids_deserialize_through_validation() {
        let ok: Result<OrderId, _> = serde_json::from_str("\"o-1\"");
        assert!(ok.is_ok());
        let bad: Result<OrderId, _> = serde_json::from_str("\"o#1\"");
        assert!(bad.is_err());
    }
}
