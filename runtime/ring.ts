/**
 * runtime/ring.ts: the one bounded FIFO of hopbus, a ring buffer over a plain array.
 * It backs the hold ring's lists of slabs and pages (broker/holdring.ts), the multicast
 * receiver's per-subscription queue (client/inbox.ts Inbox) and an iterator
 * subscription's buffer (client/subscription.ts).
 *
 *   buf:  [ . . . c d e f . . ]      head = 2, length = 4, capacity = buf.length
 *               ^head   ^head+length-1 (indices wrap at capacity)
 *
 * Invariants: 0 <= head < capacity when capacity > 0; the `length` slots from head
 * (wrapping) hold the entries, every other slot holds undefined, so a removed entry
 * is never kept alive by the ring.
 *
 * Storage is allocated on the first push and grows geometrically (doubling, from
 * `initialCapacity`) up to `maxCapacity`; a ring that is never used costs one empty
 * array. At `maxCapacity`, push and unshift store nothing and return false: what to
 * give up (the arriving entry, the oldest, the connection) is the caller's policy, so
 * it is decided where the policy is named, not here.
 *
 * Allocation: none per entry once grown (growth copies into a new array, amortised
 * O(1)). Threading: one thread, the owner's.
 * Imports only runtime/errors.ts: runtime/ is below every other folder.
 */
import { OptionsError } from './errors.js';

export class Ring<T> {
  private buf: (T | undefined)[] = [];
  private head = 0;
  /** Entries held. */
  length = 0;

  constructor(
    /** Most entries the ring holds; push and unshift refuse beyond it. */
    readonly maxCapacity = Infinity,
    /** Slots allocated on the first push. */
    readonly initialCapacity = 16,
  ) {
    if (!(maxCapacity >= 1)) throw new OptionsError(`a ring holds at least 1 entry, got maxCapacity ${maxCapacity}`);
  }

  /** Slots allocated now (grows towards maxCapacity as entries arrive). */
  get capacity(): number {
    return this.buf.length;
  }

  /** True when the ring holds maxCapacity entries: push and unshift would refuse. */
  get full(): boolean {
    return this.length >= this.maxCapacity;
  }

  /** Appends at the tail; false (nothing stored) when the ring is at maxCapacity. */
  push(v: T): boolean {
    if (this.length === this.buf.length && !this.grow()) return false;
    let i = this.head + this.length;
    if (i >= this.buf.length) i -= this.buf.length;
    this.buf[i] = v;
    this.length++;
    return true;
  }

  /** Puts an entry back at the head (it could not be consumed yet); false when at maxCapacity. */
  unshift(v: T): boolean {
    if (this.length === this.buf.length && !this.grow()) return false;
    this.head = this.head === 0 ? this.buf.length - 1 : this.head - 1;
    this.buf[this.head] = v;
    this.length++;
    return true;
  }

  /** Removes and returns the oldest entry. */
  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const v = this.buf[this.head];
    this.buf[this.head] = undefined;
    this.head = this.head + 1 === this.buf.length ? 0 : this.head + 1;
    this.length--;
    return v;
  }

  /** The oldest entry, left in place. */
  peek(): T | undefined {
    return this.length === 0 ? undefined : this.buf[this.head];
  }

  /** The entry `i` places after the oldest (0 = the oldest), or undefined outside 0..length-1. */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.length) return undefined;
    let j = this.head + i;
    if (j >= this.buf.length) j -= this.buf.length;
    return this.buf[j];
  }

  /** Empties the ring and gives its storage back (a burst does not pin memory afterwards). */
  clear(): void {
    this.buf = [];
    this.head = 0;
    this.length = 0;
  }

  /** Doubles the storage, capped at maxCapacity; false when already there. */
  private grow(): boolean {
    const cap = this.buf.length;
    if (cap >= this.maxCapacity) return false;
    const n = Math.min(Math.max(this.initialCapacity, cap * 2), this.maxCapacity);
    const next: (T | undefined)[] = new Array(n);
    for (let i = 0; i < this.length; i++) next[i] = this.buf[(this.head + i) % cap];
    this.buf = next;
    this.head = 0;
    return true;
  }
}
