/**
 * Recording and replay end to end, with real processes and files: a `hopbus broker
 * --journal DIR --record 'md.>'` child records while a publisher streams, is killed with
 * SIGKILL mid-stream, is started again on the same directory and records more; then
 * `hopbus replay` publishes the journal into a fresh broker, where a subscriber sees every
 * recorded message once, in order, with the subject, reply, headers and payload kind it
 * was published with; `--as`, `--subjects` and `--from/--to` (by seq) choose what and
 * under which subject.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from '../../broker/index.js';
import type { Bus, Msg } from '../../client/index.js';
import { openJournal } from '../../journal/index.js';
import { PayloadKind } from '../../transports/protocol/index.js';
import { eventually, until } from '../kit/index.js';
import { broker, cli, run, sdk, useCli, waitFor } from '../cli/harness.js';

useCli();

interface Sent {
  subject: string;
  reply: string;
  headers: Record<string, string> | undefined;
  kind: number;
  value: unknown;
}

/** Message i of phase `tag`: a subject among five, each payload kind in turn, some headers and replies. */
function message(tag: string, i: number): Sent {
  const kind = i % 3 === 0 ? PayloadKind.UTF8 : i % 3 === 1 ? PayloadKind.RAW : PayloadKind.MSGPACK;
  const value = kind === PayloadKind.UTF8 ? `${tag}${i}` : kind === PayloadKind.RAW ? new Uint8Array(Buffer.from(`${tag}${i}`)) : { tag, i };
  return {
    subject: `md.S${i % 5}`,
    reply: i % 10 === 0 ? `replies.${tag}.${i}` : '',
    headers: i % 4 === 0 ? { tag, i: String(i) } : undefined,
    kind,
    value,
  };
}

function publish(bus: Bus, m: Sent): void {
  bus.publish(m.subject, m.value, m.reply !== '' || m.headers !== undefined ? { ...(m.reply ? { reply: m.reply } : {}), headers: m.headers } : undefined);
}

/** What a subscriber saw, in the shape of Sent (subject as received). */
function seen(msg: Msg): Sent {
  const value = msg.kind === PayloadKind.RAW ? new Uint8Array(msg.data) : msg.value;
  return { subject: msg.subject, reply: msg.reply, headers: msg.headers, kind: msg.kind, value };
}

async function varzJournal(http: string): Promise<{ writtenSeq: number; appended: number }> {
  const v = (await (await fetch(`${http}/varz`)).json()) as { journal: { writtenSeq: number; appended: number } };
  return v.journal;
}

async function recordingBroker(dir: string): Promise<{ url: string; http: string; proc: Awaited<ReturnType<typeof broker>>['proc'] }> {
  const b = await broker(['--port', '0', '--no-nats', '--http-port', '0', '--journal', dir, '--record', 'md.>']);
  const http = (await waitFor(b.proc, /^monitoring: (http:\/\/\S+)\//m, 'stderr'))[1]!;
  return { url: b.url, http, proc: b.proc };
}

let dir = '';
/** Every message the journal must hold, in seq order (seq = index + 1). */
const expected: Sent[] = [];
let target: StartedBroker;

/** Subscribes on the fresh broker, runs `hopbus replay ARGS` into it, and returns what arrived. */
async function replayInto(pattern: string, args: string[], count: number): Promise<{ got: Sent[]; stdout: string }> {
  const bus = await sdk(target.url, 'counter');
  const got: Sent[] = [];
  bus.subscribe(pattern, (m) => void got.push(seen(m)));
  await bus.flush();
  const r = await run(['replay', '--dir', dir, '-s', target.url, ...args], { ms: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  await until(() => got.length >= count, `${count} replayed messages on ${pattern} (have ${got.length})`);
  // Nothing more: a round trip through the broker after the replay's own final flush.
  await bus.flush();
  expect(got.length).toBe(count);
  return { got, stdout: r.stdout };
}

beforeAll(() => {
  dir = path.join(cli.tmp, 'journal');
});

afterAll(async () => {
  await target?.close();
});

describe('recording through a SIGKILL and a restart, then replay', () => {
  it('keeps a gap-free prefix of the stream when the broker is killed mid-stream, and goes on after a restart', async () => {
    // Phase 1: stream until at least 1000 recorded messages are on disk, then SIGKILL.
    const a = await recordingBroker(dir);
    const pub = await sdk(a.url, 'streamer');
    pub.on('error', () => {}); // the broker dies under it
    const sent: Sent[] = [];
    let streaming = true;
    const stream = (async () => {
      for (let i = 0; streaming && i < 200_000; i++) {
        const m = message('a', i);
        publish(pub, m);
        sent.push(m);
        if (i % 7 === 0) pub.publish('other.subject', `not recorded ${i}`);
        if (i % 200 === 199) await pub.flush();
      }
    })().catch(() => {});
    await eventually(
      () => varzJournal(a.http),
      (j) => j.writtenSeq >= 1000,
      'the first broker to have written 1000 records',
      30_000,
    );
    a.proc.child.kill('SIGKILL');
    expect((await a.proc.exited).signal).toBe('SIGKILL');
    streaming = false;
    await stream;
    await pub.close().catch(() => {});

    const afterKill = openJournal(dir).lastSeq();
    expect(afterKill).toBeGreaterThanOrEqual(1000);
    expect(afterKill).toBeLessThanOrEqual(sent.length);
    expected.push(...sent.slice(0, afterKill));

    // Phase 2: a new broker on the same directory recovers it and records after the last whole record.
    const b = await recordingBroker(dir);
    const pub2 = await sdk(b.url, 'streamer2');
    for (let i = 0; i < 500; i++) {
      const m = message('b', i);
      publish(pub2, m);
      expected.push(m);
    }
    await pub2.flush();
    await eventually(
      () => varzJournal(b.http),
      (j) => j.writtenSeq >= expected.length,
      'the second broker to have written its records',
    );
    b.proc.child.kill('SIGTERM');
    expect((await b.proc.exited).code).toBe(0);

    const seqs: number[] = [];
    openJournal(dir).forEach({}, (r) => void seqs.push(r.seq));
    expect(seqs.length).toBe(expected.length);
    expect(seqs.every((s, i) => s === i + 1)).toBe(true);
    target = await startBroker({ port: 0, logLevel: 'silent' });
  }, 90_000);

  it('replays every message once, in order, with its subject, reply, headers and payload kind', async () => {
    const { got, stdout } = await replayInto('md.>', ['--speed', 'max'], expected.length);
    expect(got).toEqual(expected);
    expect(stdout).toMatch(new RegExp(`^replayed ${expected.length} messages \\(seq 1\\.\\.${expected.length}\\) in \\d+\\.\\d{3} s \\(\\d+ msg/s\\)$`, 'm'));
  }, 60_000);

  it('--as PREFIX publishes under PREFIX.<subject>', async () => {
    const { got } = await replayInto('rp.>', ['--as', 'rp'], expected.length);
    expect(got).toEqual(expected.map((m) => ({ ...m, subject: `rp.${m.subject}` })));
  }, 60_000);

  it('--subjects replays only the matching subjects', async () => {
    const want = expected.filter((m) => m.subject === 'md.S1' || m.subject === 'md.S3');
    const { got } = await replayInto('md.>', ['--subjects', 'md.S1', '--subjects', 'md.S3'], want.length);
    expect(got).toEqual(want);
  }, 60_000);

  it('--from and --to by seq replay that range, inclusive', async () => {
    const from = expected.length - 600; // across the restart
    const to = expected.length - 100;
    const { got, stdout } = await replayInto('md.>', ['--from', String(from), '--to', String(to)], to - from + 1);
    expect(got).toEqual(expected.slice(from - 1, to));
    expect(stdout).toContain(`(seq ${from}..${to})`);
  }, 60_000);

  it('refuses what it cannot use, as a usage error', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['replay'], /replay needs --dir DIR/],
      [['replay', '--dir', path.join(cli.tmp, 'nope')], /no such directory/],
      [['replay', '--dir', dir, '--speed', '0'], /--speed must be max or a number above 0/],
      [['replay', '--dir', dir, '--from', 'yesterday'], /--from must be a SEQ .* or a TIME/],
      [['replay', '--dir', dir, '--as', 'a..b'], /--as must be a subject prefix/],
      [['replay', '--dir', dir, '--subjects', 'md..x'], /not a valid subject pattern/],
    ];
    for (const [args, re] of cases) {
      const r = await run([...args, '-s', target.url]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(re);
    }
    const help = await run(['replay', '--help']);
    expect(help.code).toBe(0);
    for (const f of ['--dir', '--from', '--to', '--subjects', '--speed', '--as', '--server']) expect(help.stdout).toContain(f);
    const main = await run(['--help']);
    expect(main.stdout).toMatch(/^ {2}replay --dir DIR {2,}\S/m);
  }, 60_000);
});
