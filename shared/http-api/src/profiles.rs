//! `GET` and `PUT /profiles/me`: the caller's own profile. The role is the token's; chefs add
//! their business name and pickup point, which orders copy.

use axum::Json;
use axum::extract::State;
use rnd_domain::ValidationError;
use rnd_domain::ports::StoreError;
use rnd_domain::profile::{Profile, ProfileFields};

use crate::AppState;
use crate::auth::Caller;
use crate::body::JsonBody;
use crate::model::{ProfileBody, ProfileRequest};
use crate::problem::{ApiError, responses};

/// Why a profile request was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProfileError {
    /// The caller has not saved a profile yet.
    #[error("you have no profile yet; create it with PUT /profiles/me")]
    NotFound,
    /// A field is invalid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A chef-only field from someone who is not a chef.
    #[error("{0} is only for chefs")]
    ChefOnly(&'static str),
    /// The store failed.
    #[error("store failure")]
    Store(#[from] StoreError),
}

impl From<ProfileError> for ApiError {
    fn from(e: ProfileError) -> Self {
        match e {
            ProfileError::NotFound => ApiError::NotFound(e.to_string()),
            ProfileError::Invalid(v) => v.into(),
            ProfileError::ChefOnly(field) => ApiError::Forbidden {
                field: Some(field.to_owned()),
                detail: e.to_string(),
            },
            ProfileError::Store(source) => ApiError::unexpected(source),
        }
    }
}

/// `GET /profiles/me`: the caller's profile; 404 until they save one.
#[utoipa::path(
    get,
    path = "/profiles/me",
    tag = "profiles",
    summary = "Read your profile",
    responses(
        (status = 200, description = "Your profile", body = ProfileBody),
        responses::Unauthorized,
        responses::NotFound,
        responses::Internal,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.actor.user_id))]
pub(crate) async fn get_profile(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ProfileBody>, ApiError> {
    let profile = state
        .store()
        .get_profile(&caller.actor.user_id)
        .await
        .map_err(ProfileError::from)?
        .ok_or(ProfileError::NotFound)?;
    Ok(Json(ProfileBody::from(&profile)))
}

/// `PUT /profiles/me`: saves the caller's profile whole (fields left out are removed) and
/// answers it. Refuses invalid fields naming them (400), and business fields from anyone but a
/// chef (403, naming the field).
#[utoipa::path(
    put,
    path = "/profiles/me",
    tag = "profiles",
    summary = "Save your profile",
    request_body(content = ProfileRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The saved profile", body = ProfileBody),
        responses::BadRequest,
        responses::Unauthorized,
        responses::Forbidden,
        responses::PayloadTooLarge,
        responses::UnsupportedMediaType,
        responses::Internal,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.actor.user_id))]
pub(crate) async fn put_profile(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ProfileRequest>,
) -> Result<Json<ProfileBody>, ApiError> {
    let fields = ProfileFields {
        name: body.name,
        phone: body.phone,
        business_name: body.business_name,
        address: body.address,
        latitude: body.latitude,
        longitude: body.longitude,
    };
    // Well-formed for a chef, so not invalid: the caller may not send it.
    if let Some(field) = Profile::chef_only_field(caller.role(), &fields) {
        return Err(ProfileError::ChefOnly(field).into());
    }
    let profile = Profile::parse(
        caller.actor.user_id.clone(),
        caller.role(),
        fields,
        state.now(),
    )
    .map_err(ProfileError::from)?;
    state
        .store()
        .put_profile(&profile)
        .await
        .map_err(ProfileError::from)?;
    tracing::info!(role = %caller.role(), "profile saved");
    Ok(Json(ProfileBody::from(&profile)))
}
