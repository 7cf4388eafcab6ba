//! `POST`, `GET /devices` and `DELETE /devices/{deviceId}`: the caller's own devices, the
//! phones (and browsers) their push notifications go to (see `rnd_domain::device` for the
//! rules: one user per token, at most ten per user, forgotten 270 days after last seen).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rnd_domain::ValidationError;
use rnd_domain::device::{DeviceId, DeviceRegistration, DeviceToken, parse_label};
use rnd_domain::ports::StoreError;

use crate::AppState;
use crate::auth::Caller;
use crate::body::JsonBody;
use crate::model::{DeviceBody, DeviceRequest, DevicesBody};
use crate::problem::{ApiError, responses};
use crate::schema::DeviceIdPath;

/// Why a device request was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeviceError {
    /// No such device of the caller's.
    #[error("device not found")]
    NotFound,
    /// A field is invalid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The store failed.
    #[error("store failure")]
    Store(#[from] StoreError),
}

impl From<DeviceError> for ApiError {
    fn from(e: DeviceError) -> Self {
        match e {
            DeviceError::NotFound => ApiError::NotFound(e.to_string()),
            DeviceError::Invalid(v) => v.into(),
            DeviceError::Store(source) => ApiError::unexpected(source),
        }
    }
}

/// `POST /devices`: registers a device for the caller's push notifications. 201 with the new
/// device; the same token again answers 200 with the same device, `lastSeenAt` refreshed; a
/// token another user registered moves to the caller.
#[utoipa::path(
    post,
    path = "/devices",
    tag = "devices",
    summary = "Register a device for push notifications",
    request_body(content = DeviceRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "A new device", body = DeviceBody,
            headers(("location" = String, description = "Where it is: the path of `DELETE /devices/{deviceId}`"))),
        (status = 200, description = "The token was registered by you already: the same device, refreshed", body = DeviceBody),
        responses::BadRequest,
        responses::Unauthorized,
        responses::PayloadTooLarge,
        responses::UnsupportedMediaType,
        responses::Internal,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.actor.user_id))]
pub(crate) async fn register_device(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<DeviceRequest>,
) -> Result<Response, ApiError> {
    let registration = DeviceRegistration {
        new_id: DeviceId::parse(uuid::Uuid::new_v4().to_string()).map_err(DeviceError::from)?,
        user_id: caller.actor.user_id.clone(),
        token: DeviceToken::parse(body.token).map_err(DeviceError::from)?,
        platform: body.platform.parse().map_err(DeviceError::from)?,
        app_version: parse_label("appVersion", body.app_version.as_deref())
            .map_err(DeviceError::from)?,
        locale: parse_label("locale", body.locale.as_deref()).map_err(DeviceError::from)?,
    };
    let registered = state
        .store()
        .register_device(&registration, state.now())
        .await
        .map_err(DeviceError::from)?;
    let device = &registered.device;
    tracing::info!(
        device_id = %device.device_id,
        platform = %device.platform,
        created = registered.created,
        dropped = registered.dropped.len(),
        "device registered"
    );
    let status = if registered.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (status, Json(DeviceBody::from(device))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/devices/{}", device.device_id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /devices`: the caller's devices, most recently seen first.
#[utoipa::path(
    get,
    path = "/devices",
    tag = "devices",
    summary = "List your devices",
    responses(
        (status = 200, description = "Your devices", body = DevicesBody),
        responses::Unauthorized,
        responses::Internal,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.actor.user_id))]
pub(crate) async fn list_devices(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<DevicesBody>, ApiError> {
    let devices = state
        .store()
        .devices_of(&caller.actor.user_id, state.now())
        .await
        .map_err(DeviceError::from)?;
    Ok(Json(DevicesBody {
        devices: devices.iter().map(DeviceBody::from).collect(),
    }))
}

/// `DELETE /devices/{deviceId}`: removes one of the caller's devices (204); anyone else's, or
/// an unknown id, is 404.
#[utoipa::path(
    delete,
    path = "/devices/{deviceId}",
    tag = "devices",
    summary = "Remove one of your devices",
    params(DeviceIdPath),
    responses(
        (status = 204, description = "Removed: no more pushes to it"),
        responses::Unauthorized,
        responses::NotFound,
        responses::Internal,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.actor.user_id))]
pub(crate) async fn remove_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(device_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = DeviceId::parse(device_id).map_err(|_| DeviceError::NotFound)?;
    let removed = state
        .store()
        .remove_device(&caller.actor.user_id, &id)
        .await
        .map_err(DeviceError::from)?;
    if !removed {
        return Err(DeviceError::NotFound.into());
    }
    tracing::info!(device_id = %id, "device removed");
    Ok(StatusCode::NO_CONTENT)
}
