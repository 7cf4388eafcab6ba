//! The validation error every parser in the domain returns, and [`Chain`], the one renderer of
//! an error with its sources.

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

/// Renders an error and every source below it, `a: b: c`: the one way every binary and log line
/// shows an error chain (`Display` of an error shows only its own message).
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::StoreError;

    #[test]
    fn a_corrupt_item_keeps_its_parsers_error_as_its_source_and_the_chain_shows_both() {
        // GIVEN stored data a parser refused
        let parser = "not a number".parse::<u32>().unwrap_err();
        let error = StoreError::corrupt_by("order o-1 seq", parser.clone());
        // THEN the error says what is invalid, its source is the parser's error
        assert_eq!(error.to_string(), "stored data is invalid: order o-1 seq");
        let source = std::error::Error::source(&error).expect("a source");
        assert_eq!(source.to_string(), parser.to_string());
        // AND the chain renders both, in order
        assert_eq!(
            Chain(&error).to_string(),
            format!("stored data is invalid: order o-1 seq: {parser}")
        );
    }

    #[test]
    fn an_error_without_sources_renders_as_itself() {
        let error = StoreError::corrupt("counter c-1 is out of range");
        assert!(std::error::Error::source(&error).is_none());
        assert_eq!(
            Chain(&error).to_string(),
            "stored data is invalid: counter c-1 is out of range"
        );
    }
}
