//! What the emulator knows: the service accounts it trusts, the access tokens it issued, the
//! faults it was told to answer with, and what it received.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use jsonwebtoken::DecodingKey;
use serde::Serialize;

use crate::{DEFAULT_TOKEN_LIFETIME, MAX_RECORDED};

/// How long an expired access token is still known as one that expired.
const FORGET_EXPIRED_AFTER: Duration = Duration::from_secs(3600);

/// A public key given to [`FcmEmulator::trust`](crate::FcmEmulator::trust) is not an RSA
/// public key in PEM.
#[derive(Debug, thiserror::Error)]
#[error("not an RSA public key in PEM")]
pub struct InvalidPublicKey(#[source] pub(crate) jsonwebtoken::errors::Error);

/// How to answer sends to one registration token instead of delivering, with the status and
/// body FCM answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 404 `NOT_FOUND`, `errorCode` `UNREGISTERED`: the app was uninstalled or the token
    /// expired.
    Unregistered,
    /// 400 `INVALID_ARGUMENT`, "The registration token is not a valid FCM registration token".
    InvalidToken,
    /// 429 `RESOURCE_EXHAUSTED`, `errorCode` `QUOTA_EXCEEDED`, with `Retry-After` in seconds
    /// when given.
    QuotaExceeded {
        /// The `Retry-After` header to send.
        retry_after: Option<Duration>,
    },
    /// 503 `UNAVAILABLE`, `errorCode` `UNAVAILABLE`, with `Retry-After` when given.
    Unavailable {
        /// The `Retry-After` header to send.
        retry_after: Option<Duration>,
    },
    /// 500 `INTERNAL`, `errorCode` `INTERNAL`.
    Internal,
    /// 403 `PERMISSION_DENIED`, `errorCode` `SENDER_ID_MISMATCH`: the token belongs to another
    /// Firebase project.
    SenderIdMismatch,
    /// 401 `UNAUTHENTICATED`, `errorCode` `THIRD_PARTY_AUTH_ERROR`: the project's APNs or web
    /// push credentials were refused.
    ThirdPartyAuthError,
    /// 401 `UNAUTHENTICATED` without an FCM error code, as FCM answers an access token it
    /// refuses (whichever token the send carries): for testing a sender's refresh on 401
    /// (`fail_next(…, 1)`) and what it does when a fresh token is refused too (`fail`).
    Unauthenticated,
}

/// A message FCM accepted: what the phone holding `token` would show.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedMessage {
    /// The name answered: `projects/{project}/messages/{id}`.
    pub name: String,
    /// The registration token it was sent to.
    pub token: String,
    /// `notification.title`.
    pub title: Option<String>,
    /// `notification.body`.
    pub body: Option<String>,
    /// `data`.
    pub data: BTreeMap<String, String>,
    /// `android.collapse_key`.
    pub collapse_key: Option<String>,
    /// `android.priority` (`HIGH`, `NORMAL`).
    pub android_priority: Option<String>,
    /// `apns.headers["apns-collapse-id"]`.
    pub apns_collapse_id: Option<String>,
    /// `apns.headers["apns-priority"]` (`10` now, `5` power-considerate).
    pub apns_priority: Option<String>,
    /// True when the phone would be woken at once: Android priority `HIGH` (or APNs `10`
    /// when no Android priority is set).
    pub high_priority: bool,
    /// When the emulator accepted it.
    pub received_at: DateTime<Utc>,
    /// The request body exactly as received.
    pub request: serde_json::Value,
}

/// One `messages:send` request and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SendAttempt {
    /// `message.token`, when the body had one.
    pub token: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
}

/// A service account the emulator trusts.
pub(crate) struct Account {
    pub(crate) private_key_id: String,
    pub(crate) project_id: String,
    pub(crate) key: DecodingKey,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("private_key_id", &self.private_key_id)
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

/// An access token the emulator issued.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub(crate) project_id: String,
    pub(crate) expires_at: Instant,
}

/// A fault to answer with: always, or for the next `remaining` sends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaultRule {
    fault: Fault,
    remaining: Option<usize>,
}

/// Everything that changes, behind one lock.
#[derive(Debug)]
pub(crate) struct Recorded {
    pub(crate) accounts: HashMap<String, Account>,
    /// Access token → what it grants, until an hour after it expired.
    pub(crate) issued: HashMap<String, Issued>,
    pub(crate) token_lifetime: Duration,
    pub(crate) token_grants: usize,
    pub(crate) token_requests: usize,
    pub(crate) faults: HashMap<String, FaultRule>,
    pub(crate) messages: VecDeque<ReceivedMessage>,
    pub(crate) attempts: VecDeque<SendAttempt>,
}

impl Recorded {
    /// Makes every token issued so far expire at `now`.
    pub(crate) fn expire_issued(&mut self, now: Instant) {
        for issued in self.issued.values_mut() {
            issued.expires_at = issued.expires_at.min(now);
        }
    }

    pub(crate) fn set_fault(&mut self, token: &str, fault: Fault, times: Option<usize>) {
        if times == Some(0) {
            self.faults.remove(token);
            return;
        }
        self.faults.insert(
            token.to_owned(),
            FaultRule {
                fault,
                remaining: times,
            },
        );
    }

    /// The fault to answer a send to `token` with now, if any, using up one send of a counted
    /// rule.
    pub(crate) fn take_fault(&mut self, token: &str) -> Option<Fault> {
        let rule = self.faults.get_mut(token)?;
        let fault = rule.fault;
        if let Some(remaining) = &mut rule.remaining {
            *remaining -= 1;
            if *remaining == 0 {
                self.faults.remove(token);
            }
        }
        Some(fault)
    }

    /// Issues an access token for `project_id`, living the configured lifetime; returns it
    /// and its lifetime in whole seconds. Forgets tokens expired for over an hour (until then
    /// a send with one is told it expired rather than that it is unknown).
    pub(crate) fn issue(&mut self, project_id: &str, now: Instant) -> (String, u64) {
        self.issued.retain(|_, issued| {
            now.saturating_duration_since(issued.expires_at) < FORGET_EXPIRED_AFTER
        });
        let lifetime = self.token_lifetime.max(Duration::from_secs(1));
        let token = format!("ya29.emulator-{}", uuid::Uuid::new_v4().simple());
        self.issued.insert(
            token.clone(),
            Issued {
                project_id: project_id.to_owned(),
                expires_at: now + lifetime,
            },
        );
        self.token_grants += 1;
        (token, lifetime.as_secs())
    }

    pub(crate) fn record_attempt(&mut self, attempt: SendAttempt) {
        push_bounded(&mut self.attempts, attempt);
    }

    pub(crate) fn record_message(&mut self, message: ReceivedMessage) {
        push_bounded(&mut self.messages, message);
    }

    pub(crate) fn messages_to(&self, token: &str) -> Vec<ReceivedMessage> {
        self.messages
            .iter()
            .filter(|m| m.token == token)
            .cloned()
            .collect()
    }
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() == MAX_RECORDED {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// The state shared by the handlers and every [`FcmEmulator`](crate::FcmEmulator) clone.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Where the Router is served, without a trailing slash.
    pub(crate) base_url: String,
    recorded: Mutex<Recorded>,
}

impl Shared {
    pub(crate) fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.to_owned(),
            recorded: Mutex::new(Recorded {
                accounts: HashMap::new(),
                issued: HashMap::new(),
                token_lifetime: DEFAULT_TOKEN_LIFETIME,
                token_grants: 0,
                token_requests: 0,
                faults: HashMap::new(),
                messages: VecDeque::new(),
                attempts: VecDeque::new(),
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Recorded> {
        // Every update is a single insert or push: a panicking holder cannot leave it torn.
        self.recorded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
