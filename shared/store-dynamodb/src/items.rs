//! The items [`DynamoStore`](crate::DynamoStore) writes, built by the very functions it writes
//! them with, and their size by DynamoDB's rules — for those who must know what a write costs
//! or what a stream record carries without writing (the local stack's metering and its
//! stream images).

use rnd_domain::OrderRecord;
use rnd_domain::device::Device;
use rnd_domain::ids::UserId;
use rnd_domain::inbox::EventKey;
use rnd_domain::live::LiveState;
use rnd_domain::ports::{ClosedConnection, Connection, StoreError};
use rnd_domain::profile::Profile;
use rnd_domain::rooms::Room;

pub use crate::fields::Wanted;
pub use crate::keys::Item;
use crate::keys::{CONNECTION_SK, SESSION_SK};

/// The row of an order or live record, with its keys, `itemType` and (orders) index
/// attributes. Fails with `Backend` when the record does not serialize.
pub fn order_record(record: &OrderRecord) -> Result<Item, StoreError> {
    match record {
        OrderRecord::Order(order) => crate::orders::order_item(order),
        OrderRecord::Live(live) => crate::orders::live_item(live),
    }
}

/// The attributes of [`order_record`]`(record)` that `wanted` asks for (those it has), a map
/// asked for some keys with only those; a live row's without building the whole row.
pub fn order_record_attributes<'k>(
    record: &OrderRecord,
    wanted: &dyn Fn(&str) -> Wanted<'k>,
) -> Result<Item, StoreError> {
    match record {
        OrderRecord::Order(order) => Ok(crate::orders::order_item(order)?
            .into_iter()
            .filter_map(|(name, value)| match wanted(&name) {
                Wanted::No => None,
                asked => Some((name, asked.keep(value))),
            })
            .collect()),
        OrderRecord::Live(live) => crate::orders::live_item_attributes(live, wanted),
    }
}

/// The size of [`order_record`]`(record)`; a live row's without building it (the local stack
/// meters every location update).
pub fn order_record_size(record: &OrderRecord) -> Result<usize, StoreError> {
    match record {
        OrderRecord::Order(order) => Ok(size(&crate::orders::order_item(order)?)),
        OrderRecord::Live(live) => live_row_size(live),
    }
}

/// The size of the live row DynamoStore writes for `live`, without building it.
pub fn live_row_size(live: &LiveState) -> Result<usize, StoreError> {
    crate::orders::live_item_size(live)
}

/// At least [`live_row_size`]`(live)`, found without sizing its numbers (each is counted at
/// [`MAX_NUMBER_BYTES`], the most one takes): several times cheaper, for a caller that needs
/// to know only whether the row fits in some number of bytes.
pub fn live_row_size_at_most(live: &LiveState) -> Result<usize, StoreError> {
    crate::orders::live_item_size_at_most(live)
}

pub use crate::item_size::MAX_NUMBER_BYTES;

/// The connection row of `connection` in `rooms` (deduplicated and sorted, as
/// `open_connection` stores them).
pub fn connection(connection: &Connection, rooms: &[Room]) -> Result<Item, StoreError> {
    crate::connections::ConnectionRow::open(connection, crate::connections::distinct(rooms))
        .to_item(CONNECTION_SK)
}

/// The session row kept for `closed` (the connection's attributes, when and how long).
pub fn session(closed: &ClosedConnection) -> Result<Item, StoreError> {
    crate::connections::ConnectionRow::open(
        &closed.connection,
        crate::connections::distinct(&closed.rooms),
    )
    .session(closed.disconnected_at)
    .to_item(SESSION_SK)
}

pub use crate::connections::MembershipRow as Membership;

/// The profile row of `profile`.
pub fn profile(profile: &Profile) -> Result<Item, StoreError> {
    crate::profiles::profile_item(profile)
}

/// The head item of `user`'s inbox (`INBOX#{userId}` / `HEAD`).
pub fn inbox_head(user: &UserId, epoch: u64, head: u64) -> Item {
    crate::inbox::head_item(user, epoch, head)
}

/// The key item (`KEY#{eventKey}`) of an inbox event kept at `position` until `ttl` (epoch s).
pub fn inbox_key(user: &UserId, key: &EventKey, position: u64, ttl: i64) -> Item {
    crate::inbox::key_item(user, key, position, ttl)
}

/// The event item (`POS#{position}`) keeping `event` in `user`'s inbox until `ttl` (epoch s).
pub use crate::inbox::event_item as inbox_event;

/// The item of a push device (`USER#{userId}` / `DEVICE#{deviceId}`).
pub fn device(device: &Device) -> Result<Item, StoreError> {
    crate::devices::device_item(device)
}

/// The item saying which device holds a token (`DEVTOKEN#{sha256}`).
pub fn device_token(device: &Device) -> Item {
    crate::devices::token_item(device)
}

pub use crate::item_size::size;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;
    use rnd_domain::ids::ConnectionId;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        // GIVEN items of each kind of value
        let s = item(&[("pk", AttributeValue::S("ORDER#1".into()))]);
        let n = item(&[("seq", AttributeValue::N("12300".into()))]);
        let set = item(&[(
            "rooms",
            AttributeValue::Ss(vec!["user:a".into(), "role:chef".into()]),
        )]);
        let map = item(&[(
            "m",
            AttributeValue::M(
                [("k".to_owned(), AttributeValue::Bool(true))]
                    .into_iter()
                    .collect(),
            ),
        )]);
        // WHEN they are sized THEN names and values count as DynamoDB counts them
        assert_eq!(size(&s), 2 + 7);
        assert_eq!(size(&n), 3 + 3, "123 → 2 bytes + 1");
        assert_eq!(size(&set), 5 + 6 + 9);
        assert_eq!(size(&map), 1 + 3 + (1 + 1 + 1));
    }

    #[test]
    fn a_membership_row_is_sized_as_the_item_written_without_building_it() {
        // GIVEN a membership of a connection in an order room
        let connection = ConnectionId::parse("Ab3dE5fG7hI=").expect("id");
        let user = UserId::parse("customer-1").expect("user");
        let room: Room = "order:order-1".parse().expect("room");
        let row = Membership::new(
            &connection,
            &user,
            &room,
            1_773_491_170,
            1_773_487_570,
            1_773_483_970_123,
        );
        // WHEN it is sized for metering THEN it is the size of the item DynamoStore writes
        assert_eq!(
            row.size().expect("sized"),
            size(&row.to_item().expect("item"))
        );
    }

    /// The new image of the first record of a stream fixture (`events/stream/*.json`).
    fn new_image(fixture: &str) -> serde_dynamo::Item {
        let record: serde_json::Value = serde_json::from_str(fixture).expect("fixture");
        serde_json::from_value(record["Records"][0]["dynamodb"]["NewImage"].clone()).expect("image")
    }

    /// The live row of an order in transit with every field set (as a stream record carries
    /// it), marked as announced.
    fn live_row_with_every_field() -> OrderRecord {
        let image = new_image(include_str!("../../../events/stream/live-eta-change.json"));
        let mut live: rnd_domain::live::LiveState =
            serde_dynamo::from_item(image).expect("live row");
        live.announced_seq = Some(live.seq);
        OrderRecord::Live(live)
    }

    #[test]
    fn a_live_row_is_sized_as_the_item_written_without_building_it() {
        // GIVEN the live row of an order in transit with every field set
        let record = live_row_with_every_field();
        // WHEN it is sized for metering
        // THEN it is the size of the item DynamoStore writes
        assert_eq!(
            order_record_size(&record).expect("sized"),
            size(&order_record(&record).expect("item"))
        );
    }

    /// How many numbers (`N`) `value` holds, in its maps and lists too.
    fn numbers_in(value: &AttributeValue) -> usize {
        match value {
            AttributeValue::N(_) => 1,
            AttributeValue::M(map) => map.values().map(numbers_in).sum(),
            AttributeValue::L(list) => list.iter().map(numbers_in).sum(),
            _ => 0,
        }
    }

    #[test]
    fn a_live_rows_bound_is_at_least_its_size_whatever_the_digits_of_its_numbers() {
        // GIVEN the live row of an order in transit with every field set, and the same row
        // with its driver's position written with few digits and with many
        let OrderRecord::Live(live) = live_row_with_every_field() else {
            unreachable!()
        };
        let mut rows = vec![live.clone()];
        for (latitude, longitude) in [
            (52.5, 13.25),
            (52.520_008_123_456_78, 13.404_954_987_654_32),
        ] {
            let mut row = live.clone();
            let location = row.location.as_mut().expect("a location");
            location.latitude = rnd_domain::geo::Latitude::parse(latitude).expect("a latitude");
            location.longitude = rnd_domain::geo::Longitude::parse(longitude).expect("a longitude");
            rows.push(row);
        }
        let bounds: Vec<usize> = rows
            .iter()
            .map(|row| live_row_size_at_most(row).expect("bound"))
            .collect();
        for (row, bound) in rows.iter().zip(&bounds) {
            // WHEN each is sized exactly and bounded
            let exact = live_row_size(row).expect("sized");
            let item = order_record(&OrderRecord::Live(row.clone())).expect("item");
            let numbers: usize = item.values().map(numbers_in).sum();
            // THEN the bound is at least the size, above it by at most what its numbers can
            // take beyond the 2 bytes each takes at the least
            assert!(*bound >= exact, "{bound} < {exact}");
            assert!(bound - exact <= numbers * (MAX_NUMBER_BYTES - 2));
            assert!(numbers >= 10, "{numbers} numbers");
        }
        // AND the bound is the same whatever the digits, where the sizes differ
        assert!(bounds.iter().all(|b| *b == bounds[0]), "{bounds:?}");
        let sizes: Vec<usize> = rows.iter().map(|r| live_row_size(r).unwrap()).collect();
        assert!(sizes[1] < sizes[2], "{sizes:?}");
    }

    /// The live row with every field set, and an order row.
    fn live_and_order_rows() -> [OrderRecord; 2] {
        let image = new_image(include_str!("../../../events/stream/order-insert.json"));
        let order = OrderRecord::Order(serde_dynamo::from_item(image).expect("order row"));
        [live_row_with_every_field(), order]
    }

    /// The attributes of `record` that `names` names, each asked for as `how`; and the whole
    /// row's attributes of those names.
    fn asked_and_whole(record: &OrderRecord, names: &[&str], how: Wanted<'_>) -> (Item, Item) {
        let asked = order_record_attributes(record, &|name| {
            if names.contains(&name) {
                how
            } else {
                Wanted::No
            }
        })
        .expect("attributes");
        let whole = order_record(record).expect("item");
        let expected = whole
            .into_iter()
            .filter(|(name, _)| names.contains(&name.as_str()))
            .collect();
        (asked, expected)
    }

    #[test]
    fn the_named_attributes_of_a_row_are_those_of_the_whole_row() {
        // GIVEN the live row of an order in transit with every field set, and an order row
        for record in live_and_order_rows() {
            let whole = order_record(&record).expect("item");
            let mut names: Vec<&str> = whole.keys().map(String::as_str).collect();
            names.sort_unstable();
            // WHEN every attribute, every other one, and names the row lacks are asked for
            for wanted in [
                names.clone(),
                names.iter().copied().step_by(2).collect(),
                vec!["itemType", "announcedSeq", "noSuchAttribute"],
                vec!["pk"],
                vec!["sk", "seq"],
            ] {
                let (attributes, expected) = asked_and_whole(&record, &wanted, Wanted::Whole);
                // THEN they are the whole row's attributes of those names, values and all
                assert_eq!(attributes, expected, "asked for {wanted:?}");
            }
        }
    }

    #[test]
    fn a_map_asked_for_some_keys_holds_the_whole_rows_entries_of_those_keys() {
        // GIVEN the live row of an order in transit with every field set (its maps: the
        // location, the ETA, the pickup and drop-off), and an order row (no maps: lists)
        for record in live_and_order_rows() {
            let whole = order_record(&record).expect("item");
            let some_keys = BTreeSet::from(["S".to_owned(), "L".to_owned()]);
            // WHEN attributes that are not maps (a string, a list, a number) are asked for
            // some keys
            let not_maps = ["itemType", "statusHistory", "seq"];
            let (attributes, expected) =
                asked_and_whole(&record, &not_maps, Wanted::Keys(&some_keys));
            // THEN each comes whole
            assert_eq!(attributes, expected);

            let maps: Vec<(&String, Vec<String>)> = whole
                .iter()
                .filter_map(|(name, value)| match value {
                    AttributeValue::M(map) => Some((name, map.keys().cloned().collect())),
                    _ => None,
                })
                .collect();
            assert_eq!(maps.is_empty(), matches!(record, OrderRecord::Order(_)));
            for (name, keys) in maps {
                let first = keys.iter().min().cloned().into_iter();
                // WHEN a map is asked for one key, all its keys, a key it lacks with one it
                // has, and no key
                for asked in [
                    first.clone().collect::<BTreeSet<String>>(),
                    keys.iter().cloned().collect(),
                    first.chain(["noSuchKey".to_owned()]).collect(),
                    BTreeSet::new(),
                ] {
                    let attributes = order_record_attributes(&record, &|n| {
                        if n == name.as_str() {
                            Wanted::Keys(&asked)
                        } else {
                            Wanted::No
                        }
                    })
                    .expect("attributes");
                    // THEN it holds the whole row's entries of those keys, and nothing else
                    let AttributeValue::M(entries) = &whole[name] else {
                        unreachable!("{name} is a map")
                    };
                    let expected: Item = entries
                        .iter()
                        .filter(|(key, _)| asked.contains(*key))
                        .map(|(key, value)| (key.clone(), value.clone()))
                        .collect();
                    assert_eq!(
                        attributes,
                        Item::from([(name.clone(), AttributeValue::M(expected))]),
                        "{name} asked for {asked:?}"
                    );
                }
            }
        }
    }
}
