/**
 * The hopbus command line, as users run it: real child processes of dist/bin/hopbus.js
 * (build first: npx tsc -p tsconfig.json). Every child is killed after each test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectBroker as connect, type Bus } from '../../client/index.js';
import { dist } from '../kit/index.js';

const BIN = dist('bin/hopbus.js'); // built fresh: test/kit/setup.ts refuses a stale dist/
/** A port nobody listens on (so nothing here ever reaches a broker on the default 7400). */
const DEAD = 'tcp://127.0.0.1:1';

interface Proc {
  child: ChildProcess;
  out: { stdout: string; stderr: string };
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running: Proc[] = [];
const buses: Bus[] = [];
let tmp: string;

beforeAll(() => {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} is missing: run "npx tsc -p tsconfig.json" first`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-cli-'));
});

afterEach(async () => {
  await Promise.allSettled(buses.splice(0).map((b) => b.close()));
  const procs = running.splice(0);
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function start(args: string[]): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  /** It did not exit by itself within the bound (or printed `killOn`) and was killed. */
  killed: boolean;
}

/** Runs to exit, bounded: killed after `ms`, or at once when stdout matches `killOn`. */
async function run(args: string[], opts: { ms?: number; killOn?: RegExp } = {}): Promise<Result> {
  const p = start(args);
  let killed = false;
  const kill = () => {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      killed = true;
      p.child.kill('SIGKILL');
    }
  };
  const timer = setTimeout(kill, opts.ms ?? 15_000);
  let poll: NodeJS.Timeout | undefined;
  if (opts.killOn) poll = setInterval(() => opts.killOn!.test(p.out.stdout) && kill(), 10);
  const { code } = await p.exited;
  clearTimeout(timer);
  clearInterval(poll);
  return { code, stdout: p.out.stdout, stderr: p.out.stderr, killed };
}

async function waitFor(p: Proc, re: RegExp, stream: 'stdout' | 'stderr' = 'stdout', ms = 15_000): Promise<RegExpExecArray> {
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

const READY = /^hopbus broker ready: (.+)$/m;

/** Starts `hopbus broker --port 0 ...` and returns it with the URLs from its ready line. */
async function broker(args: string[] = ['--port', '0']): Promise<{ proc: Proc; urls: string[]; url: string }> {
  const proc = start(['broker', '--log-level', 'info', ...args]);
  const urls = (await waitFor(proc, READY))[1]!.trim().split(/\s+/);
  return { proc, urls, url: urls[0]! };
}

async function sdk(url: string, name = 'test'): Promise<Bus> {
  const bus = await connect(url, { name, reconnect: false });
  buses.push(bus);
  return bus;
}

/** A usage error: exit 2, stderr opens with a one-line "hopbus: <reason>", no stack trace, nothing on stdout. */
function expectUsageError(r: Result, reason: RegExp | string): void {
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

describe('hopbus broker', () => {
  it('--port 0 prints "hopbus broker ready: tcp://127.0.0.1:<port>" and serves clients there', async () => {
    const { proc, urls, url } = await broker();
    expect(urls).toHaveLength(1);
    expect(url).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    const port = Number(new URL(url).port);
    expect(port).toBeGreaterThan(0);
    expect(port).not.toBe(7400);
    const bus = await sdk(url);
    expect(bus.info?.serverName).toBe('hopbus');
    expect(proc.out.stdout).toContain('"msg":"broker started"');
  });

  it('SIGTERM with clients connected: exits 0 after "broker stopped"; the clients are let go', async () => {
    const { proc, url } = await broker();
    const bus = await sdk(url);
    const disconnected = new Promise((r) => bus.once('disconnect', r));
    const sub = start(['sub', 'x.>', '-s', url]);
    await waitFor(sub, /listening on "x\.>"/, 'stderr');
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toEqual({ code: 0, signal: null });
    expect(proc.out.stdout).toContain('"msg":"broker stopped"');
    expect(proc.out.stdout).toContain('"signal":"SIGTERM"');
    await disconnected;
    // The CLI subscriber ends when its broker goes away.
    expect(await sub.exited).toEqual({ code: 0, signal: null });
  });

  it('SIGINT shuts down gracefully too', async () => {
    const { proc, url } = await broker();
    await sdk(url);
    proc.child.kill('SIGINT');
    expect(await proc.exited).toEqual({ code: 0, signal: null });
    expect(proc.out.stdout).toContain('"msg":"broker stopped"');
  });

  it('--unix PATH also serves unix://PATH, which pub and sub can use', async () => {
    const sock = path.join(tmp, 'b.sock');
    const { urls } = await broker(['--port', '0', '--unix', sock]);
    expect(urls).toHaveLength(2);
    expect(urls[0]).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(urls[1]).toBe(`unix://${sock}`);
    const sub = start(['sub', 'u.>', '-s', `unix://${sock}`, '-n', '1']);
    await waitFor(sub, /listening on/, 'stderr');
    const pub = await run(['pub', 'u.x', 'over unix', '-s', `unix://${sock}`]);
    expect(pub.code).toBe(0);
    expect(await sub.exited).toEqual({ code: 0, signal: null });
    expect(sub.out.stdout).toBe('[1] u.x: over unix\n');
  });

  it('--config FILE sets broker options (here: unix only, no TCP), and flags override the file', async () => {
    const sock = path.join(tmp, 'cfg.sock');
    const file = path.join(tmp, 'unix-only.json');
    fs.writeFileSync(file, JSON.stringify({ port: null, unix: sock, name: 'from-file', maxPayload: 2048 }));
    const { urls } = await broker(['--config', file, '--max-payload', '4096']);
    expect(urls).toEqual([`unix://${sock}`]);
    const bus = await sdk(`unix://${sock}`);
    expect(bus.info?.serverName).toBe('from-file');
    expect(bus.info?.maxPayload).toBe(4096);
  });
});

describe('hopbus pub / sub / req', () => {
  it('sub prints what pub publishes, and exits after --count messages', async () => {
    const { url } = await broker();
    const sub = start(['sub', 'demo.>', '-s', url, '-n', '3']);
    await waitFor(sub, /listening on "demo\.>"/, 'stderr');
    const pub = await run(['pub', 'demo.hello', 'hi there', '-s', url, '-n', '3']);
    expect(pub).toMatchObject({ code: 0, stdout: 'published 3 messages to "demo.hello"\n', stderr: '' });
    expect(await sub.exited).toEqual({ code: 0, signal: null });
    expect(sub.out.stdout).toBe('[1] demo.hello: hi there\n[2] demo.hello: hi there\n[3] demo.hello: hi there\n');
  });

  it('pub --json sends msgpack, which sub prints as JSON; an SDK subscriber gets the value', async () => {
    const { url } = await broker();
    const bus = await sdk(url);
    const values: unknown[] = [];
    bus.subscribe('j', (m) => values.push(m.value));
    await bus.flush();
    const sub = start(['sub', 'j', '-s', url, '-n', '1']);
    await waitFor(sub, /listening/, 'stderr');
    expect((await run(['pub', 'j', '{"px":1.5,"ok":true}', '--json', '-s', url])).code).toBe(0);
    expect(await sub.exited).toEqual({ code: 0, signal: null });
    expect(sub.out.stdout).toBe('[1] j: {"px":1.5,"ok":true}\n');
    await bus.flush();
    expect(values).toEqual([{ px: 1.5, ok: true }]);
  });

  it('sub --queue: members of a group share the messages', async () => {
    const { url } = await broker();
    const a = start(['sub', 'work', '-s', url, '-q', 'w', '-n', '2']);
    const b = start(['sub', 'work', '-s', url, '-q', 'w', '-n', '2']);
    await waitFor(a, /listening on "work" in queue group "w"/, 'stderr');
    await waitFor(b, /listening on "work" in queue group "w"/, 'stderr');
    expect((await run(['pub', 'work', 'job', '-s', url, '-n', '4'])).code).toBe(0);
    expect(await a.exited).toEqual({ code: 0, signal: null });
    expect(await b.exited).toEqual({ code: 0, signal: null });
    expect(a.out.stdout + b.out.stdout).toBe('[1] work: job\n[2] work: job\n'.repeat(2));
  });

  it('req prints the reply of a responder', async () => {
    const { url } = await broker();
    const responder = await sdk(url, 'responder');
    responder.subscribe('svc.echo', (m) => m.respond(`echo: ${m.string()}`));
    await responder.flush();
    const r = await run(['req', 'svc.echo', 'ping', '-s', url]);
    expect(r).toMatchObject({ code: 0, stdout: 'echo: ping\n', stderr: '' });
  });

  it('req without a responder prints a no-responders error and exits non-zero', async () => {
    const { url } = await broker();
    const r = await run(['req', 'svc.nobody', 'ping', '-s', url, '-t', '10000']);
    expect(r.killed).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toBe('hopbus: no responders: nobody subscribes to "svc.nobody"\n');
    expect(r.stdout).toBe('');
  });

  it('a broker that is not there: exit 1 with a one-line connection error', async () => {
    const r = await run(['pub', 'a', 'b', '-s', DEAD]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^hopbus: could not connect to any server \(tcp:\/\/127\.0\.0\.1:1: .*ECONNREFUSED.*\)\n$/);
  });
});

describe('help', () => {
  it.each([
    ['broker', 'Usage: hopbus broker [options]'],
    ['pub', 'Usage: hopbus pub SUBJECT DATA [options]'],
    ['sub', 'Usage: hopbus sub PATTERN [options]'],
    ['req', 'Usage: hopbus req SUBJECT DATA [options]'],
  ])('%s --help and -h print its usage and exit 0', async (cmd, usage) => {
    for (const flag of ['--help', '-h']) {
      const r = await run([cmd, flag]);
      expect(r).toMatchObject({ code: 0, stderr: '' });
      expect(r.stdout.startsWith(usage)).toBe(true);
      expect(r.stdout).toContain('-h, --help');
    }
  });

  it.each([[[]], [['--help']], [['-h']], [['help']]])('hopbus %j prints the command list and exits 0', async (args) => {
    const r = await run(args);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toContain('Usage: hopbus <command> [options]');
    for (const cmd of ['broker', 'pub SUBJECT DATA', 'sub PATTERN', 'req SUBJECT DATA']) expect(r.stdout).toContain(cmd);
  });
});

describe('bad input: exit 2, one "hopbus: ..." line first, no stack trace', () => {
  it.each([
    [['bogus'], 'unknown command "bogus"'],
    [['broker', '--bogus'], "Unknown option '--bogus'"],
    [['pub', 'a', 'b', '--bogus', '-s', DEAD], "Unknown option '--bogus'"],
    [['sub', 'a', '--bogus', '-s', DEAD], "Unknown option '--bogus'"],
    [['req', 'a', 'b', '--bogus', '-s', DEAD], "Unknown option '--bogus'"],
    [['broker', 'extra'], 'unexpected argument "extra"'],
    [['pub', 'a'], 'pub needs SUBJECT and DATA'],
    [['pub', 'a', 'b', 'c'], 'pub needs SUBJECT and DATA'],
    [['sub'], 'sub needs one PATTERN'],
    [['req', 'a'], 'req needs SUBJECT and DATA'],
    [['broker', '--port', 'abc'], '--port must be an integer >= 0, got "abc"'],
    [['broker', '--port=-1'], '--port must be an integer >= 0, got "-1"'],
    [['broker', '--port'], "Option '--port <value>' argument missing"],
    [['broker', '--max-payload', '0'], '--max-payload must be an integer >= 1, got "0"'],
    [['pub', 'a', 'b', '-n', '0', '-s', DEAD], '--count must be an integer >= 1, got "0"'],
    [['sub', 'a', '-n', 'x', '-s', DEAD], '--count must be an integer >= 1, got "x"'],
    [['pub', 'a', '{nope', '--json', '-s', DEAD], '--json: DATA is not valid JSON'],
  ])('hopbus %j', async (args, reason) => {
    expectUsageError(await run(args), reason);
  });

  it('--config naming a missing file, or a file that is not JSON', async () => {
    const missing = path.join(tmp, 'missing.json');
    expectUsageError(await run(['broker', '--config', missing]), `cannot read config file ${missing}: ENOENT`);
    const bad = path.join(tmp, 'bad.json');
    fs.writeFileSync(bad, '{"port": 0,');
    expectUsageError(await run(['broker', '--config', bad]), `cannot read config file ${bad}: `);
  });

  // BUG 5 (bin/hopbus.ts, the main().catch at the end): only UsageError exits 2. Bad input that is
  // refused further in (ConfigError from broker/config.ts: unknown or mistyped config keys,
  // --port 70000, --log-level nope; UrlError for -s; SubjectError/OptionsError for subjects, patterns
  // and queue names) exits 1, like a runtime failure. And the timeout, subject, pattern and queue
  // are only checked after connecting, so with no broker they are reported as a connection error.
  // Fix: in the catch, `const usage = err instanceof UsageError || err instanceof ConfigError ||
  // err instanceof UrlError || err instanceof SubjectError || err instanceof OptionsError;
  // process.exit(usage ? 2 : 1)`; and before `open(...)` in cmdPub/cmdSub/cmdReq call
  // validateSubject(subject) / validatePattern(pattern) / queueNameProblem(queue), compute
  // int('timeout', ...), and parse the -s URL (parseUrl), throwing UsageError on failure.
  // Remove `.fails` once fixed.
  describe('refused by the broker config or the SDK (today: exit 1)', () => {
    it('a config file with an unknown key', async () => {
      const file = path.join(tmp, 'unknown-key.json');
      fs.writeFileSync(file, JSON.stringify({ port: 0, bogus: 1 }));
      expectUsageError(await run(['broker', '--config', file], { killOn: READY }), 'unknown broker option "bogus"');
    });

    it('a config file with a value of the wrong type', async () => {
      const file = path.join(tmp, 'wrong-type.json');
      fs.writeFileSync(file, JSON.stringify({ port: 0, maxPayload: 'big' }));
      expectUsageError(await run(['broker', '--config', file], { killOn: READY }), 'broker option "maxPayload" must be a non-negative integer, got "big"');
    });

    it('--port out of range, --log-level unknown', async () => {
      expectUsageError(await run(['broker', '--port', '70000'], { killOn: READY }), 'broker option "port" must be an integer from 0 to 65535');
      expectUsageError(await run(['broker', '--port', '0', '--log-level', 'loud'], { killOn: READY }), 'broker option "logLevel" must be one of');
    });

    it('a server address that is not one', async () => {
      expectUsageError(await run(['pub', 'a', 'b', '-s', 'bogus://x']), 'unsupported transport "bogus"');
    });

    it('an invalid subject, pattern, queue group or timeout, with no broker to reach', async () => {
      expectUsageError(await run(['pub', 'a b', 'x', '-s', DEAD]), 'invalid subject "a b"');
      expectUsageError(await run(['sub', 'a..b', '-s', DEAD]), 'invalid pattern "a..b"');
      expectUsageError(await run(['sub', 'a', '-q', 'x.y', '-s', DEAD]), 'invalid queue group');
      expectUsageError(await run(['req', 'a', 'b', '-t', '0', '-s', DEAD]), '--timeout must be an integer >= 1, got "0"');
    });
  });

  it('a config file that does not hold a JSON object', async () => {
    const file = path.join(tmp, 'null.json');
    fs.writeFileSync(file, 'null');
    expectUsageError(await run(['broker', '--config', file, '--port', '0'], { killOn: READY }), 'must hold a JSON object');
  });
});
