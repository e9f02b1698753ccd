/**
 * A client in another language: the official NATS C client (Debian's libnats-dev),
 * built here from test/fixtures/nats-c-client.c with cc, publishing and subscribing
 * through hopbus beside a hopbus SDK client, both directions, and request/reply.
 * Skips loudly (test/kit/guards.ts) where cc or libnats is missing; .ci/run installs
 * libnats-dev and then requires it.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import type { Msg } from '../../client/index.js';
import { describeNeeding, until, useWorld } from '../kit/index.js';

const SOURCE = fileURLToPath(new URL('../fixtures/nats-c-client.c', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-nats-c-'));
const BINARY = path.join(dir, 'nats-c-client');

/** null when the C client builds here (cc and libnats-dev), else why not. */
function buildProblem(): string | null {
  try {
    execFileSync('cc', ['-O1', '-o', BINARY, SOURCE, '-lnats'], { stdio: 'pipe' });
    return null;
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer };
    if (e.code === 'ENOENT') return 'no C compiler (cc) on this machine';
    const first = (e.stderr?.toString() ?? String(err)).split('\n').find((l) => l.trim() !== '') ?? 'cc failed';
    return `cannot build test/fixtures/nats-c-client.c with -lnats (apt-get install libnats-dev): ${first}`;
  }
}

const problem = buildProblem();
const world = useWorld();

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describeNeeding('libnats', problem)('the NATS C client (libnats) through hopbus', () => {
  it('publishes to and receives from a hopbus SDK client, and makes requests both answered and unanswered', async () => {
    const b = await world.broker({ natsPort: 0 });
    const hb = await world.connect(b.url, { name: 'hopbus-side' });
    const N = 200;
    const fromC: Msg[] = [];
    hb.subscribe('c.out', (m) => void fromC.push(m));
    hb.subscribe('hb.svc', (m) => m.respond(`pong:${m.string()}`));
    await hb.flush();

    const proc = spawn(BINARY, [`nats://127.0.0.1:${b.broker.natsPort}`, String(N)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    let code: number | null = null;
    const exited = new Promise<void>((resolve) =>
      proc.on('exit', (c) => {
        code = c;
        resolve();
      }),
    );
    try {
      await until(() => out.includes('ready\n') || code !== null, `the C client's "ready" (stdout ${out}, stderr ${err})`);
      // The C client says who it is in CONNECT.
      expect([...b.broker.natsSessions].map((s) => s.client.lang)).toEqual(['C']);
      for (let i = 0; i < N; i++) hb.publish('c.in', `hb-${i}`, i === 0 ? { headers: { 'X-From': 'hopbus' } } : undefined);
      await hb.flush();
      await exited;
    } finally {
      proc.kill();
    }
    expect({ code, err }).toEqual({ code: 0, err: '' });
    expect(out).toContain('reply: pong:ping\n');
    expect(out).toContain('no responders: yes\n');
    expect(out).toContain(`got ${N} last=hb-${N - 1} header=hopbus\n`);
    await until(() => fromC.length === N, 'every message from the C client at the hopbus subscriber');
    expect(fromC.map((m) => m.string())).toEqual(Array.from({ length: N }, (_, i) => `c-${i}`));
    expect(fromC[0]!.headers).toEqual({ Lang: 'c' });
  });
});
