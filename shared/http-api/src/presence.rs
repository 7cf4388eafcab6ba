//! `GET /presence/{userId}` and `GET /stats/connections`: who is connected, and connection
//! analytics, from what the store counts on every connect and disconnect
//! ([`rnd_domain::presence`]); nothing here scans connections.

use axum::Json;
use axum::extract::{Path, State};
use rnd_domain::Role;
use rnd_domain::ids::UserId;
use rnd_domain::ports::{OrderFilter, OrderQuery, StoreError};
use rnd_domain::presence::{connection_stats, may_see_presence, minute_of, stats_from};

use crate::AppState;
use crate::auth::Caller;
use crate::model::{ConnectionStatsBody, PresenceBody};
use crate::problem::{ApiError, responses};
use crate::schema::UserIdPath;

/// Orders of a customer read to find their active orders' drivers: the newest, where active
/// orders are.
const ORDERS_READ_FOR_PRESENCE: u32 = 100;

/// Why a presence or statistics request was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PresenceError {
    /// Not someone the caller may ask about.
    #[error("you may see the presence of your active orders' drivers only")]
    NotYours,
    /// Statistics are for admins.
    #[error("connection statistics are for admins")]
    AdminsOnly,
    /// The store failed.
    #[error("store failure")]
    Store(#[from] StoreError),
}

impl From<PresenceError> for ApiError {
    fn from(e: PresenceError) -> Self {
        match e {
            PresenceError::NotYours | PresenceError::AdminsOnly => ApiError::Forbidden {
                field: None,
                detail: e.to_string(),
            },
            PresenceError::Store(source) => ApiError::unexpected(source),
        }
    }
}

/// `GET /presence/{userId}`: whether the user is connected, on how many connections, since
/// when, and when last seen. Admins may ask about anyone; a customer about the driver of an
/// order of theirs that is not over; anyone else gets 403.
#[utoipa::path(
    get,
    path = "/presence/{userId}",
    tag = "presence",
    summary = "Is a user connected?",
    params(UserIdPath),
    responses(
        (status = 200, description = "Their presence", body = PresenceBody),
        responses::Unauthorized,
        responses::Forbidden,
        responses::Internal,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.actor.user_id))]
pub(crate) async fn presence(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<PresenceBody>, ApiError> {
    // A malformed id names nobody the caller may ask about.
    let user = UserId::parse(user_id).map_err(|_| PresenceError::NotYours)?;
    let orders = if caller.role() == Role::Customer {
        state
            .store()
            .list_orders(&OrderQuery {
                filter: OrderFilter::Customer(caller.actor.user_id.clone()),
                limit: ORDERS_READ_FOR_PRESENCE,
                cursor: None,
            })
            .await
            .map_err(PresenceError::from)?
            .orders
    } else {
        Vec::new()
    };
    if !may_see_presence(&caller.actor, &user, &orders) {
        return Err(PresenceError::NotYours.into());
    }
    let presence = state
        .store()
        .presence(&user, state.now())
        .await
        .map_err(PresenceError::from)?;
    Ok(Json(PresenceBody::new(user, &presence)))
}

/// `GET /stats/connections`: connections open now by role; connects, disconnects, expiries
/// and session durations over the last hour and day; the peak today. Admins only.
#[utoipa::path(
    get,
    path = "/stats/connections",
    tag = "presence",
    summary = "Connection analytics",
    responses(
        (status = 200, description = "The statistics", body = ConnectionStatsBody),
        responses::Unauthorized,
        responses::Forbidden,
        responses::Internal,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.actor.user_id))]
pub(crate) async fn connection_statistics(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ConnectionStatsBody>, ApiError> {
    if caller.role() != Role::Admin {
        return Err(PresenceError::AdminsOnly.into());
    }
    let now = state.now();
    let minutes = state
        .store()
        .connection_minutes(stats_from(now), minute_of(now))
        .await
        .map_err(PresenceError::from)?;
    Ok(Json(ConnectionStatsBody::from(&connection_stats(
        &minutes, now,
    ))))
}
