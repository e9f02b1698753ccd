/**
 * The CLI as users run it, for the test/cli suites: real child processes of
 * dist/bin/hopbus.js (built fresh: test/kit/setup.ts refuses a stale dist/), killed
 * after each test. Call useCli() once per file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { connectBroker as connect, type Bus } from '../../client/index.js';
import { dist } from '../kit/index.js';

export const BIN = dist('bin/hopbus.js'); // built fresh: test/kit/setup.ts refuses a stale dist/
/** A port nobody listens on (so nothing here ever reaches a broker on the default 7400). */
export const DEAD = 'tcp://127.0.0.1:1';

export interface Proc {
  child: ChildProcess;
  out: { stdout: string; stderr: string };
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running: Proc[] = [];
const buses: Bus[] = [];
/** A temporary folder of this file's tests (set in useCli's beforeAll). */
export const cli = { tmp: '' };

/** Registers the hooks: a temporary folder, and every child and client ended after each test. */
export function useCli(): void {
  beforeAll(() => {
    if (!fs.existsSync(BIN)) throw new Error(`${BIN} is missing: run "npx tsc -p tsconfig.json" first`);
    cli.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-cli-'));
  });
  afterEach(async () => {
    await Promise.allSettled(buses.splice(0).map((b) => b.close()));
    const procs = running.splice(0);
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
  });
  afterAll(() => {
    fs.rmSync(cli.tmp, { recursive: true, force: true });
  });
}

export interface StartOptions {
  /** Extra environment variables (the rest is this process's environment). */
  env?: Record<string, string>;
  /** Bytes written to the child's standard input, which is then closed; without it stdin is /dev/null. */
  stdin?: string | Buffer;
}

export function start(args: string[], opts: StartOptions = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...args], {
    stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
  const out = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  const p = { child, out, exited };
  running.push(p);
  return p;
}

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  /** It did not exit by itself within the bound (or printed `killOn`) and was killed. */
  killed: boolean;
}

/** Runs to exit, bounded: killed after `ms`, or at once when stdout or stderr matches `killOn`. */
export async function run(args: string[], opts: { ms?: number; killOn?: RegExp } & StartOptions = {}): Promise<Result> {
  const p = start(args, opts);
  let killed = false;
  const kill = () => {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      killed = true;
      p.child.kill('SIGKILL');
    }
  };
  const timer = setTimeout(kill, opts.ms ?? 15_000);
  let poll: NodeJS.Timeout | undefined;
  if (opts.killOn) poll = setInterval(() => (opts.killOn!.test(p.out.stdout) || opts.killOn!.test(p.out.stderr)) && kill(), 10);
  const { code } = await p.exited;
  clearTimeout(timer);
  clearInterval(poll);
  return { code, stdout: p.out.stdout, stderr: p.out.stderr, killed };
}

export async function waitFor(p: Proc, re: RegExp, stream: 'stdout' | 'stderr' = 'stdout', ms = 15_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = re.exec(p.out[stream]);
    if (m) return m;
    if (p.child.exitCode !== null || p.child.signalCode !== null) {
      throw new Error(`process exited (${p.child.exitCode ?? p.child.signalCode}) before printing ${re}\nstdout: ${p.out.stdout}\nstderr: ${p.out.stderr}`);
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}\nstdout: ${p.out.stdout}\nstderr: ${p.out.stderr}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const READY = /^hopbus broker ready: (.+)$/m;

/** Starts `hopbus broker --port 0 ...` and returns it with the URLs from its ready line. */
export async function broker(args: string[] = ['--port', '0']): Promise<{ proc: Proc; urls: string[]; url: string }> {
  // No NATS listener unless asked for: the suites run in parallel and 4222 is one port.
  const nats = args.some((a) => a.startsWith('--nats') || a === '--no-nats') ? [] : ['--no-nats'];
  const proc = start(['broker', '--log-level', 'info', ...nats, ...args]);
  const urls = (await waitFor(proc, READY, 'stderr'))[1]!.trim().split(/\s+/);
  return { proc, urls, url: urls[0]! };
}

export async function sdk(url: string, name = 'test'): Promise<Bus> {
  const bus = await connect(url, { name, reconnect: false });
  buses.push(bus);
  return bus;
}

/** A usage error: exit 2, stderr opens with a one-line "hopbus: <reason>", no stack trace, nothing on stdout. */
export function expectUsageError(r: Result, reason: RegExp | string): void {
  const where = JSON.stringify(r);
  expect(r.killed, where).toBe(false);
  expect(r.code, where).toBe(2);
  const first = r.stderr.split('\n')[0]!;
  expect(first, where).toMatch(/^hopbus: \S/);
  if (typeof reason === 'string') expect(first, where).toContain(reason);
  else expect(first, where).toMatch(reason);
  expect(r.stderr, where).not.toMatch(/^\s+at /m);
  expect(r.stdout, where).toBe('');
}
