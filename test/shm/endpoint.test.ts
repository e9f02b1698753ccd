/**
 * broker.endpoint(), connect(endpoint, { wait }), and the life of an shm connection
 * seen from the client API.
 */
import { describe, expect, it } from 'vitest';
import type { StartedBroker } from '../../broker/index.js';
import { ConnectionError, HybridWait, OptionsError, connectBroker as connect } from '../../client/index.js';
import { until, useShmWorld } from './helpers.js';

const shm = useShmWorld();
const { buses } = shm;

async function world(): Promise<StartedBroker> {
  return shm.start();
}

describe('broker.endpoint', () => {
  it('an shm endpoint is a structured-cloneable object of shared memory and numbers', async () => {
    const b = await world();
    const ep = b.endpoint('shm');
    expect(ep.transport).toBe('shm');
    expect(ep.url).toMatch(/^shm:\/\//);
    expect(ep.conn).toBeInstanceOf(SharedArrayBuffer);
    const copy = structuredClone(ep);
    expect(copy.conn).toBeInstanceOf(SharedArrayBuffer);
    // A clone names the same memory: a client may connect with it.
    const bus = await connect(copy, { reconnect: false });
    buses.push(bus);
    expect(bus.connected).toBe(true);
  });

  it('an shm endpoint serves one connection; a second connect is refused with advice', async () => {
    const b = await world();
    const ep = b.endpoint('shm');
    buses.push(await connect(ep));
    await expect(connect(ep)).rejects.toThrow(/already taken.*broker\.endpoint\('shm'\)/);
    await expect(connect(ep)).rejects.toBeInstanceOf(ConnectionError);
  });

  it('refuses unknown kinds, bad options, and endpoints after close', async () => {
    const b = await world();
    expect(() => b.endpoint('tcp' as never)).toThrow(TypeError);
    expect(() => b.endpoint('shm', { heartbeatMs: 0 })).toThrow(/heartbeatMs/);
    expect(() => b.endpoint('shm', { heartbeatMs: 100, heartbeatTimeoutMs: 150 })).toThrow(/at least twice/);
    expect(() => b.endpoint('shm', { ringBytes: 2 ** 31 })).toThrow(/over the limit/);
    for (const bad of [{ heartbeatMs: 0 }, { heartbeatMs: 100, heartbeatTimeoutMs: 150 }, { ringBytes: 2 ** 31 }]) {
      expect(() => b.endpoint('shm', bad)).toThrow(OptionsError);
    }
    await b.close();
    expect(() => b.endpoint('shm')).toThrow(/closed/);
    shm.broker = null;
  });

  it('ring sizes are rounded up to a power of two', async () => {
    const b = await world();
    expect(b.endpoint('shm', { ringBytes: 5000 }).conn.byteLength).toBeGreaterThan(2 * 8192);
    expect(b.endpoint('shm', { ringBytes: 1 }).conn.byteLength).toBeLessThan(3 * 4096);
  });
});

describe('connect(endpoint, { wait })', () => {
  it('takes a strategy name or a WaitStrategy object, and refuses anything else', async () => {
    const b = await world();
    await expect(connect(b.endpoint('shm'), { wait: 'fast' as never })).rejects.toThrow(/connect option "wait"/);
    const bus = await connect(b.endpoint('shm'), { wait: new HybridWait({ spinUs: 5 }), reconnect: false });
    buses.push(bus);
    bus.subscribe('w', (m) => m.respond(m.data));
    await bus.flush();
    expect((await bus.request('w', 'ok')).string()).toBe('ok');
  });

  it('refuses an object that is not an endpoint, naming where endpoints come from', async () => {
    await expect(connect({ transport: 'shm' })).rejects.toThrow(/broker\.endpoint\('shm'\)/);
  });

  it("works from the broker's own thread too (the client parks with Atomics.waitAsync)", async () => {
    const b = await world();
    const a = await connect(b.endpoint('shm'), { wait: 'park', reconnect: false });
    const c = await connect(b.endpoint('shm'), { wait: 'park', reconnect: false });
    buses.push(a, c);
    c.subscribe('svc', (m) => m.respond(`c:${m.string()}`));
    await c.flush();
    for (let i = 0; i < 100; i++) expect((await a.request('svc', String(i))).string()).toBe(`c:${i}`);
  });
});

describe('the end of an shm connection', () => {
  it('bus.close() frees the session and its subscriptions in the broker', async () => {
    const b = await world();
    const bus = await connect(b.endpoint('shm'), { name: 'leaving' });
    bus.subscribe('a.>', () => {});
    await bus.flush();
    expect(b.broker.tree.match('a.b').total).toBe(1);
    await bus.close();
    await until(() => b.broker.sessions.size === 0, 'the session is gone');
    expect(b.broker.tree.match('a.b').total).toBe(0);
  });

  it('a client whose shm connection the broker closes does not try to re-dial it (an endpoint serves one connection)', async () => {
    const b = await world();
    const bus = await connect(b.endpoint('shm'));
    const events: string[] = [];
    bus.on('disconnect', () => events.push('disconnect'));
    bus.on('reconnect', () => events.push('reconnect'));
    const closed = new Promise<void>((r) => bus.once('close', () => r()));
    await b.close();
    shm.broker = null;
    await closed;
    expect(events).toEqual(['disconnect']);
    expect(bus.isClosed).toBe(true);
  });
});

describe('withdrawn endpoints', () => {
  it('an endpoint handed out by a broker that has since closed is refused at once', async () => {
    const b = await world();
    const ep = b.endpoint('shm');
    await b.close();
    shm.broker = null;
    await expect(connect(ep, { reconnect: false })).rejects.toThrow(/withdrawn: its broker has closed/);
    await expect(connect(ep, { reconnect: false })).rejects.toBeInstanceOf(ConnectionError);
  });
});
