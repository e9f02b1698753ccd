/**
 * broker/holdring.ts: the messages held for one consumer that is behind, kept off the
 * V8 heap. Outbound (broker/policy.ts) decides what to hold, drop or replace; this
 * file only stores frames, in order, and finds the held one of a subject.
 *
 * Why off-heap: a consumer frozen for seconds at market-data rates is held hundreds of
 * thousands of messages. As one object (and one Buffer) each, every one of them is
 * allocated, promoted, scanned and freed by the garbage collector of the process that
 * serves everyone else, and its pauses are what the healthy subscribers feel. Here a
 * held message costs a copy of its bytes into a slab and one slot of typed metadata:
 * no object, no Buffer, no closure per message.
 *
 * Bytes. Frames are laid end to end in one byte ring addressed by a position that only
 * grows (a double: exact to 2^53, centuries at any rate). The ring is made of slabs of
 * `slabBytes`; position p is in slab floor(p / slabBytes) at offset p % slabBytes, and
 * a frame may straddle two (or more) slabs. Only the slabs that hold [head, tail) exist:
 * a slab is taken when the tail enters it and given back when the head leaves it, so
 * memory follows what is held, at slab granularity.
 *
 *   slabs:   [ ....AAAA|BBBBBCC. ]  [ CCCCCDD. ........ ]
 *                 ^head                     ^tail
 *
 * Slots. Slot s (also an ever-growing number) describes the s-th frame pushed, in a
 * page of PAGE_SLOTS slots; pages are taken and given back like slabs. A page is one
 * Uint32Array, four words per slot:
 *
 *   word 0   frame length (bits 0-27; 0 = dead, see below) | policy << 28
 *   word 1   span: ring bytes the slot occupies (the length, or more for conflate)
 *   word 2   id of the subscriptions the message is for (loss accounting), see SubsTable
 *   word 3   conflation key id + 1 (0 = not indexed)
 *
 * The slot of the frame at the head is headSlot; a slot's position is the head's plus
 * the spans of the slots before it, so positions are not stored, except per conflation
 * key (a key knows where its frame is, to overwrite it).
 *
 * Conflation. The newest held conflatable frame of each subject is indexed by subject
 * (a Map from subject to key id: per subject, not per message). A newer message on the
 * subject overwrites the held frame in place when it fits in its span (conflate slots
 * take spans rounded up to CONFLATE_ALIGN, so small size changes fit) and so keeps the
 * queue position; a larger one kills the held slot (length 0: skipped, its bytes stay
 * until the head passes) and goes to the tail.
 *
 * Invariants: the head slot is live whenever the ring is not empty (dead slots are
 * passed over as soon as they reach the head), so `length === 0` means empty; `bytes`
 * is the sum of live frame lengths; `occupied` (tail - head) is every span, dead ones
 * included; `cost` (what the bounds count) is occupied + SLOT_BYTES per slot.
 *
 * Memory: slabs and pages intersecting what is held (at most one partial slab and page
 * at each end), plus per-subject and per-subscription-set tables. Given-back slabs and
 * pages go to a small pool shared by the process (POOL_BYTES), so a consumer that keeps
 * falling behind and catching up does not allocate each time.
 *
 * Threading: the broker's thread. Imports nothing from sessions or the router.
 */
import { Ring } from '../runtime/ring.js';
import { copyBytes } from '../transports/intern.js';

/** Bookkeeping per held message (one slot: four 32-bit words), charged against the bounds with its bytes. */
export const SLOT_BYTES = 16;
/** Slots per metadata page (a page is PAGE_SLOTS * SLOT_BYTES = 16 KiB). */
export const PAGE_SLOTS = 1024;
const PAGE_BYTES = PAGE_SLOTS * SLOT_BYTES;
/** The largest slab: 256 KiB, so that the granularity of what a held consumer costs stays small beside maxPending. */
export const HOLD_SLAB_BYTES = 256 * 1024;
/** The smallest slab (for tiny maxPending bounds). */
export const MIN_SLAB_BYTES = 4096;
/** Conflatable frames take spans rounded up to this, so a replacement a few bytes longer still fits in place. */
export const CONFLATE_ALIGN = 32;
/** Ring bytes a frame of `len` bytes takes: its length, rounded up to CONFLATE_ALIGN for a conflatable one. */
export function spanOf(len: number, conflatable: boolean): number {
  return conflatable ? (len + CONFLATE_ALIGN - 1) & ~(CONFLATE_ALIGN - 1) : len;
}

/** Slabs and pages kept for reuse by the whole process, at most. */
export const POOL_BYTES = 8 * 1024 * 1024;

const LEN_MASK = 0x0fffffff;
const POLICY_SHIFT = 28;

/**
 * The slab size for a bound of `maxBytes`: an eighth of it, a power of two, between
 * MIN_SLAB_BYTES and HOLD_SLAB_BYTES, so that slab granularity is at most an eighth of
 * the bound per partial slab.
 */
export function slabBytesFor(maxBytes: number): number {
  let s = MIN_SLAB_BYTES;
  while (s < HOLD_SLAB_BYTES && s * 2 * 8 <= maxBytes) s *= 2;
  return s;
}

/** Slabs and pages given back, for the next ring that needs one (per size). Process-wide, bounded by POOL_BYTES. */
class BlockPool {
  private readonly slabs = new Map<number, Buffer[]>();
  private readonly pages: Uint32Array[] = [];
  /** Bytes kept in the pool now. */
  bytes = 0;
  /** Slabs and pages allocated from the system, ever (the pool's misses). */
  allocated = 0;

  slab(size: number): Buffer {
    const free = this.slabs.get(size);
    if (free !== undefined && free.length > 0) {
      this.bytes -= size;
      return free.pop()!;
    }
    this.allocated++;
    return Buffer.allocUnsafeSlow(size);
  }

  page(): Uint32Array {
    if (this.pages.length > 0) {
      this.bytes -= PAGE_BYTES;
      return this.pages.pop()!;
    }
    this.allocated++;
    return new Uint32Array(PAGE_SLOTS * 4);
  }

  giveSlab(b: Buffer): void {
    if (this.bytes + b.length > POOL_BYTES) return; // left to the garbage collector
    let free = this.slabs.get(b.length);
    if (free === undefined) this.slabs.set(b.length, (free = []));
    free.push(b);
    this.bytes += b.length;
  }

  givePage(p: Uint32Array): void {
    if (this.bytes + PAGE_BYTES > POOL_BYTES) return;
    this.pages.push(p);
    this.bytes += PAGE_BYTES;
  }

  /** Forgets everything kept (tests that measure memory start from an empty pool). */
  drain(): void {
    this.slabs.clear();
    this.pages.length = 0;
    this.bytes = 0;
  }
}

/** The process's pool of slabs and pages (broker thread; a worker-thread broker has its own). */
export const holdPool = new BlockPool();

/**
 * The subscription lists (Outbound's LossCounters arrays, one per route and session)
 * that held messages are for, by small integer id, with a count of the slots using
 * each, so that a slot stores an id instead of a reference. Per list, not per message;
 * an id is freed when no slot uses it (the list seen last stays cached until another
 * one comes, so a consumer hovering at one held message does not churn the Map).
 */
class SubsTable<T extends object> {
  private readonly ids = new Map<T, number>();
  private list: (T | undefined)[] = [];
  private refs = new Int32Array(0); // grown on first use: most connections never hold anything
  private readonly free: number[] = [];
  private last: T | undefined = undefined;
  private lastId = -1;

  /** The id of `subs`, counted once more. */
  take(subs: T): number {
    let id: number;
    if (subs === this.last) {
      id = this.lastId;
    } else {
      const prev = this.lastId;
      const known = this.ids.get(subs);
      if (known !== undefined) id = known;
      else {
        id = this.free.length > 0 ? this.free.pop()! : this.list.length;
        if (id >= this.refs.length) {
          const r = new Int32Array(Math.max(16, this.refs.length * 2));
          r.set(this.refs);
          this.refs = r;
        }
        this.list[id] = subs;
        this.ids.set(subs, id);
      }
      this.last = subs;
      this.lastId = id;
      if (prev >= 0 && prev !== id && this.refs[prev] === 0) this.release(prev);
    }
    this.refs[id]!++;
    return id;
  }

  get(id: number): T {
    return this.list[id]!;
  }

  /** One slot less uses `id`. */
  drop(id: number): void {
    if (--this.refs[id]! === 0 && id !== this.lastId) this.release(id);
  }

  private release(id: number): void {
    this.ids.delete(this.list[id]!);
    this.list[id] = undefined;
    this.free.push(id);
  }

  /** Lists known now (for memory accounting and tests). */
  get size(): number {
    return this.ids.size;
  }

  clear(): void {
    this.ids.clear();
    this.list = [];
    this.refs = new Int32Array(0);
    this.free.length = 0;
    this.last = undefined;
    this.lastId = -1;
  }
}

/** Memory the per-subject and per-subscription-list tables cost, by entry (estimated: a Map entry and an array slot). */
const TABLE_ENTRY_BYTES = 48;

export class HoldRing<S extends object = object> {
  /** Live messages held. */
  length = 0;
  /** Bytes of the live frames: what the consumer will be written. */
  bytes = 0;
  /** Slabs and pages this ring has taken (from the pool or the system), ever: grows with held bytes, never with messages. */
  blocksTaken = 0;

  private head = 0;
  private tail = 0;
  private headSlot = 0;
  private tailSlot = 0;
  /** Slabs from slab number slabBase on; pages from page number pageBase on. */
  private readonly slabs = new Ring<Buffer>(Infinity, 8);
  private slabBase = 0;
  private readonly pages = new Ring<Uint32Array>(Infinity, 4);
  private pageBase = 0;

  private readonly subs = new SubsTable<S>();
  /** Conflation index: subject -> key id; per key its subject, slot and position. */
  private readonly keyIds = new Map<string, number>();
  private keySubject: (string | undefined)[] = [];
  private keySlot = new Float64Array(0);
  private keyPos = new Float64Array(0);
  private readonly freeKeys: number[] = [];

  constructor(readonly slabBytes: number = HOLD_SLAB_BYTES) {
    if (!(slabBytes >= 16)) throw new RangeError(`a hold ring's slabs hold at least 16 bytes, got ${slabBytes}`);
  }

  /** Slots in the ring, dead ones included. */
  get slots(): number {
    return this.tailSlot - this.headSlot;
  }

  /** Ring bytes in use, dead spans included. */
  get occupied(): number {
    return this.tail - this.head;
  }

  /** What the bounds count: the bytes in use and the bookkeeping of every slot. */
  get cost(): number {
    return this.tail - this.head + (this.tailSlot - this.headSlot) * SLOT_BYTES;
  }

  /** Memory held now: slabs and pages at their full size, and the tables. */
  get memoryBytes(): number {
    return this.slabs.length * this.slabBytes + this.pages.length * PAGE_BYTES + (this.keyIds.size + this.subs.size) * TABLE_ENTRY_BYTES;
  }

  /** Slabs and pages held now. */
  get blocks(): number {
    return this.slabs.length + this.pages.length;
  }

  /**
   * Appends a copy of frame buf[off, off+len), with the subscription-id field (bytes
   * 8-11) patched to `sid` in the copy when sid is not 0. With `key`, the frame is the
   * conflatable one of that subject (there must be none held: see conflatable()).
   */
  push(buf: Buffer, off: number, len: number, sid: number, policy: number, subs: S, key: string | null): void {
    const span = spanOf(len, key !== null);
    const pos = this.tail;
    this.ensureBytes(pos + span);
    this.writeBytes(pos, buf, off, len);
    if (sid !== 0) this.writeU32(pos + 8, sid);
    const slot = this.tailSlot;
    this.ensureSlot(slot);
    const page = this.pages.at(Math.floor(slot / PAGE_SLOTS) - this.pageBase)!;
    const w = (slot % PAGE_SLOTS) * 4;
    page[w] = len | (policy << POLICY_SHIFT);
    page[w + 1] = span;
    page[w + 2] = this.subs.take(subs);
    page[w + 3] = key === null ? 0 : this.indexKey(key, slot, pos) + 1;
    this.tail = pos + span;
    this.tailSlot = slot + 1;
    this.length++;
    this.bytes += len;
  }

  /** The slot of the held conflatable frame of `subject`, or -1. */
  conflatable(subject: string): number {
    const k = this.keyIds.get(subject);
    return k === undefined ? -1 : this.keySlot[k]!;
  }

  /** The subscriptions the message in `slot` is for. */
  subsOf(slot: number): S {
    return this.subs.get(this.word(slot, 2));
  }

  /** The length of the frame in `slot`, 0 if dead. */
  lengthOf(slot: number): number {
    return this.word(slot, 0) & LEN_MASK;
  }

  /** The policy of the message in `slot`. */
  policyOf(slot: number): number {
    return this.word(slot, 0) >>> POLICY_SHIFT;
  }

  /**
   * Conflation: overwrites the frame of conflatable `slot` with a newer one, in place,
   * now for `subs`; false (nothing changed) when the newer one does not fit its span.
   */
  overwrite(slot: number, buf: Buffer, off: number, len: number, sid: number, subs: S): boolean {
    const page = this.pageOf(slot);
    const w = (slot % PAGE_SLOTS) * 4;
    if (len > page[w + 1]!) return false;
    const pos = this.keyPos[page[w + 3]! - 1]!;
    this.writeBytes(pos, buf, off, len);
    if (sid !== 0) this.writeU32(pos + 8, sid);
    this.bytes += len - (page[w]! & LEN_MASK);
    page[w] = len | (page[w]! & ~LEN_MASK);
    const id = this.subs.take(subs);
    this.subs.drop(page[w + 2]!);
    page[w + 2] = id;
    return true;
  }

  /** Kills a live slot in place: it is skipped, and its bytes are given back once the head passes it. */
  kill(slot: number): void {
    const page = this.pageOf(slot);
    const w = (slot % PAGE_SLOTS) * 4;
    this.unlink(page, w);
    page[w] = page[w]! & ~LEN_MASK;
    if (slot === this.headSlot) this.passDead();
  }

  /** The slot of the oldest held message (the ring must not be empty). */
  get first(): number {
    return this.headSlot;
  }

  /** Copies the oldest held frame to dst at `at` (the ring must not be empty); returns its length. */
  copyFirst(dst: Buffer, at: number): number {
    const len = this.word(this.headSlot, 0) & LEN_MASK;
    this.readBytes(this.head, dst, at, len);
    return len;
  }

  /** Bytes of the frames counted by the last measure(). */
  measuredBytes = 0;

  /**
   * How many of the oldest live frames fit in `room` bytes together (at least one, if
   * any is held); their bytes are left in measuredBytes. Nothing is removed.
   */
  measure(room: number): number {
    let n = 0;
    let bytes = 0;
    for (let slot = this.headSlot; slot < this.tailSlot; slot++) {
      const len = this.word(slot, 0) & LEN_MASK;
      if (len === 0) continue;
      if (n > 0 && bytes + len > room) break;
      bytes += len;
      n++;
    }
    this.measuredBytes = bytes;
    return n;
  }

  /**
   * Copies the `n` oldest live frames to dst at `at`, end to end (the ring must hold
   * that many; remove them with shift() afterwards). Frames adjacent in the ring leave
   * in one copy per slab. Returns the bytes copied.
   */
  copyFrames(dst: Buffer, at: number, n: number): number {
    let pos = this.head;
    let runStart = pos;
    let runLen = 0;
    let copied = 0;
    for (let slot = this.headSlot; n > 0; slot++) {
      const page = this.pageOf(slot);
      const w = (slot % PAGE_SLOTS) * 4;
      const len = page[w]! & LEN_MASK;
      if (len !== 0) {
        if (pos !== runStart + runLen) {
          this.readBytes(runStart, dst, at + copied, runLen);
          copied += runLen;
          runStart = pos;
          runLen = 0;
        }
        runLen += len;
        n--;
      }
      pos += page[w + 1]!;
    }
    this.readBytes(runStart, dst, at + copied, runLen);
    return copied + runLen;
  }

  /** Removes the oldest held message (the ring must not be empty); returns the subscriptions it was for. */
  shift(): S {
    const slot = this.headSlot;
    const page = this.pageOf(slot);
    const w = (slot % PAGE_SLOTS) * 4;
    const subs = this.subs.get(page[w + 2]!);
    this.unlink(page, w);
    this.advance(page[w + 1]!);
    this.passDead();
    return subs;
  }

  /** Copies of the live frames, oldest first. Allocates: for tests and diagnostics, never the message path. */
  toFrames(): Buffer[] {
    const out: Buffer[] = [];
    let pos = this.head;
    for (let slot = this.headSlot; slot < this.tailSlot; slot++) {
      const len = this.word(slot, 0) & LEN_MASK;
      if (len !== 0) {
        const f = Buffer.allocUnsafe(len);
        this.readBytes(pos, f, 0, len);
        out.push(f);
      }
      pos += this.word(slot, 1);
    }
    return out;
  }

  /** Empties the ring and gives back its slabs, pages and tables (the session is gone). */
  clear(): void {
    this.reset();
    this.slabs.clear(); // their storage too
    this.pages.clear();
    this.length = this.bytes = 0;
    this.subs.clear();
    this.keyIds.clear();
    this.keySubject = [];
    this.freeKeys.length = 0;
  }

  // --- inside ------------------------------------------------------------------------

  /** Nothing is held: positions start over at 0, slabs and pages go back to the pool (the tables stay). */
  private reset(): void {
    while (this.slabs.length > 0) holdPool.giveSlab(this.slabs.shift()!);
    while (this.pages.length > 0) holdPool.givePage(this.pages.shift()!);
    this.head = this.tail = this.headSlot = this.tailSlot = this.slabBase = this.pageBase = 0;
  }

  /** A live slot leaves: its bytes, its subscriptions' count, its conflation key. */
  private unlink(page: Uint32Array, w: number): void {
    this.length--;
    this.bytes -= page[w]! & LEN_MASK;
    this.subs.drop(page[w + 2]!);
    const k = page[w + 3]!;
    if (k !== 0) {
      page[w + 3] = 0;
      this.freeKey(k - 1);
    }
  }

  /** Moves the head past one slot of `span` bytes, giving back the slabs and pages it leaves. */
  private advance(span: number): void {
    this.head += span;
    this.headSlot++;
    if (this.headSlot === this.tailSlot) {
      this.reset();
      return;
    }
    const s = this.slabBytes;
    while ((this.slabBase + 1) * s <= this.head) {
      holdPool.giveSlab(this.slabs.shift()!);
      this.slabBase++;
    }
    while ((this.pageBase + 1) * PAGE_SLOTS <= this.headSlot) {
      holdPool.givePage(this.pages.shift()!);
      this.pageBase++;
    }
  }

  /** Passes dead slots at the head, so that the head slot is live or the ring is empty. */
  private passDead(): void {
    while (this.headSlot < this.tailSlot) {
      const page = this.pageOf(this.headSlot);
      const w = (this.headSlot % PAGE_SLOTS) * 4;
      if ((page[w]! & LEN_MASK) !== 0) return;
      this.advance(page[w + 1]!);
    }
  }

  private word(slot: number, i: number): number {
    return this.pageOf(slot)[(slot % PAGE_SLOTS) * 4 + i]!;
  }

  private pageOf(slot: number): Uint32Array {
    return this.pages.at(Math.floor(slot / PAGE_SLOTS) - this.pageBase)!;
  }

  private ensureSlot(slot: number): void {
    while ((this.pageBase + this.pages.length) * PAGE_SLOTS <= slot) {
      this.pages.push(holdPool.page());
      this.blocksTaken++;
    }
  }

  private ensureBytes(end: number): void {
    const s = this.slabBytes;
    while ((this.slabBase + this.slabs.length) * s < end) {
      this.slabs.push(holdPool.slab(s));
      this.blocksTaken++;
    }
  }

  private writeBytes(pos: number, src: Buffer, off: number, len: number): void {
    const s = this.slabBytes;
    let k = Math.floor(pos / s);
    let o = pos - k * s;
    while (len > 0) {
      const n = Math.min(len, s - o);
      copyBytes(src, off, this.slabs.at(k - this.slabBase)!, o, n);
      off += n;
      len -= n;
      k++;
      o = 0;
    }
  }

  private readBytes(pos: number, dst: Buffer, at: number, len: number): void {
    const s = this.slabBytes;
    let k = Math.floor(pos / s);
    let o = pos - k * s;
    while (len > 0) {
      const n = Math.min(len, s - o);
      copyBytes(this.slabs.at(k - this.slabBase)!, o, dst, at, n);
      at += n;
      len -= n;
      k++;
      o = 0;
    }
  }

  /** A little-endian u32 at ring position `pos`, byte by byte (it may straddle two slabs). */
  private writeU32(pos: number, v: number): void {
    const s = this.slabBytes;
    for (let i = 0; i < 4; i++, pos++) {
      const k = Math.floor(pos / s);
      this.slabs.at(k - this.slabBase)![pos - k * s] = (v >>> (8 * i)) & 0xff;
    }
  }

  private indexKey(subject: string, slot: number, pos: number): number {
    const k = this.freeKeys.length > 0 ? this.freeKeys.pop()! : this.keySubject.length;
    if (k >= this.keySlot.length) {
      const n = Math.max(8, this.keySlot.length * 2);
      const a = new Float64Array(n);
      a.set(this.keySlot);
      this.keySlot = a;
      const b = new Float64Array(n);
      b.set(this.keyPos);
      this.keyPos = b;
    }
    this.keySubject[k] = subject;
    this.keySlot[k] = slot;
    this.keyPos[k] = pos;
    this.keyIds.set(subject, k);
    return k;
  }

  private freeKey(k: number): void {
    this.keyIds.delete(this.keySubject[k]!);
    this.keySubject[k] = undefined;
    this.freeKeys.push(k);
  }
}
