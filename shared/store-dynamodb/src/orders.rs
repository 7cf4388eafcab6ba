//! [`OrderStore`] on the orders table: the order row (`ORDER#{id}` / `ORDER`, with the index
//! attributes), the live row (`ORDER#{id}` / `LIVE`) and the per-day order-number counters.

use std::borrow::Cow;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, ReturnValue, TransactWriteItem};
use chrono::NaiveDate;
use rnd_domain::ids::OrderId;
use rnd_domain::live::LiveState;
use rnd_domain::order::{Order, OrderView};
use rnd_domain::ports::{OrderPage, OrderQuery, OrderStore, StoreError};

use crate::DynamoStore;
use crate::error::{AdapterError, TxFailure, backend, corrupt, transact};
use crate::fields::Wanted;
use crate::keys::{
    COUNTER_SK, ITEM_TYPE, Item, LIVE_SK, ORDER_SK, OrderIndex, PK, SK, chef_gsi_pk, counter_pk,
    customer_gsi_pk, driver_gsi_pk, get_s, key, month_gsi_pk, month_of, n, order_gsi_sk, order_pk,
    s,
};

/// `itemType` of an order row.
pub(crate) const ORDER_TYPE: &str = "order";
/// `itemType` of a live row.
pub(crate) const LIVE_TYPE: &str = "live";

/// The order row: the `Order` as `serde_dynamo` writes it, plus keys, `itemType=order` and the
/// index attributes (`gsi3*` only once a driver is assigned).
pub(crate) fn order_item(order: &Order) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(order).map_err(backend)?;
    let id = &order.order_id;
    item.extend(key(order_pk(id), ORDER_SK));
    item.insert(ITEM_TYPE.into(), s(ORDER_TYPE));
    let sk = order_gsi_sk(order.created_at, id);
    let mut index = |index: OrderIndex, pk: String| {
        item.insert(index.pk_attr().into(), s(pk));
        item.insert(index.sk_attr().into(), s(sk.clone()));
    };
    index(OrderIndex::Customer, customer_gsi_pk(&order.customer_id));
    index(OrderIndex::Chef, chef_gsi_pk(&order.chef.chef_id));
    if let Some(driver) = order.driver_id() {
        index(OrderIndex::Driver, driver_gsi_pk(driver));
    }
    index(OrderIndex::Month, month_gsi_pk(&month_of(order.created_at)));
    Ok(item)
}

/// The live row: the `LiveState` as `serde_dynamo` writes it, plus keys and `itemType=live`.
pub(crate) fn live_item(live: &LiveState) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(live).map_err(backend)?;
    item.extend(live_row_attributes(live, &|_| true));
    Ok(item)
}

/// The attributes of [`live_item`]`(live)` that `wanted` names, without building the others
/// ([`named_fields`](crate::fields::named_fields)).
pub(crate) fn live_item_attributes<'k>(
    live: &LiveState,
    wanted: &dyn Fn(&str) -> Wanted<'k>,
) -> Result<Item, StoreError> {
    let mut item = crate::fields::named_fields(live, wanted).map_err(backend)?;
    item.extend(live_row_attributes(live, &|name| {
        wanted(name) != Wanted::No
    }));
    Ok(item)
}

/// What a live row holds besides the record's fields: its keys and `itemType`, those of them
/// that `wanted` names (a stream filter reads `itemType` alone: building the keys only to drop
/// them was a fifth of a filter view's attributes).
fn live_row_attributes(live: &LiveState, wanted: &dyn Fn(&str) -> bool) -> Item {
    live_row_strings(live, wanted)
        .map(|(name, value)| (name.to_owned(), s(value)))
        .collect()
}

/// The attributes of [`live_row_attributes`] that `wanted` names, as their names and string
/// values: the one list of them, which the row, its named attributes and its size read (sizing
/// it as a built map was half of sizing the row).
fn live_row_strings<'a>(
    live: &'a LiveState,
    wanted: &'a dyn Fn(&str) -> bool,
) -> impl Iterator<Item = (&'static str, Cow<'static, str>)> + 'a {
    [PK, SK, ITEM_TYPE]
        .into_iter()
        .filter(|name| wanted(name))
        .map(|name| {
            let value = match name {
                PK => Cow::Owned(order_pk(&live.order_id)),
                SK => Cow::Borrowed(LIVE_SK),
                _ => Cow::Borrowed(LIVE_TYPE),
            };
            (name, value)
        })
}

/// The size of [`live_item`]`(live)`, without building it.
pub(crate) fn live_item_size(live: &LiveState) -> Result<usize, StoreError> {
    let fields = crate::item_size::item_size(live).map_err(backend)?;
    Ok(fields + live_row_attributes_size(live))
}

/// At least [`live_item_size`]`(live)`: its numbers counted at the most a number takes
/// ([`item_size_at_most`](crate::item_size::item_size_at_most)).
pub(crate) fn live_item_size_at_most(live: &LiveState) -> Result<usize, StoreError> {
    let fields = crate::item_size::item_size_at_most(live).map_err(backend)?;
    Ok(fields + live_row_attributes_size(live))
}

/// The size of what a live row holds besides the record's fields (string attributes).
fn live_row_attributes_size(live: &LiveState) -> usize {
    live_row_strings(live, &|_| true)
        .map(|(name, value)| crate::item_size::string_attribute_size(name, &value))
        .sum()
}

/// Parses an order row (extra attributes such as keys and index attributes are ignored).
pub(crate) fn parse_order(table: &str, id: &OrderId, item: Item) -> Result<Order, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| corrupt(format_args!("{table} order {id}"), e))
}

/// Parses a live row.
pub(crate) fn parse_live(table: &str, id: &OrderId, item: Item) -> Result<LiveState, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| corrupt(format_args!("{table} live {id}"), e))
}

/// A transaction `Put` of `item` on the condition that its stored `seq` is `previous_seq`.
fn put_if_seq(table: &str, item: Item, previous_seq: u64) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("#seq = :previous")
        .expression_attribute_names("#seq", "seq")
        .expression_attribute_values(":previous", n(previous_seq))
        .build()
        .map_err(backend)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A transaction `Put` of `item` on the condition that no item has its key.
fn put_new(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#pk)")
        .expression_attribute_names("#pk", PK)
        .build()
        .map_err(backend)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl DynamoStore {
    pub(crate) fn orders_table(&self) -> &str {
        &self.tables.orders
    }
}

#[async_trait]
impl OrderStore for DynamoStore {
    /// One `TransactWriteItems`: `Put` of the order row and of the live row, both
    /// `attribute_not_exists(pk)`. Fails with [`StoreError::AlreadyExists`] when the id is
    /// taken.
    async fn create_order(&self, view: &OrderView) -> Result<(), StoreError> {
        let table = self.orders_table();
        let items = vec![
            put_new(table, order_item(&view.order)?)?,
            put_new(table, live_item(&view.live)?)?,
        ];
        match transact(&self.client, "create_order", items).await {
            Ok(()) => {
                tracing::debug!(table, order = %view.order.order_id, "created order");
                Ok(())
            }
            Err(TxFailure::ConditionFailed(_)) => Err(StoreError::AlreadyExists),
            Err(TxFailure::Failed(e)) => Err(e),
        }
    }

    /// One consistent `Query` of `pk = ORDER#{id}`: both rows. `None` when there are none;
    /// [`StoreError::Corrupt`] when one of the two is missing or does not parse.
    async fn get_order(&self, id: &OrderId) -> Result<Option<OrderView>, StoreError> {
        let table = self.orders_table();
        let out = self
            .client
            .query()
            .table_name(table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(order_pk(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        let (mut order, mut live) = (None, None);
        for item in out.items.unwrap_or_default() {
            match get_s(&item, SK) {
                Some(ORDER_SK) => order = Some(parse_order(table, id, item)?),
                Some(LIVE_SK) => live = Some(parse_live(table, id, item)?),
                _ => {}
            }
        }
        match (order, live) {
            (None, None) => Ok(None),
            (Some(order), Some(live)) => Ok(Some(OrderView { order, live })),
            (Some(_), None) => Err(corrupt(format_args!("{table} order {id}"), "no live row")),
            (None, Some(_)) => Err(corrupt(format_args!("{table} order {id}"), "no order row")),
        }
    }

    /// One `TransactWriteItems`: `Put` of `next`'s order row on condition
    /// `seq = previous.order.seq`, and of its live row on condition `seq = previous.live.seq`.
    /// The order row's index attributes are recomputed (`gsi3*` appear with the driver).
    /// Fails with [`StoreError::Conflict`] when either row moved on (another transition, an
    /// accepted location) or is gone.
    async fn commit_transition(
        &self,
        previous: &OrderView,
        next: &OrderView,
    ) -> Result<(), StoreError> {
        let table = self.orders_table();
        let items = vec![
            put_if_seq(table, order_item(&next.order)?, previous.order.seq)?,
            put_if_seq(table, live_item(&next.live)?, previous.live.seq)?,
        ];
        match transact(&self.client, "commit_transition", items).await {
            Ok(()) => {
                tracing::debug!(
                    table,
                    order = %next.order.order_id,
                    seq = next.seq(),
                    "committed transition"
                );
                Ok(())
            }
            Err(TxFailure::ConditionFailed(_)) => Err(StoreError::Conflict),
            Err(TxFailure::Failed(e)) => Err(e),
        }
    }

    /// `UpdateItem` `ADD value :1` on `COUNTER#orderNumber#{yyyymmdd}` (`ReturnValues =
    /// UPDATED_NEW`): atomic, so concurrent callers get distinct numbers.
    async fn next_order_number(&self, day: NaiveDate) -> Result<u32, StoreError> {
        let table = self.orders_table();
        let out = self
            .client
            .update_item()
            .table_name(table)
            .set_key(Some(key(counter_pk(day), COUNTER_SK)))
            .update_expression("SET #type = :counter ADD #value :one")
            .expression_attribute_names("#type", ITEM_TYPE)
            .expression_attribute_names("#value", "value")
            .expression_attribute_values(":counter", s("counter"))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(backend)?;
        let attributes = out
            .attributes
            .ok_or_else(|| backend(AdapterError::Unexpected("UpdateItem without attributes")))?;
        crate::keys::get_n::<u32>(&attributes, "value")
            .ok_or_else(|| corrupt(format_args!("{table} {}", counter_pk(day)), "bad value"))
    }

    /// `Query` of the filter's index (newest first), then `BatchGetItem` of the rows; see the
    /// `listing` module for cursors and the month walk of `All`.
    async fn list_orders(&self, query: &OrderQuery) -> Result<OrderPage, StoreError> {
        self.list(query).await
    }
}
