// The client against a fake socket and a fake clock: what it sends, when it reconnects, what
// the app is told.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RealtimeClient } from '../../dist/index.js';
import { FakeClock, fakeWebSocket, settle } from '../support/fakes.mjs';

function setup(extra = {}) {
  const clock = new FakeClock();
  const WebSocket = fakeWebSocket();
  let tokens = 0;
  const seen = { state: [], error: [], continuity_lost: [], 'order:status_update': [], subscribed: [] };
  const client = new RealtimeClient({
    url: 'ws://stack/realtime',
    getToken: () => `token-${++tokens}`,
    WebSocket,
    timers: clock,
    random: () => 0.5,
    ...extra,
  });
  for (const event of Object.keys(seen)) client.on(event, (data) => seen[event].push(data));
  const socket = () => WebSocket.all.at(-1);
  /** Lets time pass until the client makes its next socket. */
  const nextSocket = async () => {
    const count = WebSocket.all.length;
    for (let waited = 0; WebSocket.all.length === count; waited += 50) {
      assert.ok(waited < 120_000, 'no new socket within 2 minutes');
      await clock.advance(50);
    }
    return socket();
  };
  return { clock, WebSocket, client, seen, socket, nextSocket, tokens: () => tokens };
}

const statusUpdate = (seq, previousStatusSeq, extra = {}) => ({
  orderId: 'o-1', orderNumber: 'RND-1', status: `s${seq}`, previousStatus: 'x',
  timestamp: '2026-01-31T00:00:00Z', seq, previousStatusSeq, ...extra,
});
const tracking = { orderId: 'o-1', seq: 1 };

test('it connects with a fresh token offered as the subprotocol, then resumes', async () => {
  // GIVEN a new client
  const { client, seen, socket, clock } = setup();
  await clock.advance(0);
  // THEN it is connecting with the token as `bearer.` next to rnd.v1
  assert.deepEqual(socket().protocols, ['rnd.v1', 'bearer.token-1']);
  assert.equal(client.state, 'connecting');
  // WHEN the socket opens THEN it is open and asks to resume (no cursor yet)
  socket().open();
  assert.equal(client.state, 'open');
  assert.deepEqual(seen.state, ['open']);
  assert.deepEqual(socket().sent, [{ action: 'resume' }]);
  client.close();
  assert.equal(client.state, 'closed');
  assert.deepEqual(socket().closed, { code: 1000, reason: 'closed by the app' });
});

test('a dropped connection comes back after a jittered backoff, with a new token, resuming from the last cursor and resubscribing from the last status', async () => {
  // GIVEN an open client tracking an order, which saw a status update through its user room
  const { client, seen, socket, clock, WebSocket } = setup();
  await clock.advance(0);
  socket().open();
  client.subscribeOrder('o-1');
  socket().receive('resumed', { cursor: 'c-8', replayed: 0, continuity: 'ok' });
  socket().receive('subscribed', { orderId: 'o-1', seq: 2, tracking });
  socket().receive('order:status_update', statusUpdate(4, 2, { cursor: 'c-9' }));
  assert.deepEqual(seen['order:status_update'].map((u) => u.seq), [4]);
  // WHEN the connection drops after a while
  await clock.advance(10_000);
  socket().drop();
  // THEN it is reconnecting, and waits half the first ceiling (random 0.5 of 500 ms)
  assert.equal(client.state, 'reconnecting');
  assert.deepEqual(clock.pending(), [250]);
  await clock.advance(249);
  assert.equal(WebSocket.all.length, 1);
  await clock.advance(1);
  assert.equal(WebSocket.all.length, 2);
  assert.deepEqual(socket().protocols, ['rnd.v1', 'bearer.token-2']);
  // WHEN it opens THEN it resumes from c-9 and resubscribes since seq 4
  socket().open();
  assert.deepEqual(socket().sent, [
    { action: 'resume', cursor: 'c-9' },
    { action: 'subscribe:order', orderId: 'o-1', sinceSeq: 4 },
  ]);
  // AND the replayed update is not delivered twice, a new one is
  socket().receive('order:status_update', statusUpdate(4, 2, { replayed: true }));
  socket().receive('order:status_update', statusUpdate(6, 4));
  socket().receive('subscribed', { orderId: 'o-1', seq: 6, tracking, continuity: 'ok', replayed: 1 });
  assert.deepEqual(seen['order:status_update'].map((u) => u.seq), [4, 6]);
  assert.deepEqual(seen.continuity_lost, []);
  client.close();
});

test('failed connections back off exponentially, and give up with an error after maxAttempts', async () => {
  // GIVEN a client whose connections all fail before opening (the platform tells no status)
  const { client, seen, socket, clock, WebSocket } = setup({ reconnect: { maxAttempts: 4 } });
  await clock.advance(0);
  const waits = [];
  for (let i = 0; i < 3; i++) {
    socket().drop();
    waits.push(...clock.pending());
    await clock.advance(clock.pending()[0]);
  }
  // THEN the waits are half of a doubling ceiling each
  assert.deepEqual(waits, [500, 1000, 2000]);
  // WHEN the fourth fails THEN the app gets connect_failed and the client stops
  socket().drop();
  assert.equal(client.state, 'closed');
  assert.equal(seen.error.at(-1).code, 'connect_failed');
  await clock.advance(60_000);
  assert.equal(WebSocket.all.length, 4);
  // AND a location sent meanwhile waits, and goes once the app reconnects (the network is back)
  const sent = client.sendLocation({ orderId: 'o-1', latitude: 1, longitude: 1 });
  client.reconnect();
  await clock.advance(0);
  socket().open();
  assert.equal(socket().sent.at(-1).action, 'driver:location');
  socket().receive('driver:location_acknowledged', { orderId: 'o-1', accepted: true, seq: 2 });
  assert.equal((await sent).accepted, true);
  client.close();
});

test('a refused upgrade (403 with a fresh token) is an error, not a reconnect loop', async () => {
  const { client, seen, socket, clock, WebSocket } = setup();
  await clock.advance(0);
  // WHEN the server refuses the upgrade
  socket().refuse(403);
  // THEN the app hears unauthorized with the status, the client is closed and never retries
  assert.deepEqual(seen.error, [{ code: 'unauthorized', status: 403, message: seen.error[0].message }]);
  assert.equal(client.state, 'closed');
  await clock.advance(600_000);
  assert.equal(WebSocket.all.length, 1);
  // WHEN the app, signed in again, asks to reconnect THEN a new connection with a new token opens
  client.reconnect();
  await clock.advance(0);
  assert.equal(WebSocket.all.length, 2);
  assert.deepEqual(socket().protocols, ['rnd.v1', 'bearer.token-2']);
  socket().open();
  assert.equal(client.state, 'open');
  client.close();
});

test('token_expired reconnects at once with a fresh token', async () => {
  const { client, seen, socket, clock, WebSocket } = setup();
  await clock.advance(0);
  socket().open();
  // WHEN, a while later, the server says the token expired
  await clock.advance(10_000);
  socket().receive('error', { code: 'token_expired', message: 'the token has expired' });
  // THEN the app hears it, and a new connection with the next token starts without waiting
  assert.equal(seen.error[0].code, 'token_expired');
  assert.deepEqual(clock.pending(), [0]);
  await clock.advance(0);
  assert.equal(WebSocket.all.length, 2);
  assert.deepEqual(socket().protocols, ['rnd.v1', 'bearer.token-2']);
  client.close();
});

test('it pings when idle, takes a connection without pong for dead, and reconnects before the 2-hour limit', async () => {
  const { client, socket, clock, WebSocket } = setup({ pingIntervalMs: 240_000, pongTimeoutMs: 10_000, maxConnectionMs: 6_900_000 });
  await clock.advance(0);
  socket().open();
  // WHEN 4 minutes pass without sending THEN a ping goes, and a pong keeps the connection
  await clock.advance(240_000);
  assert.deepEqual(socket().actions(), ['resume', 'ping']);
  socket().receive('pong', { serverTime: '2026-01-31T00:04:00Z' });
  await clock.advance(240_000);
  assert.deepEqual(socket().actions(), ['resume', 'ping', 'ping']);
  // WHEN no pong comes THEN the connection is given up and a new one is made
  await clock.advance(10_000);
  assert.equal(socket().closed?.code, 4000);
  await clock.advance(250);
  assert.equal(WebSocket.all.length, 2);
  socket().open();
  // WHEN the connection reaches 115 minutes, answering every ping THEN it is replaced at once
  const before = WebSocket.all.length;
  const current = socket();
  let answered = 0;
  for (let t = 0; t < 6_900_000; t += 1_000) {
    await clock.advance(1_000);
    const pings = current.actions().filter((a) => a === 'ping').length;
    for (; answered < pings; answered++) current.receive('pong', {});
  }
  assert.equal(WebSocket.all.length, before + 1);
  assert.equal(WebSocket.all[before - 1].closed?.reason, 'planned reconnect');
  socket().open();
  assert.equal(socket().sent[0].action, 'resume');
  client.close();
});

test('a missed status update is asked for again, and continuity lost is told', async () => {
  const { client, seen, socket, clock } = setup();
  await clock.advance(0);
  socket().open();
  client.subscribeOrder('o-1');
  socket().receive('subscribed', { orderId: 'o-1', seq: 2, tracking });
  // WHEN seq 6 arrives following seq 4, which never came
  socket().receive('order:status_update', statusUpdate(6, 4));
  // THEN it is held and the order resubscribed since seq 2
  assert.deepEqual(seen['order:status_update'], []);
  assert.deepEqual(socket().sent.at(-1), { action: 'subscribe:order', orderId: 'o-1', sinceSeq: 2 });
  // WHEN the server cannot replay it THEN the app hears continuity lost, then gets seq 6
  socket().receive('subscribed', { orderId: 'o-1', seq: 6, tracking, continuity: 'lost', replayed: 0 });
  assert.deepEqual(seen.continuity_lost, [{ scope: 'order', orderId: 'o-1' }]);
  assert.deepEqual(seen['order:status_update'].map((u) => u.seq), [6]);
  // AND an inbox that lost events is told too
  socket().receive('resumed', { cursor: 'c-1', replayed: 0, continuity: 'lost' });
  assert.deepEqual(seen.continuity_lost.at(-1), { scope: 'inbox' });
  client.close();
});

test('offline, sendLocation keeps only the latest position per order and sends it on reconnect', async () => {
  const { client, socket, clock } = setup();
  await clock.advance(0);
  // GIVEN no connection yet WHEN two positions of one order and one of another are sent
  const first = client.sendLocation({ orderId: 'o-1', latitude: 1, longitude: 1 });
  const second = client.sendLocation({ orderId: 'o-1', latitude: 2, longitude: 2 });
  const other = client.sendLocation({ orderId: 'o-2', latitude: 3, longitude: 3 });
  // THEN on connecting only the latest of each goes, asking for every acknowledgement
  socket().open();
  const locations = socket().sent.filter((m) => m.action === 'driver:location');
  assert.deepEqual(locations, [
    { action: 'driver:location', orderId: 'o-1', latitude: 2, longitude: 2, ack: 'all' },
    { action: 'driver:location', orderId: 'o-2', latitude: 3, longitude: 3, ack: 'all' },
  ]);
  // AND both promises of o-1 resolve with the acknowledgement of the latest
  const ack = { orderId: 'o-1', accepted: true, etaMinutes: 5, seq: 9 };
  socket().receive('driver:location_acknowledged', ack);
  socket().receive('driver:location_acknowledged', { orderId: 'o-2', accepted: true, seq: 3 });
  assert.deepEqual(await first, ack);
  assert.deepEqual(await second, ack);
  assert.equal((await other).seq, 3);
  client.close();
});

test('a location sent on a connection that dropped goes again; a refused one holds the next until retryAfterMs', async () => {
  const { client, socket, clock, nextSocket } = setup();
  await clock.advance(0);
  socket().open();
  const lost = client.sendLocation({ orderId: 'o-1', latitude: 1, longitude: 1 });
  // WHEN the connection drops before the answer and comes back
  socket().drop();
  (await nextSocket()).open();
  // THEN the location is sent again and its promise resolves with the new answer
  assert.equal(socket().sent.filter((m) => m.action === 'driver:location').length, 1);
  socket().receive('driver:location_acknowledged', { orderId: 'o-1', accepted: false, reason: 'rate_limited', retryAfterMs: 700 });
  assert.equal((await lost).retryAfterMs, 700);
  // WHEN the next position comes at once THEN it waits for retryAfterMs
  const next = client.sendLocation({ orderId: 'o-1', latitude: 2, longitude: 2 });
  assert.equal(socket().sent.filter((m) => m.action === 'driver:location').length, 1);
  await clock.advance(699);
  assert.equal(socket().sent.filter((m) => m.action === 'driver:location').length, 1);
  await clock.advance(1);
  assert.equal(socket().sent.filter((m) => m.action === 'driver:location').length, 2);
  socket().receive('driver:location_acknowledged', { orderId: 'o-1', accepted: true, seq: 5 });
  assert.equal((await next).accepted, true);
  // AND a position never answered rejects after ackTimeoutMs
  const unanswered = client.sendLocation({ orderId: 'o-1', latitude: 3, longitude: 3 });
  await clock.advance(10_000);
  await assert.rejects(unanswered, { code: 'ack_timeout' });
  // AND closing rejects what is still waiting
  client.close();
  await assert.rejects(client.sendLocation({ orderId: 'o-1', latitude: 4, longitude: 4 }), { code: 'closed' });
});

test('a rate_limited subscription is sent again after retryAfterMs', async () => {
  const { client, seen, socket, clock } = setup();
  await clock.advance(0);
  socket().open();
  client.subscribeOrder('o-1');
  // WHEN the server refuses it for the room-change limit
  socket().receive('error', { code: 'rate_limited', message: 'slow down', retryAfterMs: 1500 });
  // THEN the app hears it, and the subscription goes again once allowed, not before
  assert.equal(seen.error[0].retryAfterMs, 1500);
  const subscribes = () => socket().sent.filter((m) => m.action === 'subscribe:order').length;
  await clock.advance(1499);
  assert.equal(subscribes(), 1);
  await clock.advance(1);
  assert.equal(subscribes(), 2);
  client.close();
});

test('the cursor and the tracked orders survive a restart through storage', async () => {
  // GIVEN a storage holding what a previous run saw
  const items = new Map([['rnd-realtime', JSON.stringify({ cursor: 'c-7', orders: { 'o-1': 12 } })]]);
  const storage = { getItem: async (k) => items.get(k) ?? null, setItem: async (k, v) => void items.set(k, v) };
  const { client, socket, clock } = setup({ storage });
  // WHEN the app tracks the order again and the client connects
  client.subscribeOrder('o-1');
  await clock.advance(0);
  socket().open();
  // THEN it resumes from the stored cursor and resubscribes since the stored status
  assert.deepEqual(socket().sent, [
    { action: 'resume', cursor: 'c-7' },
    { action: 'subscribe:order', orderId: 'o-1', sinceSeq: 12 },
  ]);
  socket().receive('resumed', { cursor: 'c-7', replayed: 0, continuity: 'ok' });
  socket().receive('order:status_update', statusUpdate(14, 12, { cursor: 'c-8' }));
  await settle();
  assert.deepEqual(JSON.parse(items.get('rnd-realtime')), { cursor: 'c-8', orders: { 'o-1': 14 } });
  client.close();
});

test('a connection that drops while resuming resumes from the same cursor again', async () => {
  const { client, socket, clock, nextSocket } = setup();
  await clock.advance(0);
  socket().open();
  socket().receive('resumed', { cursor: 'c-1', replayed: 0, continuity: 'ok' });
  socket().receive('order:new', { orderId: 'o-5', orderNumber: 'RND-5', status: 'pending', customerName: 'C', items: [], createdAt: 't', seq: 1, cursor: 'c-2' });
  socket().drop();
  // GIVEN a resume from c-2 under way WHEN a live event (c-5) comes before the replay, then a drop
  (await nextSocket()).open();
  assert.deepEqual(socket().sent[0], { action: 'resume', cursor: 'c-2' });
  socket().receive('order:new', { orderId: 'o-6', orderNumber: 'RND-6', status: 'pending', customerName: 'C', items: [], createdAt: 't', seq: 1, cursor: 'c-5' });
  socket().drop();
  (await nextSocket()).open();
  // THEN the next resume starts from c-2 still: c-3 and c-4 were not replayed yet
  assert.deepEqual(socket().sent[0], { action: 'resume', cursor: 'c-2' });
  client.close();
});

test('a refused cursor is dropped: it resumes from now and tells that continuity was lost', async () => {
  // GIVEN a storage holding a cursor the server will not take (another user's, an old stack's)
  const items = new Map([['rnd-realtime', JSON.stringify({ cursor: 'not-yours' })]]);
  const storage = { getItem: async (k) => items.get(k) ?? null, setItem: async (k, v) => void items.set(k, v) };
  const { client, seen, socket, clock } = setup({ storage });
  await clock.advance(0);
  socket().open();
  assert.deepEqual(socket().sent, [{ action: 'resume', cursor: 'not-yours' }]);
  // WHEN the server refuses it
  socket().receive('error', { code: 'invalid_message', message: 'cursor is not valid' });
  // THEN the client resumes without a cursor, and the app hears it must refetch
  assert.deepEqual(socket().sent.at(-1), { action: 'resume' });
  assert.deepEqual(seen.continuity_lost, [{ scope: 'inbox' }]);
  // AND the position it is given next is the one kept (not the refused one)
  socket().receive('resumed', { cursor: 'c-1', replayed: 0, continuity: 'ok' });
  await settle();
  assert.equal(JSON.parse(items.get('rnd-realtime')).cursor, 'c-1');
  // AND an invalid_message once resumed is only an error
  socket().receive('error', { code: 'invalid_message', message: 'bad latitude' });
  assert.equal(seen.continuity_lost.length, 1);
  assert.equal(seen.error.length, 2);
  client.close();
});

test('a connection closed right after opening counts as a failure: the backoff grows, even after token_expired', async () => {
  // GIVEN a server that closes every connection at once, or says its (stale) token expired
  const { client, socket, clock } = setup();
  await clock.advance(0);
  const waits = [];
  for (let i = 0; i < 4; i++) {
    socket().open();
    if (i % 2) socket().receive('error', { code: 'token_expired', message: 'expired' });
    else socket().drop(1000);
    waits.push(clock.pending().at(-1));
    await clock.advance(clock.pending().at(-1));
  }
  // THEN the waits double (half of 1, 2, 4 then 8 s ceilings) instead of a tight loop
  assert.deepEqual(waits, [500, 1000, 2000, 4000]);
  // AND a connection that stays 10 s is stable again: the next drop waits the shortest backoff
  socket().open();
  await clock.advance(10_000);
  socket().drop();
  assert.deepEqual(clock.pending(), [250]);
  client.close();
});
