//! [`DeviceStore`] and [`PushLedger`]: the `devices` table (one row per device, its token
//! unique) and the `push_ledger` table (one row per notification and user sent). A
//! registration is one `IMMEDIATE` transaction, so a token belongs to one user at a time under
//! concurrency, and the per-user limit holds.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rnd_domain::device::{
    Device, DeviceId, DeviceRegistration, DeviceToken, MAX_DEVICES_PER_USER, Registered,
};
use rnd_domain::ids::UserId;
use rnd_domain::ports::{DeviceStore, PushLedger, StoreError};
use rusqlite::{OptionalExtension, Row, params};

use crate::SqliteStore;
use crate::codec::{DbResultExt, decode_time, encode_time, parse_column, ttl_of};
use crate::tx::WriteTx;

const DEVICE_COLUMNS: &str = "device_id, user_id, token, platform, app_version, locale, \
                              registered_at, last_seen_at";

/// A `devices` row as stored.
struct DeviceRow {
    device_id: String,
    user_id: String,
    token: String,
    platform: String,
    app_version: Option<String>,
    locale: Option<String>,
    registered_at: String,
    last_seen_at: String,
}

impl DeviceRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<DeviceRow> {
        Ok(DeviceRow {
            device_id: row.get(0)?,
            user_id: row.get(1)?,
            token: row.get(2)?,
            platform: row.get(3)?,
            app_version: row.get(4)?,
            locale: row.get(5)?,
            registered_at: row.get(6)?,
            last_seen_at: row.get(7)?,
        })
    }

    fn decode(self) -> Result<Device, StoreError> {
        Ok(Device {
            device_id: parse_column("devices.device_id", &self.device_id, DeviceId::parse)?,
            user_id: parse_column("devices.user_id", &self.user_id, UserId::parse)?,
            token: parse_column("devices.token", &self.token, DeviceToken::parse)?,
            platform: parse_column("devices.platform", &self.platform, str::parse)?,
            app_version: self.app_version,
            locale: self.locale,
            registered_at: decode_time("devices.registered_at", &self.registered_at)?,
            last_seen_at: decode_time("devices.last_seen_at", &self.last_seen_at)?,
        })
    }
}

/// The live devices of `user` at `now_s`, most recently seen first.
fn live_devices(
    tx: &rusqlite::Connection,
    user: &str,
    now_s: i64,
) -> Result<Vec<Device>, StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE user_id = ?1 AND ttl > ?2
             ORDER BY last_seen_at DESC, device_id"
        ))
        .db()?;
    let rows = stmt.query_map(params![user, now_s], DeviceRow::read).db()?;
    let mut devices = Vec::new();
    for row in rows {
        devices.push(row.db()?.decode()?);
    }
    Ok(devices)
}

#[async_trait]
impl DeviceStore for SqliteStore {
    /// One transaction: forgets the token if its device expired, then refreshes the user's own
    /// device, or moves the token from another user, or adds it; then drops the user's least
    /// recently seen devices beyond the limit.
    ///
    /// Fails with [`StoreError::Backend`] when SQLite fails.
    async fn register_device(
        &self,
        registration: &DeviceRegistration,
        now: DateTime<Utc>,
    ) -> Result<Registered, StoreError> {
        let r = registration.clone();
        let now_s = ttl_of(now);
        let ttl = ttl_of(Device::expiry_for(now));
        let at = encode_time(now);
        self.run(move |conn| {
            let tx = WriteTx::begin(conn)?;
            let user = r.user_id.as_str();
            tx.prepare_cached("DELETE FROM devices WHERE token = ?1 AND ttl <= ?2")
                .db()?
                .execute(params![r.token.as_str(), now_s])
                .db()?;
            let holder: Option<(String, String)> = tx
                .prepare_cached("SELECT device_id, user_id FROM devices WHERE token = ?1")
                .db()?
                .query_row([r.token.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
                .db()?;
            // The holder's own device is refreshed in place; a token another user held moves
            // to a new device of this user.
            let (device_id, created) = match holder {
                Some((id, owner)) if owner == user => (id, false),
                other => {
                    if let Some((id, _)) = other {
                        tx.prepare_cached("DELETE FROM devices WHERE device_id = ?1")
                            .db()?
                            .execute([id])
                            .db()?;
                    }
                    (r.new_id.as_str().to_owned(), true)
                }
            };
            tx.prepare_cached(&format!(
                "INSERT INTO devices ({DEVICE_COLUMNS}, ttl)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)
                 ON CONFLICT (device_id) DO UPDATE
                 SET platform = excluded.platform, app_version = excluded.app_version,
                     locale = excluded.locale, last_seen_at = excluded.last_seen_at,
                     ttl = excluded.ttl"
            ))
            .db()?
            .execute(params![
                device_id,
                user,
                r.token.as_str(),
                r.platform.as_str(),
                r.app_version,
                r.locale,
                at,
                ttl
            ])
            .db()?;
            let mut devices = live_devices(&tx, user, now_s)?;
            let mut dropped = Vec::new();
            while devices.len() > MAX_DEVICES_PER_USER {
                let Some(oldest) = devices.pop() else { break };
                tx.prepare_cached("DELETE FROM devices WHERE device_id = ?1")
                    .db()?
                    .execute([oldest.device_id.as_str()])
                    .db()?;
                dropped.push(oldest.device_id);
            }
            let device = devices
                .into_iter()
                .find(|d| d.device_id.as_str() == device_id)
                .ok_or_else(|| StoreError::corrupt("a registered device is not stored"))?;
            tx.commit()?;
            tracing::debug!(user_id = %device.user_id, device_id = %device.device_id, created, "registered device");
            Ok(Registered {
                device,
                created,
                dropped,
            })
        })
        .await
    }

    /// Fails with [`StoreError::Corrupt`] when a row does not parse, and with
    /// [`StoreError::Backend`] when SQLite fails.
    async fn devices_of(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Device>, StoreError> {
        let user = user.to_string();
        let now_s = ttl_of(now);
        self.run(move |conn| live_devices(conn, &user, now_s)).await
    }

    /// Fails with [`StoreError::Backend`] when SQLite fails.
    async fn remove_device(&self, user: &UserId, device: &DeviceId) -> Result<bool, StoreError> {
        let (user, device) = (user.to_string(), device.to_string());
        self.run(move |conn| {
            let removed = conn
                .prepare_cached("DELETE FROM devices WHERE device_id = ?1 AND user_id = ?2")
                .db()?
                .execute(params![device, user])
                .db()?;
            Ok(removed > 0)
        })
        .await
    }
}

#[async_trait]
impl PushLedger for SqliteStore {
    async fn was_pushed(
        &self,
        key: &str,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (key, user) = (key.to_owned(), user.to_string());
        let now_s = ttl_of(now);
        self.run(move |conn| {
            let found: Option<i64> = conn
                .prepare_cached(
                    "SELECT 1 FROM push_ledger WHERE push_key = ?1 AND user_id = ?2 AND ttl > ?3",
                )
                .db()?
                .query_row(params![key, user, now_s], |row| row.get(0))
                .optional()
                .db()?;
            Ok(found.is_some())
        })
        .await
    }

    /// One `INSERT … ON CONFLICT DO UPDATE … WHERE` the kept row has expired: it writes only
    /// when nothing live is recorded.
    async fn record_pushed(
        &self,
        key: &str,
        user: &UserId,
        now: DateTime<Utc>,
        retention: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let (key, user) = (key.to_owned(), user.to_string());
        let (now_s, ttl) = (ttl_of(now), ttl_of(now + retention));
        self.run(move |conn| {
            let written = conn
                .prepare_cached(
                    "INSERT INTO push_ledger (push_key, user_id, ttl) VALUES (?1, ?2, ?3)
                     ON CONFLICT (push_key, user_id) DO UPDATE SET ttl = excluded.ttl
                     WHERE push_ledger.ttl <= ?4",
                )
                .db()?
                .execute(params![key, user, ttl, now_s])
                .db()?;
            Ok(written > 0)
        })
        .await
    }
}
