//! The HTTP client our adapters call other services with (FCM's two endpoints, an identity
//! provider's JWKS, the routing providers): hyper's pooled client over rustls (the `ring` provider, the system's root
//! certificates) for `https`, plain TCP for `http` (emulators and contract servers in tests).
//! Every exchange, connecting and reading the answer included, is bounded by one timeout, and
//! an answer's body by [`MAX_ANSWER_BYTES`]. [`google_rpc`] reads the error body Google's APIs
//! answer with.

pub mod google_rpc;

use std::time::Duration;

use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rnd_domain::ports::BoxError;

/// Largest answer body read (FCM's and the token endpoint's are well under 1 KiB, a JWKS a few
/// KiB).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// How an exchange failed before an answer was read.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The request could not be built (a header value that is not one).
    #[error("the request could not be built")]
    Request(#[source] hyper::http::Error),
    /// Connecting, TLS, or sending failed.
    #[error("the request could not be sent")]
    Send(#[source] hyper_util::client::legacy::Error),
    /// Reading the answer failed, or it was larger than [`MAX_ANSWER_BYTES`].
    #[error("the answer could not be read")]
    Body(#[source] BoxError),
    /// No whole answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// An answer: its status, its `Retry-After`, its `Cache-Control` and its body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub max_age: Option<Duration>,
    pub body: Bytes,
}

/// An [`Answer`] with every header it came with, for callers that read more than
/// `Retry-After` and `Cache-Control` (a provider's own rate-limit headers).
#[derive(Debug)]
pub struct Reply {
    pub answer: Answer,
    pub headers: HeaderMap,
}

/// A pooled HTTP/1.1 client; cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client whose exchanges each take at most `timeout`.
    ///
    /// Fails when the system's root certificates cannot be loaded (none found).
    pub fn new(timeout: Duration) -> std::io::Result<Self> {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(timeout));
        // The provider is named, not taken from the process default: the AWS SDK in the same
        // binary enables rustls' aws-lc provider too, and with two compiled in rustls picks
        // none by itself.
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())?
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Self { client, timeout })
    }

    /// POSTs `body` as `content_type` to `uri`, with `authorization` when given, and reads
    /// the whole answer, whatever its status.
    ///
    /// Fails with a [`TransportError`] when no whole answer arrives within the timeout.
    pub async fn post(
        &self,
        uri: &Uri,
        content_type: &'static str,
        authorization: Option<&HeaderValue>,
        body: Bytes,
    ) -> Result<Answer, TransportError> {
        let mut headers = HeaderMap::new();
        if let Some(authorization) = authorization {
            headers.insert(header::AUTHORIZATION, authorization.clone());
        }
        Ok(self
            .post_with(uri, content_type, &headers, body)
            .await?
            .answer)
    }

    /// POSTs `body` as `content_type` to `uri` with `headers` besides (an API key header, a
    /// field mask), and reads the whole answer and its headers, whatever its status. Mark a
    /// secret header value sensitive ([`HeaderValue::set_sensitive`]) so its `Debug` hides it.
    ///
    /// Fails with a [`TransportError`] when no whole answer arrives within the timeout.
    pub async fn post_with(
        &self,
        uri: &Uri,
        content_type: &'static str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Reply, TransportError> {
        let mut request = Request::post(uri.clone())
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ACCEPT, "application/json");
        for (name, value) in headers {
            request = request.header(name, value.clone());
        }
        let request = request
            .body(Full::new(body))
            .map_err(TransportError::Request)?;
        self.timed(request).await
    }

    /// GETs `uri` (accepting JSON) and reads the whole answer, whatever its status.
    ///
    /// Fails with a [`TransportError`] when no whole answer arrives within the timeout.
    pub async fn get(&self, uri: &Uri) -> Result<Answer, TransportError> {
        Ok(self.get_with(uri, &HeaderMap::new()).await?.answer)
    }

    /// GETs `uri` (accepting JSON) with `headers` besides, and reads the whole answer and its
    /// headers, whatever its status.
    ///
    /// Fails with a [`TransportError`] when no whole answer arrives within the timeout.
    pub async fn get_with(&self, uri: &Uri, headers: &HeaderMap) -> Result<Reply, TransportError> {
        let mut request = Request::get(uri.clone()).header(header::ACCEPT, "application/json");
        for (name, value) in headers {
            request = request.header(name, value.clone());
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(TransportError::Request)?;
        self.timed(request).await
    }

    /// [`Self::exchange`] within the timeout.
    async fn timed(&self, request: Request<Full<Bytes>>) -> Result<Reply, TransportError> {
        tokio::time::timeout(self.timeout, self.exchange(request))
            .await
            .map_err(|_| TransportError::Timeout(self.timeout))?
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<Reply, TransportError> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(TransportError::Send)?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(TransportError::Body)?
            .to_bytes();
        Ok(Reply {
            answer: Answer {
                status: parts.status,
                retry_after: retry_after(&parts.headers, Utc::now()),
                max_age: max_age(&parts.headers),
                body,
            },
            headers: parts.headers,
        })
    }
}

/// The wait a `Retry-After` header asks for at `now`: delay-seconds, or an HTTP date (a date
/// already past asks for no wait). `None` without the header or when it does not parse.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // IMF-fixdate (`Wed, 21 Oct 2026 07:28:00 GMT`) is RFC 2822 syntax.
    let date = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (date.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// How long `Cache-Control` lets the answer be kept: its `max-age`, zero for `no-store` or
/// `no-cache`, `None` when it says neither.
pub fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::CACHE_CONTROL)?.to_str().ok()?;
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache")
        {
            return Some(Duration::ZERO);
        }
        if let Some((name, seconds)) = directive.split_once('=')
            && name.trim().eq_ignore_ascii_case("max-age")
        {
            age = seconds
                .trim()
                .trim_matches('"')
                .parse()
                .ok()
                .map(Duration::from_secs);
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_retry_after(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn retry_after_in_seconds_is_that_many_seconds() {
        assert_eq!(
            retry_after(&with_retry_after("120"), now()),
            Some(Duration::from_secs(120))
        );
    }

    #[test]
    fn retry_after_as_an_http_date_is_the_time_until_then() {
        // GIVEN a date 90 s after now WHEN read THEN the wait is 90 s
        assert_eq!(
            retry_after(&with_retry_after("Wed, 21 Oct 2026 07:29:30 GMT"), now()),
            Some(Duration::from_secs(90))
        );
        // AND a date already past asks for no wait
        assert_eq!(
            retry_after(&with_retry_after("Wed, 21 Oct 2026 07:00:00 GMT"), now()),
            Some(Duration::ZERO)
        );
    }

    fn with_cache_control(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn cache_control_max_age_is_how_long_an_answer_may_be_kept() {
        assert_eq!(
            max_age(&with_cache_control("public, max-age=3600, must-revalidate")),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            max_age(&with_cache_control("no-store")),
            Some(Duration::ZERO)
        );
        assert_eq!(max_age(&with_cache_control("public")), None);
        assert_eq!(max_age(&HeaderMap::new()), None);
    }

    #[test]
    fn a_missing_or_unreadable_retry_after_is_none() {
        assert_eq!(retry_after(&HeaderMap::new(), now()), None);
        assert_eq!(retry_after(&with_retry_after("soon"), now()), None);
    }
}
