//! The HTTP API of RND Realtime: order tracking, the order lifecycle and profiles, as one axum
//! [`Router`]. In AWS, the `http-api` Lambda (`functions/http-api`) runs it with `lambda_http`
//! behind an API Gateway HTTP API (payload v2); the local stack mounts the very same Router. This
//! crate depends on neither Lambda nor AWS. The OpenAPI 3.1 document is generated from the
//! handlers and types themselves and served at `GET /openapi.json`.
//!
//! | endpoint | who | answers |
//! |---|---|---|
//! | `GET /orders/{id}/tracking` | the order's customer, chef, assigned driver; admins | the tracking payload |
//! | `POST /orders` | customers | 201, the `pending` order |
//! | `POST /orders/{id}/confirm-payment`, `/assign` | admins | the updated order |
//! | `POST /orders/{id}/accept`, `/ready` | the order's chef | the updated order |
//! | `POST /orders/{id}/pickup`, `/in-transit`, `/deliver` | the assigned driver | the updated order |
//! | `POST /orders/{id}/cancel` | customer, chef or admin, as the lifecycle allows | the updated order |
//! | `GET /orders` | everyone (their own orders; admins all) | a page, newest first |
//! | `GET`, `PUT /profiles/me` | everyone | their profile |
//! | `POST`, `GET /devices`, `DELETE /devices/{deviceId}` | everyone | their push devices |
//! | `GET /presence/{userId}` | admins; a customer for their active order's driver | online, connections, since, last seen |
//! | `GET /stats/connections` | admins | connection analytics |
//! | `GET /openapi.json` | everyone | the OpenAPI document |
//!
//! Every request needs `Authorization: Bearer <JWT>`. Errors are RFC 9457
//! `application/problem+json` with a stable `code` (see [`Problem`]).
//!
//! # Layout
//! - [`AppState`], [`Clock`], [`router`], [`openapi`] (this file): state and assembly.
//! - `auth`: bearer-token middleware and the `Caller` extractor.
//! - `body`: the JSON body extractor (content type, 64 KiB limit, field-naming errors).
//! - `problem`: [`Problem`] and the one mapping of errors to problem responses.
//! - `orders`: placing, listing, tracking and transitions (the six body-less ones defined from
//!   one table).
//! - `profiles`: `GET`/`PUT /profiles/me`.
//! - `devices`: `POST`/`GET /devices`, `DELETE /devices/{deviceId}`.
//! - `presence`: `GET /presence/{userId}`, `GET /stats/connections`.
//! - [`model`]: request and response bodies (their schemas make the OpenAPI document).
//! - `schema`: what the derives cannot say in the document: the exact patterns of ids and texts
//!   (from the domain's parsers), path parameters, the profile body.

mod auth;
mod body;
mod devices;
pub mod idempotency;
pub mod model;
mod orders;
mod presence;
mod problem;
mod profiles;
mod schema;

use std::fmt;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router, middleware};
use chrono::{DateTime, Utc};
use rnd_domain::identity::VerifyTokens;
use rnd_domain::limits::Limit;
use rnd_domain::ports::ApiStore;
use rnd_domain::visibility::DriverAccess;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use body::MAX_BODY_BYTES;
pub use orders::{DEFAULT_PAGE, MAX_CURSOR_LEN, MAX_PAGE, TRANSITION_ATTEMPTS};
pub use problem::{PROBLEM_JSON, Problem, ProblemCode};

use crate::problem::ApiError;

/// Where the current time comes from (the system clock, or a fixed one in tests).
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// What every handler shares: the orders, profiles and devices (all the API uses of a store),
/// the token verifier and the clock. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    store: Arc<dyn ApiStore>,
    verifier: Arc<dyn VerifyTokens>,
    clock: Arc<dyn Clock>,
    driver_access: DriverAccess,
    order_limit: Limit,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over `store` (any `Arc<dyn Store>` upcasts to it), verifying tokens with
    /// `verifier`, on the system clock.
    pub fn new(store: Arc<dyn ApiStore>, verifier: Arc<dyn VerifyTokens>) -> Self {
        Self {
            store,
            verifier,
            clock: Arc::new(SystemClock),
            driver_access: DriverAccess::default(),
            order_limit: Limit::ORDERS_PER_CUSTOMER,
        }
    }

    /// The same state, admitting `limit` orders per customer and window.
    pub fn with_order_limit(self, limit: Limit) -> Self {
        Self {
            order_limit: limit,
            ..self
        }
    }

    /// The same state, letting an order's driver see it for `access` after it ended.
    pub fn with_driver_access(self, access: DriverAccess) -> Self {
        Self {
            driver_access: access,
            ..self
        }
    }

    /// The same state on another clock.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self { clock, ..self }
    }

    pub(crate) fn store(&self) -> &dyn ApiStore {
        &*self.store
    }

    pub(crate) fn verifier(&self) -> &dyn VerifyTokens {
        &*self.verifier
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn driver_access(&self) -> DriverAccess {
        self.driver_access
    }

    pub(crate) fn order_limit(&self) -> Limit {
        self.order_limit
    }
}

/// The parts of the document that are not generated from a handler.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "RND Realtime HTTP API",
        description = "Order tracking, the order lifecycle, profiles and push devices. Every \
                       request needs `Authorization: Bearer <JWT>`; errors are RFC 9457 \
                       problem details.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    // Referenced by every error response (`problem::responses`), which do not register it.
    components(schemas(Problem, ProblemCode)),
    modifiers(&BearerAuth),
    tags(
        (name = "orders", description = "Placing, tracking and moving orders through their lifecycle"),
        (name = "profiles", description = "Your own profile"),
        (name = "devices", description = "Your devices for push notifications"),
        (name = "presence", description = "Who is connected, and connection analytics"),
        (name = "meta", description = "This document")
    )
)]
struct ApiDoc;

/// Adds the `bearer` (JWT) security scheme.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The served document, serialized once when the Router is built.
#[derive(Clone)]
struct OpenApiJson(Arc<String>);

/// `GET /openapi.json`: this API's OpenAPI 3.1 document, generated from the code.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    summary = "This OpenAPI document",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object),
        problem::responses::Unauthorized,
    ),
    security(("bearer" = []))
)]
async fn openapi_json(Extension(doc): Extension<OpenApiJson>) -> Response {
    let mut response = doc.0.as_str().to_owned().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Every route, registered in the Router and in the document together.
fn api() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi());
    orders::transition_routes(api)
        .routes(routes!(orders::create_order, orders::list_orders))
        .routes(routes!(orders::tracking))
        .routes(routes!(orders::assign))
        .routes(routes!(orders::cancel))
        .routes(routes!(profiles::get_profile, profiles::put_profile))
        .routes(routes!(devices::register_device, devices::list_devices))
        .routes(routes!(devices::remove_device))
        .routes(routes!(presence::presence))
        .routes(routes!(presence::connection_statistics))
        .routes(routes!(openapi_json))
}

/// The routes and their OpenAPI 3.1 document.
fn routes_and_document() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut doc) = api().split_for_parts();
    idempotency::document(&mut doc);
    (routes, doc)
}

/// The OpenAPI 3.1 document of [`router`]'s routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes_and_document().1
}

/// The HTTP API as one Router: every route behind the 64 KiB body limit and bearer-token
/// authentication; unknown paths answer 404 and unknown methods 405, as problem+json.
pub fn router(state: AppState) -> Router {
    let (routes, doc) = routes_and_document();
    let doc = OpenApiJson(Arc::new(
        doc.to_json()
            .expect("the OpenAPI document is plain data and always serializes"),
    ));
    routes
        .fallback(|| async { ApiError::NotFound("no such resource".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(Extension(doc))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // After authentication: keys are per user.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::guard,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(middleware::from_fn(body::limit_body))
        .with_state(state)
}
