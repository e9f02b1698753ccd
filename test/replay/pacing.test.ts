/**
 * The pace of a replay (client/replay.ts, `hopbus replay --speed`): at speed N each message
 * is due at the recorded time since the first one divided by N, checked on a FakeClock;
 * `max` sets no timer at all; through the CLI, a broker that records the replay sees the
 * recorded gaps again (compared by the recorded times of both journals, not the wall
 * clock); and `max` flushes as it goes, so a connection with a small pending limit replays
 * megabytes without refusing a publish or losing a message.
 */
import { describe, expect, it } from 'vitest';
import { startBroker } from '../../broker/index.js';
import { connectBroker, replay } from '../../client/index.js';
import { JournalWriter, openJournal, recordSource } from '../../journal/index.js';
import { FakeClock } from '../../runtime/clock.js';
import { tick, until } from '../kit/index.js';
import { run, useCli } from '../cli/harness.js';
import { tmpDir } from '../journal/helpers.js';

useCli();

const MS = 1_000_000;

/** A journal whose records were received at these times (ms after the first), on one anchor (wall 0 = mono 0). */
async function journalAt(dir: string, timesMs: number[], payload = (i: number) => `m${i}`): Promise<void> {
  const w = await JournalWriter.open({ dir, fsync: 'none', wallClock: () => 0, monoClock: () => 0, onEvent: () => {} });
  const t0 = 5000 * MS;
  timesMs.forEach((t, i) => w.append(recordSource(`md.S${i}`, payload(i)), t0 + t * MS));
  await w.close();
}

/** Replays on a FakeClock, advancing it only while the replay waits on a timer; returns each publish's time since the first. */
async function pacedTimes(dir: string, speed: number | 'max'): Promise<{ times: number[]; timers: number }> {
  const b = await startBroker({ port: 0, logLevel: 'silent' });
  const bus = await connectBroker(b.url, { reconnect: false });
  const got: string[] = [];
  bus.subscribe('md.>', (m) => void got.push(m.subject));
  await bus.flush();
  try {
    const clock = new FakeClock(0);
    const times: number[] = [];
    let timers = 0;
    let done = false;
    const replayed = replay(dir, bus, { speed, clock, onMessage: () => void times.push(clock.now()) }).finally(() => (done = true));
    while (!done) {
      if (clock.pending > 0) {
        timers++;
        clock.advance(0.5);
      }
      await tick();
    }
    const s = await replayed;
    expect(s.messages).toBe(times.length);
    await until(() => got.length === times.length, 'every replayed message at the subscriber');
    expect(got).toEqual(times.map((_, i) => `md.S${i}`));
    return { times: times.map((t) => t - times[0]!), timers };
  } finally {
    await bus.close();
    await b.close();
  }
}

describe('replay pacing', () => {
  const recorded = [0, 10, 30, 30, 31, 100];

  it('--speed 1 publishes each message at its recorded time since the first', async () => {
    const dir = tmpDir();
    await journalAt(dir, recorded);
    const { times } = await pacedTimes(dir, 1);
    // A message less than 1 ms (a timer's granularity) ahead of its time goes at once: at
    // speed 2 the 30 -> 31 gap is 0.5 ms and leaves with the message before it.
    expect(times).toEqual([0, 10, 30, 30, 31, 100]);
  });

  it('--speed N divides the gaps by N', async () => {
    const dir = tmpDir();
    await journalAt(dir, recorded);
    expect((await pacedTimes(dir, 2)).times).toEqual([0, 5, 15, 15, 15, 50]);
    expect((await pacedTimes(dir, 10)).times).toEqual([0, 1, 3, 3, 3, 10]);
  });

  it('max sets no timer: every message goes at once', async () => {
    const dir = tmpDir();
    await journalAt(dir, recorded);
    const { times, timers } = await pacedTimes(dir, 'max');
    expect(times).toEqual([0, 0, 0, 0, 0, 0]);
    expect(timers).toBe(0);
  });

  it('refuses a speed that is not max or above 0, and an invalid prefix', async () => {
    const dir = tmpDir();
    await journalAt(dir, [0]);
    const bus = { publish: () => {}, flush: async () => {}, pendingBytes: 0 } as unknown as Parameters<typeof replay>[1];
    await expect(replay(dir, bus, { speed: 0 })).rejects.toMatchObject({ code: 'BAD_OPTIONS' });
    await expect(replay(dir, bus, { speed: -1 })).rejects.toMatchObject({ code: 'BAD_OPTIONS' });
    await expect(replay(dir, bus, { as: 'a..b' })).rejects.toMatchObject({ code: 'BAD_OPTIONS' });
  });
});

describe('hopbus replay --speed, seen by a broker that records the replay', () => {
  /** Replays `src` at `speed` into a broker recording md.>, and returns the replayed records' receive times since the first, in ms. */
  async function rerecorded(src: string, speed: string): Promise<number[]> {
    const dst = tmpDir();
    const b = await startBroker({ port: 0, logLevel: 'silent', journal: { dir: dst, subjects: ['md.>'], fsync: 'none' } });
    try {
      const r = await run(['replay', '--dir', src, '--speed', speed, '-s', b.url]);
      expect(r.code, r.stderr).toBe(0);
    } finally {
      await b.close();
    }
    const t: number[] = [];
    openJournal(dst).forEach({}, (rec) => void t.push(rec.timeNs / MS));
    return t.map((x) => x - t[0]!);
  }

  const recorded = [0, 60, 120, 180, 240, 300];

  it('--speed 1 and --speed 3 keep the recorded gaps (divided by 3)', async () => {
    const src = tmpDir();
    await journalAt(src, recorded);
    // A lower bound each: a message is never sent before it is due (the slack covers the
    // first message reaching the broker later than the next ones).
    const slack = 20;
    const at1 = await rerecorded(src, '1');
    expect(at1.length).toBe(recorded.length);
    at1.forEach((t, i) => expect(t, `message ${i} at speed 1`).toBeGreaterThanOrEqual(recorded[i]! - slack));
    const at3 = await rerecorded(src, '3');
    at3.forEach((t, i) => expect(t, `message ${i} at speed 3`).toBeGreaterThanOrEqual(recorded[i]! / 3 - slack));
    // Every gap is kept in order: the replay's receive times ascend with the recorded ones.
    for (let i = 1; i < at1.length; i++) expect(at1[i]!).toBeGreaterThan(at1[i - 1]!);
  }, 30_000);
});

describe('hopbus replay --from/--to by time', () => {
  it('takes an ISO 8601 date or ms since the epoch, inclusive at both ends', async () => {
    // On the wall-0 anchor of journalAt, record i was received at 5000 + t ms after the epoch.
    const src = tmpDir();
    await journalAt(src, [0, 10, 30, 30, 31, 100]);
    const b = await startBroker({ port: 0, logLevel: 'silent' });
    const bus = await connectBroker(b.url, { reconnect: false });
    try {
      const got: string[] = [];
      bus.subscribe('md.>', (m) => void got.push(m.subject));
      await bus.flush();
      const r1 = await run(['replay', '--dir', src, '-s', b.url, '--from', '1970-01-01T00:00:05.010Z', '--to', '5031ms']);
      expect(r1.code, r1.stderr).toBe(0);
      expect(r1.stdout).toContain('replayed 4 messages (seq 2..5)');
      await until(() => got.length === 4, 'the 4 replayed messages');
      expect(got).toEqual(['md.S1', 'md.S2', 'md.S3', 'md.S4']);
    } finally {
      await bus.close();
      await b.close();
    }
  });
});

describe('replay at max speed under a small pending limit', () => {
  it('flushes as it goes: megabytes through a 256 KiB limit, nothing refused, every message delivered in order', async () => {
    const dir = tmpDir();
    const n = 2000;
    const body = 'x'.repeat(4000);
    await journalAt(
      dir,
      Array.from({ length: n }, (_, i) => i * 0.001),
      (i) => `${i}:${body}`,
    );
    const b = await startBroker({ port: 0, logLevel: 'silent' });
    const sub = await connectBroker(b.url, { reconnect: false });
    const pub = await connectBroker(b.url, { reconnect: false, maxPendingBytes: 256 * 1024 });
    try {
      let count = 0;
      let inOrder = true;
      sub.subscribe('md.>', (m) => {
        if (!m.string().startsWith(`${count}:`)) inOrder = false;
        count++;
      });
      await sub.flush();
      const s = await replay(dir, pub, { flushBytes: 128 * 1024 });
      expect(s).toMatchObject({ messages: n, firstSeq: 1, lastSeq: n });
      await until(() => count === n, `${n} messages at the subscriber (have ${count})`);
      expect(inOrder).toBe(true);
    } finally {
      await pub.close();
      await sub.close();
      await b.close();
    }
  }, 30_000);
});
