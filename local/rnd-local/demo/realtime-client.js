// @rnd/realtime-client 0.1.0, bundled from clients/js by scripts/bundle.mjs (npm run bundle): do not edit.

// dist/backoff.js
var DEFAULT_BACKOFF = { baseMs: 500, capMs: 3e4 };
function backoffDelay(attempt, options = {}, random = Math.random) {
  const baseMs = options.baseMs ?? DEFAULT_BACKOFF.baseMs;
  const capMs = options.capMs ?? DEFAULT_BACKOFF.capMs;
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(attempt, 0), 52));
  return Math.floor(random() * ceiling);
}

// dist/sequencer.js
var ORDER_EVENTS = [
  "order:new",
  "order:status_update",
  "driver:new_assignment",
  "driver:location_update",
  "order:eta_update"
];
var Sequencer = class {
  /** Last `seq` delivered per order and event kind. */
  last = /* @__PURE__ */ new Map();
  /** Tracked orders: the `seq` of the last status the app knows (snapshot or update). */
  statusSeq = /* @__PURE__ */ new Map();
  /** Tracked orders: status updates that came before one they follow. */
  held = /* @__PURE__ */ new Map();
  /** Tracked orders with a resubscription under way. */
  resyncing = /* @__PURE__ */ new Set();
  /** Track `orderId` (its status updates are delivered in order), from `statusSeq` if known. */
  track(orderId, statusSeq) {
    if (!this.statusSeq.has(orderId) || this.statusSeq.get(orderId) === void 0) {
      this.statusSeq.set(orderId, statusSeq);
    }
  }
  /** Stop tracking `orderId`; what was held is dropped. */
  untrack(orderId) {
    this.statusSeq.delete(orderId);
    this.held.delete(orderId);
    this.resyncing.delete(orderId);
  }
  /** The `seq` of the last status of `orderId` the app knows, if tracked and known. */
  statusSeqOf(orderId) {
    return this.statusSeq.get(orderId);
  }
  /** Every tracked order. */
  tracked() {
    return [...this.statusSeq.keys()];
  }
  /** An order event arrived. */
  accept(delivery) {
    const { orderId, seq } = delivery.data;
    if (seq <= this.lastOf(orderId, delivery.event)) {
      return { deliver: [] };
    }
    if (delivery.event !== "order:status_update" || !this.statusSeq.has(orderId)) {
      this.setLast(orderId, delivery.event, seq);
      return { deliver: [delivery] };
    }
    const known = this.statusSeq.get(orderId);
    const previous = delivery.data.previousStatusSeq;
    if (known === void 0 || previous === void 0 || previous <= known) {
      return { deliver: [delivery, ...this.applyStatus(orderId, delivery.data)] };
    }
    const held = this.held.get(orderId) ?? [];
    if (!held.some((h) => h.seq === seq)) {
      held.push(delivery.data);
      this.held.set(orderId, held);
    }
    if (this.resyncing.has(orderId)) {
      return { deliver: [] };
    }
    this.resyncing.add(orderId);
    return { deliver: [], resync: { orderId, sinceSeq: known } };
  }
  /** A resubscription of `orderId` is under way (its replay, then `subscribed`, will follow). */
  resyncStarted(orderId) {
    this.resyncing.add(orderId);
  }
  /**
   * The snapshot of `orderId` at `seq` arrived (`subscribed`): what was held is delivered in
   * `seq` order (what could be replayed was, before the snapshot), and nothing older than the
   * snapshot is delivered after it.
   */
  snapshot(orderId, seq) {
    this.resyncing.delete(orderId);
    const held = (this.held.get(orderId) ?? []).sort((a, b) => a.seq - b.seq);
    this.held.delete(orderId);
    const out = [];
    for (const data of held) {
      if (data.seq > this.lastOf(orderId, "order:status_update")) {
        out.push({ event: "order:status_update", data });
        this.setLast(orderId, "order:status_update", data.seq);
      }
    }
    if (this.statusSeq.has(orderId)) {
      const known = this.statusSeq.get(orderId) ?? 0;
      this.statusSeq.set(orderId, Math.max(known, seq, this.lastOf(orderId, "order:status_update")));
    }
    for (const kind of ["order:status_update", "driver:location_update", "order:eta_update"]) {
      this.setLast(orderId, kind, Math.max(seq, this.lastOf(orderId, kind)));
    }
    return out;
  }
  applyStatus(orderId, data) {
    this.setLast(orderId, "order:status_update", data.seq);
    this.statusSeq.set(orderId, data.seq);
    const out = [];
    const held = this.held.get(orderId);
    for (let progress = true; held && progress; ) {
      progress = false;
      held.sort((a, b) => a.seq - b.seq);
      for (let i = 0; i < held.length; i++) {
        const next = held[i];
        const known = this.statusSeq.get(orderId) ?? 0;
        if (next.seq <= known) {
          held.splice(i, 1);
          progress = true;
          break;
        }
        if (next.previousStatusSeq === void 0 || next.previousStatusSeq <= known) {
          held.splice(i, 1);
          out.push({ event: "order:status_update", data: next });
          this.setLast(orderId, "order:status_update", next.seq);
          this.statusSeq.set(orderId, next.seq);
          progress = true;
          break;
        }
      }
    }
    if (held && held.length === 0) {
      this.held.delete(orderId);
      this.resyncing.delete(orderId);
    }
    return out;
  }
  lastOf(orderId, event) {
    return this.last.get(`${orderId}\0${event}`) ?? -1;
  }
  setLast(orderId, event, seq) {
    this.last.set(`${orderId}\0${event}`, seq);
  }
};

// dist/client.js
var SUBPROTOCOL = "rnd.v1";
var STABLE_CONNECTION_MS = 1e4;
var defaultTimers = {
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle),
  now: () => Date.now()
};
function refusedStatus(error) {
  const message = error?.message ?? error?.error?.message;
  const match = typeof message === "string" ? /\b(401|403)\b/.exec(message) : null;
  return match ? Number(match[1]) : void 0;
}
var RealtimeClient = class {
  options;
  WS;
  timers;
  random;
  storageKey;
  handlers = /* @__PURE__ */ new Map();
  sequencer = new Sequencer();
  currentState = "connecting";
  socket;
  cursor;
  /** Between `resume` and `resumed`: the replay may arrive after newer live events, so only
   * `resumed` moves the cursor (a drop meanwhile resumes from the old one again). */
  resuming = false;
  /** Failures since the last stable connection: the backoff's exponent. */
  failures = 0;
  /** Connections in a row that never opened: `reconnect.maxAttempts` counts these. */
  unopened = 0;
  openedAt = 0;
  everOpened = false;
  reconnectAtOnce = false;
  closedByApp = false;
  /** Gave up (`unauthorized`, `connect_failed`) until the app calls `reconnect()`. */
  stopped = false;
  reconnectTimer;
  pingTimer;
  pongTimer;
  lifetimeTimer;
  roomTimer;
  roomChangesBlockedUntil = 0;
  /** Tracked orders whose `subscribed` has not come yet on this connection. */
  unanswered = /* @__PURE__ */ new Set();
  pendingLocations = /* @__PURE__ */ new Map();
  inFlight = /* @__PURE__ */ new Map();
  locationBlockedUntil = /* @__PURE__ */ new Map();
  locationTimers = /* @__PURE__ */ new Map();
  constructor(options) {
    const WS = options.WebSocket ?? globalThis.WebSocket;
    if (!WS) {
      throw new TypeError("no WebSocket: pass options.WebSocket (in Node, e.g. the `ws` package)");
    }
    this.options = options;
    this.WS = WS;
    this.timers = options.timers ?? defaultTimers;
    this.random = options.random ?? Math.random;
    this.storageKey = options.storageKey ?? "rnd-realtime";
    void Promise.resolve().then(() => this.start());
  }
  /** Where the connection is. */
  get state() {
    return this.currentState;
  }
  /** Calls `handler` with every `event`; returns a function that stops it. */
  on(event, handler) {
    const set = this.handlers.get(event) ?? /* @__PURE__ */ new Set();
    set.add(handler);
    this.handlers.set(event, set);
    return () => set.delete(handler);
  }
  /**
   * Tracks an order: its `subscribed` snapshot and its events, now and after every reconnect
   * (resubscribed with `sinceSeq`). Returns the function that stops tracking it.
   */
  subscribeOrder(orderId) {
    if (this.closedByApp) {
      throw new Error("the client is closed");
    }
    if (!this.sequencer.tracked().includes(orderId)) {
      this.sequencer.track(orderId, this.savedOrders[orderId] ?? void 0);
      this.save();
      this.sendSubscribe(orderId);
    }
    let done = false;
    return () => {
      if (done)
        return;
      done = true;
      this.sequencer.untrack(orderId);
      this.unanswered.delete(orderId);
      this.save();
      this.send({ action: "unsubscribe:order", orderId });
    };
  }
  /**
   * Sends the driver's position and resolves with its `driver:location_acknowledged`. While
   * offline (or told to wait with `retryAfterMs`) only the latest position per order is kept and
   * sent when possible; a position replaced by a newer one resolves with the newer one's
   * acknowledgement. Rejects after `ackTimeoutMs` without an answer, or when the client closes.
   */
  sendLocation(report) {
    if (this.closedByApp) {
      return Promise.reject(this.error("closed", "the client is closed"));
    }
    return new Promise((resolve, reject) => {
      const previous = this.pendingLocations.get(report.orderId);
      this.pendingLocations.set(report.orderId, {
        report,
        waiters: [...previous?.waiters ?? [], { resolve, reject }]
      });
      this.flushLocations();
    });
  }
  /**
   * Connects again now: after the client gave up (`unauthorized`, `connect_failed`: e.g. once
   * the user signed in again or the network is back), or in place of a connection the app knows
   * is stale. Tracked orders and unsent locations carry over.
   */
  reconnect() {
    if (this.closedByApp) {
      throw new Error("the client is closed");
    }
    if (this.stopped) {
      this.stopped = false;
      this.failures = 0;
      this.unopened = 0;
      void this.connect();
    } else if (this.socket) {
      this.reconnectAtOnce = true;
      this.abandon(this.socket, "reconnect");
    } else if (this.reconnectTimer !== void 0) {
      this.timers.clearTimeout(this.reconnectTimer);
      void this.connect();
    }
  }
  /** Closes the connection for good; pending `sendLocation`s reject. */
  close() {
    if (this.closedByApp)
      return;
    this.closedByApp = true;
    this.shutdown();
  }
  // --- connection ---------------------------------------------------------------------------
  savedOrders = {};
  /** Whether the storage was read: nothing is written over it before. */
  loaded = false;
  async start() {
    const storage = this.options.storage;
    if (storage) {
      try {
        const text = await storage.getItem(this.storageKey);
        const saved = text ? JSON.parse(text) : {};
        this.cursor = this.cursor ?? saved.cursor;
        this.savedOrders = saved.orders ?? {};
        for (const orderId of this.sequencer.tracked()) {
          this.sequencer.track(orderId, this.savedOrders[orderId] ?? void 0);
        }
      } catch {
      }
    }
    this.loaded = true;
    this.save();
    void this.connect();
  }
  async connect() {
    this.reconnectTimer = void 0;
    if (this.closedByApp || this.stopped)
      return;
    this.setState(this.everOpened ? "reconnecting" : "connecting");
    let token;
    try {
      token = await this.options.getToken();
    } catch (e) {
      this.emit("error", this.error("token_unavailable", `getToken failed: ${String(e)}`));
      this.failures++;
      this.scheduleReconnect();
      return;
    }
    if (this.closedByApp || this.stopped)
      return;
    let socket;
    try {
      socket = new this.WS(this.options.url, [SUBPROTOCOL, `bearer.${token}`]);
    } catch (e) {
      this.emit("error", this.error("connect_failed", `cannot open ${this.options.url}: ${String(e)}`));
      this.giveUp();
      return;
    }
    this.socket = socket;
    let opened = false;
    let lastError;
    socket.onopen = () => {
      opened = true;
      this.opened(socket);
    };
    socket.onmessage = (event) => this.received(socket, event.data);
    socket.onerror = (event) => {
      lastError = event;
    };
    socket.onclose = (event) => this.dropped(socket, opened, `${event.code} ${event.reason}`, lastError);
  }
  opened(socket) {
    if (socket !== this.socket)
      return;
    this.unopened = 0;
    this.openedAt = this.timers.now();
    this.everOpened = true;
    this.reconnectAtOnce = false;
    this.setState("open");
    this.lifetimeTimer = this.timers.setTimeout(() => {
      this.reconnectAtOnce = true;
      this.abandon(socket, "planned reconnect");
    }, this.options.maxConnectionMs ?? 115 * 6e4);
    this.resuming = true;
    this.send({ action: "resume", ...this.cursor ? { cursor: this.cursor } : {} });
    this.unanswered.clear();
    for (const orderId of this.sequencer.tracked()) {
      this.sendSubscribe(orderId);
    }
    this.flushLocations();
  }
  /** Gives up on `socket` now (a dead or retiring connection), without waiting for its close. */
  abandon(socket, reason) {
    socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
    try {
      socket.close(4e3, reason);
    } catch {
    }
    this.dropped(socket, true, reason, void 0);
  }
  dropped(socket, opened, why, error) {
    if (socket !== this.socket)
      return;
    this.socket = void 0;
    this.stopConnectionTimers();
    this.requeueInFlight();
    if (this.closedByApp)
      return;
    if (opened) {
      if (this.timers.now() - this.openedAt >= STABLE_CONNECTION_MS) {
        this.failures = 0;
      } else {
        this.failures++;
      }
    } else {
      this.failures++;
      this.unopened++;
      const status = refusedStatus(error);
      if (status !== void 0) {
        this.emit("error", {
          code: "unauthorized",
          status,
          message: `the server refused the connection (${status}) with a fresh token`
        });
        this.giveUp();
        return;
      }
      const maxAttempts = this.options.reconnect?.maxAttempts ?? 10;
      if (this.unopened >= maxAttempts) {
        this.emit("error", this.error("connect_failed", `${this.unopened} connections in a row failed (${why})`));
        this.giveUp();
        return;
      }
    }
    this.scheduleReconnect();
  }
  scheduleReconnect() {
    if (this.closedByApp || this.stopped || this.reconnectTimer !== void 0)
      return;
    this.setState(this.everOpened ? "reconnecting" : "connecting");
    const delay = this.reconnectAtOnce && this.failures === 0 ? 0 : backoffDelay(this.failures, this.options.reconnect, this.random);
    this.reconnectAtOnce = false;
    this.reconnectTimer = this.timers.setTimeout(() => void this.connect(), delay);
  }
  /** Closes for good: everything `giveUp` stops, and the pending locations reject. */
  shutdown() {
    this.closedByApp = true;
    this.giveUp("closed by the app");
    const closed = this.error("closed", "the client is closed");
    for (const pending of this.pendingLocations.values()) {
      for (const waiter of pending.waiters)
        waiter.reject(closed);
    }
    this.pendingLocations.clear();
  }
  /** Stops connecting until `reconnect()`: the timers, the socket; locations stay pending. */
  giveUp(reason = "gave up") {
    this.stopped = true;
    if (this.reconnectTimer !== void 0)
      this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = void 0;
    if (this.roomTimer !== void 0)
      this.timers.clearTimeout(this.roomTimer);
    for (const timer of this.locationTimers.values())
      this.timers.clearTimeout(timer);
    this.locationTimers.clear();
    this.stopConnectionTimers();
    const socket = this.socket;
    this.socket = void 0;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
      try {
        socket.close(1e3, reason);
      } catch {
      }
    }
    this.requeueInFlight();
    this.setState("closed");
  }
  stopConnectionTimers() {
    for (const timer of [this.pingTimer, this.pongTimer, this.lifetimeTimer]) {
      if (timer !== void 0)
        this.timers.clearTimeout(timer);
    }
    this.pingTimer = this.pongTimer = this.lifetimeTimer = void 0;
  }
  send(message) {
    const socket = this.socket;
    if (!socket || this.currentState !== "open")
      return false;
    try {
      socket.send(JSON.stringify(message));
    } catch {
      return false;
    }
    if (this.pingTimer !== void 0)
      this.timers.clearTimeout(this.pingTimer);
    this.pingTimer = this.timers.setTimeout(() => this.ping(socket), this.options.pingIntervalMs ?? 4 * 6e4);
    return true;
  }
  ping(socket) {
    this.pingTimer = void 0;
    if (socket !== this.socket)
      return;
    this.send({ action: "ping" });
    if (this.pongTimer === void 0) {
      this.pongTimer = this.timers.setTimeout(() => this.abandon(socket, "no pong"), this.options.pongTimeoutMs ?? 1e4);
    }
  }
  // --- what the server sends ----------------------------------------------------------------
  received(socket, raw) {
    if (socket !== this.socket || typeof raw !== "string")
      return;
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    if (!message || typeof message !== "object" || typeof message.event !== "string")
      return;
    switch (message.event) {
      case "pong":
        if (this.pongTimer !== void 0)
          this.timers.clearTimeout(this.pongTimer);
        this.pongTimer = void 0;
        break;
      case "resumed":
        this.resuming = false;
        this.setCursor(message.data.cursor);
        this.save();
        if (message.data.continuity === "lost")
          this.emit("continuity_lost", { scope: "inbox" });
        break;
      case "subscribed": {
        const { orderId } = message.data;
        if (!this.sequencer.tracked().includes(orderId))
          return;
        this.unanswered.delete(orderId);
        for (const delivery of this.sequencer.snapshot(orderId, message.data.seq)) {
          this.deliver(delivery);
        }
        this.save();
        if (message.data.continuity === "lost") {
          this.emit("continuity_lost", { scope: "order", orderId });
        }
        break;
      }
      case "driver:location_acknowledged":
        this.acknowledged(message.data);
        break;
      case "error":
        this.serverError(socket, message.data);
        return;
      default:
        if (ORDER_EVENTS.includes(message.event)) {
          this.orderEvent({ event: message.event, data: message.data });
          return;
        }
    }
    this.emit(message.event, message.data);
  }
  orderEvent(delivery) {
    const cursor = delivery.data.cursor;
    const accepted = this.sequencer.accept(delivery);
    for (const d of accepted.deliver)
      this.deliver(d);
    if (accepted.resync) {
      this.sendSubscribe(accepted.resync.orderId, accepted.resync.sinceSeq);
    }
    if (cursor && !this.resuming)
      this.setCursor(cursor);
    this.save();
  }
  deliver(delivery) {
    this.emit(delivery.event, delivery.data);
  }
  serverError(socket, data) {
    if (data.code === "token_expired") {
      this.reconnectAtOnce = true;
      this.abandon(socket, "token expired");
    } else if (data.code === "invalid_message" && this.resuming && this.cursor !== void 0) {
      this.cursor = void 0;
      this.save();
      this.send({ action: "resume" });
      this.emit("continuity_lost", { scope: "inbox" });
    } else if (data.code === "rate_limited" && data.retryAfterMs !== void 0) {
      this.roomChangesBlockedUntil = this.timers.now() + data.retryAfterMs;
      if (this.roomTimer !== void 0)
        this.timers.clearTimeout(this.roomTimer);
      this.roomTimer = this.timers.setTimeout(() => {
        this.roomTimer = void 0;
        for (const orderId of [...this.unanswered])
          this.sendSubscribe(orderId);
      }, data.retryAfterMs);
    }
    this.emit("error", { ...data });
  }
  sendSubscribe(orderId, sinceSeq = this.sequencer.statusSeqOf(orderId)) {
    this.unanswered.add(orderId);
    if (this.timers.now() < this.roomChangesBlockedUntil)
      return;
    if (sinceSeq !== void 0)
      this.sequencer.resyncStarted(orderId);
    this.send({
      action: "subscribe:order",
      orderId,
      ...sinceSeq !== void 0 ? { sinceSeq } : {}
    });
  }
  // --- locations ----------------------------------------------------------------------------
  flushLocations() {
    if (this.currentState !== "open")
      return;
    const now = this.timers.now();
    for (const [orderId, pending] of [...this.pendingLocations]) {
      if (this.inFlight.has(orderId))
        continue;
      const blockedUntil = this.locationBlockedUntil.get(orderId) ?? 0;
      if (now < blockedUntil) {
        if (!this.locationTimers.has(orderId)) {
          this.locationTimers.set(orderId, this.timers.setTimeout(() => {
            this.locationTimers.delete(orderId);
            this.flushLocations();
          }, blockedUntil - now));
        }
        continue;
      }
      this.pendingLocations.delete(orderId);
      const timer = this.timers.setTimeout(() => {
        const entry = this.inFlight.get(orderId);
        if (!entry || entry.timer !== timer)
          return;
        this.inFlight.delete(orderId);
        const timeout = this.error("ack_timeout", `no acknowledgement of the location of ${orderId}`);
        for (const waiter of entry.waiters)
          waiter.reject(timeout);
        this.flushLocations();
      }, this.options.ackTimeoutMs ?? 1e4);
      this.inFlight.set(orderId, { ...pending, timer });
      this.send({ action: "driver:location", ...pending.report, ack: "all" });
    }
  }
  acknowledged(ack) {
    const entry = this.inFlight.get(ack.orderId);
    if (!entry)
      return;
    this.timers.clearTimeout(entry.timer);
    this.inFlight.delete(ack.orderId);
    if (!ack.accepted && ack.retryAfterMs !== void 0) {
      this.locationBlockedUntil.set(ack.orderId, this.timers.now() + ack.retryAfterMs);
    }
    for (const waiter of entry.waiters)
      waiter.resolve(ack);
    this.flushLocations();
  }
  /** Locations sent on a connection that dropped before their answer go again, unless newer. */
  requeueInFlight() {
    for (const [orderId, entry] of this.inFlight) {
      this.timers.clearTimeout(entry.timer);
      const newer = this.pendingLocations.get(orderId);
      this.pendingLocations.set(orderId, {
        report: newer?.report ?? entry.report,
        waiters: [...entry.waiters, ...newer?.waiters ?? []]
      });
    }
    this.inFlight.clear();
  }
  // --- state, events, storage ---------------------------------------------------------------
  setState(state) {
    if (state === this.currentState)
      return;
    this.currentState = state;
    this.emit("state", state);
  }
  emit(event, data) {
    for (const handler of [...this.handlers.get(event) ?? []]) {
      try {
        handler(data);
      } catch (e) {
        globalThis.queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
  error(code, message) {
    return { code, message };
  }
  setCursor(cursor) {
    this.cursor = cursor;
  }
  save() {
    const storage = this.options.storage;
    if (!storage || !this.loaded)
      return;
    const orders = {};
    for (const orderId of this.sequencer.tracked()) {
      orders[orderId] = this.sequencer.statusSeqOf(orderId) ?? null;
    }
    const saved = { cursor: this.cursor, orders };
    this.savedOrders = orders;
    try {
      void Promise.resolve(storage.setItem(this.storageKey, JSON.stringify(saved))).catch(() => {
      });
    } catch {
    }
  }
};
export {
  DEFAULT_BACKOFF,
  RealtimeClient,
  STABLE_CONNECTION_MS,
  SUBPROTOCOL,
  Sequencer,
  backoffDelay
};
