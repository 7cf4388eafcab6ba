//! Authentication: every request needs `Authorization: Bearer <JWT>`, verified by the same
//! [`VerifyTokens`](rnd_domain::identity::VerifyTokens) as the WebSocket authorizer.
//! [`authenticate`] runs before routing (so an unauthenticated caller learns nothing, not even
//! which routes exist) and leaves the [`Identity`] in the request; handlers take a [`Caller`].

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rnd_domain::identity::{AuthError, Identity, extract_token};
use rnd_domain::{Actor, Role};

use crate::AppState;
use crate::problem::ApiError;

/// Middleware: verifies the bearer token and stores the [`Identity`] in the request's
/// extensions; answers 401 (problem+json, `WWW-Authenticate: Bearer`) when it is missing or
/// does not verify. The token itself is never logged.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    // Only the Authorization header: no query-string or subprotocol tokens over plain HTTP.
    let token = extract_token(None, |name| {
        (name == "authorization")
            .then(|| headers.get(header::AUTHORIZATION))
            .flatten()
            .and_then(|v| v.to_str().ok())
    });
    let verified = match token {
        Some(token) => state.verifier().verify(token).await,
        None => Err(AuthError::Missing),
    };
    match verified {
        Ok(identity) => {
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        Err(e) => {
            tracing::debug!(reason = %e, "refused token");
            ApiError::from(e).into_response()
        }
    }
}

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    /// Who, and in which role.
    pub(crate) actor: Actor,
}

impl Caller {
    /// The caller's role.
    pub(crate) fn role(&self) -> Role {
        self.actor.role
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    /// The identity [`authenticate`] verified; 401 if the route was mounted without it.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Identity>()
            .map(|identity| Caller {
                actor: identity.actor.clone(),
            })
            .ok_or_else(|| AuthError::Missing.into())
    }
}
