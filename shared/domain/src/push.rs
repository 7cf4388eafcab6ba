//! Push notifications: what a phone whose app is closed is told, and the port that sends it.
//!
//! [`notifications`] decides, from one change of an orders-table item, who is told what:
//!
//! | change | to | |
//! |---|---|---|
//! | order placed (`order:new`) | the chef | new order, order number, item count (high priority) |
//! | status `accepted`, `assigned_to_driver`, `picked_up`, `in_transit`, `delivered`, `cancelled` | the customer | one line per status |
//! | the ETA first at or under [`ALMOST_THERE_MINUTES`] | the customer | "your driver is almost there", once per order |
//! | a driver assigned (`driver:new_assignment`) | the driver | pickup and drop-off (high priority) |
//! | `cancelled` of an order assigned to a driver | the driver | the delivery is off |
//!
//! A [`PushMessage`] is one notification to one device (a registration token): a title and a
//! body in English, a `data` payload of strings (FCM requires strings) that lets apps localize
//! and dedupe (`event`, `orderId`, `status`, `seq`), a per-order collapse key (a newer push of an
//! order replaces an older one on the phone) and a priority. [`PushSender`] sends it; its
//! adapter speaks FCM HTTP v1. [`PushError`] tells what to do about a failure: prune the device,
//! retry later, or give up on this message.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::change::OrderChange;
use crate::events::OrderRecord;
use crate::ids::{OrderId, UserId};
use crate::live::LiveState;
use crate::order::{Order, OrderStatus};
use crate::ports::BoxError;

/// Largest FCM message payload (notification + data), bytes.
pub const MAX_PAYLOAD_BYTES: usize = 4096;
/// The customer is told "almost there" when the ETA first reaches this many minutes or less.
pub const ALMOST_THERE_MINUTES: u32 = 3;

/// Who a notification is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// This user.
    User(UserId),
    /// The customer of this order (a live item does not name its customer: the consumer reads
    /// the order).
    CustomerOf(OrderId),
}

/// One notification to one user (to every device of theirs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Who.
    pub to: Recipient,
    /// What makes it unique for its recipient: a retried stream batch finds it already sent.
    /// `{orderId}#{seq}#{event}`, or `{orderId}#almost_there` (once per order).
    pub key: String,
    /// The title.
    pub title: String,
    /// The body.
    pub body: String,
    /// `event`, `orderId`, `status`, `seq`, as strings.
    pub data: BTreeMap<String, String>,
    /// One per order.
    pub collapse_key: String,
    /// Wake the device now.
    pub high_priority: bool,
}

impl Notification {
    /// The order the notification is about (its `orderId` data), for the logs' `order_id`.
    pub fn order_id(&self) -> Option<&str> {
        self.data.get("orderId").map(String::as_str)
    }

    /// The message for one device of the recipient.
    pub fn to_device(&self, token: &str) -> PushMessage {
        PushMessage {
            token: token.to_owned(),
            title: self.title.clone(),
            body: self.body.clone(),
            data: self.data.clone(),
            collapse_key: self.collapse_key.clone(),
            high_priority: self.high_priority,
        }
    }
}

fn notification(
    to: Recipient,
    order_id: &OrderId,
    event: &str,
    status: OrderStatus,
    seq: u64,
    text: (String, String),
    high_priority: bool,
) -> Notification {
    let data = BTreeMap::from([
        ("event".to_owned(), event.to_owned()),
        ("orderId".to_owned(), order_id.to_string()),
        ("status".to_owned(), status.as_str().to_owned()),
        ("seq".to_owned(), seq.to_string()),
    ]);
    Notification {
        to,
        key: format!("{order_id}#{seq:020}#{event}"),
        title: text.0,
        body: text.1,
        data,
        collapse_key: order_id.to_string(),
        high_priority,
    }
}

/// The notifications one change of an orders-table item calls for (see the module table), in
/// the order to send them. Removals and replays (no new `seq`) call for none.
pub fn notifications(change: &OrderChange) -> Vec<Notification> {
    match (&change.old, &change.new) {
        (_, None) => Vec::new(),
        (Some(old), Some(new)) if old.seq() >= new.seq() => Vec::new(),
        (None, Some(OrderRecord::Order(order))) => vec![order_placed(order)],
        (Some(OrderRecord::Order(old)), Some(OrderRecord::Order(new))) => order_changed(old, new),
        (old, Some(OrderRecord::Live(new))) => {
            let old = match old {
                Some(OrderRecord::Live(l)) => Some(l),
                _ => None,
            };
            almost_there(old, new).into_iter().collect()
        }
        (Some(OrderRecord::Live(_)), Some(OrderRecord::Order(_))) => Vec::new(),
    }
}

fn order_placed(order: &Order) -> Notification {
    let count: u32 = order.items.iter().map(|i| i.quantity).sum();
    let plural = if count == 1 { "item" } else { "items" };
    notification(
        Recipient::User(order.chef.chef_id.clone()),
        &order.order_id,
        "order:new",
        order.status,
        order.seq,
        (
            format!("New order {}", order.order_number),
            format!("{count} {plural} for {}", order.customer_name),
        ),
        true,
    )
}

/// The customer's line for a status, when the status is worth a push.
fn customer_line(order: &Order) -> Option<String> {
    let driver = order
        .driver
        .as_ref()
        .map_or("Your driver", |d| d.driver_name.as_str());
    Some(match order.status {
        OrderStatus::Accepted => format!(
            "{} accepted your order and is cooking it.",
            order.chef.chef_business_name
        ),
        OrderStatus::AssignedToDriver => format!("{driver} will bring your order."),
        OrderStatus::PickedUp => format!(
            "{driver} picked up your order at {}.",
            order.chef.chef_business_name
        ),
        OrderStatus::InTransit => format!("{driver} is on the way to you."),
        OrderStatus::Delivered => "Your order was delivered. Enjoy!".to_owned(),
        OrderStatus::Cancelled => match &order.cancellation_reason {
            Some(reason) => format!("Your order was cancelled: {reason}"),
            None => "Your order was cancelled.".to_owned(),
        },
        OrderStatus::Pending | OrderStatus::PaymentConfirmed | OrderStatus::ReadyForPickup => {
            return None;
        }
    })
}

fn order_changed(old: &Order, new: &Order) -> Vec<Notification> {
    let mut out = Vec::new();
    if old.status != new.status
        && let Some(line) = customer_line(new)
    {
        out.push(notification(
            Recipient::User(new.customer_id.clone()),
            &new.order_id,
            "order:status_update",
            new.status,
            new.seq,
            (format!("Order {}", new.order_number), line),
            false,
        ));
    }
    if let Some(driver) = &new.driver
        && old.driver_id() != Some(&driver.driver_id)
    {
        out.push(notification(
            Recipient::User(driver.driver_id.clone()),
            &new.order_id,
            "driver:new_assignment",
            new.status,
            new.seq,
            (
                format!("New delivery {}", new.order_number),
                format!(
                    "Pick up at {}, {} → {}, {}",
                    new.chef.chef_business_name,
                    new.chef.chef_address,
                    new.customer_name,
                    new.delivery_address
                ),
            ),
            true,
        ));
    }
    if old.status != new.status
        && new.status == OrderStatus::Cancelled
        && let Some(driver) = &old.driver
    {
        out.push(notification(
            Recipient::User(driver.driver_id.clone()),
            &new.order_id,
            "order:status_update",
            new.status,
            new.seq,
            (
                format!("Delivery {} cancelled", new.order_number),
                format!(
                    "Do not pick it up at {}; the order was cancelled.",
                    new.chef.chef_business_name
                ),
            ),
            true,
        ));
    }
    out
}

fn almost_there(old: Option<&LiveState>, new: &LiveState) -> Option<Notification> {
    let eta = new.eta?;
    let was_close = old
        .and_then(|o| o.eta)
        .is_some_and(|o| o.eta_minutes <= ALMOST_THERE_MINUTES);
    if eta.eta_minutes > ALMOST_THERE_MINUTES || was_close || !new.status.is_driver_active() {
        return None;
    }
    let minutes = eta.eta_minutes.max(1);
    let mut n = notification(
        Recipient::CustomerOf(new.order_id.clone()),
        &new.order_id,
        "order:eta_update",
        new.status,
        new.seq,
        (
            "Your driver is almost there".to_owned(),
            format!(
                "About {minutes} minute{} away.",
                if minutes == 1 { "" } else { "s" }
            ),
        ),
        false,
    );
    n.key = format!("{}#almost_there", new.order_id);
    Some(n)
}
/// One notification to one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushMessage {
    /// The device's registration token.
    pub token: String,
    /// Shown as the notification's title.
    pub title: String,
    /// Shown as the notification's body.
    pub body: String,
    /// String key/values for the app: `event`, `orderId`, `status`, `seq`.
    pub data: BTreeMap<String, String>,
    /// A newer message with the same key replaces an older one on the device (FCM's
    /// `android.collapse_key`, APNs' `apns-collapse-id`): one per order.
    pub collapse_key: String,
    /// Wake the device now (`order:new`, `driver:new_assignment`); else normal priority.
    pub high_priority: bool,
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The token is no longer valid (FCM `UNREGISTERED`, or `INVALID_ARGUMENT` about the
    /// token): delete the device; retrying cannot help.
    #[error("the registration token is not valid any more")]
    Unregistered,
    /// Throttled (HTTP 429, FCM `QUOTA_EXCEEDED`): retry after `retry_after` when given.
    #[error("throttled")]
    Throttled {
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The service failed (HTTP 5xx, `UNAVAILABLE`, `INTERNAL`, network): retry later, after
    /// `retry_after` when given.
    #[error("the push service is unavailable")]
    Unavailable {
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The credentials were refused (a misconfiguration): the token endpoint refused the
    /// grant, FCM refused a fresh access token too, or the account may not send in the
    /// project. Retrying this message will not help until someone fixes them.
    #[error("the push credentials were refused")]
    Unauthorized(#[source] BoxError),
    /// The message was refused and retrying will not help: it is too large or malformed, or
    /// it cannot be delivered for a reason that is not the device's (FCM's
    /// `SENDER_ID_MISMATCH`: a token of another project; `THIRD_PARTY_AUTH_ERROR`: the
    /// project's APNs credentials), so the device is kept.
    #[error("the push was refused")]
    Rejected(#[source] BoxError),
}

impl PushError {
    /// True for failures worth retrying (throttling, unavailability).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PushError::Throttled { .. } | PushError::Unavailable { .. }
        )
    }

    /// The wait the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PushError::Throttled { retry_after } | PushError::Unavailable { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// A short, stable name of the failure, for metrics and logs (`unregistered`, `throttled`,
    /// `unavailable`, `unauthorized`, `rejected`).
    pub fn reason(&self) -> &'static str {
        match self {
            PushError::Unregistered => "unregistered",
            PushError::Throttled { .. } => "throttled",
            PushError::Unavailable { .. } => "unavailable",
            PushError::Unauthorized(_) => "unauthorized",
            PushError::Rejected(_) => "rejected",
        }
    }
}

/// Sends one push notification (FCM HTTP v1 `messages:send` in every deployment).
#[async_trait]
pub trait PushSender: Send + Sync {
    /// Sends `message` once (no retries: the caller owns the retry policy, honouring
    /// [`PushError::retry_after`]). The adapter owns its credentials: it fetches an access
    /// token when it has none, refreshes it shortly before it expires, and once more when the
    /// service answers 401 before giving up with [`PushError::Unauthorized`].
    async fn send(&self, message: &PushMessage) -> Result<(), PushError>;
}
