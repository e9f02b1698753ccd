/**
 * Replay-then-live: a subscriber asks for every recorded message from a journal sequence
 * (or a time) and then live ones, while a publisher streams, over a real broker with a
 * real journal in a temporary folder. What it gets must be one unbroken run: every
 * message from the start on, once, in order, the replayed ones marked (msg.replayed,
 * msg.seq = the journal's sequence), snapshotDone counting them.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Bus, Msg } from '../../client/index.js';
import { OptionsError } from '../../client/index.js';
import { openJournal } from '../../journal/index.js';
import { sessionOf, tick, until, useWorld } from '../kit/index.js';

const world = useWorld();

interface Got {
  i: number;
  replayed: boolean;
  seq: number | undefined;
}

function collect(into: Got[]): (m: Msg) => void {
  return (m) => into.push({ i: m.value as number, replayed: m.replayed, seq: m.seq });
}

/** Publishes i = from .. to-1 on md.S<i % 3>, yielding now and then so that others run meanwhile. */
async function stream(bus: Bus, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    bus.publish(`md.S${i % 3}`, i);
    if (i % 50 === 49) await tick();
  }
  await bus.flush();
}

function expectUnbroken(got: Got[], first: number, end: number): void {
  expect(got.length).toBe(end - first);
  for (let k = 0; k < got.length; k++) if (got[k]!.i !== first + k) throw new Error(`message ${k}: payload ${got[k]!.i}, expected ${first + k}`);
  // Replayed first, then live, never back.
  const switchAt = got.findIndex((g) => !g.replayed);
  if (switchAt >= 0) expect(got.slice(switchAt).every((g) => !g.replayed)).toBe(true);
}

describe('replay then live', () => {
  it('from a sequence, while the publisher streams: every message once, in order, replayed ones with their journal seq', async () => {
    const dir = world.tmpdir();
    const b = await world.broker({ journal: { dir, subjects: ['md.>'], fsync: 'none' }, highWaterBytes: 4096 });
    const pub = await world.connect(b.url);
    await stream(pub, 0, 3000);
    const bus = await world.connect(b.url);
    const got: Got[] = [];
    const streaming = stream(pub, 3000, 8000);
    // Mid-stream, from journal seq 1 (message 0).
    const sub = bus.subscribe('md.>', collect(got), { from: { seq: 1 } });
    await streaming;
    await until(() => got.length >= 8000, 'every message');
    await bus.flush();
    expectUnbroken(got, 0, 8000);
    const replayed = got.filter((g) => g.replayed);
    expect(replayed.length).toBeGreaterThanOrEqual(3000);
    // The journal numbers every message from 1: message i is seq i + 1.
    expect(replayed.every((g) => g.seq === g.i + 1)).toBe(true);
    expect(await sub.snapshotDone).toBe(replayed.length);
  }, 60_000);

  it('when live messages outgrow their copies during the tail, the tail starts again and the run stays unbroken', async () => {
    const dir = world.tmpdir();
    // Copies are bounded by maxPending (64 KiB here); a burst of 3,000 messages is more.
    const b = await world.broker({ journal: { dir, subjects: ['md.>'], fsync: 'none' }, maxPending: 64 * 1024 });
    const pub = await world.connect(b.url);
    await stream(pub, 0, 1000);
    const recorder = b.broker.recorder!;
    const flush = recorder.flush.bind(recorder);
    let bursts = 0;
    // The first tail's flush: a burst arrives while it waits (the broker routes it meanwhile).
    recorder.flush = async () => {
      await flush();
      if (bursts++ === 0) await stream(pub, 1000, 4000);
    };
    const bus = await world.connect(b.url, { name: 'replayer' });
    const got: Got[] = [];
    const sub = bus.subscribe('md.>', collect(got), { from: { seq: 1 } });
    await until(() => sessionOf(b, 'replayer').catchups !== null, 'the catch-up under way');
    const catchUp = sessionOf(b, 'replayer').catchups![0]!;
    await sub.snapshotDone;
    await stream(pub, 4000, 4100);
    await until(() => got.length >= 4100, 'every message');
    expectUnbroken(got, 0, 4100);
    expect(catchUp.restarts).toBe(1);
    expect(bursts).toBe(2); // the tail ran twice
    expect(b.broker.counters.slowConsumers).toBe(0);
  }, 60_000);

  it('property: wherever the subscription arrives in the stream and wherever it starts, the run is unbroken', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1500 }), // messages before the subscription
        fc.integer({ min: 0, max: 1500 }), // messages while it catches up
        fc.double({ min: 0, max: 1, noNaN: true }), // where in the journal as it is then it starts (a start past its end goes live at once)
        fc.constantFrom('md.>', 'md.S1', 'md.*'),
        async (before, during, startAt, pattern) => {
          const startSeq = 1 + Math.floor(startAt * before);
          const dir = world.tmpdir();
          const b = await world.broker({ journal: { dir, subjects: ['md.>'], fsync: 'none' }, highWaterBytes: 2048 });
          const pub = await world.connect(b.url);
          await stream(pub, 0, before);
          const bus = await world.connect(b.url);
          const got: Got[] = [];
          const streaming = stream(pub, before, before + during);
          const sub = bus.subscribe(pattern, collect(got), { from: { seq: startSeq } });
          await streaming;
          await sub.snapshotDone;
          const end = before + during;
          // Message i is journal seq i + 1; the subscription wants those from startSeq on (and, live, every later one) on its subjects.
          const want = Array.from({ length: end }, (_, i) => i).filter((i) => i + 1 >= startSeq && (pattern !== 'md.S1' || i % 3 === 1));
          await until(() => got.length >= want.length, `${want.length} messages`);
          await bus.flush();
          expect(got.map((g) => g.i)).toEqual(want);
          await bus.close();
          await pub.close();
          await b.close();
        },
      ),
      { numRuns: 20 },
    );
  }, 120_000);

  it('from a later sequence, on one subject, and a subject pattern the replay filters on', async () => {
    const dir = world.tmpdir();
    const b = await world.broker({ journal: { dir, subjects: ['md.>'], fsync: 'none' } });
    const pub = await world.connect(b.url);
    await stream(pub, 0, 600);
    const bus = await world.connect(b.url);
    const got: Got[] = [];
    const sub = bus.subscribe('md.S1', collect(got), { from: { seq: 301 } });
    expect(await sub.snapshotDone).toBe(100); // messages 301..599 on md.S1: i % 3 === 1 from 301
    await stream(pub, 600, 900);
    await until(() => got.length === 200, 'the live ones too');
    expect(got.map((g) => g.i)).toEqual(Array.from({ length: 200 }, (_, k) => 301 + 3 * k));
    expect(got.slice(0, 100).every((g) => g.replayed)).toBe(true);
    expect(got.slice(100).some((g) => g.replayed)).toBe(false);
  });

  it('from a time: the messages received at or after it, then live', async () => {
    const dir = world.tmpdir();
    const b = await world.broker({ journal: { dir, subjects: ['md.>'], fsync: 'none' } });
    const pub = await world.connect(b.url);
    await stream(pub, 0, 300);
    await stream(pub, 300, 600);
    // The receive time of message 300 (seq 301), the first of the second batch, as the journal
    // has it; the batch before it arrived at least a round trip (a flush) earlier.
    await b.broker.recorder!.flush();
    let t = 0;
    openJournal(dir).forEach({ from: { seq: 301 }, to: { seq: 301 } }, (r) => void (t = r.timeMs()));
    expect(t).toBeGreaterThan(0);
    t -= 0.001;
    const bus = await world.connect(b.url);
    const got: Got[] = [];
    const sub = bus.subscribe('md.>', collect(got), { from: { time: t } });
    expect(await sub.snapshotDone).toBe(300);
    await stream(pub, 600, 700);
    await until(() => got.length === 400, 'the live ones too');
    expectUnbroken(got, 300, 700);
  });

  it('what the journal holds is what was replayed: the seqs match its records', async () => {
    const dir = world.tmpdir();
    const b = await world.broker({ journal: { dir, subjects: ['md.>'], fsync: 'none' } });
    const pub = await world.connect(b.url);
    await stream(pub, 0, 100);
    const bus = await world.connect(b.url);
    const got: Got[] = [];
    await bus.subscribe('md.S2', collect(got), { from: { seq: 1 } }).snapshotDone;
    await b.broker.recorder!.flush();
    const seqs: number[] = [];
    openJournal(dir).forEach({ subjects: 'md.S2' }, (r) => void seqs.push(r.seq));
    expect(got.map((g) => g.seq)).toEqual(seqs);
  });

  it('is refused plainly without a journal, and with a queue group or a snapshot', async () => {
    const b = await world.broker();
    const bus = await world.connect(b.url);
    expect(() => bus.subscribe('md.>', () => undefined, { from: { seq: 1 } })).toThrow(/no journal to replay from/);
    expect(() => bus.subscribe('md.>', () => undefined, { from: { seq: 1 }, snapshot: true })).toThrow(OptionsError);
    expect(() => bus.subscribe('md.>', () => undefined, { from: { seq: -1 } } as never)).toThrow(/from\.seq" must be a non-negative integer/);
    expect(() => bus.subscribe('md.>', () => undefined, { from: { at: 1 } } as never)).toThrow(/\{ seq \} or \{ time \}/);
  });
});
