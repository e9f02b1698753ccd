import { copyBytes } from '../intern.js';
import { R_DATA, R_HEAD, R_TAIL, R_WANT_SPACE } from './layout.js';

/**
 * The two ends of one single-producer / single-consumer byte ring (layout.ts draws
 * it). Each end keeps its own index in a plain field and only publishes it; it reads
 * the other end's index with Atomics.load and caches it, so the common case touches
 * the shared line of the other thread only when the cached value says it must.
 *
 * Threading: a RingWriter is used by the producing thread only, a RingReader by the
 * consuming thread only.
 */

const TAIL = R_TAIL / 4;
const HEAD = R_HEAD / 4;
const WANT_SPACE = R_WANT_SPACE / 4;

export class RingWriter {
  /** The ring's bytes; encoders write into it directly when a frame fits before the end. */
  readonly data: Buffer;
  readonly capacity: number;
  private readonly mask: number;
  private readonly idx: Int32Array;
  /** Next write position (not yet published when != published). */
  private tail: number;
  private published: number;
  /** Last head seen; the consumer only moves it forward, so free space is at least this says. */
  private head: number;

  constructor(sab: SharedArrayBuffer, offset: number, capacity: number) {
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.idx = new Int32Array(sab, offset, R_DATA / 4);
    this.data = Buffer.from(sab, offset + R_DATA, capacity);
    this.tail = this.published = Atomics.load(this.idx, TAIL);
    this.head = Atomics.load(this.idx, HEAD);
  }

  /** Free bytes, refreshing the consumer's head only if the cached one says fewer than `want`. */
  free(want: number): number {
    let free = this.capacity - ((this.tail - this.head) | 0);
    if (free < want) {
      this.head = Atomics.load(this.idx, HEAD);
      free = this.capacity - ((this.tail - this.head) | 0);
    }
    return free;
  }

  /** Free bytes, always reading the consumer's head (after wantSpace(true), to close the race with release()). */
  freshFree(): number {
    this.head = Atomics.load(this.idx, HEAD);
    return this.capacity - ((this.tail - this.head) | 0);
  }

  /** Offset in `data` where the next byte goes. */
  get offset(): number {
    return this.tail & this.mask;
  }

  /** True if n bytes fit between the write offset and the end of the ring. */
  contiguous(n: number): boolean {
    return this.capacity - (this.tail & this.mask) >= n;
  }

  /** Accounts n bytes the caller wrote at `data[offset]` (they fit: see contiguous()). */
  advance(n: number): void {
    this.tail = (this.tail + n) | 0;
  }

  /** Copies src[off, off+n) in, split at the end of the ring if need be. The caller checked free(). */
  write(src: Buffer, off: number, n: number): void {
    const at = this.tail & this.mask;
    const first = Math.min(n, this.capacity - at);
    copyBytes(src, off, this.data, at, first);
    if (first < n) copyBytes(src, off + first, this.data, 0, n - first);
    this.tail = (this.tail + n) | 0;
  }

  /** True if bytes were written since the last publish(). */
  get dirty(): boolean {
    return this.tail !== this.published;
  }

  /** Makes everything written so far visible to the consumer (one atomic store per batch). */
  publish(): void {
    this.published = this.tail;
    Atomics.store(this.idx, TAIL, this.tail);
  }

  /** Tells the consumer that bytes are waiting for space, so it wakes this side when it frees some. */
  wantSpace(on: boolean): void {
    Atomics.store(this.idx, WANT_SPACE, on ? 1 : 0);
  }
}

export class RingReader {
  readonly data: Buffer;
  readonly capacity: number;
  private readonly mask: number;
  private readonly idx: Int32Array;
  private head: number;

  constructor(sab: SharedArrayBuffer, offset: number, capacity: number) {
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.idx = new Int32Array(sab, offset, R_DATA / 4);
    this.data = Buffer.from(sab, offset + R_DATA, capacity);
    this.head = Atomics.load(this.idx, HEAD);
  }

  /**
   * Bytes published and not read yet. Out of [0, capacity] only if the producer broke
   * the protocol (or the memory was scribbled on): the caller treats that as fatal.
   */
  available(): number {
    return (Atomics.load(this.idx, TAIL) - this.head) | 0;
  }

  /** Copies the next n available bytes to dst[dstOff], in two parts if they wrap. */
  read(dst: Buffer, dstOff: number, n: number): void {
    const at = this.head & this.mask;
    const first = Math.min(n, this.capacity - at);
    copyBytes(this.data, at, dst, dstOff, first);
    if (first < n) copyBytes(this.data, 0, dst, dstOff + first, n - first);
  }

  /** Gives n read bytes back to the producer. Returns true if the producer waits for space. */
  release(n: number): boolean {
    this.head = (this.head + n) | 0;
    Atomics.store(this.idx, HEAD, this.head);
    return Atomics.load(this.idx, WANT_SPACE) !== 0;
  }
}
