//! The order endpoints: placing, listing, tracking and every lifecycle transition.
//!
//! Strangers to an order (not its customer, chef, assigned driver, nor an admin) get 404 on
//! every order endpoint, exactly as for an order that does not exist. A transition is read,
//! applied with [`OrderView::apply`] and committed conditionally; when another write got there
//! first ([`StoreError::Conflict`], e.g. a driver location moved the sequence) it is re-read and
//! re-applied, up to [`TRANSITION_ATTEMPTS`] times. Of two racing transitions exactly one wins:
//! the other, re-applied to the new state, is refused as an invalid transition (409).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rnd_domain::geo::GeoPoint;
use rnd_domain::ids::{OrderId, UserId};
use rnd_domain::limits::Allowance;
use rnd_domain::order::{Action, NewOrder, OrderItem, TransitionError};
use rnd_domain::ports::{OrderFilter, OrderPage, OrderQuery, StoreError};
use rnd_domain::profile::{NotReady, parse_text};
use rnd_domain::tracking::OrderTracking;
use rnd_domain::visibility::Visibility;
use rnd_domain::{Order, OrderView, Role, ValidationError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::body::JsonBody;
use crate::model::{
    AssignRequest, CancelRequest, CreateOrderRequest, ListParams, OrderBody, OrderLine,
    OrderPageBody, TrackingBody,
};
use crate::problem::{ApiError, ProblemCode, responses};
use crate::schema::OrderIdPath;

/// How many times a transition is read, applied and committed before giving up with 409.
pub const TRANSITION_ATTEMPTS: u32 = 5;
/// Default page size of `GET /orders`.
pub const DEFAULT_PAGE: u32 = 20;
/// Largest page size of `GET /orders`.
pub const MAX_PAGE: u32 = 100;
/// Longest list cursor: the stores' cursors are far shorter (a few hundred characters at most).
pub const MAX_CURSOR_LEN: usize = 1024;
/// Most lines in one order.
pub const MAX_ITEMS: usize = 50;
/// Largest quantity of one line.
pub const MAX_QUANTITY: u32 = 99;
/// Longest dish name.
pub const MAX_ITEM_NAME_LEN: usize = 100;
/// Longest delivery address.
pub const MAX_ADDRESS_LEN: usize = 200;
/// Longest notes.
pub const MAX_NOTES_LEN: usize = 500;

/// Why an order request was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OrderError {
    /// No such order, or the caller is a stranger to it.
    #[error("no order {0} that you can see")]
    NotFound(String),
    /// The caller may see the order but not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The order's status does not allow it now.
    #[error("{0}")]
    InvalidTransition(String),
    /// The order kept changing under us.
    #[error("the order kept changing; read it again and retry")]
    Contended,
    /// A field is invalid.
    #[error("{message}")]
    Invalid {
        /// Its wire name or path.
        field: String,
        /// What is wrong (includes the field name).
        message: String,
    },
    /// The list cursor is not one the store issued.
    #[error("the cursor is not valid for this listing")]
    InvalidCursor,
    /// The caller has no profile to copy into the order.
    #[error("save your profile (PUT /profiles/me) before placing an order")]
    ProfileRequired,
    /// `chefId` names no chef.
    #[error("chefId {0} is not a chef")]
    NotAChef(String),
    /// The chef's profile lacks the pickup location.
    #[error("chef {0} cannot receive orders: {1}")]
    ChefNotReady(String, NotReady),
    /// `driverId` names no driver.
    #[error("driverId {0} is not a driver")]
    NotADriver(String),
    /// The store failed or holds something it should not.
    #[error("store failure")]
    Store(#[source] StoreError),
}

impl OrderError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        OrderError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A domain validation error, reported under `field` (the request's name for it).
    fn renamed(field: &str, e: ValidationError) -> Self {
        OrderError::invalid(field, format!("{field} {}", e.message))
    }
}

impl From<StoreError> for OrderError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidCursor => OrderError::InvalidCursor,
            other => OrderError::Store(other),
        }
    }
}

impl From<ValidationError> for OrderError {
    fn from(e: ValidationError) -> Self {
        OrderError::invalid(e.field, e.to_string())
    }
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> Self {
        let detail = e.to_string();
        match e {
            OrderError::NotFound(_) => ApiError::NotFound(detail),
            OrderError::Forbidden(_) => ApiError::forbidden(detail),
            OrderError::InvalidTransition(_) => ApiError::Conflict {
                code: ProblemCode::InvalidTransition,
                detail,
            },
            OrderError::Contended => ApiError::Conflict {
                code: ProblemCode::Conflict,
                detail,
            },
            OrderError::Invalid { field, message } => ApiError::invalid_field(field, message),
            OrderError::InvalidCursor => ApiError::Invalid {
                code: ProblemCode::InvalidCursor,
                field: Some("cursor".into()),
                detail,
            },
            OrderError::ProfileRequired => ApiError::Unprocessable {
                code: ProblemCode::ProfileRequired,
                field: None,
                detail,
            },
            OrderError::NotAChef(_) => ApiError::Unprocessable {
                code: ProblemCode::NotAChef,
                field: Some("chefId".into()),
                detail,
            },
            OrderError::ChefNotReady(..) => ApiError::Unprocessable {
                code: ProblemCode::ChefLocationMissing,
                field: Some("chefId".into()),
                detail,
            },
            OrderError::NotADriver(_) => ApiError::Unprocessable {
                code: ProblemCode::NotADriver,
                field: Some("driverId".into()),
                detail,
            },
            OrderError::Store(source) => ApiError::unexpected(source),
        }
    }
}

/// The order id of a path, or 400 naming `orderId`.
fn order_id(raw: &str) -> Result<OrderId, OrderError> {
    Ok(OrderId::parse(raw)?)
}

/// The order, if it exists and `caller` may see it; else [`OrderError::NotFound`].
async fn visible_order(
    state: &AppState,
    caller: &Caller,
    id: &OrderId,
) -> Result<OrderView, OrderError> {
    match state.store().get_order(id).await? {
        Some(view)
            if view
                .order
                .is_visible_to_at(&caller.actor, state.now(), state.driver_access()) =>
        {
            Ok(view)
        }
        _ => Err(OrderError::NotFound(id.to_string())),
    }
}

/// A `POST /orders` body, parsed: what the order takes from the request.
#[derive(Debug)]
struct ParsedOrder {
    chef_id: UserId,
    delivery_address: String,
    delivery: GeoPoint,
    items: Vec<OrderItem>,
    notes: Option<String>,
}

/// Validates a `POST /orders` body; fails with `Invalid` naming the first bad field.
fn parse_new_order(body: CreateOrderRequest) -> Result<ParsedOrder, OrderError> {
    let chef_id = UserId::parse(body.chef_id).map_err(|e| OrderError::renamed("chefId", e))?;
    let address = parse_text("deliveryAddress", &body.delivery_address, MAX_ADDRESS_LEN)?;
    let point = GeoPoint::parse(body.delivery_latitude, body.delivery_longitude).map_err(|e| {
        let field = if e.field == "latitude" {
            "deliveryLatitude"
        } else {
            "deliveryLongitude"
        };
        OrderError::renamed(field, e)
    })?;
    let lines = body.items.unwrap_or_default();
    if lines.len() > MAX_ITEMS {
        return Err(OrderError::invalid(
            "items",
            format!("items must have at most {MAX_ITEMS} lines"),
        ));
    }
    let items = lines
        .into_iter()
        .enumerate()
        .map(|(i, OrderLine { name, quantity })| {
            let name = parse_text("name", &name, MAX_ITEM_NAME_LEN)
                .map_err(|e| OrderError::renamed(&format!("items[{i}].name"), e))?;
            if !(1..=MAX_QUANTITY).contains(&quantity) {
                let field = format!("items[{i}].quantity");
                return Err(OrderError::invalid(
                    &field,
                    format!("{field} must be between 1 and {MAX_QUANTITY}"),
                ));
            }
            Ok(OrderItem { name, quantity })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let notes = match body.notes.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(notes) => Some(parse_text("notes", notes, MAX_NOTES_LEN)?),
    };
    Ok(ParsedOrder {
        chef_id,
        delivery_address: address,
        delivery: point,
        items,
        notes,
    })
}

/// `POST /orders`: a customer places an order with a chef.
///
/// Answers 201 with the order (`pending`, number `RND-YYYYMMDD-NNNN` from the day's atomic
/// counter). Refuses non-customers (403), invalid fields (400 naming the field), callers without
/// a profile, chef ids that are not chefs and chefs without a pickup location (422), and a
/// customer past their orders per hour (429 with `Retry-After`).
#[utoipa::path(
    post,
    path = "/orders",
    tag = "orders",
    summary = "Place an order",
    request_body(content = CreateOrderRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Placed", body = OrderBody,
            headers(("location" = String, description = "Where to track it: the path of `GET /orders/{id}/tracking`"))),
        responses::BadRequest,
        responses::Unauthorized,
        responses::Forbidden,
        responses::PayloadTooLarge,
        responses::UnsupportedMediaType,
        responses::Unprocessable,
        responses::TooManyRequests,
        responses::Internal,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.actor.user_id, order_id))]
pub(crate) async fn create_order(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateOrderRequest>,
) -> Result<Response, ApiError> {
    if caller.role() != Role::Customer {
        return Err(OrderError::Forbidden("only customers place orders".into()).into());
    }
    let ParsedOrder {
        chef_id,
        delivery_address,
        delivery,
        items,
        notes,
    } = parse_new_order(body)?;
    let store = state.store();
    let customer = store
        .get_profile(&caller.actor.user_id)
        .await
        .map_err(OrderError::from)?
        .ok_or(OrderError::ProfileRequired)?;
    let chef = match store
        .get_profile(&chef_id)
        .await
        .map_err(OrderError::from)?
    {
        Some(profile) => profile.chef_info().map_err(|e| match e {
            NotReady::WrongRole(_) => OrderError::NotAChef(chef_id.to_string()),
            NotReady::NoPickupLocation => OrderError::ChefNotReady(chef_id.to_string(), e),
        })?,
        None => return Err(OrderError::NotAChef(chef_id.to_string()).into()),
    };
    let now = state.now();
    // Counted once the request would place an order: refusals above cost nothing.
    let limit = state.order_limit();
    if let Allowance::Refused { retry_after } = store
        .take(limit, caller.actor.user_id.as_str(), now)
        .await
        .map_err(OrderError::from)?
    {
        return Err(ApiError::RateLimited {
            detail: format!("at most {} orders per hour; retry later", limit.per_window),
            retry_after: retry_after.to_std().unwrap_or_default(),
        });
    }
    let number = store
        .next_order_number(now.date_naive())
        .await
        .map_err(OrderError::from)?;
    let order_id = OrderId::parse(uuid::Uuid::new_v4().to_string()).map_err(OrderError::from)?;
    tracing::Span::current().record("order_id", tracing::field::display(&order_id));
    let order = Order::place(
        NewOrder {
            order_id,
            order_number: format!("RND-{}-{number:04}", now.format("%Y%m%d")),
            customer_id: caller.actor.user_id.clone(),
            customer_name: customer.name,
            delivery_address,
            delivery,
            chef,
            items,
            notes,
        },
        now,
    );
    let view = OrderView::new_placed(order);
    store.create_order(&view).await.map_err(OrderError::from)?;
    tracing::info!(order_number = %view.order.order_number, "order placed");
    let location = format!("/orders/{}/tracking", view.order.order_id);
    let body = OrderBody::of(
        &view.order,
        Visibility::for_actor(&caller.actor, &view.order),
    );
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// `GET /orders/{id}/tracking`: the tracking payload, for the order's customer, chef, assigned
/// driver and admins; 404 for anyone else.
#[utoipa::path(
    get,
    path = "/orders/{id}/tracking",
    tag = "orders",
    summary = "Track an order",
    params(OrderIdPath),
    responses(
        (status = 200, description = "The tracking payload", body = TrackingBody),
        responses::BadRequest,
        responses::Unauthorized,
        responses::NotFound,
        responses::Internal,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(order_id = %id, user_id = %caller.actor.user_id))]
pub(crate) async fn tracking(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TrackingBody>, ApiError> {
    let id = order_id(&id)?;
    let view = visible_order(&state, &caller, &id).await?;
    let seen = Visibility::for_actor(&caller.actor, &view.order);
    Ok(Json(TrackingBody::from(&OrderTracking::of(&view, seen))))
}

/// `GET /orders`: the caller's orders, newest first — a customer's placed, a chef's received, a
/// driver's assigned, every recent order for admins — a page at a time.
#[utoipa::path(
    get,
    path = "/orders",
    tag = "orders",
    summary = "List your orders",
    params(ListParams),
    responses(
        (status = 200, description = "A page of orders, newest first", body = OrderPageBody),
        responses::BadRequest,
        responses::Unauthorized,
        responses::Internal,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.actor.user_id))]
pub(crate) async fn list_orders(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<OrderPageBody>, ApiError> {
    let Query(params) =
        params.map_err(|_| OrderError::invalid("query", "the query string is malformed"))?;
    let limit = match params.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(raw) => parse_limit(raw).ok_or_else(|| {
            OrderError::invalid(
                "limit",
                format!("limit must be a whole number from 1 to {MAX_PAGE}"),
            )
        })?,
    };
    let user = caller.actor.user_id.clone();
    let filter = match caller.role() {
        Role::Customer => OrderFilter::Customer(user),
        Role::Chef => OrderFilter::Chef(user),
        Role::Driver => OrderFilter::Driver(user),
        Role::Admin => OrderFilter::All,
    };
    let cursor = params.cursor.filter(|c| !c.is_empty());
    if cursor.as_deref().is_some_and(|c| !is_cursor_shaped(c)) {
        return Err(OrderError::InvalidCursor.into());
    }
    let page = state
        .store()
        .list_orders(&OrderQuery {
            filter,
            limit,
            cursor,
        })
        .await
        .map_err(OrderError::from)?;
    // A driver's orders that ended longer ago than their access are no longer theirs to see;
    // the cursor still moves past them.
    let (now, access) = (state.now(), state.driver_access());
    let page = OrderPage {
        orders: page
            .orders
            .into_iter()
            .filter(|o| o.is_visible_to_at(&caller.actor, now, access))
            .collect(),
        next_cursor: page.next_cursor,
    };
    Ok(Json(OrderPageBody::seen_by(&page, &caller.actor)))
}

/// The page size of `limit=`: a number of 1 to [`MAX_PAGE`] without a fractional part, as
/// JSON Schema's `integer` has it (`20`, and `20.0` from an encoder whose numbers are floats).
/// Nothing around it: ` 20` is not a number.
fn parse_limit(raw: &str) -> Option<u32> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let whole = match raw.split_once('.') {
        None => raw,
        Some((whole, zeros)) if !zeros.is_empty() && zeros.bytes().all(|b| b == b'0') => whole,
        Some(_) => return None,
    };
    if !digits(whole) {
        return None;
    }
    whole
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PAGE).contains(n))
}

/// Whether `cursor` has the shape of every cursor this API issues, as the document says: at most
/// [`MAX_CURSOR_LEN`] characters of the base64url alphabet (both stores' cursors are).
fn is_cursor_shaped(cursor: &str) -> bool {
    cursor.len() <= MAX_CURSOR_LEN
        && cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Applies `action` to order `id` as `caller` and commits it, re-reading and re-applying on a
/// lost conditional write. Returns the committed order.
///
/// Fails with `NotFound` (no order, or a stranger), `Forbidden`, `InvalidTransition` (also when
/// a re-applied transition is no longer valid: the race was lost), `Invalid` (a bad reason),
/// `Contended` after [`TRANSITION_ATTEMPTS`] lost writes, `Store` on store failures.
async fn transition(
    state: &AppState,
    caller: &Caller,
    id: &OrderId,
    action: Action,
) -> Result<OrderView, OrderError> {
    for attempt in 1..=TRANSITION_ATTEMPTS {
        let view = visible_order(state, caller, id).await?;
        let next = view
            .apply(&caller.actor, action.clone(), state.now())
            .map_err(|e| match e {
                TransitionError::Forbidden { stranger: true, .. } => {
                    OrderError::NotFound(id.to_string())
                }
                TransitionError::Forbidden { .. } => OrderError::Forbidden(e.to_string()),
                TransitionError::InvalidTransition { .. } => {
                    OrderError::InvalidTransition(e.to_string())
                }
                TransitionError::Invalid(v) => OrderError::from(v),
            })?;
        match state.store().commit_transition(&view, &next).await {
            Ok(()) => {
                tracing::info!(
                    action = action.name(),
                    status = next.order.status.as_str(),
                    seq = next.seq(),
                    "transition committed"
                );
                return Ok(next);
            }
            Err(StoreError::Conflict) => {
                tracing::debug!(attempt, "transition lost a conditional write; re-reading");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(OrderError::Contended)
}

/// Runs a body-less transition and answers the updated order.
async fn simple_transition(
    state: AppState,
    caller: Caller,
    id: String,
    action: Action,
) -> Result<Json<OrderBody>, ApiError> {
    let id = order_id(&id)?;
    let view = transition(&state, &caller, &id, action).await?;
    Ok(Json(OrderBody::of(
        &view.order,
        Visibility::for_actor(&caller.actor, &view.order),
    )))
}

/// Defines the body-less transitions from one table: each row is a `POST /orders/{id}/…` that
/// applies one [`Action`] and answers the updated order. Each becomes a handler named as its
/// OpenAPI operation id, documented with its path, summary and [`responses::TransitionRefusals`];
/// and [`transition_routes`] registers them all.
macro_rules! body_less_transitions {
    ($($(#[$doc:meta])* $handler:ident: $path:literal, $summary:literal => $action:expr;)+) => {
        $(
            #[utoipa::path(
                post,
                path = $path,
                tag = "orders",
                summary = $summary,
                params(OrderIdPath),
                responses(
                    (status = 200, description = "The updated order", body = OrderBody),
                    responses::TransitionRefusals,
                ),
                security(("bearer" = []))
            )]
            $(#[$doc])*
            #[tracing::instrument(
                skip_all,
                fields(order_id = %id, user_id = %caller.actor.user_id)
            )]
            pub(crate) async fn $handler(
                State(state): State<AppState>,
                caller: Caller,
                Path(id): Path<String>,
            ) -> Result<Json<OrderBody>, ApiError> {
                simple_transition(state, caller, id, $action).await
            }
        )+

        /// `router` with every body-less transition, in the Router and in the document.
        pub(crate) fn transition_routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
            router$(.routes(routes!($handler)))+
        }
    };
}

body_less_transitions! {
    /// `POST /orders/{id}/confirm-payment` (admin).
    confirm_payment: "/orders/{id}/confirm-payment",
        "Confirm payment (admin): pending → payment_confirmed" => Action::ConfirmPayment;
    /// `POST /orders/{id}/accept` (the order's chef).
    accept: "/orders/{id}/accept",
        "Accept (the order's chef): payment_confirmed → accepted" => Action::Accept;
    /// `POST /orders/{id}/ready` (the order's chef).
    ready: "/orders/{id}/ready",
        "Mark ready (the order's chef): accepted → ready_for_pickup" => Action::MarkReady;
    /// `POST /orders/{id}/pickup` (the assigned driver).
    pickup: "/orders/{id}/pickup",
        "Pick up (the assigned driver): assigned_to_driver → picked_up" => Action::PickUp;
    /// `POST /orders/{id}/in-transit` (the assigned driver).
    in_transit: "/orders/{id}/in-transit",
        "Start transit (the assigned driver): picked_up → in_transit" => Action::StartTransit;
    /// `POST /orders/{id}/deliver` (the assigned driver).
    deliver: "/orders/{id}/deliver",
        "Deliver (the assigned driver): in_transit → delivered" => Action::Deliver;
}

#[utoipa::path(
    post,
    path = "/orders/{id}/assign",
    tag = "orders",
    summary = "Assign a driver (admin): ready_for_pickup → assigned_to_driver",
    request_body(content = AssignRequest, content_type = "application/json"),
    params(OrderIdPath),
    responses(
        (status = 200, description = "The updated order, with the driver's name and phone from their profile", body = OrderBody),
        responses::TransitionRefusals,
        responses::PayloadTooLarge,
        responses::UnsupportedMediaType,
        responses::Unprocessable,
    ),
    security(("bearer" = []))
)]
/// `POST /orders/{id}/assign` (admin): copies the driver's name and phone from their profile.
#[tracing::instrument(skip_all, fields(order_id = %id, user_id = %caller.actor.user_id))]
pub(crate) async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AssignRequest>,
) -> Result<Json<OrderBody>, ApiError> {
    let order = order_id(&id)?;
    // Strangers learn nothing and non-admins cannot probe driver profiles.
    visible_order(&state, &caller, &order).await?;
    if caller.role() != Role::Admin {
        return Err(
            OrderError::Forbidden(format!("{} may not assign this order", caller.role())).into(),
        );
    }
    let driver_id =
        UserId::parse(body.driver_id).map_err(|e| OrderError::renamed("driverId", e))?;
    let driver = state
        .store()
        .get_profile(&driver_id)
        .await
        .map_err(OrderError::from)?
        .and_then(|p| p.driver_info().ok())
        .ok_or_else(|| OrderError::NotADriver(driver_id.to_string()))?;
    let view = transition(&state, &caller, &order, Action::AssignDriver(driver)).await?;
    Ok(Json(OrderBody::of(
        &view.order,
        Visibility::for_actor(&caller.actor, &view.order),
    )))
}

#[utoipa::path(
    post,
    path = "/orders/{id}/cancel",
    tag = "orders",
    summary = "Cancel: the customer while pending or paid, the chef before ready, an admin before delivery",
    request_body(content = CancelRequest, content_type = "application/json"),
    params(OrderIdPath),
    responses(
        (status = 200, description = "The cancelled order", body = OrderBody),
        responses::TransitionRefusals,
        responses::PayloadTooLarge,
        responses::UnsupportedMediaType,
    ),
    security(("bearer" = []))
)]
/// `POST /orders/{id}/cancel` (customer, chef or admin, as the lifecycle allows).
#[tracing::instrument(skip_all, fields(order_id = %id, user_id = %caller.actor.user_id))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CancelRequest>,
) -> Result<Json<OrderBody>, ApiError> {
    simple_transition(
        state,
        caller,
        id,
        Action::Cancel {
            reason: body.reason,
        },
    )
    .await
}
