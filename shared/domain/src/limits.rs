//! Per-user and per-connection limits on what costs us (a placed order, a room membership
//! written and deleted), counted in fixed windows by the store with a conditional write, so
//! they hold across concurrent invocations ([`crate::ports::RateLimitStore`]).

use chrono::{DateTime, Duration, Utc};

/// A limit: at most `per_window` uses in each `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// What is limited, the first part of a bucket's name.
    pub name: &'static str,
    /// Uses admitted per window.
    pub per_window: u32,
    /// The window.
    pub window: Duration,
}

impl Limit {
    /// Orders a customer may place per hour (`ORDERS_PER_CUSTOMER_PER_HOUR`).
    pub const ORDERS_PER_CUSTOMER: Limit = Limit {
        name: "orders",
        per_window: 10,
        window: Duration::hours(1),
    };

    /// `subscribe:order` and `unsubscribe:order` messages a connection may send per minute
    /// (`ROOM_CHANGES_PER_MINUTE`).
    pub const ROOM_CHANGES_PER_CONNECTION: Limit = Limit {
        name: "rooms",
        per_window: 60,
        window: Duration::minutes(1),
    };

    /// The same limit admitting `per_window` uses, from the variable `name` when it holds a
    /// whole number of at least 1.
    pub fn from_env(self, name: &str) -> Limit {
        let per_window = std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|n| *n >= 1)
            .unwrap_or(self.per_window);
        Limit { per_window, ..self }
    }

    /// The bucket of this limit for `subject` (a user or connection id).
    pub fn bucket(self, subject: &str) -> String {
        format!("{}#{subject}", self.name)
    }

    /// The start of the window holding `now` (windows are aligned to the epoch).
    pub fn window_start(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let size = self.window.num_milliseconds().max(1);
        let start = now.timestamp_millis().div_euclid(size) * size;
        DateTime::from_timestamp_millis(start).unwrap_or(now)
    }
}

/// What a use of a limit was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    /// Counted.
    Granted,
    /// The window is full; try again after this long (the end of the window).
    Refused {
        /// Until the window ends.
        retry_after: Duration,
    },
}
