/**
 * broker/holdring.ts, the off-heap store of what a consumer that is behind is held:
 * frames laid end to end over slabs (straddling them), slots in typed pages, the
 * per-subject conflation index, and slabs and pages given back as the head passes.
 */
import { describe, expect, it } from 'vitest';
import { CONFLATE_ALIGN, HOLD_SLAB_BYTES, HoldRing, MIN_SLAB_BYTES, PAGE_SLOTS, SLOT_BYTES, holdPool, slabBytesFor, spanOf } from '../../broker/holdring.js';

/** A frame of `len` bytes: byte i is (seed + i) & 0xff. */
function frame(len: number, seed = 0): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (seed + i) & 0xff;
  return b;
}

const DROP = 2; // Policy.DROP_OLDEST
const CONFLATE = 4; // Policy.CONFLATE
const none: object = [];

describe('HoldRing', () => {
  it('is a FIFO of frames that keeps the bytes it holds and what the bounds count', () => {
    const r = new HoldRing(64);
    r.push(frame(10, 1), 0, 10, 0, DROP, none, null);
    r.push(frame(20, 2), 0, 20, 0, DROP, none, null);
    expect(r.length).toBe(2);
    expect(r.bytes).toBe(30);
    expect(r.occupied).toBe(30);
    expect(r.cost).toBe(30 + 2 * SLOT_BYTES);
    const out = Buffer.alloc(10);
    expect(r.copyFirst(out, 0)).toBe(10);
    expect(out).toEqual(frame(10, 1));
    r.shift();
    expect(r.bytes).toBe(20);
    expect(r.toFrames()).toEqual([frame(20, 2)]);
    r.shift();
    expect(r.length).toBe(0);
    expect(r.cost).toBe(0);
  });

  it('copies the bytes in: the caller may reuse its buffer at once', () => {
    const r = new HoldRing(64);
    const f = frame(16, 3);
    r.push(f, 0, 16, 0, DROP, none, null);
    f.fill(0);
    expect(r.toFrames()).toEqual([frame(16, 3)]);
  });

  it('takes a frame from inside a larger buffer', () => {
    const r = new HoldRing(64);
    const big = frame(100, 0);
    r.push(big, 30, 12, 0, DROP, none, null);
    expect(r.toFrames()).toEqual([big.subarray(30, 42)]);
  });

  it('lays frames across slab boundaries, and frames larger than a slab across several', () => {
    const r = new HoldRing(16);
    const frames = [frame(7, 1), frame(13, 2), frame(40, 3), frame(1, 4), frame(16, 5)];
    for (const f of frames) r.push(f, 0, f.length, 0, DROP, none, null);
    expect(r.toFrames()).toEqual(frames);
    for (const f of frames) {
      const out = Buffer.alloc(f.length + 4, 0xee);
      r.copyFirst(out, 2);
      expect(out.subarray(2, 2 + f.length)).toEqual(f);
      expect([out[0], out[1], out.at(-1)]).toEqual([0xee, 0xee, 0xee]);
      r.shift();
    }
  });

  it('patches the subscription id (bytes 8-11) of its copy, also when those bytes straddle two slabs', () => {
    const r = new HoldRing(16);
    r.push(frame(5), 0, 5, 0, DROP, none, null); // the next frame starts at 5: its bytes 8-11 are at 13-16
    const f = frame(20, 9);
    r.push(f, 0, 20, 0xa1b2c3d4, DROP, none, null);
    const held = r.toFrames()[1]!;
    expect(held.readUInt32LE(8)).toBe(0xa1b2c3d4);
    expect(f.readUInt32LE(8)).toBe(frame(20, 9).readUInt32LE(8)); // the caller's frame is untouched
    expect(held.subarray(12)).toEqual(f.subarray(12));
  });

  it('wraps around: slabs are given back as the head leaves them and taken as the tail enters new ones', () => {
    const r = new HoldRing(64);
    let seed = 0;
    const model: Buffer[] = [];
    for (let i = 0; i < 2000; i++) {
      const f = frame(10 + (i % 37), seed++);
      r.push(f, 0, f.length, 0, DROP, none, null);
      model.push(f);
      while (r.occupied > 300) {
        r.shift();
        model.shift();
      }
      // Only slabs that hold [head, tail): at most one partial slab at each end.
      expect(r.blocks).toBeLessThanOrEqual(Math.floor(r.occupied / 64) + 2 + Math.floor(r.slots / PAGE_SLOTS) + 2);
    }
    expect(r.toFrames()).toEqual(model);
  });

  it('gives back slot pages as the head passes them', () => {
    const r = new HoldRing(4096);
    const f = frame(1);
    for (let i = 0; i < 3 * PAGE_SLOTS; i++) r.push(f, 0, 1, 0, DROP, none, null);
    const full = r.blocks;
    for (let i = 0; i < 2 * PAGE_SLOTS; i++) r.shift();
    expect(r.blocks).toBe(full - 2);
    expect(r.length).toBe(PAGE_SLOTS);
  });

  it('once empty, gives everything back to the pool and starts over; the next ring takes from the pool, not the system', () => {
    holdPool.drain();
    const a = new HoldRing(MIN_SLAB_BYTES);
    for (let i = 0; i < 10; i++) a.push(frame(1000), 0, 1000, 0, DROP, none, null);
    const allocated = holdPool.allocated;
    expect(a.memoryBytes).toBeGreaterThanOrEqual(3 * MIN_SLAB_BYTES);
    while (a.length > 0) a.shift();
    expect(a.blocks).toBe(0);
    expect(holdPool.bytes).toBeGreaterThanOrEqual(3 * MIN_SLAB_BYTES);
    const b = new HoldRing(MIN_SLAB_BYTES);
    for (let i = 0; i < 10; i++) b.push(frame(1000, i), 0, 1000, 0, DROP, none, null);
    expect(holdPool.allocated).toBe(allocated);
    expect(b.toFrames()[9]).toEqual(frame(1000, 9));
  });

  it('hands back the subscriptions each message was for', () => {
    const r = new HoldRing<string[]>(64);
    const s1 = ['a'];
    const s2 = ['b'];
    r.push(frame(12), 0, 12, 0, DROP, s1, null);
    r.push(frame(12), 0, 12, 0, DROP, s2, null);
    r.push(frame(12), 0, 12, 0, DROP, s1, null);
    expect(r.subsOf(r.first)).toBe(s1);
    expect([r.shift(), r.shift(), r.shift()]).toEqual([s1, s2, s1]);
  });

  it('forgets subscription lists no held message is for: memory follows what is held, not every route ever seen', () => {
    const r = new HoldRing<string[]>(4096);
    r.push(frame(12), 0, 12, 0, DROP, ['first'], null);
    const small = r.memoryBytes;
    for (let i = 0; i < 10_000; i++) {
      r.push(frame(12), 0, 12, 0, DROP, [`route${i}`], null);
      r.shift();
    }
    expect(r.length).toBe(1);
    expect(r.memoryBytes).toBeLessThanOrEqual(small + 64);
  });

  describe('conflation', () => {
    it('indexes the held conflatable frame of each subject, and forgets it when it leaves', () => {
      const r = new HoldRing(64);
      r.push(frame(20), 0, 20, 0, DROP, none, null);
      expect(r.conflatable('px')).toBe(-1);
      r.push(frame(20, 1), 0, 20, 0, CONFLATE, none, 'px');
      const slot = r.conflatable('px');
      expect(slot).toBeGreaterThanOrEqual(0);
      expect(r.lengthOf(slot)).toBe(20);
      expect(r.policyOf(slot)).toBe(CONFLATE);
      r.shift();
      expect(r.conflatable('px')).toBe(slot);
      r.shift();
      expect(r.conflatable('px')).toBe(-1);
    });

    it('a conflatable frame takes a span rounded up, so that a slightly longer one overwrites it in place', () => {
      const r = new HoldRing(64);
      r.push(frame(20, 1), 0, 20, 0, CONFLATE, none, 'px');
      r.push(frame(10, 2), 0, 10, 0, DROP, none, null);
      expect(r.occupied).toBe(spanOf(20, true) + 10);
      expect(spanOf(20, true)).toBe(CONFLATE_ALIGN);
      const slot = r.conflatable('px');
      expect(r.overwrite(slot, frame(CONFLATE_ALIGN, 3), 0, CONFLATE_ALIGN, 7, none)).toBe(true);
      const held = frame(CONFLATE_ALIGN, 3);
      held.writeUInt32LE(7, 8);
      expect(r.toFrames()).toEqual([held, frame(10, 2)]);
      expect(r.bytes).toBe(CONFLATE_ALIGN + 10);
      // Shorter fits too, and the bytes shrink with it.
      expect(r.overwrite(slot, frame(12, 4), 0, 12, 0, none)).toBe(true);
      expect(r.toFrames()).toEqual([frame(12, 4), frame(10, 2)]);
      expect(r.bytes).toBe(22);
    });

    it('a frame that does not fit is refused; the held one is then killed: skipped, its span kept until the head passes it', () => {
      const r = new HoldRing(64);
      r.push(frame(10, 1), 0, 10, 0, DROP, none, null);
      r.push(frame(20, 2), 0, 20, 0, CONFLATE, none, 'px');
      r.push(frame(10, 3), 0, 10, 0, DROP, none, null);
      const slot = r.conflatable('px');
      expect(r.overwrite(slot, frame(40), 0, 40, 0, none)).toBe(false);
      r.kill(slot);
      expect(r.conflatable('px')).toBe(-1);
      expect(r.length).toBe(2);
      expect(r.bytes).toBe(20);
      expect(r.occupied).toBe(10 + CONFLATE_ALIGN + 10);
      expect(r.slots).toBe(3);
      r.shift(); // the dead slot behind it is passed at once
      expect(r.slots).toBe(1);
      expect(r.toFrames()).toEqual([frame(10, 3)]);
    });

    it('killing the head passes it and every dead slot after it; killing the last empties the ring', () => {
      const r = new HoldRing(64);
      r.push(frame(12, 1), 0, 12, 0, CONFLATE, none, 'a');
      r.push(frame(12, 2), 0, 12, 0, CONFLATE, none, 'b');
      r.push(frame(12, 3), 0, 12, 0, CONFLATE, none, 'c');
      r.kill(r.conflatable('b'));
      r.kill(r.conflatable('a'));
      expect(r.slots).toBe(1);
      expect(r.toFrames()).toEqual([frame(12, 3)]);
      r.kill(r.conflatable('c'));
      expect([r.length, r.slots, r.occupied, r.blocks]).toEqual([0, 0, 0, 0]);
    });

    it('overwrite moves the message to the subscriptions of the newer one', () => {
      const r = new HoldRing<string[]>(64);
      const s1 = ['a'];
      const s2 = ['b'];
      r.push(frame(20), 0, 20, 0, CONFLATE, s1, 'px');
      r.overwrite(r.conflatable('px'), frame(20), 0, 20, 0, s2);
      expect(r.subsOf(r.first)).toBe(s2);
      expect(r.shift()).toBe(s2);
    });
  });

  it('clear empties it, index and tables included', () => {
    const r = new HoldRing(64);
    for (let i = 0; i < 200; i++) r.push(frame(30), 0, 30, 0, CONFLATE, none, `s${i}`);
    r.clear();
    expect([r.length, r.bytes, r.occupied, r.slots, r.blocks, r.memoryBytes]).toEqual([0, 0, 0, 0, 0, 0]);
    expect(r.conflatable('s1')).toBe(-1);
  });
});

describe('slabBytesFor', () => {
  it('an eighth of the bound, a power of two, between MIN_SLAB_BYTES and HOLD_SLAB_BYTES', () => {
    expect(slabBytesFor(64 * 1024 * 1024)).toBe(HOLD_SLAB_BYTES);
    expect(slabBytesFor(1024 * 1024)).toBe(128 * 1024);
    expect(slabBytesFor(256 * 1024)).toBe(32 * 1024);
    expect(slabBytesFor(300)).toBe(MIN_SLAB_BYTES);
    expect(slabBytesFor(0)).toBe(MIN_SLAB_BYTES);
  });
});
