//! Rooms and who may join them or stream into them.
//!
//! Rooms are the audiences of events: `user:{id}` (every connection of a user), `role:{role}`
//! (every connection of a role that has a room: see [`role_has_room`]) and `order:{id}` (every
//! connection subscribed to an order).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::identity::{Actor, Role};
use crate::ids::{OrderId, UserId};
use crate::order::{Order, Relation};
use crate::visibility::DriverAccess;

/// An audience of events.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Room {
    /// Every connection of one user.
    User(UserId),
    /// Every connection of one role.
    Role(Role),
    /// Every connection subscribed to one order.
    Order(OrderId),
}

impl fmt::Display for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Room::User(id) => write!(f, "user:{id}"),
            Room::Role(role) => write!(f, "role:{role}"),
            Room::Order(id) => write!(f, "order:{id}"),
        }
    }
}

impl FromStr for Room {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ValidationError::new("room", "is not a room name");
        let (kind, id) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "user" => Ok(Room::User(UserId::parse(id)?)),
            "role" => Ok(Room::Role(id.parse().map_err(|_| bad())?)),
            "order" => Ok(Room::Order(OrderId::parse(id)?)),
            _ => Err(bad()),
        }
    }
}

impl TryFrom<String> for Room {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Room> for String {
    fn from(room: Room) -> String {
        room.to_string()
    }
}

/// Why a room request was refused. Maps to the WebSocket error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RoomRefusal {
    /// No such order — also the answer for orders the actor has nothing to do with, so that
    /// other people's order ids cannot be probed.
    #[error("order not found")]
    NotFound,
    /// The actor sees the order but may not do this.
    #[error("not allowed for this order")]
    Forbidden,
}

/// May `actor` subscribe to `order`'s room at `now`? Its customer, its chef, admins, and its
/// assigned driver until `driver_access` after the order ended may; anyone else is told the
/// order does not exist.
pub fn authorize_subscribe(
    actor: &Actor,
    order: &Order,
    now: DateTime<Utc>,
    driver_access: DriverAccess,
) -> Result<(), RoomRefusal> {
    match order.relation_at(actor, now, driver_access) {
        Relation::Stranger => Err(RoomRefusal::NotFound),
        _ => Ok(()),
    }
}

/// May `actor` stream a location for `order`? Only its assigned driver, only while the order is
/// `assigned_to_driver`, `picked_up` or `in_transit`.
pub fn authorize_location(actor: &Actor, order: &Order) -> Result<(), RoomRefusal> {
    match order.relation(actor) {
        Relation::Stranger => Err(RoomRefusal::NotFound),
        Relation::Driver if order.status.is_driver_active() => Ok(()),
        _ => Err(RoomRefusal::Forbidden),
    }
}

/// The roles whose room is an audience of some event: only `role:admin`, which hears every
/// `order:status_update`. No event goes to `role:customer`, `role:chef` or `role:driver`.
pub const ROLES_WITH_A_ROOM: [Role; 1] = [Role::Admin];

/// Does `role` have a room (`role:{role}`) that its connections join at `$connect`?
///
/// Only roles whose room some event is sent to: a membership nobody reads is a write on every
/// connect and disconnect, and all the connections of a role share one partition
/// (`ROOM#role:{role}`), so a connect storm of drivers or customers would meet DynamoDB's
/// limit of 1 000 writes per second per partition there for nothing.
pub fn role_has_room(role: Role) -> bool {
    ROLES_WITH_A_ROOM.contains(&role)
}

/// The rooms a new connection joins: its user's, and its role's when that role has a room
/// (admins: `role:admin`; customers, chefs and drivers join their user room only).
pub fn initial_rooms(actor: &Actor) -> Vec<Room> {
    let mut rooms = vec![Room::User(actor.user_id.clone())];
    if role_has_room(actor.role) {
        rooms.push(Room::Role(actor.role));
    }
    rooms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_round_trip() {
        for name in ["user:u-1", "role:admin", "order:o-9"] {
            let room: Room = name.parse().unwrap();
            assert_eq!(room.to_string(), name);
        }
        assert!("role:pilot".parse::<Room>().is_err());
        assert!("chat:1".parse::<Room>().is_err());
        assert!("order:".parse::<Room>().is_err());
        assert!("order".parse::<Room>().is_err());
    }
}
