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
 */
import fs from 'node:fs';
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
function guarded(policy: WebPolicy, handler: (res: Res) => void): (res: Res, req: uWS.HttpRequest) => void {
  return (res, req) => {
    const host = req.getHeader('host');
    const origin = req.getHeader('origin');
    const bad = policy.hostProblem(host) ?? policy.originProblem(origin, host);
    corsOrigin = bad === null && origin !== '' && policy.listed(origin) ? origin : '';
    try {
      if (bad !== null) send(res, '403 Forbidden', 'text/plain', `${bad}\n`);
      else handler(res);
    } finally {
      corsOrigin = '';
    }
  };
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
}

export function listenHttp(broker: HttpHost, host: string, port: number): Promise<Listener> {
  const app = uWS.App();
  const o = broker.options;
  const policy = new WebPolicy({ host, allowedHosts: o.allowedHosts, allowedOrigins: o.allowedOrigins });
  app.ws(
    '/bus',
    wsBehavior(broker.accept, {
      maxFrame: broker.maxFrame,
      maxBackpressure: 2 * o.maxPending + broker.maxFrame + (1 << 20),
      admit: (origin, hostHeader) => policy.hostProblem(hostHeader) ?? policy.originProblem(origin, hostHeader),
    }),
  );
  const get = (p: string, handler: (res: Res) => void) => app.get(p, guarded(policy, handler));
  const route = (p: string, body: () => unknown) =>
    get(p, (res) => {
      try {
        json(res, body());
      } catch (err) {
        send(res, '500 Internal Server Error', 'text/plain', String((err as Error).message));
      }
    });
  route('/healthz', () => healthz(broker));
  route('/varz', () => varz(broker));
  route('/connz', () => connz(broker));
  route('/subsz', () => subsz(broker));
  route('/latency', () => latencyz(broker));
  get('/metrics', (res) => send(res, '200 OK', 'text/plain; version=0.0.4; charset=utf-8', prometheus(broker)));
  get('/', (res) => send(res, '200 OK', 'text/html; charset=utf-8', DASHBOARD_HTML));
  get('/hopbus.js', (res) => {
    let js: Buffer;
    try {
      js = fs.readFileSync(BUNDLE);
    } catch {
      send(res, '404 Not Found', 'text/plain', `the browser bundle ${BUNDLE} is missing: run "npm run build"`);
      return;
    }
    send(res, '200 OK', 'text/javascript; charset=utf-8', js);
  });
  get('/favicon.ico', (res) => void res.cork(() => void res.writeStatus('204 No Content').end()));
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
        url: `ws://${formatHost(host)}:${actual}/bus`,
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
