import type {
  EtaUpdateData,
  LocationUpdateData,
  NewAssignmentData,
  OrderNewData,
  StatusUpdateData,
} from './protocol.js';

/** The events derived from an order's changes: each carries the order's `seq`. */
export interface OrderEvents {
  'order:new': OrderNewData;
  'order:status_update': StatusUpdateData;
  'driver:new_assignment': NewAssignmentData;
  'driver:location_update': LocationUpdateData;
  'order:eta_update': EtaUpdateData;
}

export type OrderEventName = keyof OrderEvents;

export const ORDER_EVENTS: readonly OrderEventName[] = [
  'order:new',
  'order:status_update',
  'driver:new_assignment',
  'driver:location_update',
  'order:eta_update',
];

/** An order event to hand to the app. */
export type Delivery = {
  [E in OrderEventName]: { event: E; data: OrderEvents[E] };
}[OrderEventName];

/** What to do with an incoming order event. */
export interface Accepted {
  /** Deliver these, in this order (none for a duplicate or a held event). */
  deliver: Delivery[];
  /** A status update was missed: resubscribe to the order with `sinceSeq`. */
  resync?: { orderId: string; sinceSeq: number };
}

/**
 * Continuity on the client side (docs/protocol.md, "The gap rule"): drops an event whose `seq`
 * is not above the last one delivered of its order and kind (a redelivery or a replay of what
 * was seen), and, for a tracked order, holds an `order:status_update` whose
 * `previousStatusSeq` shows that one was missed until the missing ones are replayed (or the
 * snapshot says they are lost), so status updates reach the app in order.
 */
export class Sequencer {
  /** Last `seq` delivered per order and event kind. */
  private readonly last = new Map<string, number>();
  /** Tracked orders: the `seq` of the last status the app knows (snapshot or update). */
  private readonly statusSeq = new Map<string, number | undefined>();
  /** Tracked orders: status updates that came before one they follow. */
  private readonly held = new Map<string, StatusUpdateData[]>();
  /** Tracked orders with a resubscription under way. */
  private readonly resyncing = new Set<string>();

  /** Track `orderId` (its status updates are delivered in order), from `statusSeq` if known. */
  track(orderId: string, statusSeq?: number): void {
    if (!this.statusSeq.has(orderId) || this.statusSeq.get(orderId) === undefined) {
      this.statusSeq.set(orderId, statusSeq);
    }
  }

  /** Stop tracking `orderId`; what was held is dropped. */
  untrack(orderId: string): void {
    this.statusSeq.delete(orderId);
    this.held.delete(orderId);
    this.resyncing.delete(orderId);
  }

  /** The `seq` of the last status of `orderId` the app knows, if tracked and known. */
  statusSeqOf(orderId: string): number | undefined {
    return this.statusSeq.get(orderId);
  }

  /** Every tracked order. */
  tracked(): string[] {
    return [...this.statusSeq.keys()];
  }

  /** An order event arrived. */
  accept(delivery: Delivery): Accepted {
    const { orderId, seq } = delivery.data;
    if (seq <= this.lastOf(orderId, delivery.event)) {
      return { deliver: [] };
    }
    if (delivery.event !== 'order:status_update' || !this.statusSeq.has(orderId)) {
      this.setLast(orderId, delivery.event, seq);
      return { deliver: [delivery] };
    }
    const known = this.statusSeq.get(orderId);
    const previous = delivery.data.previousStatusSeq;
    if (known === undefined || previous === undefined || previous <= known) {
      return { deliver: [delivery, ...this.applyStatus(orderId, delivery.data)] };
    }
    // A status update between the last one known and this one is missing: hold this one.
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
  resyncStarted(orderId: string): void {
    this.resyncing.add(orderId);
  }

  /**
   * The snapshot of `orderId` at `seq` arrived (`subscribed`): what was held is delivered in
   * `seq` order (what could be replayed was, before the snapshot), and nothing older than the
   * snapshot is delivered after it.
   */
  snapshot(orderId: string, seq: number): Delivery[] {
    this.resyncing.delete(orderId);
    const held = (this.held.get(orderId) ?? []).sort((a, b) => a.seq - b.seq);
    this.held.delete(orderId);
    const out: Delivery[] = [];
    for (const data of held) {
      if (data.seq > this.lastOf(orderId, 'order:status_update')) {
        out.push({ event: 'order:status_update', data });
        this.setLast(orderId, 'order:status_update', data.seq);
      }
    }
    if (this.statusSeq.has(orderId)) {
      const known = this.statusSeq.get(orderId) ?? 0;
      this.statusSeq.set(orderId, Math.max(known, seq, this.lastOf(orderId, 'order:status_update')));
    }
    for (const kind of ['order:status_update', 'driver:location_update', 'order:eta_update'] as const) {
      this.setLast(orderId, kind, Math.max(seq, this.lastOf(orderId, kind)));
    }
    return out;
  }

  private applyStatus(orderId: string, data: StatusUpdateData): Delivery[] {
    this.setLast(orderId, 'order:status_update', data.seq);
    this.statusSeq.set(orderId, data.seq);
    // Deliver what was held and now follows, in order.
    const out: Delivery[] = [];
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
        if (next.previousStatusSeq === undefined || next.previousStatusSeq <= known) {
          held.splice(i, 1);
          out.push({ event: 'order:status_update', data: next });
          this.setLast(orderId, 'order:status_update', next.seq);
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

  private lastOf(orderId: string, event: OrderEventName): number {
    return this.last.get(`${orderId}\u0000${event}`) ?? -1;
  }

  private setLast(orderId: string, event: OrderEventName, seq: number): void {
    this.last.set(`${orderId}\u0000${event}`, seq);
  }
}
