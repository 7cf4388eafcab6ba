//! Orders and their lifecycle: the state machine and who may move it.
//!
//! `pending → payment_confirmed → accepted → ready_for_pickup → assigned_to_driver → picked_up →
//! in_transit → delivered`, plus `cancelled`. Each transition is an [`Action`] taken by an
//! [`Actor`]; [`OrderView::apply`] checks permission first (403), then the state (409), and
//! returns the next state of both order items with the sequence number moved on by one.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::geo::{GeoPoint, Latitude, Longitude};
use crate::identity::{Actor, Role};
use crate::ids::{OrderId, UserId};
use crate::live::LiveState;
use crate::profile::parse_text;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed, awaiting payment.
    Pending,
    /// Paid.
    PaymentConfirmed,
    /// The chef is cooking.
    Accepted,
    /// Cooked, waiting for a driver.
    ReadyForPickup,
    /// A driver is on the way to the chef.
    AssignedToDriver,
    /// The driver has the food.
    PickedUp,
    /// On the way to the customer.
    InTransit,
    /// Handed over. Final.
    Delivered,
    /// Called off. Final.
    Cancelled,
}

impl OrderStatus {
    /// Every status in lifecycle order.
    pub const ALL: [OrderStatus; 9] = [
        OrderStatus::Pending,
        OrderStatus::PaymentConfirmed,
        OrderStatus::Accepted,
        OrderStatus::ReadyForPickup,
        OrderStatus::AssignedToDriver,
        OrderStatus::PickedUp,
        OrderStatus::InTransit,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    /// The wire name, e.g. `ready_for_pickup`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::PaymentConfirmed => "payment_confirmed",
            OrderStatus::Accepted => "accepted",
            OrderStatus::ReadyForPickup => "ready_for_pickup",
            OrderStatus::AssignedToDriver => "assigned_to_driver",
            OrderStatus::PickedUp => "picked_up",
            OrderStatus::InTransit => "in_transit",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// True for `delivered` and `cancelled`.
    pub fn is_final(self) -> bool {
        matches!(self, OrderStatus::Delivered | OrderStatus::Cancelled)
    }

    /// True while the assigned driver may stream locations: `assigned_to_driver`, `picked_up`,
    /// `in_transit`.
    pub fn is_driver_active(self) -> bool {
        matches!(
            self,
            OrderStatus::AssignedToDriver | OrderStatus::PickedUp | OrderStatus::InTransit
        )
    }

    /// Statuses in which the driver may stream a location.
    pub const DRIVER_ACTIVE: [OrderStatus; 3] = [
        OrderStatus::AssignedToDriver,
        OrderStatus::PickedUp,
        OrderStatus::InTransit,
    ];
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderStatus {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrderStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| ValidationError::new("status", "is not a known order status"))
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    /// Dish name.
    pub name: String,
    /// How many.
    pub quantity: u32,
}

/// One entry of the status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    /// The status entered.
    pub status: OrderStatus,
    /// When.
    pub timestamp: DateTime<Utc>,
    /// Who made the change.
    pub changed_by: UserId,
    /// The reason, for cancellations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The order's sequence number this status was entered at (absent in orders written before
    /// it was recorded): what a replayed `order:status_update` carries as its `seq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// The chef's side of an order, copied from the chef's profile when the order is placed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChefInfo {
    /// The chef's user id.
    pub chef_id: UserId,
    /// Display name.
    pub chef_name: String,
    /// Business name.
    pub chef_business_name: String,
    /// Pickup address.
    pub chef_address: String,
    /// Pickup latitude.
    pub chef_latitude: Latitude,
    /// Pickup longitude.
    pub chef_longitude: Longitude,
}

/// The driver's side of an order, copied from the driver's profile when assigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriverInfo {
    /// The driver's user id.
    pub driver_id: UserId,
    /// Display name.
    pub driver_name: String,
    /// Phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_phone: Option<String>,
}

/// An order: what was ordered, by whom, from whom, and where it is in its lifecycle.
///
/// `seq` is the order's sequence number as of this item's last write; the order's current
/// sequence is [`OrderView::seq`], since live-location writes also move it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Id.
    pub order_id: OrderId,
    /// Human-friendly number, `RND-YYYYMMDD-NNNN`.
    pub order_number: String,
    /// Current status.
    pub status: OrderStatus,
    /// Sequence number as of this item's last write.
    pub seq: u64,
    /// The customer's user id.
    pub customer_id: UserId,
    /// The customer's display name.
    pub customer_name: String,
    /// Drop-off address.
    pub delivery_address: String,
    /// Drop-off latitude.
    pub delivery_latitude: Latitude,
    /// Drop-off longitude.
    pub delivery_longitude: Longitude,
    /// The chef.
    #[serde(flatten)]
    pub chef: ChefInfo,
    /// The driver, once assigned.
    #[serde(flatten)]
    pub driver: Option<DriverInfo>,
    /// What was ordered.
    #[serde(default)]
    pub items: Vec<OrderItem>,
    /// Free-text notes from the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Every status the order has been in, oldest first.
    pub status_history: Vec<StatusChange>,
    /// When placed.
    pub created_at: DateTime<Utc>,
    /// When last changed.
    pub updated_at: DateTime<Utc>,
    /// When payment was confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_confirmed_at: Option<DateTime<Utc>>,
    /// When the chef accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<DateTime<Utc>>,
    /// When it became ready for pickup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<DateTime<Utc>>,
    /// When a driver was assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_at: Option<DateTime<Utc>>,
    /// When the driver picked it up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picked_up_at: Option<DateTime<Utc>>,
    /// When transit started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_transit_at: Option<DateTime<Utc>>,
    /// When delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// When cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Why it was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_reason: Option<String>,
}

/// What is needed to place an order (the HTTP layer builds it from the request and profiles).
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    /// Id to use.
    pub order_id: OrderId,
    /// Number from the per-day counter.
    pub order_number: String,
    /// The customer placing it.
    pub customer_id: UserId,
    /// The customer's name.
    pub customer_name: String,
    /// Drop-off address.
    pub delivery_address: String,
    /// Drop-off point.
    pub delivery: GeoPoint,
    /// The chef.
    pub chef: ChefInfo,
    /// Lines.
    pub items: Vec<OrderItem>,
    /// Notes.
    pub notes: Option<String>,
}

impl Order {
    /// A new `pending` order at sequence 1, with its first history entry.
    pub fn place(new: NewOrder, now: DateTime<Utc>) -> Order {
        Order {
            order_id: new.order_id,
            order_number: new.order_number,
            status: OrderStatus::Pending,
            seq: 1,
            customer_id: new.customer_id.clone(),
            customer_name: new.customer_name,
            delivery_address: new.delivery_address,
            delivery_latitude: new.delivery.latitude,
            delivery_longitude: new.delivery.longitude,
            chef: new.chef,
            driver: None,
            items: new.items,
            notes: new.notes,
            status_history: vec![StatusChange {
                status: OrderStatus::Pending,
                timestamp: now,
                changed_by: new.customer_id,
                reason: None,
                seq: Some(1),
            }],
            created_at: now,
            updated_at: now,
            payment_confirmed_at: None,
            accepted_at: None,
            ready_at: None,
            assigned_at: None,
            picked_up_at: None,
            in_transit_at: None,
            delivered_at: None,
            cancelled_at: None,
            cancellation_reason: None,
        }
    }

    /// The chef's pickup point.
    pub fn pickup_point(&self) -> GeoPoint {
        GeoPoint {
            latitude: self.chef.chef_latitude,
            longitude: self.chef.chef_longitude,
        }
    }

    /// The customer's drop-off point.
    pub fn dropoff_point(&self) -> GeoPoint {
        GeoPoint {
            latitude: self.delivery_latitude,
            longitude: self.delivery_longitude,
        }
    }

    /// The assigned driver's id, if any.
    pub fn driver_id(&self) -> Option<&UserId> {
        self.driver.as_ref().map(|d| &d.driver_id)
    }

    /// How `actor` relates to this order.
    pub fn relation(&self, actor: &Actor) -> Relation {
        match actor.role {
            Role::Admin => Relation::Admin,
            Role::Customer if actor.user_id == self.customer_id => Relation::Customer,
            Role::Chef if actor.user_id == self.chef.chef_id => Relation::Chef,
            Role::Driver if self.driver_id() == Some(&actor.user_id) => Relation::Driver,
            _ => Relation::Stranger,
        }
    }

    /// True when `actor` may see this order (its customer, chef, assigned driver, admins).
    pub fn is_visible_to(&self, actor: &Actor) -> bool {
        self.relation(actor) != Relation::Stranger
    }
}

/// How an actor relates to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The customer who placed it.
    Customer,
    /// The chef cooking it.
    Chef,
    /// The driver assigned to it.
    Driver,
    /// An operator.
    Admin,
    /// Anyone else.
    Stranger,
}

/// A lifecycle step.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Admin: `pending → payment_confirmed`.
    ConfirmPayment,
    /// Chef: `payment_confirmed → accepted`.
    Accept,
    /// Chef: `accepted → ready_for_pickup`.
    MarkReady,
    /// Admin: `ready_for_pickup → assigned_to_driver`.
    AssignDriver(DriverInfo),
    /// Driver: `assigned_to_driver → picked_up`.
    PickUp,
    /// Driver: `picked_up → in_transit`.
    StartTransit,
    /// Driver: `in_transit → delivered`.
    Deliver,
    /// Customer while `pending`/`payment_confirmed`; chef before `ready_for_pickup`; admin
    /// before `delivered`.
    Cancel {
        /// Why.
        reason: String,
    },
}

impl Action {
    /// A short name for messages and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Action::ConfirmPayment => "confirm-payment",
            Action::Accept => "accept",
            Action::MarkReady => "ready",
            Action::AssignDriver(_) => "assign",
            Action::PickUp => "pickup",
            Action::StartTransit => "in-transit",
            Action::Deliver => "deliver",
            Action::Cancel { .. } => "cancel",
        }
    }

    /// The status this action moves the order to.
    pub fn target(&self) -> OrderStatus {
        match self {
            Action::ConfirmPayment => OrderStatus::PaymentConfirmed,
            Action::Accept => OrderStatus::Accepted,
            Action::MarkReady => OrderStatus::ReadyForPickup,
            Action::AssignDriver(_) => OrderStatus::AssignedToDriver,
            Action::PickUp => OrderStatus::PickedUp,
            Action::StartTransit => OrderStatus::InTransit,
            Action::Deliver => OrderStatus::Delivered,
            Action::Cancel { .. } => OrderStatus::Cancelled,
        }
    }

    /// Who may take this action at all, whatever the state.
    fn permitted(&self, relation: Relation) -> bool {
        use Relation::*;
        match self {
            Action::ConfirmPayment | Action::AssignDriver(_) => relation == Admin,
            Action::Accept | Action::MarkReady => relation == Chef,
            Action::PickUp | Action::StartTransit | Action::Deliver => relation == Driver,
            Action::Cancel { .. } => matches!(relation, Customer | Chef | Admin),
        }
    }

    /// The statuses this action may start from, for the given party.
    fn allowed_from(&self, relation: Relation) -> &'static [OrderStatus] {
        use OrderStatus::*;
        match self {
            Action::ConfirmPayment => &[Pending],
            Action::Accept => &[PaymentConfirmed],
            Action::MarkReady => &[Accepted],
            Action::AssignDriver(_) => &[ReadyForPickup],
            Action::PickUp => &[AssignedToDriver],
            Action::StartTransit => &[PickedUp],
            Action::Deliver => &[InTransit],
            Action::Cancel { .. } => match relation {
                Relation::Customer => &[Pending, PaymentConfirmed],
                Relation::Chef => &[Pending, PaymentConfirmed, Accepted],
                Relation::Admin => &[
                    Pending,
                    PaymentConfirmed,
                    Accepted,
                    ReadyForPickup,
                    AssignedToDriver,
                    PickedUp,
                    InTransit,
                ],
                _ => &[],
            },
        }
    }
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The actor may not take this action on this order (HTTP 403; 404 for strangers).
    #[error("{role} may not {action} this order")]
    Forbidden {
        /// The actor's role.
        role: Role,
        /// The action's name.
        action: &'static str,
        /// True when the actor has no relation to the order at all.
        stranger: bool,
    },
    /// The order's status does not allow this action now (HTTP 409).
    #[error("cannot {action} an order that is {from}")]
    InvalidTransition {
        /// The action's name.
        action: &'static str,
        /// The current status.
        from: OrderStatus,
    },
    /// The action's input is invalid (HTTP 422 / 400).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

/// Maximum length of a cancellation reason.
pub const MAX_REASON_LEN: usize = 500;

/// An order together with its live item (driver location, ETA, the current sequence number).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderView {
    /// The order item.
    pub order: Order,
    /// The live item.
    pub live: LiveState,
}

impl OrderView {
    /// A freshly placed order and its first live item, both at sequence 1.
    pub fn new_placed(order: Order) -> OrderView {
        let live = LiveState::for_new_order(&order);
        OrderView { order, live }
    }

    /// The order's current sequence number (the newest of its items).
    pub fn seq(&self) -> u64 {
        self.order.seq.max(self.live.seq)
    }

    /// Applies `action` by `actor` at `now`: checks who may (else [`TransitionError::Forbidden`]),
    /// then whether the status allows it (else [`TransitionError::InvalidTransition`]), and returns
    /// the next view: status and its timestamp set, history appended, both items at `seq + 1`.
    pub fn apply(
        &self,
        actor: &Actor,
        action: Action,
        now: DateTime<Utc>,
    ) -> Result<OrderView, TransitionError> {
        let relation = self.order.relation(actor);
        if !action.permitted(relation) {
            return Err(TransitionError::Forbidden {
                role: actor.role,
                action: action.name(),
                stranger: relation == Relation::Stranger,
            });
        }
        let from = self.order.status;
        if !action.allowed_from(relation).contains(&from) {
            return Err(TransitionError::InvalidTransition {
                action: action.name(),
                from,
            });
        }
        let seq = self.seq() + 1;
        let mut order = self.order.clone();
        let target = action.target();
        let mut reason_for_history = None;
        match action {
            Action::ConfirmPayment => order.payment_confirmed_at = Some(now),
            Action::Accept => order.accepted_at = Some(now),
            Action::MarkReady => order.ready_at = Some(now),
            Action::AssignDriver(driver) => {
                order.driver = Some(driver);
                order.assigned_at = Some(now);
            }
            Action::PickUp => order.picked_up_at = Some(now),
            Action::StartTransit => order.in_transit_at = Some(now),
            Action::Deliver => order.delivered_at = Some(now),
            Action::Cancel { reason } => {
                let reason = parse_text("reason", &reason, MAX_REASON_LEN)?;
                order.cancelled_at = Some(now);
                order.cancellation_reason = Some(reason.clone());
                reason_for_history = Some(reason);
            }
        }
        order.status = target;
        order.seq = seq;
        order.updated_at = now;
        order.status_history.push(StatusChange {
            status: target,
            timestamp: now,
            changed_by: actor.user_id.clone(),
            reason: reason_for_history,
            seq: Some(seq),
        });
        let mut live = self.live.clone();
        live.seq = seq;
        live.status = target;
        live.driver_id = order.driver_id().cloned();
        // A transition's change of the live item is the stream's to announce.
        live.announced_seq = None;
        live.updated_at = now;
        Ok(OrderView { order, live })
    }
}
