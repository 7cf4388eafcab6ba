//! The orders table's second stream consumer: push notifications to the devices of the users a
//! change concerns, for phones whose app is closed (no WebSocket). A batch of DynamoDB stream
//! records (`NEW_AND_OLD_IMAGES`) in, FCM pushes out, a partial batch response back.
//!
//! Per batch, [`push_batch`]:
//! 1. decodes every record with the one decoder of stream images and asks the domain which
//!    notifications the change calls for ([`notifications`]);
//! 2. per notification (a bounded number at once): finds its recipient (a live item's customer
//!    is read from the order), skips it when the push ledger says it was sent already (a
//!    retried batch), reads the recipient's devices (none: no FCM call at all);
//! 3. sends to every device: `Unregistered` removes the device; throttling and unavailability
//!    are retried with full-jitter backoff honouring `Retry-After`, a bounded number of times;
//!    what still fails is counted, logged and returned as a [`FailedPush`] for the on-failure
//!    queue — it never holds up the rest of the batch;
//! 4. records the notification in the ledger (conditionally), so a retried batch pushes it no
//!    second time;
//! 5. answers `batchItemFailures` with the earliest record whose notifications could not even
//!    be attempted (a store failure before any push): Lambda retries from there, and the
//!    ledger keeps the retry from repeating what was sent.
//!
//! [`PushMetrics`] counts what happened; [`PushMetrics::to_emf`] renders it as one CloudWatch
//! Embedded Metric Format line.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::DynamoDbEventResponse;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use rnd_domain::device::Device;
use rnd_domain::ids::UserId;
use rnd_domain::ports::{DeviceStore, OrderStore, PushLedger, StoreError};
use rnd_domain::push::{Notification, PushError, PushSender, Recipient, notifications};
use serde::Serialize;
use tracing::Instrument;

/// The function name the metrics are published under.
pub const METRICS_FUNCTION: &str = "stream-push";

/// Settings of the push consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushConfig {
    /// Notifications handled at once (at least 1).
    pub concurrency: usize,
    /// Attempts of one push that is throttled or meets an outage, the first included.
    pub max_attempts: u32,
    /// Backoff cap of the first retry (doubles per retry up to `max_delay`; full jitter) when
    /// the service gives no `Retry-After`.
    pub base_delay: Duration,
    /// Largest backoff cap.
    pub max_delay: Duration,
    /// The longest `Retry-After` waited for; a longer one gives the push up to the queue at
    /// once (the batch must not stall).
    pub max_retry_after: Duration,
    /// How long the ledger remembers a sent notification (longer than the stream keeps a
    /// record, 24 h).
    pub ledger_retention: Duration,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(10),
            ledger_retention: Duration::from_secs(2 * 24 * 60 * 60),
        }
    }
}

impl PushConfig {
    /// Reads `PUSH_CONCURRENCY` (default 16) and `PUSH_MAX_ATTEMPTS` (default 3) from the
    /// environment; unset, unparsable or zero values take the default.
    pub fn from_env() -> Self {
        let positive = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u32>().ok())
                .filter(|v| *v > 0)
        };
        let defaults = Self::default();
        Self {
            concurrency: positive("PUSH_CONCURRENCY")
                .map(|v| v as usize)
                .unwrap_or(defaults.concurrency),
            max_attempts: positive("PUSH_MAX_ATTEMPTS").unwrap_or(defaults.max_attempts),
            ..defaults
        }
    }

    /// The pause before retry `retry` (1 for the first) when the service said nothing:
    /// uniformly random below `min(max_delay, base_delay · 2^(retry-1))`.
    fn backoff(&self, retry: u32) -> Duration {
        crate::stream::full_jitter(self.base_delay, self.max_delay, retry)
    }
}

/// A push that still failed after its retries: what the on-failure queue receives. It names
/// the notification and the device, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedPush {
    /// The notification's ledger key (`{orderId}#{seq}#{event}`).
    pub key: String,
    /// The recipient.
    pub user_id: String,
    /// The device.
    pub device_id: String,
    /// `throttled`, `unavailable`, `unauthorized` or `rejected`.
    pub reason: &'static str,
    /// Attempts made.
    pub attempts: u32,
}

/// What one batch did. Every count is of this batch only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushMetrics {
    /// Stream records in the batch.
    pub records: u64,
    /// Notifications the changes called for.
    pub notifications: u64,
    /// Notifications the ledger said were sent already (a retried batch).
    pub already_sent: u64,
    /// Notifications whose recipient has no device (no FCM call made).
    pub no_device: u64,
    /// Pushes FCM accepted (one per device).
    pub sent: u64,
    /// Pushes retried after throttling or an outage.
    pub retried: u64,
    /// Pushes that failed for good, by reason (`unregistered` included).
    pub failed: BTreeMap<&'static str, u64>,
    /// Devices removed because FCM no longer knows their token.
    pub pruned: u64,
    /// Records skipped because an image does not parse.
    pub malformed: u64,
    /// Records reported failed (retried by Lambda).
    pub failed_records: u64,
    /// Access tokens fetched by the sender during the batch (set by the wiring, which owns
    /// the sender's counters).
    pub token_refreshes: u64,
}

impl PushMetrics {
    /// The metrics as one CloudWatch Embedded Metric Format JSON line (namespace
    /// `RndRealtime`, dimension `Function` = `stream-push`), failures as `Failed_{reason}`.
    pub fn to_emf(&self, at: DateTime<Utc>) -> String {
        let mut counts: Vec<(String, u64)> = [
            ("Records", self.records),
            ("Notifications", self.notifications),
            ("AlreadySent", self.already_sent),
            ("NoDevice", self.no_device),
            ("PushesSent", self.sent),
            ("Retried", self.retried),
            ("DevicesPruned", self.pruned),
            ("Malformed", self.malformed),
            ("FailedRecords", self.failed_records),
            ("TokenRefreshes", self.token_refreshes),
        ]
        .map(|(name, value)| (name.to_owned(), value))
        .into();
        for (reason, count) in &self.failed {
            counts.push((format!("Failed_{reason}"), *count));
        }
        crate::stream::emf_line(METRICS_FUNCTION, &counts, &[], at)
    }
}

/// The answer to Lambda, what the batch did, and the pushes for the on-failure queue.
#[derive(Debug, Clone, PartialEq)]
pub struct PushOutcome {
    /// `batchItemFailures`: the earliest record whose notifications could not be attempted.
    pub response: DynamoDbEventResponse,
    /// The counts.
    pub metrics: PushMetrics,
    /// Pushes that failed after their retries (for the on-failure queue).
    pub failed_pushes: Vec<FailedPush>,
}

/// What became of one notification.
#[derive(Debug, Default)]
struct Report {
    already_sent: bool,
    no_device: bool,
    sent: u64,
    retried: u64,
    pruned: u64,
    failed: Vec<(&'static str, Option<FailedPush>)>,
}

/// The ports and settings every notification's delivery shares.
struct Delivery<'a, S: ?Sized> {
    store: &'a S,
    sender: &'a dyn PushSender,
    config: &'a PushConfig,
    now: DateTime<Utc>,
}

impl<S: DeviceStore + PushLedger + OrderStore + ?Sized> Delivery<'_, S> {
    /// Delivers `notification` to every device of its recipient (see the module steps 2–4).
    /// Fails only when the store fails before anything was pushed.
    async fn deliver(&self, notification: &Notification) -> Result<Report, StoreError> {
        let mut report = Report::default();
        let Some(user) = self.recipient(&notification.to).await? else {
            return Ok(report);
        };
        if self
            .store
            .was_pushed(&notification.key, &user, self.now)
            .await?
        {
            report.already_sent = true;
            return Ok(report);
        }
        let devices = self.store.devices_of(&user, self.now).await?;
        if devices.is_empty() {
            report.no_device = true;
            return Ok(report);
        }
        for device in &devices {
            self.to_device(notification, device, &mut report).await;
        }
        tracing::info!(
            user_id = %user,
            devices = devices.len(),
            sent = report.sent,
            "notification pushed"
        );
        let retention = chrono::Duration::from_std(self.config.ledger_retention)
            .unwrap_or_else(|_| chrono::Duration::days(2));
        // Pushed already: a failure to record it is logged, not retried (a retry would push
        // again, which the ledger is there to avoid).
        if let Err(e) = self
            .store
            .record_pushed(&notification.key, &user, self.now, retention)
            .await
        {
            tracing::warn!(
                key = %notification.key,
                user_id = %user,
                error = &e as &dyn std::error::Error,
                "could not record a push as sent; a retry of its record may push it again"
            );
        }
        Ok(report)
    }

    /// The user a recipient names; `None` when the order is gone.
    async fn recipient(&self, to: &Recipient) -> Result<Option<UserId>, StoreError> {
        match to {
            Recipient::User(user) => Ok(Some(user.clone())),
            Recipient::CustomerOf(order) => Ok(self
                .store
                .get_order(order)
                .await?
                .map(|view| view.order.customer_id)),
        }
    }

    /// Sends to one device with the retry policy; records the outcome in `report`.
    async fn to_device(&self, notification: &Notification, device: &Device, report: &mut Report) {
        let message = notification.to_device(device.token.as_str());
        let mut attempt = 1;
        loop {
            let error = match self.sender.send(&message).await {
                Ok(()) => {
                    report.sent += 1;
                    return;
                }
                Err(e) => e,
            };
            let wait = error
                .retry_after()
                .unwrap_or_else(|| self.config.backoff(attempt));
            let retry = error.is_retryable()
                && attempt < self.config.max_attempts.max(1)
                && wait <= self.config.max_retry_after;
            if retry {
                report.retried += 1;
                tracing::debug!(device_id = %device.device_id, attempt, reason = error.reason(), "push failed; retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            if let PushError::Unregistered = error {
                self.prune(device, report).await;
                report.failed.push((error.reason(), None));
                return;
            }
            tracing::warn!(
                device_id = %device.device_id,
                user_id = %device.user_id,
                key = %notification.key,
                attempts = attempt,
                error = &error as &dyn std::error::Error,
                "push failed for good; sent to the on-failure queue"
            );
            report.failed.push((
                error.reason(),
                Some(FailedPush {
                    key: notification.key.clone(),
                    user_id: device.user_id.to_string(),
                    device_id: device.device_id.to_string(),
                    reason: error.reason(),
                    attempts: attempt,
                }),
            ));
            return;
        }
    }

    /// Removes a device FCM no longer knows. A store failure is logged only: the next push
    /// meets `UNREGISTERED` again.
    async fn prune(&self, device: &Device, report: &mut Report) {
        match self
            .store
            .remove_device(&device.user_id, &device.device_id)
            .await
        {
            Ok(removed) => {
                report.pruned += u64::from(removed);
                tracing::info!(device_id = %device.device_id, user_id = %device.user_id, "device unregistered at FCM; removed");
            }
            Err(e) => tracing::warn!(
                device_id = %device.device_id,
                error = &e as &dyn std::error::Error,
                "device unregistered at FCM, but removing it failed"
            ),
        }
    }
}

/// The notifications of one record; `None` (logged, ids only) when an image does not parse.
fn record_notifications(record: &EventRecord) -> Option<Vec<Notification>> {
    let change = crate::stream::record_change(record)?;
    Some(change.map_or_else(Vec::new, |c| notifications(&c)))
}

/// Pushes one batch of orders-table stream records to the devices of the users they concern
/// (see the module documentation for the steps), at `now`.
///
/// Never fails as a whole: records whose notifications could not be attempted (the store
/// failed before any push) are reported in `batchItemFailures` (the earliest one); pushes that
/// fail after their retries are counted and returned in [`PushOutcome::failed_pushes`].
///
/// Runs in a `push` span (an X-Ray subsegment where the function is traced).
#[tracing::instrument(name = "push", skip_all, fields(records = event.records.len()))]
pub async fn push_batch<S: DeviceStore + PushLedger + OrderStore + ?Sized>(
    store: &S,
    sender: &dyn PushSender,
    config: &PushConfig,
    event: &Event,
    now: DateTime<Utc>,
) -> PushOutcome {
    let records = &event.records;
    let mut metrics = PushMetrics {
        records: records.len() as u64,
        ..PushMetrics::default()
    };
    let mut planned: Vec<(usize, Notification)> = Vec::new();
    for (index, record) in records.iter().enumerate() {
        match record_notifications(record) {
            Some(found) => planned.extend(found.into_iter().map(|n| (index, n))),
            None => metrics.malformed += 1,
        }
    }
    metrics.notifications = planned.len() as u64;
    let delivery = Delivery {
        store,
        sender,
        config,
        now,
    };
    let deliveries: Vec<_> = planned
        .iter()
        .map(|(index, n)| {
            let delivery = &delivery;
            // Ids only (never the device token): what the push's log lines are about.
            let span = tracing::info_span!(
                "notification",
                order_id = n.order_id(),
                event = n.data.get("event").map(String::as_str),
            );
            async move { (*index, n, delivery.deliver(n).await) }.instrument(span)
        })
        .collect();
    let results: Vec<_> = stream::iter(deliveries)
        .buffer_unordered(config.concurrency.max(1))
        .collect()
        .await;
    let mut failed_records = Vec::new();
    let mut failed_pushes = Vec::new();
    for (index, notification, result) in results {
        match result {
            Ok(report) => {
                metrics.already_sent += u64::from(report.already_sent);
                metrics.no_device += u64::from(report.no_device);
                metrics.sent += report.sent;
                metrics.retried += report.retried;
                metrics.pruned += report.pruned;
                for (reason, failed) in report.failed {
                    *metrics.failed.entry(reason).or_default() += 1;
                    failed_pushes.extend(failed);
                }
            }
            Err(e) => {
                tracing::error!(
                    key = %notification.key,
                    error = &e as &dyn std::error::Error,
                    "could not attempt a push; its record will be retried"
                );
                failed_records.push(index);
            }
        }
    }
    failed_records.sort_unstable();
    failed_records.dedup();
    metrics.failed_records = failed_records.len() as u64;
    let response = crate::stream::partial_failure(records, failed_records);
    tracing::info!(
        records = metrics.records,
        notifications = metrics.notifications,
        sent = metrics.sent,
        pruned = metrics.pruned,
        failed_records = metrics.failed_records,
        "push batch done"
    );
    PushOutcome {
        response,
        metrics,
        failed_pushes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emf_line_declares_every_count_it_carries_failures_by_reason() {
        let metrics = PushMetrics {
            records: 2,
            sent: 3,
            pruned: 1,
            failed: BTreeMap::from([("unregistered", 1), ("throttled", 2)]),
            ..PushMetrics::default()
        };
        let at = DateTime::from_timestamp_millis(1_773_489_600_000).unwrap();
        let line: serde_json::Value = serde_json::from_str(&metrics.to_emf(at)).unwrap();
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(line["Function"], "stream-push");
        for definition in directive["Metrics"].as_array().unwrap() {
            let name = definition["Name"].as_str().unwrap();
            assert!(line[name].is_number(), "{name} is declared but not set");
        }
        assert_eq!(line["PushesSent"], 3);
        assert_eq!(line["DevicesPruned"], 1);
        assert_eq!(line["Failed_throttled"], 2);
        assert_eq!(line["Failed_unregistered"], 1);
    }
}
