//! Paged order listing over the KEYS_ONLY indexes: `Query` the index newest first, then
//! `BatchGetItem` the order rows, returned in index order.
//!
//! A cursor is opaque text: base64url (no padding) of a small JSON document holding the index
//! key of the last order returned (`k`: `pk`, `sk`, `gsiNpk`, `gsiNsk`) and, for `All`, the
//! month partition it is in (`m`: `yyyy-mm`). Each page asks the index for one order more than
//! the limit, so a cursor is returned exactly when another order follows.
//!
//! `All` walks the month partitions `ORDERS#{yyyy-mm}` of `gsi4` backwards from the current
//! month (UTC), twelve months at most.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Datelike, Utc};
use rnd_domain::order::Order;
use rnd_domain::ports::{OrderFilter, OrderPage, OrderQuery, StoreError};
use serde::{Deserialize, Serialize};

use crate::DynamoStore;
use crate::error::{backend, batch_get, corrupt};
use crate::keys::{
    Item, OrderIndex, PK, SK, chef_gsi_pk, customer_gsi_pk, driver_gsi_pk, get_s, month_gsi_pk, s,
};

/// Largest page.
const MAX_LIMIT: u32 = 100;
/// Month partitions `All` looks at, the current one included.
const MONTHS: i32 = 12;

/// A calendar month, as months since year 0 (so that `- 1` is the month before).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Month(i32);

impl Month {
    fn of(at: DateTime<Utc>) -> Month {
        Month(at.year() * 12 + at.month0() as i32)
    }

    /// Parses `yyyy-mm`.
    fn parse(text: &str) -> Option<Month> {
        let (year, month) = text.split_once('-')?;
        let (year, month): (i32, i32) = (year.parse().ok()?, month.parse().ok()?);
        (year >= 0 && (1..=12).contains(&month) && text.len() == 7)
            .then_some(Month(year * 12 + month - 1))
    }

    fn label(self) -> String {
        format!(
            "{:04}-{:02}",
            self.0.div_euclid(12),
            self.0.rem_euclid(12) + 1
        )
    }
}

/// What a cursor holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Cursor {
    /// The month partition (`All` only).
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    month: Option<String>,
    /// The index key to continue after; absent to start at the top of `month`.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    key: Option<BTreeMap<String, String>>,
}

fn invalid_cursor(why: &str) -> StoreError {
    tracing::debug!(why, "invalid list cursor");
    StoreError::InvalidCursor
}

impl Cursor {
    fn encode(&self) -> Result<String, StoreError> {
        let json = serde_json::to_vec(self).map_err(backend)?;
        Ok(URL_SAFE_NO_PAD.encode(json))
    }

    /// Fails with [`StoreError::InvalidCursor`] when `text` is not a cursor of ours.
    fn decode(text: &str) -> Result<Cursor, StoreError> {
        let json = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| invalid_cursor("not base64url"))?;
        serde_json::from_slice(&json).map_err(|_| invalid_cursor("not a cursor"))
    }
}

/// The index key of a (KEYS_ONLY) index item, as a cursor holds it.
fn cursor_key(index: OrderIndex, item: &Item) -> Result<BTreeMap<String, String>, StoreError> {
    [PK, SK, index.pk_attr(), index.sk_attr()]
        .into_iter()
        .map(|name| {
            get_s(item, name)
                .map(|v| (name.to_owned(), v.to_owned()))
                .ok_or_else(|| corrupt(format_args!("index {} item", index.name()), "no key"))
        })
        .collect()
}

/// The `ExclusiveStartKey` of a cursor key, checked against the index and its partition.
fn start_key(
    index: OrderIndex,
    partition: &str,
    key: BTreeMap<String, String>,
) -> Result<Item, StoreError> {
    let expected = [PK, SK, index.pk_attr(), index.sk_attr()];
    if key.len() != expected.len() || !expected.iter().all(|name| key.contains_key(*name)) {
        return Err(invalid_cursor("not a key of this index"));
    }
    if key.get(index.pk_attr()).map(String::as_str) != Some(partition) {
        return Err(invalid_cursor("from another listing"));
    }
    Ok(key.into_iter().map(|(k, v)| (k, s(v))).collect())
}

impl DynamoStore {
    /// Lists orders for [`rnd_domain::ports::OrderStore::list_orders`]. The limit is clamped
    /// to 1–100. Fails with [`StoreError::InvalidCursor`] for a cursor that is not one of ours (or is
    /// from another filter), `Backend` on SDK errors.
    pub(crate) async fn list(&self, query: &OrderQuery) -> Result<OrderPage, StoreError> {
        let limit = query.limit.clamp(1, MAX_LIMIT) as usize;
        let cursor = query.cursor.as_deref().map(Cursor::decode).transpose()?;
        let (index, partitions) = match &query.filter {
            OrderFilter::Customer(id) => (OrderIndex::Customer, vec![(None, customer_gsi_pk(id))]),
            OrderFilter::Chef(id) => (OrderIndex::Chef, vec![(None, chef_gsi_pk(id))]),
            OrderFilter::Driver(id) => (OrderIndex::Driver, vec![(None, driver_gsi_pk(id))]),
            OrderFilter::All => {
                let current = Month::of(Utc::now());
                let oldest = Month(current.0 - (MONTHS - 1));
                let start = match cursor.as_ref().map(|c| c.month.as_deref()) {
                    None => current,
                    Some(Some(m)) => Month::parse(m).ok_or_else(|| invalid_cursor("bad month"))?,
                    Some(None) => return Err(invalid_cursor("no month")),
                };
                // Only a month this listing walks: a cursor is never issued for another, and a
                // forged one must not make one request query thousands of partitions.
                if !(oldest..=current).contains(&start) {
                    return Err(invalid_cursor("a month outside the listing"));
                }
                let months = (oldest.0..=start.0)
                    .rev()
                    .map(|m| {
                        let month = Month(m);
                        (Some(month), month_gsi_pk(&month.label()))
                    })
                    .collect();
                (OrderIndex::Month, months)
            }
        };
        let mut next_start = match (cursor, partitions.first()) {
            (Some(Cursor { key: Some(key), .. }), Some((_, partition))) => {
                Some(start_key(index, partition, key)?)
            }
            _ => None,
        };

        // Index items of the page, with their month, plus one more if there is one.
        let mut found: Vec<(Option<Month>, Item)> = Vec::new();
        'partitions: for (month, partition) in &partitions {
            let mut exclusive_start = next_start.take();
            loop {
                let want = limit + 1 - found.len();
                let out = self
                    .client
                    .query()
                    .table_name(self.orders_table())
                    .index_name(index.name())
                    .key_condition_expression("#pk = :pk")
                    .expression_attribute_names("#pk", index.pk_attr())
                    .expression_attribute_values(":pk", s(partition.as_str()))
                    .scan_index_forward(false)
                    .limit(i32::try_from(want).unwrap_or(i32::MAX))
                    .set_exclusive_start_key(exclusive_start.take())
                    .send()
                    .await
                    .map_err(backend)?;
                found.extend(
                    out.items
                        .unwrap_or_default()
                        .into_iter()
                        .map(|i| (*month, i)),
                );
                if found.len() > limit {
                    break 'partitions;
                }
                match out.last_evaluated_key {
                    Some(key) if !key.is_empty() => exclusive_start = Some(key),
                    _ => break,
                }
            }
        }

        let next_cursor = if found.len() > limit {
            found.truncate(limit);
            found
                .last()
                .map(|(month, last)| {
                    Cursor {
                        month: month.map(Month::label),
                        key: Some(cursor_key(index, last)?),
                    }
                    .encode()
                })
                .transpose()?
        } else {
            None
        };
        let keys = found
            .iter()
            .map(|(_, item)| {
                let pk = get_s(item, PK).ok_or_else(|| corrupt("index item", "no pk"))?;
                let sk = get_s(item, SK).ok_or_else(|| corrupt("index item", "no sk"))?;
                Ok(crate::keys::key(pk, sk))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let orders = self.batch_get_orders(keys).await?;
        tracing::debug!(
            table = self.orders_table(),
            index = index.name(),
            count = orders.len(),
            more = next_cursor.is_some(),
            "listed orders"
        );
        Ok(OrderPage {
            orders,
            next_cursor,
        })
    }

    /// Reads the order rows of `keys` with `BatchGetItem` (consistent reads, so a listing shows
    /// the current state), retrying unprocessed keys a bounded number of times. Returns them
    /// in the order of `keys`, skipping rows that are gone.
    async fn batch_get_orders(&self, keys: Vec<Item>) -> Result<Vec<Order>, StoreError> {
        let table = self.orders_table();
        let mut rows = batch_get(&self.client, table, &keys).await?;
        keys.iter()
            .filter_map(|k| match (k.get(PK), k.get(SK)) {
                (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => rows
                    .remove(&(pk.clone(), sk.clone()))
                    .map(|item| (pk, item)),
                _ => None,
            })
            .map(|(pk, item)| {
                serde_dynamo::from_item(item).map_err(|e| corrupt(format_args!("{table} {pk}"), e))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_print_and_step_back_across_years() {
        let jan = Month::parse("2026-01").unwrap();
        assert_eq!(jan.label(), "2026-01");
        assert_eq!(Month(jan.0 - 1).label(), "2025-12");
        assert_eq!(
            Month::of(
                DateTime::parse_from_rfc3339("2026-01-31T23:59:59Z")
                    .unwrap()
                    .to_utc()
            ),
            jan
        );
        for bad in ["2026-13", "2026-00", "2026-1", "x-01", "2026"] {
            assert_eq!(Month::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_foreign_text_is_refused() {
        let cursor = Cursor {
            month: Some("2026-05".into()),
            key: Some(BTreeMap::from([("pk".into(), "ORDER#o-1".into())])),
        };
        let text = cursor.encode().unwrap();
        assert!(
            text.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(Cursor::decode(&text).unwrap(), cursor);
        assert!(matches!(
            Cursor::decode("%%%"),
            Err(StoreError::InvalidCursor)
        ));
        assert!(matches!(
            Cursor::decode(&URL_SAFE_NO_PAD.encode("[1]")),
            Err(StoreError::InvalidCursor)
        ));
    }

    #[test]
    fn a_cursor_key_must_belong_to_the_index_and_partition() {
        let index = OrderIndex::Customer;
        let key: BTreeMap<String, String> = [
            ("pk", "ORDER#o-1"),
            ("sk", "ORDER"),
            ("gsi1pk", "CUSTOMER#c-1"),
            ("gsi1sk", "2026-01-01T00:00:00.000000000Z#o-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert!(start_key(index, "CUSTOMER#c-1", key.clone()).is_ok());
        assert!(start_key(index, "CUSTOMER#c-2", key.clone()).is_err());
        assert!(start_key(OrderIndex::Chef, "CUSTOMER#c-1", key).is_err());
    }
}
