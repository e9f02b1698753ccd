/**
 * broker/cache/store.ts: one pattern's part of the last-value cache: per subject, the
 * newest message as a ready MSG frame with its per-subject sequence, bounded by a
 * subject count and a byte count, evicting the least recently updated subject first.
 *
 * An entry's frame is the message as the broker fans it out to connections that read
 * sequences (FLAG_SEQ), so the cache costs one copy per message and serves live
 * fanout, snapshots and `last` requests from the same bytes:
 *
 *   0    20        [36]        +8          +S        +R         +H
 *   +----+---------+-----------+-----------+---------+----------+---------+
 *   |MSG | TS block| seq (u64) | subject   | reply   | headers  | payload |
 *   |hdr | if TS   | FLAG_SEQ  |           |         |          |         |
 *   +----+---------+-----------+-----------+---------+----------+---------+
 *   flags = the PUB's FLAG_TS | FLAG_REQUEST, plus FLAG_SEQ; sid 0.
 *
 * The frame buffer is reused when the next message of the subject fits in it (and
 * fills at least half of it), so a steady stream of same-sized updates allocates
 * nothing; a full store hands its least recently updated entry, object and buffer, to a
 * new subject, so churn through more subjects than it keeps allocates nothing either. Entries are in a doubly linked list in update order (head = least recently
 * updated), which is also expiry order: a TTL sweep walks from the head and stops at
 * the first live entry.
 *
 * A tombstone (header `Hopbus-Delete`, any value; the payload is normally empty)
 * removes the subject's value; it is still delivered live, with the next sequence.
 *
 * Threading: the broker's thread. Must not import the router, sessions or the broker.
 */
import { FLAG_REQUEST, FLAG_SEQ, FLAG_TS, MSG_HEADER, Op, SEQ_BLOCK, TS_BLOCK, type MsgView } from '../../transports/protocol/index.js';
import { writeU64 } from '../../runtime/clock.js';

/** What one entry costs beside its frame: the object, its map slot, its subject string (measured roughly on Node 20). */
export const ENTRY_OVERHEAD = 160;

/** The header whose presence makes a message a tombstone. */
export const DELETE_HEADER = 'Hopbus-Delete';
const DELETE_KEY = Buffer.from(DELETE_HEADER, 'latin1');

export interface CacheStoreOptions {
  /** Subjects it matches (a subject pattern). */
  pattern: string;
  /** Subjects kept at most. */
  maxSubjects: number;
  /** Bytes kept at most: frames plus ENTRY_OVERHEAD per subject. */
  maxBytes: number;
  /** A value not updated for this long is dropped (0 = never). */
  ttlMs?: number;
}

/** One cached subject. */
export class CacheEntry {
  /** Reassigned only when a full store hands this entry, evicted, to a new subject. */
  subject: string;
  /** The MSG frame in frame[0, len); frame.length is its capacity. */
  frame: Buffer;
  len = 0;
  /** The per-subject sequence of the value held: 1 for a subject's first message. */
  seq = 0;
  /** Clock time (ms) of the last update: the publish time as the broker saw it. */
  updatedAt = 0;
  /** The store's version when the entry took its subject (broker/cache/feed.ts walks an image by it). */
  born = 0;
  /** Its place in the store's slots, for as long as it is held (-1 once removed). */
  slot = -1;
  prev: CacheEntry | null = null;
  next: CacheEntry | null = null;
  constructor(subject: string, capacity: number) {
    this.subject = subject;
    this.frame = Buffer.allocUnsafe(capacity);
  }

  /** Bytes it holds against maxBytes. */
  get cost(): number {
    return this.frame.length + ENTRY_OVERHEAD;
  }
}

export interface CacheStoreStats {
  /** Messages stored (tombstones included). */
  updates: number;
  /** Subjects dropped for the subject or byte bound (least recently updated first). */
  evictions: number;
  /** Subjects dropped because their value outlived ttlMs. */
  expirations: number;
  /** Subjects removed by a tombstone. */
  deletes: number;
  /** Messages too large for maxBytes on their own: not kept (the subject's older value is dropped too). */
  oversize: number;
}

export class CacheStore {
  readonly pattern: string;
  readonly maxSubjects: number;
  readonly maxBytes: number;
  readonly ttlMs: number;
  private readonly map = new Map<string, CacheEntry>();
  /**
   * Every entry held, each in a slot it keeps for as long as it is held (a removed
   * entry's slot is reused). With `version`, counted up by every put, this lets an image
   * start without listing anything: it walks the slots there were when it began, and
   * skips an entry born after that (broker/cache/feed.ts).
   */
  private readonly slots: (CacheEntry | null)[] = [];
  private readonly free: number[] = [];
  /** Puts so far. */
  version = 0;
  private head: CacheEntry | null = null;
  private tail: CacheEntry | null = null;
  /** Bytes held: the sum of the entries' cost. */
  bytes = 0;
  readonly stats: CacheStoreStats = { updates: 0, evictions: 0, expirations: 0, deletes: 0, oversize: 0 };
  /** A frame not kept (a tombstone, an oversize message): fanned out from here, then forgotten. */
  private readonly scratch = new CacheEntry('', 256);

  constructor(o: CacheStoreOptions) {
    this.pattern = o.pattern;
    this.maxSubjects = o.maxSubjects;
    this.maxBytes = o.maxBytes;
    this.ttlMs = o.ttlMs ?? 0;
  }

  get size(): number {
    return this.map.size;
  }

  /**
   * Stores the message of the PUB frame `v` views (checked, not yet patched into a MSG),
   * and returns the entry whose frame carries it as a MSG with its sequence: the cached
   * one, or for a tombstone or an oversize message a scratch entry valid until the next call.
   * `brokerNs` is the broker receive time for the timestamp block.
   */
  put(subject: string, v: MsgView, brokerNs: number, now: number): CacheEntry {
    this.stats.updates++;
    this.version++;
    if (this.ttlMs > 0 && this.head !== null && now - this.head.updatedAt >= this.ttlMs) this.expire(now);
    const total = v.len + SEQ_BLOCK;
    let e = this.map.get(subject);
    const seq = e === undefined ? 1 : e.seq + 1;
    const tombstone = v.headersLen > 0 && hasDeleteHeader(v.buf, v.headersOff, v.headersLen);
    if (tombstone || total + ENTRY_OVERHEAD > this.maxBytes) {
      if (e !== undefined) this.remove(e);
      if (tombstone) this.stats.deletes++;
      else this.stats.oversize++;
      const s = this.scratch;
      if (s.frame.length < total) s.frame = Buffer.allocUnsafe(total);
      fill(s, v, total, seq, brokerNs);
      return s;
    }
    if (e === undefined && this.map.size >= this.maxSubjects && this.head !== null) {
      // Full: the least recently updated subject makes room, and its entry (object and
      // buffer) serves the new one, so churn through many subjects allocates nothing.
      e = this.head;
      this.unlink(e);
      this.map.delete(e.subject);
      this.stats.evictions++;
      e.born = this.version;
      e.subject = subject;
      this.map.set(subject, e);
      this.refit(e, total);
    } else if (e === undefined) {
      e = new CacheEntry(subject, total);
      e.born = this.version;
      e.slot = this.free.length > 0 ? this.free.pop()! : this.slots.length;
      this.slots[e.slot] = e;
      this.map.set(subject, e);
      this.bytes += e.cost;
    } else {
      this.unlink(e);
      this.refit(e, total);
    }
    fill(e, v, total, seq, brokerNs);
    e.updatedAt = now;
    this.append(e);
    if (this.map.size > this.maxSubjects || this.bytes > this.maxBytes) this.evict(e);
    return e;
  }

  /** The subject's value, or undefined (none, or expired by now). */
  get(subject: string, now: number): CacheEntry | undefined {
    const e = this.map.get(subject);
    if (e === undefined) return undefined;
    if (this.ttlMs > 0 && now - e.updatedAt >= this.ttlMs) {
      this.expire(now);
      return undefined;
    }
    return e;
  }

  /** Drops every value that outlived ttlMs (from the least recently updated on). */
  expire(now: number): void {
    if (this.ttlMs <= 0) return;
    let e = this.head;
    while (e !== null && now - e.updatedAt >= this.ttlMs) {
      const next = e.next;
      this.remove(e);
      this.stats.expirations++;
      e = next;
    }
  }

  /** Slots in use or free: an image walks slots [0, slotCount) as they were when it began (broker/cache/feed.ts). */
  get slotCount(): number {
    return this.slots.length;
  }

  /** The entry in slot i, or null (free). */
  slotAt(i: number): CacheEntry | null {
    return this.slots[i] ?? null;
  }

  /** Subjects held, least recently updated first. */
  *subjects(): IterableIterator<string> {
    for (let e = this.head; e !== null; e = e.next) yield e.subject;
  }

  clear(): void {
    for (let e = this.head; e !== null; e = e.next) e.slot = -1;
    this.slots.length = 0;
    this.free.length = 0;
    this.map.clear();
    this.head = this.tail = null;
    this.bytes = 0;
  }

  /** Keeps e's buffer when `total` fits in it and fills at least half of it, else a new one. */
  private refit(e: CacheEntry, total: number): void {
    const cap = e.frame.length;
    if (total <= cap && total >= cap >>> 1) return;
    this.bytes -= cap;
    e.frame = Buffer.allocUnsafe(total);
    this.bytes += total;
  }

  /** Over a bound: drops least recently updated subjects, never `keep` (the one just stored). */
  private evict(keep: CacheEntry): void {
    while ((this.map.size > this.maxSubjects || this.bytes > this.maxBytes) && this.head !== null && this.head !== keep) {
      this.remove(this.head);
      this.stats.evictions++;
    }
  }

  private remove(e: CacheEntry): void {
    this.slots[e.slot] = null;
    this.free.push(e.slot);
    e.slot = -1;
    this.unlink(e);
    this.map.delete(e.subject);
    this.bytes -= e.cost;
  }

  private unlink(e: CacheEntry): void {
    if (e.prev !== null) e.prev.next = e.next;
    else this.head = e.next;
    if (e.next !== null) e.next.prev = e.prev;
    else this.tail = e.prev;
    e.prev = e.next = null;
  }

  private append(e: CacheEntry): void {
    e.prev = this.tail;
    e.next = null;
    if (this.tail !== null) this.tail.next = e;
    else this.head = e;
    this.tail = e;
  }
}

/** Writes the PUB `v` views into e.frame as a MSG with a sequence block (layout at the top of this file). */
function fill(e: CacheEntry, v: MsgView, total: number, seq: number, brokerNs: number): void {
  const src = v.buf;
  const off = v.off;
  const f = e.frame;
  const ts = (v.flags & FLAG_TS) !== 0;
  const fixed = MSG_HEADER + (ts ? TS_BLOCK : 0);
  src.copy(f, 0, off, off + fixed);
  f.writeUInt32LE(total, 0);
  f[4] = Op.MSG;
  f[5] = (v.flags & (FLAG_TS | FLAG_REQUEST)) | FLAG_SEQ;
  f[8] = f[9] = f[10] = f[11] = 0;
  if (ts) writeU64(f, MSG_HEADER + 8, brokerNs);
  writeU64(f, fixed, seq);
  src.copy(f, fixed + SEQ_BLOCK, off + fixed, off + v.len);
  e.len = total;
  e.seq = seq;
}

/**
 * Whether a headers block (a msgpack map of strings, already checked by the session)
 * has the key `Hopbus-Delete`. Walks the map; allocates nothing.
 */
export function hasDeleteHeader(buf: Buffer, at: number, len: number): boolean {
  const end = at + len;
  let p = at;
  const b = buf[p++]!;
  let n: number;
  if ((b & 0xf0) === 0x80) n = b & 0x0f;
  else if (b === 0xde) {
    n = buf.readUInt16BE(p);
    p += 2;
  } else if (b === 0xdf) {
    n = buf.readUInt32BE(p);
    p += 4;
  } else return false;
  for (let i = 0; i < 2 * n && p < end; i++) {
    const t = buf[p++]!;
    let l: number;
    if ((t & 0xe0) === 0xa0) l = t & 0x1f;
    else if (t === 0xd9) l = buf[p++]!;
    else if (t === 0xda) {
      l = buf.readUInt16BE(p);
      p += 2;
    } else if (t === 0xdb) {
      l = buf.readUInt32BE(p);
      p += 4;
    } else return false;
    if ((i & 1) === 0 && l === DELETE_KEY.length && buf.compare(DELETE_KEY, 0, l, p, p + l) === 0) return true;
    p += l;
  }
  return false;
}
