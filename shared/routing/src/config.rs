//! Which provider to route with, and building its adapter from configuration.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rnd_domain::route::Router;
use rnd_http_client::HttpClient;

use crate::{GoogleRouter, MapboxRouter, OsrmRouter};

/// A sensible bound for one routing call, connecting included: providers answer a city route
/// in well under a second, and a location update must not wait on a slow one.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// A routing provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// A self-hosted OSRM.
    Osrm,
    /// Mapbox Directions v5 (`driving-traffic`).
    Mapbox,
    /// Google's Routes API (`TRAFFIC_AWARE`).
    Google,
}

impl Provider {
    /// Its name in configuration, logs and metrics: `osrm`, `mapbox`, `google`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Osrm => "osrm",
            Provider::Mapbox => "mapbox",
            Provider::Google => "google",
        }
    }

    /// Its public base URL; `None` for OSRM, which is self-hosted.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Provider::Osrm => None,
            Provider::Mapbox => Some(crate::MAPBOX_DEFAULT_BASE_URL),
            Provider::Google => Some(crate::GOOGLE_DEFAULT_BASE_URL),
        }
    }

    /// Whether it needs a secret (Mapbox's access token, Google's API key).
    pub fn needs_secret(self) -> bool {
        !matches!(self, Provider::Osrm)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider name that is none of `osrm`, `mapbox`, `google`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown routing provider {0:?} (expected osrm, mapbox or google)")]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;

    /// `osrm`, `mapbox` or `google`, in any case, surrounding blanks ignored.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "osrm" => Ok(Provider::Osrm),
            "mapbox" => Ok(Provider::Mapbox),
            "google" => Ok(Provider::Google),
            _ => Err(UnknownProvider(name.to_owned())),
        }
    }
}

/// Why a router cannot be built. Never holds the base URL or the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// The base URL is not an absolute http(s) URL.
    #[error("the {0} base URL is not an absolute http(s) URL")]
    BaseUrl(&'static str),
    /// The provider has no public base URL (OSRM) and none was given.
    #[error("the {0} base URL is required")]
    MissingBaseUrl(&'static str),
    /// The provider needs a key or token and none (or an empty one) was given.
    #[error("the {0} access key or token is required")]
    MissingSecret(&'static str),
}

/// Which provider, where, and with which secret: what a deployment configures.
#[derive(Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// The provider.
    pub provider: Provider,
    /// Its base URL; `None` for the provider's public one.
    pub base_url: Option<String>,
    /// Mapbox's access token or Google's API key; unused by OSRM.
    pub secret: Option<String>,
}

impl fmt::Debug for RouterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterConfig")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl RouterConfig {
    /// The adapter for this configuration, calling out with `http` (its timeout bounds each
    /// call: [`DEFAULT_REQUEST_TIMEOUT`] is a sensible one).
    ///
    /// Fails when the base URL is missing (OSRM) or not an absolute http(s) URL, or when
    /// Mapbox or Google gets no secret.
    pub fn build(&self, http: HttpClient) -> Result<Arc<dyn Router>, SetupError> {
        let name = self.provider.as_str();
        let base_url = self
            .base_url
            .as_deref()
            .filter(|url| !url.trim().is_empty())
            .or(self.provider.default_base_url())
            .ok_or(SetupError::MissingBaseUrl(name))?;
        let secret = self.secret.as_deref().filter(|s| !s.is_empty());
        if self.provider.needs_secret() && secret.is_none() {
            return Err(SetupError::MissingSecret(name));
        }
        let secret = secret.unwrap_or_default();
        Ok(match self.provider {
            Provider::Osrm => Arc::new(OsrmRouter::new(base_url, http)?),
            Provider::Mapbox => Arc::new(MapboxRouter::new(base_url, secret, http)?),
            Provider::Google => Arc::new(GoogleRouter::new(base_url, secret, http)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http() -> HttpClient {
        HttpClient::new(DEFAULT_REQUEST_TIMEOUT).unwrap()
    }

    #[test]
    fn provider_names_parse_in_any_case_and_others_are_refused() {
        assert_eq!("osrm".parse(), Ok(Provider::Osrm));
        assert_eq!(" Mapbox ".parse(), Ok(Provider::Mapbox));
        assert_eq!("GOOGLE".parse(), Ok(Provider::Google));
        assert_eq!(
            "here".parse::<Provider>(),
            Err(UnknownProvider("here".into()))
        );
        for provider in [Provider::Osrm, Provider::Mapbox, Provider::Google] {
            assert_eq!(provider.to_string().parse(), Ok(provider));
        }
    }

    #[tokio::test]
    async fn osrm_needs_a_base_url_and_the_others_default_to_their_public_one() {
        let osrm = RouterConfig {
            provider: Provider::Osrm,
            base_url: None,
            secret: None,
        };
        assert_eq!(
            osrm.build(http()).err(),
            Some(SetupError::MissingBaseUrl("osrm"))
        );
        let osrm = RouterConfig {
            base_url: Some("http://osrm:5000".into()),
            ..osrm
        };
        assert_eq!(osrm.build(http()).unwrap().provider(), "osrm");
        let mapbox = RouterConfig {
            provider: Provider::Mapbox,
            base_url: None,
            secret: Some("pk.test".into()),
        };
        assert_eq!(mapbox.build(http()).unwrap().provider(), "mapbox");
        let google = RouterConfig {
            provider: Provider::Google,
            base_url: None,
            secret: Some("AIza-test".into()),
        };
        assert_eq!(google.build(http()).unwrap().provider(), "google");
    }

    #[tokio::test]
    async fn mapbox_and_google_need_a_secret_and_a_bad_base_url_is_refused() {
        for provider in [Provider::Mapbox, Provider::Google] {
            let config = RouterConfig {
                provider,
                base_url: None,
                secret: Some(String::new()),
            };
            assert_eq!(
                config.build(http()).err(),
                Some(SetupError::MissingSecret(provider.as_str()))
            );
        }
        let config = RouterConfig {
            provider: Provider::Osrm,
            base_url: Some("not a url".into()),
            secret: None,
        };
        assert_eq!(
            config.build(http()).err(),
            Some(SetupError::BaseUrl("osrm"))
        );
    }

    #[test]
    fn the_configurations_debug_hides_the_secret() {
        let config = RouterConfig {
            provider: Provider::Google,
            base_url: None,
            secret: Some("AIza-very-secret".into()),
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
    }
}
