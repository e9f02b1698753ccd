/**
 * Turns subject bytes from the wire into strings without decoding the same bytes
 * over and over: a market-data stream repeats a bounded set of subjects, and a
 * decode allocates a new string every time. Direct-mapped (one entry per slot, a new
 * subject replaces the old one in its slot), so memory is bounded and a lookup is a
 * hash and a compare of a few bytes, no allocation.
 *
 * Use: lookup(); on a miss (null) decode (and validate) yourself, then store() the
 * result; store() uses the slot computed by the preceding lookup().
 */
export class SubjectCache {
  private readonly keys: (Buffer | null)[];
  private readonly values: string[];
  private readonly mask: number;
  private slot = 0;

  constructor(slots = 1024) {
    const n = 1 << Math.ceil(Math.log2(Math.max(2, slots)));
    this.keys = new Array<Buffer | null>(n).fill(null);
    this.values = new Array<string>(n).fill('');
    this.mask = n - 1;
  }

  lookup(buf: Buffer, off: number, len: number): string | null {
    // FNV-1a over the bytes.
    let h = 0x811c9dc5;
    for (let i = 0; i < len; i++) h = Math.imul(h ^ buf[off + i]!, 0x01000193);
    const slot = (this.slot = (h ^ (h >>> 16)) & this.mask);
    const key = this.keys[slot];
    if (key === null || key === undefined || key.length !== len) return null;
    for (let i = 0; i < len; i++) if (key[i] !== buf[off + i]) return null;
    return this.values[slot]!;
  }

  store(buf: Buffer, off: number, len: number, value: string): void {
    const key = Buffer.allocUnsafe(len);
    buf.copy(key, 0, off, off + len);
    this.keys[this.slot] = key;
    this.values[this.slot] = value;
  }
}

/** Copies a frame; a plain loop beats Buffer#copy's call overhead for small frames. */
export function copyBytes(src: Buffer, srcOff: number, dst: Buffer, dstOff: number, len: number): void {
  if (len <= 96) {
    for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i]!;
  } else {
    src.copy(dst, dstOff, srcOff, srcOff + len);
  }
}
