//! The WebSocket API at `/realtime`, emulating API Gateway: the REQUEST authorizer and
//! `$connect` run on the upgrade request (refusing it with their status), text frames are routed
//! on `$request.body.action` to the message routes (their answer goes back as the route
//! response), and every way a connection ends (client close, idle timeout, hard limit, oversize
//! message, `DELETE @connections`, shutdown) runs `$disconnect`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayWebsocketProxyRequest,
};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::iam::IamPolicyEffect;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::header::SEC_WEBSOCKET_PROTOCOL;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::SinkExt;
use rnd_domain::identity::extract_token;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::AppState;
use crate::events::{self, ConnectionContext, UpgradeRequest};

/// API Gateway's limit on one WebSocket message; larger ones close the connection with 1009.
pub(crate) const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// What the socket itself accepts before our own check (so an oversize message is read and
/// answered with 1009 rather than a protocol error).
const SOCKET_LIMIT_BYTES: usize = 16 * 1024 * 1024;
/// Each socket's read buffer (tungstenite's default is 128 KiB, allocated per socket up front).
/// Client messages here are well under 1 KB; a larger one is read in several chunks. This keeps
/// an idle connection at a few KB of the emulator's memory instead of ~140 KB.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// The most frames written to a socket before one flush (one write to the kernel) when posts
/// queue up for it faster than it drains.
const FRAMES_PER_FLUSH: usize = 32;
/// Close code: normal closure (`DELETE @connections`).
pub(crate) const CLOSE_NORMAL: u16 = 1000;
/// Close code: going away (idle timeout, connection time limit, shutdown).
pub(crate) const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: message too big.
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;
/// Close status reported to `$disconnect` when the peer's close frame had no code (1005, never
/// sent on the wire).
const CLOSE_NO_STATUS: u16 = 1005;
/// Close status reported to `$disconnect` when the socket went away without a close handshake
/// (1006, never sent on the wire).
const CLOSE_ABNORMAL: u16 = 1006;

/// Something to do on a connection's socket, sent by the Management API.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Send a text frame.
    Text(String),
    /// Close with this code and reason, then run `$disconnect`.
    Close(u16, &'static str),
}

/// What the Management API queued for one socket, in order. It allocates nothing until
/// something is queued: a tokio channel allocates a block of 32 slots when it is made, which
/// was about 1.3 KB of every idle connection's memory.
#[derive(Debug, Default)]
struct Outbox {
    queue: Mutex<Queue>,
    /// Woken at every push (a push with nobody waiting leaves a permit for the next wait).
    ready: Notify,
}

#[derive(Debug, Default)]
struct Queue {
    items: std::collections::VecDeque<Outbound>,
    /// The socket's task has ended: nothing more is taken.
    closed: bool,
}

impl Outbox {
    /// Queues `message`; false once the outbox is closed.
    fn push(&self, message: Outbound) -> bool {
        {
            let mut queue = crate::lock(&self.queue);
            if queue.closed {
                return false;
            }
            queue.items.push_back(message);
        }
        self.ready.notify_one();
        true
    }

    /// The oldest queued message, if any.
    fn try_pop(&self) -> Option<Outbound> {
        crate::lock(&self.queue).items.pop_front()
    }

    /// The oldest queued message, once there is one. Cancel-safe: a message is only taken by
    /// the call that returns it.
    async fn pop(&self) -> Outbound {
        loop {
            if let Some(message) = self.try_pop() {
                return message;
            }
            self.ready.notified().await;
        }
    }

    /// Takes nothing more and drops what is queued.
    fn close(&self) {
        let mut queue = crate::lock(&self.queue);
        queue.closed = true;
        queue.items.clear();
    }
}

/// An open connection, as the Management API sees it.
#[derive(Debug)]
pub(crate) struct LiveConnection {
    pub(crate) context: ConnectionContext,
    outbox: Outbox,
    last_active: Mutex<(Instant, DateTime<Utc>)>,
}

/// Closes the connection's outbox when dropped: when its socket's task ends, or when the
/// upgrade never ran it.
struct CloseOutbox(Arc<LiveConnection>);

impl Drop for CloseOutbox {
    fn drop(&mut self) {
        self.0.outbox.close();
    }
}

impl LiveConnection {
    fn new(context: ConnectionContext, now: DateTime<Utc>) -> Self {
        Self {
            context,
            outbox: Outbox::default(),
            last_active: Mutex::new((Instant::now(), now)),
        }
    }

    /// Queues `message` for the socket. Returns false when the socket's task has ended.
    pub(crate) fn send(&self, message: Outbound) -> bool {
        self.outbox.push(message)
    }

    /// Whether the socket's task still takes what is queued.
    pub(crate) fn is_open(&self) -> bool {
        !crate::lock(&self.outbox.queue).closed
    }

    /// When the client last sent a frame (or connected).
    pub(crate) fn last_active_at(&self) -> DateTime<Utc> {
        crate::lock(&self.last_active).1
    }

    fn idle_since(&self) -> Instant {
        crate::lock(&self.last_active).0
    }

    fn touch(&self) {
        *crate::lock(&self.last_active) = (Instant::now(), Utc::now());
    }
}

/// The open connections by id, and a count of connection tasks still running (their
/// `$disconnect` included), so shutdown can wait for them.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    open: Mutex<HashMap<String, Arc<LiveConnection>>>,
    tasks: AtomicUsize,
    all_done: Notify,
}

impl Connections {
    /// The open connection `id`, if any.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<LiveConnection>> {
        self.lock().get(id).cloned()
    }

    /// How many connections are open.
    pub(crate) fn open_count(&self) -> u64 {
        self.lock().len() as u64
    }

    /// Removes and returns the open connection `id` (it no longer accepts posts).
    pub(crate) fn remove(&self, id: &str) -> Option<Arc<LiveConnection>> {
        self.lock().remove(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LiveConnection>>> {
        crate::lock(&self.open)
    }

    /// Waits until every connection task has finished (after shutdown was signalled).
    pub(crate) async fn drained(&self) {
        loop {
            let notified = self.all_done.notified();
            if self.tasks.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Counts one connection task while alive.
struct TaskGuard(Arc<AppState>);

impl TaskGuard {
    fn new(state: Arc<AppState>) -> Self {
        state.connections.tasks.fetch_add(1, Ordering::SeqCst);
        Self(state)
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.connections.tasks.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.connections.all_done.notify_waiters();
        }
    }
}

fn status(code: u16) -> Response {
    StatusCode::from_u16(code)
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        .into_response()
}

/// The connection's context as API Gateway builds it from the upgrade request, before the
/// authorizer has run.
fn connection_context(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> ConnectionContext {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    ConnectionContext {
        connection_id: events::new_id(),
        connected_at: now,
        source_ip: peer.ip().to_string(),
        user_agent: text(header::USER_AGENT),
        domain_name: text(header::HOST).unwrap_or_else(|| state.domain_name.clone()),
        authorizer: None,
    }
}

/// Whether the upgrade request carries an identity source (the `token` query parameter, or a
/// token in the headers the authorizer reads): without one API Gateway answers 401 itself.
fn has_identity_source(request: &UpgradeRequest, headers: &HeaderMap) -> bool {
    let query_token = request
        .query
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.as_str());
    extract_token(query_token, |name| {
        headers.get(name).and_then(|v| v.to_str().ok())
    })
    .is_some()
}

/// The REQUEST authorizer step: runs the authorizer on the upgrade request and returns the
/// context API Gateway passes on to the routes (the policy's context plus `principalId` and
/// `integrationLatency`). Fails with the status the upgrade is refused with: 403 when the
/// policy does not allow every statement, 500 when the event cannot be built.
async fn authorize(
    state: &AppState,
    conn: &ConnectionContext,
    request: &UpgradeRequest,
    now: DateTime<Utc>,
) -> Result<Value, u16> {
    let started = std::time::Instant::now();
    let auth_request: ApiGatewayCustomAuthorizerRequestTypeRequest =
        serde_json::from_value(events::authorizer_request(conn, request, now)).map_err(|e| {
            tracing::error!(error = %e, "could not build the authorizer event");
            500_u16
        })?;
    let policy = rnd_handlers::authorizer::authorize(&state.verifier, &auth_request).await;
    state
        .metrics
        .invoked(crate::metrics::AUTHORIZER_FUNCTION, started.elapsed());
    let statements = &policy.policy_document.statement;
    let allowed = !statements.is_empty()
        && statements
            .iter()
            .all(|s| matches!(s.effect, IamPolicyEffect::Allow));
    if !allowed {
        return Err(403);
    }
    let mut authorizer = match policy.context {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    authorizer.insert(
        "principalId".into(),
        policy.principal_id.clone().unwrap_or_default().into(),
    );
    authorizer.insert(
        "integrationLatency".into(),
        u64::try_from(started.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .into(),
    );
    Ok(Value::Object(authorizer))
}

/// The `$connect` step: runs `$connect` for the authorized connection and returns the
/// subprotocol its response selects, if any. Fails with `$connect`'s status when it is not 200,
/// or 500 when the event cannot be built.
async fn connect(
    state: &AppState,
    conn: &ConnectionContext,
    request: &UpgradeRequest,
    now: DateTime<Utc>,
) -> Result<Option<String>, u16> {
    let event: ApiGatewayWebsocketProxyRequest =
        serde_json::from_value(events::connect_event(conn, request, now)).map_err(|e| {
            tracing::error!(error = %e, "could not build the $connect event");
            500_u16
        })?;
    let started = std::time::Instant::now();
    let response = rnd_handlers::connection::connect(&*state.store, &event, now).await;
    state.metrics.invoked("$connect", started.elapsed());
    let code = u16::try_from(response.status_code).unwrap_or(500);
    if code != 200 {
        return Err(code);
    }
    Ok(response
        .headers
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned))
}

/// The socket set-up once `$connect` accepted: registers the connection (posts reach it from
/// now on), applies the socket limits and the subprotocol, and switches protocols. The socket
/// is then served by [`serve_socket`]; a failed switch runs `$disconnect` instead.
fn open_socket(
    state: Arc<AppState>,
    conn: ConnectionContext,
    ws: WebSocketUpgrade,
    protocol: Option<String>,
    now: DateTime<Utc>,
) -> Response {
    let live = Arc::new(LiveConnection::new(conn, now));
    let outbox = CloseOutbox(Arc::clone(&live));
    state
        .connections
        .lock()
        .insert(live.context.connection_id.clone(), Arc::clone(&live));
    let guard = TaskGuard::new(Arc::clone(&state));
    let ws = ws
        .max_message_size(SOCKET_LIMIT_BYTES)
        .max_frame_size(SOCKET_LIMIT_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES);
    let (failed_state, failed_live) = (Arc::clone(&state), Arc::clone(&live));
    let mut response = ws
        .on_failed_upgrade(move |e| {
            tracing::warn!(error = %e, "WebSocket upgrade failed");
            failed_live.outbox.close();
            tokio::spawn(async move {
                failed_state
                    .connections
                    .remove(&failed_live.context.connection_id);
                run_disconnect(&failed_state, &failed_live, CLOSE_ABNORMAL, "").await;
            });
        })
        .on_upgrade(move |socket| async move {
            let (_guard, _outbox) = (guard, outbox);
            serve_socket(state, live, socket).await;
        });
    // As API Gateway does: `$connect`'s answer goes to the client as it is (axum would only
    // answer a protocol the client offered).
    if let Some(value) = protocol.and_then(|p| HeaderValue::from_str(&p).ok()) {
        response.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, value);
    }
    response
}

/// `GET /realtime`: the upgrade request. Answers 401 without a token, 403 when the authorizer
/// denies, `$connect`'s status when it is not 200, else switches protocols.
pub(crate) async fn upgrade(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let now = Utc::now();
    let request = UpgradeRequest {
        headers: headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        query,
    };
    let mut conn = connection_context(&state, peer, &headers, now);
    if !has_identity_source(&request, &headers) {
        return status(401);
    }
    conn.authorizer = match authorize(&state, &conn, &request, now).await {
        Ok(context) => Some(context),
        Err(code) => return status(code),
    };
    let protocol = match connect(&state, &conn, &request, now).await {
        Ok(protocol) => protocol,
        Err(code) => return status(code),
    };
    match ws {
        Ok(ws) => open_socket(state, conn, ws, protocol, now),
        Err(rejection) => {
            // Not a WebSocket request after all: undo $connect.
            let live = LiveConnection::new(conn, now);
            live.outbox.close();
            run_disconnect(&state, &live, CLOSE_ABNORMAL, "").await;
            rejection.into_response()
        }
    }
}

/// Serves one upgraded connection until it ends, then runs `$disconnect`.
async fn serve_socket(state: Arc<AppState>, live: Arc<LiveConnection>, mut socket: WebSocket) {
    // One socket for both directions, not split into halves: `select!` drops its branches'
    // futures before running the chosen handler, so a handler may send on the socket the
    // receive branch borrowed. Split halves share the socket through a lock taken at every
    // poll of either (a few percent of the stack's CPU under `make bench-knee`).
    // Built at the first message: an idle connection does not hold one (1.5 KB each).
    let mut events: Option<events::MessageEvents> = None;
    // The timers and the shutdown signal are registered once and kept across the loop: made
    // anew at every frame, each frame took the runtime's timer lock four times and the shutdown
    // signal's waiter lock twice, locks every connection shares.
    let mut shutdown = state.shutdown.clone();
    let stopping = async move {
        // Ends when the stack stops, or when it was dropped without `stop` (the sender went).
        let _ = shutdown.wait_for(|stopped| *stopped).await;
    };
    let idle = tokio::time::sleep_until(live.idle_since() + state.limits.idle_timeout);
    let hard_limit = tokio::time::sleep_until(Instant::now() + state.limits.max_connection);
    tokio::pin!(stopping, idle, hard_limit);
    let close = |code: u16, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    let (code, reason): (u16, String) = loop {
        tokio::select! {
            () = &mut stopping => {
                let _ = socket.send(close(CLOSE_GOING_AWAY, "Going away")).await;
                break (CLOSE_GOING_AWAY, "Going away".into());
            }
            frame = socket.recv() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t.as_str().to_owned(),
                    Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        live.touch();
                        continue;
                    }
                    Some(Ok(Message::Close(frame))) => {
                        break frame.map_or((CLOSE_NO_STATUS, String::new()), |f| (f.code, f.reason.as_str().to_owned()));
                    }
                    Some(Err(e)) => {
                        tracing::debug!(connection_id = %live.context.connection_id, error = %e, "socket error");
                        break (CLOSE_ABNORMAL, String::new());
                    }
                    None => break (CLOSE_ABNORMAL, String::new()),
                };
                live.touch();
                state.metrics.message_in(text.len());
                if text.len() > MAX_MESSAGE_BYTES {
                    let _ = socket.send(close(CLOSE_TOO_BIG, "Message too big")).await;
                    break (CLOSE_TOO_BIG, "Message too big".into());
                }
                if events.is_none() {
                    events = events::MessageEvents::new(&live.context)
                        .map_err(|e| tracing::error!(error = %e, "could not build the connection's message events"))
                        .ok();
                }
                let answer = match events.as_mut() {
                    Some(events) => route_message(&state, events, text).await,
                    None => None,
                };
                // What the route posted while it ran (a replay) went out before its response,
                // as API Gateway delivers a PostToConnection that returned before the
                // integration did.
                if let Some(out) = live.outbox.try_pop()
                    && let Err(end) = forward(&state, &mut socket, out, &live.outbox).await
                {
                    break end;
                }
                if let Some(answer) = answer {
                    state.metrics.message_out(answer.len());
                    if socket.send(Message::Text(answer.into())).await.is_err() {
                        break (CLOSE_ABNORMAL, String::new());
                    }
                }
            }
            out = live.outbox.pop() => {
                if let Err(end) = forward(&state, &mut socket, out, &live.outbox).await {
                    break end;
                }
            }
            () = &mut idle => {
                // Frames since the timer was set moved the deadline: wait for the new one.
                let deadline = live.idle_since() + state.limits.idle_timeout;
                if deadline <= Instant::now() {
                    let _ = socket.send(close(CLOSE_GOING_AWAY, "Going away")).await;
                    break (CLOSE_GOING_AWAY, "Going away".into());
                }
                idle.as_mut().reset(deadline);
            }
            () = &mut hard_limit => {
                let _ = socket.send(close(CLOSE_GOING_AWAY, "Going away")).await;
                break (CLOSE_GOING_AWAY, "Going away".into());
            }
        }
    };
    let _ = socket.close().await;
    state.connections.remove(&live.context.connection_id);
    run_disconnect(&state, &live, code, &reason).await;
}

/// Carries out the Management API requests queued for the socket, `first` and those right
/// behind it (up to [`FRAMES_PER_FLUSH`]): sends their text frames with one flush, or closes.
/// Returns the close code and reason when the connection ends.
async fn forward(
    state: &AppState,
    socket: &mut WebSocket,
    first: Outbound,
    queued: &Outbox,
) -> Result<(), (u16, String)> {
    let abnormal = |_| (CLOSE_ABNORMAL, String::new());
    let mut next = Some(first);
    let mut fed = 0;
    while let Some(out) = next.take() {
        match out {
            Outbound::Text(text) => {
                state.metrics.message_out(text.len());
                socket
                    .feed(Message::Text(text.into()))
                    .await
                    .map_err(abnormal)?;
                fed += 1;
                if fed < FRAMES_PER_FLUSH {
                    next = queued.try_pop();
                }
            }
            Outbound::Close(code, reason) => {
                // Sending the close frame flushes the frames fed before it.
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    })))
                    .await;
                return Err((code, reason.into()));
            }
        }
    }
    socket.flush().await.map_err(abnormal)
}

/// Runs the message route `body` selects and returns the route response's body, if any.
async fn route_message(
    state: &AppState,
    events: &mut events::MessageEvents,
    body: String,
) -> Option<String> {
    let route = state.template.select_route(&body);
    let now = Utc::now();
    let event = events.next(route, body, now);
    let started = std::time::Instant::now();
    let response = state.routes.handle(event, now).await;
    state.metrics.invoked(route, started.elapsed());
    match response.body? {
        Body::Text(text) => Some(text),
        Body::Binary(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Body::Empty => None,
        _ => None,
    }
}

/// Runs `$disconnect` for `live` with the close code and reason.
async fn run_disconnect(state: &AppState, live: &LiveConnection, code: u16, reason: &str) {
    let now = Utc::now();
    match serde_json::from_value::<ApiGatewayWebsocketProxyRequest>(events::disconnect_event(
        &live.context,
        code,
        reason,
        now,
    )) {
        Ok(event) => {
            let started = std::time::Instant::now();
            rnd_handlers::connection::disconnect(&*state.store, &event, now).await;
            state.metrics.invoked("$disconnect", started.elapsed());
        }
        Err(e) => tracing::error!(error = %e, "could not build the $disconnect event"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(outbound: Outbound) -> String {
        match outbound {
            Outbound::Text(text) => text,
            Outbound::Close(code, _) => panic!("a close ({code}) where a text was expected"),
        }
    }

    #[tokio::test]
    async fn an_outbox_hands_out_what_was_queued_in_order_and_wakes_a_waiting_socket() {
        // GIVEN an outbox with two messages queued
        let outbox = Arc::new(Outbox::default());
        assert!(outbox.push(Outbound::Text("first".into())));
        assert!(outbox.push(Outbound::Text("second".into())));
        // WHEN the socket takes them, THEN they come in order
        assert_eq!(text(outbox.pop().await), "first");
        assert_eq!(text(outbox.try_pop().expect("a second message")), "second");
        assert!(outbox.try_pop().is_none());
        // WHEN the socket waits on the empty outbox and a message is queued meanwhile
        let waiting = tokio::spawn({
            let outbox = Arc::clone(&outbox);
            async move { text(outbox.pop().await) }
        });
        tokio::task::yield_now().await;
        assert!(outbox.push(Outbound::Text("third".into())));
        // THEN the wait ends with it
        let woke = tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await;
        assert_eq!(woke.expect("woken in time").unwrap(), "third");
    }

    #[test]
    fn a_closed_outbox_takes_nothing_more_and_drops_what_was_queued() {
        // GIVEN an outbox with a message queued
        let outbox = Outbox::default();
        assert!(outbox.push(Outbound::Text("queued".into())));
        // WHEN it is closed (the socket's task ended)
        outbox.close();
        // THEN what was queued is gone and a new message is refused
        assert!(outbox.try_pop().is_none());
        assert!(!outbox.push(Outbound::Text("late".into())));
        assert!(crate::lock(&outbox.queue).closed);
    }
}
