/**
 * The ring on its own, in one thread: byte-exact wrap-around, a full ring, and index
 * arithmetic across the 2^31 boundary of the free-running 32-bit positions.
 */
import { describe, expect, it } from 'vitest';
import { R_HEAD, R_TAIL, createConnection, ringOffset } from '../../transports/shm/layout.js';
import { RingReader, RingWriter } from '../../transports/shm/ring.js';

function ring(capacity: number, startAt = 0): { w: RingWriter; r: RingReader } {
  const sab = createConnection(capacity);
  const at = ringOffset(capacity, false);
  if (startAt !== 0) {
    const idx = new Int32Array(sab, at, 64);
    idx[R_TAIL / 4] = startAt;
    idx[R_HEAD / 4] = startAt;
  }
  return { w: new RingWriter(sab, at, capacity), r: new RingReader(sab, at, capacity) };
}

/** A record of `size` bytes whose content depends on `seq`, so a misplaced byte shows. */
function record(size: number, seq: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (seq * 31 + i * 7) & 0xff;
  return b;
}

describe('shm ring', () => {
  it('carries records of every size from 1 byte to the whole capacity, across the wrap point at every offset', () => {
    const cap = 4096;
    const { w, r } = ring(cap);
    // Sizes 1..cap in turn: the write position moves through every offset of the ring,
    // so records are split at the end of the ring at every possible point.
    for (let size = 1; size <= cap; size++) {
      const rec = record(size, size);
      expect(w.freshFree()).toBe(cap);
      w.write(rec, 0, size);
      w.publish();
      expect(r.available()).toBe(size);
      const out = Buffer.alloc(size);
      r.read(out, 0, size);
      r.release(size);
      if (!out.equals(rec)) throw new Error(`record of ${size} bytes came out different`);
    }
    expect(r.available()).toBe(0);
  });

  it('encodes in place only when a record fits before the end of the ring', () => {
    const { w } = ring(4096);
    w.write(Buffer.alloc(4000), 0, 4000);
    expect(w.contiguous(96)).toBe(true);
    expect(w.contiguous(97)).toBe(false);
  });

  it('a full ring refuses more: free space is 0, and the unread bytes are intact until released', () => {
    const cap = 4096;
    const { w, r } = ring(cap);
    const first = record(3000, 1);
    w.write(first, 0, 3000);
    w.publish();
    expect(w.free(2000)).toBe(cap - 3000);
    const second = record(cap - 3000, 2);
    w.write(second, 0, second.length);
    w.publish();
    expect(w.free(1)).toBe(0);
    // The reader sees exactly what was written, nothing overwritten.
    const out = Buffer.alloc(cap);
    r.read(out, 0, cap);
    expect(out.subarray(0, 3000).equals(first)).toBe(true);
    expect(out.subarray(3000).equals(second)).toBe(true);
    // Space comes back only as the reader releases it.
    r.release(100);
    expect(w.free(1)).toBe(100);
  });

  it('tells the reader when the writer waits for space', () => {
    const { w, r } = ring(4096);
    w.write(Buffer.alloc(10), 0, 10);
    w.publish();
    expect(r.release(10)).toBe(false);
    w.wantSpace(true);
    expect(r.release(0)).toBe(true);
  });

  it('positions wrap around 2^31 and 2^32 without a hiccup', () => {
    const cap = 4096;
    for (const start of [0x7fffff00, -256, -1]) {
      const { w, r } = ring(cap, start | 0);
      for (let i = 0; i < 50; i++) {
        const size = 1 + ((i * 97) % 700);
        const rec = record(size, i);
        expect(w.freshFree()).toBe(cap);
        w.write(rec, 0, size);
        w.publish();
        expect(r.available()).toBe(size);
        const out = Buffer.alloc(size);
        r.read(out, 0, size);
        r.release(size);
        expect(out.equals(rec)).toBe(true);
      }
    }
  });
});
