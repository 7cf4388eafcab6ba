//! Profiles: what a user tells the platform about themselves — name and phone, and for chefs the
//! business name and pickup point. Placing an order copies the customer's and the chef's
//! profile into it, assigning a driver copies the driver's, so the tracking payload never needs
//! a second read.
//!
//! Parse, don't validate: [`Profile::parse`] turns raw fields into a [`Profile`] or a
//! [`ValidationError`] naming the offending field; [`Profile::chef_info`] says whether a chef can
//! receive orders.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::geo::GeoPoint;
use crate::identity::Role;
use crate::ids::UserId;
use crate::order::{ChefInfo, DriverInfo};

/// Longest display name, in characters.
pub const MAX_NAME_LEN: usize = 100;
/// Longest business name, in characters.
pub const MAX_BUSINESS_NAME_LEN: usize = 100;
/// Longest address, in characters.
pub const MAX_ADDRESS_LEN: usize = 200;
/// Longest phone number as written, in characters.
pub const MAX_PHONE_LEN: usize = 32;
/// Fewest digits a phone number may have.
pub const MIN_PHONE_DIGITS: usize = 7;
/// Most digits a phone number may have (E.164).
pub const MAX_PHONE_DIGITS: usize = 15;

/// A user's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Whose.
    pub user_id: UserId,
    /// Their role when they last saved it.
    pub role: Role,
    /// Display name, 1–100 characters.
    pub name: String,
    /// Phone number (digits with `+`, spaces, `-`, `.`, parentheses; 7–15 digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Chefs: the business customers see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_name: Option<String>,
    /// Chefs: the pickup address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Chefs: the pickup point (`latitude`, `longitude` on the wire).
    #[serde(flatten)]
    pub location: Option<GeoPoint>,
    /// When last saved.
    pub updated_at: DateTime<Utc>,
}

/// The raw fields of a profile, as a client sends them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileFields {
    /// Display name.
    pub name: String,
    /// Phone number.
    pub phone: Option<String>,
    /// Business name (chefs only).
    pub business_name: Option<String>,
    /// Pickup address (chefs only).
    pub address: Option<String>,
    /// Pickup latitude (chefs only; with `longitude`).
    pub latitude: Option<f64>,
    /// Pickup longitude (chefs only; with `latitude`).
    pub longitude: Option<f64>,
}

/// Why a user cannot take part in an order as a chef or a driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// The profile belongs to someone who is not a chef (or not a driver).
    #[error("the user is a {0}")]
    WrongRole(Role),
    /// A chef whose profile lacks the business name, the address or the pickup point.
    #[error(
        "the chef's profile has no pickup location: it needs a business name, an address, a \
         latitude and a longitude"
    )]
    NoPickupLocation,
}

/// Unicode's White_Space characters, which `str::trim` strips, as the body of an ECMA-262
/// character class.
const WHITE_SPACE: &str = r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// A character that may begin or end a trimmed text: neither white space nor a control
/// character (Unicode Cc: U+0000–U+001F, U+007F–U+009F).
const EDGE: &str =
    r"[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
/// A character inside a text: anything but a control character.
const INSIDE: &str = r"[^\u0000-\u001f\u007f-\u009f]";

/// Exactly the values [`parse_text`] accepts for `max` (at least 2), as a JSON Schema (ECMA-262)
/// pattern: white space around 1–`max` characters without control characters that begin and
/// end with something else than white space. The OpenAPI document uses it.
pub fn text_pattern(max: usize) -> String {
    assert!(max >= 2, "a text of at most {max} characters");
    format!(
        "^[{WHITE_SPACE}]*{EDGE}(?:{INSIDE}{{0,{inner}}}{EDGE})?[{WHITE_SPACE}]*$",
        inner = max - 2
    )
}

/// Like [`text_pattern`], for a text that may also be blank (only white space, or empty), which
/// means absent: notes, device labels.
pub fn optional_text_pattern(max: usize) -> String {
    assert!(max >= 2, "a text of at most {max} characters");
    format!(
        "^[{WHITE_SPACE}]*(?:{EDGE}(?:{INSIDE}{{0,{inner}}}{EDGE})?[{WHITE_SPACE}]*)?$",
        inner = max - 2
    )
}

/// The charset and digit count [`parse_phone`] accepts, as a JSON Schema (ECMA-262) pattern:
/// white space around an optional `+` and 7–15 digits among spaces, `-`, `.` and parentheses.
/// With [`text_pattern`]`(`[`MAX_PHONE_LEN`]`)`, which bounds the length, it is exactly what
/// [`parse_phone`] accepts (one pattern cannot say both without look-arounds).
pub fn phone_pattern() -> String {
    format!(
        r"^[{WHITE_SPACE}]*\+?[ .()-]*(?:[0-9][ .()-]*){{{MIN_PHONE_DIGITS},{MAX_PHONE_DIGITS}}}[{WHITE_SPACE}]*$"
    )
}

/// A trimmed text field of 1–`max` characters without control characters; fails naming `field`.
/// [`text_pattern`] says the same as a pattern.
pub fn parse_text(field: &'static str, value: &str, max: usize) -> Result<String, ValidationError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// A phone number as written (trimmed): digits, an optional leading `+`, and the separators
/// space, `-`, `.`, `(` and `)`; 7–15 digits, at most 32 characters. Fails naming `phone`.
pub fn parse_phone(value: &str) -> Result<String, ValidationError> {
    let value = value.trim();
    if value.chars().count() > MAX_PHONE_LEN {
        return Err(ValidationError::new(
            "phone",
            format!("must be at most {MAX_PHONE_LEN} characters"),
        ));
    }
    let body = value.strip_prefix('+').unwrap_or(value);
    if !body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
    {
        return Err(ValidationError::new(
            "phone",
            "may contain only digits, a leading '+', spaces, '-', '.' and parentheses",
        ));
    }
    let digits = body.chars().filter(char::is_ascii_digit).count();
    if !(MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&digits) {
        return Err(ValidationError::new(
            "phone",
            format!("must have {MIN_PHONE_DIGITS} to {MAX_PHONE_DIGITS} digits"),
        ));
    }
    Ok(value.to_owned())
}

impl Profile {
    /// Parses `fields` into the profile of `user_id` acting as `role`, saved at `now`.
    ///
    /// Fails with a [`ValidationError`] naming the field when the name is empty or longer than
    /// 100 characters, the phone is not a sane number, a chef's business name or address is
    /// empty or too long, only one of `latitude` and `longitude` is given or either is out of
    /// range, or someone who is not a chef sends `businessName`, `address`, `latitude` or
    /// `longitude`. A chef may leave the business fields out (and cannot receive orders until
    /// they are set).
    pub fn parse(
        user_id: UserId,
        role: Role,
        fields: ProfileFields,
        now: DateTime<Utc>,
    ) -> Result<Profile, ValidationError> {
        let name = parse_text("name", &fields.name, MAX_NAME_LEN)?;
        let phone = fields.phone.as_deref().map(parse_phone).transpose()?;
        if let Some(field) = Profile::chef_only_field(role, &fields) {
            return Err(ValidationError::new(field, "is only for chefs"));
        }
        let business_name = fields
            .business_name
            .as_deref()
            .map(|v| parse_text("businessName", v, MAX_BUSINESS_NAME_LEN))
            .transpose()?;
        let address = fields
            .address
            .as_deref()
            .map(|v| parse_text("address", v, MAX_ADDRESS_LEN))
            .transpose()?;
        let location = match (fields.latitude, fields.longitude) {
            (Some(latitude), Some(longitude)) => Some(GeoPoint::parse(latitude, longitude)?),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ValidationError::new(
                    "longitude",
                    "is required with latitude",
                ));
            }
            (None, Some(_)) => {
                return Err(ValidationError::new(
                    "latitude",
                    "is required with longitude",
                ));
            }
        };
        Ok(Profile {
            user_id,
            role,
            name,
            phone,
            business_name,
            address,
            location,
            updated_at: now,
        })
    }

    /// The first chef-only field (`businessName`, `address`, `latitude`, `longitude`) that
    /// `fields` set, when `role` is not a chef's; [`Profile::parse`] refuses it. An API may ask
    /// first, to refuse it as something the caller may not do rather than as an invalid value.
    pub fn chef_only_field(role: Role, fields: &ProfileFields) -> Option<&'static str> {
        if role == Role::Chef {
            return None;
        }
        [
            ("businessName", fields.business_name.is_some()),
            ("address", fields.address.is_some()),
            ("latitude", fields.latitude.is_some()),
            ("longitude", fields.longitude.is_some()),
        ]
        .into_iter()
        .find_map(|(field, given)| given.then_some(field))
    }

    /// The chef's side of an order, copied from this profile.
    ///
    /// Fails with [`NotReady::WrongRole`] when the profile is not a chef's, and with
    /// [`NotReady::NoPickupLocation`] when the business name, address or pickup point is missing.
    pub fn chef_info(&self) -> Result<ChefInfo, NotReady> {
        if self.role != Role::Chef {
            return Err(NotReady::WrongRole(self.role));
        }
        match (&self.business_name, &self.address, self.location) {
            (Some(business_name), Some(address), Some(point)) => Ok(ChefInfo {
                chef_id: self.user_id.clone(),
                chef_name: self.name.clone(),
                chef_business_name: business_name.clone(),
                chef_address: address.clone(),
                chef_latitude: point.latitude,
                chef_longitude: point.longitude,
            }),
            _ => Err(NotReady::NoPickupLocation),
        }
    }

    /// The driver's side of an order, copied from this profile. Fails with
    /// [`NotReady::WrongRole`] when the profile is not a driver's.
    pub fn driver_info(&self) -> Result<DriverInfo, NotReady> {
        if self.role != Role::Driver {
            return Err(NotReady::WrongRole(self.role));
        }
        Ok(DriverInfo {
            driver_id: self.user_id.clone(),
            driver_name: self.name.clone(),
            driver_phone: self.phone.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-31T00:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn chef_fields() -> ProfileFields {
        ProfileFields {
            name: " Carla Chef ".into(),
            phone: Some("+1 (512) 555-0101".into()),
            business_name: Some("Carla's Kitchen".into()),
            address: Some("500 E 7th St, Austin, TX".into()),
            latitude: Some(30.2676),
            longitude: Some(-97.736),
        }
    }

    fn chef_id() -> UserId {
        UserId::parse("chef-1").unwrap()
    }

    #[test]
    fn a_complete_chef_profile_parses_and_yields_the_chef_side_of_an_order() {
        let profile = Profile::parse(chef_id(), Role::Chef, chef_fields(), at()).unwrap();
        assert_eq!(profile.name, "Carla Chef");
        let chef = profile.chef_info().unwrap();
        assert_eq!(chef.chef_business_name, "Carla's Kitchen");
        assert_eq!(chef.chef_latitude.get(), 30.2676);
    }

    #[test]
    fn a_chef_without_a_location_is_a_valid_profile_that_cannot_receive_orders() {
        let fields = ProfileFields {
            latitude: None,
            longitude: None,
            ..chef_fields()
        };
        let profile = Profile::parse(chef_id(), Role::Chef, fields, at()).unwrap();
        assert_eq!(profile.chef_info(), Err(NotReady::NoPickupLocation));
    }

    #[test]
    fn bad_fields_are_refused_naming_the_field() {
        let cases: [(ProfileFields, &str); 7] = [
            (
                ProfileFields {
                    name: "  ".into(),
                    ..chef_fields()
                },
                "name",
            ),
            (
                ProfileFields {
                    name: "x".repeat(MAX_NAME_LEN + 1),
                    ..chef_fields()
                },
                "name",
            ),
            (
                ProfileFields {
                    phone: Some("call me".into()),
                    ..chef_fields()
                },
                "phone",
            ),
            (
                ProfileFields {
                    phone: Some("+1 23".into()),
                    ..chef_fields()
                },
                "phone",
            ),
            (
                ProfileFields {
                    latitude: Some(91.0),
                    ..chef_fields()
                },
                "latitude",
            ),
            (
                ProfileFields {
                    longitude: None,
                    ..chef_fields()
                },
                "longitude",
            ),
            (
                ProfileFields {
                    business_name: Some(String::new()),
                    ..chef_fields()
                },
                "businessName",
            ),
        ];
        for (fields, field) in cases {
            let err = Profile::parse(chef_id(), Role::Chef, fields, at()).unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
    }

    #[test]
    fn only_chefs_have_business_fields() {
        let err = Profile::parse(
            UserId::parse("customer-1").unwrap(),
            Role::Customer,
            chef_fields(),
            at(),
        )
        .unwrap_err();
        assert_eq!(err.field, "businessName");
    }

    #[test]
    fn a_driver_profile_yields_the_driver_side_and_is_no_chef() {
        let fields = ProfileFields {
            name: "Dan Driver".into(),
            phone: Some("+1 512 555 0100".into()),
            ..ProfileFields::default()
        };
        let profile = Profile::parse(
            UserId::parse("driver-1").unwrap(),
            Role::Driver,
            fields,
            at(),
        )
        .unwrap();
        let driver = profile.driver_info().unwrap();
        assert_eq!(driver.driver_phone.as_deref(), Some("+1 512 555 0100"));
        assert_eq!(profile.chef_info(), Err(NotReady::WrongRole(Role::Driver)));
    }

    #[test]
    fn a_profile_round_trips_through_json_with_a_flat_location() {
        let profile = Profile::parse(chef_id(), Role::Chef, chef_fields(), at()).unwrap();
        let json = serde_json::to_value(&profile).unwrap();
        assert_eq!(json["latitude"], 30.2676);
        assert_eq!(json["businessName"], "Carla's Kitchen");
        let back: Profile = serde_json::from_value(json).unwrap();
        assert_eq!(back, profile);
        let bare = Profile {
            location: None,
            ..profile
        };
        let back: Profile = serde_json::from_value(serde_json::to_value(&bare).unwrap()).unwrap();
        assert_eq!(back, bare);
    }
}
