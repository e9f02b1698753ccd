/**
 * The client commands beyond the basics, as users run them (real child processes
 * against a real broker process): sub's renderings (--json, --raw, --headers, binary and
 * multi-line payloads, $SYS left out), pub's headers, reply subject, templates and
 * standard input, req's reply headers, reply, ping / server check, bench, contexts and
 * the address precedence, --version on every command.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { until } from '../kit/index.js';
import { DEAD, broker, cli, run, sdk, start, useCli, waitFor } from './harness.js';

useCli();

describe('sub renders what arrives', () => {
  it('--json: one object per message with subject, reply, headers, kind, size and the payload as text, base64 or value', async () => {
    const { url } = await broker();
    const sub = start(['sub', 'j.>', '-s', url, '--json', '-n', '3']);
    await waitFor(sub, /listening on/, 'stderr');
    const bus = await sdk(url);
    bus.publish('j.text', 'hello', { headers: { source: 'desk1' }, reply: 'j.ack' });
    bus.publish('j.bin', Buffer.from([0, 1, 2, 0xff]));
    bus.publish('j.value', { px: 1.5, n: [1, 2] });
    await bus.flush();
    expect(await sub.exited).toEqual({ code: 0, signal: null });
    const lines = sub.out.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ subject: 'j.text', reply: 'j.ack', headers: { source: 'desk1' }, kind: 'utf8', size: 5, payload: 'hello' });
    expect(lines[1]).toMatchObject({ subject: 'j.bin', kind: 'raw', size: 4, payloadBase64: Buffer.from([0, 1, 2, 0xff]).toString('base64') });
    expect(lines[2]).toMatchObject({ subject: 'j.value', kind: 'msgpack', value: { px: 1.5, n: [1, 2] } });
    for (const l of lines) expect(Number.isNaN(Date.parse(l.received as string))).toBe(false);
  });

  it('--raw: only the payload bytes, each followed by a newline', async () => {
    const { url } = await broker();
    const sub = start(['sub', 'r.x', '-s', url, '--raw', '-n', '2']);
    await waitFor(sub, /listening on/, 'stderr');
    const bus = await sdk(url);
    bus.publish('r.x', 'one');
    bus.publish('r.x', 'two');
    await bus.flush();
    expect(await sub.exited).toEqual({ code: 0, signal: null });
    expect(sub.out.stdout).toBe('one\ntwo\n');
  });

  it('text as text, binary and escape sequences as a hex preview, further lines indented, headers with --headers', async () => {
    const { url } = await broker();
    const sub = start(['sub', 't.>', '-s', url, '--headers', '-n', '3']);
    await waitFor(sub, /listening on/, 'stderr');
    const bus = await sdk(url);
    bus.publish('t.multi', 'line one\nline two');
    bus.publish('t.esc', '\u001b[2J wipes the screen');
    bus.publish('t.h', 'x', { headers: { a: '1', b: '2' } });
    await bus.flush();
    expect(await sub.exited).toEqual({ code: 0, signal: null });
    const out = sub.out.stdout;
    expect(out).toContain('[1] t.multi: line one\n    line two\n');
    expect(out).toMatch(/\[2\] t\.esc: <\d+ bytes, not text> 1b 5b 32 4a/);
    expect(out).not.toContain('\u001b');
    expect(out).toContain('[3] t.h: x\n    a: 1\n    b: 2\n');
  });

  it('leaves the broker\'s $SYS subjects out of ">" and shows them when the pattern asks for $SYS', async () => {
    const { url } = await broker();
    const all = start(['sub', '>', '-s', url, '-n', '1']);
    const sys = start(['sub', '$SYS.test', '-s', url, '-n', '1']); // not $SYS.>: the broker's own $SYS.stats would race it
    await waitFor(all, /listening on/, 'stderr');
    await waitFor(sys, /listening on/, 'stderr');
    const bus = await sdk(url);
    bus.publish('$SYS.test', 'internal');
    bus.publish('app.x', 'business');
    await bus.flush();
    expect(await all.exited).toEqual({ code: 0, signal: null });
    expect(all.out.stdout).toBe('[1] app.x: business\n');
    expect(await sys.exited).toEqual({ code: 0, signal: null });
    expect(sys.out.stdout).toBe('[1] $SYS.test: internal\n');
  });
});

describe('pub', () => {
  it('-H headers, --reply, {{Count}} templates and -n reach a subscriber as sent', async () => {
    const { url } = await broker();
    const bus = await sdk(url);
    const got: { data: string; headers?: Record<string, string>; reply: string }[] = [];
    bus.subscribe('p.x', (m) => got.push({ data: m.string(), headers: m.headers, reply: m.reply }));
    await bus.flush();
    const r = await run(['pub', 'p.x', 'n={{Count}}', '-n', '3', '-H', 'source:desk1', '-H', 'k: v w', '--reply', 'p.ack', '-s', url]);
    expect(r).toMatchObject({ code: 0, stdout: 'published 3 messages to "p.x"\n' });
    await until(() => got.length === 3, 'three messages');
    expect(got.map((g) => g.data)).toEqual(['n=1', 'n=2', 'n=3']);
    for (const g of got) expect(g).toMatchObject({ headers: { source: 'desk1', k: 'v w' }, reply: 'p.ack' });
  });

  it('without DATA, publishes standard input as bytes', async () => {
    const { url } = await broker();
    const bus = await sdk(url);
    const got: Buffer[] = [];
    bus.subscribe('p.stdin', (m) => got.push(Buffer.from(m.data)));
    await bus.flush();
    const bytes = Buffer.from([1, 2, 3, 10, 0, 255]);
    const r = await run(['pub', 'p.stdin', '-s', url, '-q'], { stdin: bytes });
    expect(r).toMatchObject({ code: 0, stdout: '' });
    await until(() => got.length === 1, 'the message');
    expect(got[0]!.equals(bytes)).toBe(true);
  });
});

describe('req and reply', () => {
  it("reply echoes a request (payload and headers) and req prints the reply's headers, then its payload", async () => {
    const { url } = await broker();
    const responder = start(['reply', 'svc.echo', '-s', url, '-n', '1']);
    await waitFor(responder, /answering requests on "svc\.echo"/, 'stderr');
    const r = await run(['req', 'svc.echo', 'ping?', '-H', 'trace:42', '-s', url]);
    expect(r).toMatchObject({ code: 0, stdout: 'trace: 42\n\nping?\n' });
    expect(await responder.exited).toEqual({ code: 0, signal: null });
    expect(responder.out.stdout).toContain('[1] svc.echo (reply to ');
  });

  it('reply with a RESPONSE answers with it, templates filled in, and queue members share the requests', async () => {
    const { url } = await broker();
    const a = start(['reply', 'svc.n', 'a{{Count}}', '-q', 'pool', '-s', url, '--quiet']);
    const b = start(['reply', 'svc.n', 'b{{Count}}', '-q', 'pool', '-s', url, '--quiet']);
    await waitFor(a, /answering/, 'stderr');
    await waitFor(b, /answering/, 'stderr');
    const bus = await sdk(url);
    const answers: string[] = [];
    for (let i = 0; i < 6; i++) answers.push((await bus.request('svc.n', 'x')).string());
    expect(answers.every((x) => /^[ab]\d$/.test(x))).toBe(true);
    expect(new Set(answers.map((x) => x[0])).size).toBe(2); // both members answered
  });
});

describe('ping and server check', () => {
  it('exit 0 with "ok <url> <name> <version>: rtt" when the broker answers', async () => {
    const { url } = await broker(['--port', '0', '--name', 'edge-1']);
    for (const args of [['ping'], ['server', 'check']]) {
      const r = await run([...args, '-s', url, '-n', '2']);
      expect(r.code, JSON.stringify(r)).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^ok ${url.replace(/[.]/g, '\\.')} edge-1 \\d+\\.\\d+\\.\\d+: rtt \\d+/\\d+/\\d+ µs\\n$`));
    }
  });

  it('exit 1, saying why, when nothing answers; -q prints nothing', async () => {
    const r = await run(['ping', '-s', DEAD]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^unreachable tcp:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/);
    const q = await run(['ping', '-s', DEAD, '-q']);
    expect(q).toMatchObject({ code: 1, stdout: '', stderr: '' });
  });
});

describe('bench', () => {
  it('sub and pub count every message and report rates; reqrep reports latency percentiles', async () => {
    const { url } = await broker();
    const sub = start(['bench', 'sub', 'b.x', '-c', '2', '-n', '2000', '-s', url, '--json']);
    // Printed once the broker has acknowledged both subscriptions (a flush each).
    await waitFor(sub, /2 subscribers waiting for 2000 messages each/, 'stderr');
    const pub = await run(['bench', 'pub', 'b.x', '-c', '2', '-n', '2000', '--size', '32', '-s', url, '--json']);
    expect(pub.code, pub.stderr).toBe(0);
    const ps = JSON.parse(pub.stdout) as { msgs: number; msgsPerSec: number; rows: unknown[] };
    expect(ps).toMatchObject({ msgs: 2000 });
    expect(ps.rows).toHaveLength(2);
    expect(ps.msgsPerSec).toBeGreaterThan(0);
    expect(await sub.exited).toEqual({ code: 0, signal: null });
    const ss = JSON.parse(sub.out.stdout) as { msgs: number; rows: { msgs: number }[] };
    expect(ss.msgs).toBe(4000);
    expect(ss.rows.map((r) => r.msgs)).toEqual([2000, 2000]);

    const rr = await run(['bench', 'reqrep', 'b.echo', '-c', '2', '-n', '200', '-s', url, '--json', '--csv', path.join(cli.tmp, 'rr.csv')]);
    expect(rr.code, rr.stderr).toBe(0);
    const rs = JSON.parse(rr.stdout) as { msgs: number; latencyUs: Record<string, number> };
    expect(rs.msgs).toBe(200);
    expect(rs.latencyUs.p50).toBeGreaterThan(0);
    expect(rs.latencyUs.max).toBeGreaterThanOrEqual(rs.latencyUs.p99);
    const csv = fs.readFileSync(path.join(cli.tmp, 'rr.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('client,msgs,bytes,seconds,msgs_per_sec,mb_per_sec');
    expect(csv).toHaveLength(3);
  });
});

describe('where a command finds its broker', () => {
  it('contexts: add, ls, select, show, rm; --server wins over HOPBUS_URL, which wins over the context', async () => {
    const { url } = await broker();
    const env = { XDG_CONFIG_HOME: path.join(cli.tmp, 'config'), HOPBUS_URL: '' };
    expect((await run(['context', 'add', 'dead', '--server', DEAD], { env })).code).toBe(0);
    expect((await run(['context', 'add', 'live', '-s', url, '--description', 'the test broker'], { env })).code).toBe(0);
    let ls = await run(['context', 'ls'], { env });
    expect(ls.stdout).toMatch(/^\* dead +tcp:\/\/127\.0\.0\.1:1\n {2}live +tcp:\/\/127\.0\.0\.1:\d+ {2}the test broker\n$/);
    // The selected context (dead) is used...
    expect((await run(['ping', '-q'], { env })).code).toBe(1);
    // ...unless another is named, or HOPBUS_URL or --server say otherwise.
    expect((await run(['ping', '-q', '--context', 'live'], { env })).code).toBe(0);
    expect((await run(['ping', '-q'], { env: { ...env, HOPBUS_CONTEXT: 'live' } })).code).toBe(0);
    expect((await run(['ping', '-q'], { env: { ...env, HOPBUS_URL: url } })).code).toBe(0);
    expect((await run(['ping', '-q', '-s', DEAD], { env: { ...env, HOPBUS_URL: url } })).code).toBe(1);
    expect((await run(['context', 'select', 'live'], { env })).code).toBe(0);
    expect((await run(['ping', '-q'], { env })).code).toBe(0);
    const show = await run(['context', 'show'], { env });
    expect(JSON.parse(show.stdout)).toMatchObject({ name: 'live', selected: true, server: url });
    expect((await run(['context', 'rm', 'dead'], { env })).code).toBe(0);
    ls = await run(['context', 'ls'], { env });
    expect(ls.stdout).not.toContain('dead');
    const missing = await run(['ping', '--context', 'nope'], { env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no context "nope"');
  });
});

describe('--version', () => {
  it('every command prints the version and exits 0', async () => {
    const version = (JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }).version;
    for (const cmd of [[], ['broker'], ['pub'], ['sub'], ['req'], ['reply'], ['bench'], ['ping'], ['context'], ['top']]) {
      const r = await run([...cmd, '--version']);
      expect(r, cmd.join(' ')).toMatchObject({ code: 0, stdout: `hopbus ${version}\n`, stderr: '' });
    }
  });
});
