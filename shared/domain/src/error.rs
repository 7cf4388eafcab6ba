//! The validation error every parser in the domain returns.

use std::fmt;

/// A value that failed to parse. `field` is the wire name of the offending field (camelCase), so
/// the WebSocket `error` event and the problem+json body can name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Wire name of the field, e.g. `latitude`.
    pub field: &'static str,
    /// A message safe to show to the client.
    pub message: String,
}

impl ValidationError {
    /// A validation error for `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.message)
    }
}

impl std::error::Error for ValidationError {}
