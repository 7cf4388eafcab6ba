//! The message routes: `subscribe:order`, `unsubscribe:order`, `driver:location`, `resume` and
//! `$default` (`ping`, `hello`, and every refusal). Each answers with one server message, which
//! API Gateway sends back to the client as the route response — except an accepted
//! `driver:location` whose sender asked for refusals only (`"ack": "refusals"`), which is
//! answered by nothing.
//!
//! `driver:location` is the fast path of the live location: one small read of the order's live
//! item (the ETA's inputs; a location that is too soon is refused from it without a write), one
//! conditional write that validates the sender and the phase, and — when the routes have a
//! notifier — the `driver:location_update` (and `order:eta_update` when the ETA moved) posted
//! to the order's room right after the write ([`crate::fanout::announce`]), the write marking
//! the item as announced so that the stream's fan-out does not post them again. Status events
//! stay on the stream: any writer of the orders table still notifies.
//!
//! Two routes replay what a client missed before they answer, posting each replayed event to
//! the caller's connection (PostToConnection) in order, so that they reach it before the route
//! response:
//! - `resume` replays the caller's inbox after its cursor, then answers `resumed` with the
//!   newest cursor, the count and the continuity (see [`rnd_domain::inbox`]);
//! - `subscribe:order` with `sinceSeq` replays the order's status updates after it (rebuilt
//!   from the order's history, exactly as they were sent), then answers `subscribed` with the
//!   continuity.

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use chrono::{DateTime, Utc};
use rnd_domain::eta::{EtaEstimator, EtaRequest};
use rnd_domain::events::location_announcements;
use rnd_domain::events::status_updates_since;
use rnd_domain::ids::ConnectionId;
use rnd_domain::inbox::{self, Continuity, Cursor, MAX_REPLAY, REPLAY_PAGE};
use rnd_domain::limits::{Allowance, Limit};
use rnd_domain::live::{LiveState, LocationOutcome, LocationWrite};
use rnd_domain::ports::{
    ConnectionStore, InboxStore, LiveLocationStore, Notifier, NotifyError, OrderStore,
    RateLimitStore, StoreError,
};
use rnd_domain::protocol::{
    ClientMessage, ConnectedData, ErrorCode, LocationAckData, LocationRejection, LocationReport,
    PongData, ProtocolError, ResumedData, ServerMessage, SubscribedData, UnsubscribedData,
    parse_client_message,
};
use rnd_domain::rooms::{Room, RoomRefusal, authorize_location, authorize_subscribe};
use rnd_domain::tracking::OrderTracking;
use rnd_domain::visibility::{DriverAccess, Visibility};
use rnd_domain::{OrderId, OrderView};

use tracing::Instrument;

use crate::context::{Caller, caller};
use crate::fanout::{FanoutConfig, announce};
use crate::{message_response, status_response};

/// Default minimum spacing between accepted locations of one order.
pub const DEFAULT_LOCATION_MIN_INTERVAL_MS: i64 = 1_000;

/// Settings of the message routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteConfig {
    /// Minimum spacing between accepted locations of one order, ms.
    pub location_min_interval_ms: i64,
    /// How long an order's driver may still subscribe to it after it ended.
    pub driver_access: DriverAccess,
    /// `subscribe:order` and `unsubscribe:order` messages a connection may send per window.
    pub room_changes: Limit,
}

impl Default for RouteConfig {
    fn default() -> Self {
        Self {
            location_min_interval_ms: DEFAULT_LOCATION_MIN_INTERVAL_MS,
            driver_access: DriverAccess::default(),
            room_changes: Limit::ROOM_CHANGES_PER_CONNECTION,
        }
    }
}

impl RouteConfig {
    /// Reads `LOCATION_MIN_INTERVAL_MS` (default 1000), `DRIVER_ACCESS_HOURS` (default 6) and
    /// `ROOM_CHANGES_PER_MINUTE` (default 60) from the environment.
    pub fn from_env() -> Self {
        let location_min_interval_ms = std::env::var("LOCATION_MIN_INTERVAL_MS")
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| *v >= 0)
            .unwrap_or(DEFAULT_LOCATION_MIN_INTERVAL_MS);
        Self {
            location_min_interval_ms,
            driver_access: DriverAccess::from_env(),
            room_changes: Limit::ROOM_CHANGES_PER_CONNECTION.from_env("ROOM_CHANGES_PER_MINUTE"),
        }
    }
}

/// What the message routes need. Built once per cold start.
pub struct Routes<S: ?Sized> {
    store: Arc<S>,
    eta: Arc<dyn EtaEstimator>,
    /// Posts to connections (the Management API): replayed events to the caller's connection
    /// (`resume`, `subscribe:order`) and announced locations to the order's room
    /// (`driver:location`); the functions of the other routes have none.
    notifier: Option<Arc<dyn Notifier>>,
    /// How announced locations are posted (concurrency, retries).
    delivery: FanoutConfig,
    config: RouteConfig,
}

impl<S: ?Sized> std::fmt::Debug for Routes<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes")
            .field("config", &self.config)
            .finish()
    }
}

/// An expected refusal or an unexpected failure, on its way to becoming an `error` event.
#[derive(Debug, thiserror::Error)]
enum RouteError {
    #[error(transparent)]
    Refused(#[from] ProtocolError),
    #[error("store failure")]
    Store(#[from] StoreError),
    #[error("could not post a replayed event")]
    Replay(#[source] NotifyError),
    #[error("this function has no Management API endpoint to replay through")]
    CannotReplay,
}

fn refused(code: ErrorCode, message: &str) -> RouteError {
    RouteError::Refused(ProtocolError::new(code, message))
}

const ORDER_NOT_FOUND: &str = "order not found";

impl<S> Routes<S>
where
    S: ConnectionStore + OrderStore + LiveLocationStore + InboxStore + RateLimitStore + ?Sized,
{
    /// Routes over `store`, estimating arrivals with `eta`. They post nothing (no replays, and
    /// locations are left to the stream) until given a notifier ([`Routes::posting_through`]).
    pub fn new(store: Arc<S>, eta: Arc<dyn EtaEstimator>, config: RouteConfig) -> Self {
        Self {
            store,
            eta,
            notifier: None,
            delivery: FanoutConfig::default(),
            config,
        }
    }

    /// These routes, posting through `notifier`: replays (`resume`, `subscribe:order` with
    /// `sinceSeq`) to the caller's connection, and accepted locations to the order's room (the
    /// fast path; without a notifier the stream's fan-out delivers them).
    pub fn posting_through(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// These routes, posting announced locations with `delivery`'s concurrency and retries
    /// (the fan-out's defaults otherwise).
    pub fn delivering_with(mut self, delivery: FanoutConfig) -> Self {
        self.delivery = delivery;
        self
    }

    /// Handles one message event and answers with the route response: the answer as its
    /// body, or no body (API Gateway then sends the client nothing) when there is no answer.
    ///
    /// Never fails: refusals become `error` events with a stable code; unexpected failures are
    /// logged with their cause and become `internal` errors that say nothing of the cause.
    pub async fn handle(
        &self,
        event: &ApiGatewayWebsocketProxyRequest,
        now: DateTime<Utc>,
    ) -> ApiGatewayProxyResponse {
        match self.answer(event, now).await {
            Some(answer) => message_response(&answer),
            None => status_response(200),
        }
    }

    /// The server message answering `event`; `None` when nothing answers it (an accepted
    /// location whose sender asked for refusals only).
    ///
    /// Runs in a `route` span carrying the route, the connection id and, once the message names
    /// one, the order id: every line logged while handling it carries them.
    pub async fn answer(
        &self,
        event: &ApiGatewayWebsocketProxyRequest,
        now: DateTime<Utc>,
    ) -> Option<ServerMessage> {
        let context = &event.request_context;
        let span = tracing::info_span!(
            "route",
            route = context.route_key.as_deref(),
            connection_id = context.connection_id.as_deref(),
            order_id = tracing::field::Empty,
        );
        self.answer_in_span(event, now).instrument(span).await
    }

    async fn answer_in_span(
        &self,
        event: &ApiGatewayWebsocketProxyRequest,
        now: DateTime<Utc>,
    ) -> Option<ServerMessage> {
        let caller = match caller(event) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "message without authorizer context");
                return Some(ServerMessage::error(ErrorCode::Internal, "internal error"));
            }
        };
        if caller.identity.expires_at <= now {
            return Some(ServerMessage::token_expired());
        }
        let body = event.body.as_deref().unwrap_or("");
        let result = match parse_client_message(body) {
            Ok(message) => self.dispatch(&caller, message, now).await,
            Err(e) => Err(e.into()),
        };
        let answer = match result {
            Ok(answer) => return answer,
            Err(RouteError::Refused(e)) => {
                tracing::info!(connection_id = %caller.connection_id, code = e.code.as_str(), "message refused");
                e.to_message()
            }
            Err(RouteError::Store(e)) => {
                tracing::error!(connection_id = %caller.connection_id, error = &e as &dyn std::error::Error, "message failed");
                ServerMessage::error(ErrorCode::Internal, "internal error; try again")
            }
            Err(RouteError::Replay(e)) => {
                tracing::warn!(connection_id = %caller.connection_id, error = &e as &dyn std::error::Error, "replay failed");
                ServerMessage::error(ErrorCode::Internal, "the replay failed; try again")
            }
            Err(RouteError::CannotReplay) => {
                tracing::error!(connection_id = %caller.connection_id, "a replay reached a function without a Management API endpoint; check the template");
                ServerMessage::error(ErrorCode::Internal, "internal error")
            }
        };
        Some(answer)
    }

    async fn dispatch(
        &self,
        caller: &Caller,
        message: ClientMessage,
        now: DateTime<Utc>,
    ) -> Result<Option<ServerMessage>, RouteError> {
        if let Some(order_id) = message.order_id() {
            tracing::Span::current().record("order_id", tracing::field::display(order_id));
        }
        match message {
            ClientMessage::Ping => Ok(ServerMessage::Pong(PongData { server_time: now })),
            ClientMessage::Hello => Ok(ServerMessage::Connected(ConnectedData {
                connection_id: caller.connection_id.clone(),
                user_id: caller.identity.actor.user_id.clone(),
                role: caller.identity.actor.role,
                server_time: now,
            })),
            ClientMessage::SubscribeOrder {
                order_id,
                since_seq,
            } => {
                self.count_room_change(caller, now).await?;
                self.subscribe(caller, order_id, since_seq, now).await
            }
            ClientMessage::Resume { cursor } => self.resume(caller, cursor.as_deref(), now).await,
            ClientMessage::UnsubscribeOrder { order_id } => {
                self.count_room_change(caller, now).await?;
                let room = Room::Order(order_id.clone());
                self.store.leave_room(&caller.connection_id, &room).await?;
                tracing::info!(connection_id = %caller.connection_id, order_id = %order_id, "unsubscribed");
                Ok(ServerMessage::Unsubscribed(UnsubscribedData { order_id }))
            }
            ClientMessage::DriverLocation(report) => return self.location(caller, report, now).await,
        }
        .map(Some)
    }

    /// Counts a `subscribe:order`/`unsubscribe:order` of the caller's connection against its
    /// limit ([`RouteConfig::room_changes`]); refused, `rate_limited` with `retryAfterMs`.
    async fn count_room_change(
        &self,
        caller: &Caller,
        now: DateTime<Utc>,
    ) -> Result<(), RouteError> {
        let limit = self.config.room_changes;
        match self
            .store
            .take(limit, caller.connection_id.as_str(), now)
            .await?
        {
            Allowance::Granted => Ok(()),
            Allowance::Refused { retry_after } => {
                Err(RouteError::Refused(ProtocolError::rate_limited(
                    format!(
                        "at most {} subscribe and unsubscribe messages per minute",
                        limit.per_window
                    ),
                    u64::try_from(retry_after.num_milliseconds()).unwrap_or(0),
                )))
            }
        }
    }

    async fn visible_order(
        &self,
        caller: &Caller,
        order_id: &OrderId,
        now: DateTime<Utc>,
    ) -> Result<OrderView, RouteError> {
        let view = self
            .store
            .get_order(order_id)
            .await?
            .ok_or_else(|| refused(ErrorCode::NotFound, ORDER_NOT_FOUND))?;
        authorize_subscribe(
            &caller.identity.actor,
            &view.order,
            now,
            self.config.driver_access,
        )
        .map_err(|_| refused(ErrorCode::NotFound, ORDER_NOT_FOUND))?;
        Ok(view)
    }

    async fn subscribe(
        &self,
        caller: &Caller,
        order_id: OrderId,
        since_seq: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<ServerMessage, RouteError> {
        self.visible_order(caller, &order_id, now).await?;
        let room = Room::Order(order_id.clone());
        match self
            .store
            .join_room(&caller.connection_id, &room, now)
            .await
        {
            Ok(()) => {}
            Err(StoreError::ConnectionGone) => {
                return Err(refused(
                    ErrorCode::TokenExpired,
                    "this connection is no longer registered; reconnect",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        // Read the snapshot after joining: a change in between is then either in the snapshot
        // or delivered as an event (the client drops events with seq ≤ the snapshot's).
        let view = self.visible_order(caller, &order_id, now).await?;
        // What the client missed, rebuilt from the history: the status updates after
        // `sinceSeq`. A `sinceSeq` the order never reached, or a history too old to rebuild,
        // cannot be answered exactly: continuity is lost (the snapshot still tells the state).
        let (continuity, replayed) = match since_seq {
            None => (None, None),
            Some(since) => {
                let missed = (since <= view.seq())
                    .then(|| status_updates_since(&view.order, since))
                    .flatten();
                match missed {
                    Some(updates) => {
                        let role = caller.identity.actor.role;
                        let messages = updates.into_iter().map(|u| {
                            ServerMessage::StatusUpdate(u)
                                .seen_by(role)
                                .delivered(None, true)
                        });
                        let count = self.replay(&caller.connection_id, messages).await?;
                        (Some(Continuity::Ok), Some(count))
                    }
                    None => (Some(Continuity::Lost), Some(0)),
                }
            }
        };
        tracing::info!(connection_id = %caller.connection_id, order_id = %order_id, seq = view.seq(), ?since_seq, ?replayed, "subscribed");
        Ok(ServerMessage::Subscribed(Box::new(SubscribedData {
            order_id,
            seq: view.seq(),
            tracking: OrderTracking::of(
                &view,
                Visibility::for_actor(&caller.identity.actor, &view.order),
            ),
            continuity,
            replayed,
        })))
    }

    /// Posts `messages` to `connection` in order, each after the previous one was accepted.
    /// Returns how many were posted.
    async fn replay(
        &self,
        connection: &ConnectionId,
        messages: impl IntoIterator<Item = ServerMessage>,
    ) -> Result<u32, RouteError> {
        let mut count = 0;
        for message in messages {
            let notifier = self.notifier.as_ref().ok_or(RouteError::CannotReplay)?;
            notifier
                .post(connection, &message.to_json())
                .await
                .map_err(RouteError::Replay)?;
            count += 1;
        }
        Ok(count)
    }

    /// `resume`: replays the caller's inbox after `cursor` (nothing without one), then answers
    /// `resumed`. A cursor that is not the caller's, or was never issued, is refused with
    /// `invalid_message` and nothing is replayed.
    async fn resume(
        &self,
        caller: &Caller,
        cursor: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ServerMessage, RouteError> {
        let user = &caller.identity.actor.user_id;
        let not_ours = || refused(ErrorCode::InvalidMessage, "cursor is not valid");
        let cursor = cursor
            .map(|text| Cursor::decode(text, user))
            .transpose()
            .map_err(|_| not_ours())?;
        let inbox = self.store.read_inbox(user, 0, 0, now).await?;
        let (epoch, head) = (inbox.epoch, inbox.head);
        let Some(cursor) = cursor else {
            return Ok(resumed(user, epoch, head, 0, Continuity::Ok));
        };
        let from = inbox::replay_from(cursor, epoch, head).map_err(|_| not_ours())?;
        let (mut after, mut first, mut replayed, mut truncated) = (from, None, 0u32, false);
        loop {
            let page = self.store.read_inbox(user, after, REPLAY_PAGE, now).await?;
            let full = page.events.len() == REPLAY_PAGE;
            for event in page.events {
                if replayed as usize >= MAX_REPLAY {
                    truncated = true;
                    break;
                }
                let position = Cursor {
                    epoch: page.epoch,
                    position: event.position,
                };
                let message = event
                    .message
                    .seen_by(caller.identity.actor.role)
                    .delivered(Some(position.encode(user)), true);
                self.replay(&caller.connection_id, [message]).await?;
                first.get_or_insert(event.position);
                after = event.position;
                replayed += 1;
            }
            if truncated || !full {
                break;
            }
        }
        let mut continuity = inbox::continuity(cursor, epoch, from, first, head);
        if truncated {
            continuity = Continuity::Lost;
        }
        // The newest position: the last event replayed, else the head (past what expired).
        let newest = if first.is_some() {
            after
        } else {
            head.max(from)
        };
        tracing::info!(connection_id = %caller.connection_id, replayed, ?continuity, "resumed");
        Ok(resumed(user, epoch, newest, replayed, continuity))
    }

    /// `driver:location`: reads the live item, estimates the ETA from it, writes the location
    /// with one conditional write, announces it to the order's room (with a notifier), and
    /// acknowledges it unless the sender asked for refusals only.
    async fn location(
        &self,
        caller: &Caller,
        report: LocationReport,
        now: DateTime<Utc>,
    ) -> Result<Option<ServerMessage>, RouteError> {
        let actor = &caller.identity.actor;
        let live = self
            .store
            .get_live(&report.order_id)
            .await?
            .ok_or_else(|| refused(ErrorCode::NotFound, ORDER_NOT_FOUND))?;
        let (pickup, dropoff) = match (live.pickup, live.dropoff) {
            (Some(pickup), Some(dropoff)) => (pickup, dropoff),
            // A live item written before the points were mirrored on it.
            _ => {
                let view = self
                    .store
                    .get_order(&report.order_id)
                    .await?
                    .ok_or_else(|| refused(ErrorCode::NotFound, ORDER_NOT_FOUND))?;
                (view.order.pickup_point(), view.order.dropoff_point())
            }
        };
        let mut write = LocationWrite {
            order_id: report.order_id.clone(),
            driver_id: actor.user_id.clone(),
            location: report.to_location(now),
            eta: None,
            observed_speed_mps: None,
            route: None,
            now_ms: now.timestamp_millis(),
            min_interval_ms: self.config.location_min_interval_ms,
            announced: self.notifier.is_some(),
        };
        // A location the read already finds too soon is refused without a write (a refused
        // conditional write costs as much as an accepted one), and without an estimate.
        let outcome = match LocationOutcome::too_soon(&live, &write) {
            Some(refusal) => refusal,
            None => {
                // Only a location the item allows is worth an estimate (maybe a routing call);
                // one it refuses is refused by the write, which says why.
                if LocationOutcome::allows(&live, &write) {
                    let estimate = self
                        .eta
                        .estimate(&EtaRequest {
                            order_id: report.order_id.clone(),
                            driver: write.location.point(),
                            pickup,
                            dropoff,
                            status: live.status,
                            reported_speed_mps: write.location.speed.map(f64::from),
                            observed_speed_mps: live.observed_speed_mps,
                            route: live.route.clone(),
                            now,
                        })
                        .await;
                    write.eta = Some(estimate.eta);
                    write.observed_speed_mps = estimate.observed_speed_mps;
                    write.route = estimate.route;
                }
                self.store.record_location(&write).await?
            }
        };
        tracing::debug!(connection_id = %caller.connection_id, order_id = %report.order_id, ?outcome, "location");
        match outcome {
            LocationOutcome::Accepted { seq } => {
                if let Some(notifier) = &self.notifier {
                    let current = LiveState {
                        seq,
                        ..LocationOutcome::apply(&live, &write)
                    };
                    let announced = announce(
                        &*self.store,
                        &**notifier,
                        &self.delivery,
                        location_announcements(&live, &current),
                        now,
                    )
                    .await;
                    tracing::debug!(order_id = %report.order_id, seq, ?announced, "location announced");
                }
                Ok(report
                    .ack
                    .accepted()
                    .then_some(ServerMessage::LocationAcknowledged(LocationAckData {
                        order_id: report.order_id,
                        accepted: true,
                        eta_minutes: write.eta.map(|e| e.eta_minutes),
                        reason: None,
                        retry_after_ms: None,
                        seq: Some(seq),
                    })))
            }
            LocationOutcome::RateLimited { retry_after_ms } => {
                Ok(Some(ServerMessage::LocationAcknowledged(LocationAckData {
                    order_id: report.order_id,
                    accepted: false,
                    eta_minutes: None,
                    reason: Some(LocationRejection::RateLimited),
                    retry_after_ms: Some(retry_after_ms),
                    seq: None,
                })))
            }
            // Not this driver's order (any more), or not in a driver phase: what the sender is
            // told depends on how it relates to the order, which only the order item says.
            LocationOutcome::NotAssignedDriver | LocationOutcome::NotActive => {
                let view = self
                    .store
                    .get_order(&report.order_id)
                    .await?
                    .ok_or_else(|| refused(ErrorCode::NotFound, ORDER_NOT_FOUND))?;
                Err(match authorize_location(actor, &view.order) {
                    Err(RoomRefusal::NotFound) => refused(ErrorCode::NotFound, ORDER_NOT_FOUND),
                    _ => refused(ErrorCode::Forbidden, LOCATION_FORBIDDEN),
                })
            }
            LocationOutcome::NotFound => Err(refused(ErrorCode::NotFound, ORDER_NOT_FOUND)),
        }
    }
}

const LOCATION_FORBIDDEN: &str = "only the assigned driver may send locations, while the order is assigned, picked up or in transit";

/// The `resumed` answer at `position` of the inbox at `epoch`.
fn resumed(
    user: &rnd_domain::UserId,
    epoch: u64,
    position: u64,
    replayed: u32,
    continuity: Continuity,
) -> ServerMessage {
    ServerMessage::Resumed(ResumedData {
        cursor: Cursor { epoch, position }.encode(user),
        replayed,
        continuity,
    })
}
