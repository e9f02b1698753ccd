/**
 * The HTTP monitoring endpoints of a real broker: each document's fields, as
 * docs/MONITORING.md lists them, and the Prometheus text format.
 */
import { describe, expect, it } from 'vitest';
import { until, useWorld } from '../kit/index.js';
import { getJson, getText, httpBase } from './http.js';

const w = useWorld();
const FAST = { httpPort: 0, pingIntervalMs: 50, monitorIntervalMs: 50 };

describe('the HTTP port', () => {
  it('is off unless asked for', async () => {
    const b = await w.broker();
    expect(b.broker.httpPort).toBeNull();
    expect(b.urls.every((u) => !u.startsWith('ws:'))).toBe(true);
  });

  it('serves /healthz and lists the ws:// address of /bus among the broker URLs', async () => {
    const b = await w.broker({ httpPort: 0 });
    expect(b.broker.httpPort).toBeGreaterThan(0);
    expect(b.urls).toContain(`ws://127.0.0.1:${b.broker.httpPort}/bus`);
    const h = await getJson(b, '/healthz');
    expect(h).toMatchObject({ status: 'ok', serverId: b.broker.serverId });
    expect(typeof h.uptimeSec).toBe('number');
  });

  it('answers an unknown path with 404 and a hint', async () => {
    const b = await w.broker({ httpPort: 0 });
    const r = await getText(b, '/nope');
    expect(r.status).toBe(404);
    expect(r.body).toContain('/varz');
  });

  it('refuses a bad httpPort', async () => {
    await expect(w.broker({ httpPort: 70000 })).rejects.toThrow(/httpPort/);
  });
});

describe('/varz', () => {
  it('reports server info, uptime, connections, totals and current rates', async () => {
    const b = await w.broker(FAST);
    const sub = await w.connect(b.url, { name: 'sub' });
    const pub = await w.connect(b.url, { name: 'pub' });
    sub.subscribe('v.>', () => {});
    await sub.flush();
    const payload = Buffer.alloc(100);
    // Publish across several intervals so that one of them shows a non-zero rate.
    await until(() => {
      for (let i = 0; i < 200; i++) pub.publish('v.x', payload);
      return b.broker.monitor.rates.msgsInPerSec > 0 && b.broker.monitor.bursts.peak1msMsgs > 0;
    }, 'a non-zero interval rate');
    const v = await getJson(b, '/varz');
    expect(v).toMatchObject({ serverId: b.broker.serverId, serverName: 'hopbus', version: '0.1.0', proto: 1, connections: 2, subscriptions: 1 });
    for (const k of ['now', 'startedAt']) expect(Date.parse(v[k])).not.toBeNaN();
    expect(v.uptimeSec).toBeGreaterThanOrEqual(0);
    expect(v.totalConnections).toBe(2);
    expect(v.config).toMatchObject({ httpPort: b.broker.httpPort, latency: true, monitorIntervalMs: 50 });
    for (const k of [
      'msgsIn',
      'bytesIn',
      'msgsOut',
      'bytesOut',
      'unrouted',
      'slowConsumers',
      'droppedOldest',
      'droppedNewest',
      'conflated',
      'protocolErrors',
    ]) {
      expect(typeof v.totals[k], k).toBe('number');
    }
    expect(v.totals.msgsIn).toBeGreaterThanOrEqual(200);
    for (const k of ['intervalMs', 'msgsInPerSec', 'bytesInPerSec', 'msgsOutPerSec', 'bytesOutPerSec']) expect(typeof v.rates[k], k).toBe('number');
    for (const k of ['peak1msMsgs', 'peak1msBytes', 'peak5msMsgs', 'peak5msBytes']) expect(typeof v.bursts[k], k).toBe('number');
    expect(v.memory.rssBytes).toBeGreaterThan(0);
  });
});

describe('/connz', () => {
  it('lists each connection with transport, name, subscriptions, traffic, pending, drops and keepalive RTT', async () => {
    const b = await w.broker(FAST);
    const sub = await w.connect(b.url, { name: 'sub' });
    const pub = await w.connect(b.url, { name: 'pub' });
    sub.subscribe('c.a', () => {});
    sub.subscribe('c.*', () => {}, { queue: 'workers', policy: 'drop-oldest' });
    await sub.flush();
    for (let i = 0; i < 10; i++) pub.publish('c.a', 'hello');
    await pub.flush();
    await sub.flush();
    await until(() => [...b.broker.sessions].every((s) => s.rttMs >= 0), 'a keepalive round trip on every connection');
    const c = await getJson(b, '/connz');
    expect(c.count).toBe(2);
    const s = c.connections.find((x: { name: string }) => x.name === 'sub');
    const p = c.connections.find((x: { name: string }) => x.name === 'pub');
    expect(s).toMatchObject({
      transport: 'tcp',
      lang: 'typescript',
      subscriptions: 2,
      msgsIn: 0,
      pendingBytes: 0,
      heldMsgs: 0,
      dropped: 0,
      conflated: 0,
      paused: false,
    });
    // c.a: one copy for the plain subscription and one for the queue member.
    expect(s.msgsOut).toBe(20);
    expect(s.bytesOut).toBeGreaterThan(0);
    expect(s.subjects).toEqual([
      { sid: 1, pattern: 'c.a', policy: 'disconnect', dropped: 0, conflated: 0 },
      { sid: 2, pattern: 'c.*', queue: 'workers', policy: 'drop-oldest', dropped: 0, conflated: 0 },
    ]);
    expect(p).toMatchObject({ msgsIn: 10, subscriptions: 0 });
    for (const x of [s, p]) {
      expect(typeof x.rttUs).toBe('number');
      expect(x.rttUs).toBeGreaterThanOrEqual(0);
      expect(typeof x.cid).toBe('number');
      expect(x.remote).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(Date.parse(x.connectedAt)).not.toBeNaN();
    }
  });

  it('shows null RTT before the first keepalive PONG', async () => {
    const b = await w.broker({ httpPort: 0, pingIntervalMs: 0 });
    await w.connect(b.url, { name: 'quiet' });
    const c = await getJson(b, '/connz');
    expect(c.connections[0].rttUs).toBeNull();
  });
});

describe('/subsz', () => {
  it('counts subscriptions and reports the match cache hit rate from the subject tree', async () => {
    const b = await w.broker(FAST);
    const sub = await w.connect(b.url);
    const pub = await w.connect(b.url);
    sub.subscribe('s.a', () => {});
    sub.subscribe('s.>', () => {}, { queue: 'q' });
    sub.subscribe('t.*', () => {}, { policy: 'conflate' });
    await sub.flush();
    for (let i = 0; i < 50; i++) pub.publish('s.a', i);
    await pub.flush();
    const s = await getJson(b, '/subsz');
    expect(s).toMatchObject({ subscriptions: 3, queueSubscriptions: 1, byPolicy: { disconnect: 2, conflate: 1 } });
    expect(s.cache.capacity).toBe(4096);
    expect(s.cache.hits).toBeGreaterThanOrEqual(49);
    expect(s.cache.misses).toBeGreaterThanOrEqual(1);
    expect(s.cache.hitRate).toBeGreaterThan(0.9);
    expect(s.cache.hitRate).toBeLessThanOrEqual(1);
    expect(Array.isArray(s.topSubjects)).toBe(true);
    await until(() => b.broker.monitor.heavyHitters().length > 0, 'the interval harvest');
    const again = await getJson(b, '/subsz');
    expect(again.heavyHitters[0]).toMatchObject({ subject: 's.a', msgs: 50, error: 0 });
  });
});

describe('/metrics', () => {
  it('is Prometheus text: HELP and TYPE for every metric, name{labels} value lines, hopbus_ names', async () => {
    const b = await w.broker(FAST);
    // latency: false: no latency reports, so the message counts are exact.
    const sub = await w.connect(b.url, { name: 'with "quotes"', latency: false });
    const pub = await w.connect(b.url, { timestamps: true });
    sub.subscribe('m.x', () => {});
    await sub.flush();
    for (let i = 0; i < 20; i++) pub.publish('m.x', i);
    await pub.flush();
    await until(() => b.broker.monitor.hops.pubToBroker.total.totalCount > 0, 'a latency interval');
    const r = await getText(b, '/metrics');
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const helped = new Set<string>();
    const typed = new Map<string, string>();
    const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
    for (const line of r.body.split('\n')) {
      if (line === '') continue;
      let m = /^# HELP (hopbus_[a-z_]+) \S.*$/.exec(line);
      if (m) {
        helped.add(m[1]!);
        continue;
      }
      m = /^# TYPE (hopbus_[a-z_]+) (counter|gauge|summary|histogram|untyped)$/.exec(line);
      if (m) {
        typed.set(m[1]!, m[2]!);
        continue;
      }
      const s = /^(hopbus_[a-z_]+)(?:\{((?:[a-z_]+="(?:[^"\\]|\\.)*",?)*)\})? (-?[0-9.]+(?:e[+-]?\d+)?|NaN|\+Inf|-Inf)$/.exec(line);
      expect(s, `not a sample line: ${line}`).not.toBeNull();
      const labels: Record<string, string> = {};
      for (const l of (s![2] ?? '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
      samples.push({ name: s![1]!, labels, value: Number(s![3]) });
    }
    for (const sm of samples) {
      const family = sm.name.replace(/_(sum|count)$/, '');
      const base = typed.has(sm.name) ? sm.name : family;
      expect(typed.has(base), `TYPE for ${sm.name}`).toBe(true);
      expect(helped.has(base), `HELP for ${sm.name}`).toBe(true);
    }
    const value = (name: string, labels: Record<string, string> = {}) =>
      samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    expect(value('hopbus_messages_in_total')).toBe(20);
    expect(value('hopbus_connections')).toBe(2);
    expect(typed.get('hopbus_messages_in_total')).toBe('counter');
    expect(typed.get('hopbus_latency_seconds')).toBe('summary');
    expect(value('hopbus_latency_seconds_count', { hop: 'pub_to_broker' })).toBe(20);
    expect(value('hopbus_latency_seconds', { hop: 'pub_to_broker', quantile: '0.5' })).toBeGreaterThan(0);
    expect(samples.some((s) => s.name === 'hopbus_connection_pending_bytes' && s.labels.name === 'with \\"quotes\\"')).toBe(true);
  });
});

describe('the dashboard page and the browser bundle', () => {
  it('serves / as HTML that loads /hopbus.js, and the bundle defines the global hopbus', async () => {
    const b = await w.broker({ httpPort: 0 });
    const page = await getText(b, '/');
    expect(page.status).toBe(200);
    expect(page.type).toMatch(/^text\/html/);
    expect(page.body).toContain('<script src="/hopbus.js"></script>');
    const js = await getText(b, '/hopbus.js');
    expect(js.status, `${httpBase(b)}/hopbus.js: build it with npm run build`).toBe(200);
    expect(js.body).toMatch(/^var hopbus = /m);
    // Node-only modules stayed out of the browser bundle.
    for (const mod of ['node:net', 'require("net")', 'pino', 'uWebSockets']) expect(js.body.includes(mod), mod).toBe(false);
  });
});
