//! [`PresenceStore`] in the connections table: the minute counters of connection analytics
//! (`CSTATS#{yyyy-mm-dd}#{shard}` / `MIN#{HH:MM}`) and each user's last-seen row
//! (`USER#{userId}` / `PRESENCE`); presence reads the user's room (`ROOM#user:{userId}`).
//!
//! The counters are written after the connection's own transaction, by plain `UpdateItem`s
//! (`ADD`), not inside it: concurrent transactions touching one counter item would cancel each
//! other (`TransactionConflict`) in a connect storm, while `ADD`s to one item are serialised by
//! DynamoDB. The price is that a crash between the two loses a count, never a connection; a
//! failed counter write is logged and the connection goes on.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, NaiveDate, NaiveTime, Timelike, Utc};
use rnd_domain::error::Chain;
use rnd_domain::ids::{ConnectionId, UserId};
use rnd_domain::ports::{PresenceStore, SESSION_RETENTION_SECS, StoreError};
use rnd_domain::presence::{
    ConnectionEvent, ConnectionMinute, Presence, STATS_RETENTION_SECS, STATS_SHARDS, shard_of,
};
use rnd_domain::rooms::Room;

use crate::DynamoStore;
use crate::error::{backend, corrupt, query_all, written};
use crate::keys::{PK, SK, TTL, get_n, get_s, key, n, room_pk, s, user_pk};

/// Sort key of a user's last-seen row.
const PRESENCE_SK: &str = "PRESENCE";
/// The last-seen row's instant (epoch ms).
const LAST_SEEN: &str = "lastSeenAt";
/// A membership row's copy of its connection's opening (epoch ms).
pub(crate) const CONNECTED_AT: &str = "connectedAt";
/// Attributes of a counter item that are not counters.
const NOT_COUNTERS: [&str; 4] = [PK, SK, TTL, "itemType"];

/// `CSTATS#{yyyy-mm-dd}#{shard}`: one shard's minute counters of a day.
fn stats_pk(day: NaiveDate, shard: u32) -> String {
    format!("CSTATS#{day}#{shard}")
}

/// `MIN#{HH:MM}`: a minute's counters within its day.
fn stats_sk(minute: DateTime<Utc>) -> String {
    format!("MIN#{:02}:{:02}", minute.hour(), minute.minute())
}

/// The minute a counter item's day and sort key name.
fn minute_of_item(day: NaiveDate, sk: &str) -> Option<DateTime<Utc>> {
    let time = NaiveTime::parse_from_str(sk.strip_prefix("MIN#")?, "%H:%M").ok()?;
    Some(day.and_time(time).and_utc())
}

fn millis(at: DateTime<Utc>) -> AttributeValue {
    n(at.timestamp_millis())
}

impl DynamoStore {
    /// Counts `event` of `connection` (of `user`): its minute counters on the connection's
    /// shard, one `UpdateItem` per minute, and the user's last-seen time. Failures are logged,
    /// not returned: the connection has been opened or closed whatever happens here. The two
    /// are independent, so they are sent at once.
    pub(crate) async fn count_connection_event(
        &self,
        connection: &ConnectionId,
        user: &UserId,
        event: ConnectionEvent,
    ) {
        let (counted, seen) = tokio::join!(
            self.add_counters(connection, event),
            self.mark_seen(user, event.at())
        );
        if let Err(e) = counted {
            tracing::warn!(error = %Chain(&e), %connection, "could not count a connection event");
        }
        if let Err(e) = seen {
            tracing::warn!(error = %Chain(&e), %connection, "could not record when a user was seen");
        }
    }

    async fn add_counters(
        &self,
        connection: &ConnectionId,
        event: ConnectionEvent,
    ) -> Result<(), StoreError> {
        let shard = shard_of(connection.as_str());
        let mut by_minute: BTreeMap<DateTime<Utc>, Vec<(String, i64)>> = BTreeMap::new();
        for add in event.counters() {
            by_minute
                .entry(add.minute)
                .or_default()
                .push((add.counter, add.delta));
        }
        for (minute, counters) in by_minute {
            let mut adds = Vec::with_capacity(counters.len());
            let mut request = self
                .client
                .update_item()
                .table_name(self.connections_table())
                .set_key(Some(key(
                    stats_pk(minute.date_naive(), shard),
                    stats_sk(minute),
                )))
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_values(":ttl", n(minute.timestamp() + STATS_RETENTION_SECS));
            for (i, (counter, delta)) in counters.into_iter().enumerate() {
                adds.push(format!("#c{i} :c{i}"));
                request = request
                    .expression_attribute_names(format!("#c{i}"), counter)
                    .expression_attribute_values(format!(":c{i}"), n(delta));
            }
            request
                .update_expression(format!(
                    "SET #ttl = if_not_exists(#ttl, :ttl) ADD {}",
                    adds.join(", ")
                ))
                .send()
                .await
                .map_err(backend)?;
        }
        Ok(())
    }

    /// Sets the user's last-seen time to `at` unless it is already later.
    async fn mark_seen(&self, user: &UserId, at: DateTime<Utc>) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(self.connections_table())
            .set_key(Some(key(user_pk(user), PRESENCE_SK)))
            .update_expression("SET #seen = :at, #ttl = :ttl")
            .condition_expression("attribute_not_exists(#seen) OR #seen < :at")
            .expression_attribute_names("#seen", LAST_SEEN)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":at", millis(at))
            .expression_attribute_values(":ttl", n(at.timestamp() + SESSION_RETENTION_SECS))
            .send()
            .await;
        // A later sighting is already there.
        written(result).map(|_| ())
    }
}

#[async_trait]
impl PresenceStore for DynamoStore {
    /// `Query` (consistent) of the user's room (projection `ttl, connectedAt`; rows with
    /// `ttl <= now` dropped) and `GetItem` (consistent) of their last-seen row.
    async fn presence(&self, user: &UserId, now: DateTime<Utc>) -> Result<Presence, StoreError> {
        let table = self.connections_table();
        let room = Room::User(user.clone());
        let mut presence = Presence::default();
        let members = query_all(
            self.client
                .query()
                .table_name(table)
                .consistent_read(true)
                .key_condition_expression("#pk = :pk")
                .projection_expression("#ttl, #at")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_names("#at", CONNECTED_AT)
                .expression_attribute_values(":pk", s(room_pk(&room))),
        )
        .await?;
        for item in &members {
            let ttl = get_n::<i64>(item, TTL)
                .ok_or_else(|| corrupt(format_args!("{table} room {room}"), "no ttl"))?;
            if ttl <= now.timestamp() {
                continue;
            }
            presence.connections += 1;
            // Rows written before memberships carried it say nothing of since when.
            if let Some(at) =
                get_n::<i64>(item, CONNECTED_AT).and_then(DateTime::from_timestamp_millis)
            {
                presence.since = Some(presence.since.map_or(at, |s| s.min(at)));
            }
        }
        let seen = self
            .get_consistent(table, key(user_pk(user), PRESENCE_SK))
            .await?;
        presence.last_seen_at = seen
            .filter(|item| get_n::<i64>(item, TTL).is_none_or(|ttl| ttl > now.timestamp()))
            .and_then(|item| get_n::<i64>(&item, LAST_SEEN))
            .and_then(DateTime::from_timestamp_millis);
        Ok(presence)
    }

    /// One `Query` per day and shard (`sk BETWEEN MIN#{from} AND MIN#{to}` on the first and
    /// last day), every page; the shards' minutes merged.
    async fn connection_minutes(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ConnectionMinute>, StoreError> {
        let table = self.connections_table();
        let mut minutes: BTreeMap<DateTime<Utc>, ConnectionMinute> = BTreeMap::new();
        let mut day = from.date_naive();
        while day <= to.date_naive() {
            let first = if day == from.date_naive() {
                stats_sk(from)
            } else {
                "MIN#00:00".to_owned()
            };
            let last = if day == to.date_naive() {
                stats_sk(to)
            } else {
                "MIN#23:59".to_owned()
            };
            for shard in 0..STATS_SHARDS {
                let pk = stats_pk(day, shard);
                let items = query_all(
                    self.client
                        .query()
                        .table_name(table)
                        .key_condition_expression("#pk = :pk AND #sk BETWEEN :first AND :last")
                        .expression_attribute_names("#pk", PK)
                        .expression_attribute_names("#sk", SK)
                        .expression_attribute_values(":pk", s(pk.clone()))
                        .expression_attribute_values(":first", s(first.clone()))
                        .expression_attribute_values(":last", s(last.clone())),
                )
                .await?;
                for item in &items {
                    let minute = get_s(item, SK)
                        .and_then(|sk| minute_of_item(day, sk))
                        .ok_or_else(|| {
                            corrupt(format_args!("{table} {pk}"), "a sort key not MIN#HH:MM")
                        })?;
                    let counters = item.iter().filter_map(|(name, value)| {
                        if NOT_COUNTERS.contains(&name.as_str()) {
                            return None;
                        }
                        let value = value.as_n().ok()?.parse::<i64>().ok()?;
                        Some((name.as_str(), value))
                    });
                    let counted = ConnectionMinute::from_counters(minute, counters);
                    minutes
                        .entry(minute)
                        .and_modify(|m| m.merge(&counted))
                        .or_insert(counted);
                }
            }
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        Ok(minutes.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_items_are_keyed_by_day_shard_and_minute() {
        // GIVEN 09:05:42 on 3 December
        let at = DateTime::parse_from_rfc3339("2026-12-03T09:05:42Z")
            .unwrap()
            .to_utc();
        // THEN its counters live at CSTATS#2026-12-03#{shard} / MIN#09:05, and read back as
        // the minute's start
        assert_eq!(stats_pk(at.date_naive(), 3), "CSTATS#2026-12-03#3");
        assert_eq!(stats_sk(at), "MIN#09:05");
        assert_eq!(
            minute_of_item(at.date_naive(), "MIN#09:05"),
            Some(rnd_domain::presence::minute_of(at))
        );
        assert_eq!(minute_of_item(at.date_naive(), "CONN"), None);
    }
}
