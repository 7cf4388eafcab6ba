// RND Realtime demo page (local stack only). An ES module with no build step of its own and no
// network beyond this origin: the dev-only POST /dev/token, the HTTP API, and the WebSocket API
// through the SDK the apps use (@rnd/realtime-client, clients/js), whose bundle the stack serves.
//
// The SDK keeps the connection: reconnect with backoff and a fresh token, keep-alive, `resume`
// from the last inbox cursor and `subscribe:order` with `sinceSeq` on every (re)connect, order
// events once each and in order. It keeps its position in localStorage, and this page keeps the
// session (token, tracked order, the order as last seen) there too, so a reload resumes as an
// app coming back from the background does, and the page shows what was replayed and whether
// continuity held.
import { RealtimeClient } from '/sdk/realtime-client.js';

{
  const $ = (id) => document.getElementById(id);
  const STATUSES = ['pending', 'payment_confirmed', 'accepted', 'ready_for_pickup',
    'assigned_to_driver', 'picked_up', 'in_transit', 'delivered', 'cancelled'];
  const LABELS = {
    pending: 'Pending', payment_confirmed: 'Payment confirmed', accepted: 'Accepted',
    ready_for_pickup: 'Ready for pickup', assigned_to_driver: 'Assigned to driver',
    picked_up: 'Picked up', in_transit: 'In transit', delivered: 'Delivered', cancelled: 'Cancelled',
  };
  // What each role may do, and from which statuses (mirrors the domain's rules).
  const ACTIONS = {
    customer: [['cancel', 'Cancel', ['pending', 'payment_confirmed']]],
    chef: [['accept', 'Accept', ['payment_confirmed']], ['ready', 'Mark ready', ['accepted']],
      ['cancel', 'Cancel', ['pending', 'payment_confirmed', 'accepted']]],
    driver: [['pickup', 'Picked up', ['assigned_to_driver']], ['in-transit', 'In transit', ['picked_up']],
      ['deliver', 'Delivered', ['in_transit']]],
    admin: [['confirm-payment', 'Confirm payment', ['pending']], ['assign', 'Assign driver', ['ready_for_pickup']],
      ['cancel', 'Cancel', STATUSES.slice(0, 7)]],
  };

  const state = {
    token: null, role: null, sub: null, name: null,
    client: null, // the SDK's RealtimeClient while the app is in the foreground
    stopTracking: null, // what subscribeOrder returned for the tracked order
    orderId: null, tracking: null, history: [],
    seq: 0, // the newest seq of the tracked order shown (an HTTP refresh never goes back)
    baseline: 0, // the seq of the last snapshot applied: what it holds needs no event
    etaAt: null,
    shown: 0, pollTimer: null, // notifications shown, and the phone's polling
  };
  const REFRESH_ATTEMPTS = 5; // a tracking refresh overtaken by events asks again, this often

  // --- what survives a reload (the SDK keeps its cursor and seqs under its own key) -------
  const SAVED = 'rnd-demo-session';
  function save() {
    const { token, role, sub, name, orderId, tracking, history, seq } = state;
    localStorage.setItem(SAVED, JSON.stringify({ token, role, sub, name, orderId, tracking, history, seq }));
  }
  function saved() {
    try { return JSON.parse(localStorage.getItem(SAVED) || 'null'); } catch { return null; }
  }

  function log(text, isError) {
    const li = document.createElement('li');
    li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
    if (isError) li.className = 'err';
    const list = $('log');
    list.prepend(li);
    while (list.children.length > 60) list.lastChild.remove();
  }

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = null; }
    if (!res.ok) {
      const detail = (json && (json.detail || json.title)) || text || res.statusText;
      throw new Error(`${method} ${path}: ${res.status} ${detail}`);
    }
    return json;
  }

  const run = (fn) => async (event) => {
    if (event) event.preventDefault();
    try { await fn(event); } catch (e) { log(e.message, true); }
  };

  // --- identity --------------------------------------------------------------------------
  $('role').addEventListener('change', () => {
    const role = $('role').value;
    $('sub').value = `${role}-1`;
    $('name').value = { customer: 'Casey Customer', chef: 'Carla Chef', driver: 'Dana Driver', admin: 'Ada Admin' }[role];
  });

  $('who').addEventListener('submit', run(async () => {
    const role = $('role').value;
    const sub = $('sub').value.trim();
    const name = $('name').value.trim();
    const { token } = await api('POST', '/dev/token', { sub, role, name: name || undefined });
    const previous = saved();
    const same = previous && previous.sub === sub && previous.role === role;
    Object.assign(state, { token, role, sub, name });
    if (!same) {
      Object.assign(state, { orderId: null, tracking: null, history: [], seq: 0, baseline: 0 });
      $('tracking').hidden = true;
      $('order-id').value = '';
    }
    save();
    signedIn();
    await loadProfile();
    connect();
    renderActions();
    await registerPhone();
  }));

  // --- the phone: this browser's device, and what the FCM sink delivered to it --------------
  // A device token per user and browser, kept like an app keeps its FCM registration token.
  function deviceToken() {
    const key = `rnd-demo-device-${state.sub}`;
    let token = localStorage.getItem(key);
    if (!token) {
      token = `demo-${state.sub}-${Math.random().toString(36).slice(2)}:web`;
      localStorage.setItem(key, token);
    }
    return token;
  }

  async function registerPhone() {
    const device = await api('POST', '/devices', { token: deviceToken(), platform: 'web', locale: navigator.language || undefined });
    log(`phone registered for ${state.sub} (device ${device.deviceId})`);
    $('phone-card').hidden = false;
    state.shown = 0;
    $('notifications').replaceChildren();
    clearInterval(state.pollTimer);
    state.pollTimer = setInterval(() => pollPhone().catch(() => {}), 1000);
    await pollPhone();
  }

  async function pollPhone() {
    const res = await fetch(`/fcm/messages?token=${encodeURIComponent(deviceToken())}`);
    if (!res.ok) return;
    const messages = await res.json();
    const list = $('notifications');
    for (const m of messages.slice(state.shown)) {
      const li = document.createElement('li');
      li.dataset.event = (m.data && m.data.event) || '';
      const title = document.createElement('strong');
      title.textContent = m.title || '';
      const time = document.createElement('time');
      time.dateTime = m.receivedAt;
      time.textContent = new Date(m.receivedAt).toLocaleTimeString();
      li.append(title, m.body || '', ' ', time);
      list.prepend(li);
      log(`push: ${m.title}`);
    }
    state.shown = Math.max(state.shown, messages.length);
    list.dataset.count = String(state.shown);
  }

  $('background').addEventListener('click', () => {
    disconnect();
    setConn('In the background (no socket)', 'offline');
    const resumeNote = $('resume');
    resumeNote.textContent = '';
    delete resumeNote.dataset.continuity;
    delete resumeNote.dataset.replayed;
    $('background').hidden = true;
    $('foreground').hidden = false;
    log('app in the background: socket closed');
  });

  $('foreground').addEventListener('click', () => {
    $('background').hidden = false;
    $('foreground').hidden = true;
    connect();
  });

  function signedIn() {
    const { role, sub, name } = state;
    $('role').value = role;
    $('sub').value = sub;
    if (name) $('name').value = name;
    $('whoami').textContent = `Signed in as ${sub} (${role}).`;
    $('profile-card').hidden = role === 'admin';
    $('chef-fields').hidden = role !== 'chef';
    $('orders-card').hidden = false;
    $('new-order').hidden = role !== 'customer';
    $('p-name').value = name || sub;
    $('ops-card').hidden = role !== 'admin';
    watchStats(role === 'admin');
    log(`signed in as ${sub} (${role})`);
  }

  // Admins: connection analytics, refreshed while signed in as one.
  let statsTimer = null;
  function watchStats(on) {
    clearInterval(statsTimer);
    statsTimer = null;
    if (!on) return;
    refreshStats();
    statsTimer = setInterval(refreshStats, 5000);
  }

  const seconds = (ms) => (ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`);
  const windowText = (w) => `${w.connects} connects, ${w.disconnects} disconnects, ${w.expired} expired; ` +
    `sessions: ${w.sessionDuration.count}, mean ${seconds(w.sessionDuration.averageMs)}, ` +
    `p50 ${seconds(w.sessionDuration.p50Ms)}, p95 ${seconds(w.sessionDuration.p95Ms)}`;

  async function refreshStats() {
    try {
      const s = await api('GET', '/stats/connections');
      const now = s.connectedNow;
      $('stat-now').textContent = String(now.total);
      $('stat-now').dataset.total = String(now.total);
      $('stat-roles').dataset.admins = String(now.admin);
      $('stat-roles').textContent =
        `${now.customer} customers, ${now.chef} chefs, ${now.driver} drivers, ${now.admin} admins`;
      $('stat-hour').textContent = windowText(s.lastHour);
      $('stat-hour').dataset.connects = String(s.lastHour.connects);
      $('stat-day').textContent = windowText(s.lastDay);
      $('stat-peak').textContent = `${s.peakToday.connections} at ${new Date(s.peakToday.at).toLocaleTimeString()}`;
    } catch (e) {
      log(e.message, true);
    }
  }

  // Only the latest check's answer is shown: an earlier, slower answer must not overwrite it.
  let presenceChecks = 0;
  $('presence').addEventListener('submit', run(async () => {
    const check = ++presenceChecks;
    const user = $('presence-user').value.trim();
    const p = await api('GET', `/presence/${encodeURIComponent(user)}`);
    if (check !== presenceChecks) return;
    const out = $('presence-result');
    out.dataset.check = String(check);
    out.dataset.online = String(p.online);
    out.textContent = p.online
      ? `${p.userId} is online on ${p.connections} connection${p.connections === 1 ? '' : 's'} since ${new Date(p.since).toLocaleTimeString()}`
      : `${p.userId} is offline${p.lastSeenAt ? `, last seen ${new Date(p.lastSeenAt).toLocaleTimeString()}` : ', never seen'}`;
  }));

  async function loadProfile() {
    if (state.role !== 'admin') {
      try {
        const p = await api('GET', '/profiles/me');
        if (p) {
          $('p-name').value = p.name || $('p-name').value;
          if (p.phone) $('p-phone').value = p.phone;
          if (p.businessName) $('p-business').value = p.businessName;
          if (p.address) $('p-address').value = p.address;
          if (p.latitude != null) $('p-lat').value = p.latitude;
          if (p.longitude != null) $('p-lng').value = p.longitude;
          log('profile loaded');
        }
      } catch { log('no profile yet: save one'); }
    }
  }

  $('profile').addEventListener('submit', run(async () => {
    const body = { name: $('p-name').value.trim() };
    const phone = $('p-phone').value.trim();
    if (phone) body.phone = phone;
    if (state.role === 'chef') {
      body.businessName = $('p-business').value.trim();
      body.address = $('p-address').value.trim();
      body.latitude = Number($('p-lat').value);
      body.longitude = Number($('p-lng').value);
    }
    await api('PUT', '/profiles/me', body);
    log('profile saved');
  }));

  // --- orders ----------------------------------------------------------------------------
  $('new-order').addEventListener('submit', run(async () => {
    const order = await api('POST', '/orders', {
      chefId: $('o-chef').value.trim(),
      deliveryAddress: $('o-address').value.trim(),
      deliveryLatitude: Number($('o-lat').value),
      deliveryLongitude: Number($('o-lng').value),
      items: [{ name: $('o-item').value.trim() || 'Meal', quantity: Number($('o-qty').value) || 1 }],
    });
    log(`order ${order.orderNumber} placed`);
    await track(order.orderId);
  }));

  $('refresh').addEventListener('click', run(async () => {
    const page = await api('GET', '/orders?limit=20');
    const list = $('orders');
    list.replaceChildren();
    for (const o of page.orders) {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = `${o.orderNumber} · ${LABELS[o.status] || o.status}`;
      b.addEventListener('click', run(() => track(o.orderId)));
      li.append(b);
      list.append(li);
    }
    if (!page.orders.length) list.textContent = 'No orders.';
  }));

  $('track').addEventListener('click', run(() => track($('order-id').value.trim())));

  async function track(orderId) {
    if (!orderId) return;
    if (state.stopTracking) { state.stopTracking(); state.stopTracking = null; }
    Object.assign(state, { orderId, seq: 0, baseline: 0, tracking: null, history: [] });
    $('order-id').value = orderId;
    $('tracking').hidden = false;
    const snapshot = await api('GET', `/orders/${encodeURIComponent(orderId)}/tracking`);
    if (state.orderId !== orderId) return;
    applySnapshot(snapshot);
    save();
    if (state.client) state.stopTracking = state.client.subscribeOrder(orderId);
  }

  // Back after a reload: the saved session and the order as last seen, then a connection on
  // which the SDK resumes from the position it saved.
  function restore() {
    const s = saved();
    if (!s || !s.token) return;
    Object.assign(state, { token: s.token, role: s.role, sub: s.sub, name: s.name });
    signedIn();
    if (s.orderId && s.tracking) {
      state.orderId = s.orderId;
      $('order-id').value = s.orderId;
      $('tracking').hidden = false;
      applySnapshot({ ...s.tracking, seq: s.seq || s.tracking.seq || 0 });
      state.history = s.history || state.history;
      render();
    }
    log('session restored; resuming');
    connect();
    renderActions();
    registerPhone().catch((e) => log(e.message, true));
  }

  // --- the WebSocket, through the SDK ----------------------------------------------------
  const CONN = {
    connecting: ['Connecting…', 'connecting'], open: ['Live', 'open'],
    reconnecting: ['Reconnecting…', 'retrying'], closed: ['Not connected', 'offline'],
  };
  function setConn(text, s) { const el = $('conn'); el.textContent = text; el.dataset.state = s; }

  // The token for the next connection: the session's, or a new one from the dev-only endpoint
  // when it expires within a minute (the SDK asks before every connection, and after
  // `token_expired`).
  async function freshToken() {
    const payload = JSON.parse(atob(state.token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    if (typeof payload.exp === 'number' && payload.exp * 1000 - Date.now() < 60_000) {
      const { token } = await api('POST', '/dev/token', { sub: state.sub, role: state.role, name: state.name || undefined });
      state.token = token;
      save();
    }
    return state.token;
  }

  // A client per foreground visit; its position (cursor, seqs) is kept per user in localStorage.
  function connect() {
    disconnect();
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const client = new RealtimeClient({
      url: `${proto}://${location.host}/realtime`,
      getToken: freshToken,
      storage: localStorage,
      storageKey: `rnd-demo-realtime:${state.role}:${state.sub}`,
    });
    state.client = client;
    const on = (event, handler) => client.on(event, (data) => { if (state.client === client) handler(data); });
    setConn(...CONN.connecting);
    on('state', (s) => setConn(...CONN[s]));
    on('error', onError);
    on('resumed', onResumed);
    on('subscribed', onSubscribed);
    on('continuity_lost', onContinuityLost);
    for (const event of ['order:new', 'order:status_update', 'driver:new_assignment',
      'driver:location_update', 'order:eta_update']) {
      on(event, (data) => onOrderEvent(event, data));
    }
    if (state.orderId) state.stopTracking = client.subscribeOrder(state.orderId);
  }

  // The app goes to the background: the socket closes (the SDK keeps its position).
  function disconnect() {
    const client = state.client;
    state.client = null;
    state.stopTracking = null;
    if (client) client.close();
  }

  function onError({ code, message }) {
    log(`error: ${code} ${message}`, true);
    if (code === 'unauthorized') log('the stack refused the token: sign in again', true);
  }

  function showResume(text, continuity, replayed) {
    const el = $('resume');
    el.textContent = text;
    el.dataset.continuity = continuity;
    el.dataset.replayed = String(replayed);
  }

  function onResumed({ replayed, continuity }) {
    const text = continuity === 'ok'
      ? `Resumed: ${replayed} missed event(s) replayed, nothing lost.`
      : `Resumed: ${replayed} event(s) replayed, but some were lost; refreshed from the server.`;
    showResume(text, continuity, replayed);
    log(`resumed (${replayed} replayed, continuity ${continuity})`);
  }

  function onSubscribed(data) {
    if (data.orderId !== state.orderId) return;
    if (data.seq >= state.seq) applySnapshot(data.tracking);
    const caught = data.continuity ? `, ${data.replayed} replayed, continuity ${data.continuity}` : '';
    log(`subscribed (seq ${data.seq}${caught})`);
    save();
  }

  // What was missed cannot be replayed: the SDK says so, the page refetches what it shows.
  function onContinuityLost({ scope, orderId }) {
    log(`continuity lost (${scope}); refreshing from the server`);
    if (scope === 'order' ? orderId === state.orderId : state.orderId) refreshTracking();
  }

  // An order event, once and in order (the SDK drops duplicates and holds what comes early).
  function onOrderEvent(event, data) {
    const tag = data.replayed ? ', replayed' : '';
    if (data.orderId !== state.orderId) {
      if (event === 'order:new' || event === 'driver:new_assignment' || event === 'order:status_update') {
        log(`${event} ${data.orderNumber || data.orderId}${tag}`);
      }
      return;
    }
    const t = state.tracking;
    // The SDK delivers each event once, but a snapshot this page fetched over HTTP may be newer.
    if (!t || data.seq <= state.baseline) return;
    state.seq = Math.max(state.seq, data.seq || 0);
    switch (event) {
      case 'order:status_update':
        t.status = data.status;
        state.history.push({ status: data.status, timestamp: data.timestamp });
        if (data.status === 'delivered' || data.status === 'cancelled') state.etaAt = null;
        log(`status ${data.status} (seq ${data.seq}${tag})`);
        // Acceptance shows each party the other side's address, an assignment the driver:
        // fetch the tracking again for what this viewer may now see.
        if (data.status === 'accepted' || data.status === 'assigned_to_driver') refreshTracking();
        break;
      case 'driver:location_update':
        t.driverLatitude = data.latitude;
        t.driverLongitude = data.longitude;
        t.driverAssigned = true;
        log(`driver at ${data.latitude.toFixed(5)}, ${data.longitude.toFixed(5)} (seq ${data.seq})`);
        break;
      case 'order:eta_update':
        t.etaMinutes = data.etaMinutes;
        t.etaSource = data.etaSource;
        t.estimatedPickupTime = data.estimatedPickupTime;
        state.etaAt = Date.parse(data.estimatedDeliveryTime);
        log(`ETA ${data.etaMinutes} min, ${data.etaSource === 'route' ? 'along the route' : 'estimated'} (seq ${data.seq})`);
        break;
      default:
        return;
    }
    render();
    save();
  }

  // A snapshot read before events that reached the page ahead of it is older than what the
  // page shows; it is not applied, and the page asks again, a little later, until the snapshot
  // is at least as new (the order's next steps may be written while the first answer travels).
  async function refreshTracking() {
    const orderId = state.orderId;
    for (let attempt = 1; attempt <= REFRESH_ATTEMPTS; attempt += 1) {
      try {
        const t = await api('GET', `/orders/${encodeURIComponent(orderId)}/tracking`);
        if (state.orderId !== orderId) return;
        if ((t.seq || 0) >= state.seq) { applySnapshot(t); save(); return; }
      } catch (e) {
        log(`could not refresh the tracking: ${e.message}`);
        return;
      }
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
    log('could not refresh the tracking: the order kept changing');
  }

  function applySnapshot(t) {
    state.seq = Math.max(state.seq, t.seq || 0);
    state.baseline = t.seq || 0;
    state.tracking = { ...t };
    state.history = (t.statusHistory || []).map((h) => ({ status: h.status, timestamp: h.timestamp }));
    state.etaAt = t.estimatedDeliveryTime && !['delivered', 'cancelled'].includes(t.status)
      ? Date.parse(t.estimatedDeliveryTime) : null;
    render();
  }

  // --- rendering -------------------------------------------------------------------------
  function render() {
    const t = state.tracking;
    if (!t) return;
    $('order-number').textContent = t.orderNumber ? `· ${t.orderNumber}` : '';
    $('status').textContent = LABELS[t.status] || t.status;
    $('status').dataset.status = t.status;
    const ol = $('timeline');
    ol.replaceChildren();
    for (const h of state.history) {
      const li = document.createElement('li');
      li.dataset.status = h.status;
      li.append(LABELS[h.status] || h.status);
      const time = document.createElement('time');
      time.dateTime = h.timestamp;
      time.textContent = new Date(h.timestamp).toLocaleTimeString();
      li.append(time);
      ol.append(li);
    }
    renderMap(t);
    renderEta();
    renderActions();
  }

  function renderMap(t) {
    // A party sees only some points (the chef's before acceptance is the chef's and the
    // admins'; the delivery point likewise the customer's): draw what the payload has.
    const known = (lat, lng) => (lat != null && lng != null ? [lat, lng] : null);
    const chef = known(t.chefLatitude, t.chefLongitude);
    const customer = known(t.deliveryLatitude, t.deliveryLongitude);
    const driver = known(t.driverLatitude, t.driverLongitude);
    const pts = [chef, customer, driver].filter(Boolean);
    const show = (id, on) => $(id).setAttribute('visibility', on ? 'visible' : 'hidden');
    show('chef-pin', chef); show('customer-pin', customer);
    show('route', chef && customer); show('driver-marker', driver);
    if (pts.length === 0) return;
    const lats = pts.map((p) => p[0]);
    const lngs = pts.map((p) => p[1]);
    const [W, H, PAD] = [400, 300, 40];
    const minLat = Math.min(...lats); const maxLat = Math.max(...lats);
    const minLng = Math.min(...lngs); const maxLng = Math.max(...lngs);
    const spanLat = Math.max(maxLat - minLat, 1e-4);
    const spanLng = Math.max(maxLng - minLng, 1e-4);
    const scale = Math.min((W - 2 * PAD) / spanLng, (H - 2 * PAD) / spanLat);
    const ox = (W - spanLng * scale) / 2;
    const oy = (H - spanLat * scale) / 2;
    const project = ([lat, lng]) => [ox + (lng - minLng) * scale, oy + (maxLat - lat) * scale];
    const fmt = (n) => n.toFixed(2);
    const place = (id, point) => {
      const [x, y] = project(point);
      $(id).setAttribute('transform', `translate(${fmt(x)} ${fmt(y)})`);
      return [x, y];
    };
    const c = chef && place('chef-pin', chef);
    const d = customer && place('customer-pin', customer);
    if (c && d) {
      const route = $('route');
      route.setAttribute('x1', fmt(c[0])); route.setAttribute('y1', fmt(c[1]));
      route.setAttribute('x2', fmt(d[0])); route.setAttribute('y2', fmt(d[1]));
    }
    if (driver) {
      const [x, y] = project(driver);
      const marker = $('driver-marker');
      marker.setAttribute('cx', fmt(x));
      marker.setAttribute('cy', fmt(y));
    }
  }

  function renderEta() {
    const el = $('eta');
    const t = state.tracking;
    if (!t) return;
    const source = $('eta-source');
    const pickup = $('pickup');
    const live = state.etaAt && t.status !== 'delivered';
    // Where the ETA came from: a routing provider's route, or the offline estimate.
    source.textContent = live && t.etaSource ? (t.etaSource === 'route' ? 'along the route' : 'estimated') : '';
    if (live && t.etaSource) source.dataset.source = t.etaSource; else delete source.dataset.source;
    // While the driver heads to the chef: when they get there.
    const at = live && t.estimatedPickupTime ? Date.parse(t.estimatedPickupTime) : null;
    pickup.textContent = at ? `· at the chef ${new Date(at).toLocaleTimeString()}` : '';
    if (t.status === 'delivered') { el.textContent = 'Delivered'; return; }
    if (!state.etaAt) { el.textContent = '—'; return; }
    const left = Math.max(0, Math.round((state.etaAt - Date.now()) / 1000));
    const mm = Math.floor(left / 60);
    const ss = String(left % 60).padStart(2, '0');
    el.textContent = `${mm}:${ss} (${new Date(state.etaAt).toLocaleTimeString()})`;
    el.dataset.seconds = String(left);
  }
  setInterval(renderEta, 1000);

  function renderActions() {
    const box = $('actions');
    box.replaceChildren();
    const t = state.tracking;
    const actions = ACTIONS[state.role] || [];
    $('assign-wrap').hidden = state.role !== 'admin';
    for (const [path, label, from] of actions) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = label;
      b.dataset.action = path;
      b.disabled = !t || !from.includes(t.status);
      b.addEventListener('click', run(async () => {
        let body;
        if (path === 'assign') body = { driverId: $('assign-driver').value.trim() };
        if (path === 'cancel') body = { reason: 'cancelled from the demo page' };
        await api('POST', `/orders/${encodeURIComponent(state.orderId)}/${path}`, body);
        log(`${path} sent`);
      }));
      box.append(b);
    }
  }
  restore();
}
