// Browser test of rnd-local's demo page (`GET /`): headless Debian chromium driven by
// playwright-core (no browser download). Run it with scripts/browser-test.sh (or `make
// test-browser`), which installs chromium if missing, runs `npm ci` and builds rnd-local.
//
// Environment: RND_LOCAL_BIN (default target/debug/rnd-local), CHROMIUM (default
// /usr/bin/chromium), BROWSER_ARTIFACTS (default target/browser; screenshots go there).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
// The SDK's end-to-end tests' stack: `rnd-local serve` on a free port with its store in a fresh
// directory, so that a restart (same port) keeps everything.
import { Stack } from '../../clients/js/test/support/stack.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
process.env.RND_LOCAL_BIN ||= join(ROOT, 'target', 'debug', 'rnd-local');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = resolve(ROOT, process.env.BROWSER_ARTIFACTS || join('target', 'browser'));
const WAIT = 15_000;

let stack; // the rnd-local under test
let base; // http://127.0.0.1:PORT
let context; // a persistent context on a fresh --user-data-dir
let userDataDir;

const http = (method, path, token, body) => stack.http(method, path, token, body);
const devToken = async (sub, role, name) => (await http('POST', '/dev/token', null, { sub, role, name })).token;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The chef with a pickup location, saved through the HTTP API; returns its token. */
async function chefWithKitchen() {
  const chef = await devToken('chef-1', 'chef', 'Carla Chef');
  await http('PUT', '/profiles/me', chef, {
    name: 'Carla Chef', businessName: "Carla's Kitchen", address: '500 E 6th St, Austin, TX',
    latitude: 30.2672, longitude: -97.7431,
  });
  return chef;
}

/** On `page`: signs in as customer `sub`, saves a profile, places an order to chef-1 and waits
 * until it is tracked live; returns the order id. */
async function customerPlacesAnOrder(page, sub, name) {
  const who = page.getByRole('region', { name: 'Who are you?' });
  await who.getByLabel('Role').selectOption('customer');
  await who.getByLabel('User id').fill(sub);
  await who.getByLabel('Name').fill(name);
  await who.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#conn[data-state="open"]').waitFor({ timeout: WAIT });
  await page.locator('#p-name').fill(name);
  await page.getByRole('button', { name: 'Save profile' }).click();
  await page.locator('#log li', { hasText: 'profile saved' }).waitFor({ timeout: WAIT });
  await page.locator('#o-chef').fill('chef-1');
  await page.getByRole('button', { name: 'Place order' }).click();
  await page.locator('#status[data-status="pending"]').waitFor({ timeout: WAIT });
  await page.locator('#log li', { hasText: 'subscribed' }).first().waitFor({ timeout: WAIT });
  return page.locator('#order-id').inputValue();
}

/** A customer `sub` tracking a new order to chef-1 on a fresh page; with the chef's and an
 * admin's tokens, the order id and the page's errors as they come. */
async function customerTracksAnOrder(sub, name) {
  const chef = await chefWithKitchen();
  const admin = await devToken('admin-1', 'admin', 'Ada Admin');
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(base + '/');
  const orderId = await customerPlacesAnOrder(page, sub, name);
  return { chef, admin, page, pageErrors, orderId };
}

before(async () => {
  // Routed ETAs from the stack's built-in OSRM emulator (a synthetic street grid).
  stack = new Stack(['--eta-provider', 'osrm']);
  await stack.start();
  base = stack.base;
  userDataDir = mkdtempSync(join(tmpdir(), 'rnd-chromium-'));
  mkdirSync(ARTIFACTS, { recursive: true });
  // playwright passes the fresh profile directory as --user-data-dir.
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1100, height: 900 },
    timeout: 60_000,
  });
});

after(async () => {
  await context?.close().catch(() => {});
  await stack?.stop();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

test('the demo page tracks an order live: timeline, ETA and a moving driver', { timeout: 120_000 }, async () => {
  // GIVEN a chef with a pickup location and a driver, set up through the HTTP API
  const chef = await chefWithKitchen();
  const driver = await devToken('driver-1', 'driver', 'Dana Driver');
  const admin = await devToken('admin-1', 'admin', 'Ada Admin');
  await http('PUT', '/profiles/me', driver, { name: 'Dana Driver', phone: '+1 512 555 0199' });

  // AND the page, which must load nothing from anywhere but the stack
  const page = await context.newPage();
  const foreign = [];
  page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:')) foreign.push(r.url()); });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  const scripts = [];
  page.on('response', (r) => { if (r.request().resourceType() === 'script') scripts.push(new URL(r.url()).pathname); });
  await page.goto(base + '/');
  await page.getByRole('heading', { name: /RND Realtime/ }).waitFor();

  // WHEN a customer signs in, saves a profile and places an order
  const orderId = await customerPlacesAnOrder(page, 'customer-1', 'Casey Customer');
  assert.ok(orderId, 'the page shows the order id');
  // The customer may cancel now; the page offers exactly the customer's action.
  assert.equal(await page.locator('#actions button').count(), 1);
  assert.equal(await page.locator('#actions button[data-action="cancel"]').isEnabled(), true);

  // AND the order moves through its lifecycle through the HTTP API
  const step = (token, action, body) => http('POST', `/orders/${orderId}/${action}`, token, body);
  await step(admin, 'confirm-payment');
  await step(chef, 'accept');
  await step(chef, 'ready');
  await step(admin, 'assign', { driverId: 'driver-1' });
  await step(driver, 'pickup');
  await step(driver, 'in-transit');
  await page.locator('#status[data-status="in_transit"]').waitFor({ timeout: WAIT });
  // AND the customer, once the chef accepted, sees the chef's pickup point on the map (the
  // lowest point of the three, so a driver moving north moves up on the map)
  await page.locator('#chef-pin[visibility="visible"]').waitFor({ state: 'attached', timeout: WAIT });

  // AND the driver reports two positions over the WebSocket, 1.1 s apart
  const driverPage = await context.newPage();
  await driverPage.goto(base + '/demo.css'); // same origin, nothing runs
  await driverPage.evaluate(({ url, token }) => new Promise((ok, fail) => {
    const ws = new WebSocket(`${url}?token=${encodeURIComponent(token)}`);
    window.driverWs = ws;
    window.acks = [];
    ws.onmessage = (m) => { const e = JSON.parse(m.data); if (e.event === 'driver:location_acknowledged') window.acks.push(e.data); };
    ws.onopen = () => ok();
    ws.onerror = () => fail(new Error('driver WebSocket failed'));
  }), { url: base.replace(/^http/, 'ws') + '/realtime', token: driver });
  const report = (latitude, longitude, n) => driverPage.evaluate(async ({ orderId, latitude, longitude, n }) => {
    window.driverWs.send(JSON.stringify({ action: 'driver:location', orderId, latitude, longitude, heading: 10 }));
    const deadline = Date.now() + 10_000;
    while (window.acks.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    return window.acks[n - 1];
  }, { orderId, latitude, longitude, n });

  const first = await report(30.2690, -97.7425, 1);
  assert.equal(first?.accepted, true, `first location accepted: ${JSON.stringify(first)}`);
  const marker = page.locator('#driver-marker[visibility="visible"]');
  await marker.waitFor({ state: 'attached', timeout: WAIT });
  await page.locator('#eta[data-seconds]').waitFor({ state: 'attached', timeout: WAIT });
  const before = { cx: await marker.getAttribute('cx'), cy: await marker.getAttribute('cy') };
  const shotBefore = await page.locator('#map').screenshot({ path: join(ARTIFACTS, 'driver-before.png') });

  await sleep(1100);
  const second = await report(30.2725, -97.7412, 2);
  assert.equal(second?.accepted, true, `second location accepted: ${JSON.stringify(second)}`);
  await page.waitForFunction(
    (b) => { const m = document.getElementById('driver-marker'); return m.getAttribute('cx') !== b.cx || m.getAttribute('cy') !== b.cy; },
    before, { timeout: WAIT },
  );
  const afterPos = { cx: await marker.getAttribute('cx'), cy: await marker.getAttribute('cy') };
  const shotAfter = await page.locator('#map').screenshot({ path: join(ARTIFACTS, 'driver-after.png') });

  // THEN the driver marker moved, north-east (towards the customer): up and right on the map
  assert.notDeepEqual(afterPos, before);
  assert.ok(Number(afterPos.cy) < Number(before.cy), `moved north: ${JSON.stringify({ before, afterPos })}`);
  assert.ok(!shotBefore.equals(shotAfter), 'the before/after screenshots differ');

  // AND the ETA is shown as a countdown, along the route the stack's routing engine gave
  const eta = await page.locator('#eta').textContent();
  assert.match(eta, /^\d+:\d{2} /, `ETA shown: ${eta}`);
  await page.locator('#eta-source[data-source="route"]').waitFor({ timeout: WAIT });
  assert.equal(await page.locator('#eta-source').textContent(), 'along the route');
  const seconds = Number(await page.locator('#eta').getAttribute('data-seconds'));
  await page.waitForFunction(
    (s) => Number(document.getElementById('eta').dataset.seconds) < s, seconds, { timeout: WAIT },
  );

  // WHEN the driver delivers
  await step(driver, 'deliver');
  await page.locator('#status[data-status="delivered"]').waitFor({ timeout: WAIT });

  // THEN the timeline shows every status, in order
  const timeline = await page.locator('#timeline li').evaluateAll((lis) => lis.map((li) => li.dataset.status));
  assert.deepEqual(timeline, ['pending', 'payment_confirmed', 'accepted', 'ready_for_pickup',
    'assigned_to_driver', 'picked_up', 'in_transit', 'delivered']);
  await page.screenshot({ path: join(ARTIFACTS, 'delivered.png'), fullPage: true });
  assert.equal(await page.locator('#eta').textContent(), 'Delivered');

  // AND the page ran the SDK's bundle, whose sockets carry the token in the subprotocol, not the URL
  assert.deepEqual(scripts.sort(), ['/demo.js', '/sdk/realtime-client.js']);
  assert.ok(sockets.length >= 1);
  for (const url of sockets) assert.equal(url, base.replace(/^http/, 'ws') + '/realtime');

  // AND nothing left this origin, and the page threw nothing
  assert.deepEqual(foreign, []);
  assert.deepEqual(pageErrors, []);
  writeFileSync(join(ARTIFACTS, 'result.json'), JSON.stringify({ orderId, before, after: afterPos, eta, timeline }, null, 2));
  await driverPage.close();
  await page.close();
});

test("a tracking refresh overtaken by the order's next event is asked again: the customer sees the chef's pickup point", { timeout: 120_000 }, async () => {
  // GIVEN a customer tracking a paid order on the page, which does not show the chef's pickup
  // point yet (that is the chef's until acceptance)
  const { chef, admin, page, pageErrors, orderId } = await customerTracksAnOrder('customer-5', 'Alex Customer');
  await http('POST', `/orders/${orderId}/confirm-payment`, admin);
  await page.locator('#status[data-status="payment_confirmed"]').waitFor({ timeout: WAIT });
  assert.equal(await page.locator('#chef-pin').getAttribute('visibility'), 'hidden');

  // AND the page's next tracking request is read at once but answered only after the page has
  // heard a later event: the answer is older than what the page shows when it arrives
  let read;
  const readDone = new Promise((ok) => { read = ok; });
  let held = false;
  await page.route('**/orders/*/tracking', async (route) => {
    if (held) return route.continue();
    held = true;
    const response = await route.fetch();
    read();
    await page.locator('#status[data-status="ready_for_pickup"]').waitFor({ timeout: WAIT });
    await route.fulfill({ response });
  });

  // WHEN the chef accepts (the page refreshes the tracking for what the customer may now see)
  // and marks the order ready while that refresh is on its way
  await http('POST', `/orders/${orderId}/accept`, chef);
  await readDone;
  await http('POST', `/orders/${orderId}/ready`, chef);

  // THEN the page, finding the answer older than its events, asks again and shows the chef's
  // pickup point, with the order still ready for pickup
  await page.locator('#chef-pin[visibility="visible"]').waitFor({ state: 'attached', timeout: WAIT });
  assert.equal(await page.locator('#status').getAttribute('data-status'), 'ready_for_pickup');
  const timeline = await page.locator('#timeline li').evaluateAll((lis) => lis.map((li) => li.dataset.status));
  assert.deepEqual(timeline, ['pending', 'payment_confirmed', 'accepted', 'ready_for_pickup']);
  assert.deepEqual(pageErrors, []);
  await page.unroute('**/orders/*/tracking');
  await page.close();
});

test('the demo page resumes after a reload: what happened while it was away is replayed and shown', { timeout: 120_000 }, async () => {
  // GIVEN a chef with a pickup location, and a customer who placed an order on the page
  const tracking = await customerTracksAnOrder('customer-2', 'Robin Customer');
  const { chef, admin, pageErrors, orderId } = tracking;
  let { page } = tracking;
  await page.locator('#log li', { hasText: 'resumed' }).first().waitFor({ timeout: WAIT });

  // WHEN the page goes away (the app in the background) while the order is paid and accepted
  await page.close();
  const customer = await devToken('customer-2', 'customer', 'Robin Customer');
  const watcher = await context.newPage();
  await watcher.goto(base + '/demo.css');
  await watcher.evaluate(({ url, token }) => new Promise((ok, fail) => {
    const ws = new WebSocket(`${url}?token=${encodeURIComponent(token)}`);
    window.statuses = [];
    ws.onmessage = (m) => { const e = JSON.parse(m.data); if (e.event === 'order:status_update') window.statuses.push(e.data.status); };
    ws.onopen = () => ok();
    ws.onerror = () => fail(new Error('watcher WebSocket failed'));
  }), { url: base.replace(/^http/, 'ws') + '/realtime', token: customer });
  await http('POST', `/orders/${orderId}/confirm-payment`, admin);
  await http('POST', `/orders/${orderId}/accept`, chef);
  // (the customer's other device heard both: the fan-out has kept them in the inbox)
  await watcher.waitForFunction(() => window.statuses.includes('accepted'), null, { timeout: WAIT });
  await watcher.close();

  // AND the page is opened again
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(base + '/');

  // THEN it is still signed in, tracks the same order, and says it replayed the two missed
  // status updates with nothing lost
  await page.locator('#whoami', { hasText: 'customer-2' }).waitFor({ timeout: WAIT });
  const resumed = page.locator('#resume[data-continuity="ok"]');
  await resumed.waitFor({ timeout: WAIT });
  assert.equal(await resumed.getAttribute('data-replayed'), '2');
  assert.match(await resumed.textContent(), /2 missed event\(s\) replayed, nothing lost/);
  assert.equal(await page.locator('#order-id').inputValue(), orderId);
  await page.locator('#status[data-status="accepted"]').waitFor({ timeout: WAIT });
  await page.locator('#log li', { hasText: 'replayed' }).first().waitFor({ timeout: WAIT });
  const timeline = await page.locator('#timeline li').evaluateAll((lis) => lis.map((li) => li.dataset.status));
  assert.deepEqual(timeline, ['pending', 'payment_confirmed', 'accepted']);
  await page.screenshot({ path: join(ARTIFACTS, 'resumed.png'), fullPage: true });
  assert.deepEqual(pageErrors, []);
  await page.close();
});

test("the chef's phone shows a push for a new order while the app is in the background, and coming back replays it", { timeout: 120_000 }, async () => {
  // GIVEN a chef signed in on the page (which registers this browser as the chef's phone)
  await chefWithKitchen();
  const customer = await devToken('customer-3', 'customer', 'Sam Customer');
  await http('PUT', '/profiles/me', customer, { name: 'Sam Customer' });
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(base + '/');
  const who = page.getByRole('region', { name: 'Who are you?' });
  await who.getByLabel('Role').selectOption('chef');
  await who.getByLabel('User id').fill('chef-1');
  await who.getByLabel('Name').fill('Carla Chef');
  await who.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#conn[data-state="open"]').waitFor({ timeout: WAIT });
  await page.locator('#log li', { hasText: 'phone registered for chef-1' }).waitFor({ timeout: WAIT });
  await page.locator('#log li', { hasText: 'resumed' }).first().waitFor({ timeout: WAIT });

  // WHEN the app goes to the background (its socket closed) and a customer orders from the chef
  await page.getByRole('button', { name: 'App to background (close socket)' }).click();
  await page.locator('#conn[data-state="offline"]').waitFor({ timeout: WAIT });
  await http('POST', '/orders', customer, {
    chefId: 'chef-1', deliveryAddress: '2 Congress Ave, Austin, TX', deliveryLatitude: 30.2750,
    deliveryLongitude: -97.7400, items: [{ name: 'Tamales', quantity: 2 }],
  });

  // THEN the phone panel shows the push for the new order, with no socket open
  const push = page.locator('#notifications li[data-event="order:new"]');
  await push.first().waitFor({ timeout: WAIT });
  assert.match(await push.first().textContent(), /New order RND-\d{8}-\d{4}.*2 items for Sam Customer/);
  await page.screenshot({ path: join(ARTIFACTS, 'phone-push.png'), fullPage: true });

  // AND back in the app, the socket resumes and replays the order:new it missed
  await page.getByRole('button', { name: 'Back to app' }).click();
  const resumed = page.locator('#resume[data-continuity="ok"]');
  await resumed.waitFor({ timeout: WAIT });
  assert.equal(await resumed.getAttribute('data-replayed'), '1');
  assert.deepEqual(pageErrors, []);
  await page.close();
});

test("an admin sees the connection counters and whether a driver is online", { timeout: 120_000 }, async () => {
  // GIVEN an admin signed in on the page
  const admin = await context.newPage();
  const pageErrors = [];
  admin.on('pageerror', (e) => pageErrors.push(e.message));
  await admin.goto(base + '/');
  const who = admin.getByRole('region', { name: 'Who are you?' });
  await who.getByLabel('Role').selectOption('admin');
  await who.getByLabel('User id').fill('admin-7');
  await who.getByLabel('Name').fill('Dana Dispatch');
  await who.getByRole('button', { name: 'Sign in' }).click();
  await admin.locator('#conn[data-state="open"]').waitFor({ timeout: WAIT });
  const panel = admin.getByRole('region', { name: 'Connections (admins)' });

  // THEN the counters show the admin's own connection (refreshed every 5 s)
  await admin.waitForFunction(() => Number(document.getElementById('stat-roles').dataset.admins) >= 1, null, { timeout: WAIT });
  assert.match(await panel.locator('#stat-roles').textContent(), /[1-9]\d* admins/);
  const before = Number(await admin.locator('#stat-now').getAttribute('data-total'));

  // WHEN a driver signs in on another page and the admin asks about them
  const driver = await context.newPage();
  await driver.goto(base + '/');
  const driverWho = driver.getByRole('region', { name: 'Who are you?' });
  await driverWho.getByLabel('Role').selectOption('driver');
  await driverWho.getByLabel('User id').fill('driver-7');
  await driverWho.getByLabel('Name').fill('Dev Driver');
  await driverWho.getByRole('button', { name: 'Sign in' }).click();
  await driver.locator('#conn[data-state="open"]').waitFor({ timeout: WAIT });
  await panel.getByLabel('User id').fill('driver-7');
  await panel.getByRole('button', { name: 'Is this user online?' }).click();

  // THEN the driver is online on one connection, and the counters include them
  await admin.locator('#presence-result[data-online="true"]').waitFor({ timeout: WAIT });
  assert.match(await admin.locator('#presence-result').textContent(), /driver-7 is online on 1 connection since/);
  await admin.waitForFunction((n) => Number(document.getElementById('stat-now').dataset.total) > n, before, { timeout: WAIT });
  await admin.screenshot({ path: join(ARTIFACTS, 'admin-connections.png'), fullPage: true });

  // WHEN the driver's page closes, THEN the driver is offline with a last-seen time
  await driver.close();
  // (ask again until the answer says offline, each time waiting for that very answer)
  const result = admin.locator('#presence-result');
  for (const deadline = Date.now() + WAIT; ;) {
    const seen = Number(await result.getAttribute('data-check'));
    await admin.locator('#presence-check').click();
    await admin.waitForFunction((n) => Number(document.getElementById('presence-result').dataset.check) > n, seen, { timeout: WAIT });
    if ((await result.getAttribute('data-online')) === 'false') break;
    assert.ok(Date.now() < deadline, 'the driver still shows online');
    await admin.waitForTimeout(300);
  }
  assert.match(await result.textContent(), /driver-7 is offline, last seen/);
  assert.deepEqual(pageErrors, []);
  await admin.close();
});

test('the demo page tracks an order across a killed connection and a restarted stack: every status once and in order', { timeout: 180_000 }, async () => {
  // GIVEN a chef with a pickup location, and a customer tracking a fresh order on the page
  const driver = await devToken('driver-1', 'driver', 'Dana Driver');
  await http('PUT', '/profiles/me', driver, { name: 'Dana Driver', phone: '+1 512 555 0199' });
  const { chef, admin, page, pageErrors, orderId } = await customerTracksAnOrder('customer-4', 'Kim Customer');
  await http('POST', `/orders/${orderId}/confirm-payment`, admin);
  await page.locator('#status[data-status="payment_confirmed"]').waitFor({ timeout: WAIT });

  // WHEN the stack crashes (every connection killed) and comes back on the same port
  await stack.kill();
  await page.locator('#conn[data-state="retrying"]').waitFor({ timeout: WAIT });
  await stack.start();
  // AND the order moves on at once, whether or not the page is back yet
  await http('POST', `/orders/${orderId}/accept`, chef);
  await http('POST', `/orders/${orderId}/ready`, chef);

  // THEN the page reconnects by itself (the SDK's backoff) and shows where the order is
  await page.locator('#conn[data-state="open"]').waitFor({ timeout: 60_000 });
  await page.locator('#status[data-status="ready_for_pickup"]').waitFor({ timeout: WAIT });
  // AND the rest of the lifecycle arrives live, each step once the page shows the one before.
  // (An assignment makes the page fetch the tracking again; a snapshot answered after the
  // driver's next steps brings them, and their events are then not applied again: so the
  // driver starts once a snapshot of the assignment has reached the page.)
  const assignedSnapshot = page.waitForResponse(async (response) =>
    response.url().endsWith(`/orders/${orderId}/tracking`)
      && (await response.json()).status === 'assigned_to_driver', { timeout: WAIT });
  await http('POST', `/orders/${orderId}/assign`, admin, { driverId: 'driver-1' });
  await assignedSnapshot;
  for (const [action, status] of [['pickup', 'picked_up'], ['in-transit', 'in_transit'],
    ['deliver', 'delivered']]) {
    await http('POST', `/orders/${orderId}/${action}`, driver);
    await page.locator(`#status[data-status="${status}"]`).waitFor({ timeout: WAIT });
  }
  const timeline = await page.locator('#timeline li').evaluateAll((lis) => lis.map((li) => li.dataset.status));
  assert.deepEqual(timeline, ['pending', 'payment_confirmed', 'accepted', 'ready_for_pickup',
    'assigned_to_driver', 'picked_up', 'in_transit', 'delivered']);
  // AND no status reached the page twice or out of order
  const shown = await page.locator('#log li').evaluateAll((lis) => lis
    .map((li) => /status (\w+) \(seq/.exec(li.textContent)?.[1]).filter(Boolean).reverse());
  // (missed ones replayed on the new connection, the others live; a status an HTTP refresh of
  // the page had already brought is not applied again; the driver's steps came as events)
  assert.deepEqual(shown.slice(-3), ['picked_up', 'in_transit', 'delivered'],
    `statuses applied as events: ${shown}`);
  assert.equal(new Set(shown).size, shown.length, `each status once: ${shown}`);
  for (let i = 1; i < shown.length; i++) {
    assert.ok(timeline.indexOf(shown[i - 1]) < timeline.indexOf(shown[i]), `in order: ${shown}`);
  }
  await page.screenshot({ path: join(ARTIFACTS, 'restarted.png'), fullPage: true });
  assert.deepEqual(pageErrors, []);
  await page.close();
});
