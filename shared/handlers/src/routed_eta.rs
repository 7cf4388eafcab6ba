//! The ETA along a routing provider's route: the [`EtaEstimator`] `driver:location` uses when a
//! provider (OSRM, Mapbox, Google: `rnd-routing`) is configured.
//!
//! A routing call costs far more than the location it serves, so it is made rarely: on the first
//! location of a leg (after the assignment, through the chef; after the pickup, to the
//! customer), then only when [`ReroutePolicy`] says the driver left the route, the route is old
//! or the driver's pace drifted from it. Between calls the driver is followed along the route
//! kept on the live item ([`rnd_domain::route::StoredRoute`]).
//!
//! A call never holds a location's acknowledgement longer than [`RoutingBudget::deadline`]:
//! each attempt has its own timeout, a transient failure is retried [`RoutingBudget::retries`]
//! times (once by default) if the deadline allows, and a [`Breaker`] stops calling a provider that keeps failing (for
//! [`BreakerSettings::open_for`], then one trial call). An order whose call failed is not
//! routed again for [`ReroutePolicy::min_interval`]. Whenever there is no route, the offline
//! estimate answers, with `etaSource: estimate`. Failures are logged with the provider and the
//! kind of error (the adapters keep keys out of their errors) and counted in [`RoutingStats`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rnd_domain::eta::{EtaEstimate, EtaEstimator, EtaRequest, OfflineEta};
use rnd_domain::route::{
    ReroutePolicy, RouteDecision, RouteLeg, RouteRequest, Router, RoutingError, StoredRoute,
};
use tokio::time::Instant;

/// How long a location may wait for its route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutingBudget {
    /// One attempt's timeout.
    pub attempt_timeout: Duration,
    /// All attempts together; a retry starts only if a whole attempt still fits.
    pub deadline: Duration,
    /// Retries after a transient failure (a timeout, a 5xx), deadline permitting.
    pub retries: u32,
}

impl Default for RoutingBudget {
    fn default() -> Self {
        Self {
            attempt_timeout: Duration::from_millis(700),
            deadline: Duration::from_millis(1_500),
            retries: 1,
        }
    }
}

/// When the breaker opens, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Failed calls in a row that open it.
    pub failures_to_open: u32,
    /// How long it stays open before one trial call.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures_to_open: 5,
            open_for: Duration::from_secs(30),
        }
    }
}

/// A circuit breaker for one provider: closed (calls go), open (no calls until a moment), or
/// half-open (one trial call is out; its outcome closes or reopens it).
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    state: Mutex<BreakerState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BreakerState {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            state: Mutex::new(BreakerState::Closed { failures: 0 }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a call may go now (taking the trial call when the open time is over).
    pub fn allow(&self) -> bool {
        let mut state = self.state();
        match *state {
            BreakerState::Closed { .. } => true,
            BreakerState::Open { until } if Instant::now() >= until => {
                *state = BreakerState::HalfOpen;
                true
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen => false,
        }
    }

    /// A call succeeded (or failed for a reason that is not the provider's: no route).
    pub fn succeeded(&self) {
        *self.state() = BreakerState::Closed { failures: 0 };
    }

    /// A call failed; returns whether this opened the breaker.
    pub fn failed(&self) -> bool {
        let mut state = self.state();
        let failures = match *state {
            BreakerState::Closed { failures } => failures + 1,
            BreakerState::HalfOpen => self.settings.failures_to_open,
            BreakerState::Open { .. } => return false,
        };
        if failures >= self.settings.failures_to_open {
            *state = BreakerState::Open {
                until: Instant::now() + self.settings.open_for,
            };
            true
        } else {
            *state = BreakerState::Closed { failures };
            false
        }
    }
}

/// What the routed estimator did, since it started.
#[derive(Debug, Default)]
pub struct RoutingStats {
    /// Routing calls made (each attempt).
    pub calls: AtomicU64,
    /// Locations that got a new route.
    pub routed: AtomicU64,
    /// Locations followed along a kept route.
    pub followed: AtomicU64,
    /// Locations answered by the offline estimate (no leg, no route, or a failed call).
    pub estimated: AtomicU64,
    /// Calls that failed.
    pub failures: AtomicU64,
    /// Locations that wanted a route while the breaker was open.
    pub short_circuited: AtomicU64,
}

/// [`RoutingStats`] at one moment (`GET /dev/metrics` serves it as `routing`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutingCounts {
    /// Routing calls made (each attempt): what a provider bills.
    pub calls: u64,
    /// Locations that got a new route.
    pub routed: u64,
    /// Locations followed along a kept route.
    pub followed: u64,
    /// Locations answered by the offline estimate.
    pub estimated: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Locations that wanted a route while the breaker was open.
    pub short_circuited: u64,
}

/// The `Function` dimension of the routed ETA's EMF metrics.
pub const METRICS_FUNCTION: &str = "driver:location";

impl RoutingCounts {
    /// What the estimator did since `before`, as one EMF line at `at` (`RoutingCalls`,
    /// `Routed`, `Followed`, `Estimated`, `RoutingFailures`, `ShortCircuited`, each a count;
    /// namespace `RndRealtime`, dimension `Function` = `driver:location`); `None` when no call
    /// was made, wanted or cut short (a location followed along its route, the usual case,
    /// prints nothing).
    pub fn emf_since(&self, before: &RoutingCounts, at: DateTime<Utc>) -> Option<String> {
        let delta = |now: u64, then: u64| now.saturating_sub(then);
        let calls = delta(self.calls, before.calls);
        let estimated = delta(self.estimated, before.estimated);
        let short = delta(self.short_circuited, before.short_circuited);
        if calls == 0 && estimated == 0 && short == 0 {
            return None;
        }
        let counts = [
            ("RoutingCalls", calls),
            ("Routed", delta(self.routed, before.routed)),
            ("Followed", delta(self.followed, before.followed)),
            ("Estimated", estimated),
            ("RoutingFailures", delta(self.failures, before.failures)),
            ("ShortCircuited", short),
        ]
        .map(|(name, value)| (name.to_owned(), value));
        Some(crate::stream::emf_line(METRICS_FUNCTION, &counts, &[], at))
    }
}

impl RoutingStats {
    /// The counters now.
    pub fn snapshot(&self) -> RoutingCounts {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RoutingCounts {
            calls: load(&self.calls),
            routed: load(&self.routed),
            followed: load(&self.followed),
            estimated: load(&self.estimated),
            failures: load(&self.failures),
            short_circuited: load(&self.short_circuited),
        }
    }
}

/// At most this many orders are remembered as "failed recently" (a provider down for every
/// order must not grow memory without bound; the breaker covers that case).
const MAX_COOLING_ORDERS: usize = 10_000;

/// The ETA along a provider's route, falling back to the offline estimate.
pub struct RoutedEta {
    router: Arc<dyn Router>,
    offline: OfflineEta,
    policy: ReroutePolicy,
    budget: RoutingBudget,
    breaker: Breaker,
    stats: Arc<RoutingStats>,
    /// Orders whose last call failed, and when it did: not routed again before
    /// `policy.min_interval`.
    cooling: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl std::fmt::Debug for RoutedEta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedEta")
            .field("provider", &self.router.provider())
            .field("policy", &self.policy)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl RoutedEta {
    /// Routes with `router` under `policy` and `budget`, breaking after `breaker` failures;
    /// `offline` answers whenever there is no route.
    pub fn new(
        router: Arc<dyn Router>,
        offline: OfflineEta,
        policy: ReroutePolicy,
        budget: RoutingBudget,
        breaker: BreakerSettings,
    ) -> Self {
        Self {
            router,
            offline,
            policy,
            budget,
            breaker: Breaker::new(breaker),
            stats: Arc::default(),
            cooling: Mutex::default(),
        }
    }

    /// Its counters (shared: the bench and the metrics read them).
    pub fn stats(&self) -> Arc<RoutingStats> {
        Arc::clone(&self.stats)
    }

    fn cooling(&self) -> std::sync::MutexGuard<'_, HashMap<String, DateTime<Utc>>> {
        self.cooling
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The route for `request`, within the budget: attempts until one succeeds, the error is
    /// not transient, or another attempt would not fit the deadline.
    async fn call(&self, request: &RouteRequest) -> Result<rnd_domain::route::Route, RoutingError> {
        let started = Instant::now();
        let mut retries = self.budget.retries;
        loop {
            self.stats.calls.fetch_add(1, Ordering::Relaxed);
            let result =
                match tokio::time::timeout(self.budget.attempt_timeout, self.router.route(request))
                    .await
                {
                    Ok(result) => result,
                    Err(_) => Err(RoutingError::Timeout),
                };
            match result {
                Err(e)
                    if e.is_transient()
                        && retries > 0
                        && started.elapsed() + self.budget.attempt_timeout
                            <= self.budget.deadline
                        && !matches!(e, RoutingError::RateLimited { .. }) =>
                {
                    retries -= 1;
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(provider = self.router.provider(), error = %e, "routing attempt failed; retrying");
                }
                other => return other,
            }
        }
    }

    fn estimated(&self, offline: EtaEstimate) -> EtaEstimate {
        self.stats.estimated.fetch_add(1, Ordering::Relaxed);
        offline
    }
}

#[async_trait]
impl EtaEstimator for RoutedEta {
    async fn estimate(&self, r: &EtaRequest) -> EtaEstimate {
        // The offline estimate: the fallback, and the smoothed speed either way.
        let offline = self.offline.compute(r);
        let Some(leg) = RouteLeg::of(r.status) else {
            return self.estimated(offline);
        };
        let reason = match self.policy.decide(r.route.as_ref(), leg, &r.driver, r.now) {
            RouteDecision::Follow(progress) => {
                let route = r.route.as_ref().expect("decide follows only a kept route");
                let (eta, distance_m) = self.offline.along_route(route, progress.fraction, r.now);
                self.stats.followed.fetch_add(1, Ordering::Relaxed);
                return EtaEstimate {
                    eta,
                    distance_m,
                    route: None,
                    ..offline
                };
            }
            RouteDecision::Route(reason) => reason,
        };
        let order = r.order_id.as_str();
        if self
            .cooling()
            .get(order)
            .is_some_and(|failed| r.now - *failed < self.policy.min_interval)
        {
            return self.estimated(offline);
        }
        if !self.breaker.allow() {
            self.stats.short_circuited.fetch_add(1, Ordering::Relaxed);
            return self.estimated(offline);
        }
        let request = RouteRequest {
            from: r.driver,
            via: (leg == RouteLeg::ViaPickup).then_some(r.pickup),
            to: r.dropoff,
        };
        match self.call(&request).await {
            Ok(route) => {
                self.breaker.succeeded();
                self.cooling().remove(order);
                let stored = StoredRoute::keep(&route, leg, self.router.provider(), r.now);
                let (eta, distance_m) = self.offline.along_route(&stored, 0.0, r.now);
                self.stats.routed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    provider = self.router.provider(),
                    order_id = %r.order_id,
                    reason = reason.as_str(),
                    distance_m = route.distance_m,
                    duration_s = route.duration_s,
                    "routed"
                );
                EtaEstimate {
                    eta,
                    distance_m,
                    route: Some(stored),
                    ..offline
                }
            }
            Err(e) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                // No route between the points is the order's, not the provider's failure.
                let opened = if matches!(e, RoutingError::NoRoute) {
                    self.breaker.succeeded();
                    false
                } else {
                    self.breaker.failed()
                };
                {
                    let mut cooling = self.cooling();
                    if cooling.len() >= MAX_COOLING_ORDERS {
                        let cutoff = r.now - self.policy.min_interval;
                        cooling.retain(|_, failed| *failed > cutoff);
                    }
                    if cooling.len() < MAX_COOLING_ORDERS {
                        cooling.insert(order.to_owned(), r.now);
                    }
                }
                tracing::warn!(
                    provider = self.router.provider(),
                    order_id = %r.order_id,
                    reason = reason.as_str(),
                    error = %e,
                    breaker_opened = opened,
                    "routing failed; the offline estimate answers"
                );
                self.estimated(offline)
            }
        }
    }
}
