/** How long to wait before reconnecting. */
export interface BackoffOptions {
  /** The ceiling of the first retry's delay, ms (default 500). */
  baseMs?: number;
  /** The largest ceiling, ms (default 30 000). */
  capMs?: number;
}

export const DEFAULT_BACKOFF = { baseMs: 500, capMs: 30_000 } as const;

/**
 * "Full jitter" capped exponential backoff: a delay drawn uniformly between 0 and
 * min(cap, base × 2^attempt), so clients that lost their connection together do not come back
 * together (no reconnect storm). `attempt` counts from 0; `random` returns [0, 1).
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const baseMs = options.baseMs ?? DEFAULT_BACKOFF.baseMs;
  const capMs = options.capMs ?? DEFAULT_BACKOFF.capMs;
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(attempt, 0), 52));
  return Math.floor(random() * ceiling);
}
