//! [`InboxStore`] on the connections table: one partition per user, `INBOX#{userId}`, with
//!
//! - `HEAD`: `itemType=inbox_head`, `epoch` (ms, when the inbox was created) and `head` (the
//!   newest position); no TTL;
//! - `POS#{position:020}`: `itemType=inbox_event`, `epoch`, `position`, `eventKey`, `message`
//!   (JSON of the message as first sent, without its cursor), `ttl`;
//! - `KEY#{eventKey}`: `itemType=inbox_key`, `position`, `ttl` — what makes appends idempotent.
//!
//! An append reads the head and the keys with one consistent `BatchGetItem`, then writes, in
//! one `TransactWriteItems`, the head (conditioned on the value read, or on its absence), and
//! for each new event its `KEY#` (conditioned on no live key) and `POS#` item. A racing append
//! fails the condition and is retried from the read, so positions are gapless and each event
//! is kept once. Readers read the head first, then `Query` the `POS#` range: a position the
//! head names is committed with its event.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use rnd_domain::ids::UserId;
use rnd_domain::inbox::{Appended, EventKey, InboxEvent, InboxPage, KeptEvent};
use rnd_domain::ports::{InboxStore, StoreError};
use rnd_domain::protocol::ServerMessage;

use crate::DynamoStore;
use crate::error::{TxFailure, backend, backoff, batch_get, corrupt, transact};
use crate::keys::{ITEM_TYPE, Item, PK, SK, TTL, get_n, get_s, key, n, s};

/// Events per transaction: 1 head + 2 items per event stays under the 100-item limit.
const EVENTS_PER_TRANSACTION: usize = 32;
/// Attempts of one transaction that keeps losing to racing appends (then `Backend`).
const APPEND_ATTEMPTS: u32 = 8;

const HEAD_SK: &str = "HEAD";
const EPOCH: &str = "epoch";
const HEAD: &str = "head";
const POSITION: &str = "position";
const EVENT_KEY: &str = "eventKey";
const MESSAGE: &str = "message";

/// `INBOX#{userId}`: the partition of a user's inbox.
fn inbox_pk(user: &UserId) -> String {
    format!("INBOX#{user}")
}

/// `POS#{position}`, zero-padded so that text order is position order.
fn position_sk(position: u64) -> String {
    format!("POS#{position:020}")
}

/// `KEY#{eventKey}`.
fn key_sk(event: &EventKey) -> String {
    format!("KEY#{event}")
}

/// The inbox's head as read: `None` when the user has no inbox yet.
fn read_head(item: Option<&Item>, user: &UserId) -> Result<Option<(u64, u64)>, StoreError> {
    let Some(item) = item else {
        return Ok(None);
    };
    match (get_n::<u64>(item, EPOCH), get_n::<u64>(item, HEAD)) {
        (Some(epoch), Some(head)) => Ok(Some((epoch, head))),
        _ => Err(corrupt(
            format_args!("inbox head of {user}"),
            "no epoch or head",
        )),
    }
}

/// An append that kept losing to racing appends.
#[derive(Debug, thiserror::Error)]
#[error("inbox append lost to racing appends {APPEND_ATTEMPTS} times in a row")]
struct AppendError;

impl DynamoStore {
    /// Appends one chunk (at most [`EVENTS_PER_TRANSACTION`] events): read, then one
    /// conditional transaction, retried from the read when a racing append wins.
    async fn append_chunk(
        &self,
        user: &UserId,
        events: &[InboxEvent],
        now: DateTime<Utc>,
        retention: chrono::Duration,
    ) -> Result<Appended, StoreError> {
        let table = self.connections_table();
        let pk = inbox_pk(user);
        let now_s = now.timestamp();
        let ttl = (now + retention).timestamp();
        // BatchGetItem refuses a key twice: an event key repeated in the chunk is read once.
        let distinct: std::collections::BTreeSet<String> =
            events.iter().map(|e| key_sk(&e.key)).collect();
        let mut keys = vec![key(&pk, HEAD_SK)];
        keys.extend(distinct.into_iter().map(|sk| key(&pk, sk)));
        let mut attempt = 1;
        loop {
            let rows = batch_get(&self.client, table, &keys).await?;
            let head = read_head(rows.get(&(pk.clone(), HEAD_SK.to_owned())), user)?;
            let (epoch, old_head) =
                head.unwrap_or_else(|| (u64::try_from(now.timestamp_millis()).unwrap_or(1), 0));
            // Positions of the events already kept (keys past their TTL do not count), and of
            // the ones this chunk adds.
            let mut known: HashMap<&str, u64> = HashMap::new();
            for event in events {
                let row = rows.get(&(pk.clone(), key_sk(&event.key)));
                if let Some(row) = row.filter(|r| get_n::<i64>(r, TTL).is_some_and(|t| t > now_s)) {
                    let position = get_n::<u64>(row, POSITION).ok_or_else(|| {
                        corrupt(
                            format_args!("inbox key {} of {user}", event.key),
                            "no position",
                        )
                    })?;
                    known.insert(event.key.as_str(), position);
                }
            }
            let mut head_now = old_head;
            let mut items = Vec::new();
            for event in events {
                if known.contains_key(event.key.as_str()) {
                    continue;
                }
                head_now += 1;
                known.insert(event.key.as_str(), head_now);
                items.push(self.key_put(key_item(user, &event.key, head_now, ttl), now_s)?);
                items.push(self.event_put(event_item(user, event, epoch, head_now, ttl)?)?);
            }
            let positions = events.iter().map(|e| known[e.key.as_str()]).collect();
            let added = usize::try_from(head_now - old_head).unwrap_or(usize::MAX);
            if items.is_empty() {
                return Ok(Appended {
                    epoch,
                    positions,
                    added,
                });
            }
            items.insert(0, self.head_write(user, head, epoch, head_now)?);
            match transact(&self.client, "append to inbox", items).await {
                Ok(()) => {
                    tracing::debug!(table, user_id = %user, head = head_now, "appended to inbox");
                    return Ok(Appended {
                        epoch,
                        positions,
                        added,
                    });
                }
                Err(TxFailure::ConditionFailed(_)) if attempt < APPEND_ATTEMPTS => {
                    tracing::debug!(user_id = %user, attempt, "inbox append raced; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(TxFailure::ConditionFailed(_)) => return Err(backend(AppendError)),
                Err(TxFailure::Failed(e)) => return Err(e),
            }
        }
    }

    /// The head's write: created (when there was none) or moved from the head read.
    fn head_write(
        &self,
        user: &UserId,
        read: Option<(u64, u64)>,
        epoch: u64,
        head: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let table = self.connections_table();
        let item = match read {
            None => TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(table)
                        .set_item(Some(head_item(user, epoch, head)))
                        .condition_expression("attribute_not_exists(#pk)")
                        .expression_attribute_names("#pk", PK)
                        .build()
                        .map_err(backend)?,
                )
                .build(),
            Some((_, old)) => TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(table)
                        .set_key(Some(key(inbox_pk(user), HEAD_SK)))
                        .update_expression("SET #head = :new")
                        .condition_expression("#head = :old")
                        .expression_attribute_names("#head", HEAD)
                        .expression_attribute_values(":new", n(head))
                        .expression_attribute_values(":old", n(old))
                        .build()
                        .map_err(backend)?,
                )
                .build(),
        };
        Ok(item)
    }

    /// `KEY#{eventKey}`, conditioned on no live key (a key past its TTL may linger until
    /// DynamoDB deletes it).
    fn key_put(&self, item: Item, now_s: i64) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(self.connections_table())
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(#pk) OR #ttl <= :now")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#ttl", TTL)
                    .expression_attribute_values(":now", n(now_s))
                    .build()
                    .map_err(backend)?,
            )
            .build())
    }

    /// `POS#{position}`: the event itself.
    fn event_put(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(self.connections_table())
                    .set_item(Some(item))
                    .build()
                    .map_err(backend)?,
            )
            .build())
    }
}

/// The `HEAD` item of `user`'s inbox.
pub(crate) fn head_item(user: &UserId, epoch: u64, head: u64) -> Item {
    let mut item = key(inbox_pk(user), HEAD_SK);
    item.insert(ITEM_TYPE.into(), s("inbox_head"));
    item.insert(EPOCH.into(), n(epoch));
    item.insert(HEAD.into(), n(head));
    item
}

/// The `KEY#{eventKey}` item of an event kept at `position` until `ttl` (epoch s).
pub(crate) fn key_item(user: &UserId, event: &EventKey, position: u64, ttl: i64) -> Item {
    let mut item = key(inbox_pk(user), key_sk(event));
    item.insert(ITEM_TYPE.into(), s("inbox_key"));
    item.insert(POSITION.into(), n(position));
    item.insert(TTL.into(), n(ttl));
    item
}

/// The `POS#{position}` item keeping `event` until `ttl` (epoch s). Fails with `Backend` when
/// the message does not serialize.
pub fn event_item(
    user: &UserId,
    event: &InboxEvent,
    epoch: u64,
    position: u64,
    ttl: i64,
) -> Result<Item, StoreError> {
    let message = serde_json::to_string(&event.message).map_err(backend)?;
    let mut item = key(inbox_pk(user), position_sk(position));
    item.insert(ITEM_TYPE.into(), s("inbox_event"));
    item.insert(EPOCH.into(), n(epoch));
    item.insert(POSITION.into(), n(position));
    item.insert(EVENT_KEY.into(), s(event.key.as_str()));
    item.insert(MESSAGE.into(), s(message));
    item.insert(TTL.into(), n(ttl));
    Ok(item)
}

#[async_trait]
impl InboxStore for DynamoStore {
    /// In chunks of at most 32 events, each one `BatchGetItem` and one `TransactWriteItems`
    /// (see the module documentation). Fails with `Backend` on SDK errors, and when racing
    /// appends win 8 times in a row.
    async fn append_to_inbox(
        &self,
        user: &UserId,
        events: &[InboxEvent],
        now: DateTime<Utc>,
        retention: chrono::Duration,
    ) -> Result<Appended, StoreError> {
        let mut appended = Appended {
            epoch: 0,
            positions: Vec::with_capacity(events.len()),
            added: 0,
        };
        for chunk in events.chunks(EVENTS_PER_TRANSACTION) {
            let done = self.append_chunk(user, chunk, now, retention).await?;
            appended.epoch = done.epoch;
            appended.positions.extend(done.positions);
            appended.added += done.added;
        }
        if events.is_empty() {
            appended.epoch = self.read_inbox(user, u64::MAX, 0, now).await?.epoch;
        }
        Ok(appended)
    }

    /// A consistent `GetItem` of the head, then a consistent `Query` of `POS#` after `after`
    /// (filtered to this epoch's events still alive at `now`), page by page until `limit`
    /// events are found. Fails with `Corrupt` when a kept event does not parse, `Backend` on
    /// SDK errors.
    async fn read_inbox(
        &self,
        user: &UserId,
        after: u64,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<InboxPage, StoreError> {
        let table = self.connections_table();
        let pk = inbox_pk(user);
        let head_item = self.get_consistent(table, key(&pk, HEAD_SK)).await?;
        let Some((epoch, head)) = read_head(head_item.as_ref(), user)? else {
            return Ok(InboxPage::default());
        };
        let mut page = InboxPage {
            epoch,
            head,
            events: Vec::new(),
        };
        if limit == 0 || after >= head {
            return Ok(page);
        }
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(table)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .filter_expression("#ttl > :now AND #epoch = :epoch")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_names("#epoch", EPOCH)
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":from", s(position_sk(after.saturating_add(1))))
                .expression_attribute_values(":to", s(position_sk(u64::MAX)))
                .expression_attribute_values(":now", n(now.timestamp()))
                .expression_attribute_values(":epoch", n(epoch))
                .consistent_read(true)
                .limit(i32::try_from(limit.min(1000)).unwrap_or(1000))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(backend)?;
            for item in out.items.unwrap_or_default() {
                page.events.push(kept_event(&item, user)?);
                if page.events.len() >= limit {
                    return Ok(page);
                }
            }
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(page),
            }
        }
    }
}

/// A `POS#` item as the event it keeps.
fn kept_event(item: &Item, user: &UserId) -> Result<KeptEvent, StoreError> {
    let what = || format!("inbox event {} of {user}", get_s(item, SK).unwrap_or("?"));
    let position = get_n::<u64>(item, POSITION).ok_or_else(|| corrupt(what(), "no position"))?;
    let message = match item.get(MESSAGE) {
        Some(AttributeValue::S(text)) => {
            serde_json::from_str::<ServerMessage>(text).map_err(|e| corrupt(what(), e))?
        }
        _ => return Err(corrupt(what(), "no message")),
    };
    Ok(KeptEvent { position, message })
}
