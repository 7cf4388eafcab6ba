//! What each party to an order sees of it, the one place that decides (the HTTP API's order
//! and tracking bodies, the `subscribed` snapshot and the events all ask here):
//!
//! | | customer | chef | driver | admin |
//! |---|---|---|---|---|
//! | the delivery address and point | yes | once accepted | yes | yes |
//! | the chef's address and point | once accepted | yes | yes | yes |
//! | the driver's phone | yes | no | no | yes |
//! | who changed a status (`changedBy` user ids) | no | no | no | yes |
//! | the order at all | yes | yes | until [`DriverAccess`] after it ended | yes |
//!
//! "Accepted" is the chef's acceptance having happened (`acceptedAt`), so an order cancelled
//! after acceptance keeps showing what acceptance revealed.

use chrono::{DateTime, Duration, Utc};

use crate::identity::Actor;
use crate::order::{Order, Relation, StatusChange};

/// How long an order's assigned driver may still see it after it was delivered or cancelled:
/// 6 hours unless configured (`DriverAccessHours`).
pub const DEFAULT_DRIVER_ACCESS_HOURS: i64 = 6;

/// How long a driver keeps access to an order after it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverAccess(pub Duration);

impl Default for DriverAccess {
    fn default() -> Self {
        DriverAccess(Duration::hours(DEFAULT_DRIVER_ACCESS_HOURS))
    }
}

impl DriverAccess {
    /// `DRIVER_ACCESS_HOURS` from the environment (whole hours, 0 or more), else the default.
    pub fn from_env() -> Self {
        std::env::var("DRIVER_ACCESS_HOURS")
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|h| (0..=24 * 365).contains(h))
            .map_or_else(DriverAccess::default, |h| DriverAccess(Duration::hours(h)))
    }
}

/// What one viewer sees of one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visibility {
    /// The delivery address, latitude and longitude.
    pub delivery_location: bool,
    /// The chef's address, latitude and longitude.
    pub chef_location: bool,
    /// The assigned driver's phone.
    pub driver_phone: bool,
    /// Who made each status change.
    pub changed_by: bool,
}

impl Visibility {
    /// Everything: what admins see.
    pub const ALL: Visibility = Visibility {
        delivery_location: true,
        chef_location: true,
        driver_phone: true,
        changed_by: true,
    };

    /// What `relation` sees of `order` (a stranger sees nothing; it is refused before this).
    pub fn of(relation: Relation, order: &Order) -> Visibility {
        let accepted = order.accepted_at.is_some();
        match relation {
            Relation::Admin => Visibility::ALL,
            Relation::Customer => Visibility {
                delivery_location: true,
                chef_location: accepted,
                driver_phone: true,
                changed_by: false,
            },
            Relation::Chef => Visibility {
                delivery_location: accepted,
                chef_location: true,
                driver_phone: false,
                changed_by: false,
            },
            Relation::Driver => Visibility {
                delivery_location: true,
                chef_location: true,
                driver_phone: false,
                changed_by: false,
            },
            Relation::Stranger => Visibility {
                delivery_location: false,
                chef_location: false,
                driver_phone: false,
                changed_by: false,
            },
        }
    }

    /// What `actor` sees of `order`.
    pub fn for_actor(actor: &Actor, order: &Order) -> Visibility {
        Visibility::of(order.relation(actor), order)
    }

    /// The delivery address and point, when they may be seen.
    pub fn delivery(self, order: &Order) -> Option<Place> {
        self.delivery_location.then(|| Place {
            address: order.delivery_address.clone(),
            latitude: order.delivery_latitude.get(),
            longitude: order.delivery_longitude.get(),
        })
    }

    /// The chef's address and point, when they may be seen.
    pub fn chef(self, order: &Order) -> Option<Place> {
        self.chef_location.then(|| Place {
            address: order.chef.chef_address.clone(),
            latitude: order.chef.chef_latitude.get(),
            longitude: order.chef.chef_longitude.get(),
        })
    }

    /// The assigned driver's phone, when there is one and it may be seen.
    pub fn driver_phone(self, order: &Order) -> Option<String> {
        order
            .driver
            .as_ref()
            .and_then(|d| d.driver_phone.clone())
            .filter(|_| self.driver_phone)
    }

    /// Who made `change` (a user id), when that may be seen.
    pub fn changed_by(self, change: &StatusChange) -> Option<String> {
        self.changed_by.then(|| change.changed_by.to_string())
    }
}

/// An address and its point, as a viewer may be shown them.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// The address.
    pub address: String,
    /// Its latitude.
    pub latitude: f64,
    /// Its longitude.
    pub longitude: f64,
}

impl Place {
    /// The address, latitude and longitude of `place`, each absent when it is.
    pub fn split(place: Option<Place>) -> (Option<String>, Option<f64>, Option<f64>) {
        match place {
            Some(p) => (Some(p.address), Some(p.latitude), Some(p.longitude)),
            None => (None, None, None),
        }
    }
}

impl Order {
    /// When it was delivered or cancelled, if it was.
    pub fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.delivered_at.or(self.cancelled_at)
    }

    /// How `actor` relates to this order at `now`: as [`Order::relation`], except that its
    /// driver becomes a stranger once `driver_access` has passed since the order ended.
    pub fn relation_at(
        &self,
        actor: &Actor,
        now: DateTime<Utc>,
        driver_access: DriverAccess,
    ) -> Relation {
        match self.relation(actor) {
            Relation::Driver
                if self
                    .ended_at()
                    .is_some_and(|end| now >= end + driver_access.0) =>
            {
                Relation::Stranger
            }
            relation => relation,
        }
    }

    /// True when `actor` may see this order at `now` ([`Order::relation_at`] is not a stranger).
    pub fn is_visible_to_at(
        &self,
        actor: &Actor,
        now: DateTime<Utc>,
        driver_access: DriverAccess,
    ) -> bool {
        self.relation_at(actor, now, driver_access) != Relation::Stranger
    }
}
