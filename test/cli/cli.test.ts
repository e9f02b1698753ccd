/**
 * The hopbus command line, as users run it: real child processes of dist/bin/hopbus.js
 * (build first: npx tsc -p tsconfig.json). Every child is killed after each test.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEAD, READY, broker, cli, expectUsageError, run, sdk, start, useCli, waitFor } from './harness.js';

useCli();

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
    // The CLI subscriber ends when its broker goes away, and says so: exit 1.
    expect(await sub.exited).toEqual({ code: 1, signal: null });
    expect(sub.out.stderr).toMatch(/hopbus: lost the connection to tcp:\/\/127\.0\.0\.1:\d+.* after 0 messages\n$/);
  });

  it('SIGINT shuts down gracefully too', async () => {
    const { proc, url } = await broker();
    await sdk(url);
    proc.child.kill('SIGINT');
    expect(await proc.exited).toEqual({ code: 0, signal: null });
    expect(proc.out.stdout).toContain('"msg":"broker stopped"');
  });

  it('--unix PATH also serves unix://PATH, which pub and sub can use', async () => {
    const sock = path.join(cli.tmp, 'b.sock');
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
    const sock = path.join(cli.tmp, 'cfg.sock');
    const file = path.join(cli.tmp, 'unix-only.json');
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
    ['pub', 'Usage: hopbus pub SUBJECT [DATA] [options]'],
    ['sub', 'Usage: hopbus sub PATTERN [options]'],
    ['req', 'Usage: hopbus req SUBJECT [DATA] [options]'],
    ['reply', 'Usage: hopbus reply SUBJECT [RESPONSE] [options]'],
    ['bench', 'Usage: hopbus bench pub|sub|reqrep SUBJECT [options]'],
    ['ping', 'Usage: hopbus ping [options]'],
    ['context', 'Usage: hopbus context add NAME'],
    ['top', 'Usage: hopbus top [options]'],
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
    for (const cmd of [
      'broker',
      'pub SUBJECT [DATA]',
      'sub PATTERN',
      'req SUBJECT [DATA]',
      'reply SUBJECT',
      'bench pub|sub|reqrep',
      'ping',
      'server check',
      'context',
      'top',
    ]) {
      expect(r.stdout).toContain(cmd);
    }
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
    [['pub'], 'pub needs a SUBJECT'],
    [['pub', 'a'], 'pub needs DATA, or a payload on standard input'],
    [['pub', 'a', 'b', 'c'], 'unexpected argument "c"'],
    [['sub'], 'sub needs one PATTERN'],
    [['req'], 'req needs a SUBJECT'],
    [['reply'], 'reply needs a SUBJECT'],
    [['bench', 'pub'], 'bench needs pub, sub or reqrep, and a SUBJECT'],
    [['bench', 'push', 'x', '-s', DEAD], 'bench needs pub, sub or reqrep, got "push"'],
    [['ping', 'extra'], 'unexpected argument "extra"'],
    [['server', 'start'], 'unknown command "server start"'],
    [['pub', 'a', '{{Nope}}', '-s', DEAD], 'unknown template {{Nope}}'],
    [['pub', 'a', 'b', '-H', 'nocolon', '-s', DEAD], '--header must be KEY:VALUE'],
    [['sub', 'a', '--json', '--raw', '-s', DEAD], '--json and --raw exclude each other'],
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
    const missing = path.join(cli.tmp, 'missing.json');
    expectUsageError(await run(['broker', '--config', missing]), `cannot read config file ${missing}: ENOENT`);
    const bad = path.join(cli.tmp, 'bad.json');
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
      const file = path.join(cli.tmp, 'unknown-key.json');
      fs.writeFileSync(file, JSON.stringify({ port: 0, bogus: 1 }));
      expectUsageError(await run(['broker', '--config', file], { killOn: READY }), 'unknown broker option "bogus"');
    });

    it('a config file with a value of the wrong type', async () => {
      const file = path.join(cli.tmp, 'wrong-type.json');
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
    const file = path.join(cli.tmp, 'null.json');
    fs.writeFileSync(file, 'null');
    expectUsageError(await run(['broker', '--config', file, '--port', '0'], { killOn: READY }), 'must hold a JSON object');
  });
});
