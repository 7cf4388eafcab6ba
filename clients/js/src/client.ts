import { type BackoffOptions, backoffDelay } from './backoff.js';
import type {
  DriverLocationAction,
  ErrorCode,
  LocationAckData,
  ServerMessage,
} from './protocol.js';
import { type Delivery, ORDER_EVENTS, type OrderEventName, Sequencer } from './sequencer.js';

/** The WebSocket subprotocol the server speaks. */
export const SUBPROTOCOL = 'rnd.v1';

/** Where the connection is. */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** The part of the WebSocket API the client uses: the browser's, React Native's, or `ws`'s. */
export interface WebSocketLike {
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Where the client keeps its position across restarts (`localStorage`, AsyncStorage, …). */
export interface RealtimeStorage {
  getItem(key: string): string | null | Promise<string | null>;
  setItem(key: string, value: string): void | Promise<void>;
}

/** Timers, injectable for tests. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

/** Codes of the errors the client itself raises, next to the server's `ErrorCode`s. */
export type ClientErrorCode =
  /** The upgrade was refused (401/403) with a fresh token: the client stops. */
  | 'unauthorized'
  /** `reconnect.maxAttempts` connections in a row failed before opening: the client stops. */
  | 'connect_failed'
  /** `getToken` failed (the client retries with backoff). */
  | 'token_unavailable'
  /** No `driver:location_acknowledged` within `ackTimeoutMs`. */
  | 'ack_timeout'
  /** The client was closed. */
  | 'closed';

/** An `error` event: the server's (`code` is an `ErrorCode`) or the client's own. */
export interface RealtimeError {
  code: ErrorCode | ClientErrorCode;
  message: string;
  /** With `rate_limited`: send again after this long. */
  retryAfterMs?: number;
  /** With `unauthorized`: the HTTP status of the refused upgrade, when the platform tells it. */
  status?: number;
}

/** Continuity was lost: what was missed cannot be replayed, refetch over HTTP. */
export interface ContinuityLost {
  /** `inbox`: the user's own events (`GET /orders`); `order`: one order (its tracking). */
  scope: 'inbox' | 'order';
  orderId?: string;
}

type ServerEvents = { [M in ServerMessage as M['event']]: M['data'] };

/** Every event `client.on` takes, with what its handler gets. */
export type RealtimeEvents = Omit<ServerEvents, 'error'> & {
  state: ConnectionState;
  error: RealtimeError;
  continuity_lost: ContinuityLost;
};

/** A connection that lived this long was not a failure (a shorter one was: the backoff grows, so
 * a server that closes at once, or a `getToken` that returns a stale token, is no tight loop). */
export const STABLE_CONNECTION_MS = 10_000;

/** A driver's position for `sendLocation`: `driver:location` without `action` and `ack`. */
export type LocationReport = Omit<DriverLocationAction, 'action' | 'ack'>;

export interface RealtimeClientOptions {
  /** The WebSocket URL, e.g. `ws://127.0.0.1:9001/realtime` or `wss://…/prod`. */
  url: string;
  /** A valid token; called before every connection (and so after `token_expired`). */
  getToken: () => string | Promise<string>;
  /** Keeps the last cursor and the tracked orders' positions across restarts. */
  storage?: RealtimeStorage;
  /** The storage key (default `rnd-realtime`). */
  storageKey?: string;
  /** The WebSocket implementation (default: the global `WebSocket`; in Node pass `ws`). */
  WebSocket?: WebSocketConstructor;
  /** Reconnect backoff, and how many connections in a row may fail before it gives up
   * (`maxAttempts`, default 10). */
  reconnect?: BackoffOptions & { maxAttempts?: number };
  /** A `ping` after this long without sending (default 4 minutes; the server closes after 10). */
  pingIntervalMs?: number;
  /** The connection is taken for dead when a `pong` takes longer (default 10 s). */
  pongTimeoutMs?: number;
  /** A planned reconnect after this long (default 115 minutes; the server's limit is 2 hours). */
  maxConnectionMs?: number;
  /** `sendLocation` rejects after this long without an acknowledgement (default 10 s). */
  ackTimeoutMs?: number;
  timers?: Timers;
  random?: () => number;
}

interface Waiter {
  resolve(ack: LocationAckData): void;
  reject(error: RealtimeError): void;
}

interface PendingLocation {
  report: LocationReport;
  waiters: Waiter[];
}

interface Saved {
  cursor?: string;
  orders?: Record<string, number | null>;
}

const defaultTimers: Timers = {
  setTimeout: (callback, ms) =>
    (globalThis as unknown as { setTimeout: (c: () => void, ms: number) => unknown }).setTimeout(
      callback,
      ms,
    ),
  clearTimeout: (handle) =>
    (globalThis as unknown as { clearTimeout: (h: unknown) => void }).clearTimeout(handle),
  now: () => Date.now(),
};

/** The HTTP status of a refused upgrade, when the platform's error says it. */
function refusedStatus(error: unknown): number | undefined {
  const message =
    (error as { message?: unknown } | undefined)?.message ??
    (error as { error?: { message?: unknown } } | undefined)?.error?.message;
  const match = typeof message === 'string' ? /\b(401|403)\b/.exec(message) : null;
  return match ? Number(match[1]) : undefined;
}

/**
 * A connection to RND Realtime that stays up: it reconnects with full-jitter backoff and a fresh
 * token, pings inside the idle timeout, reconnects before the 2-hour limit, resumes the user's
 * inbox from the last `cursor` and resubscribes tracked orders with `sinceSeq`, delivers order
 * events in order without duplicates, says when continuity was lost, and keeps the latest
 * location per order while offline.
 */
export class RealtimeClient {
  private readonly options: RealtimeClientOptions;
  private readonly WS: WebSocketConstructor;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly storageKey: string;
  private readonly handlers = new Map<string, Set<(data: never) => void>>();
  private readonly sequencer = new Sequencer();
  private currentState: ConnectionState = 'connecting';
  private socket: WebSocketLike | undefined;
  private cursor: string | undefined;
  /** Between `resume` and `resumed`: the replay may arrive after newer live events, so only
   * `resumed` moves the cursor (a drop meanwhile resumes from the old one again). */
  private resuming = false;
  /** Failures since the last stable connection: the backoff's exponent. */
  private failures = 0;
  /** Connections in a row that never opened: `reconnect.maxAttempts` counts these. */
  private unopened = 0;
  private openedAt = 0;
  private everOpened = false;
  private reconnectAtOnce = false;
  private closedByApp = false;
  /** Gave up (`unauthorized`, `connect_failed`) until the app calls `reconnect()`. */
  private stopped = false;
  private reconnectTimer: unknown;
  private pingTimer: unknown;
  private pongTimer: unknown;
  private lifetimeTimer: unknown;
  private roomTimer: unknown;
  private roomChangesBlockedUntil = 0;
  /** Tracked orders whose `subscribed` has not come yet on this connection. */
  private readonly unanswered = new Set<string>();
  private readonly pendingLocations = new Map<string, PendingLocation>();
  private readonly inFlight = new Map<string, PendingLocation & { timer: unknown }>();
  private readonly locationBlockedUntil = new Map<string, number>();
  private readonly locationTimers = new Map<string, unknown>();

  constructor(options: RealtimeClientOptions) {
    const WS =
      options.WebSocket ??
      (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) {
      throw new TypeError('no WebSocket: pass options.WebSocket (in Node, e.g. the `ws` package)');
    }
    this.options = options;
    this.WS = WS;
    this.timers = options.timers ?? defaultTimers;
    this.random = options.random ?? Math.random;
    this.storageKey = options.storageKey ?? 'rnd-realtime';
    // Connect once the caller has had a chance to add its handlers.
    void Promise.resolve().then(() => this.start());
  }

  /** Where the connection is. */
  get state(): ConnectionState {
    return this.currentState;
  }

  /** Calls `handler` with every `event`; returns a function that stops it. */
  on<E extends keyof RealtimeEvents>(
    event: E,
    handler: (data: RealtimeEvents[E]) => void,
  ): () => void {
    const set = this.handlers.get(event) ?? new Set();
    set.add(handler as (data: never) => void);
    this.handlers.set(event, set);
    return () => set.delete(handler as (data: never) => void);
  }

  /**
   * Tracks an order: its `subscribed` snapshot and its events, now and after every reconnect
   * (resubscribed with `sinceSeq`). Returns the function that stops tracking it.
   */
  subscribeOrder(orderId: string): () => void {
    if (this.closedByApp) {
      throw new Error('the client is closed');
    }
    if (!this.sequencer.tracked().includes(orderId)) {
      this.sequencer.track(orderId, this.savedOrders[orderId] ?? undefined);
      this.save();
      this.sendSubscribe(orderId);
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.sequencer.untrack(orderId);
      this.unanswered.delete(orderId);
      this.save();
      this.send({ action: 'unsubscribe:order', orderId });
    };
  }

  /**
   * Sends the driver's position and resolves with its `driver:location_acknowledged`. While
   * offline (or told to wait with `retryAfterMs`) only the latest position per order is kept and
   * sent when possible; a position replaced by a newer one resolves with the newer one's
   * acknowledgement. Rejects after `ackTimeoutMs` without an answer, or when the client closes.
   */
  sendLocation(report: LocationReport): Promise<LocationAckData> {
    if (this.closedByApp) {
      return Promise.reject(this.error('closed', 'the client is closed'));
    }
    return new Promise((resolve, reject) => {
      const previous = this.pendingLocations.get(report.orderId);
      this.pendingLocations.set(report.orderId, {
        report,
        waiters: [...(previous?.waiters ?? []), { resolve, reject }],
      });
      this.flushLocations();
    });
  }

  /**
   * Connects again now: after the client gave up (`unauthorized`, `connect_failed`: e.g. once
   * the user signed in again or the network is back), or in place of a connection the app knows
   * is stale. Tracked orders and unsent locations carry over.
   */
  reconnect(): void {
    if (this.closedByApp) {
      throw new Error('the client is closed');
    }
    if (this.stopped) {
      this.stopped = false;
      this.failures = 0;
      this.unopened = 0;
      void this.connect();
    } else if (this.socket) {
      this.reconnectAtOnce = true;
      this.abandon(this.socket, 'reconnect');
    } else if (this.reconnectTimer !== undefined) {
      this.timers.clearTimeout(this.reconnectTimer);
      void this.connect();
    }
  }

  /** Closes the connection for good; pending `sendLocation`s reject. */
  close(): void {
    if (this.closedByApp) return;
    this.closedByApp = true;
    this.shutdown();
  }

  // --- connection ---------------------------------------------------------------------------

  private savedOrders: Record<string, number | null> = {};
  /** Whether the storage was read: nothing is written over it before. */
  private loaded = false;

  private async start(): Promise<void> {
    const storage = this.options.storage;
    if (storage) {
      try {
        const text = await storage.getItem(this.storageKey);
        const saved: Saved = text ? JSON.parse(text) : {};
        this.cursor = this.cursor ?? saved.cursor;
        this.savedOrders = saved.orders ?? {};
        for (const orderId of this.sequencer.tracked()) {
          this.sequencer.track(orderId, this.savedOrders[orderId] ?? undefined);
        }
      } catch {
        // An unreadable position is no position: resume replays what the inbox kept.
      }
    }
    this.loaded = true;
    this.save();
    void this.connect();
  }

  private async connect(): Promise<void> {
    this.reconnectTimer = undefined;
    if (this.closedByApp || this.stopped) return;
    this.setState(this.everOpened ? 'reconnecting' : 'connecting');
    let token: string;
    try {
      token = await this.options.getToken();
    } catch (e) {
      this.emit('error', this.error('token_unavailable', `getToken failed: ${String(e)}`));
      this.failures++;
      this.scheduleReconnect();
      return;
    }
    if (this.closedByApp || this.stopped) return;
    let socket: WebSocketLike;
    try {
      socket = new this.WS(this.options.url, [SUBPROTOCOL, `bearer.${token}`]);
    } catch (e) {
      this.emit('error', this.error('connect_failed', `cannot open ${this.options.url}: ${String(e)}`));
      this.giveUp();
      return;
    }
    this.socket = socket;
    let opened = false;
    let lastError: unknown;
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

  private opened(socket: WebSocketLike): void {
    if (socket !== this.socket) return;
    this.unopened = 0;
    this.openedAt = this.timers.now();
    this.everOpened = true;
    this.reconnectAtOnce = false;
    this.setState('open');
    this.lifetimeTimer = this.timers.setTimeout(() => {
      // Before API Gateway's 2-hour limit: a new connection, which resumes where this one was.
      this.reconnectAtOnce = true;
      this.abandon(socket, 'planned reconnect');
    }, this.options.maxConnectionMs ?? 115 * 60_000);
    this.resuming = true;
    this.send({ action: 'resume', ...(this.cursor ? { cursor: this.cursor } : {}) });
    this.unanswered.clear();
    for (const orderId of this.sequencer.tracked()) {
      this.sendSubscribe(orderId);
    }
    this.flushLocations();
  }

  /** Gives up on `socket` now (a dead or retiring connection), without waiting for its close. */
  private abandon(socket: WebSocketLike, reason: string): void {
    socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
    try {
      socket.close(4000, reason);
    } catch {
      // Already closed.
    }
    this.dropped(socket, true, reason, undefined);
  }

  private dropped(socket: WebSocketLike, opened: boolean, why: string, error: unknown): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    this.stopConnectionTimers();
    this.requeueInFlight();
    if (this.closedByApp) return;
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
      if (status !== undefined) {
        this.emit('error', {
          code: 'unauthorized',
          status,
          message: `the server refused the connection (${status}) with a fresh token`,
        });
        this.giveUp();
        return;
      }
      const maxAttempts = this.options.reconnect?.maxAttempts ?? 10;
      if (this.unopened >= maxAttempts) {
        this.emit('error', this.error('connect_failed', `${this.unopened} connections in a row failed (${why})`));
        this.giveUp();
        return;
      }
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closedByApp || this.stopped || this.reconnectTimer !== undefined) return;
    this.setState(this.everOpened ? 'reconnecting' : 'connecting');
    // At once for a planned reconnect or an expired token, unless the last connection was short.
    const delay =
      this.reconnectAtOnce && this.failures === 0
        ? 0
        : backoffDelay(this.failures, this.options.reconnect, this.random);
    this.reconnectAtOnce = false;
    this.reconnectTimer = this.timers.setTimeout(() => void this.connect(), delay);
  }

  /** Closes for good: everything `giveUp` stops, and the pending locations reject. */
  private shutdown(): void {
    this.closedByApp = true;
    this.giveUp('closed by the app');
    const closed = this.error('closed', 'the client is closed');
    for (const pending of this.pendingLocations.values()) {
      for (const waiter of pending.waiters) waiter.reject(closed);
    }
    this.pendingLocations.clear();
  }

  /** Stops connecting until `reconnect()`: the timers, the socket; locations stay pending. */
  private giveUp(reason = 'gave up'): void {
    this.stopped = true;
    if (this.reconnectTimer !== undefined) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    if (this.roomTimer !== undefined) this.timers.clearTimeout(this.roomTimer);
    for (const timer of this.locationTimers.values()) this.timers.clearTimeout(timer);
    this.locationTimers.clear();
    this.stopConnectionTimers();
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
      try {
        socket.close(1000, reason);
      } catch {
        // Already closed.
      }
    }
    this.requeueInFlight();
    this.setState('closed');
  }

  private stopConnectionTimers(): void {
    for (const timer of [this.pingTimer, this.pongTimer, this.lifetimeTimer]) {
      if (timer !== undefined) this.timers.clearTimeout(timer);
    }
    this.pingTimer = this.pongTimer = this.lifetimeTimer = undefined;
  }

  private send(message: Record<string, unknown>): boolean {
    const socket = this.socket;
    if (!socket || this.currentState !== 'open') return false;
    try {
      socket.send(JSON.stringify(message));
    } catch {
      // A socket closing under us: its close event reconnects, and what matters is sent again.
      return false;
    }
    // Keep-alive: a ping once nothing was sent for pingIntervalMs.
    if (this.pingTimer !== undefined) this.timers.clearTimeout(this.pingTimer);
    this.pingTimer = this.timers.setTimeout(() => this.ping(socket), this.options.pingIntervalMs ?? 4 * 60_000);
    return true;
  }

  private ping(socket: WebSocketLike): void {
    this.pingTimer = undefined;
    if (socket !== this.socket) return;
    this.send({ action: 'ping' });
    if (this.pongTimer === undefined) {
      this.pongTimer = this.timers.setTimeout(
        () => this.abandon(socket, 'no pong'),
        this.options.pongTimeoutMs ?? 10_000,
      );
    }
  }

  // --- what the server sends ----------------------------------------------------------------

  private received(socket: WebSocketLike, raw: unknown): void {
    if (socket !== this.socket || typeof raw !== 'string') return;
    let message: ServerMessage;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    if (!message || typeof message !== 'object' || typeof message.event !== 'string') return;
    switch (message.event) {
      case 'pong':
        if (this.pongTimer !== undefined) this.timers.clearTimeout(this.pongTimer);
        this.pongTimer = undefined;
        break;
      case 'resumed':
        this.resuming = false;
        this.setCursor(message.data.cursor);
        this.save();
        if (message.data.continuity === 'lost') this.emit('continuity_lost', { scope: 'inbox' });
        break;
      case 'subscribed': {
        const { orderId } = message.data;
        if (!this.sequencer.tracked().includes(orderId)) return;
        this.unanswered.delete(orderId);
        for (const delivery of this.sequencer.snapshot(orderId, message.data.seq)) {
          this.deliver(delivery);
        }
        this.save();
        if (message.data.continuity === 'lost') {
          this.emit('continuity_lost', { scope: 'order', orderId });
        }
        break;
      }
      case 'driver:location_acknowledged':
        this.acknowledged(message.data);
        break;
      case 'error':
        this.serverError(socket, message.data);
        return;
      default:
        if ((ORDER_EVENTS as readonly string[]).includes(message.event)) {
          this.orderEvent({ event: message.event, data: message.data } as Delivery);
          return;
        }
    }
    this.emit(message.event as keyof RealtimeEvents, message.data as never);
  }

  private orderEvent(delivery: Delivery): void {
    const cursor = (delivery.data as { cursor?: string }).cursor;
    const accepted = this.sequencer.accept(delivery);
    for (const d of accepted.deliver) this.deliver(d);
    if (accepted.resync) {
      this.sendSubscribe(accepted.resync.orderId, accepted.resync.sinceSeq);
    }
    if (cursor && !this.resuming) this.setCursor(cursor);
    this.save();
  }

  private deliver(delivery: Delivery): void {
    this.emit(delivery.event as OrderEventName, delivery.data as never);
  }

  private serverError(socket: WebSocketLike, data: { code: ErrorCode; message: string; retryAfterMs?: number }): void {
    if (data.code === 'token_expired') {
      // The server closes the connection next: reconnect at once with a fresh token.
      this.reconnectAtOnce = true;
      this.abandon(socket, 'token expired');
    } else if (data.code === 'invalid_message' && this.resuming && this.cursor !== undefined) {
      // The cursor was refused (another user's on a shared storage, or from a stack that was
      // re-created): nothing can be replayed from it, so resume from now and say so. (An
      // `invalid_message` for something else sent meanwhile costs a refetch, never a loss.)
      this.cursor = undefined;
      this.save();
      this.send({ action: 'resume' });
      this.emit('continuity_lost', { scope: 'inbox' });
    } else if (data.code === 'rate_limited' && data.retryAfterMs !== undefined) {
      // Room changes: the subscriptions still unanswered go again once allowed.
      this.roomChangesBlockedUntil = this.timers.now() + data.retryAfterMs;
      if (this.roomTimer !== undefined) this.timers.clearTimeout(this.roomTimer);
      this.roomTimer = this.timers.setTimeout(() => {
        this.roomTimer = undefined;
        for (const orderId of [...this.unanswered]) this.sendSubscribe(orderId);
      }, data.retryAfterMs);
    }
    this.emit('error', { ...data });
  }

  private sendSubscribe(orderId: string, sinceSeq = this.sequencer.statusSeqOf(orderId)): void {
    this.unanswered.add(orderId);
    if (this.timers.now() < this.roomChangesBlockedUntil) return;
    if (sinceSeq !== undefined) this.sequencer.resyncStarted(orderId);
    this.send({
      action: 'subscribe:order',
      orderId,
      ...(sinceSeq !== undefined ? { sinceSeq } : {}),
    });
  }

  // --- locations ----------------------------------------------------------------------------

  private flushLocations(): void {
    if (this.currentState !== 'open') return;
    const now = this.timers.now();
    for (const [orderId, pending] of [...this.pendingLocations]) {
      if (this.inFlight.has(orderId)) continue;
      const blockedUntil = this.locationBlockedUntil.get(orderId) ?? 0;
      if (now < blockedUntil) {
        if (!this.locationTimers.has(orderId)) {
          this.locationTimers.set(
            orderId,
            this.timers.setTimeout(() => {
              this.locationTimers.delete(orderId);
              this.flushLocations();
            }, blockedUntil - now),
          );
        }
        continue;
      }
      this.pendingLocations.delete(orderId);
      const timer = this.timers.setTimeout(() => {
        const entry = this.inFlight.get(orderId);
        if (!entry || entry.timer !== timer) return;
        this.inFlight.delete(orderId);
        const timeout = this.error('ack_timeout', `no acknowledgement of the location of ${orderId}`);
        for (const waiter of entry.waiters) waiter.reject(timeout);
        this.flushLocations();
      }, this.options.ackTimeoutMs ?? 10_000);
      this.inFlight.set(orderId, { ...pending, timer });
      this.send({ action: 'driver:location', ...pending.report, ack: 'all' });
    }
  }

  private acknowledged(ack: LocationAckData): void {
    const entry = this.inFlight.get(ack.orderId);
    if (!entry) return;
    this.timers.clearTimeout(entry.timer);
    this.inFlight.delete(ack.orderId);
    if (!ack.accepted && ack.retryAfterMs !== undefined) {
      this.locationBlockedUntil.set(ack.orderId, this.timers.now() + ack.retryAfterMs);
    }
    for (const waiter of entry.waiters) waiter.resolve(ack);
    this.flushLocations();
  }

  /** Locations sent on a connection that dropped before their answer go again, unless newer. */
  private requeueInFlight(): void {
    for (const [orderId, entry] of this.inFlight) {
      this.timers.clearTimeout(entry.timer);
      const newer = this.pendingLocations.get(orderId);
      this.pendingLocations.set(orderId, {
        report: newer?.report ?? entry.report,
        waiters: [...entry.waiters, ...(newer?.waiters ?? [])],
      });
    }
    this.inFlight.clear();
  }

  // --- state, events, storage ---------------------------------------------------------------

  private setState(state: ConnectionState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    this.emit('state', state);
  }

  private emit<E extends keyof RealtimeEvents>(event: E, data: RealtimeEvents[E]): void {
    for (const handler of [...(this.handlers.get(event) ?? [])]) {
      try {
        (handler as (data: RealtimeEvents[E]) => void)(data);
      } catch (e) {
        // One failing handler must not stop the others or the client.
        (globalThis as unknown as { queueMicrotask: (f: () => void) => void }).queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  private error(code: ClientErrorCode, message: string): RealtimeError {
    return { code, message };
  }

  private setCursor(cursor: string): void {
    this.cursor = cursor;
  }

  private save(): void {
    const storage = this.options.storage;
    if (!storage || !this.loaded) return;
    const orders: Record<string, number | null> = {};
    for (const orderId of this.sequencer.tracked()) {
      orders[orderId] = this.sequencer.statusSeqOf(orderId) ?? null;
    }
    const saved: Saved = { cursor: this.cursor, orders };
    this.savedOrders = orders;
    try {
      void Promise.resolve(storage.setItem(this.storageKey, JSON.stringify(saved))).catch(() => {});
    } catch {
      // A full or failing storage costs a replay after a restart, nothing else.
    }
  }
}
