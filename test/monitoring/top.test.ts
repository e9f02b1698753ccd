/**
 * `hopbus broker --http-port` and `hopbus top`, as users run them: child processes of
 * dist/bin/hopbus.js (build first).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectBroker as connect, type Bus } from '../../client/index.js';
import { dist, until } from '../kit/index.js';

const BIN = dist('bin/hopbus.js'); // built fresh: test/kit/setup.ts refuses a stale dist/
const procs: ChildProcess[] = [];
const buses: Bus[] = [];

beforeAll(() => {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} is missing: run "npm run build" first`);
});

afterEach(async () => {
  await Promise.allSettled(buses.splice(0).map((b) => b.close()));
  for (const p of procs.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

function run(args: string[]): { child: ChildProcess; out: { stdout: string; stderr: string }; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(child);
  const out = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  return { child, out, exited };
}

async function brokerWithHttp(): Promise<{ tcp: string; http: string }> {
  const b = run(['broker', '--port', '0', '--no-nats', '--http-port', '0', '--log-level', 'warn']);
  await until(() => /monitoring: http:\/\/\S+\//.test(b.out.stderr), `the broker's ready lines (got ${JSON.stringify(b.out)})`);
  const tcp = /tcp:\/\/\S+/.exec(b.out.stderr)![0];
  const http = /monitoring: (http:\/\/[^/\s]+)\//.exec(b.out.stderr)![1]!;
  expect(b.out.stderr).toContain(`ws://${http.slice('http://'.length)}/bus`);
  return { tcp, http };
}

describe('hopbus broker --http-port', () => {
  it('prints the monitoring URL and serves /healthz there', async () => {
    const { http } = await brokerWithHttp();
    const r = await fetch(`${http}/healthz`);
    expect(((await r.json()) as { status: string }).status).toBe('ok');
  });

  it('refuses a bad port with a usage error', async () => {
    const p = run(['broker', '--http-port', 'x']);
    expect(await p.exited).toBe(2);
    expect(p.out.stderr).toContain('--http-port must be an integer');
  });
});

describe('hopbus top', () => {
  it('--once prints one frame with rates, latency per hop and the connections, then exits 0', async () => {
    const { tcp, http } = await brokerWithHttp();
    const bus = await connect(tcp, { name: 'top-test-client' });
    buses.push(bus);
    bus.subscribe('x', () => {});
    await bus.flush();
    const p = run(['top', '--once', '--url', http]);
    expect(await p.exited).toBe(0);
    const s = p.out.stdout;
    expect(s).toMatch(/^hopbus top - hopbus [0-9a-f]{16}/);
    expect(s).toContain('connections 1');
    expect(s).toMatch(/rates\s+msgs in\/s/);
    expect(s).toContain('busiest 1 ms');
    for (const hop of ['publisher -> broker', 'broker -> client', 'end to end', 'handler (application)']) expect(s).toContain(hop);
    expect(s).toContain('top-test-client');
    // No screen control in --once output: it is for scripts.
    expect(s).not.toContain('\x1b[');
  });

  it('--help prints usage; bad arguments exit 2; an unreachable broker exits 1', async () => {
    const h = run(['top', '--help']);
    expect(await h.exited).toBe(0);
    expect(h.out.stdout).toContain('Usage: hopbus top');
    const bad = run(['top', '--url', 'ftp://x']);
    expect(await bad.exited).toBe(2);
    expect(bad.out.stderr).toContain('--url must be an http:// URL');
    const dead = run(['top', '--once', '--url', 'http://127.0.0.1:1']);
    expect(await dead.exited).toBe(1);
    expect(dead.out.stderr).toMatch(/^hopbus: http:\/\/127\.0\.0\.1:1\/varz: port 1 is one that HTTP clients refuse to use/);
    // A port where nothing listens: said so.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const free = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const none = run(['top', '--once', '--url', `http://127.0.0.1:${free}`]);
    expect(await none.exited).toBe(1);
    expect(none.out.stderr).toContain(`nothing listens at http://127.0.0.1:${free}`);
  });
});
