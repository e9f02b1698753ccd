/** Helpers for the monitoring suites: the broker's HTTP base URL and JSON fetches. */
import type { StartedBroker } from '../../broker/index.js';

export function httpBase(b: StartedBroker): string {
  if (b.broker.httpPort === null) throw new Error('this broker serves no HTTP');
  return `http://127.0.0.1:${b.broker.httpPort}`;
}

export function wsUrl(b: StartedBroker): string {
  return `ws://127.0.0.1:${b.broker.httpPort}/bus`;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function getJson(b: StartedBroker, path: string): Promise<any> {
  const r = await fetch(httpBase(b) + path);
  if (r.status !== 200) throw new Error(`${path}: HTTP ${r.status}`);
  expectJson(r.headers.get('content-type'));
  return r.json();
}

function expectJson(type: string | null): void {
  if (!type?.startsWith('application/json')) throw new Error(`expected application/json, got ${type}`);
}

export async function getText(b: StartedBroker, path: string): Promise<{ status: number; type: string; body: string }> {
  const r = await fetch(httpBase(b) + path);
  return { status: r.status, type: r.headers.get('content-type') ?? '', body: await r.text() };
}
