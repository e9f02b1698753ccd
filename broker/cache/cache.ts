/**
 * broker/cache/cache.ts: the last-value cache (config `cache`, docs/CACHE.md): one
 * CacheStore per configured pattern, the question "which store keeps this subject?"
 * (asked once per subject route, not per message: Router caches the answer on the
 * Route), the image of a snapshot subscription, and the answer to `last` requests on
 * the reserved subjects `$HOPBUS.LAST.<subject>`.
 *
 * Threading: the broker's thread. Must not import the router, sessions or the broker.
 */
import { Packr, Unpackr } from 'msgpackr';
import { FLAG_SEQ, FLAG_TS, MSG_HEADER, Op, PayloadKind, SEQ_BLOCK, TS_BLOCK, msgSize, writeMsgHeader } from '../../transports/protocol/index.js';
import { SubjectTree } from '../../topics/index.js';
import { readU64 } from '../../runtime/clock.js';
import type { Clock, Timer } from '../../runtime/clock.js';
import { CacheStore, type CacheEntry, type CacheStoreOptions } from './store.js';

/** Requests on `$HOPBUS.LAST.<subject>` are answered with that subject's cached value. */
export const LAST_PREFIX = '$HOPBUS.LAST.';
/** Answer headers: the subject's sequence, and how long ago (ms) it was updated. */
export const SEQ_HEADER = 'Hopbus-Seq';
export const AGE_HEADER = 'Hopbus-Age-Ms';
/** Answer header when nothing is cached for the subject: `Hopbus-Last: none` (empty payload). */
export const NONE_HEADER = 'Hopbus-Last';

export type CacheOptions = CacheStoreOptions;
export const CACHE_OPTION_KEYS = ['pattern', 'maxSubjects', 'maxBytes', 'ttlMs'] as const;

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const packr = new Packr({ useRecords: false });

/** Totals over every store, for /varz and /metrics. */
export interface CacheStats {
  subjects: number;
  bytes: number;
  /** Cached values served: snapshot messages and `last` answers with a value. */
  hits: number;
  /** `last` requests for a subject with nothing cached. */
  misses: number;
  updates: number;
  evictions: number;
  expirations: number;
  deletes: number;
  oversize: number;
  /** Snapshot subscriptions made, and those whose image is still being sent. */
  snapshots: number;
  imagesPending: number;
  /** Each configured pattern with its bounds and what it holds now. */
  patterns: Array<{ pattern: string; maxSubjects: number; maxBytes: number; ttlMs: number; subjects: number; bytes: number }>;
}

export class LastValueCache {
  readonly stores: CacheStore[];
  hits = 0;
  misses = 0;
  snapshots = 0;
  imagesPending = 0;
  private sweeper: Timer | null = null;

  constructor(
    options: readonly CacheOptions[],
    private readonly clock: Clock,
  ) {
    this.stores = options.map((o) => new CacheStore(o));
  }

  get enabled(): boolean {
    return this.stores.length > 0;
  }

  /** The store that keeps `subject` (the first configured pattern it matches), or null. */
  storeFor(subject: string): CacheStore | null {
    for (const s of this.stores) if (SubjectTree.matches(s.pattern, subject)) return s;
    return null;
  }

  now(): number {
    return this.clock.now();
  }

  /** Expired values are dropped by a sweep every half TTL (the shortest), besides on every read. */
  start(): void {
    let ttl = Infinity;
    for (const s of this.stores) if (s.ttlMs > 0) ttl = Math.min(ttl, s.ttlMs);
    if (ttl === Infinity) return;
    this.sweeper = this.clock.interval(() => this.expire(), Math.max(10, ttl / 2)).unref();
  }

  stop(): void {
    this.clock.clear(this.sweeper);
    this.sweeper = null;
  }

  expire(): void {
    const now = this.clock.now();
    for (const s of this.stores) s.expire(now);
  }

  /** The cached value of `subject`, or undefined. */
  get(subject: string): CacheEntry | undefined {
    const s = this.storeFor(subject);
    return s === null ? undefined : s.get(subject, this.clock.now());
  }

  /** Cached subjects matching `pattern` now (what an image of it would hold if it were sent at once). */
  image(pattern: string): string[] {
    const out: string[] = [];
    const now = this.clock.now();
    for (const s of this.stores) {
      s.expire(now);
      for (const subject of s.subjects()) if (SubjectTree.matches(pattern, subject) && this.storeFor(subject) === s) out.push(subject);
    }
    return out;
  }

  /**
   * The answer to a `last` request for `subject`, as a MSG frame on `reply`: the cached
   * payload, kind and headers, with Hopbus-Seq and Hopbus-Age-Ms added; or an empty
   * message with `Hopbus-Last: none`. Off the hot path (a request): it allocates.
   */
  answer(subject: string, reply: string): Buffer {
    const e = this.get(subject);
    let headers: Record<string, string>;
    let kind: number = PayloadKind.RAW;
    let payload: Buffer = Buffer.alloc(0);
    if (e === undefined) {
      this.misses++;
      headers = { [NONE_HEADER]: 'none' };
    } else {
      this.hits++;
      const f = e.frame;
      const fixed = MSG_HEADER + ((f[5]! & FLAG_TS) !== 0 ? TS_BLOCK : 0);
      const s = f.readUInt16LE(12);
      const r = f.readUInt16LE(14);
      const h = f.readUInt32LE(16);
      const hAt = fixed + ((f[5]! & FLAG_SEQ) !== 0 ? SEQ_BLOCK : 0) + s + r;
      headers = h > 0 ? { ...(unpackr.unpack(f.subarray(hAt, hAt + h)) as Record<string, string>) } : {};
      headers[SEQ_HEADER] = String(readU64(f, fixed));
      headers[AGE_HEADER] = String(Math.max(0, Math.round(this.clock.now() - e.updatedAt)));
      kind = f[6]!;
      payload = f.subarray(hAt + h, e.len);
    }
    const hb = packr.pack(headers);
    const sb = Buffer.byteLength(reply);
    const total = msgSize(sb, 0, hb.length, payload.length, false);
    const frame = Buffer.allocUnsafe(total);
    let at = writeMsgHeader(frame, 0, total, Op.MSG, 0, kind, 0, sb, 0, hb.length);
    at += frame.write(reply, at, sb, 'utf8');
    frame.set(hb, at);
    frame.set(payload, at + hb.length);
    return frame;
  }

  stats(): CacheStats {
    const t: CacheStats = {
      subjects: 0,
      bytes: 0,
      hits: this.hits,
      misses: this.misses,
      updates: 0,
      evictions: 0,
      expirations: 0,
      deletes: 0,
      oversize: 0,
      snapshots: this.snapshots,
      imagesPending: this.imagesPending,
      patterns: this.stores.map((s) => ({
        pattern: s.pattern,
        maxSubjects: s.maxSubjects,
        maxBytes: s.maxBytes,
        ttlMs: s.ttlMs,
        subjects: s.size,
        bytes: s.bytes,
      })),
    };
    for (const s of this.stores) {
      t.subjects += s.size;
      t.bytes += s.bytes;
      t.updates += s.stats.updates;
      t.evictions += s.stats.evictions;
      t.expirations += s.stats.expirations;
      t.deletes += s.stats.deletes;
      t.oversize += s.stats.oversize;
    }
    return t;
  }
}

/** What is wrong with a `cache` option (an array of { pattern, maxSubjects, maxBytes, ttlMs? }), or null. */
export function cacheOptionsProblem(value: unknown, isValidPattern: (p: string) => boolean): string | null {
  if (!Array.isArray(value)) return '"cache" must be an array of { pattern, maxSubjects, maxBytes, ttlMs? }';
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as Record<string, unknown> | null;
    if (c === null || typeof c !== 'object' || Array.isArray(c)) return `"cache[${i}]" must be an object { pattern, maxSubjects, maxBytes, ttlMs? }`;
    for (const key of Object.keys(c)) {
      if (!(CACHE_OPTION_KEYS as readonly string[]).includes(key))
        return `"cache[${i}]" has an unknown key "${key}"; known keys: ${CACHE_OPTION_KEYS.join(', ')}`;
    }
    if (typeof c.pattern !== 'string' || !isValidPattern(c.pattern))
      return `"cache[${i}].pattern" must be a valid subject pattern (e.g. "md.>"), got ${JSON.stringify(c.pattern)}`;
    if (c.pattern.startsWith('$')) return `"cache[${i}].pattern" must not cover system subjects ($...), got ${JSON.stringify(c.pattern)}`;
    for (const key of ['maxSubjects', 'maxBytes'] as const) {
      const v = c[key];
      if (!(Number.isSafeInteger(v) && (v as number) >= 1)) return `"cache[${i}].${key}" must be a positive integer, got ${JSON.stringify(v)}`;
    }
    if (c.ttlMs !== undefined && !(Number.isSafeInteger(c.ttlMs) && (c.ttlMs as number) >= 0))
      return `"cache[${i}].ttlMs" must be a non-negative integer (0 = no expiry), got ${JSON.stringify(c.ttlMs)}`;
  }
  return null;
}
