/**
 * The order rule of snapshot subscriptions, property-based: random interleavings of
 * publishes on a few subjects with snapshot subscriptions arriving mid-stream (on new and
 * on busy connections, literal and wildcard patterns), over real TCP connections to a
 * broker whose small high-water mark makes images go out in many chunks between live
 * messages. Per subscription and subject, what arrives must be one unbroken run of
 * sequences ending at the last one published: at most one cached value, first; then
 * live messages n+1, n+2, ...; never a gap, never a duplicate, never older after newer.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Bus, Msg, Subscription } from '../../client/index.js';
import { until, useWorld } from '../kit/index.js';

const world = useWorld();

const SUBJECTS = [
  ...Array.from({ length: 10 }, (_, i) => `md.fx.P${i}`),
  ...Array.from({ length: 20 }, (_, i) => `md.eq.S${i}`),
  ...Array.from({ length: 10 }, (_, i) => `md.rates.S${i}`),
];
const PATTERNS = ['md.>', 'md.fx.*', 'md.eq.S7', 'md.*.S3', '>'];

type Step = { kind: 'pub'; subject: number; n: number } | { kind: 'sub'; pattern: number; fresh: boolean };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('pub' as const), subject: fc.nat(SUBJECTS.length - 1), n: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('sub' as const), pattern: fc.nat(PATTERNS.length - 1), fresh: fc.boolean() }) },
);

interface Watch {
  pattern: string;
  sub: Subscription;
  /** Per subject: the sequences seen, in order, and whether the first was a cached value. */
  seen: Map<string, number[]>;
  problems: string[];
}

function watch(bus: Bus, pattern: string): Watch {
  const w: Watch = { pattern, sub: null as unknown as Subscription, seen: new Map(), problems: [] };
  w.sub = bus.subscribe(
    pattern,
    (m: Msg) => {
      // '>' also hears what is not cached (the broker's $SYS reports, request inboxes): not the rule's business.
      if (!m.subject.startsWith('md.')) return;
      const seq = m.seq;
      if (seq === undefined) return void w.problems.push(`${m.subject}: no sequence`);
      if (m.value !== seq) w.problems.push(`${m.subject}: payload ${String(m.value)} carried seq ${seq}`);
      let list = w.seen.get(m.subject);
      if (list === undefined) w.seen.set(m.subject, (list = []));
      else if (m.snapshot) w.problems.push(`${m.subject}: a cached value after ${list.length} messages`);
      const prev = list[list.length - 1];
      if (prev !== undefined && seq !== prev + 1) w.problems.push(`${m.subject}: ${seq} after ${prev}`);
      list.push(seq);
    },
    { snapshot: true },
  );
  return w;
}

function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

describe('snapshot then live, under random interleavings', () => {
  it('per subject: no gap, no duplicate, the cached value first, ending at the last published', async () => {
    const b = await world.broker({ cache: [{ pattern: 'md.>', maxSubjects: 100, maxBytes: 1 << 20 }], highWaterBytes: 64 });
    const pub = await world.connect(b.url, { name: 'pub' });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 4, maxLength: 30 }), async (steps) => {
        const counts = new Map<string, number>();
        const watches: Watch[] = [];
        const buses: Bus[] = [await world.connect(b.url)];
        // A busy connection: it also has a plain subscription taking the whole stream.
        buses[0]!.subscribe('md.>', () => undefined);
        await buses[0]!.flush();
        // The cache keeps what earlier runs published: sequences go on from there.
        for (const s of SUBJECTS) counts.set(s, ((await pub.last(s)) as number | undefined) ?? 0);
        for (const st of steps) {
          if (st.kind === 'pub') {
            const s = SUBJECTS[st.subject]!;
            for (let i = 0; i < st.n; i++) {
              const k = counts.get(s)! + 1;
              counts.set(s, k);
              pub.publish(s, k);
            }
            // Not flushed: subscriptions arrive while these are in flight; now and then
            // the broker gets to route some before the next step.
            if (st.n % 3 === 0) await new Promise((r) => setImmediate(r));
          } else {
            const bus = st.fresh ? await world.connect(b.url) : buses[buses.length - 1]!;
            if (st.fresh) buses.push(bus);
            watches.push(watch(bus, PATTERNS[st.pattern]!));
          }
        }
        await pub.flush();
        for (const w of watches) {
          const want = SUBJECTS.filter((s) => matches(w.pattern, s) && counts.get(s)! > 0);
          try {
            await until(
              () => w.problems.length > 0 || want.every((s) => (w.seen.get(s)?.at(-1) ?? 0) === counts.get(s)),
              `${w.pattern}: every subject up to its last sequence`,
            );
          } catch (err) {
            const behind = want
              .filter((s) => (w.seen.get(s)?.at(-1) ?? 0) !== counts.get(s))
              .map((s) => `${s} at ${w.seen.get(s)?.join(',') ?? 'nothing'} of ${counts.get(s)}`);
            throw new Error(
              `${(err as Error).message}; behind: ${behind.join('; ')}; snapshotDone ${await Promise.race([w.sub.snapshotDone, Promise.resolve('pending')])}`,
              { cause: err },
            );
          }
          expect(w.problems).toEqual([]);
          expect(await w.sub.snapshotDone).toBeLessThanOrEqual(want.length);
          for (const [s] of w.seen) expect(matches(w.pattern, s)).toBe(true);
        }
        for (const bus of buses) await bus.close();
      }),
      { numRuns: 60 },
    );
    expect(b.broker.counters.slowConsumers).toBe(0);
  }, 120_000);

  it('with a cache that evicts (12 subjects kept of 40): no duplicate, nothing older after newer, a cached value only first, ending at the last published', async () => {
    // Evictions hand entries to new subjects mid-image and restart a subject's sequence,
    // so the rule is checked on the payloads (a per-subject count the publisher keeps).
    const b = await world.broker({ cache: [{ pattern: 'md.>', maxSubjects: 12, maxBytes: 1 << 20 }], highWaterBytes: 64 });
    const pub = await world.connect(b.url, { name: 'pub' });
    const counts = new Map<string, number>(SUBJECTS.map((s) => [s, 0]));
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 4, maxLength: 30 }), async (steps) => {
        const watches: { pattern: string; sub: Subscription; seen: Map<string, number[]>; problems: string[] }[] = [];
        const buses: Bus[] = [];
        for (const st of steps) {
          if (st.kind === 'pub') {
            const s = SUBJECTS[st.subject]!;
            for (let i = 0; i < st.n; i++) {
              const k = counts.get(s)! + 1;
              counts.set(s, k);
              pub.publish(s, k);
            }
            if (st.n % 3 === 0) await new Promise((r) => setImmediate(r));
          } else {
            const bus = st.fresh || buses.length === 0 ? await world.connect(b.url) : buses[buses.length - 1]!;
            if (bus !== buses[buses.length - 1]) buses.push(bus);
            const w = { pattern: PATTERNS[st.pattern]!, sub: null as unknown as Subscription, seen: new Map<string, number[]>(), problems: [] as string[] };
            w.sub = bus.subscribe(
              w.pattern,
              (m: Msg) => {
                if (!m.subject.startsWith('md.')) return;
                const k = m.value as number;
                let list = w.seen.get(m.subject);
                if (list === undefined) w.seen.set(m.subject, (list = []));
                else if (m.snapshot) w.problems.push(`${m.subject}: a cached value after ${list.length} messages`);
                const prev = list[list.length - 1];
                if (prev !== undefined && k <= prev) w.problems.push(`${m.subject}: ${k} after ${prev}`);
                list.push(k);
              },
              { snapshot: true },
            );
            watches.push(w);
          }
        }
        await pub.flush();
        for (const w of watches) {
          // Every subject published after the subscription is heard up to its last value;
          // one published only before may have been evicted (then it is simply not heard).
          await w.sub.snapshotDone;
          await until(
            () => w.problems.length > 0 || [...w.seen].every(([s, list]) => list[list.length - 1] === counts.get(s)),
            `${w.pattern}: every subject heard up to its last value`,
          );
          expect(w.problems).toEqual([]);
          for (const [s] of w.seen) expect(matches(w.pattern, s)).toBe(true);
        }
        for (const bus of buses) await bus.close();
      }),
      { numRuns: 60 },
    );
    expect(b.broker.cache.stats().evictions).toBeGreaterThan(0);
    expect(b.broker.counters.slowConsumers).toBe(0);
  }, 120_000);

  describe('a wide image with the walk still far from the end', () => {
    // 2,000 cached subjects and a 64-byte high-water mark: the image takes a turn per
    // value, so what is published meanwhile reaches slots the walk has not visited yet.
    async function setup() {
      const b = await world.broker({ cache: [{ pattern: 'md.>', maxSubjects: 2000, maxBytes: 1 << 24 }], highWaterBytes: 64 });
      const pub = await world.connect(b.url, { name: 'pub' });
      for (let i = 0; i < 2000; i++) pub.publish(`md.S${i}`, 1);
      await pub.flush();
      const bus = await world.connect(b.url, { name: 'late' });
      const seen = new Map<string, { value: number; snapshot: boolean }[]>();
      const sub = bus.subscribe(
        'md.>',
        (m: Msg) => {
          const list = seen.get(m.subject) ?? [];
          list.push({ value: m.value as number, snapshot: m.snapshot === true });
          seen.set(m.subject, list);
        },
        { snapshot: true },
      );
      await until(() => b.broker.cache.stats().imagesPending === 1 && seen.size > 0, 'the image under way');
      return { b, pub, sub, seen };
    }

    it('a subject updated before its turn comes arrives live only, never its cached value after', async () => {
      const { b, pub, sub, seen } = await setup();
      for (let k = 2; k <= 20; k++) pub.publish('md.S1999', k);
      await pub.flush();
      const n = await sub.snapshotDone;
      await until(() => seen.get('md.S1999')?.at(-1)?.value === 20, 'the live messages');
      expect(seen.get('md.S1999')).toEqual(Array.from({ length: 19 }, (_, i) => ({ value: i + 2, snapshot: false })));
      expect(n).toBe(1999);
      expect(b.broker.cache.stats().imagesPending).toBe(0);
    });

    it('an entry evicted before its turn and handed to a new subject: the new subject arrives live only, the evicted one not at all', async () => {
      const { pub, sub, seen } = await setup();
      // S0 is the least recently updated now, in the first slot, long visited;
      // touching S0..S1998 again leaves S1999, in the last slot, to be evicted.
      for (let i = 0; i < 1999; i++) pub.publish(`md.S${i}`, 2);
      pub.publish('md.NEW', 7);
      await pub.flush();
      await sub.snapshotDone;
      await until(() => seen.has('md.NEW'), 'md.NEW live');
      await pub.flush();
      expect(seen.get('md.NEW')).toEqual([{ value: 7, snapshot: false }]);
      expect(seen.has('md.S1999')).toBe(false);
      for (let i = 0; i < 1999; i++) {
        const list = seen.get(`md.S${i}`)!;
        expect(list.at(-1)).toEqual({ value: 2, snapshot: false });
        expect(list.filter((x) => x.snapshot).length).toBeLessThanOrEqual(1);
        expect(list.findIndex((x) => x.snapshot)).toBeLessThanOrEqual(0);
      }
    });
  });
});
