//! Devices: the phones (and browsers) a user receives push notifications on, each known by its
//! FCM registration token.
//!
//! Rules every store keeps:
//! - a token belongs to one user: registering it again by the same user refreshes `lastSeenAt`
//!   and keeps the device id; registered by another user, it moves to them (one phone, a new
//!   account) and the previous owner gets no more pushes on it;
//! - a user has at most [`MAX_DEVICES_PER_USER`] devices: registering one more drops the least
//!   recently seen;
//! - a device is forgotten [`DEVICE_TTL_DAYS`] days after it was last seen (FCM treats tokens
//!   unused that long as stale).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::ids::UserId;

/// Most devices one user keeps.
pub const MAX_DEVICES_PER_USER: usize = 10;
/// Days after its last registration a device is forgotten.
pub const DEVICE_TTL_DAYS: i64 = 270;
/// Longest registration token, bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Longest `appVersion` and `locale`.
pub const MAX_LABEL_CHARS: usize = 64;

/// An FCM registration token: 1 to [`MAX_TOKEN_BYTES`] characters of FCM's token alphabet
/// (ASCII letters, digits, `-`, `_`, `:` and `.`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceToken(String);

impl DeviceToken {
    /// Exactly the tokens [`DeviceToken::parse`] accepts, as a JSON Schema (ECMA-262) pattern.
    pub const PATTERN: &'static str = "^[A-Za-z0-9_:.-]{1,4096}$";

    /// Parses a token. Fails when it is empty, too long, or has a character outside the
    /// alphabet.
    pub fn parse(token: impl Into<String>) -> Result<DeviceToken, ValidationError> {
        let token = token.into();
        if token.is_empty() {
            return Err(ValidationError::new("token", "must not be empty"));
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ValidationError::new(
                "token",
                format!("must be at most {MAX_TOKEN_BYTES} bytes"),
            ));
        }
        if !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
        {
            return Err(ValidationError::new(
                "token",
                "must be an FCM registration token (letters, digits, '-', '_', ':', '.')",
            ));
        }
        Ok(DeviceToken(token))
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// A token is a credential of sorts: never print it whole.
impl fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head: String = self.0.chars().take(6).collect();
        write!(f, "DeviceToken({head}…, {} bytes)", self.0.len())
    }
}

impl TryFrom<String> for DeviceToken {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        DeviceToken::parse(value)
    }
}

impl From<DeviceToken> for String {
    fn from(token: DeviceToken) -> String {
        token.0
    }
}

/// What a device runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// Android (FCM).
    Android,
    /// iOS (FCM through APNs).
    Ios,
    /// A browser (FCM web push).
    Web,
}

impl Platform {
    /// Every platform.
    pub const ALL: [Platform; 3] = [Platform::Android, Platform::Ios, Platform::Web];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Android => "android",
            Platform::Ios => "ios",
            Platform::Web => "web",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| ValidationError::new("platform", "must be android, ios or web"))
    }
}

/// A device id: opaque, chosen by the store at registration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceId(String);

impl DeviceId {
    /// Exactly the ids [`DeviceId::parse`] accepts, as a JSON Schema (ECMA-262) pattern.
    pub const PATTERN: &'static str = "^[A-Za-z0-9-]{1,64}$";

    /// A device id as stored or given in a path. Fails when empty or longer than 64 characters
    /// of letters, digits and `-`.
    pub fn parse(id: impl Into<String>) -> Result<DeviceId, ValidationError> {
        let id = id.into();
        if id.is_empty()
            || id.len() > 64
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(ValidationError::new("deviceId", "is not a device id"));
        }
        Ok(DeviceId(id))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A registration, as a user asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRegistration {
    /// The id the device gets if it is new to this user (the caller picks a fresh one; a
    /// device the user registered before keeps its id).
    pub new_id: DeviceId,
    /// Whose device.
    pub user_id: UserId,
    /// Its token.
    pub token: DeviceToken,
    /// What it runs.
    pub platform: Platform,
    /// The app's version, if told.
    pub app_version: Option<String>,
    /// The device's locale (e.g. `es-MX`), if told.
    pub locale: Option<String>,
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// Its id.
    pub device_id: DeviceId,
    /// Whose it is.
    pub user_id: UserId,
    /// Its token.
    pub token: DeviceToken,
    /// What it runs.
    pub platform: Platform,
    /// The app's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// The device's locale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// When it was first registered (by this user).
    pub registered_at: DateTime<Utc>,
    /// When it was last registered.
    pub last_seen_at: DateTime<Utc>,
}

impl Device {
    /// When a device last seen at `last_seen_at` is forgotten: [`DEVICE_TTL_DAYS`] later, in
    /// whole seconds (a DynamoDB TTL holds epoch seconds).
    pub fn expiry_for(last_seen_at: DateTime<Utc>) -> DateTime<Utc> {
        let at = last_seen_at + Duration::days(DEVICE_TTL_DAYS);
        DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// True while the device is remembered at `now`.
    pub fn is_live_at(&self, now: DateTime<Utc>) -> bool {
        Device::expiry_for(self.last_seen_at) > now
    }
}

/// What a registration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The device, as stored now.
    pub device: Device,
    /// True when the device is new to this user (201); false when the same user registered
    /// the same token again (200).
    pub created: bool,
    /// Devices dropped to stay within [`MAX_DEVICES_PER_USER`] (least recently seen first).
    pub dropped: Vec<DeviceId>,
}

/// Checks an optional label (`appVersion`, `locale`): trimmed, at most [`MAX_LABEL_CHARS`]
/// printable characters; empty means absent. As a pattern:
/// [`optional_text_pattern`](crate::profile::optional_text_pattern)`(`[`MAX_LABEL_CHARS`]`)`.
pub fn parse_label(
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<String>, ValidationError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > MAX_LABEL_CHARS || value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_LABEL_CHARS} printable characters"),
        ));
    }
    Ok(Some(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_of_fcms_alphabet_parse_and_anything_else_is_refused() {
        let real = "dXa1b2C3d4E5:APA91bH-_x.y";
        assert_eq!(DeviceToken::parse(real).unwrap().as_str(), real);
        assert!(DeviceToken::parse("").is_err());
        assert!(DeviceToken::parse("has space").is_err());
        assert!(DeviceToken::parse("ümlaut").is_err());
        assert!(DeviceToken::parse("a".repeat(MAX_TOKEN_BYTES)).is_ok());
        assert!(DeviceToken::parse("a".repeat(MAX_TOKEN_BYTES + 1)).is_err());
    }

    #[test]
    fn a_token_is_never_printed_whole() {
        let token = DeviceToken::parse("abcdefghijklmnopqrstuvwxyz").unwrap();
        let shown = format!("{token:?}");
        assert!(!shown.contains("ghijkl"), "{shown}");
    }

    #[test]
    fn platforms_read_back_from_their_names_only() {
        for p in Platform::ALL {
            assert_eq!(p.as_str().parse::<Platform>().unwrap(), p);
        }
        assert!("windows".parse::<Platform>().is_err());
    }

    #[test]
    fn a_device_is_forgotten_270_days_after_it_was_last_seen() {
        let seen = DateTime::parse_from_rfc3339("2026-01-01T00:00:00.5Z")
            .unwrap()
            .to_utc();
        let expiry = Device::expiry_for(seen);
        assert_eq!((expiry - seen).num_days(), DEVICE_TTL_DAYS - 1);
        assert_eq!(expiry.timestamp(), (seen + Duration::days(270)).timestamp());
    }
}
