/**
 * Properties of the hold ring and of the policies over it, against simple reference
 * models (plain arrays of frame copies): any sequence of pushes, conflations, kills and
 * shifts leaves the ring holding exactly what the model holds, with the same byte
 * counts, and never more slabs or pages than what it holds needs; and Outbound, fed any
 * sequence of messages under any policy, keeps within its bound and accounts for every
 * message (delivered, held, dropped or conflated) as the model says.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HoldRing, PAGE_SLOTS, SLOT_BYTES, spanOf } from '../../broker/holdring.js';
import { Outbound, type LossCounters, type OutboundOwner } from '../../broker/policy.js';
import { MSG_HEADER, Op, Policy, msgSize, writeMsgHeader } from '../../transports/protocol/index.js';
import { inprocPair } from '../../transports/inproc.js';

interface Entry {
  slot: number;
  span: number;
  frame: Buffer | null; // null: dead
  subs: object;
  key: string | null;
}

const SUBS = [['a'], ['b'], ['c']];
const KEYS = ['k0', 'k1', 'k2', 'k3'];

type RingOp =
  | { t: 'push'; len: number; seed: number; sid: number; subs: number; key: number | null }
  | { t: 'shift' }
  | { t: 'take'; room: number }
  | { t: 'kill'; which: number };

const opArb: fc.Arbitrary<RingOp> = fc.oneof(
  {
    arbitrary: fc.record({
      t: fc.constant('push' as const),
      len: fc.integer({ min: 12, max: 90 }),
      seed: fc.integer({ min: 0, max: 255 }),
      sid: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 0xffffffff })),
      subs: fc.integer({ min: 0, max: SUBS.length - 1 }),
      key: fc.option(fc.integer({ min: 0, max: KEYS.length - 1 }), { nil: null }),
    }),
    weight: 5,
  },
  { arbitrary: fc.constant({ t: 'shift' as const }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant('take' as const), room: fc.integer({ min: 0, max: 400 }) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('kill' as const), which: fc.nat() }), weight: 1 },
);

function makeFrame(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (seed * 7 + i) & 0xff;
  return b;
}

describe('HoldRing against a model', () => {
  it('holds what the model holds, in order, with its byte counts and conflation index, within slab and page granularity', () => {
    fc.assert(
      fc.property(fc.constantFrom(16, 64, 4096), fc.array(opArb, { maxLength: 300 }), (slab, ops) => {
        const ring = new HoldRing(slab);
        let model: Entry[] = []; // every slot from the head, dead ones included
        let nextSlot = 0;
        for (const op of ops) {
          if (op.t === 'push') {
            const src = makeFrame(op.len, op.seed);
            const copy = Buffer.from(src);
            if (op.sid !== 0) copy.writeUInt32LE(op.sid, 8);
            const subs = SUBS[op.subs]!;
            const key = op.key === null ? null : KEYS[op.key]!;
            const held = key === null ? undefined : model.find((e) => e.key === key && e.frame !== null);
            if (key !== null && held !== undefined) {
              // Conflation, as Outbound does it: in place if it fits, else kill and push.
              const slot = ring.conflatable(key);
              expect(slot).toBe(held.slot);
              if (ring.overwrite(slot, src, 0, op.len, op.sid, subs)) {
                expect(op.len).toBeLessThanOrEqual(held.span);
                held.frame = copy;
                held.subs = subs;
                continue;
              }
              expect(op.len).toBeGreaterThan(held.span);
              ring.kill(slot);
              held.frame = null;
              held.key = null;
            } else if (key !== null) {
              expect(ring.conflatable(key)).toBe(-1);
            }
            model = passDead(model);
            if (model.length === 0) nextSlot = 0;
            ring.push(src, 0, op.len, op.sid, key === null ? Policy.DROP_OLDEST : Policy.CONFLATE, subs, key);
            model.push({ slot: nextSlot++, span: spanOf(op.len, key !== null), frame: copy, subs, key });
          } else if (op.t === 'shift') {
            if (ring.length === 0) continue;
            expect(ring.shift()).toBe(model[0]!.subs);
            model = passDead(model.slice(1));
          } else if (op.t === 'take') {
            // What the pump does: as many whole frames as fit (at least one), in one copy.
            const live = model.filter((e) => e.frame !== null);
            let n = 0;
            let bytes = 0;
            while (n < live.length && (n === 0 || bytes + live[n]!.frame!.length <= op.room)) bytes += live[n++]!.frame!.length;
            expect(ring.measure(op.room)).toBe(n);
            expect(ring.measuredBytes).toBe(bytes);
            if (n === 0) continue;
            const dst = Buffer.alloc(bytes + 6, 0xee);
            expect(ring.copyFrames(dst, 3, n)).toBe(bytes);
            expect(dst.subarray(3, 3 + bytes)).toEqual(Buffer.concat(live.slice(0, n).map((e) => e.frame!)));
            expect([dst[2], dst[3 + bytes]]).toEqual([0xee, 0xee]);
            for (let i = 0; i < n; i++) ring.shift();
            const lastTaken = live[n - 1]!;
            model = passDead(model.slice(model.indexOf(lastTaken) + 1));
          } else {
            const live = model.filter((e) => e.frame !== null);
            if (live.length === 0) continue;
            const e = live[op.which % live.length]!;
            ring.kill(e.slot);
            e.frame = null;
            e.key = null;
            model = passDead(model);
          }
          if (model.length === 0) nextSlot = 0;
          const live = model.filter((e) => e.frame !== null);
          expect(ring.toFrames()).toEqual(live.map((e) => e.frame));
          expect(ring.length).toBe(live.length);
          expect(ring.bytes).toBe(live.reduce((a, e) => a + e.frame!.length, 0));
          const occupied = model.reduce((a, e) => a + e.span, 0);
          expect(ring.occupied).toBe(occupied);
          expect(ring.slots).toBe(model.length);
          expect(ring.cost).toBe(occupied + model.length * SLOT_BYTES);
          if (live.length > 0) expect(ring.subsOf(ring.first)).toBe(live[0]!.subs);
          for (const k of KEYS) {
            const e = live.find((x) => x.key === k);
            expect(ring.conflatable(k)).toBe(e === undefined ? -1 : e.slot);
          }
          expect(ring.blocks).toBeLessThanOrEqual(Math.ceil(occupied / slab) + 1 + Math.ceil(model.length / PAGE_SLOTS) + 1);
        }
      }),
      { numRuns: 300 },
    );
  });
});

/** Dead slots at the head are passed at once. */
function passDead(m: Entry[]): Entry[] {
  let i = 0;
  while (i < m.length && m[i]!.frame === null) i++;
  return i === 0 ? m : m.slice(i);
}

// --- Outbound against a model of the policies ------------------------------------------

function msgFrame(subject: string, size: number, seq: number): Buffer {
  const s = Buffer.byteLength(subject);
  const buf = Buffer.alloc(msgSize(s, 0, 0, size - MSG_HEADER - s, false));
  const at = writeMsgHeader(buf, 0, buf.length, Op.MSG, 0, 0, 0, s, 0, 0);
  buf.write(subject, at, 'utf8');
  buf.writeUInt32LE(seq, buf.length - 4);
  return buf;
}

interface Held {
  seq: number;
  subject: string;
  len: number;
  span: number;
  policy: Policy;
  dead: boolean;
}

const msgArb = fc.record({
  subject: fc.constantFrom('s0', 's1', 's2'),
  size: fc.integer({ min: 40, max: 120 }),
  policy: fc.constantFrom(Policy.DROP_OLDEST, Policy.DROP_NEWEST, Policy.CONFLATE, Policy.DISCONNECT),
});

describe('Outbound against a model of the policies', () => {
  it('keeps within the bound, holds what the model holds, and counts every message it does not hold or send', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 200, max: 2000 }),
        fc.integer({ min: 0, max: 12 }),
        fc.array(msgArb, { minLength: 1, maxLength: 200 }),
        (highWater, maxBytes, maxMsgs, msgs) => {
          // The consumer's end is never read: what the link takes stays in it.
          const [, link] = inprocPair('inproc://model', 1 << 20, 1 << 20);
          let slow = false;
          const counts = { oldest: 0, newest: 0, conflated: 0 };
          const owner: OutboundOwner = {
            link,
            slowConsumer: () => (slow = true),
            countDrops: (o, n, c) => {
              counts.oldest += o;
              counts.newest += n;
              counts.conflated += c;
            },
          };
          const out = new Outbound(owner, highWater, maxBytes, maxMsgs, null);
          const sub: LossCounters = { sid: 1, policy: Policy.DROP_OLDEST, dropped: 0, conflated: 0, unreportedDropped: 0, unreportedConflated: 0 };
          const subs = [sub];
          // The model.
          let linkBytes = 0;
          const sent: number[] = [];
          const held: Held[] = [];
          let dropped = 0;
          let conflated = 0;
          const cost = () => held.reduce((a, h) => a + h.span + SLOT_BYTES, 0);
          const liveCount = () => held.filter((h) => !h.dead).length;
          const over = (span: number) => linkBytes + cost() + span + SLOT_BYTES > maxBytes || (maxMsgs > 0 && liveCount() + 1 > maxMsgs);
          const pass = () => {
            while (held.length > 0 && held[0]!.dead) held.shift();
          };
          const dropOldest = (span: number) => {
            while (liveCount() > 0 && over(span)) {
              held.shift();
              dropped++;
              pass();
            }
          };
          for (let seq = 0; seq < msgs.length && !slow; seq++) {
            const m = msgs[seq]!;
            const f = msgFrame(m.subject, m.size, seq);
            const len = f.length;
            const span = spanOf(len, m.policy === Policy.CONFLATE);
            const r = out.deliver(f, 0, len, 0, m.subject, subs, m.policy, null);
            // What the model expects.
            let expectQueued = len;
            if (liveCount() === 0 && linkBytes <= highWater) {
              linkBytes += len;
              sent.push(seq);
              if (linkBytes > maxBytes && m.policy === Policy.DISCONNECT) expect(slow).toBe(true);
            } else if (m.policy === Policy.DISCONNECT) {
              if (over(span)) {
                expect(slow).toBe(true);
                expectQueued = 0;
              } else held.push({ seq, subject: m.subject, len, span, policy: m.policy, dead: false });
            } else if (m.policy === Policy.DROP_NEWEST && over(span)) {
              dropped++;
              expectQueued = 0;
            } else {
              let done = false;
              if (m.policy === Policy.CONFLATE) {
                const prev = held.find((h) => !h.dead && h.policy === Policy.CONFLATE && h.subject === m.subject);
                if (prev !== undefined) {
                  conflated++;
                  if (len <= prev.span) {
                    prev.seq = seq;
                    prev.len = len;
                    done = true;
                  } else {
                    prev.dead = true;
                    pass();
                  }
                }
              }
              if (!done) {
                if (m.policy !== Policy.DROP_NEWEST) dropOldest(span);
                if (over(span)) {
                  dropped++;
                  expectQueued = 0;
                } else held.push({ seq, subject: m.subject, len, span, policy: m.policy, dead: false });
              }
            }
            expect(r).toBe(expectQueued);
            // The ring agrees with the model, and the bound holds.
            const live = held.filter((h) => !h.dead);
            expect(out.hold.toFrames().map((x) => x.readUInt32LE(x.length - 4))).toEqual(live.map((h) => h.seq));
            expect(out.hold.cost).toBe(cost());
            expect(link.pendingBytes).toBe(linkBytes);
            expect(sub.dropped).toBe(dropped);
            expect(sub.conflated).toBe(conflated);
            expect(counts.oldest + counts.newest).toBe(dropped);
            expect(counts.conflated).toBe(conflated);
            if (held.length > 0) expect(link.pendingBytes + out.hold.cost).toBeLessThanOrEqual(Math.max(maxBytes, linkBytes));
            expect(out.hold.length).toBe(live.length);
          }
          out.close();
          link.destroy();
        },
      ),
      { numRuns: 300 },
    );
  });
});
