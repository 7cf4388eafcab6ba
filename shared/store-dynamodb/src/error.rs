//! From SDK errors to [`StoreError`], and bounded retries of writes that met another
//! transaction in flight.

use std::collections::HashMap;
use std::fmt::Display;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{CancellationReason, KeysAndAttributes, TransactWriteItem};
use rnd_domain::ports::{BoxError, StoreError};

use crate::keys::{Item, PK, SK, get_s};

/// Cancellation reason code of a transaction item whose condition did not hold.
const CONDITIONAL_CHECK_FAILED: &str = "ConditionalCheckFailed";
/// Cancellation reason code of a transaction item another transaction was changing.
const TRANSACTION_CONFLICT: &str = "TransactionConflict";

/// Attempts of a write that keeps meeting another transaction in flight (then `Backend`).
pub(crate) const CONTENDED_ATTEMPTS: u32 = 6;
/// Attempts of a batch request with unprocessed items (then `Backend`).
pub(crate) const BATCH_ATTEMPTS: u32 = 8;

/// Failures of this adapter that are not an SDK error; boxed into [`StoreError::Backend`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdapterError {
    /// A batch request still had unprocessed items after the last retry.
    #[error("{operation}: {count} item(s) still unprocessed after {attempts} attempts")]
    Unprocessed {
        /// `BatchGetItem` or `BatchWriteItem`.
        operation: &'static str,
        /// How many were left.
        count: usize,
        /// How many requests were made.
        attempts: u32,
    },
    /// A table (or one of its indexes) did not become ACTIVE in time.
    #[error("table {table} is not ACTIVE after {waited_secs} s")]
    NotActive {
        /// The table.
        table: String,
        /// How long we waited.
        waited_secs: u64,
    },
    /// A response lacked something DynamoDB always sends.
    #[error("unexpected response: {0}")]
    Unexpected(&'static str),
}

/// Wraps an SDK (or adapter) error, keeping it as the source.
pub(crate) fn backend(e: impl Into<BoxError>) -> StoreError {
    StoreError::Backend(e.into())
}

/// An item that does not parse as what it should be; `what` names it (table and key, never
/// its contents), `cause` says why (a parser's error, or a message) and is kept as the source.
pub(crate) fn corrupt(what: impl Display, cause: impl Into<BoxError>) -> StoreError {
    StoreError::corrupt_by(what.to_string(), cause)
}

/// How a `TransactWriteItems` failed.
#[derive(Debug)]
pub(crate) enum TxFailure {
    /// At least one item's condition did not hold; the reasons are in the order of the items
    /// (code `ConditionalCheckFailed` for those that failed, `None` for the others).
    ConditionFailed(Vec<CancellationReason>),
    /// Anything else: throttling, network, validation, or contention that outlasted the
    /// retries. Holds the `Backend` error.
    Failed(StoreError),
}

/// For each item of a cancelled transaction, whether its condition failed.
pub(crate) fn condition_failures(reasons: &[CancellationReason]) -> Vec<bool> {
    reasons
        .iter()
        .map(|r| r.code() == Some(CONDITIONAL_CHECK_FAILED))
        .collect()
}

/// What one failed attempt means.
enum Attempt {
    Condition(Vec<CancellationReason>),
    Contended(StoreError),
    Other(StoreError),
}

/// The cancellation reasons of a `TransactionCanceledException`. The SDK parses them from the
/// response body; when a server leaves them out, they are read from the message
/// (`"... reasons [ConditionalCheckFailed, None]"`).
fn cancellation_reasons(
    reasons: &[CancellationReason],
    message: Option<&str>,
) -> Vec<CancellationReason> {
    if !reasons.is_empty() {
        return reasons.to_vec();
    }
    let Some(list) = message
        .and_then(|m| m.rsplit_once('['))
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
    else {
        return Vec::new();
    };
    list.split(',')
        .map(|code| CancellationReason::builder().code(code.trim()).build())
        .collect()
}

fn classify(err: SdkError<TransactWriteItemsError>) -> Attempt {
    if let Some(TransactWriteItemsError::TransactionCanceledException(e)) = err.as_service_error() {
        let reasons = cancellation_reasons(e.cancellation_reasons(), e.message());
        if reasons
            .iter()
            .any(|r| r.code() == Some(CONDITIONAL_CHECK_FAILED))
        {
            return Attempt::Condition(reasons);
        }
        if reasons
            .iter()
            .any(|r| r.code() == Some(TRANSACTION_CONFLICT))
        {
            return Attempt::Contended(backend(err));
        }
    }
    Attempt::Other(backend(err))
}

/// Sleep before retry `attempt` (1-based) of a contended write: exponential from 10 ms, capped
/// at 320 ms, with full jitter so that racing writers spread out.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let cap_ms = 10u64 << attempt.min(5);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    // Cheap jitter: the clock's nanoseconds, scrambled, within [cap/2, cap).
    let jitter = nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    Duration::from_millis(cap_ms / 2 + jitter % (cap_ms / 2).max(1))
}

/// Most keys in one `BatchGetItem`.
const BATCH_GET_MAX: usize = 100;

/// Reads the items of `keys` from `table` with `BatchGetItem` (consistent reads), retrying
/// unprocessed keys a bounded number of times. Returns them by `(pk, sk)`; keys without an item
/// are absent. Fails with `Backend` when a request fails or keys stay unprocessed.
pub(crate) async fn batch_get(
    client: &Client,
    table: &str,
    keys: &[Item],
) -> Result<HashMap<(String, String), Item>, StoreError> {
    let mut rows = HashMap::new();
    for chunk in keys.chunks(BATCH_GET_MAX) {
        let mut pending = chunk.to_vec();
        let mut attempt = 1;
        while !pending.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()
                .map_err(backend)?;
            let out = client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(backend)?;
            for item in out
                .responses
                .and_then(|mut r| r.remove(table))
                .unwrap_or_default()
            {
                if let (Some(pk), Some(sk)) = (get_s(&item, PK), get_s(&item, SK)) {
                    rows.insert((pk.to_owned(), sk.to_owned()), item);
                }
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if pending.is_empty() {
                break;
            }
            if attempt >= BATCH_ATTEMPTS {
                return Err(backend(AdapterError::Unprocessed {
                    operation: "BatchGetItem",
                    count: pending.len(),
                    attempts: attempt,
                }));
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }
    Ok(rows)
}

/// Runs one `TransactWriteItems` of `items`. A cancellation whose reasons include
/// `ConditionalCheckFailed` is [`TxFailure::ConditionFailed`]; one caused only by another
/// transaction in flight on an item (`TransactionConflict`) is retried a bounded number of
/// times (then `Failed`); any other error is `Failed` with the SDK error as the source.
pub(crate) async fn transact(
    client: &Client,
    operation: &'static str,
    items: Vec<TransactWriteItem>,
) -> Result<(), TxFailure> {
    let mut attempt = 1;
    loop {
        let result = client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        match classify(err) {
            Attempt::Condition(reasons) => return Err(TxFailure::ConditionFailed(reasons)),
            Attempt::Contended(_) if attempt < CONTENDED_ATTEMPTS => {
                tracing::debug!(operation, attempt, "transaction conflict; retrying");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            Attempt::Contended(e) | Attempt::Other(e) => return Err(TxFailure::Failed(e)),
        }
    }
}

/// One `PutItem` of `item` into `table` unless a live item (its `ttl` after `now`) holds its
/// key: the claim of a ledger entry or an idempotency key. True when written, false when a live
/// item was there.
pub(crate) async fn put_unless_live(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    item: crate::keys::Item,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, StoreError> {
    use crate::keys::{PK, TTL, n};
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#pk) OR #ttl <= :now")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#ttl", TTL)
        .expression_attribute_values(":now", n(now.timestamp()))
        .send()
        .await;
    written(result)
}

/// Every item `query` finds, all pages read with the SDK's paginator, in key order.
pub(crate) async fn query_all(
    query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
) -> Result<Vec<crate::keys::Item>, StoreError> {
    query
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(backend)
}

/// A conditional write's outcome: `true` when it was made, `false` when its condition did not
/// hold (DynamoDB's `ConditionalCheckFailedException`), any other failure as `Backend`.
pub(crate) fn written<O, E, R>(
    result: Result<O, aws_sdk_dynamodb::error::SdkError<E, R>>,
) -> Result<bool, StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(backend(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_read_from_the_message_when_absent() {
        let reasons = cancellation_reasons(
            &[],
            Some(
                "Transaction cancelled, please refer cancellation reasons for specific reasons \
                 [None, ConditionalCheckFailed]",
            ),
        );
        let codes: Vec<_> = reasons.iter().map(|r| r.code()).collect();
        assert_eq!(codes, [Some("None"), Some("ConditionalCheckFailed")]);
        assert!(cancellation_reasons(&[], Some("no list")).is_empty());
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 1..10 {
            let d = backoff(attempt);
            let cap = 10u64 << attempt.min(5);
            assert!(d >= Duration::from_millis(cap / 2) && d < Duration::from_millis(cap));
        }
    }
}
