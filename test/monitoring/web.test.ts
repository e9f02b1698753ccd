/**
 * The HTTP port and its WebSocket refuse what a hostile web page could send through a
 * trader's browser: a WebSocket upgrade or a request from another site's page (Origin),
 * a request for another name (Host: DNS rebinding), and they send no wildcard CORS
 * header. The broker's own pages, programs (no Origin) and listed origins are served.
 */
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { useWorld } from '../kit/index.js';

const w = useWorld();

function get(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens a WebSocket to /bus with these headers: 'open', or the HTTP status it was refused with. */
function upgrade(port: number, headers: Record<string, string>, origin?: string): Promise<'open' | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/bus`, { headers, ...(origin ? { origin } : {}) });
    ws.once('open', () => {
      ws.close();
      resolve('open');
    });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', () => {});
  });
}

describe('the HTTP port against other sites', () => {
  it("a WebSocket from another site is refused with 403; the broker's own pages and programs are served", async () => {
    const b = await w.broker({ httpPort: 0 });
    const port = b.broker.httpPort!;
    expect(await upgrade(port, {}, 'https://evil.example')).toBe(403);
    expect(await upgrade(port, {}, `http://127.0.0.1:${port}`)).toBe('open');
    expect(await upgrade(port, {})).toBe('open'); // no Origin: a program, not a page
    expect(await upgrade(port, {}, `http://localhost:${port}`)).toBe(403); // another origin than the Host it asked
  });

  it('an origin in allowedOrigins may open a WebSocket and read the endpoints, with CORS for it alone', async () => {
    const b = await w.broker({ httpPort: 0, allowedOrigins: ['https://desk.example'] });
    const port = b.broker.httpPort!;
    expect(await upgrade(port, {}, 'https://desk.example')).toBe('open');
    const ok = await get(port, '/varz', { origin: 'https://desk.example' });
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe('https://desk.example');
    const evil = await get(port, '/connz', { origin: 'https://evil.example' });
    expect(evil.status).toBe(403);
    expect(evil.body).toContain('Origin "https://evil.example" may not use this broker');
  });

  it('no wildcard CORS: a plain request gets no Access-Control-Allow-Origin', async () => {
    const b = await w.broker({ httpPort: 0 });
    const r = await get(b.broker.httpPort!, '/varz', {});
    expect(r.status).toBe(200);
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('a request for another host name (DNS rebinding) is refused; allowedHosts adds names', async () => {
    const b = await w.broker({ httpPort: 0 });
    const port = b.broker.httpPort!;
    const rebound = await get(port, '/connz', { host: `evil.example:${port}` });
    expect(rebound.status).toBe(403);
    expect(rebound.body).toContain('Host "evil.example');
    expect((await get(port, '/healthz', { host: `localhost:${port}` })).status).toBe(200);
    expect(await upgrade(port, { host: `evil.example:${port}` })).toBe(403);
    const named = await w.broker({ httpPort: 0, allowedHosts: ['bus.desk.example'] });
    expect((await get(named.broker.httpPort!, '/varz', { host: `bus.desk.example:${named.broker.httpPort}` })).status).toBe(200);
  });

  it('refuses a bad allowedOrigins or allowedHosts option', async () => {
    await expect(w.broker({ httpPort: 0, allowedOrigins: 'https://x' as unknown as string[] })).rejects.toThrow(
      /allowedOrigins" must be an array of non-empty strings/,
    );
    await expect(w.broker({ httpPort: 0, allowedHosts: [''] })).rejects.toThrow(/allowedHosts" must be an array of non-empty strings/);
  });
});
