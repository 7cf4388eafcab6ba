//! [`ProfileStore`] on the orders table: one row per user, `USER#{userId}` / `PROFILE`,
//! `itemType=profile`. It carries no index attributes, so it is in no GSI; the stream carries
//! its changes, which the fan-out ignores (it reads only `order` and `live` rows).

use async_trait::async_trait;
use rnd_domain::ids::UserId;
use rnd_domain::ports::{ProfileStore, StoreError};
use rnd_domain::profile::Profile;

use crate::DynamoStore;
use crate::error::backend;
use crate::keys::{ITEM_TYPE, Item, PROFILE_SK, key, s, user_pk};

/// `itemType` of a profile row.
pub(crate) const PROFILE_TYPE: &str = "profile";

/// The profile row: the `Profile` as `serde_dynamo` writes it, plus keys and
/// `itemType=profile`.
pub(crate) fn profile_item(profile: &Profile) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(profile).map_err(backend)?;
    item.extend(key(user_pk(&profile.user_id), PROFILE_SK));
    item.insert(ITEM_TYPE.into(), s(PROFILE_TYPE));
    Ok(item)
}

#[async_trait]
impl ProfileStore for DynamoStore {
    /// One consistent `GetItem` of `USER#{userId}` / `PROFILE`; `None` when there is no row.
    /// Fails with [`StoreError::Corrupt`] when the row does not parse, `Backend` on SDK errors.
    async fn get_profile(&self, user: &UserId) -> Result<Option<Profile>, StoreError> {
        let table = self.orders_table();
        self.get_decoded(table, key(user_pk(user), PROFILE_SK), || {
            format!("{table} profile {user}")
        })
        .await
    }

    /// One unconditional `PutItem` (last write wins). Fails with `Backend` on SDK errors.
    async fn put_profile(&self, profile: &Profile) -> Result<(), StoreError> {
        let table = self.orders_table();
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(profile_item(profile)?))
            .send()
            .await
            .map_err(backend)?;
        tracing::debug!(table, user_id = %profile.user_id, "saved profile");
        Ok(())
    }
}
