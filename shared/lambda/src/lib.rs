//! Cold-start wiring shared by the Lambda functions, so each `main.rs` stays a few lines: logs,
//! SDK clients built once, configuration read from the environment once.
//!
//! # Environment
//! | variable | meaning |
//! |---|---|
//! | `CONNECTIONS_TABLE`, `ORDERS_TABLE` | table names (required) |
//! | `DYNAMODB_ENDPOINT` | endpoint override (a DynamoDB-compatible server, e.g. moto); unset in AWS |
//! | `JWT_JWKS_URL` | an identity provider's JWKS, fetched at cold start and refreshed (`rnd-jwks`), or |
//! | `JWT_PUBLIC_KEY_PARAMETER` + `JWT_ALGORITHM` (`RS256`/`ES256`) | name of an SSM parameter holding a PEM public key, or |
//! | `JWT_SECRET_PARAMETER` | name of an SSM SecureString holding the HS256 secret (deployed stacks), or |
//! | `JWT_SECRET` | HS256 shared secret (≥ 32 bytes; local runs), or |
//! | `JWT_PUBLIC_KEY_PEM` + `JWT_ALGORITHM` | a public key, or |
//! | `JWT_JWKS` | a JWKS document (JSON) |
//! | `JWT_ISSUER`, `JWT_AUDIENCE` | checked when set |
//! | `JWT_ALLOW_DEV_SECRET` | `true` lets a local run use the public development secret; without it a function refuses to start with it |
//! | `WEBSOCKET_DOMAIN_NAME` + `WEBSOCKET_STAGE` | the WebSocket API the fan-out and the message routes post to (`https://{domain}/{stage}`), or |
//! | `WEBSOCKET_API_ENDPOINT` | a full Management API endpoint URL (local stack); wins when set |
//! | `FANOUT_CONCURRENCY`, `FANOUT_MAX_ATTEMPTS`, `FANOUT_RETRY_BASE_MS` | fan-out tuning (defaults 32, 3, 50) |
//! | `INBOX_RETENTION_SECS` | how long a user's inbox keeps an event (default 86400) |
//! | `FCM_CREDENTIALS_PARAMETER` | name of an SSM SecureString holding the Firebase service-account JSON (the push function), or |
//! | `FCM_CREDENTIALS` | the service-account JSON itself (local runs) |
//! | `FCM_ENDPOINT` | FCM's endpoint (default `https://fcm.googleapis.com`; an emulator's in tests) |
//! | `PUSH_FAILURE_QUEUE_URL` | the SQS queue pushes that still fail after their retries go to |
//! | `PUSH_CONCURRENCY`, `PUSH_MAX_ATTEMPTS` | push tuning (defaults 16, 3) |
//! | `ETA_PROVIDER` | `osrm`, `mapbox` or `google`: ETAs along the provider's routes (`driver:location`); unset or `none`: the offline estimate |
//! | `ROUTING_BASE_URL` | the provider's base URL (required for OSRM; the public API of Mapbox and Google when unset) |
//! | `ROUTING_KEY_PARAMETER` | name of an SSM SecureString holding Mapbox's access token or Google's API key, or |
//! | `ROUTING_KEY` | the key itself (local runs) |
//! | `ROUTING_OFF_ROUTE_M`, `ROUTING_MIN_INTERVAL_SECS`, `ROUTING_MAX_AGE_SECS`, `ROUTING_DRIFT_TOLERANCE` | when to route again (defaults 100, 60, 900, 0.25) |
//! | `ROUTING_ATTEMPT_TIMEOUT_MS`, `ROUTING_DEADLINE_MS` | how long a location may wait for its route (defaults 700, 1500) |
//! | `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG` | log level (the lines are Powertools-format JSON: see [`logging`]) |
//! | `POWERTOOLS_SERVICE_NAME` | the logs' `service` key (default: the function's name) |
//! | `AWS_XRAY_DAEMON_ADDRESS` | the X-Ray daemon (set by Lambda with `Tracing: Active`): subsegments are sent to it ([`xray`]) |
//!
//! # Features
//! Each function crate enables what it uses, so it links nothing else (SAM builds each function
//! on its own):
//!
//! | feature | gives | links | functions |
//! |---|---|---|---|
//! | (none) | [`init_tracing`], [`run`], [`aws_config`], [`ConfigError`] | the runtime, `aws-config` | all |
//! | `store` | `table_names`, `dynamo_store` | the DynamoDB store and client | all but the authorizer |
//! | `ssm` | reading SSM parameters | `aws-sdk-ssm` | (through the two below) |
//! | `jwt` | `verifier` | `ssm`, `rnd-jwks` | `ws-authorizer`, `http-api` |
//! | `authorizer` | `serve_authorizer` | `jwt`, the handlers | `ws-authorizer` |
//! | `websocket` | `serve_connect`, `serve_disconnect`, `serve_routes` | `store`, the handlers | `ws-connect`, `ws-disconnect`, `ws-unsubscribe`, `ws-default` |
//! | `notifier` | `management_endpoint` | the Management API client | (through the two below) |
//! | `posting` | `serve_posting_routes` | `websocket`, `notifier` | `ws-subscribe`, `ws-resume`, `ws-driver-location` |
//! | `fanout` | `serve_fanout` | `store`, `notifier`, the handlers | `stream-fanout` |
//! | `push` | `serve_push` | `store`, `ssm`, the FCM adapter, the SQS client | `stream-push` |
//! | `routing` | routed ETAs in `serve_posting_routes` | `posting`, `ssm`, the routing adapters | `ws-driver-location` |

#[cfg(any(feature = "store", feature = "notifier", feature = "authorizer"))]
use std::sync::Arc;

#[cfg(any(feature = "websocket", feature = "fanout", feature = "push"))]
use chrono::Utc;
#[cfg(any(
    feature = "authorizer",
    feature = "websocket",
    feature = "fanout",
    feature = "push"
))]
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[cfg(feature = "websocket")]
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;

pub use lambda_runtime;

pub mod logging;
pub use logging::run;
pub mod xray;

#[cfg(feature = "jwt")]
mod jwt;
#[cfg(feature = "jwt")]
pub use jwt::{Parameters, verifier, verifier_from};

/// A configuration problem found at cold start. The function cannot serve; Lambda reports the
/// init error.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is missing.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// A variable has an unusable value.
    #[error("environment variable {0} is invalid: {1}")]
    Invalid(&'static str, String),
    /// The JWT verification keys are unusable.
    #[error("JWT verification is misconfigured")]
    Jwt(#[from] rnd_domain::identity::ConfigError),
    /// The HS256 secret is the public development secret (`DEV_JWT_SECRET`), which anyone can
    /// sign with; only a local run may opt in (`JWT_ALLOW_DEV_SECRET=true`).
    #[error("the JWT secret is the public development secret; configure the stage's own")]
    DevSecret,
    /// The JWKS at `JWT_JWKS_URL` could not be fetched or holds no usable key.
    #[cfg(feature = "jwt")]
    #[error("the JWKS could not be loaded")]
    Jwks(#[source] rnd_jwks::JwksError),
    /// A secret could not be read from SSM.
    #[error("could not read the secret in SSM parameter {name}")]
    Ssm {
        /// The parameter's name.
        name: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

#[cfg(any(
    feature = "store",
    feature = "jwt",
    feature = "notifier",
    feature = "push",
    feature = "routing"
))]
fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(any(feature = "store", feature = "notifier", feature = "push"))]
fn required(name: &'static str) -> Result<String, ConfigError> {
    var(name).ok_or(ConfigError::Missing(name))
}

/// Installs the log subscriber: Powertools-format JSON lines on stdout ([`logging`]), at the
/// level of `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `INFO`. Always JSON, whatever
/// `AWS_LAMBDA_LOG_FORMAT` says: the template configures `LogFormat: JSON`, under which Lambda
/// filters application lines by their `level` and reads their RFC 3339 `timestamp`.
///
/// Where Lambda runs the X-Ray daemon (`AWS_XRAY_DAEMON_ADDRESS`), the handlers' steps and
/// AWS calls are also sent to it as subsegments of the invocation's trace ([`xray`]).
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // A second call (tests) keeps the first subscriber.
    use tracing_subscriber::Layer as _;
    let xray = xray::XrayLayer::from_env()
        .map(|l| l.with_filter(tracing_subscriber::filter::filter_fn(xray::interesting)));
    let _ = tracing_subscriber::registry()
        .with(logging::stdout_layer())
        .with(xray)
        .try_init();
}

/// The shared AWS configuration (region, credentials) from the Lambda environment.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The table names from `CONNECTIONS_TABLE` and `ORDERS_TABLE`.
#[cfg(feature = "store")]
pub fn table_names() -> Result<rnd_store_dynamodb::TableNames, ConfigError> {
    Ok(rnd_store_dynamodb::TableNames {
        connections: required("CONNECTIONS_TABLE")?,
        orders: required("ORDERS_TABLE")?,
    })
}

/// The DynamoDB store, its client built once from `config` (honouring `DYNAMODB_ENDPOINT`).
#[cfg(feature = "store")]
pub fn dynamo_store(
    config: &aws_config::SdkConfig,
) -> Result<Arc<rnd_store_dynamodb::DynamoStore>, ConfigError> {
    let mut builder = aws_sdk_dynamodb::config::Builder::from(config);
    if let Some(endpoint) = var("DYNAMODB_ENDPOINT") {
        builder = builder.endpoint_url(endpoint);
    }
    let client = aws_sdk_dynamodb::Client::from_conf(builder.build());
    Ok(Arc::new(rnd_store_dynamodb::DynamoStore::new(
        client,
        table_names()?,
    )))
}

/// Reads the SecureString parameter `name`, decrypted.
#[cfg(feature = "ssm")]
async fn ssm_secret(config: &aws_config::SdkConfig, name: &str) -> Result<String, ConfigError> {
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| ConfigError::Ssm {
        name: name.to_owned(),
        source,
    };
    let output = aws_sdk_ssm::Client::new(config)
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| failed(Box::new(e)))?;
    output
        .parameter
        .and_then(|p| p.value)
        .ok_or_else(|| failed("the parameter has no value".into()))
}

/// Serves the `$connect` REQUEST authorizer.
#[cfg(feature = "authorizer")]
pub async fn serve_authorizer() -> Result<(), Error> {
    use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
    init_tracing();
    let verifier = verifier(&aws_config().await).await?;
    run(service_fn(
        move |event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| {
            let verifier = Arc::clone(&verifier);
            async move {
                Ok::<_, Error>(
                    rnd_handlers::authorizer::authorize(&*verifier, &event.payload).await,
                )
            }
        },
    ))
    .await
}

/// Serves a WebSocket event handler that needs only the store (built once per cold start).
#[cfg(feature = "websocket")]
async fn serve_with_store<F, Fut>(handle: F) -> Result<(), Error>
where
    F: Fn(Arc<rnd_store_dynamodb::DynamoStore>, ApiGatewayWebsocketProxyRequest) -> Fut,
    Fut: std::future::Future<Output = aws_lambda_events::apigw::ApiGatewayProxyResponse>,
{
    init_tracing();
    let store = dynamo_store(&aws_config().await)?;
    let handle = &handle;
    run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            let response = handle(Arc::clone(&store), event.payload);
            async move { Ok::<_, Error>(response.await) }
        },
    ))
    .await
}

/// Serves `$connect`.
#[cfg(feature = "websocket")]
pub async fn serve_connect() -> Result<(), Error> {
    serve_with_store(|store, event| async move {
        rnd_handlers::connection::connect(&*store, &event, Utc::now()).await
    })
    .await
}

/// Serves `$disconnect`.
#[cfg(feature = "websocket")]
pub async fn serve_disconnect() -> Result<(), Error> {
    serve_with_store(|store, event| async move {
        rnd_handlers::connection::disconnect(&*store, &event, Utc::now()).await
    })
    .await
}

/// Serves a message route that replays nothing (`unsubscribe:order`, `driver:location`,
/// `$default`): the routes share one dispatcher, each deployed as its own function so each gets
/// only the permissions its route needs.
#[cfg(feature = "websocket")]
pub async fn serve_routes() -> Result<(), Error> {
    init_tracing();
    serve_message_routes(&aws_config().await, None).await
}

/// Serves a message route that posts to connections: the replays of what a client missed
/// (`resume`, `subscribe:order`) and the fast path of `driver:location` (the location posted to
/// the order's room, with the fan-out's delivery settings from the environment: see
/// `FanoutConfig::from_env`): as [`serve_routes`], with the Management API client they post
/// through.
#[cfg(feature = "posting")]
pub async fn serve_posting_routes() -> Result<(), Error> {
    init_tracing();
    let config = aws_config().await;
    let notifier = management_notifier(&config)?;
    serve_message_routes(&config, Some(notifier)).await
}

/// Serves the message routes over the store, posting through `notifier` when given one.
#[cfg(feature = "websocket")]
async fn serve_message_routes(
    config: &aws_config::SdkConfig,
    notifier: Option<Arc<dyn rnd_domain::ports::Notifier>>,
) -> Result<(), Error> {
    use rnd_handlers::routes::{RouteConfig, Routes};
    let store = dynamo_store(config)?;
    let (estimator, routing) = eta_estimator(config).await?;
    let mut routes = Routes::new(store, estimator, RouteConfig::from_env());
    if let Some(notifier) = notifier {
        routes = routes
            .posting_through(notifier)
            .delivering_with(rnd_handlers::fanout::FanoutConfig::from_env());
    }
    let routes = Arc::new(routes);
    // The routed ETA's counters as they were after the last invocation (one at a time per
    // container): a message that called, wanted or skipped the provider prints one EMF line.
    let last = Arc::new(std::sync::Mutex::new(
        routing
            .as_ref()
            .map(|stats| stats.snapshot())
            .unwrap_or_default(),
    ));
    run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            let routes = Arc::clone(&routes);
            let routing = routing.clone();
            let last = Arc::clone(&last);
            async move {
                let now = Utc::now();
                let answer = routes.handle(&event.payload, now).await;
                if let Some(stats) = routing {
                    let counts = stats.snapshot();
                    let mut last = last
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Some(line) = counts.emf_since(&last, now) {
                        println!("{line}");
                    }
                    *last = counts;
                }
                Ok::<_, Error>(answer)
            }
        },
    ))
    .await
}

/// The API Gateway Management API endpoint the fan-out and the posting routes post to: `WEBSOCKET_API_ENDPOINT` when
/// set, else `https://{WEBSOCKET_DOMAIN_NAME}/{WEBSOCKET_STAGE}`. Fails when neither is set.
#[cfg(feature = "notifier")]
pub fn management_endpoint() -> Result<String, ConfigError> {
    if let Some(endpoint) = var("WEBSOCKET_API_ENDPOINT") {
        return Ok(endpoint);
    }
    Ok(rnd_notifier_apigw::management_endpoint(
        &required("WEBSOCKET_DOMAIN_NAME")?,
        &required("WEBSOCKET_STAGE")?,
    ))
}

/// The Management API notifier at [`management_endpoint`].
#[cfg(feature = "notifier")]
fn management_notifier(
    config: &aws_config::SdkConfig,
) -> Result<Arc<rnd_notifier_apigw::ApiGatewayNotifier>, ConfigError> {
    Ok(Arc::new(
        rnd_notifier_apigw::ApiGatewayNotifier::from_sdk_config(
            config,
            &management_endpoint()?,
            rnd_notifier_apigw::DEFAULT_ATTEMPT_TIMEOUT,
        ),
    ))
}

/// Serves the orders table's stream fan-out: the store and the Management API notifier are
/// built once; each batch's metrics are printed to stdout as one CloudWatch Embedded Metric
/// Format line, and its partial failures returned as `batchItemFailures`.
#[cfg(feature = "fanout")]
pub async fn serve_fanout() -> Result<(), Error> {
    init_tracing();
    let config = aws_config().await;
    let store = dynamo_store(&config)?;
    let notifier = management_notifier(&config)?;
    let settings = rnd_handlers::fanout::FanoutConfig::from_env();
    run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::dynamodb::Event>| {
            let (store, notifier) = (Arc::clone(&store), Arc::clone(&notifier));
            async move {
                let now = Utc::now();
                let outcome = rnd_handlers::fanout::fan_out(
                    &*store,
                    &*notifier,
                    &settings,
                    &event.payload,
                    now,
                )
                .await;
                println!("{}", outcome.metrics.to_emf(now));
                Ok::<_, Error>(outcome.response)
            }
        },
    ))
    .await
}

/// The ETA estimator of the message routes, with its counters when it routes: along a routing
/// provider's routes when the `routing` feature is on and `ETA_PROVIDER` names one, else the
/// offline estimate.
#[cfg(feature = "websocket")]
async fn eta_estimator(config: &aws_config::SdkConfig) -> Result<Estimator, ConfigError> {
    #[cfg(feature = "routing")]
    if let Some(provider) = var("ETA_PROVIDER").filter(|p| p != "none") {
        let routed = routed_eta(config, &provider).await?;
        let stats = routed.stats();
        return Ok((Arc::new(routed), Some(stats)));
    }
    let _ = config;
    Ok((Arc::new(rnd_domain::eta::OfflineEta::default()), None))
}

/// An ETA estimator and, when it routes, its counters.
#[cfg(feature = "websocket")]
type Estimator = (
    Arc<dyn rnd_domain::eta::EtaEstimator>,
    Option<Arc<rnd_handlers::routed_eta::RoutingStats>>,
);

/// [`rnd_handlers::routed_eta::RoutedEta`] over `provider`, configured from the environment.
#[cfg(feature = "routing")]
async fn routed_eta(
    config: &aws_config::SdkConfig,
    provider: &str,
) -> Result<rnd_handlers::routed_eta::RoutedEta, ConfigError> {
    use rnd_handlers::routed_eta::{BreakerSettings, RoutedEta, RoutingBudget};
    fn number<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError> {
        match var(name) {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| ConfigError::Invalid(name, "not a number".into())),
            None => Ok(default),
        }
    }
    let provider: rnd_routing::Provider =
        provider
            .parse()
            .map_err(|e: rnd_routing::UnknownProvider| {
                ConfigError::Invalid("ETA_PROVIDER", e.to_string())
            })?;
    let secret = match var("ROUTING_KEY_PARAMETER") {
        Some(name) if provider.needs_secret() => Some(ssm_secret(config, &name).await?),
        _ => var("ROUTING_KEY"),
    };
    let router_config = rnd_routing::RouterConfig {
        provider,
        base_url: var("ROUTING_BASE_URL"),
        secret,
    };
    let http = rnd_http_client::HttpClient::new(rnd_routing::DEFAULT_REQUEST_TIMEOUT)
        .map_err(|e| ConfigError::Invalid("ETA_PROVIDER", e.to_string()))?;
    let router = router_config
        .build(http)
        .map_err(|e| ConfigError::Invalid("ETA_PROVIDER", e.to_string()))?;
    let defaults = rnd_domain::route::ReroutePolicy::default();
    let policy = rnd_domain::route::ReroutePolicy {
        off_route_m: number("ROUTING_OFF_ROUTE_M", defaults.off_route_m)?,
        min_interval: chrono::Duration::seconds(number(
            "ROUTING_MIN_INTERVAL_SECS",
            defaults.min_interval.num_seconds(),
        )?),
        max_age: chrono::Duration::seconds(number(
            "ROUTING_MAX_AGE_SECS",
            defaults.max_age.num_seconds(),
        )?),
        drift_tolerance: number("ROUTING_DRIFT_TOLERANCE", defaults.drift_tolerance)?,
        ..defaults
    };
    let budget_defaults = RoutingBudget::default();
    let millis = |name, default: std::time::Duration| -> Result<std::time::Duration, ConfigError> {
        number(name, default.as_millis() as u64).map(std::time::Duration::from_millis)
    };
    let budget = RoutingBudget {
        attempt_timeout: millis(
            "ROUTING_ATTEMPT_TIMEOUT_MS",
            budget_defaults.attempt_timeout,
        )?,
        deadline: millis("ROUTING_DEADLINE_MS", budget_defaults.deadline)?,
        ..budget_defaults
    };
    tracing::info!(
        provider = provider.as_str(),
        "ETAs along the provider's routes"
    );
    Ok(RoutedEta::new(
        router,
        rnd_domain::eta::OfflineEta::default(),
        policy,
        budget,
        BreakerSettings::default(),
    ))
}

/// The FCM sender: the service account from `FCM_CREDENTIALS_PARAMETER` (SSM) or
/// `FCM_CREDENTIALS`, to `FCM_ENDPOINT` (default FCM's).
#[cfg(feature = "push")]
async fn fcm_sender(config: &aws_config::SdkConfig) -> Result<rnd_push_fcm::FcmSender, Error> {
    let json = match var("FCM_CREDENTIALS_PARAMETER") {
        Some(name) => ssm_secret(config, &name).await?,
        None => required("FCM_CREDENTIALS")?,
    };
    let account = rnd_push_fcm::ServiceAccount::from_json(&json)?;
    let endpoint = var("FCM_ENDPOINT").unwrap_or_else(|| rnd_push_fcm::DEFAULT_ENDPOINT.into());
    Ok(rnd_push_fcm::FcmSender::new(
        account,
        &endpoint,
        rnd_push_fcm::DEFAULT_REQUEST_TIMEOUT,
    )?)
}

/// Serves the orders table's push consumer: the store, the FCM sender (its service account
/// read from SSM) and the SQS client are built once; each batch's metrics are printed as one
/// EMF line, pushes that still failed after their retries are put on the failure queue, and
/// records that could not be attempted are returned as `batchItemFailures`.
#[cfg(feature = "push")]
pub async fn serve_push() -> Result<(), Error> {
    use rnd_handlers::push::{PushConfig, push_batch};
    init_tracing();
    let config = aws_config().await;
    let store = dynamo_store(&config)?;
    let sender = Arc::new(fcm_sender(&config).await?);
    let queue = var("PUSH_FAILURE_QUEUE_URL");
    let sqs = aws_sdk_sqs::Client::new(&config);
    let settings = PushConfig::from_env();
    run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::dynamodb::Event>| {
            let (store, sender, sqs, queue) = (
                Arc::clone(&store),
                Arc::clone(&sender),
                sqs.clone(),
                queue.clone(),
            );
            async move {
                let now = Utc::now();
                let fetches = sender.token_fetches();
                let mut outcome =
                    push_batch(&*store, &*sender, &settings, &event.payload, now).await;
                outcome.metrics.token_refreshes = sender.token_fetches() - fetches;
                for failed in &outcome.failed_pushes {
                    let Some(queue) = &queue else { break };
                    let body = serde_json::to_string(failed)?;
                    if let Err(e) = sqs
                        .send_message()
                        .queue_url(queue)
                        .message_body(body)
                        .send()
                        .await
                    {
                        tracing::error!(
                            key = %failed.key,
                            error = &e as &dyn std::error::Error,
                            "could not put a failed push on the failure queue"
                        );
                    }
                }
                println!("{}", outcome.metrics.to_emf(now));
                Ok::<_, Error>(outcome.response)
            }
        },
    ))
    .await
}
