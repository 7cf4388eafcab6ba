//! Who may reach the stack. By default it listens on loopback only. Listening on any other
//! address needs `--allow-remote` and a secret of its own (the development secret is public:
//! anyone could mint an admin token), and then the stack serves only what AWS would: the
//! dev-only routes (`POST /dev/token`, `GET /dev/metrics`) and the Management API
//! (`@connections`, which AWS guards with IAM) are not served at all.
//!
//! On loopback those routes answer only requests whose `Host` names a loopback host, so a web
//! page the browser loaded from elsewhere cannot reach them by pointing its own name at
//! 127.0.0.1 (DNS rebinding).

use std::net::IpAddr;

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{Config, StartError};

/// What the stack serves, decided from where it listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exposure {
    /// Loopback only: everything, the dev-only routes to loopback `Host`s.
    Loopback,
    /// Reachable from elsewhere (`--allow-remote`): no dev-only route, no Management API.
    Remote,
}

impl Exposure {
    /// The exposure `config` asks for, or why the stack must not start with it.
    pub(crate) fn of(config: &Config) -> Result<Exposure, StartError> {
        if is_loopback(&config.host) {
            return Ok(Exposure::Loopback);
        }
        if !config.allow_remote {
            return Err(StartError::RemoteNotAllowed(config.host.clone()));
        }
        if config.jwt_secret.trim() == rnd_domain::identity::DEV_JWT_SECRET {
            return Err(StartError::RemoteWithTheDevSecret);
        }
        if config.post_over_http {
            return Err(StartError::RemoteWithoutManagementApi);
        }
        Ok(Exposure::Remote)
    }
}

/// Whether `host` (a name or an address, without a port) is this machine's loopback.
pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host of a `Host` header value, without its port.
fn host_of(value: &str) -> &str {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match value.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => value,
    }
}

/// Middleware: answers 403 unless the request's `Host` names a loopback host.
pub(crate) async fn loopback_host_only(request: Request, next: Next) -> Response {
    let named_loopback = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| is_loopback(host_of(v)));
    if named_loopback {
        next.run(request).await
    } else {
        (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "this route answers only requests addressed to localhost\n",
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_addresses_are_told_from_others() {
        for host in [
            "127.0.0.1",
            "127.8.9.1",
            "::1",
            "[::1]",
            "localhost",
            "app.localhost",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "0.0.0.0",
            "::",
            "192.168.1.20",
            "example.com",
            "localhost.evil.com",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn the_host_header_is_read_without_its_port() {
        assert_eq!(host_of("127.0.0.1:9001"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9001"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
        assert_eq!(host_of("evil.example:80"), "evil.example");
    }
}
