/**
 * The cache store alone (broker/cache/store.ts), on a fake clock: per-subject sequences,
 * eviction of the least recently updated subject by count and by bytes (counted),
 * tombstones, oversize messages, TTL expiry, frame reuse, and the config's checks.
 */
import { describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { CacheStore, ENTRY_OVERHEAD, hasDeleteHeader } from '../../broker/cache/store.js';
import { LastValueCache } from '../../broker/cache/cache.js';
import { resolveOptions } from '../../broker/config.js';
import { FLAG_SEQ, FLAG_TS, MsgView, Op } from '../../transports/protocol/index.js';
import { FakeClock } from '../../runtime/clock.js';
import { pubFrame } from '../kit/index.js';

const packr = new Packr({ useRecords: false });
const view = new MsgView();

function put(store: CacheStore, subject: string, payload: string, now = 0, headers?: Record<string, string>) {
  const f = pubFrame(subject, payload, headers ? { headers: packr.pack(headers) } : {});
  return store.put(subject, view.parse(f, 0, f.length), 0, now);
}

function payloadOf(frame: Buffer, len: number): string {
  const v = new MsgView().parse(frame, 0, len);
  return frame.toString('utf8', v.payloadOff, v.payloadOff + v.payloadLen);
}

describe('CacheStore', () => {
  it('keeps the newest message per subject as a MSG with FLAG_SEQ and a per-subject sequence', () => {
    const s = new CacheStore({ pattern: 'md.>', maxSubjects: 10, maxBytes: 1 << 20 });
    put(s, 'md.A', 'a1');
    put(s, 'md.B', 'b1');
    const e = put(s, 'md.A', 'a2');
    expect(e.seq).toBe(2);
    expect(e.frame[4]).toBe(Op.MSG);
    expect(e.frame[5]! & FLAG_SEQ).toBe(FLAG_SEQ);
    const v = new MsgView().parse(e.frame, 0, e.len);
    expect(v.seqOff).toBe(20);
    expect(e.frame.readBigUInt64LE(v.seqOff)).toBe(2n);
    expect(v.subject()).toBe('md.A');
    expect(payloadOf(e.frame, e.len)).toBe('a2');
    expect(s.get('md.B', 0)!.seq).toBe(1);
    expect(s.size).toBe(2);
  });

  it('keeps the timestamp block with the broker time it is given', () => {
    const s = new CacheStore({ pattern: '>', maxSubjects: 10, maxBytes: 1 << 20 });
    const f = Buffer.concat([pubFrame('x', 'p', { flags: FLAG_TS })]);
    // Make room for the 16-byte timestamp block the flag announces.
    const withTs = Buffer.alloc(f.length + 16);
    f.copy(withTs, 0, 0, 20);
    withTs.writeUInt32LE(withTs.length, 0);
    withTs.writeBigUInt64LE(111n, 20);
    f.copy(withTs, 36, 20);
    const e = s.put('x', view.parse(withTs, 0, withTs.length), 222, 0);
    const v = new MsgView().parse(e.frame, 0, e.len);
    expect(v.tsOff).toBe(20);
    expect(v.seqOff).toBe(36);
    expect(e.frame.readBigUInt64LE(20)).toBe(111n);
    expect(e.frame.readBigUInt64LE(28)).toBe(222n);
    expect(payloadOf(e.frame, e.len)).toBe('p');
  });

  it('evicts the least recently updated subject past maxSubjects, and counts it', () => {
    const s = new CacheStore({ pattern: 'md.>', maxSubjects: 3, maxBytes: 1 << 20 });
    for (const x of ['A', 'B', 'C']) put(s, `md.${x}`, x);
    put(s, 'md.A', 'A again'); // A is now the most recent
    const bEntry = s.get('md.B', 0)!;
    // Full: B's entry, object and buffer, now holds D.
    expect(put(s, 'md.D', 'D')).toBe(bEntry);
    expect(bEntry.subject).toBe('md.D');
    expect([...s.subjects()]).toEqual(['md.C', 'md.A', 'md.D']);
    expect(s.stats.evictions).toBe(1);
    // An evicted subject starts again at sequence 1.
    expect(put(s, 'md.B', 'B').seq).toBe(1);
    expect(s.stats.evictions).toBe(2);
  });

  it('evicts by bytes: frames plus the per-entry overhead stay within maxBytes', () => {
    const one = put(new CacheStore({ pattern: '>', maxSubjects: 100, maxBytes: 1 << 20 }), 'md.A', 'x'.repeat(100)).frame.length;
    const s = new CacheStore({ pattern: '>', maxSubjects: 100, maxBytes: 3 * (one + ENTRY_OVERHEAD) });
    for (let i = 0; i < 10; i++) put(s, `md.${String.fromCharCode(65 + i)}`, 'x'.repeat(100));
    expect(s.size).toBe(3);
    expect(s.bytes).toBeLessThanOrEqual(s.maxBytes);
    expect(s.stats.evictions).toBe(7);
    expect([...s.subjects()]).toEqual(['md.H', 'md.I', 'md.J']);
  });

  it('a message larger than maxBytes alone is not kept, and the older value goes too', () => {
    const s = new CacheStore({ pattern: '>', maxSubjects: 10, maxBytes: 400 });
    put(s, 'md.A', 'small');
    const e = put(s, 'md.A', 'y'.repeat(1000));
    expect(e.seq).toBe(2);
    expect(payloadOf(e.frame, e.len)).toBe('y'.repeat(1000));
    expect(s.get('md.A', 0)).toBeUndefined();
    expect(s.stats.oversize).toBe(1);
    expect(s.bytes).toBe(0);
  });

  it('reuses an entry frame when the next message fits in it', () => {
    const s = new CacheStore({ pattern: '>', maxSubjects: 10, maxBytes: 1 << 20 });
    const first = put(s, 'md.A', '12345678').frame;
    expect(put(s, 'md.A', '87654321').frame).toBe(first);
    expect(put(s, 'md.A', '8765432').frame).toBe(first);
    expect(put(s, 'md.A', 'x'.repeat(100)).frame).not.toBe(first);
  });

  it('tombstones: header Hopbus-Delete removes the value, the returned frame still carries the message', () => {
    const s = new CacheStore({ pattern: '>', maxSubjects: 10, maxBytes: 1 << 20 });
    put(s, 'md.A', 'a');
    const t = put(s, 'md.A', '', 0, { other: 'x', 'Hopbus-Delete': '1' });
    expect(t.seq).toBe(2);
    expect(s.get('md.A', 0)).toBeUndefined();
    expect(s.stats.deletes).toBe(1);
    expect(put(s, 'md.A', 'back').seq).toBe(1);
  });

  it('hasDeleteHeader looks at header names only', () => {
    const h = (o: Record<string, string>) => {
      const b = packr.pack(o);
      return hasDeleteHeader(b, 0, b.length);
    };
    expect(h({ 'Hopbus-Delete': '' })).toBe(true);
    expect(h({ a: 'Hopbus-Delete' })).toBe(false);
    expect(h({ 'Hopbus-Deleted': '1' })).toBe(false);
    expect(h({ [`k${'x'.repeat(40)}`]: 'v'.repeat(300), 'Hopbus-Delete': 'yes' })).toBe(true);
  });

  it('ttlMs: a value not updated for that long is gone on a fake clock, counted as expired', () => {
    const clock = new FakeClock(0);
    const cache = new LastValueCache([{ pattern: 'md.>', maxSubjects: 10, maxBytes: 1 << 20, ttlMs: 1000 }], clock);
    const store = cache.stores[0]!;
    put(store, 'md.A', 'a', clock.now());
    clock.advance(600);
    put(store, 'md.B', 'b', clock.now());
    clock.advance(399);
    expect(cache.get('md.A')).toBeDefined();
    clock.advance(1);
    expect(cache.get('md.A')).toBeUndefined();
    expect(cache.image('md.*')).toEqual(['md.B']);
    expect(store.stats.expirations).toBe(1);
    // The sweep timer (every ttlMs / 2) frees values nobody reads, within 1.5 ttlMs.
    cache.start();
    clock.advance(500);
    expect(store.size).toBe(1);
    clock.advance(500);
    expect(store.size).toBe(0);
    expect(store.stats.expirations).toBe(2);
    cache.stop();
    expect(clock.pending).toBe(0);
  });

  it('slots: an entry keeps its slot while held, a removed entry frees it for the next new subject; born says at which version an entry took its subject', () => {
    const s = new CacheStore({ pattern: 'md.>', maxSubjects: 2, maxBytes: 1 << 20, ttlMs: 100 });
    const slots = () => Array.from({ length: s.slotCount }, (_, i) => s.slotAt(i)?.subject ?? null);
    const a = put(s, 'md.A', 'a');
    expect([a.slot, a.born, s.version]).toEqual([0, 1, 1]);
    put(s, 'md.A', 'a2');
    // An update keeps the entry's slot and birth.
    expect([a.slot, a.born, s.version]).toEqual([0, 1, 2]);
    put(s, 'md.B', 'b');
    // Full: A's entry is handed to C, in the same slot, born again.
    expect(put(s, 'md.C', 'c')).toBe(a);
    expect([a.slot, a.born]).toEqual([0, 4]);
    expect(slots()).toEqual(['md.C', 'md.B']);
    // A tombstone frees B's slot; the next new subject takes it.
    put(s, 'md.B', '', 0, { 'Hopbus-Delete': '1' });
    expect(slots()).toEqual(['md.C', null]);
    const d = put(s, 'md.D', 'd');
    expect([d.slot, d.born]).toEqual([1, 6]);
    // Expiry frees slots too, and so does clear().
    s.expire(100);
    expect(slots()).toEqual([null, null]);
    put(s, 'md.E', 'e', 100);
    s.clear();
    expect(s.slotCount).toBe(0);
  });

  it('a subject is kept by the first pattern it matches', () => {
    const cache = new LastValueCache(
      [
        { pattern: 'md.fx.>', maxSubjects: 1, maxBytes: 1 << 20 },
        { pattern: 'md.>', maxSubjects: 10, maxBytes: 1 << 20 },
      ],
      new FakeClock(),
    );
    expect(cache.storeFor('md.fx.EURUSD')).toBe(cache.stores[0]);
    expect(cache.storeFor('md.eq.CSCO')).toBe(cache.stores[1]);
    expect(cache.storeFor('orders.x')).toBeNull();
  });
});

describe('the cache option', () => {
  it('is validated: unknown keys, bad patterns, bounds and TTL are refused with what is wrong', () => {
    const bad = (cache: unknown) => () => resolveOptions({ cache } as never);
    expect(bad({})).toThrow(/"cache" must be an array/);
    expect(bad([{ pattern: 'md.>', maxSubjects: 1, maxBytes: 1, ttl: 5 }])).toThrow(
      /cache\[0\]" has an unknown key "ttl"; known keys: pattern, maxSubjects, maxBytes, ttlMs/,
    );
    expect(bad([{ pattern: 'md..x', maxSubjects: 1, maxBytes: 1 }])).toThrow(/cache\[0\]\.pattern" must be a valid subject pattern/);
    expect(bad([{ pattern: '$SYS.>', maxSubjects: 1, maxBytes: 1 }])).toThrow(/system subjects/);
    expect(bad([{ pattern: 'md.>', maxSubjects: 0, maxBytes: 1 }])).toThrow(/cache\[0\]\.maxSubjects" must be a positive integer/);
    expect(bad([{ pattern: 'md.>', maxSubjects: 1 }])).toThrow(/cache\[0\]\.maxBytes" must be a positive integer/);
    expect(bad([{ pattern: 'md.>', maxSubjects: 1, maxBytes: 1, ttlMs: -1 }])).toThrow(/ttlMs" must be a non-negative integer/);
    expect(resolveOptions({ cache: [{ pattern: 'md.>', maxSubjects: 5, maxBytes: 100, ttlMs: 0 }] }).cache).toHaveLength(1);
  });
});
