//! Push notifications: what a phone whose app is closed is told, and the port that sends it.
//!
//! A [`PushMessage`] is one notification to one device (a registration token): a title and a
//! body in English, a `data` payload of strings (FCM requires strings) that lets apps localize
//! and dedupe (`event`, `orderId`, `status`, `seq`), a per-order collapse key (a newer push of an
//! order replaces an older one on the phone) and a priority. [`PushSender`] sends it; its
//! adapter speaks FCM HTTP v1. [`PushError`] tells what to do about a failure: prune the device,
//! retry later, or give up on this message.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::ports::BoxError;

/// Largest FCM message payload (notification + data), bytes.
pub const MAX_PAYLOAD_BYTES: usize = 4096;

/// One notification to one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushMessage {
    /// The device's registration token.
    pub token: String,
    /// Shown as the notification's title.
    pub title: String,
    /// Shown as the notification's body.
    pub body: String,
    /// String key/values for the app: `event`, `orderId`, `status`, `seq`.
    pub data: BTreeMap<String, String>,
    /// A newer message with the same key replaces an older one on the device (FCM's
    /// `android.collapse_key`, APNs' `apns-collapse-id`): one per order.
    pub collapse_key: String,
    /// Wake the device now (`order:new`, `driver:new_assignment`); else normal priority.
    pub high_priority: bool,
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The token is no longer valid (FCM `UNREGISTERED`, or `INVALID_ARGUMENT` about the
    /// token): delete the device; retrying cannot help.
    #[error("the registration token is not valid any more")]
    Unregistered,
    /// Throttled (HTTP 429, FCM `QUOTA_EXCEEDED`): retry after `retry_after` when given.
    #[error("throttled")]
    Throttled {
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The service failed (HTTP 5xx, `UNAVAILABLE`, `INTERNAL`, network): retry later, after
    /// `retry_after` when given.
    #[error("the push service is unavailable")]
    Unavailable {
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The credentials were refused (a misconfiguration): the token endpoint refused the
    /// grant, FCM refused a fresh access token too, or the account may not send in the
    /// project. Retrying this message will not help until someone fixes them.
    #[error("the push credentials were refused")]
    Unauthorized(#[source] BoxError),
    /// The message was refused and retrying will not help: it is too large or malformed, or
    /// it cannot be delivered for a reason that is not the device's (FCM's
    /// `SENDER_ID_MISMATCH`: a token of another project; `THIRD_PARTY_AUTH_ERROR`: the
    /// project's APNs credentials), so the device is kept.
    #[error("the push was refused")]
    Rejected(#[source] BoxError),
}

impl PushError {
    /// True for failures worth retrying (throttling, unavailability).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PushError::Throttled { .. } | PushError::Unavailable { .. }
        )
    }

    /// The wait the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PushError::Throttled { retry_after } | PushError::Unavailable { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// A short, stable name of the failure, for metrics and logs (`unregistered`, `throttled`,
    /// `unavailable`, `unauthorized`, `rejected`).
    pub fn reason(&self) -> &'static str {
        match self {
            PushError::Unregistered => "unregistered",
            PushError::Throttled { .. } => "throttled",
            PushError::Unavailable { .. } => "unavailable",
            PushError::Unauthorized(_) => "unauthorized",
            PushError::Rejected(_) => "rejected",
        }
    }
}

/// Sends one push notification (FCM HTTP v1 `messages:send` in every deployment).
#[async_trait]
pub trait PushSender: Send + Sync {
    /// Sends `message` once (no retries: the caller owns the retry policy, honouring
    /// [`PushError::retry_after`]). The adapter owns its credentials: it fetches an access
    /// token when it has none, refreshes it shortly before it expires, and once more when the
    /// service answers 401 before giving up with [`PushError::Unauthorized`].
    async fn send(&self, message: &PushMessage) -> Result<(), PushError>;
}
