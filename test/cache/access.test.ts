/**
 * Reaching the last-value cache from outside the SDK: NATS clients (nats.js) asking
 * $HOPBUS.LAST.<subject>, and a NATS publisher's messages being cached; /varz and
 * /metrics; the command line (`hopbus last`, `hopbus sub --snapshot`, `hopbus broker
 * --cache`) as child processes.
 */
import { connect as natsConnect, headers as natsHeaders } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { useWorld } from '../kit/index.js';
import { getJson, getText } from '../monitoring/http.js';
import { broker, run, sdk, start, useCli, waitFor } from '../cli/harness.js';

const world = useWorld();
useCli();

const CACHE = [{ pattern: 'md.>', maxSubjects: 2, maxBytes: 1 << 20 }];

describe('NATS clients', () => {
  it('get a cached value by a request to $HOPBUS.LAST.<subject>, with Hopbus-Seq; nothing cached: Hopbus-Last: none', async () => {
    const b = await world.broker({ cache: CACHE, natsPort: 0 });
    const nc = await natsConnect({ servers: `127.0.0.1:${b.broker.natsPort}`, reconnect: false });
    try {
      // A NATS publisher's messages are cached like any other, headers included.
      const h = natsHeaders();
      h.set('venue', 'X');
      nc.publish('md.EURUSD', '1.0712', { headers: h });
      nc.publish('md.EURUSD', '1.0713', { headers: h });
      await nc.flush();
      const m = await nc.request('$HOPBUS.LAST.md.EURUSD', '', { timeout: 2000 });
      expect(m.string()).toBe('1.0713');
      expect(m.headers?.get('Hopbus-Seq')).toBe('2');
      expect(m.headers?.get('venue')).toBe('X');
      // An HPUB with Hopbus-Delete is a tombstone.
      nc.publish('md.GONE', 'x');
      const del = natsHeaders();
      del.set('Hopbus-Delete', '1');
      nc.publish('md.GONE', '', { headers: del });
      await nc.flush();
      expect((await nc.request('$HOPBUS.LAST.md.GONE', '', { timeout: 2000 })).headers?.get('Hopbus-Last')).toBe('none');
      const none = await nc.request('$HOPBUS.LAST.md.nothing', '', { timeout: 2000 });
      expect(none.headers?.get('Hopbus-Last')).toBe('none');
      expect(none.data.length).toBe(0);
      // And the hopbus SDK sees the NATS publisher's value: raw bytes, as NATS payloads are.
      const bus = await world.connect(b.url);
      expect(Buffer.from((await bus.last('md.EURUSD')) as Uint8Array).toString()).toBe('1.0713');
    } finally {
      await nc.close();
    }
  });
});

describe('monitoring', () => {
  it('/varz and /metrics show cached subjects, bytes, hits, misses and evictions', async () => {
    const b = await world.broker({ cache: CACHE, httpPort: 0 });
    const bus = await world.connect(b.url);
    for (const s of ['md.A', 'md.B', 'md.C']) bus.publish(s, s);
    await bus.flush();
    await bus.last('md.C');
    await bus.last('md.A'); // evicted: a miss
    const v = await getJson(b, '/varz');
    expect(v.cache).toMatchObject({ subjects: 2, hits: 1, misses: 1, updates: 3, evictions: 1 });
    expect(v.cache.bytes).toBeGreaterThan(0);
    expect(v.cache.patterns).toEqual([{ pattern: 'md.>', maxSubjects: 2, maxBytes: 1 << 20, ttlMs: 0, subjects: 2, bytes: v.cache.bytes }]);
    const m = (await getText(b, '/metrics')).body;
    expect(m).toMatch(/^hopbus_cache_subjects 2$/m);
    expect(m).toMatch(/^hopbus_cache_lookups_total\{result="hit"\} 1$/m);
    expect(m).toMatch(/^hopbus_cache_lookups_total\{result="miss"\} 1$/m);
    expect(m).toMatch(/^hopbus_cache_removals_total\{reason="evicted"\} 1$/m);
  });

  it('/varz says null without a cache, and /metrics has no cache lines', async () => {
    const b = await world.broker({ httpPort: 0 });
    expect((await getJson(b, '/varz')).cache).toBeNull();
    expect((await getText(b, '/metrics')).body).not.toContain('hopbus_cache_');
  });
});

describe('the command line', () => {
  it('hopbus broker --cache, hopbus last (payload, --headers, --json, exit 1 for nothing), hopbus sub --snapshot', async () => {
    const b = await broker(['--port', '0', '--cache', 'md.>', '--cache-subjects', '10']);
    expect(b.proc.out.stderr).toMatch(/^caching: md\.> \(10 subjects, 268435456 bytes\)$/m);
    const bus = await sdk(b.url);
    bus.publish('md.EURUSD', '1.0712');
    bus.publish('md.USDJPY', { bid: 151.2 });
    await bus.flush();

    const last = await run(['last', 'md.EURUSD', '--server', b.url]);
    expect(last).toMatchObject({ code: 0, stdout: '1.0712\n' });
    const withHeaders = await run(['last', 'md.EURUSD', '--headers', '--server', b.url]);
    expect(withHeaders.stdout).toMatch(/^Hopbus-Seq: 1$/m);
    expect(withHeaders.stdout).toMatch(/^Hopbus-Age-Ms: \d+$/m);
    const json = JSON.parse((await run(['last', 'md.USDJPY', '--json', '--server', b.url])).stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ subject: 'md.USDJPY', kind: 'msgpack', value: { bid: 151.2 } });
    const none = await run(['last', 'md.GBPUSD', '--server', b.url]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('keeps no value for "md.GBPUSD"');
    expect((await run(['last', '--help'])).stdout).toContain('Usage: hopbus last SUBJECT');

    const sub = start(['sub', 'md.*', '--snapshot', '--server', b.url]);
    // stdout and stderr are separate pipes: each is awaited on its own, since
    // the order in which the two reach this process is not the order written.
    await waitFor(sub, /^snapshot complete: 2 cached values$/m, 'stderr');
    await waitFor(sub, /^\[\d\] md\.EURUSD \(cached\): 1\.0712$/m);
    await waitFor(sub, /^\[\d\] md\.USDJPY \(cached\): \{"bid":151\.2\}$/m);
    bus.publish('md.EURUSD', '1.0713');
    await waitFor(sub, /^\[3\] md\.EURUSD: 1\.0713$/m);
    const js = start(['sub', 'md.EURUSD', '--snapshot', '--json', '--count', '1', '--server', b.url]);
    expect((await js.exited).code).toBe(0);
    expect(JSON.parse(js.out.stdout)).toMatchObject({ subject: 'md.EURUSD', payload: '1.0713', seq: 2, snapshot: true });
  });
});
