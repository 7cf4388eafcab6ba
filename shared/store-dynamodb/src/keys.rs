//! Key and attribute names of both tables, exactly as `docs/table-design.md` has them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rnd_domain::ids::{ConnectionId, OrderId, UserId};
use rnd_domain::rooms::Room;

/// An item (or a key) as the SDK carries it.
pub type Item = HashMap<String, AttributeValue>;

/// Partition key attribute of both tables.
pub(crate) const PK: &str = "pk";
/// Sort key attribute of both tables.
pub(crate) const SK: &str = "sk";
/// What kind of row an item is.
pub(crate) const ITEM_TYPE: &str = "itemType";
/// The TTL attribute of the connections table (epoch seconds).
pub(crate) const TTL: &str = "ttl";

/// Sort key of a connection row.
pub(crate) const CONNECTION_SK: &str = "CONN";
/// Sort key of a closed connection's session row.
pub(crate) const SESSION_SK: &str = "SESSION";
/// Sort key of an order row.
pub(crate) const ORDER_SK: &str = "ORDER";
/// Sort key of an order's live row.
pub(crate) const LIVE_SK: &str = "LIVE";
/// Sort key of an order-number counter.
pub(crate) const COUNTER_SK: &str = "COUNTER";
/// Sort key of a user's profile row.
pub(crate) const PROFILE_SK: &str = "PROFILE";

/// `CONN#{connectionId}`: partition of a connection and its session row.
pub(crate) fn connection_pk(id: &ConnectionId) -> String {
    format!("CONN#{id}")
}

/// `ROOM#{room}`: partition of a room's memberships.
pub(crate) fn room_pk(room: &Room) -> String {
    format!("ROOM#{room}")
}

/// `CONN#{connectionId}`: sort key of a membership row.
pub(crate) fn membership_sk(id: &ConnectionId) -> String {
    format!("CONN#{id}")
}

/// `ORDER#{orderId}`: partition of an order and its live row.
pub(crate) fn order_pk(id: &OrderId) -> String {
    format!("ORDER#{id}")
}

/// `USER#{userId}`: partition of a user's profile row (orders table).
pub(crate) fn user_pk(id: &UserId) -> String {
    format!("USER#{id}")
}

/// `COUNTER#orderNumber#{yyyymmdd}`: the order-number counter of a day.
pub(crate) fn counter_pk(day: NaiveDate) -> String {
    format!("COUNTER#orderNumber#{}", day.format("%Y%m%d"))
}

/// A string attribute.
pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The primary key `{pk, sk}`.
pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

/// A string attribute of an item, if it is one.
pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

/// A number attribute of an item, parsed, if it is one.
pub(crate) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

/// The four global secondary indexes of the orders table (KEYS_ONLY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderIndex {
    /// `gsi1`: `CUSTOMER#{customerId}`.
    Customer,
    /// `gsi2`: `CHEF#{chefId}`.
    Chef,
    /// `gsi3`: `DRIVER#{driverId}`, once a driver is assigned.
    Driver,
    /// `gsi4`: `ORDERS#{yyyy-mm}` of the creation month.
    Month,
}

impl OrderIndex {
    /// All four, in index-number order.
    pub(crate) const ALL: [OrderIndex; 4] = [
        OrderIndex::Customer,
        OrderIndex::Chef,
        OrderIndex::Driver,
        OrderIndex::Month,
    ];

    /// `gsi1` … `gsi4`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            OrderIndex::Customer => "gsi1",
            OrderIndex::Chef => "gsi2",
            OrderIndex::Driver => "gsi3",
            OrderIndex::Month => "gsi4",
        }
    }

    /// `gsiNpk`.
    pub(crate) fn pk_attr(self) -> &'static str {
        match self {
            OrderIndex::Customer => "gsi1pk",
            OrderIndex::Chef => "gsi2pk",
            OrderIndex::Driver => "gsi3pk",
            OrderIndex::Month => "gsi4pk",
        }
    }

    /// `gsiNsk`.
    pub(crate) fn sk_attr(self) -> &'static str {
        match self {
            OrderIndex::Customer => "gsi1sk",
            OrderIndex::Chef => "gsi2sk",
            OrderIndex::Driver => "gsi3sk",
            OrderIndex::Month => "gsi4sk",
        }
    }
}

/// `CUSTOMER#{id}`.
pub(crate) fn customer_gsi_pk(id: &impl std::fmt::Display) -> String {
    format!("CUSTOMER#{id}")
}

/// `CHEF#{id}`.
pub(crate) fn chef_gsi_pk(id: &impl std::fmt::Display) -> String {
    format!("CHEF#{id}")
}

/// `DRIVER#{id}`.
pub(crate) fn driver_gsi_pk(id: &impl std::fmt::Display) -> String {
    format!("DRIVER#{id}")
}

/// `ORDERS#{yyyy-mm}`.
pub(crate) fn month_gsi_pk(month: &str) -> String {
    format!("ORDERS#{month}")
}

/// `yyyy-mm` of a time.
pub(crate) fn month_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m").to_string()
}

/// `{createdAt}#{orderId}`: the sort key of every order index. The time is RFC 3339 with a
/// fixed nine fractional digits, so text order is time order (chrono's serde form drops
/// trailing zero digits, which would not sort).
pub(crate) fn order_gsi_sk(created_at: DateTime<Utc>, id: &OrderId) -> String {
    format!(
        "{}#{id}",
        created_at.to_rfc3339_opts(SecondsFormat::Nanos, true)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_sort_keys_sort_by_time() {
        let id = OrderId::parse("o-1").unwrap();
        let a = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let b = DateTime::parse_from_rfc3339("2026-01-01T00:00:00.5Z")
            .unwrap()
            .to_utc();
        assert!(order_gsi_sk(a, &id) < order_gsi_sk(b, &id));
        assert_eq!(order_gsi_sk(a, &id), "2026-01-01T00:00:00.000000000Z#o-1");
    }

    #[test]
    fn keys_follow_the_design() {
        let day = NaiveDate::from_ymd_opt(2026, 2, 3).unwrap();
        assert_eq!(counter_pk(day), "COUNTER#orderNumber#20260203");
        let room: Room = "order:o-9".parse().unwrap();
        assert_eq!(room_pk(&room), "ROOM#order:o-9");
        assert_eq!(order_pk(&OrderId::parse("o-9").unwrap()), "ORDER#o-9");
        assert_eq!(user_pk(&UserId::parse("chef-1").unwrap()), "USER#chef-1");
    }
}
