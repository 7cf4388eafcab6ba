export {
  RealtimeClient,
  SUBPROTOCOL,
  STABLE_CONNECTION_MS,
  type ClientErrorCode,
  type ConnectionState,
  type ContinuityLost,
  type LocationReport,
  type RealtimeClientOptions,
  type RealtimeError,
  type RealtimeEvents,
  type RealtimeStorage,
  type Timers,
  type WebSocketConstructor,
  type WebSocketLike,
} from './client.js';
export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export { Sequencer, type Delivery, type OrderEventName, type OrderEvents } from './sequencer.js';
export type * from './protocol.js';
