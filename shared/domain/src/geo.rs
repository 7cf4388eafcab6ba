//! Coordinates and motion values, parsed (finite, in range) at the edge.

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// Mean Earth radius in metres (IUGG).
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

macro_rules! bounded_f64 {
    ($(#[$doc:meta])* $name:ident, $field:literal, $min:expr, $max:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
        #[serde(try_from = "f64", into = "f64")]
        pub struct $name(f64);

        impl $name {
            /// Parses the value; fails when it is not finite or outside the allowed range.
            pub fn parse(value: f64) -> Result<Self, ValidationError> {
                if !value.is_finite() {
                    return Err(ValidationError::new($field, "must be a finite number"));
                }
                if !($min..=$max).contains(&value) {
                    return Err(ValidationError::new($field, $what));
                }
                Ok(Self(value))
            }

            /// The value as a plain number.
            pub fn get(self) -> f64 {
                self.0
            }
        }

        /// Exactly what [`Self::parse`] accepts (the protocol's JSON Schemas,
        /// docs/asyncapi.yaml): a number from the minimum to the maximum, both included.
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "number",
                    "minimum": $min,
                    "maximum": $max,
                })
            }
        }

        impl TryFrom<f64> for $name {
            type Error = ValidationError;
            fn try_from(value: f64) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for f64 {
            fn from(value: $name) -> f64 {
                value.0
            }
        }
    };
}

bounded_f64!(
    /// Latitude in degrees, −90 to 90.
    Latitude,
    "latitude",
    -90.0,
    90.0,
    "must be between -90 and 90"
);
bounded_f64!(
    /// Longitude in degrees, −180 to 180.
    Longitude,
    "longitude",
    -180.0,
    180.0,
    "must be between -180 and 180"
);
bounded_f64!(
    /// Heading in degrees clockwise from north, 0 to 360.
    Heading,
    "heading",
    0.0,
    360.0,
    "must be between 0 and 360"
);
bounded_f64!(
    /// Ground speed in metres per second, ≥ 0 (capped at 100 m/s: nothing on a road is faster).
    Speed,
    "speed",
    0.0,
    100.0,
    "must be between 0 and 100 (metres per second)"
);
bounded_f64!(
    /// Horizontal accuracy radius in metres, ≥ 0.
    Accuracy,
    "accuracy",
    0.0,
    100_000.0,
    "must be between 0 and 100000 (metres)"
);

/// A point on Earth.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    /// Latitude.
    pub latitude: Latitude,
    /// Longitude.
    pub longitude: Longitude,
}

impl GeoPoint {
    /// Builds a point from raw degrees, validating both.
    pub fn parse(latitude: f64, longitude: f64) -> Result<Self, ValidationError> {
        Ok(Self {
            latitude: Latitude::parse(latitude)?,
            longitude: Longitude::parse(longitude)?,
        })
    }

    /// Great-circle (haversine) distance to `other`, in metres.
    pub fn distance_m(&self, other: &GeoPoint) -> f64 {
        let (lat1, lat2) = (self.latitude.0.to_radians(), other.latitude.0.to_radians());
        let dlat = lat2 - lat1;
        let dlon = (other.longitude.0 - self.longitude.0).to_radians();
        let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_in_range_parse_and_out_of_range_are_refused() {
        assert!(Latitude::parse(90.0).is_ok());
        assert!(Latitude::parse(-90.0).is_ok());
        assert_eq!(Latitude::parse(90.0001).unwrap_err().field, "latitude");
        assert!(Longitude::parse(180.0).is_ok());
        assert_eq!(Longitude::parse(-180.5).unwrap_err().field, "longitude");
        assert!(Latitude::parse(f64::NAN).is_err());
        assert!(Longitude::parse(f64::INFINITY).is_err());
    }

    #[test]
    fn heading_speed_and_accuracy_have_physical_ranges() {
        assert!(Heading::parse(0.0).is_ok() && Heading::parse(360.0).is_ok());
        assert!(Heading::parse(-1.0).is_err() && Heading::parse(361.0).is_err());
        assert!(Speed::parse(0.0).is_ok());
        assert!(Speed::parse(-0.1).is_err());
        assert!(Accuracy::parse(5.0).is_ok());
        assert!(Accuracy::parse(-5.0).is_err());
    }

    #[test]
    fn haversine_distance_matches_a_known_city_pair() {
        // Austin, TX to Dallas, TX: about 292 km great-circle.
        let austin = GeoPoint::parse(30.2672, -97.7431).unwrap();
        let dallas = GeoPoint::parse(32.7767, -96.7970).unwrap();
        let d = austin.distance_m(&dallas);
        assert!((d - 292_000.0).abs() < 3_000.0, "got {d}");
        assert_eq!(austin.distance_m(&austin), 0.0);
    }

    #[test]
    fn deserializing_an_out_of_range_latitude_fails() {
        let bad: Result<Latitude, _> = serde_json::from_str("91.5");
        assert!(bad.is_err());
    }
}
