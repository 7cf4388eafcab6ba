//! [`LiveLocationStore`]: one conditional `UpdateItem` on the small live row per location.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::DateTime;
use rnd_domain::ids::OrderId;
use rnd_domain::live::{LiveState, LocationOutcome, LocationWrite};
use rnd_domain::order::OrderStatus;
use rnd_domain::ports::{LiveLocationStore, StoreError};

use crate::DynamoStore;
use crate::error::{AdapterError, CONTENDED_ATTEMPTS, backend, backoff, corrupt};
use crate::keys::{Item, LIVE_SK, get_n, key, n, order_pk, s};
use crate::orders::parse_live;

/// A nested value (location, ETA, time) as `serde_dynamo` writes it in the rows.
fn value<T: serde::Serialize>(v: &T) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(v).map_err(backend)
}

/// `SET location, locationAcceptedAtMs, eta?, observedSpeedMps?, updatedAt, seq = seq + 1`,
/// and `announcedSeq = seq + 1` when the writer announces the location itself (else `REMOVE
/// announcedSeq`): the same item [`LocationOutcome::apply`] describes.
fn update_expression(write: &LocationWrite) -> String {
    let mut sets = vec![
        "#location = :location",
        "#acceptedAt = :now",
        "#updatedAt = :updatedAt",
        "#seq = #seq + :one",
    ];
    if write.eta.is_some() {
        sets.push("#eta = :eta");
    }
    if write.observed_speed_mps.is_some() {
        sets.push("#speed = :speed");
    }
    if write.route.is_some() {
        sets.push("#route = :route");
    }
    if write.announced {
        // The right-hand side reads the item as it was: the new seq.
        sets.push("#announced = #seq + :one");
        format!("SET {}", sets.join(", "))
    } else {
        format!("SET {} REMOVE #announced", sets.join(", "))
    }
}

/// `driverId = :driver AND #status IN (:s0, :s1, :s2) AND (attribute_not_exists(locationAcceptedAtMs)
/// OR locationAcceptedAtMs <= :threshold)`.
fn condition_expression() -> String {
    let statuses: Vec<String> = (0..OrderStatus::DRIVER_ACTIVE.len())
        .map(|i| format!(":s{i}"))
        .collect();
    format!(
        "#driverId = :driver AND #status IN ({}) AND \
         (attribute_not_exists(#acceptedAt) OR #acceptedAt <= :threshold)",
        statuses.join(", ")
    )
}

#[async_trait]
impl LiveLocationStore for DynamoStore {
    /// One `UpdateItem` on `ORDER#{id}` / `LIVE` (see `docs/table-design.md`), conditioned on
    /// the sender being the assigned driver, a driver-phase status and the last accepted
    /// location being at least `min_interval_ms` old. Returns `Accepted` with the new `seq`
    /// (`ReturnValues = ALL_NEW`); a refusal is classified from the row as it was
    /// (`ReturnValuesOnConditionCheckFailure = ALL_OLD`) by
    /// [`LocationOutcome::classify_refusal`], `NotFound` when there is no row. A write that
    /// meets a transition in flight is retried a few times. Fails with `Backend` on SDK errors
    /// and `Corrupt` when a returned row does not parse.
    async fn record_location(&self, write: &LocationWrite) -> Result<LocationOutcome, StoreError> {
        let table = self.orders_table();
        let id = &write.order_id;
        let updated_at = DateTime::from_timestamp_millis(write.now_ms)
            .ok_or_else(|| corrupt(format_args!("location for {id}"), "now_ms out of range"))?;
        let mut request = self
            .client
            .update_item()
            .table_name(table)
            .set_key(Some(key(order_pk(id), LIVE_SK)))
            .update_expression(update_expression(write))
            .condition_expression(condition_expression())
            .expression_attribute_names("#location", "location")
            .expression_attribute_names("#acceptedAt", "locationAcceptedAtMs")
            .expression_attribute_names("#updatedAt", "updatedAt")
            .expression_attribute_names("#seq", "seq")
            .expression_attribute_names("#driverId", "driverId")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#announced", "announcedSeq")
            .expression_attribute_values(":location", value(&write.location)?)
            .expression_attribute_values(":now", n(write.now_ms))
            .expression_attribute_values(":updatedAt", value(&updated_at)?)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":driver", s(write.driver_id.as_str()))
            .expression_attribute_values(
                ":threshold",
                n(write.now_ms.saturating_sub(write.min_interval_ms)),
            )
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (i, status) in OrderStatus::DRIVER_ACTIVE.iter().enumerate() {
            request = request.expression_attribute_values(format!(":s{i}"), s(status.as_str()));
        }
        if let Some(eta) = &write.eta {
            request = request
                .expression_attribute_names("#eta", "eta")
                .expression_attribute_values(":eta", value(eta)?);
        }
        if let Some(route) = &write.route {
            request = request
                .expression_attribute_names("#route", "route")
                .expression_attribute_values(":route", value(route)?);
        }
        if let Some(speed) = &write.observed_speed_mps {
            request = request
                .expression_attribute_names("#speed", "observedSpeedMps")
                .expression_attribute_values(":speed", value(speed)?);
        }

        let mut attempt = 1;
        let err = loop {
            match request.clone().send().await {
                Ok(out) => {
                    let seq = out
                        .attributes
                        .as_ref()
                        .and_then(|a| get_n::<u64>(a, "seq"))
                        .ok_or_else(|| {
                            backend(AdapterError::Unexpected("UpdateItem without the new seq"))
                        })?;
                    tracing::debug!(table, order = %id, seq, "accepted location");
                    return Ok(LocationOutcome::Accepted { seq });
                }
                Err(err)
                    if attempt < CONTENDED_ATTEMPTS
                        && err
                            .as_service_error()
                            .is_some_and(UpdateItemError::is_transaction_conflict_exception) =>
                {
                    tracing::debug!(table, order = %id, attempt, "location met a transaction; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(err) => break err,
            }
        };
        let Some(UpdateItemError::ConditionalCheckFailedException(refused)) =
            err.as_service_error()
        else {
            return Err(backend(err));
        };
        let outcome = match refused.item() {
            Some(item) => {
                let live = parse_live(table, id, Item::clone(item))?;
                LocationOutcome::classify_refusal(Some(&live), write)
            }
            None => LocationOutcome::NotFound,
        };
        tracing::debug!(table, order = %id, ?outcome, "location refused");
        Ok(outcome)
    }

    /// `GetItem` of `ORDER#{id}` / `LIVE`, eventually consistent (half a read unit for the
    /// small item). Fails with `Backend` on SDK errors and `Corrupt` when the item does not
    /// parse.
    async fn get_live(&self, order: &OrderId) -> Result<Option<LiveState>, StoreError> {
        let table = self.orders_table();
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key(order_pk(order), LIVE_SK)))
            .consistent_read(false)
            .send()
            .await
            .map_err(backend)?;
        out.item
            .map(|item| parse_live(table, order, item))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(announced: bool) -> LocationWrite {
        LocationWrite {
            order_id: OrderId::parse("o-1").unwrap(),
            driver_id: rnd_domain::ids::UserId::parse("d-1").unwrap(),
            location: rnd_domain::live::DriverLocation {
                latitude: rnd_domain::geo::Latitude::parse(30.0).unwrap(),
                longitude: rnd_domain::geo::Longitude::parse(-97.0).unwrap(),
                heading: None,
                speed: None,
                accuracy: None,
                recorded_at: DateTime::UNIX_EPOCH,
            },
            eta: None,
            observed_speed_mps: None,
            route: None,
            now_ms: 1_000,
            min_interval_ms: 1_000,
            announced,
        }
    }

    #[test]
    fn an_announced_location_records_the_seq_it_announced_and_any_other_clears_it() {
        // GIVEN a location the writer announces itself, and one it leaves to the stream
        // WHEN their update expressions are built
        // THEN the first sets announcedSeq to the new seq, the second removes it
        assert_eq!(
            update_expression(&write(true)),
            "SET #location = :location, #acceptedAt = :now, #updatedAt = :updatedAt, \
             #seq = #seq + :one, #announced = #seq + :one"
        );
        assert_eq!(
            update_expression(&write(false)),
            "SET #location = :location, #acceptedAt = :now, #updatedAt = :updatedAt, \
             #seq = #seq + :one REMOVE #announced"
        );
    }

    #[test]
    fn condition_lists_every_driver_phase() {
        assert_eq!(
            condition_expression(),
            "#driverId = :driver AND #status IN (:s0, :s1, :s2) AND \
             (attribute_not_exists(#acceptedAt) OR #acceptedAt <= :threshold)"
        );
    }
}
