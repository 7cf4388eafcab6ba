//! What the derives cannot say in the OpenAPI document: the exact pattern of every id and text
//! the API parses (each taken from the domain's parser it describes, so they cannot drift apart),
//! the path parameters, and the profile body, whose pickup point comes whole or not at all.
//!
//! The patterns are JSON Schema (ECMA-262) regular expressions that use no look-arounds, so
//! every engine (a client generator's, a validator's, schemathesis') reads them alike.

use rnd_domain::device::{DeviceId, DeviceToken, MAX_LABEL_CHARS};
use rnd_domain::ids::{MAX_ID_LEN, OrderId, UserId};
use rnd_domain::order::MAX_REASON_LEN;
use rnd_domain::profile::{
    MAX_ADDRESS_LEN, MAX_BUSINESS_NAME_LEN, MAX_NAME_LEN, MAX_PHONE_LEN, optional_text_pattern,
    phone_pattern, text_pattern,
};
use serde_json::json;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, Object, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{RefOr, Required};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::model::ProfileRequest;
use crate::orders::{
    MAX_ADDRESS_LEN as MAX_DELIVERY_ADDRESS_LEN, MAX_ITEM_NAME_LEN, MAX_NOTES_LEN,
};

/// A string of `pattern`, described.
fn string(pattern: impl Into<String>, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
}

/// `builder`, also `null` (which the API reads as absent).
fn or_null(builder: ObjectBuilder, of: Type) -> ObjectBuilder {
    builder.schema_type(SchemaType::from_iter([of, Type::Null]))
}

/// A user id: `chefId`, `driverId`.
fn user_id(description: &str, example: &str) -> Object {
    string(UserId::PATTERN, description)
        .min_length(Some(1))
        .max_length(Some(MAX_ID_LEN))
        .examples([example])
        .build()
}

/// A trimmed text of 1–`max` characters.
fn text(max: usize, description: &str, example: Option<&str>) -> ObjectBuilder {
    string(text_pattern(max), description).examples(example)
}

/// `POST /orders` `chefId`.
pub(crate) fn chef_id() -> Object {
    user_id("The chef to order from: their user id.", "chef-1")
}

/// `POST /orders/{id}/assign` `driverId`.
pub(crate) fn driver_id() -> Object {
    user_id(
        "The driver to assign: their user id (they need a driver profile).",
        "driver-1",
    )
}

/// `POST /orders` `deliveryAddress`.
pub(crate) fn delivery_address() -> Object {
    text(
        MAX_DELIVERY_ADDRESS_LEN,
        "Drop-off address: 1–200 characters, no control characters; white space around it is \
         dropped.",
        Some("1 Congress Ave, Austin, TX"),
    )
    .build()
}

/// An order line's `name`.
pub(crate) fn item_name() -> Object {
    text(
        MAX_ITEM_NAME_LEN,
        "Dish name: 1–100 characters, no control characters; white space around it is dropped.",
        Some("Tamales"),
    )
    .build()
}

/// `POST /orders` `notes`.
pub(crate) fn notes() -> Object {
    or_null(
        string(
            optional_text_pattern(MAX_NOTES_LEN),
            "Notes for the chef and driver: at most 500 characters, no control characters; white \
             space around them is dropped, and blank notes are none.",
        ),
        Type::String,
    )
    .build()
}

/// `POST /orders/{id}/cancel` `reason`.
pub(crate) fn reason() -> Object {
    text(
        MAX_REASON_LEN,
        "Why: 1–500 characters, no control characters; white space around it is dropped.",
        Some("changed my mind"),
    )
    .build()
}

/// `POST /devices` `token`.
pub(crate) fn device_token() -> Object {
    string(
        DeviceToken::PATTERN,
        "The FCM registration token: 1–4096 letters, digits, `-`, `_`, `:` and `.`.",
    )
    .min_length(Some(1))
    .max_length(Some(rnd_domain::device::MAX_TOKEN_BYTES))
    .examples(["dXa1b2C3d4E5:APA91bH-example"])
    .build()
}

/// `POST /devices` `appVersion` and `locale`.
fn label(description: &str, example: &str) -> Object {
    or_null(
        string(optional_text_pattern(MAX_LABEL_CHARS), description),
        Type::String,
    )
    .examples([example])
    .build()
}

/// `POST /devices` `appVersion`.
pub(crate) fn app_version() -> Object {
    label(
        "The app's version: at most 64 characters, no control characters; white space around it \
         is dropped, and a blank one is none.",
        "1.4.0",
    )
}

/// `POST /devices` `locale`.
pub(crate) fn locale() -> Object {
    label(
        "The device's locale (e.g. `es-MX`): at most 64 characters, no control characters; white \
         space around it is dropped, and a blank one is none. Apps localize pushes with the \
         `data` payload.",
        "en-US",
    )
}

/// A latitude or longitude of `bound` degrees either way.
fn degrees(bound: f64, description: &str, nullable: bool) -> Object {
    let builder = ObjectBuilder::new()
        .schema_type(if nullable {
            SchemaType::from_iter([Type::Number, Type::Null])
        } else {
            Type::Number.into()
        })
        .minimum(Some(-bound))
        .maximum(Some(bound))
        .description(Some(description));
    builder.build()
}

/// `PUT /profiles/me` `phone`: two patterns, as one cannot say both without look-arounds.
fn phone() -> RefOr<Schema> {
    let pattern = |pattern: String| {
        ObjectBuilder::new()
            .schema_type(SchemaType::AnyValue)
            .pattern(Some(pattern))
    };
    AllOfBuilder::new()
        .item(
            or_null(ObjectBuilder::new(), Type::String)
                .description(Some(
                    "Phone: an optional leading `+`, then 7–15 digits among spaces, `-`, `.` and \
                     parentheses; at most 32 characters once the white space around it is \
                     dropped.",
                ))
                .examples(["+1 512 555 0101"]),
        )
        // The alphabet and the digits.
        .item(pattern(phone_pattern()))
        // The length.
        .item(pattern(text_pattern(MAX_PHONE_LEN)))
        .into()
}

/// A path parameter of `pattern`.
fn path_parameter(name: &str, description: &str, pattern: &str, max: usize) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(
            string(pattern, description)
                .min_length(Some(1))
                .max_length(Some(max)),
        ))
        .build()
}

/// The `{id}` of `/orders/{id}/…`.
pub(crate) struct OrderIdPath;

impl IntoParams for OrderIdPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![path_parameter(
            "id",
            "The order's id: 1–128 letters, digits, `-`, `_` and `.`.",
            OrderId::PATTERN,
            MAX_ID_LEN,
        )]
    }
}

/// The `{deviceId}` of `/devices/{deviceId}`.
pub(crate) struct DeviceIdPath;

impl IntoParams for DeviceIdPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![path_parameter(
            "deviceId",
            "The device's id: 1–64 letters, digits and `-`.",
            DeviceId::PATTERN,
            64,
        )]
    }
}

/// The `{userId}` of `/presence/{userId}`.
pub(crate) struct UserIdPath;

impl IntoParams for UserIdPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![path_parameter(
            "userId",
            "The user's id (the `sub` of their token): 1–128 letters, digits, `-`, `_`, `.`, `@`, \
             `|` and `:`.",
            UserId::PATTERN,
            MAX_ID_LEN,
        )]
    }
}

/// `PUT /profiles/me`: written out here, as no derive says "both or neither".
impl PartialSchema for ProfileRequest {
    /// The fields, and the rule that `latitude` and `longitude` are both numbers or neither is.
    fn schema() -> RefOr<Schema> {
        let chefs_only = "Chefs only: anyone else who sends it (not `null`) is refused with 403 \
                          `forbidden` naming it.";
        let fields = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "name",
                text(
                    MAX_NAME_LEN,
                    "Display name: 1–100 characters, no control characters; white space around \
                     it is dropped.",
                    Some("Carla Chef"),
                ),
            )
            .required("name")
            .property("phone", phone())
            .property(
                "businessName",
                or_null(
                    text(
                        MAX_BUSINESS_NAME_LEN,
                        &format!(
                            "Business name: 1–100 characters, no control characters. {chefs_only}"
                        ),
                        None,
                    ),
                    Type::String,
                ),
            )
            .property(
                "address",
                or_null(
                    text(
                        MAX_ADDRESS_LEN,
                        &format!("Pickup address: 1–200 characters. {chefs_only}"),
                        None,
                    ),
                    Type::String,
                ),
            )
            .property(
                "latitude",
                degrees(
                    90.0,
                    &format!("Pickup latitude, −90 to 90, with `longitude`. {chefs_only}"),
                    true,
                ),
            )
            .property(
                "longitude",
                degrees(
                    180.0,
                    &format!("Pickup longitude, −180 to 180, with `latitude`. {chefs_only}"),
                    true,
                ),
            )
            .build();
        // Both coordinates, or neither (absent or null).
        let point = AnyOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .property("latitude", ObjectBuilder::new().schema_type(Type::Number))
                    .property("longitude", ObjectBuilder::new().schema_type(Type::Number))
                    .required("latitude")
                    .required("longitude")
                    .build(),
            )
            .item(
                ObjectBuilder::new()
                    .property("latitude", ObjectBuilder::new().schema_type(Type::Null))
                    .property("longitude", ObjectBuilder::new().schema_type(Type::Null))
                    .build(),
            );
        AllOfBuilder::new()
            .item(fields)
            .item(point)
            .description(Some(
                "`PUT /profiles/me`: the whole profile (fields left out are removed). The pickup \
                 point is `latitude` and `longitude` together.",
            ))
            .examples([json!({
                "name": "Carla Chef",
                "phone": "+1 512 555 0101",
                "businessName": "Carla's Kitchen",
                "address": "500 E 7th St, Austin, TX",
                "latitude": 30.2676,
                "longitude": -97.736
            })])
            .into()
    }
}

impl ToSchema for ProfileRequest {}
