//! Presence and connection analytics: what a store counts on every connection it opens and
//! closes, and what `GET /presence/{userId}` and `GET /stats/connections` make of it.
//!
//! Nothing here scans connections. A store keeps, per minute, named counters
//! ([`ConnectionEvent::counters`]): connections opened in that minute by role; of those, how many
//! closed how many minutes later; connections closed in that minute, their total duration and a
//! histogram of durations. A connection lives at most [`LIFETIME_MINUTES`] (API Gateway closes it
//! after 2 hours; its rows expire 5 minutes later), so the connections open at the end of minute
//! `m` are those opened in the [`LIFETIME_MINUTES`] minutes up to `m` and not closed by then:
//! one that vanished without `$disconnect` drops out when its TTL passes, as its rows do, and
//! counts as `expired` then. [`connection_stats`] derives everything from those minutes.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};

use crate::identity::{Actor, Role};
use crate::ids::UserId;
use crate::order::Order;

/// Longest a WebSocket connection may live (API Gateway's hard limit).
pub const CONNECTION_MAX_LIFETIME_SECS: i64 = 2 * 60 * 60;
/// Extra time before a connection row expires by TTL (for `$disconnect` to arrive first).
pub const CONNECTION_TTL_GRACE_SECS: i64 = 5 * 60;

/// Minutes a connection can be open at most, its TTL included (2 h + 5 min).
pub const LIFETIME_MINUTES: i64 = (CONNECTION_MAX_LIFETIME_SECS + CONNECTION_TTL_GRACE_SECS) / 60;

/// How many shards a store spreads each minute's counters over, so that a connect storm does not
/// make one item (one DynamoDB partition, 1 000 writes/s) the bottleneck: a connection's counters
/// go to the shard its id hashes to ([`shard_of`]), and readers sum the shards.
pub const STATS_SHARDS: u32 = 8;

/// How long a store keeps a minute's counters: the day the stats read, the lifetime before it,
/// and a day of slack.
pub const STATS_RETENTION_SECS: i64 = 3 * 24 * 60 * 60;

/// Upper bounds (seconds, inclusive) of the session-duration histogram's buckets; one more bucket
/// holds longer sessions.
pub const DURATION_BOUNDS_SECS: [u32; 18] = [
    1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 4500, 5400, 7200,
];

/// The start of the minute holding `at`.
pub fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::minutes(1)).unwrap_or(at)
}

/// The shard (`0..STATS_SHARDS`) a connection's counters go to: FNV-1a of its id, so every
/// counter of one connection lands on one shard and connections spread evenly.
pub fn shard_of(connection_id: &str) -> u32 {
    let hash = connection_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    (hash % u64::from(STATS_SHARDS)) as u32
}

/// The histogram bucket of a session of `duration`.
pub fn duration_bucket(duration: Duration) -> usize {
    let ms = duration.num_milliseconds().max(0);
    DURATION_BOUNDS_SECS
        .iter()
        .position(|&bound| ms <= i64::from(bound) * 1000)
        .unwrap_or(DURATION_BOUNDS_SECS.len())
}

/// A connection opening or closing, as a store counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// A connection of `role` opened `at`.
    Opened {
        /// Its role.
        role: Role,
        /// When.
        at: DateTime<Utc>,
    },
    /// A connection of `role` opened at `opened_at` closed `at`.
    Closed {
        /// Its role.
        role: Role,
        /// When it opened.
        opened_at: DateTime<Utc>,
        /// When it closed.
        at: DateTime<Utc>,
    },
}

/// One counter to add to: `counter` of `minute`, by `delta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterAdd {
    /// The minute whose counters change.
    pub minute: DateTime<Utc>,
    /// The counter's name (a DynamoDB attribute name, an SQLite key).
    pub counter: String,
    /// By how much.
    pub delta: i64,
}

impl ConnectionEvent {
    /// When it happened: the opening, or the closing.
    pub fn at(&self) -> DateTime<Utc> {
        match *self {
            ConnectionEvent::Opened { at, .. } | ConnectionEvent::Closed { at, .. } => at,
        }
    }

    /// The counters this event adds to, by minute. An opening adds `o_{role}` of its minute; a
    /// closing adds `x_{role}_{k}` of the minute it opened (closed `k` minutes after that minute
    /// began) and, of the minute it closed, `c_{role}`, `ms` (its duration) and `h{bucket}`.
    pub fn counters(&self) -> Vec<CounterAdd> {
        match *self {
            ConnectionEvent::Opened { role, at } => vec![CounterAdd {
                minute: minute_of(at),
                counter: format!("o_{role}"),
                delta: 1,
            }],
            ConnectionEvent::Closed {
                role,
                opened_at,
                at,
            } => {
                let opened = minute_of(opened_at);
                let closed = minute_of(at.max(opened_at));
                let after = (closed - opened).num_minutes();
                let duration = at - opened_at;
                vec![
                    CounterAdd {
                        minute: opened,
                        counter: format!("x_{role}_{after}"),
                        delta: 1,
                    },
                    CounterAdd {
                        minute: closed,
                        counter: format!("c_{role}"),
                        delta: 1,
                    },
                    CounterAdd {
                        minute: closed,
                        counter: "ms".to_owned(),
                        delta: duration.num_milliseconds().max(0),
                    },
                    CounterAdd {
                        minute: closed,
                        counter: format!("h{}", duration_bucket(duration)),
                        delta: 1,
                    },
                ]
            }
        }
    }
}

/// Counts by role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoleCounts {
    /// Customers.
    pub customer: u64,
    /// Chefs.
    pub chef: u64,
    /// Drivers.
    pub driver: u64,
    /// Admins.
    pub admin: u64,
}

impl RoleCounts {
    fn slot(&mut self, role: Role) -> &mut u64 {
        match role {
            Role::Customer => &mut self.customer,
            Role::Chef => &mut self.chef,
            Role::Driver => &mut self.driver,
            Role::Admin => &mut self.admin,
        }
    }

    /// The count of `role`.
    pub fn get(&self, role: Role) -> u64 {
        match role {
            Role::Customer => self.customer,
            Role::Chef => self.chef,
            Role::Driver => self.driver,
            Role::Admin => self.admin,
        }
    }

    /// Every role's count together.
    pub fn total(&self) -> u64 {
        self.customer + self.chef + self.driver + self.admin
    }
}

/// One minute's counters, summed over shards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionMinute {
    /// The start of the minute.
    pub minute: DateTime<Utc>,
    /// Connections opened in it.
    pub opened: RoleCounts,
    /// Of those, how many closed how many whole minutes after this minute began.
    pub closed_after: BTreeMap<(Role, i64), u64>,
    /// Connections closed in it (opened whenever).
    pub closed: RoleCounts,
    /// Their total duration, ms.
    pub closed_ms: u64,
    /// Their durations, by [`DURATION_BOUNDS_SECS`] bucket.
    pub durations: [u64; DURATION_BOUNDS_SECS.len() + 1],
}

impl ConnectionMinute {
    /// The minute starting at `minute` from its named counters (as [`ConnectionEvent::counters`]
    /// names them; unknown names and negative values are ignored, so a newer writer's counters
    /// do not break an older reader).
    pub fn from_counters<'a>(
        minute: DateTime<Utc>,
        counters: impl IntoIterator<Item = (&'a str, i64)>,
    ) -> Self {
        let mut m = ConnectionMinute {
            minute,
            ..Self::default()
        };
        for (name, value) in counters {
            m.add(name, value);
        }
        m
    }

    /// Adds `value` to the counter `name` (an unknown name, or a negative value, changes
    /// nothing).
    pub fn add(&mut self, name: &str, value: i64) {
        let Ok(value) = u64::try_from(value) else {
            return;
        };
        let role = |s: &str| s.parse::<Role>().ok();
        if name == "ms" {
            self.closed_ms += value;
        } else if let Some(rest) = name.strip_prefix("o_") {
            if let Some(r) = role(rest) {
                *self.opened.slot(r) += value;
            }
        } else if let Some(rest) = name.strip_prefix("c_") {
            if let Some(r) = role(rest) {
                *self.closed.slot(r) += value;
            }
        } else if let Some(rest) = name.strip_prefix("x_") {
            if let Some((r, k)) = rest.rsplit_once('_')
                && let (Some(r), Ok(k)) = (role(r), k.parse::<i64>())
            {
                *self.closed_after.entry((r, k)).or_default() += value;
            }
        } else if let Some(rest) = name.strip_prefix('h')
            && let Ok(i) = rest.parse::<usize>()
            && let Some(slot) = self.durations.get_mut(i)
        {
            *slot += value;
        }
    }

    /// Adds another shard's counters of the same minute.
    pub fn merge(&mut self, other: &ConnectionMinute) {
        for role in Role::ALL {
            *self.opened.slot(role) += other.opened.get(role);
            *self.closed.slot(role) += other.closed.get(role);
        }
        for (key, count) in &other.closed_after {
            *self.closed_after.entry(*key).or_default() += count;
        }
        self.closed_ms += other.closed_ms;
        for (mine, theirs) in self.durations.iter_mut().zip(other.durations) {
            *mine += theirs;
        }
    }

    /// Of the connections opened in this minute, those still open at the end of minute `at`
    /// (by role): opened, minus those closed by then; none once their TTL has passed.
    fn open_at_end_of(&self, at: DateTime<Utc>) -> RoleCounts {
        let age = (at - self.minute).num_minutes();
        let mut open = RoleCounts::default();
        if !(0..LIFETIME_MINUTES).contains(&age) {
            return open;
        }
        for role in Role::ALL {
            let closed: u64 = self
                .closed_after
                .range((role, i64::MIN)..=(role, age))
                .map(|(_, n)| n)
                .sum();
            *open.slot(role) = self.opened.get(role).saturating_sub(closed);
        }
        open
    }

    /// Of the connections opened in this minute, those that never closed (they expired with
    /// their TTL, [`LIFETIME_MINUTES`] after this minute).
    fn never_closed(&self) -> u64 {
        let closed: u64 = self.closed_after.values().sum();
        self.opened.total().saturating_sub(closed)
    }
}

/// Where a user stands, as a store answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presence {
    /// Their connections open now.
    pub connections: u32,
    /// When the earliest of those opened (`None` when offline).
    pub since: Option<DateTime<Utc>>,
    /// The last time a connection of theirs opened or closed (`None` if never seen, or not
    /// within the retention): for a connection that vanished without `$disconnect`, its
    /// opening.
    pub last_seen_at: Option<DateTime<Utc>>,
}

impl Presence {
    /// True while they have a connection open.
    pub fn online(&self) -> bool {
        self.connections > 0
    }
}

/// May `actor` see `user`'s presence, knowing the actor's orders? Admins (dispatchers) see
/// anyone's; a customer sees the driver of an order of theirs that is not over yet; nobody else
/// sees anyone's.
pub fn may_see_presence(actor: &Actor, user: &UserId, their_orders: &[Order]) -> bool {
    match actor.role {
        Role::Admin => true,
        Role::Customer => their_orders.iter().any(|order| {
            order.customer_id == actor.user_id
                && !order.status.is_final()
                && order.driver.as_ref().is_some_and(|d| d.driver_id == *user)
        }),
        Role::Chef | Role::Driver => false,
    }
}

/// Session durations over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Durations {
    /// Sessions that closed in the window.
    pub count: u64,
    /// Their mean, ms (`None` when there were none).
    pub average_ms: Option<f64>,
    /// Their median, ms, interpolated within its histogram bucket.
    pub p50_ms: Option<f64>,
    /// Their 95th percentile, ms, interpolated within its histogram bucket.
    pub p95_ms: Option<f64>,
}

/// Connections over a window that ends now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowStats {
    /// Connections opened.
    pub connects: u64,
    /// Connections closed (`$disconnect`, or found gone).
    pub disconnects: u64,
    /// Connections that vanished without closing and whose TTL passed.
    pub expired: u64,
    /// How long the closed ones had been open.
    pub session_duration: Durations,
}

/// What `GET /stats/connections` answers.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionStats {
    /// When.
    pub at: DateTime<Utc>,
    /// Connections open now, by role.
    pub connected_now: RoleCounts,
    /// The last 60 minutes (this one included).
    pub last_hour: WindowStats,
    /// The last 24 hours.
    pub last_day: WindowStats,
    /// The most connections open at the end of a minute today (UTC), and that minute's end.
    pub peak_today: (u64, DateTime<Utc>),
}

/// The first minute [`connection_stats`] needs at `now`: a lifetime before the earlier of the
/// day's start and 24 hours ago.
pub fn stats_from(now: DateTime<Utc>) -> DateTime<Utc> {
    let day_start = now
        .duration_trunc(TimeDelta::days(1))
        .unwrap_or(now - Duration::days(1));
    let earliest = day_start.min(minute_of(now) - Duration::minutes(24 * 60 - 1));
    earliest - Duration::minutes(LIFETIME_MINUTES)
}

/// The statistics at `now` from the minutes a store counted (any order; one entry per minute,
/// shards merged; minutes before [`stats_from`] are not needed).
pub fn connection_stats(minutes: &[ConnectionMinute], now: DateTime<Utc>) -> ConnectionStats {
    let by_minute: BTreeMap<DateTime<Utc>, &ConnectionMinute> =
        minutes.iter().map(|m| (m.minute, m)).collect();
    let current = minute_of(now);
    let open_at_end_of = |at: DateTime<Utc>| -> RoleCounts {
        let mut open = RoleCounts::default();
        let first = at - Duration::minutes(LIFETIME_MINUTES - 1);
        for m in by_minute.range(first..=at).map(|(_, m)| m) {
            let counts = m.open_at_end_of(at);
            for role in Role::ALL {
                *open.slot(role) += counts.get(role);
            }
        }
        open
    };
    let window = |minutes_back: i64| -> WindowStats {
        let first = current - Duration::minutes(minutes_back - 1);
        let mut stats = WindowStats::default();
        let mut durations = [0u64; DURATION_BOUNDS_SECS.len() + 1];
        let mut total_ms = 0u64;
        for m in by_minute.range(first..=current).map(|(_, m)| m) {
            stats.connects += m.opened.total();
            stats.disconnects += m.closed.total();
            total_ms += m.closed_ms;
            for (sum, n) in durations.iter_mut().zip(m.durations) {
                *sum += n;
            }
        }
        // Those opened a lifetime before a minute of the window expired in it.
        let lifetime = Duration::minutes(LIFETIME_MINUTES);
        for m in by_minute
            .range(first - lifetime..=current - lifetime)
            .map(|(_, m)| m)
        {
            stats.expired += m.never_closed();
        }
        stats.session_duration = summarize(&durations, total_ms);
        stats
    };
    let day_start = now.duration_trunc(TimeDelta::days(1)).unwrap_or(current);
    let mut peak = (0, day_start);
    let mut minute = day_start;
    while minute <= current {
        let open = open_at_end_of(minute).total();
        if open > peak.0 {
            peak = (open, (minute + Duration::minutes(1)).min(now));
        }
        minute += Duration::minutes(1);
    }
    ConnectionStats {
        at: now,
        connected_now: open_at_end_of(current),
        last_hour: window(60),
        last_day: window(24 * 60),
        peak_today: peak,
    }
}

/// Count, mean and interpolated percentiles of a duration histogram.
fn summarize(histogram: &[u64], total_ms: u64) -> Durations {
    let count: u64 = histogram.iter().sum();
    if count == 0 {
        return Durations::default();
    }
    let quantile = |q: f64| -> f64 {
        let rank = q * count as f64;
        let mut below = 0u64;
        for (i, &n) in histogram.iter().enumerate() {
            if n > 0 && (below + n) as f64 >= rank {
                let lower = if i == 0 {
                    0.0
                } else {
                    f64::from(DURATION_BOUNDS_SECS[i - 1]) * 1000.0
                };
                let Some(&upper) = DURATION_BOUNDS_SECS.get(i) else {
                    // Beyond the last bound: say the bound.
                    return lower;
                };
                let upper = f64::from(upper) * 1000.0;
                let within = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
                return lower + (upper - lower) * within;
            }
            below += n;
        }
        f64::from(DURATION_BOUNDS_SECS[DURATION_BOUNDS_SECS.len() - 1]) * 1000.0
    };
    Durations {
        count,
        average_ms: Some(total_ms as f64 / count as f64),
        p50_ms: Some(quantile(0.5)),
        p95_ms: Some(quantile(0.95)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// Applies events to minutes the way a store does: add each counter to its minute.
    fn count(events: &[ConnectionEvent]) -> Vec<ConnectionMinute> {
        let mut minutes: BTreeMap<DateTime<Utc>, ConnectionMinute> = BTreeMap::new();
        for event in events {
            for add in event.counters() {
                minutes
                    .entry(add.minute)
                    .or_insert_with(|| ConnectionMinute {
                        minute: add.minute,
                        ..ConnectionMinute::default()
                    })
                    .add(&add.counter, add.delta);
            }
        }
        minutes.into_values().collect()
    }

    fn opened(role: Role, t: &str) -> ConnectionEvent {
        ConnectionEvent::Opened { role, at: at(t) }
    }

    fn closed(role: Role, from: &str, to: &str) -> ConnectionEvent {
        ConnectionEvent::Closed {
            role,
            opened_at: at(from),
            at: at(to),
        }
    }

    #[test]
    fn connections_open_now_are_those_opened_and_not_closed_by_role() {
        // GIVEN two drivers and a customer connected this morning, one driver gone since
        let minutes = count(&[
            opened(Role::Driver, "2026-12-03T09:00:10Z"),
            opened(Role::Driver, "2026-12-03T09:01:00Z"),
            opened(Role::Customer, "2026-12-03T09:02:30Z"),
            closed(Role::Driver, "2026-12-03T09:00:10Z", "2026-12-03T09:20:10Z"),
        ]);
        // WHEN the stats are taken at 09:30
        let stats = connection_stats(&minutes, at("2026-12-03T09:30:00Z"));
        // THEN one driver and one customer are connected
        assert_eq!(stats.connected_now.driver, 1);
        assert_eq!(stats.connected_now.customer, 1);
        assert_eq!(stats.connected_now.total(), 2);
        // AND the hour saw three connects, one disconnect of 20 minutes
        assert_eq!(stats.last_hour.connects, 3);
        assert_eq!(stats.last_hour.disconnects, 1);
        assert_eq!(stats.last_hour.session_duration.count, 1);
        assert_eq!(
            stats.last_hour.session_duration.average_ms,
            Some(1_200_000.0)
        );
        // AND the peak was three, at the end of 09:02
        assert_eq!(stats.peak_today, (3, at("2026-12-03T09:03:00Z")));
    }

    #[test]
    fn a_connection_that_vanished_without_disconnect_drops_out_when_its_ttl_passes() {
        // GIVEN a chef who connected at 08:00 and was never seen to disconnect
        let minutes = count(&[opened(Role::Chef, "2026-12-03T08:00:00Z")]);
        // WHEN the stats are taken within its lifetime, and after it
        let during = connection_stats(&minutes, at("2026-12-03T10:04:00Z"));
        let after = connection_stats(&minutes, at("2026-12-03T10:05:00Z"));
        // THEN it counts as connected until its TTL (2 h + 5 min), then as expired, never as
        // a disconnect
        assert_eq!(during.connected_now.chef, 1);
        assert_eq!(after.connected_now.chef, 0);
        assert_eq!(after.last_hour.expired, 1);
        assert_eq!(after.last_hour.disconnects, 0);
        assert_eq!(during.last_hour.expired, 0);
    }

    #[test]
    fn the_api_gateway_two_hour_close_is_a_disconnect_of_two_hours() {
        // GIVEN a driver closed by API Gateway after exactly 2 hours
        let minutes = count(&[
            opened(Role::Driver, "2026-12-03T06:00:00Z"),
            closed(Role::Driver, "2026-12-03T06:00:00Z", "2026-12-03T08:00:00Z"),
        ]);
        // WHEN the stats are taken after
        let stats = connection_stats(&minutes, at("2026-12-03T08:30:00Z"));
        // THEN nobody is connected, the session lasted 2 hours, and nothing expired
        assert_eq!(stats.connected_now.total(), 0);
        assert_eq!(stats.last_hour.disconnects, 1);
        assert_eq!(stats.last_hour.expired, 0);
        assert_eq!(
            stats.last_hour.session_duration.average_ms,
            Some(7_200_000.0)
        );
        // AND the day still counts its connect, which the hour does not
        assert_eq!(stats.last_day.connects, 1);
        assert_eq!(stats.last_hour.connects, 0);
    }

    #[test]
    fn percentiles_come_from_the_duration_histogram() {
        // GIVEN 19 sessions of 3 s and one of 50 minutes
        let mut events = Vec::new();
        for i in 0..19 {
            let from = format!("2026-12-03T09:00:{i:02}Z");
            let to = format!("2026-12-03T09:00:{:02}Z", i + 3);
            events.push(opened(Role::Customer, &from));
            events.push(closed(Role::Customer, &from, &to));
        }
        events.push(opened(Role::Customer, "2026-12-03T08:05:00Z"));
        events.push(closed(
            Role::Customer,
            "2026-12-03T08:05:00Z",
            "2026-12-03T08:55:00Z",
        ));
        // WHEN the stats are taken
        let d = connection_stats(&count(&events), at("2026-12-03T09:01:00Z"))
            .last_hour
            .session_duration;
        // THEN the median lies in the 2-5 s bucket and the 95th percentile in it too, the
        // mean reflecting the long one
        assert_eq!(d.count, 20);
        let p50 = d.p50_ms.unwrap();
        assert!((2000.0..=5000.0).contains(&p50), "{p50}");
        let p95 = d.p95_ms.unwrap();
        assert!((2000.0..=5000.0).contains(&p95), "{p95}");
        assert_eq!(d.average_ms, Some((19.0 * 3000.0 + 3_000_000.0) / 20.0));
    }

    #[test]
    fn counters_of_shards_merge_into_one_minute() {
        // GIVEN the same minute counted on two shards
        let minute = at("2026-12-03T09:00:00Z");
        let mut a = ConnectionMinute::from_counters(minute, [("o_driver", 2), ("h3", 1)]);
        let b = ConnectionMinute::from_counters(
            minute,
            [
                ("o_driver", 3),
                ("x_driver_4", 1),
                ("unknown", 9),
                ("o_pilot", 1),
            ],
        );
        // WHEN they are merged
        a.merge(&b);
        // THEN the counts add up and unknown counters are ignored
        assert_eq!(a.opened.driver, 5);
        assert_eq!(a.opened.total(), 5);
        assert_eq!(a.closed_after.get(&(Role::Driver, 4)), Some(&1));
        assert_eq!(a.durations[3], 1);
    }

    #[test]
    fn a_connections_counters_land_on_one_shard_and_ids_spread_over_all() {
        // GIVEN many connection ids
        let shards: std::collections::BTreeSet<u32> =
            (0..200).map(|i| shard_of(&format!("conn-{i}="))).collect();
        // THEN every shard is used, and an id always maps to the same one
        assert_eq!(shards.len(), STATS_SHARDS as usize);
        assert_eq!(shard_of("abc="), shard_of("abc="));
    }

    #[test]
    fn the_stats_need_a_lifetime_before_the_day_or_the_last_24_hours() {
        // GIVEN 09:30
        let now = at("2026-12-03T09:30:20Z");
        // THEN they read from 24 hours ago (earlier than midnight) minus the lifetime
        assert_eq!(
            stats_from(now),
            at("2026-12-02T09:31:00Z") - Duration::minutes(LIFETIME_MINUTES)
        );
    }
}
