// Tracks one order on a local stack until it is delivered or cancelled, printing each status
// once, in order, across dropped connections and stack restarts. Uses only the package (and
// `ws`, Node's WebSocket). The end-to-end tests run it.
//
//   node examples/track-order.mjs http://127.0.0.1:9001 ORDER_ID [USER_ID]
//
// The token comes from the local stack's POST /dev/token (development only; an app gets its
// tokens from its identity provider).
import { RealtimeClient } from '@rnd/realtime-client';
import WebSocket from 'ws';

const [base = 'http://127.0.0.1:9001', orderId, userId = 'customer-1'] = process.argv.slice(2);
if (!orderId) {
  console.error('usage: node examples/track-order.mjs BASE_URL ORDER_ID [USER_ID]');
  process.exit(2);
}

async function getToken() {
  const res = await fetch(`${base}/dev/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ sub: userId, role: 'customer' }),
  });
  if (!res.ok) throw new Error(`POST /dev/token: ${res.status}`);
  return (await res.json()).token;
}

const client = new RealtimeClient({
  url: `${base.replace(/^http/, 'ws')}/realtime`,
  getToken,
  WebSocket,
  reconnect: { baseMs: 200, capMs: 2000, maxAttempts: 100 },
});

client.on('state', (state) => console.error(`[${state}]`));
client.on('error', (e) => console.error(`error ${e.code}: ${e.message}`));
client.on('continuity_lost', () => console.log('continuity lost: refetch the tracking'));
client.on('subscribed', ({ tracking }) => console.log(`now ${tracking.status}`));
client.on('order:status_update', (u) => {
  console.log(`status ${u.status} (seq ${u.seq})`);
  if (u.status === 'delivered' || u.status === 'cancelled') client.close();
});
client.subscribeOrder(orderId);
