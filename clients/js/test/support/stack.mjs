// A real local stack for the end-to-end tests: `rnd-local serve` on a free port with its SQLite
// store in a fresh directory (so a restart keeps everything), tokens signed with the stack's
// development secret, and the HTTP API.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** rnd_domain::identity::DEV_JWT_SECRET: the public development secret rnd-local signs with. */
export const DEV_SECRET = 'rnd-local-dev-secret-not-for-production-use';

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An HS256 JWT for `sub` as `role`, expiring `ttlSecs` from now. */
export function sign(sub, role, { ttlSecs = 3600, secret = DEV_SECRET, name } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, role, name, iat: now, exp: now + ttlSecs })}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves when `check()` is true, polling; rejects with `what` after `ms`. */
export async function until(check, what, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export class Stack {
  /** `args`: more `rnd-local serve` flags (e.g. shorter connection limits). */
  constructor(args = []) {
    this.args = args;
    this.bin = process.env.RND_LOCAL_BIN;
    assert.ok(this.bin, 'RND_LOCAL_BIN must name the rnd-local binary (scripts/sdk-test.sh sets it)');
    this.data = mkdtempSync(join(tmpdir(), 'rnd-sdk-e2e-'));
    this.port = 0;
    this.child = undefined;
  }

  /** Starts the stack (on the port it had, after a restart) and waits for its ready line. */
  async start() {
    const child = spawn(this.bin, ['serve', '--data', this.data, '--port', String(this.port), ...this.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
    });
    this.child = child;
    child.stderr.on('data', (d) => process.stderr.write(d));
    this.base = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('rnd-local printed no ready line')), 30_000);
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`rnd-local exited early (${code})`)));
      createInterface({ input: child.stdout }).on('line', (line) => {
        const m = /^rnd-local ready on (http:\/\/\S+)$/.exec(line);
        if (m) {
          clearTimeout(timer);
          child.removeAllListeners('exit');
          resolve(m[1]);
        }
      });
    });
    this.port = Number(new URL(this.base).port);
    this.ws = `${this.base.replace(/^http/, 'ws')}/realtime`;
  }

  /** Kills the stack at once (a crash: nothing is drained). */
  async kill() {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async stop() {
    await this.kill();
    rmSync(this.data, { recursive: true, force: true });
  }

  /** An HTTP API call as `token`; the parsed body, or a failed assertion naming the status. */
  async http(method, path, token, body) {
    const res = await fetch(this.base + path, {
      method,
      headers: {
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }
}
