/**
 * client/reconnect.ts on a FakeClock: the order servers are tried in, the delay
 * between rounds (doubling, capped, plus jitter), giving up, and the bounded backlog.
 */
import { describe, expect, it } from 'vitest';
import { Backlog, Reconnector, ServerList, type ReconnectHost } from '../../client/reconnect.js';
import { ConnectionError, OptionsError, PendingLimitError } from '../../client/index.js';
import { FakeClock } from '../../runtime/clock.js';
import type { Endpoint } from '../../transports/url.js';

/** Lets every pending promise callback run (one event-loop turn; no time passes on the clock). */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

function host(answering: string | null) {
  const h = {
    reconnecting: true as boolean,
    tried: [] as string[],
    back: null as string | null,
    gaveUpWith: null as ConnectionError | null,
    attach(ep: Endpoint): Promise<void> {
      h.tried.push(ep.url);
      return ep.url === answering ? Promise.resolve() : Promise.reject(new Error(`refused by ${ep.url}`));
    },
    reconnected(ep: Endpoint) {
      h.back = ep.url;
      h.reconnecting = false;
    },
    gaveUp(err: ConnectionError) {
      h.gaveUpWith = err;
      h.reconnecting = false;
    },
  } satisfies ReconnectHost & Record<string, unknown>;
  return h;
}

const urls = ['tcp://127.0.0.1:1', 'tcp://127.0.0.1:2', 'tcp://127.0.0.1:3'];
const policy = { reconnectDelayMs: 100, maxReconnectDelayMs: 300, reconnectJitterMs: 100, maxReconnectAttempts: -1 };

describe('Reconnector', () => {
  it('tries the servers after the one it lost, then waits delay + jitter, doubling per round up to the cap', async () => {
    const clock = new FakeClock();
    const servers = new ServerList(urls);
    const h = host(null);
    const r = new Reconnector(h, servers, policy, clock, () => 0.5);
    void r.run();
    await settle();
    expect(h.tried.map((u) => u.slice(-1))).toEqual(['2', '3', '1']);
    // Round 1 failed: 100 ms + 0.5 * 100 ms of jitter.
    clock.advance(149);
    await settle();
    expect(h.tried).toHaveLength(3);
    clock.advance(1);
    await settle();
    expect(h.tried).toHaveLength(6);
    // Round 2: 200 + 50; round 3: capped at 300, + 50.
    clock.advance(250);
    await settle();
    expect(h.tried).toHaveLength(9);
    clock.advance(349);
    await settle();
    expect(h.tried).toHaveLength(9);
    clock.advance(1);
    await settle();
    expect(h.tried).toHaveLength(12);
    h.reconnecting = false;
    r.cancel();
    await settle();
    expect(clock.pending).toBe(0);
  });

  it('stops at the first server that answers and makes it the current one', async () => {
    const clock = new FakeClock();
    const servers = new ServerList(urls);
    servers.current = 1;
    const h = host(urls[0]!);
    await new Reconnector(h, servers, policy, clock, () => 0).run();
    expect(h.tried).toEqual([urls[2], urls[0]]);
    expect(h.back).toBe(urls[0]);
    expect(servers.current).toBe(0);
  });

  it('gives up after maxReconnectAttempts, with the last error as the cause', async () => {
    const clock = new FakeClock();
    const h = host(null);
    const done = new Reconnector(h, new ServerList(urls), { ...policy, maxReconnectAttempts: 4 }, clock, () => 0).run();
    await settle();
    clock.advance(100);
    await done;
    expect(h.tried).toHaveLength(4);
    expect(h.gaveUpWith).toBeInstanceOf(ConnectionError);
    expect(h.gaveUpWith!.message).toBe('gave up reconnecting after 4 attempts');
    expect(String((h.gaveUpWith!.cause as Error).message)).toMatch(/refused by/);
  });

  it('cancel ends the wait between rounds at once', async () => {
    const clock = new FakeClock();
    const h = host(null);
    const done = new Reconnector(h, new ServerList([urls[0]!]), policy, clock, () => 0);
    const running = done.run();
    await settle();
    expect(clock.pending).toBe(1);
    h.reconnecting = false;
    done.cancel();
    await running;
    expect(clock.pending).toBe(0);
    expect(h.tried).toHaveLength(1);
  });
});

describe('ServerList and Backlog', () => {
  it('a server list needs at least one dialable address', () => {
    expect(() => new ServerList([])).toThrow(OptionsError);
    expect(new ServerList('tcp://127.0.0.1:7400').redialable).toBe(true);
  });

  it('the backlog keeps frames in order up to its limit, then refuses with PendingLimitError', () => {
    const b = new Backlog(10_000);
    for (let i = 0; i < 3; i++) {
      const buf = b.reserve(3000);
      buf.fill(i, b.writeOffset, b.writeOffset + 3000);
      b.commit(3000);
    }
    expect(() => b.reserve(1001)).toThrow(PendingLimitError);
    const out = b.take();
    expect(out.length).toBe(9000);
    expect([out[0], out[3000], out[8999]]).toEqual([0, 1, 2]);
    expect(b.used).toBe(0);
  });
});
