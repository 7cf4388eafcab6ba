//! [`DeviceStore`] and [`PushLedger`] on the connections table (its TTL attribute `ttl` forgets
//! devices 270 days after they were last seen, and sent pushes after their retention):
//!
//! - `USER#{userId}` / `DEVICE#{deviceId}`: `itemType=device`, the device's attributes, `ttl`;
//! - `DEVTOKEN#{sha256(token)}` / `DEVTOKEN`: `itemType=device_token`, `userId`, `deviceId`,
//!   `ttl` — who holds a token now (a token is up to 4 KB; a key at most 2 KB, so it is hashed);
//! - `PUSHED#{key}` / `USER#{userId}`: `itemType=pushed`, `ttl` — a notification sent.
//!
//! A registration reads the token's item, then writes the token item and the device items in
//! one `TransactWriteItems` conditioned on what it read (a racing registration of the same
//! token fails the condition and is retried from the read); the per-user limit is kept by
//! deleting the least recently seen devices after.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use rnd_domain::device::{
    Device, DeviceId, DeviceRegistration, DeviceToken, MAX_DEVICES_PER_USER, Registered,
};
use rnd_domain::ids::UserId;
use rnd_domain::ports::{DeviceStore, PushLedger, StoreError};
use sha2::{Digest, Sha256};

use crate::DynamoStore;
use crate::error::{
    TxFailure, backend, backoff, corrupt, put_unless_live, query_all, transact, written,
};
use crate::keys::{ITEM_TYPE, Item, PK, SK, TTL, get_n, get_s, key, n, s, user_pk};

/// Attempts of a registration that keeps losing to racing ones (then `Backend`).
const REGISTER_ATTEMPTS: u32 = 6;
const TOKEN_SK: &str = "DEVTOKEN";
const DEVICE_ID: &str = "deviceId";
const USER_ID: &str = "userId";

/// `DEVICE#{deviceId}`.
fn device_sk(id: &DeviceId) -> String {
    format!("DEVICE#{id}")
}

/// `DEVTOKEN#{hex sha256 of the token}`.
fn token_pk(token: &DeviceToken) -> String {
    let digest = Sha256::digest(token.as_str().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("DEVTOKEN#{hex}")
}

/// `PUSHED#{key}`.
fn pushed_pk(key: &str) -> String {
    format!("PUSHED#{key}")
}

/// The device item of `device`, forgotten at `ttl` (epoch s). Fails with `Backend` when it
/// does not serialize.
pub(crate) fn device_item(device: &Device) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(device).map_err(backend)?;
    item.extend(key(user_pk(&device.user_id), device_sk(&device.device_id)));
    item.insert(ITEM_TYPE.into(), s("device"));
    item.insert(
        TTL.into(),
        n(Device::expiry_for(device.last_seen_at).timestamp()),
    );
    Ok(item)
}

/// The token item saying `device` holds its token.
pub(crate) fn token_item(device: &Device) -> Item {
    let mut item = key(token_pk(&device.token), TOKEN_SK);
    item.insert(ITEM_TYPE.into(), s("device_token"));
    item.insert(USER_ID.into(), s(device.user_id.as_str()));
    item.insert(DEVICE_ID.into(), s(device.device_id.as_str()));
    item.insert(
        TTL.into(),
        n(Device::expiry_for(device.last_seen_at).timestamp()),
    );
    item
}

/// A write's condition: its expression, the `#name`s it uses and its `:value`s.
struct Condition<'a> {
    expression: &'a str,
    names: &'a [(&'a str, &'a str)],
    values: Vec<(&'a str, AttributeValue)>,
}

/// Who held a token when it was read.
#[derive(Debug, Clone)]
struct Holder {
    user_id: String,
    device_id: String,
}

impl DynamoStore {
    /// The live holder of `token` at `now_s` (consistent read).
    async fn token_holder(
        &self,
        token: &DeviceToken,
        now_s: i64,
    ) -> Result<Option<Holder>, StoreError> {
        let item = self
            .get_consistent(self.connections_table(), key(token_pk(token), TOKEN_SK))
            .await?;
        Ok(item
            .filter(|i| get_n::<i64>(i, TTL).is_some_and(|t| t > now_s))
            .and_then(|i| {
                Some(Holder {
                    user_id: get_s(&i, USER_ID)?.to_owned(),
                    device_id: get_s(&i, DEVICE_ID)?.to_owned(),
                })
            }))
    }

    /// The device `id` of `user` (consistent read), whatever its TTL.
    async fn device(&self, user: &UserId, id: &DeviceId) -> Result<Option<Device>, StoreError> {
        self.get_decoded(
            self.connections_table(),
            key(user_pk(user), device_sk(id)),
            || format!("device {id} of {user}"),
        )
        .await
    }

    /// A `Put` of `item`, under `condition` (with its `#name`s and `:value`s) when given.
    fn put(
        &self,
        item: Item,
        condition: Option<Condition<'_>>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder()
            .table_name(self.connections_table())
            .set_item(Some(item));
        if let Some(c) = condition {
            put = put.condition_expression(c.expression);
            for (name, attribute) in c.names {
                put = put.expression_attribute_names(*name, *attribute);
            }
            for (name, value) in c.values {
                put = put.expression_attribute_values(name, value);
            }
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(backend)?)
            .build())
    }

    fn delete(&self, key: Item) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(self.connections_table())
                    .set_key(Some(key))
                    .build()
                    .map_err(backend)?,
            )
            .build())
    }

    /// One attempt: the writes for what was read, conditioned on it. `Ok(None)` when a racing
    /// registration changed the token meanwhile.
    async fn try_register(
        &self,
        r: &DeviceRegistration,
        now: DateTime<Utc>,
    ) -> Result<Option<(Device, bool)>, StoreError> {
        let now_s = now.timestamp();
        let holder = self.token_holder(&r.token, now_s).await?;
        let same_user = holder
            .as_ref()
            .is_some_and(|h| h.user_id == r.user_id.as_str());
        let existing = match (&holder, same_user) {
            (Some(h), true) => {
                let id = DeviceId::parse(h.device_id.clone())
                    .map_err(|e| corrupt("a device token item", e))?;
                self.device(&r.user_id, &id).await?
            }
            _ => None,
        };
        let (device, created) = match existing {
            Some(old) => (
                Device {
                    platform: r.platform,
                    app_version: r.app_version.clone(),
                    locale: r.locale.clone(),
                    last_seen_at: now,
                    ..old
                },
                false,
            ),
            None => (
                Device {
                    device_id: r.new_id.clone(),
                    user_id: r.user_id.clone(),
                    token: r.token.clone(),
                    platform: r.platform,
                    app_version: r.app_version.clone(),
                    locale: r.locale.clone(),
                    registered_at: now,
                    last_seen_at: now,
                },
                true,
            ),
        };
        // The token item, conditioned on who held it when read.
        let token_write = match &holder {
            Some(h) => self.put(
                token_item(&device),
                Some(Condition {
                    expression: "#device = :held",
                    names: &[("#device", DEVICE_ID)],
                    values: vec![(":held", s(h.device_id.clone()))],
                }),
            )?,
            None => self.put(
                token_item(&device),
                Some(Condition {
                    expression: "attribute_not_exists(#pk) OR #ttl <= :now",
                    names: &[("#pk", PK), ("#ttl", TTL)],
                    values: vec![(":now", n(now_s))],
                }),
            )?,
        };
        let mut items = vec![token_write, self.put(device_item(&device)?, None)?];
        // The previous holder's device, when the token moves to another user.
        if let Some(h) = holder.as_ref().filter(|_| !same_user) {
            let previous = key(
                format!("USER#{}", h.user_id),
                format!("DEVICE#{}", h.device_id),
            );
            items.push(self.delete(previous)?);
        }
        match transact(&self.client, "register device", items).await {
            Ok(()) => Ok(Some((device, created))),
            Err(TxFailure::ConditionFailed(_)) => Ok(None),
            Err(TxFailure::Failed(e)) => Err(e),
        }
    }

    /// Deletes `device` and, while it still names it, its token item.
    async fn forget(&self, device: &Device) -> Result<(), StoreError> {
        let table = self.connections_table();
        self.client
            .delete_item()
            .table_name(table)
            .set_key(Some(key(
                user_pk(&device.user_id),
                device_sk(&device.device_id),
            )))
            .send()
            .await
            .map_err(backend)?;
        let result = self
            .client
            .delete_item()
            .table_name(table)
            .set_key(Some(key(token_pk(&device.token), TOKEN_SK)))
            .condition_expression("#device = :id")
            .expression_attribute_names("#device", DEVICE_ID)
            .expression_attribute_values(":id", s(device.device_id.as_str()))
            .send()
            .await;
        // The token moved on to another device: leave it.
        written(result).map(|_| ())
    }
}

/// A registration that kept losing to racing ones.
#[derive(Debug, thiserror::Error)]
#[error("device registration lost to racing registrations {REGISTER_ATTEMPTS} times in a row")]
struct RegisterContended;

#[async_trait]
impl DeviceStore for DynamoStore {
    /// See the module documentation. Fails with `Backend` on SDK errors and when racing
    /// registrations of the same token win 6 times in a row.
    async fn register_device(
        &self,
        registration: &DeviceRegistration,
        now: DateTime<Utc>,
    ) -> Result<Registered, StoreError> {
        let mut attempt = 1;
        let (device, created) = loop {
            if let Some(done) = self.try_register(registration, now).await? {
                break done;
            }
            if attempt >= REGISTER_ATTEMPTS {
                return Err(backend(RegisterContended));
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        };
        let devices = self.devices_of(&registration.user_id, now).await?;
        let mut dropped = Vec::new();
        for old in devices.iter().skip(MAX_DEVICES_PER_USER) {
            if old.device_id != device.device_id {
                self.forget(old).await?;
                dropped.push(old.device_id.clone());
            }
        }
        tracing::debug!(user_id = %device.user_id, device_id = %device.device_id, created, "registered device");
        Ok(Registered {
            device,
            created,
            dropped,
        })
    }

    /// A consistent `Query` of `USER#{userId}` from `DEVICE#`, every page; devices past their
    /// TTL are dropped. Fails with `Corrupt` when an item does not parse, `Backend` on SDK
    /// errors.
    async fn devices_of(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Device>, StoreError> {
        let table = self.connections_table();
        let now_s = now.timestamp();
        let mut devices = Vec::new();
        let items = query_all(
            self.client
                .query()
                .table_name(table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(user_pk(user)))
                .expression_attribute_values(":prefix", s("DEVICE#"))
                .consistent_read(true),
        )
        .await?;
        for item in items {
            if get_n::<i64>(&item, TTL).is_some_and(|t| t > now_s) {
                devices.push(
                    serde_dynamo::from_item::<_, Device>(item)
                        .map_err(|e| corrupt(format_args!("a device of {user}"), e))?,
                );
            }
        }
        devices.sort_by(|a, b| {
            b.last_seen_at
                .cmp(&a.last_seen_at)
                .then_with(|| a.device_id.cmp(&b.device_id))
        });
        Ok(devices)
    }

    /// Reads the device (it must be the user's), deletes it and its token item. Fails with
    /// `Backend` on SDK errors.
    async fn remove_device(&self, user: &UserId, device: &DeviceId) -> Result<bool, StoreError> {
        match self.device(user, device).await? {
            Some(found) => {
                self.forget(&found).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[async_trait]
impl PushLedger for DynamoStore {
    /// A consistent `GetItem` of `PUSHED#{key}` / `USER#{userId}`, alive at `now`.
    async fn was_pushed(
        &self,
        key_text: &str,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let item = self
            .get_consistent(
                self.connections_table(),
                key(pushed_pk(key_text), user_pk(user)),
            )
            .await?;
        Ok(item.is_some_and(|i| get_n::<i64>(&i, TTL).is_some_and(|t| t > now.timestamp())))
    }

    /// A `PutItem` conditioned on no live record.
    async fn record_pushed(
        &self,
        key_text: &str,
        user: &UserId,
        now: DateTime<Utc>,
        retention: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let mut item = key(pushed_pk(key_text), user_pk(user));
        item.insert(ITEM_TYPE.into(), s("pushed"));
        item.insert(TTL.into(), n((now + retention).timestamp()));
        put_unless_live(&self.client, self.connections_table(), item, now).await
    }
}
