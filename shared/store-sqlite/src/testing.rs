//! Raw readers for the conformance harness (feature `test-support`): what the store wrote, as
//! opposed to what the ports return.

use rnd_domain::ids::{ConnectionId, OrderId};
use rnd_domain::ports::StoreError;
use rusqlite::OptionalExtension;

use crate::SqliteStore;
use crate::change_log::{Filter, LoggedChange, read_changes};
use crate::codec::DbResultExt;

impl SqliteStore {
    /// The `ttl` column of the connection's row (epoch seconds), expired or not; `None` when
    /// there is no row.
    ///
    /// Fails with [`StoreError::Backend`] when SQLite fails.
    pub async fn stored_connection_ttl(
        &self,
        id: &ConnectionId,
    ) -> Result<Option<i64>, StoreError> {
        let id = id.clone();
        self.run(move |conn| {
            conn.query_row(
                "SELECT ttl FROM connections WHERE connection_id = ?1",
                [id.as_str()],
                |row| row.get(0),
            )
            .optional()
            .db()
        })
        .await
    }

    /// The `ttl` columns of the connection's membership rows (epoch seconds), in room order.
    ///
    /// Fails with [`StoreError::Backend`] when SQLite fails.
    pub async fn stored_membership_ttls(&self, id: &ConnectionId) -> Result<Vec<i64>, StoreError> {
        let id = id.clone();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare("SELECT ttl FROM memberships WHERE connection_id = ?1 ORDER BY room")
                .db()?;
            let ttls = stmt.query_map([id.as_str()], |row| row.get(0)).db()?;
            ttls.collect::<Result<Vec<i64>, _>>().db()
        })
        .await
    }

    /// Every logged change of `order`'s items, in position order.
    ///
    /// Fails with [`StoreError::Corrupt`] when an image does not parse, and with
    /// [`StoreError::Backend`] when SQLite fails.
    pub async fn changes_of_order(&self, order: &OrderId) -> Result<Vec<LoggedChange>, StoreError> {
        if let Some(log) = self.memory_log() {
            return Ok(crate::lock(&log).of_order(order));
        }
        let order = order.clone();
        self.run(move |conn| read_changes(conn, Filter::Order(order), i64::MAX))
            .await
    }
}
