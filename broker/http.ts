/**
 * The broker's HTTP port, served by uWebSockets.js: the monitoring endpoints, the
 * live dashboard, and WebSocket clients at /bus (transports/ws/server.ts). Off
 * unless `httpPort` is set. Every handler answers synchronously from figures the
 * broker already keeps (monitor.ts), so a scrape never waits on the message path.
 *
 *   GET /            the dashboard (dashboard.ts), a hopbus client over /bus
 *   GET /hopbus.js   the browser build of the client SDK (dist/browser/hopbus.js)
 *   GET /healthz /varz /connz /subsz /latency   JSON (docs/MONITORING.md)
 *   GET /metrics     Prometheus text
 *   WS  /bus         the hopbus protocol in binary WebSocket messages
 *
 * With the broker option `tls` (and `tls.http` not false) the port serves HTTPS and WSS
 * (uWebSockets.js's SSLApp, with the same certificate; browsers are not asked for one).
 * With `monitoring`, every JSON endpoint but /healthz, and /metrics, ask for its
 * credentials (broker/auth/monitoring.ts): 401 otherwise, counted.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import uWS from 'uWebSockets.js';
import type { Listener } from '../transports/link.js';
import { wsBehavior } from '../transports/ws/server.js';
import type { Link } from '../transports/link.js';
import { DASHBOARD_HTML } from './dashboard.js';
import { connz, healthz, latencyz, subsz, varz, type Observed } from './endpoints.js';
import { prometheus } from './prometheus.js';
import { ListenError } from '../runtime/errors.js';
import { WebPolicy } from './web.js';
import type { MonitorGuard } from './auth/monitoring.js';
import type { BrokerCounters } from './counters.js';
import type { TlsSettings } from './tls.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/**
 * The browser bundle, built by `npm run build` (scripts/browser.mjs) into dist/browser/:
 * next to this file's folder when running from dist/, under dist/ when from the sources.
 */
const BUNDLE =
  [path.resolve(here, '..', 'browser', 'hopbus.js'), path.resolve(here, '..', 'dist', 'browser', 'hopbus.js')].find((p) => fs.existsSync(p)) ??
  path.resolve(here, '..', 'browser', 'hopbus.js');

type Res = uWS.HttpResponse;

/** The CORS origin to send back: the request's Origin when it is listed in allowedOrigins, else none. */
let corsOrigin = '';

function send(res: Res, status: string, type: string, body: string | Uint8Array): void {
  res.cork(() => {
    res.writeStatus(status).writeHeader('Content-Type', type).writeHeader('Cache-Control', 'no-store');
    if (corsOrigin !== '') res.writeHeader('Access-Control-Allow-Origin', corsOrigin).writeHeader('Vary', 'Origin');
    res.end(body);
  });
}

/**
 * Checks a request against the web policy (broker/web.ts) before its handler runs:
 * refused with 403 and the reason, or let through with the CORS origin set for send().
 */
function guarded(policy: WebPolicy, handler: (res: Res, req: uWS.HttpRequest) => void): (res: Res, req: uWS.HttpRequest) => void {
  return (res, req) => {
    const host = req.getHeader('host');
    const origin = req.getHeader('origin');
    const bad = policy.hostProblem(host) ?? policy.originProblem(origin, host);
    corsOrigin = bad === null && origin !== '' && policy.listed(origin) ? origin : '';
    try {
      if (bad !== null) send(res, '403 Forbidden', 'text/plain', `${bad}\n`);
      else handler(res, req);
    } finally {
      corsOrigin = '';
    }
  };
}

/**
 * Asks a monitoring request for the `monitoring` credentials (a Bearer token, ?token=, or
 * a monitoring user's Basic auth) before `handler`: a 401 that says what is wanted, counted.
 * Headers are read here, synchronously, as uWebSockets.js requires.
 */
function monitored(guard: MonitorGuard | null, counters: BrokerCounters, handler: (res: Res) => void): (res: Res, req: uWS.HttpRequest) => void {
  if (guard === null) return (res) => handler(res);
  return (res, req) => {
    const address = Buffer.from(res.getRemoteAddressAsText()).toString('latin1');
    const why = guard.check(req.getHeader('authorization'), req.getQuery('token') ?? '', address, Date.now());
    if (why === null) {
      handler(res);
      return;
    }
    counters.monitorAuthFailures++;
    res.cork(() => {
      res.writeStatus('401 Unauthorized').writeHeader('Content-Type', 'text/plain').writeHeader('Cache-Control', 'no-store');
      if (guard.challenge !== '') res.writeHeader('WWW-Authenticate', guard.challenge);
      res.end(`${why}\n`);
    });
  };
}

/**
 * uWebSockets.js's SSLApp reads its certificate and key from files: those given as PEM
 * text are written to a private temporary directory (mode 0700) for the moment the app
 * is made, then removed.
 */
function sslApp(t: TlsSettings): uWS.TemplatedApp {
  let dir: string | null = null;
  const file = (name: string, given: string | null, pem: Buffer): string => {
    if (given !== null) return given;
    dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-https-'));
    const f = path.join(dir, name);
    fs.writeFileSync(f, pem, { mode: 0o600 });
    return f;
  };
  try {
    return uWS.SSLApp({ cert_file_name: file('cert.pem', t.files.cert, t.cert), key_file_name: file('key.pem', t.files.key, t.key) });
  } finally {
    if (dir !== null) fs.rmSync(dir, { recursive: true, force: true });
  }
}

function json(res: Res, body: unknown): void {
  send(res, '200 OK', 'application/json', JSON.stringify(body, null, 2));
}

function formatHost(h: string): string {
  return h.includes(':') ? `[${h}]` : h;
}

/** Starts the HTTP/WebSocket server on host:port; the listener's url is the ws:// address of /bus. */
/** What the HTTP port needs of the broker: what the endpoints read, and the way in for WebSocket links. */
export interface HttpHost extends Observed {
  readonly accept: (link: Link) => void;
  readonly maxFrame: number;
  httpPort: number | null;
  readonly counters: BrokerCounters;
}

export function listenHttp(broker: HttpHost, host: string, port: number): Promise<Listener> {
  const o = broker.options;
  const secure = o.tls !== null && o.tls.http;
  const app = secure ? sslApp(o.tls!) : uWS.App();
  const policy = new WebPolicy({ host, allowedHosts: o.allowedHosts, allowedOrigins: o.allowedOrigins });
  app.ws(
    '/bus',
    wsBehavior(broker.accept, {
      maxFrame: broker.maxFrame,
      maxBackpressure: 2 * o.maxPending + broker.maxFrame + (1 << 20),
      admit: (origin, hostHeader) => policy.hostProblem(hostHeader) ?? policy.originProblem(origin, hostHeader),
    }),
  );
  const open = (p: string, handler: (res: Res) => void) => app.get(p, guarded(policy, handler));
  // Monitoring: the web policy first (Host, Origin), then the monitoring credentials.
  const get = (p: string, handler: (res: Res) => void) => app.get(p, guarded(policy, monitored(o.monitoring, broker.counters, handler)));
  const route = (p: string, body: () => unknown, serve = get) =>
    serve(p, (res) => {
      try {
        json(res, body());
      } catch (err) {
        send(res, '500 Internal Server Error', 'text/plain', String((err as Error).message));
      }
    });
  route('/healthz', () => healthz(broker), open);
  route('/varz', () => varz(broker));
  route('/connz', () => connz(broker));
  route('/subsz', () => subsz(broker));
  route('/latency', () => latencyz(broker));
  get('/metrics', (res) => send(res, '200 OK', 'text/plain; version=0.0.4; charset=utf-8', prometheus(broker)));
  open('/', (res) => send(res, '200 OK', 'text/html; charset=utf-8', DASHBOARD_HTML));
  open('/hopbus.js', (res) => {
    let js: Buffer;
    try {
      js = fs.readFileSync(BUNDLE);
    } catch {
      send(res, '404 Not Found', 'text/plain', `the browser bundle ${BUNDLE} is missing: run "npm run build"`);
      return;
    }
    send(res, '200 OK', 'text/javascript; charset=utf-8', js);
  });
  open('/favicon.ico', (res) => void res.cork(() => void res.writeStatus('204 No Content').end()));
  app.any(
    '/*',
    guarded(policy, (res) =>
      send(res, '404 Not Found', 'text/plain', 'not found: try /, /varz, /connz, /subsz, /latency, /metrics, /healthz, or a WebSocket at /bus\n'),
    ),
  );

  return new Promise((resolve, reject) => {
    // Exclusive: uWS listens with SO_REUSEPORT by default, so a second broker on a busy
    // port would start "successfully" and share the port's connections with the first.
    // (The typings lack the (host, port, options, cb) form that the native module takes.)
    const listen = app.listen.bind(app) as unknown as (h: string, p: number, options: number, cb: (s: uWS.us_listen_socket | false) => void) => void;
    listen(host, port, 1 /* ListenOptions.LIBUS_LISTEN_EXCLUSIVE_PORT: the enum is a type only */, (socket) => {
      if (socket === false) {
        reject(new ListenError(`cannot listen for HTTP on ${formatHost(host)}:${port} (in use?)`));
        return;
      }
      const actual = uWS.us_socket_local_port(socket);
      broker.httpPort = actual;
      let closed = false;
      resolve({
        url: `${secure ? 'wss' : 'ws'}://${formatHost(host)}:${actual}/bus`,
        transport: 'ws',
        close: async () => {
          if (closed) return;
          closed = true;
          uWS.us_listen_socket_close(socket);
          // The broker is shutting its sessions down gracefully (flushing what they have
          // queued); once the WebSocket ones are done, close what is left of the app
          // (HTTP keep-alive connections), which would otherwise keep the process alive.
          await new Promise((r) => setImmediate(r));
          await Promise.all([...broker.sessions].filter((s) => s.link.transport === 'ws').map((s) => s.done));
          (app as unknown as { close?: () => void }).close?.();
        },
      });
    });
  });
}
