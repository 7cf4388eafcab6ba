// The client against a real local stack (rnd-local, started by the test): an order tracked
// through its lifecycle across a killed connection and a restarted stack, an expired token, a
// refused token, and a driver's locations sent while offline. Run by scripts/sdk-test.sh, which
// builds rnd-local and sets RND_LOCAL_BIN.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { RealtimeClient } from '../../dist/index.js';
import { Stack, sign, sleep, until } from '../support/stack.mjs';

const stack = new Stack();
const clients = [];

/** The `ws` WebSocket, remembering every socket it made (the test kills them). */
function trackedWebSocket() {
  const sockets = [];
  class Tracked extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  return { Tracked, sockets };
}

/** A client of `sub` as `role`, recording what the app is told. */
function connect(sub, role, getToken = () => sign(sub, role, { name: sub }), { on = stack, ...options } = {}) {
  const { Tracked, sockets } = trackedWebSocket();
  const client = new RealtimeClient({
    url: on.ws,
    getToken,
    WebSocket: Tracked,
    reconnect: { baseMs: 100, capMs: 1000, maxAttempts: 200 },
    ...options,
  });
  clients.push(client);
  const seen = { state: [], error: [], status: [], subscribed: [], continuity_lost: [], resumed: [] };
  client.on('state', (s) => seen.state.push(s));
  client.on('error', (e) => seen.error.push(e));
  client.on('order:status_update', (u) => seen.status.push(u));
  client.on('subscribed', (s) => seen.subscribed.push(s));
  client.on('continuity_lost', (c) => seen.continuity_lost.push(c));
  client.on('resumed', (r) => seen.resumed.push(r));
  return { client, seen, sockets };
}

before(async () => {
  await stack.start();
});

after(async () => {
  for (const client of clients) client.close();
  await stack.stop();
});

/** A chef with a kitchen, a driver, and an order placed by `customer`; its id. */
async function anOrder(customer, on = stack) {
  const chef = sign('chef-1', 'chef');
  await on.http('PUT', '/profiles/me', chef, {
    name: 'Carla Chef', businessName: "Carla's Kitchen", address: '500 E 6th St, Austin, TX',
    latitude: 30.2672, longitude: -97.7431,
  });
  await on.http('PUT', '/profiles/me', sign('driver-1', 'driver'), { name: 'Dana Driver', phone: '+1 512 555 0199' });
  await on.http('PUT', '/profiles/me', sign(customer, 'customer'), { name: 'Casey Customer' });
  const order = await on.http('POST', '/orders', sign(customer, 'customer'), {
    chefId: 'chef-1', deliveryAddress: '1 Congress Ave, Austin, TX', deliveryLatitude: 30.2650,
    deliveryLongitude: -97.7450, items: [{ name: 'Tamales', quantity: 2 }],
  });
  return order.orderId;
}

const step = (orderId, token, action, body, on = stack) => on.http('POST', `/orders/${orderId}/${action}`, token, body);
const admin = () => sign('admin-1', 'admin');
const chef = () => sign('chef-1', 'chef');
const driver = () => sign('driver-1', 'driver');

test('an order is tracked through its lifecycle across a killed connection and a restarted stack, every status once and in order', { timeout: 120_000 }, async () => {
  // GIVEN a customer's app tracking their new order
  const orderId = await anOrder('customer-1');
  const { client, seen, sockets } = connect('customer-1', 'customer');
  client.subscribeOrder(orderId);
  await until(() => seen.subscribed.length === 1, 'subscribed');
  await step(orderId, admin(), 'confirm-payment');
  await step(orderId, chef(), 'accept');
  await until(() => seen.status.length >= 2, 'two status updates');

  // WHEN its connection is killed (no close frame) and the chef marks the order ready meanwhile
  sockets.at(-1).terminate();
  await step(orderId, chef(), 'ready');
  // THEN the client reconnects and the update arrives
  await until(() => seen.status.length >= 3, 'the update sent while the connection was down');
  assert.equal(client.state, 'open');

  // WHEN the stack crashes and comes back, and the order moves on before the client is back
  await stack.kill();
  await until(() => client.state === 'reconnecting', 'reconnecting');
  await stack.start();
  await step(orderId, admin(), 'assign', { driverId: 'driver-1' });
  await step(orderId, driver(), 'pickup');
  await until(() => seen.status.length >= 5, 'the updates made while the client was away');
  await step(orderId, driver(), 'in-transit');
  await step(orderId, driver(), 'deliver');
  await until(() => seen.status.length >= 7, 'every status update');
  await sleep(500);

  // THEN the app saw every status once, in order, with growing seq, and never lost continuity
  assert.deepEqual(seen.status.map((u) => u.status), [
    'payment_confirmed', 'accepted', 'ready_for_pickup', 'assigned_to_driver', 'picked_up', 'in_transit', 'delivered',
  ]);
  const seqs = seen.status.map((u) => u.seq);
  assert.deepEqual([...seqs].sort((a, b) => a - b), seqs);
  assert.equal(new Set(seqs).size, seqs.length);
  assert.deepEqual(seen.continuity_lost, []);
  assert.ok(sockets.length >= 3, `reconnected at least twice (${sockets.length} sockets)`);
  assert.deepEqual(seen.error, []);
  client.close();
  assert.equal(client.state, 'closed');
});

test('an expired token gets a fresh one and the connection resumes without losing an update', { timeout: 60_000 }, async () => {
  // GIVEN a customer's app whose first token expires in 2 s
  const orderId = await anOrder('customer-2');
  let calls = 0;
  const { client, seen, sockets } = connect('customer-2', 'customer', () =>
    sign('customer-2', 'customer', { ttlSecs: ++calls === 1 ? 2 : 3600 }),
  );
  client.subscribeOrder(orderId);
  await until(() => seen.subscribed.length === 1, 'subscribed');
  // WHEN the token has expired and an update comes
  await sleep(3000);
  await step(orderId, admin(), 'confirm-payment');
  // THEN the app hears token_expired, the client reconnects with a new token, and the update
  // arrives once
  await until(() => seen.status.length >= 1, 'the update after the expiry');
  assert.equal(seen.error.map((e) => e.code).join(), 'token_expired');
  assert.equal(calls, 2);
  assert.equal(sockets.length, 2);
  await step(orderId, chef(), 'accept');
  await until(() => seen.status.length >= 2, 'the next update');
  assert.deepEqual(seen.status.map((u) => u.status), ['payment_confirmed', 'accepted']);
  client.close();
});

test('a token the stack refuses is an error and one attempt, not a reconnect loop', { timeout: 30_000 }, async () => {
  // GIVEN a token signed with another secret
  const { client, seen, sockets } = connect('customer-3', 'customer', () =>
    sign('customer-3', 'customer', { secret: 'not-the-stack-secret' }),
  );
  // WHEN the client connects THEN the upgrade is refused with 403, and it stops
  await until(() => client.state === 'closed', 'closed');
  assert.deepEqual(seen.error.map((e) => [e.code, e.status]), [['unauthorized', 403]]);
  await sleep(1500);
  assert.equal(sockets.length, 1);
});

test("a driver's positions sent while offline: only the latest goes, on reconnect, and is accepted", { timeout: 60_000 }, async () => {
  // GIVEN an order in transit and its driver's app, connected
  const orderId = await anOrder('customer-4');
  for (const [token, action, body] of [
    [admin(), 'confirm-payment'], [chef(), 'accept'], [chef(), 'ready'],
    [admin(), 'assign', { driverId: 'driver-1' }], [driver(), 'pickup'], [driver(), 'in-transit'],
  ]) {
    await step(orderId, token, action, body);
  }
  // (its token waits while `offline` is set: the app is offline until the test says)
  let offline;
  const { client, sockets, seen } = connect('driver-1', 'driver', async () => {
    await offline;
    return sign('driver-1', 'driver');
  });
  const customer = connect('customer-4', 'customer');
  const locations = [];
  customer.client.on('driver:location_update', (l) => locations.push(l));
  customer.client.subscribeOrder(orderId);
  await until(() => customer.seen.subscribed.length === 1, 'the customer subscribed');
  await until(() => client.state === 'open', 'the driver connected');
  // WHEN the driver's connection is killed and two positions are sent before it is back
  let online;
  offline = new Promise((resolve) => { online = resolve; });
  sockets.at(-1).terminate();
  await until(() => seen.state.at(-1) === 'reconnecting', 'the driver offline');
  const first = client.sendLocation({ orderId, latitude: 30.2690, longitude: -97.7425 });
  const latest = client.sendLocation({ orderId, latitude: 30.2725, longitude: -97.7412, heading: 20 });
  await sleep(300);
  assert.equal(client.state, 'reconnecting');
  online();
  // THEN both resolve with the acknowledgement of the latest, accepted
  const [a, b] = await Promise.all([first, latest]);
  assert.equal(b.accepted, true, JSON.stringify(b));
  assert.deepEqual(a, b);
  // AND the customer sees only the latest position
  await until(() => locations.length === 1, 'the location update');
  await sleep(500);
  assert.deepEqual(locations.map((l) => [l.latitude, l.longitude]), [[30.2725, -97.7412]]);
  client.close();
  customer.client.close();
});

test("pings keep a connection inside the stack's idle timeout, and its connection limit costs no update", { timeout: 90_000 }, async () => {
  // GIVEN a stack that closes connections idle for 2 s and any connection after 5 s
  const short = new Stack(['--idle-timeout-secs', '2', '--max-connection-secs', '5']);
  try {
    await short.start();
    const orderId = await anOrder('customer-5', short);
    // AND a customer's app pinging every 0.5 s, and an admin's pinging only every minute
    const pinging = connect('customer-5', 'customer', undefined, { on: short, pingIntervalMs: 500 });
    const idle = connect('admin-5', 'admin', undefined, { on: short, pingIntervalMs: 60_000 });
    pinging.client.subscribeOrder(orderId);
    idle.client.subscribeOrder(orderId);
    await until(() => pinging.seen.subscribed.length === 1 && idle.seen.subscribed.length === 1, 'subscribed');
    // WHEN 3.5 s pass
    await sleep(3500);
    // THEN the pinging app kept its connection, the other was closed for idling and came back
    assert.equal(pinging.sockets.length, 1);
    assert.ok(idle.sockets.length >= 2, `the idle app reconnected (${idle.sockets.length} sockets)`);
    // WHEN the order moves on across the 5-second limit
    for (const [token, action] of [[admin(), 'confirm-payment'], [chef(), 'accept'], [chef(), 'ready']]) {
      await step(orderId, token, action, undefined, short);
      await sleep(1200);
    }
    await until(() => pinging.seen.status.length >= 3 && idle.seen.status.length >= 3, 'the three updates');
    await sleep(500);
    // THEN both apps reconnected and saw each update once, in order
    assert.ok(pinging.sockets.length >= 2, `the limit closed the pinging app's connection (${pinging.sockets.length})`);
    for (const { seen } of [pinging, idle]) {
      assert.deepEqual(seen.status.map((u) => u.status), ['payment_confirmed', 'accepted', 'ready_for_pickup']);
      assert.deepEqual(seen.continuity_lost, []);
    }
    pinging.client.close();
    idle.client.close();
  } finally {
    await short.stop();
  }
});

test('the example script, using only the package, tracks an order to delivery across a stack restart', { timeout: 90_000 }, async () => {
  // GIVEN an order and the example script tracking it
  const orderId = await anOrder('customer-6');
  const script = fileURLToPath(new URL('../../examples/track-order.mjs', import.meta.url));
  const child = spawn(process.execPath, [script, stack.base, orderId, 'customer-6'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    await until(() => lines.includes('now pending'), 'the script subscribed');
    await step(orderId, admin(), 'confirm-payment');
    await step(orderId, chef(), 'accept');
    await until(() => lines.filter((l) => l.startsWith('status ')).length >= 2, 'two updates');
    // WHEN the stack crashes and restarts, and the order moves on meanwhile
    await stack.kill();
    await sleep(300);
    await stack.start();
    for (const [token, action, body] of [
      [chef(), 'ready'], [admin(), 'assign', { driverId: 'driver-1' }], [driver(), 'pickup'],
      [driver(), 'in-transit'], [driver(), 'deliver'],
    ]) {
      await step(orderId, token, action, body);
    }
    // THEN the script printed every status once, in order, and exited by itself
    assert.equal(await Promise.race([exited, sleep(30_000).then(() => 'still running')]), 0);
    // (a resubscription prints its snapshot's status too: `now …`)
    assert.equal(lines[0], 'now pending');
    assert.deepEqual(lines.filter((l) => l.startsWith('status ')).map((l) => l.replace(/ \(seq \d+\)$/, '')), [
      'status payment_confirmed', 'status accepted', 'status ready_for_pickup',
      'status assigned_to_driver', 'status picked_up', 'status in_transit', 'status delivered',
    ]);
    assert.deepEqual(lines.filter((l) => !l.startsWith('status ') && !l.startsWith('now ')), []);
  } finally {
    child.kill();
  }
});
