import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULTS, VERSION, startBroker } from '../../broker/index.js';
import { portOf, useWorld } from '../kit/index.js';

const w = useWorld();

describe('startBroker', () => {
  it('listens on a free port when given port 0 and reports its url as tcp://127.0.0.1:<port>', async () => {
    const b = await w.broker();
    expect(b.url).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    const port = portOf(b);
    expect(port).toBeGreaterThan(0);
    expect(b.urls).toEqual([b.url]);
    // Something really listens there.
    await new Promise<void>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve();
      });
      s.on('error', reject);
    });
  });

  it('two brokers started with port 0 get different ports', async () => {
    const a = await w.broker();
    const b = await w.broker();
    expect(portOf(a)).not.toBe(portOf(b));
  });

  it('tells clients its limits and identity in INFO', async () => {
    const b = await w.broker({ name: 'edge-1', maxPayload: 4096, maxSubscriptions: 7, pingIntervalMs: 0 });
    const bus = await w.connect(b.url);
    expect(bus.info).toMatchObject({
      serverName: 'edge-1',
      serverId: b.broker.serverId,
      version: VERSION,
      proto: 1,
      maxPayload: 4096,
      maxSubscriptions: 7,
      maxHeaders: DEFAULTS.maxHeaders,
      maxPending: DEFAULTS.maxPending,
      pingIntervalMs: 0,
    });
    expect(typeof bus.info!.clientId).toBe('number');
  });

  it('gives each connection its own client id and counts connections', async () => {
    const b = await w.broker();
    const c1 = await w.connect(b.url);
    const c2 = await w.connect(b.url);
    expect(c1.info!.clientId).not.toBe(c2.info!.clientId);
    expect(b.broker.counters.connectionsTotal).toBe(2);
    expect(b.broker.sessions.size).toBe(2);
  });

  it('rejects a port that is already in use', async () => {
    const a = await w.broker();
    await expect(startBroker({ host: '127.0.0.1', port: portOf(a), logLevel: 'silent' })).rejects.toThrow(/EADDRINUSE/);
  });

  it('refuses connections beyond maxConnections, and serves the ones it has', async () => {
    const b = await w.broker({ maxConnections: 1 });
    const first = await w.connect(b.url);
    const second = await w.connect(b.url, { reconnect: false }).catch((e: unknown) => e);
    expect(second).toBeInstanceOf(Error);
    expect(String(second)).toMatch(/maximum connections/);
    first.publish('still', 'ok');
    await first.flush();
    expect(first.connected).toBe(true);
  });
});

describe('broker options are validated', () => {
  async function configError(options: Record<string, unknown>): Promise<ConfigError> {
    const err = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', ...options } as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('BAD_CONFIG');
    return err as ConfigError;
  }

  it('an unknown option rejects with ConfigError naming it', async () => {
    expect((await configError({ maxPayloadBytes: 10 })).message).toMatch(/"maxPayloadBytes"/);
  });

  it.each([
    ['maxPayload', -1],
    ['maxPayload', 1.5],
    ['maxPayload', '1024'],
    ['maxPending', Number.NaN],
    ['maxSubscriptions', null],
    ['pingIntervalMs', -100],
    ['handshakeTimeoutMs', Infinity],
    ['host', ''],
    ['host', 127],
    ['name', ''],
    ['port', 70_000],
    ['port', -1],
    ['port', '7400'],
  ])('option %s = %j rejects with ConfigError naming it', async (key, value) => {
    expect((await configError({ [key]: value })).message).toContain(`"${key}"`);
  });

  it('a log level that pino does not know rejects with ConfigError naming logLevel', async () => {
    expect((await configError({ logLevel: 'loud' })).message).toMatch(/logLevel/);
  });

  it('maxPayload must be at least 1 byte and at most 64 MiB', async () => {
    expect((await configError({ maxPayload: 0 })).message).toMatch(/maxPayload/);
    expect((await configError({ maxPayload: 64 * 1024 * 1024 + 1 })).message).toMatch(/maxPayload/);
  });

  it('maxPingsOut must be at least 1', async () => {
    expect((await configError({ maxPingsOut: 0 })).message).toMatch(/maxPingsOut/);
  });

  it('a broker with neither a TCP port nor a unix socket is refused', async () => {
    expect((await configError({ port: null })).message).toMatch(/port|unix/);
  });

  it('options that are not an object are refused', async () => {
    await expect(startBroker('fast' as never)).rejects.toBeInstanceOf(ConfigError);
  });

  it('undefined values mean "use the default"', async () => {
    const b = await w.broker({ maxPayload: undefined });
    expect(b.broker.options.maxPayload).toBe(DEFAULTS.maxPayload);
  });
});
