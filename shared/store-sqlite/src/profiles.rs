//! [`ProfileStore`]: one row per user in `profiles` (JSON of `Profile` plus its key, role and
//! time), replaced whole on every save.

use async_trait::async_trait;
use rnd_domain::ids::UserId;
use rnd_domain::ports::{ProfileStore, StoreError};
use rnd_domain::profile::Profile;
use rusqlite::{OptionalExtension, named_params};

use crate::SqliteStore;
use crate::codec::{DbResultExt, encode_time, from_json, to_json};

#[async_trait]
impl ProfileStore for SqliteStore {
    /// The user's profile, or `None` when there is no row.
    ///
    /// Fails with [`StoreError::Corrupt`] when the stored document does not parse, and with
    /// [`StoreError::Backend`] when SQLite fails.
    async fn get_profile(&self, user: &UserId) -> Result<Option<Profile>, StoreError> {
        let user = user.clone();
        self.run(move |conn| {
            let doc: Option<String> = conn
                .prepare_cached("SELECT doc FROM profiles WHERE user_id = ?1")
                .db()?
                .query_row([user.as_str()], |row| row.get(0))
                .optional()
                .db()?;
            doc.map(|doc| from_json(&format!("profile {user}"), &doc))
                .transpose()
        })
        .await
    }

    /// Inserts or replaces the user's row (one `INSERT … ON CONFLICT DO UPDATE`).
    ///
    /// Fails with [`StoreError::Backend`] when SQLite fails.
    async fn put_profile(&self, profile: &Profile) -> Result<(), StoreError> {
        let doc = to_json(profile)?;
        let user = profile.user_id.to_string();
        let role = profile.role.as_str();
        let updated_at = encode_time(profile.updated_at);
        self.run(move |conn| {
            conn.prepare_cached(
                "INSERT INTO profiles (user_id, role, updated_at, doc)
                 VALUES (:user_id, :role, :updated_at, :doc)
                 ON CONFLICT (user_id) DO UPDATE
                 SET role = excluded.role, updated_at = excluded.updated_at, doc = excluded.doc",
            )
            .db()?
            .execute(named_params! {
                ":user_id": user,
                ":role": role,
                ":updated_at": updated_at,
                ":doc": doc,
            })
            .db()?;
            tracing::debug!(user_id = %user, "saved profile");
            Ok(())
        })
        .await
    }
}
