import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay } from '../../dist/index.js';

test('the delay is drawn between 0 and the doubling ceiling, capped', () => {
  const options = { baseMs: 500, capMs: 30_000 };
  // GIVEN the largest and the smallest draw WHEN attempts grow THEN the ceiling doubles up to the cap
  const highest = (attempt) => backoffDelay(attempt, options, () => 0.999999);
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 7, 20, 1000].map(highest),
    [499, 999, 1999, 3999, 7999, 15999, 29999, 29999, 29999, 29999],
  );
  assert.equal(backoffDelay(5, options, () => 0), 0);
});

test('full jitter spreads clients that lost their connection together (no reconnect storm)', () => {
  // GIVEN 1000 clients at their fourth attempt with a real random source
  const delays = Array.from({ length: 1000 }, () => backoffDelay(4, { baseMs: 500, capMs: 30_000 }));
  // THEN the delays cover the whole window [0, 8000) instead of bunching
  assert.ok(delays.every((d) => d >= 0 && d < 8000));
  const buckets = new Array(8).fill(0);
  for (const d of delays) buckets[Math.floor(d / 1000)]++;
  assert.ok(buckets.every((n) => n > 60), `uneven: ${buckets}`);
});
