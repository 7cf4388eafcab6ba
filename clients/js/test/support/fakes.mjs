// A fake WebSocket and a fake clock for the unit tests: the test decides when a socket opens,
// what the server says, and when time passes.

export class FakeClock {
  constructor() {
    this.time = 0;
    this.queue = [];
    this.nextId = 1;
  }
  setTimeout(callback, ms) {
    const id = this.nextId++;
    this.queue.push({ id, at: this.time + Math.max(0, ms), callback });
    return id;
  }
  clearTimeout(id) {
    this.queue = this.queue.filter((t) => t.id !== id);
  }
  now() {
    return this.time;
  }
  /** The delays of the timers due, from now. */
  pending() {
    return this.queue.map((t) => t.at - this.time);
  }
  /** Lets `ms` pass, running each timer due in time order (and the promises they start). */
  async advance(ms) {
    const end = this.time + ms;
    for (;;) {
      await settle();
      this.queue.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.queue[0];
      if (!next || next.at > end) break;
      this.queue.shift();
      this.time = next.at;
      next.callback();
    }
    this.time = end;
    await settle();
  }
}

/** Lets queued promise callbacks run. */
export async function settle() {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** A WebSocket class whose instances the test drives; `FakeSocket.all` lists every one made. */
export function fakeWebSocket() {
  class FakeSocket {
    static all = [];
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.sent = [];
      this.closed = undefined;
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      FakeSocket.all.push(this);
    }
    send(text) {
      if (this.closed) throw new Error('send on a closed socket');
      this.sent.push(JSON.parse(text));
    }
    close(code, reason) {
      this.closed = { code, reason };
    }
    // --- the test's side ---
    open() {
      this.onopen?.({});
    }
    receive(event, data) {
      this.onmessage?.({ data: JSON.stringify({ event, data }) });
    }
    drop(code = 1006) {
      this.closed = { code };
      this.onclose?.({ code, reason: '' });
    }
    refuse(status) {
      this.onerror?.({ message: `Unexpected server response: ${status}` });
      this.closed = { code: 1006 };
      this.onclose?.({ code: 1006, reason: '' });
    }
    actions() {
      return this.sent.map((m) => m.action);
    }
  }
  return FakeSocket;
}
