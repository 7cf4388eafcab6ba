//! The demo page (`GET /`, `/demo.js`, `/demo.css`) and its dev-only token endpoint
//! (`POST /dev/token`).
//!
//! **Local stack only.** `POST /dev/token` signs a JWT for any `sub`/`role` with the stack's
//! configured secret (the dev secret unless `--jwt-secret`/`JWT_SECRET`), like `rnd-local
//! token`. Nothing deployed has this route: it exists only in `rnd-local`, so that the demo page
//! can act as any user. The page's assets are embedded in the binary and load nothing from the
//! network (no CDN, no fonts, no map tiles); its Content-Security-Policy allows only this origin.
//! The page talks to the WebSocket API through the SDK the apps use (`clients/js`): its bundle,
//! `demo/realtime-client.js` (written and checked by `npm run bundle` / `check-bundle` there), is
//! served at `/sdk/realtime-client.js`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

/// The page.
const INDEX_HTML: &str = include_str!("../demo/index.html");
/// Its script (an ES module, no build step).
const DEMO_JS: &str = include_str!("../demo/demo.js");
/// The SDK (`@rnd/realtime-client`) as one ES module, bundled from `clients/js`.
const SDK_JS: &str = include_str!("../demo/realtime-client.js");
/// Its style sheet.
const DEMO_CSS: &str = include_str!("../demo/demo.css");
/// Only this origin: the page's assets, the HTTP API and the WebSocket API.
const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                   style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";
/// Lifetime of the tokens `POST /dev/token` issues.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// What the demo routes share.
#[derive(Clone)]
struct DemoState {
    jwt_secret: Arc<str>,
}

impl std::fmt::Debug for DemoState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoState").finish_non_exhaustive()
    }
}

/// `POST /dev/token`.
#[derive(Debug, Deserialize)]
struct TokenRequest {
    sub: String,
    role: String,
    #[serde(default)]
    name: Option<String>,
}

/// The demo page and its assets.
pub(crate) fn page() -> Router {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX_HTML)))
        .route(
            "/demo.js",
            get(|| asset("text/javascript; charset=utf-8", DEMO_JS)),
        )
        .route(
            "/sdk/realtime-client.js",
            get(|| asset("text/javascript; charset=utf-8", SDK_JS)),
        )
        .route(
            "/demo.css",
            get(|| asset("text/css; charset=utf-8", DEMO_CSS)),
        )
}

/// `POST /dev/token`, signing with `jwt_secret` (served on loopback only: `exposure`).
pub(crate) fn dev_token(jwt_secret: &str) -> Router {
    Router::new()
        .route("/dev/token", post(issue))
        .with_state(DemoState {
            jwt_secret: jwt_secret.into(),
        })
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// Signs a token for the body's `sub`/`role`/`name`: 200 `{"token": ...}`, or 400 with a
/// `problem+json` body when the user id or role is invalid.
async fn issue(
    State(state): State<DemoState>,
    body: Result<Json<TokenRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let problem = |detail: String| {
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/problem+json")],
            json!({"type": "about:blank", "title": "Bad Request", "status": 400, "detail": detail})
                .to_string(),
        )
            .into_response()
    };
    let Json(request) = match body {
        Ok(body) => body,
        Err(e) => return problem(e.body_text()),
    };
    let name = request.name.as_deref().filter(|n| !n.trim().is_empty());
    match crate::issue_token(
        &state.jwt_secret,
        &request.sub,
        &request.role,
        name,
        DEV_TOKEN_TTL,
    ) {
        Ok(token) => (
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({ "token": token, "expiresIn": DEV_TOKEN_TTL.as_secs() })),
        )
            .into_response(),
        Err(e) => problem(e.to_string()),
    }
}
