//! Event derivation: from one change of an order's items (old image, new image) to the messages
//! clients see and the rooms that see them.
//!
//! | change | event | rooms |
//! |---|---|---|
//! | order item inserted | `order:new` | `user:{chefId}` |
//! | order status changed | `order:status_update` | `order:{id}`, `role:admin`, `user:{customerId}` |
//! | driver assigned (or changed) | `driver:new_assignment` | `user:{driverId}` |
//! | live item: new accepted location | `driver:location_update` | `order:{id}` |
//! | live item: ETA moved ≥ 1 minute | `order:eta_update` | `order:{id}` |
//!
//! A live item whose writer already delivered its events ([`LiveState::announced`]: the
//! `driver:location` fast path, which posts [`location_announcements`] itself) produces nothing
//! here, so the stream does not deliver them twice.
//!
//! Every event carries the sequence number of the change, so a client can drop a redelivered
//! event (same `seq`). Locations and ETAs are latest-value events that the fan-out coalesces,
//! so `seq` skips on purpose; a missed *status* update is told by `previousStatusSeq` (the
//! `seq` of the order's previous status update), and a missed user-room event by the inbox
//! cursor. Deletions and changes that move no sequence number (replays, TTL housekeeping)
//! produce nothing.
//!
//! [`status_updates_since`] rebuilds an order's status updates from its history, exactly as
//! they were derived, for a subscriber that asks for what it missed (`sinceSeq`).

use serde::{Deserialize, Serialize};

use crate::identity::Role;
use crate::live::LiveState;
use crate::order::{Order, OrderStatus, StatusChange};
use crate::protocol::{
    EtaUpdateData, LocationUpdateData, NewAssignmentData, OrderNewData, ServerMessage,
    StatusUpdateData, Stop,
};
use crate::rooms::Room;

/// An ETA that moves by less than this is not worth an event.
pub const ETA_EVENT_THRESHOLD_SECS: i64 = 60;

/// An item of the orders table, as stored and as a stream image carries it. The `itemType`
/// attribute tells them apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "itemType", rename_all = "snake_case")]
// Records are short-lived (one per stream record) and never kept in bulk; boxing the order
// would only add an allocation per record.
#[allow(clippy::large_enum_variant)]
pub enum OrderRecord {
    /// The order item.
    Order(Order),
    /// The live item (location, ETA, sequence).
    Live(LiveState),
}

impl OrderRecord {
    /// The sequence number the item was written at.
    pub fn seq(&self) -> u64 {
        match self {
            OrderRecord::Order(o) => o.seq,
            OrderRecord::Live(l) => l.seq,
        }
    }
}

/// A message and the rooms it goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// What to send.
    pub message: ServerMessage,
    /// Who gets it (a connection in several of these rooms gets it once).
    pub rooms: Vec<Room>,
}

/// Derives the events of one change. `old` is `None` for an insert, `new` is `None` for a
/// removal. Returns them in the order clients should see them.
pub fn derive_events(old: Option<&OrderRecord>, new: Option<&OrderRecord>) -> Vec<Outgoing> {
    match (old, new) {
        (_, None) => Vec::new(),
        (old, Some(new)) if old.is_some_and(|o| o.seq() >= new.seq()) => Vec::new(),
        (None, Some(OrderRecord::Order(new))) => vec![order_new(new)],
        (Some(OrderRecord::Order(old)), Some(OrderRecord::Order(new))) => order_changed(old, new),
        (old, Some(OrderRecord::Live(new))) => {
            let old = match old {
                Some(OrderRecord::Live(l)) => Some(l),
                _ => None,
            };
            if new.announced() {
                return Vec::new();
            }
            live_changed(old, new)
        }
        // An item changing kind is not something we write; nothing sensible to announce.
        (Some(OrderRecord::Live(_)), Some(OrderRecord::Order(_))) => Vec::new(),
    }
}

fn order_room(order: &Order) -> Room {
    Room::Order(order.order_id.clone())
}

fn order_new(order: &Order) -> Outgoing {
    Outgoing {
        message: ServerMessage::OrderNew(OrderNewData {
            order_id: order.order_id.clone(),
            order_number: order.order_number.clone(),
            status: order.status,
            customer_name: order.customer_name.clone(),
            items: order.items.clone(),
            notes: order.notes.clone(),
            created_at: order.created_at,
            seq: order.seq,
            cursor: None,
            replayed: false,
        }),
        rooms: vec![Room::User(order.chef.chef_id.clone())],
    }
}

/// The `order:status_update` announcing `entry` (a status entered at `seq`, after
/// `previous_status`, whose own history entry is `previous`).
fn status_update(
    order: &Order,
    entry: Option<&StatusChange>,
    previous: Option<&StatusChange>,
    previous_status: OrderStatus,
    seq: u64,
) -> StatusUpdateData {
    StatusUpdateData {
        order_id: order.order_id.clone(),
        order_number: order.order_number.clone(),
        status: order.status,
        previous_status,
        changed_by: Some(
            entry
                .map(|c| c.changed_by.clone())
                .unwrap_or_else(|| order.customer_id.clone()),
        ),
        timestamp: entry.map(|c| c.timestamp).unwrap_or(order.updated_at),
        reason: entry.and_then(|c| c.reason.clone()),
        seq,
        previous_status_seq: previous.and_then(|c| c.seq),
        cursor: None,
        replayed: false,
    }
}

/// The rooms of an order's status updates: its room, the admins, and its customer (so a
/// customer hears of a change without having subscribed).
fn status_rooms(order: &Order) -> Vec<Room> {
    vec![
        order_room(order),
        Room::Role(Role::Admin),
        Room::User(order.customer_id.clone()),
    ]
}

/// The status updates of `order` with a `seq` above `since_seq`, oldest first, each exactly as
/// [`derive_events`] derived it when the status was entered (without `cursor` or `replayed`).
///
/// Returns `None` when one of them cannot be rebuilt: a history entry written before entries
/// recorded their `seq`.
pub fn status_updates_since(order: &Order, since_seq: u64) -> Option<Vec<StatusUpdateData>> {
    if since_seq >= order.seq {
        return Some(Vec::new());
    }
    let history = &order.status_history;
    let mut updates = Vec::new();
    for (i, entry) in history.iter().enumerate().skip(1) {
        let seq = entry.seq?;
        if seq <= since_seq {
            continue;
        }
        let previous = &history[i - 1];
        let mut update = status_update(order, Some(entry), Some(previous), previous.status, seq);
        update.status = entry.status;
        updates.push(update);
    }
    Some(updates)
}

fn order_changed(old: &Order, new: &Order) -> Vec<Outgoing> {
    let mut out = Vec::new();
    if old.status != new.status {
        let history = &new.status_history;
        let previous = history.len().checked_sub(2).map(|i| &history[i]);
        out.push(Outgoing {
            message: ServerMessage::StatusUpdate(status_update(
                new,
                history.last(),
                previous,
                old.status,
                new.seq,
            )),
            rooms: status_rooms(new),
        });
    }
    if let Some(driver) = &new.driver
        && old.driver_id() != Some(&driver.driver_id)
    {
        out.push(Outgoing {
            message: ServerMessage::NewAssignment(NewAssignmentData {
                order_id: new.order_id.clone(),
                order_number: new.order_number.clone(),
                pickup: Stop {
                    name: new.chef.chef_business_name.clone(),
                    address: new.chef.chef_address.clone(),
                    latitude: new.chef.chef_latitude.get(),
                    longitude: new.chef.chef_longitude.get(),
                },
                dropoff: Stop {
                    name: new.customer_name.clone(),
                    address: new.delivery_address.clone(),
                    latitude: new.delivery_latitude.get(),
                    longitude: new.delivery_longitude.get(),
                },
                items: new.items.clone(),
                notes: new.notes.clone(),
                assigned_at: new.assigned_at.unwrap_or(new.updated_at),
                seq: new.seq,
                cursor: None,
                replayed: false,
            }),
            rooms: vec![Room::User(driver.driver_id.clone())],
        });
    }
    out
}

/// The events of an accepted location, from the live item before it (`previous`) to the item
/// it wrote (`current`): `driver:location_update`, and `order:eta_update` when the ETA moved by
/// at least [`ETA_EVENT_THRESHOLD_SECS`]; both to `order:{id}`. What the writer posts itself
/// on the fast path, exactly what [`derive_events`] derives from the same change otherwise.
pub fn location_announcements(previous: &LiveState, current: &LiveState) -> Vec<Outgoing> {
    live_changed(Some(previous), current)
}

fn live_changed(old: Option<&LiveState>, new: &LiveState) -> Vec<Outgoing> {
    let mut out = Vec::new();
    let room = Room::Order(new.order_id.clone());
    // A location write sets both; a transition leaves them as they were. Two writes within one
    // millisecond (a stack without a minimum interval) share the time but not the position.
    let moved = new.location_accepted_at_ms.is_some()
        && old.is_none_or(|o| {
            o.location_accepted_at_ms != new.location_accepted_at_ms || o.location != new.location
        });
    if let (true, Some(location), Some(driver_id)) = (moved, &new.location, &new.driver_id) {
        out.push(Outgoing {
            message: ServerMessage::LocationUpdate(LocationUpdateData {
                order_id: new.order_id.clone(),
                driver_id: driver_id.clone(),
                latitude: location.latitude.get(),
                longitude: location.longitude.get(),
                heading: location.heading.map(f64::from),
                speed: location.speed.map(f64::from),
                timestamp: location.recorded_at,
                seq: new.seq,
            }),
            rooms: vec![room.clone()],
        });
    }
    if let Some(eta) = new.eta {
        let old_eta = old.and_then(|o| o.eta);
        let shift = old_eta.map(|o| {
            (eta.estimated_delivery_time - o.estimated_delivery_time)
                .num_seconds()
                .abs()
        });
        // A new source (a route instead of the estimate, or back) is news even when the time
        // barely moves.
        let resourced = old_eta.is_some_and(|o| o.source != eta.source);
        if resourced || shift.is_none_or(|s| s >= ETA_EVENT_THRESHOLD_SECS) {
            out.push(Outgoing {
                message: ServerMessage::EtaUpdate(EtaUpdateData {
                    order_id: new.order_id.clone(),
                    eta_minutes: eta.eta_minutes,
                    estimated_delivery_time: eta.estimated_delivery_time,
                    eta_source: eta.source,
                    estimated_pickup_time: eta.estimated_pickup_time,
                    seq: new.seq,
                }),
                rooms: vec![room],
            });
        }
    }
    out
}
