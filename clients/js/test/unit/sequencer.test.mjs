import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Sequencer } from '../../dist/index.js';

const status = (seq, previousStatusSeq, status = `s${seq}`) => ({
  event: 'order:status_update',
  data: { orderId: 'o-1', orderNumber: 'RND-1', status, previousStatus: 'x', timestamp: 't', seq, previousStatusSeq },
});
const location = (seq) => ({
  event: 'driver:location_update',
  data: { orderId: 'o-1', driverId: 'd-1', latitude: 1, longitude: 2, timestamp: 't', seq },
});
const seqs = (accepted) => accepted.deliver.map((d) => d.data.seq);

test('a redelivered or replayed event is dropped by order, kind and seq', () => {
  // GIVEN an untracked order's events seen once
  const s = new Sequencer();
  assert.deepEqual(seqs(s.accept(status(3, 1))), [3]);
  assert.deepEqual(seqs(s.accept(location(4))), [4]);
  // WHEN they come again, or older ones come
  // THEN nothing is delivered; a newer one of either kind is
  assert.deepEqual(seqs(s.accept(status(3, 1))), []);
  assert.deepEqual(seqs(s.accept(status(2, 1))), []);
  assert.deepEqual(seqs(s.accept(location(4))), []);
  assert.deepEqual(seqs(s.accept(location(6))), [6]);
  assert.deepEqual(seqs(s.accept(status(5, 3))), [5]);
});

test('a status update after a missed one is held, a resubscription asked, and the replay delivered in order', () => {
  // GIVEN a tracked order whose last known status is seq 3
  const s = new Sequencer();
  s.track('o-1', 3);
  // WHEN seq 7 arrives, following seq 5, which never came
  const early = s.accept(status(7, 5));
  // THEN nothing is delivered yet and a resubscription from seq 3 is asked for, once
  assert.deepEqual(seqs(early), []);
  assert.deepEqual(early.resync, { orderId: 'o-1', sinceSeq: 3 });
  assert.equal(s.accept(status(7, 5)).resync, undefined);
  // WHEN the replay brings seq 5 (and 7 again), then the snapshot
  assert.deepEqual(seqs(s.accept(status(5, 3))), [5, 7]);
  assert.deepEqual(seqs(s.accept({ ...status(7, 5), data: { ...status(7, 5).data, replayed: true } })), []);
  assert.deepEqual(s.snapshot('o-1', 8), []);
  // THEN the order's status position is the snapshot's
  assert.equal(s.statusSeqOf('o-1'), 8);
});

test('when the missing update cannot be replayed the snapshot releases what was held, in order', () => {
  // GIVEN a tracked order holding two updates after a gap
  const s = new Sequencer();
  s.track('o-1', 3);
  s.accept(status(9, 7));
  s.accept(status(7, 5));
  // WHEN the snapshot comes without the missing one (continuity lost)
  const released = s.snapshot('o-1', 9);
  // THEN the held ones are delivered oldest first, and nothing at or below the snapshot after it
  assert.deepEqual(released.map((d) => d.data.seq), [7, 9]);
  assert.deepEqual(seqs(s.accept(location(8))), []);
  assert.deepEqual(seqs(s.accept(status(9, 7))), []);
  assert.deepEqual(seqs(s.accept(status(11, 9))), [11]);
});

test('an order tracked without a known position takes its first status update as it is', () => {
  const s = new Sequencer();
  s.track('o-1');
  // GIVEN no snapshot yet WHEN a status update with a previousStatusSeq comes THEN it is delivered
  assert.deepEqual(seqs(s.accept(status(4, 2))), [4]);
  assert.equal(s.statusSeqOf('o-1'), 4);
});
