/**
 * `hopbus broker` and NATS clients: --nats-port, --no-nats, the default 4222, and the
 * start-up line that says where NATS clients connect. Runs the built CLI (dist/).
 */
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { connectBroker } from '../../client/index.js';
import { dist, until } from '../kit/index.js';

const BIN = dist('bin/hopbus.js');
const running: ChildProcess[] = [];

afterEach(async () => {
  for (const c of running.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      const gone = new Promise((r) => c.once('close', r));
      c.kill('SIGKILL');
      await gone;
    }
  }
});

function start(args: string[]): { out: { stdout: string; stderr: string }; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(child);
  const out = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
  return { out, exited: new Promise((resolve) => child.once('close', (code) => resolve(code))) };
}

const READY = /^hopbus broker ready: .+$/m;

describe('hopbus broker and NATS clients', () => {
  it('--nats-port 0 serves NATS clients on a free port and prints "NATS clients: nats://HOST:PORT"', async () => {
    const p = start(['broker', '--port', '0', '--nats-port', '0', '--log-level', 'warn']);
    await until(() => /^NATS clients: nats:\/\/\S+$/m.test(p.out.stderr), `the NATS line (got ${JSON.stringify(p.out)})`);
    const url = /^NATS clients: (nats:\/\/\S+)$/m.exec(p.out.stderr)![1]!;
    expect(url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    expect(READY.test(p.out.stderr)).toBe(true);
    const port = Number(new URL(url.replace('nats:', 'http:')).port);
    const c = await connect({ servers: `127.0.0.1:${port}`, reconnect: false });
    try {
      await c.flush();
      expect(c.info?.server_name).toBe('hopbus');
    } finally {
      await c.close();
    }
  });

  it('by default it listens on 4222; when 4222 is taken it starts without NATS and says so', async () => {
    // Hold 4222 (or find it held already): either way the broker cannot have it.
    const holder = net.createServer();
    await new Promise<void>((resolve) => {
      holder.once('error', () => resolve());
      holder.listen(4222, '127.0.0.1', () => resolve());
    });
    try {
      const p = start(['broker', '--port', '0', '--log-level', 'warn']);
      await until(() => /^NATS clients: /m.test(p.out.stderr), `the NATS line (got ${JSON.stringify(p.out)})`);
      expect(p.out.stderr).toMatch(/^NATS clients: not served, port 4222 is in use \(choose another with --nats-port P, or --no-nats\)$/m);
      expect(READY.test(p.out.stderr)).toBe(true);
    } finally {
      await new Promise((r) => holder.close(r));
    }
  });

  it('--no-nats: no NATS listener, no NATS line', async () => {
    const p = start(['broker', '--port', '0', '--no-nats', '--log-level', 'info']);
    await until(() => READY.test(p.out.stderr), `the ready line (got ${JSON.stringify(p.out)})`);
    // A round trip through its event loop: the start-up code after the ready line (the signal handlers) has run.
    const bus = await connectBroker(/^hopbus broker ready: (\S+)/m.exec(p.out.stderr)![1]!, { reconnect: false });
    await bus.close();
    // All it prints, up to its graceful exit.
    running.at(-1)!.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(p.out.stderr).not.toMatch(/NATS clients/);
    expect(p.out.stdout).toContain('"natsUrl":null');
  });

  it('--no-nats with --nats-port is a usage error; --help documents both', async () => {
    const bad = start(['broker', '--no-nats', '--nats-port', '4222']);
    expect(await bad.exited).toBe(2);
    expect(bad.out.stderr.split('\n')[0]).toBe('hopbus: --no-nats and --nats-port contradict each other');
    const help = start(['broker', '--help']);
    expect(await help.exited).toBe(0);
    expect(help.out.stdout).toContain('--nats-port P');
    expect(help.out.stdout).toContain('--no-nats');
    expect(help.out.stdout).toContain('default 4222');
  });
});
