//! An emulator of Firebase Cloud Messaging HTTP v1 that speaks the real wire protocol: Google's
//! OAuth 2.0 token endpoint and FCM's `messages:send`, with the error bodies both really send.
//! The push adapter's tests (`rnd-push-fcm`) and every push test run against it over HTTP, and
//! the local stack mounts it as its FCM sink, so a developer sees what each phone would show
//! without a Google account.
//!
//! [`FcmEmulator`] is the handle (cheap to clone): [`FcmEmulator::router`] gives the axum
//! `Router` to serve or to nest, the other methods program faults and read what was received.
//! [`start`] serves it on a free loopback port. It trusts the development service account
//! ([`dev_service_account_json`]; its key pair is committed and public, under `dev-keys/`) and
//! any account given to [`FcmEmulator::trust`].
//!
//! # HTTP API
//! Paths are relative to where the Router is served (the emulator's base URL):
//! - `POST /token` — the token endpoint (`token_uri` of the service account). Form body
//!   `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT`. The assertion must
//!   be RS256-signed with a trusted account's key (`kid` its `private_key_id` when given), with
//!   `iss` the account's `client_email`, `aud` this endpoint's URL, a `scope` including
//!   `https://www.googleapis.com/auth/firebase.messaging` (or `cloud-platform`), and `exp` in
//!   the future at most one hour after `iat`. Answers `{"access_token", "expires_in",
//!   "token_type": "Bearer"}` (lifetime [`DEFAULT_TOKEN_LIFETIME`], see
//!   [`FcmEmulator::set_token_lifetime`]), else 400 with Google's `{"error": "invalid_grant" |
//!   "invalid_scope" | "invalid_request" | "unsupported_grant_type", "error_description"}`.
//! - `POST /v1/projects/{project}/messages:send` — FCM's send. Needs `Authorization: Bearer`
//!   with a token this emulator issued and that has not expired (else 401 `UNAUTHENTICATED`)
//!   for an account of `{project}` (else 403 `PERMISSION_DENIED`); checks the message (see
//!   `send`) and answers `{"name": "projects/{project}/messages/{id}"}`, or FCM's error body
//!   (`{"error": {"code", "message", "status", "details": [{"@type":
//!   "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode"}]}}`).
//! - `GET /messages` (optionally `?token=REGISTRATION_TOKEN`) — what was delivered, oldest
//!   first, as a JSON array of [`ReceivedMessage`] (camelCase fields: `name`, `token`, `title`,
//!   `body`, `data`, `collapseKey`, `androidPriority`, `apnsCollapseId`, `apnsPriority`,
//!   `highPriority`, `receivedAt`, `request`): "what a phone would show". At most
//!   [`MAX_RECORDED`] messages are kept.
//!
//! # Layout
//! - [`FcmEmulator`], [`start`], [`RunningEmulator`], the development account (this file).
//! - `state`: what the emulator knows: trusted accounts, issued tokens, faults, deliveries.
//! - `token`: `POST /token` and its checks of the assertion.
//! - `send`: `POST …/messages:send`, the message checks, and `GET /messages`.
//! - `answers`: Google's error bodies (OAuth and `google.rpc.Status` with FCM details).

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

mod answers;
mod send;
mod state;
mod token;

pub use send::MAX_PAYLOAD_BYTES;
pub use state::{Fault, InvalidPublicKey, ReceivedMessage, SendAttempt};

use jsonwebtoken::DecodingKey;
use state::{Account, Shared};

/// How long the access tokens the emulator issues live unless told otherwise (as Google's).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The most messages (and send attempts) kept; older ones are dropped first.
pub const MAX_RECORDED: usize = 10_000;

/// The OAuth scope FCM needs.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// The project of the development service account.
pub const DEV_PROJECT_ID: &str = "rnd-local-dev";
/// The `client_email` of the development service account.
pub const DEV_CLIENT_EMAIL: &str = "fcm-sender@rnd-local-dev.iam.gserviceaccount.com";
/// The `private_key_id` of the development service account.
pub const DEV_PRIVATE_KEY_ID: &str = "rnd-local-dev-key-1";
/// The development service account's private key (PKCS#8 PEM, as Google issues them). Public
/// and test-only: it protects nothing; never register it with Google.
pub const DEV_PRIVATE_KEY_PEM: &str = include_str!("../dev-keys/dev_service_account_private.pem");
/// The development service account's public key (SPKI PEM), which the emulator trusts.
pub const DEV_PUBLIC_KEY_PEM: &str = include_str!("../dev-keys/dev_service_account_public.pem");

/// The development service account as Google's JSON key file, with `token_uri` set to
/// `token_uri` (an emulator's [`FcmEmulator::token_url`]). Every emulator trusts it.
pub fn dev_service_account_json(token_uri: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": DEV_PROJECT_ID,
        "private_key_id": DEV_PRIVATE_KEY_ID,
        "private_key": DEV_PRIVATE_KEY_PEM,
        "client_email": DEV_CLIENT_EMAIL,
        "client_id": "000000000000000000000",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/fcm-sender%40rnd-local-dev.iam.gserviceaccount.com",
        "universe_domain": "googleapis.com"
    })
    .to_string()
}

/// The emulator: its state and where it is served. Clones share the state.
#[derive(Debug, Clone)]
pub struct FcmEmulator {
    shared: Arc<Shared>,
}

impl FcmEmulator {
    /// An emulator to be served at `base_url` (e.g. `http://127.0.0.1:9001/fcm`, no trailing
    /// slash needed): its token endpoint's URL, which assertions must name as `aud`, is
    /// `{base_url}/token`. It trusts the development service account.
    pub fn new(base_url: &str) -> Self {
        let emulator = Self {
            shared: Arc::new(Shared::new(base_url.trim_end_matches('/'))),
        };
        emulator
            .trust(
                DEV_CLIENT_EMAIL,
                DEV_PRIVATE_KEY_ID,
                DEV_PROJECT_ID,
                DEV_PUBLIC_KEY_PEM.as_bytes(),
            )
            .expect("the committed development public key parses");
        emulator
    }

    /// The Router serving the emulator's HTTP API (see the crate docs), to serve or to nest
    /// at the base URL given to [`FcmEmulator::new`].
    pub fn router(&self) -> Router {
        Router::new()
            .route("/token", post(token::grant))
            .route("/v1/projects/{project}/messages:send", post(send::send))
            .route("/messages", get(send::list))
            .with_state(Arc::clone(&self.shared))
    }

    /// The base URL: FCM's endpoint for a client (`{base_url}/v1/projects/…`).
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The token endpoint's URL, `{base_url}/token`: the `token_uri` of service accounts and
    /// the only `aud` accepted.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.shared.base_url)
    }

    /// The development service account's JSON with `token_uri` pointing at this emulator.
    pub fn dev_service_account_json(&self) -> String {
        dev_service_account_json(&self.token_url())
    }

    /// Trusts the service account `client_email` of `project_id`: assertions signed with the
    /// private half of `public_key_pem` (SPKI or PKCS#1 PEM) and, when they name one,
    /// `private_key_id` as `kid`, get tokens for sends to `project_id`. Replaces an earlier
    /// account of the same email.
    ///
    /// Fails when `public_key_pem` is not an RSA public key.
    pub fn trust(
        &self,
        client_email: &str,
        private_key_id: &str,
        project_id: &str,
        public_key_pem: &[u8],
    ) -> Result<(), InvalidPublicKey> {
        let key = DecodingKey::from_rsa_pem(public_key_pem).map_err(InvalidPublicKey)?;
        self.shared.lock().accounts.insert(
            client_email.to_owned(),
            Account {
                private_key_id: private_key_id.to_owned(),
                project_id: project_id.to_owned(),
                key,
            },
        );
        Ok(())
    }

    /// Issues access tokens living `lifetime` from now on (`expires_in` is its whole seconds,
    /// at least 1).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.shared.lock().token_lifetime = lifetime;
    }

    /// How many access tokens the token endpoint has issued.
    pub fn token_grants(&self) -> usize {
        self.shared.lock().token_grants
    }

    /// How many requests the token endpoint has received, granted or refused.
    pub fn token_requests(&self) -> usize {
        self.shared.lock().token_requests
    }

    /// Makes every access token issued so far expire now: the next send with one of them is
    /// answered 401 `UNAUTHENTICATED`, as FCM answers a token past its lifetime.
    pub fn expire_access_tokens(&self) {
        self.shared.lock().expire_issued(std::time::Instant::now());
    }

    /// Answers every send to `token` with `fault` from now on (until [`FcmEmulator::heal`]).
    pub fn fail(&self, token: &str, fault: Fault) {
        self.shared.lock().set_fault(token, fault, None);
    }

    /// Answers the next `times` sends to `token` with `fault`, then delivers again.
    pub fn fail_next(&self, token: &str, fault: Fault, times: usize) {
        self.shared.lock().set_fault(token, fault, Some(times));
    }

    /// Delivers to `token` again (drops its fault).
    pub fn heal(&self, token: &str) {
        self.shared.lock().faults.remove(token);
    }

    /// Every delivered message, oldest first (at most [`MAX_RECORDED`]).
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.shared.lock().messages.iter().cloned().collect()
    }

    /// The messages delivered to the registration token `token`, oldest first.
    pub fn messages_to(&self, token: &str) -> Vec<ReceivedMessage> {
        self.shared.lock().messages_to(token)
    }

    /// Every `messages:send` request and how it was answered, oldest first (at most
    /// [`MAX_RECORDED`]).
    pub fn attempts(&self) -> Vec<SendAttempt> {
        self.shared.lock().attempts.iter().cloned().collect()
    }
}

/// An emulator served on a loopback port by [`start`]; dereferences to its [`FcmEmulator`].
/// Stops serving when dropped.
#[derive(Debug)]
pub struct RunningEmulator {
    emulator: FcmEmulator,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl RunningEmulator {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Deref for RunningEmulator {
    type Target = FcmEmulator;

    fn deref(&self) -> &FcmEmulator {
        &self.emulator
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Serves a new [`FcmEmulator`] on a free port of 127.0.0.1 (base URL
/// `http://127.0.0.1:{port}`), in a task of the current tokio runtime.
///
/// Fails when no loopback port can be bound.
pub async fn start() -> std::io::Result<RunningEmulator> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let emulator = FcmEmulator::new(&format!("http://{addr}"));
    let app = emulator.router();
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the FCM emulator stopped");
        }
    });
    Ok(RunningEmulator {
        emulator,
        addr,
        server,
    })
}
