/**
 * The HTTP port with TLS (HTTPS and WSS, uWebSockets.js's SSLApp) and the monitoring
 * credentials (option `monitoring`): /varz, /connz, /subsz, /latency and /metrics answer
 * 401 without the token or a monitoring user's Basic auth, and count it; /healthz stays
 * open; the monitoring token lets a connection read $SYS and nothing else. Real sockets:
 * node:https with the test CA, the `ws` package, the SDK over wss://.
 */
import http from 'node:http';
import https from 'node:https';
import WebSocket from 'ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { StartedBroker } from '../../broker/index.js';
import { hashPassword } from '../../broker/auth/index.js';
import type { ServerError } from '../../client/index.js';
import { describeNeeding, until, useWorld } from '../kit/index.js';
import { makeCerts, opensslProblem, type CertFiles } from './certs.js';

const world = useWorld();
const describeTls = describeNeeding('openssl', opensslProblem());
const CHEAP = { N: 1024, r: 8, p: 1 };

let certs: CertFiles;
beforeAll(() => {
  if (opensslProblem() === null) certs = makeCerts([]);
});
afterAll(() => certs?.remove());

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** GET over http or https (trusting the test CA), with optional headers. */
function get(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const done = (res: http.IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    };
    const req = url.startsWith('https:') ? https.get(url, { headers, ca: certs.read(certs.ca) }, done) : http.get(url, { headers }, done);
    req.on('error', reject);
  });
}

function base(b: StartedBroker, scheme = 'http'): string {
  return `${scheme}://127.0.0.1:${b.broker.httpPort}`;
}

const basic = (user: string, pass: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` });

describeTls('HTTPS and WSS on the HTTP port', () => {
  it('serves the endpoints over HTTPS and hopbus clients over wss://', async () => {
    const b = await world.broker({ httpPort: 0, tls: { cert: certs.serverCert, key: certs.serverKey } });
    expect(b.urls[1]).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/bus$/);
    const health = await get(`${base(b, 'https')}/healthz`);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body).status).toBe('ok');
    // The same port refuses plain HTTP: it speaks TLS only.
    await expect(get(`${base(b)}/healthz`)).rejects.toThrow();
    const tcp = await world.connect(b.url, { tls: { ca: certs.read(certs.ca) }, reconnect: false });
    const wss = await world.connect(b.urls[1]!, { tls: { ca: certs.read(certs.ca) }, reconnect: false });
    const got: string[] = [];
    wss.subscribe('w', (m) => got.push(m.string()));
    await wss.flush();
    tcp.publish('w', 'to the browser side');
    await until(() => got.length === 1, 'tls:// to wss://');
    expect(got).toEqual(['to the browser side']);
    expect(
      b.broker
        .metrics()
        .connections.map((c) => c.transport)
        .sort(),
    ).toEqual(['tls', 'ws']);
  });

  it('opens a WebSocket (the ws package) that trusts the CA, and refuses one that does not', async () => {
    const b = await world.broker({ httpPort: 0, tls: { cert: certs.serverCert, key: certs.serverKey } });
    const url = `wss://127.0.0.1:${b.broker.httpPort}/bus`;
    const ok = new WebSocket(url, { ca: certs.read(certs.ca) });
    await new Promise<void>((resolve, reject) => {
      ok.once('open', () => resolve());
      ok.once('error', reject);
    });
    ok.close();
    const bad = new WebSocket(url, { ca: certs.read(certs.otherCa) });
    const err = await new Promise<Error>((resolve) => bad.once('error', resolve));
    expect(err.message).toMatch(/self-signed|unable to verify|certificate/i);
  });

  it('keeps the HTTP port plain with tls.http false', async () => {
    const b = await world.broker({ httpPort: 0, tls: { cert: certs.serverCert, key: certs.serverKey, http: false } });
    expect((await get(`${base(b)}/healthz`)).status).toBe(200);
    expect(b.urls[1]).toMatch(/^ws:\/\//);
  });
});

describeTls('monitoring credentials', () => {
  it('answers 401 without the token or with a wrong one, 200 with it (Bearer or ?token=); /healthz stays open', async () => {
    const b = await world.broker({ httpPort: 0, monitoring: { token: hashPassword('mon-secret', CHEAP) } });
    const u = base(b);
    for (const p of ['/varz', '/connz', '/subsz', '/latency', '/metrics']) {
      const none = await get(u + p);
      expect(none.status, p).toBe(401);
      expect(none.headers['www-authenticate']).toBe('Bearer realm="hopbus"');
      expect((await get(u + p, { Authorization: 'Bearer wrong' })).status, p).toBe(401);
      expect((await get(u + p, { Authorization: 'Bearer mon-secret' })).status, p).toBe(200);
    }
    expect((await get(`${u}/varz?token=mon-secret`)).status).toBe(200);
    expect((await get(`${u}/varz?token=nope`)).status).toBe(401);
    expect((await get(`${u}/healthz`)).status).toBe(200);
    expect((await get(`${u}/`)).status).toBe(200);
    expect(b.broker.counters.monitorAuthFailures).toBe(11);
    const metrics = await get(`${u}/metrics`, { Authorization: 'Bearer mon-secret' });
    expect(metrics.body).toMatch(/^hopbus_monitor_auth_failures_total 11$/m);
  });

  it('takes HTTP Basic auth of a user listed in monitoring.users, not of other users', async () => {
    const b = await world.broker({
      httpPort: 0,
      users: [
        { user: 'ops', password: hashPassword('ops-pass', CHEAP) },
        { user: 'trader', password: 'trader-pass' },
      ],
      monitoring: { users: ['ops'] },
    });
    const u = base(b);
    const none = await get(`${u}/varz`);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Basic realm="hopbus"/);
    expect((await get(`${u}/varz`, basic('ops', 'ops-pass'))).status).toBe(200);
    expect((await get(`${u}/varz`, basic('ops', 'wrong'))).status).toBe(401);
    expect((await get(`${u}/varz`, basic('trader', 'trader-pass'))).status).toBe(401);
    expect(b.broker.counters.monitorAuthFailures).toBe(3);
  });

  it('lets the monitoring token connect to read $SYS, and nothing else, where connections need credentials', async () => {
    const b = await world.broker({
      httpPort: 0,
      monitorIntervalMs: 50,
      users: [{ user: 'alice', password: 'a' }],
      monitoring: { token: 'mon-secret' },
    });
    const dash = await world.connect(b.urls[1]!, { token: 'mon-secret', reconnect: false });
    const errors: ServerError[] = [];
    dash.on('error', (e) => errors.push(e as ServerError));
    let stats = 0;
    dash.subscribe('$SYS.stats', () => stats++);
    await until(() => stats > 0, 'a $SYS.stats report');
    dash.publish('orders.new', 'x');
    await until(() => errors.length === 1, 'the refusal');
    expect(errors[0]!.message).toMatch(/Permissions Violation for Publish to "orders.new"/);
  });

  it('refuses monitoring.users that are not password users, and an empty monitoring option', async () => {
    await expect(world.broker({ monitoring: { users: ['ghost'] } })).rejects.toThrow(/"monitoring.users" names "ghost"/);
    await expect(world.broker({ monitoring: {} })).rejects.toThrow(/needs a "token" or "users"/);
    await expect(world.broker({ monitoring: { token: 'x', realm: 'y' } as never })).rejects.toThrow(/unknown key "realm"/);
  });
});
