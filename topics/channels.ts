/**
 * Which multicast channel carries which subject.
 *
 * A multicast deployment has a small, configured set of channels (one group:port
 * each; the addresses live in transports/, here a channel is just its index
 * 0..count-1). Every subject is carried on exactly one channel:
 *
 *  1. **Prefix rules**, explicit: `{ prefix: 'md.fx', channel: 2 }` puts every
 *     subject whose first tokens are `md`, `fx` (including `md.fx` itself) on
 *     channel 2. The longest matching prefix wins, so `md.fx.EURUSD` can have a
 *     rule of its own inside `md.fx`. Prefixes are literal subjects (no wildcards).
 *  2. **Hash fallback**: any other subject goes to
 *     `fallback[fnv1a32(key) % fallback.length]`, where `key` is the subject's
 *     first `hashTokens` tokens joined by `.` (the whole subject when it is
 *     shorter, or when `hashTokens` is 0) and fnv1a32 is 32-bit FNV-1a over the
 *     key's UTF-8 bytes. `fallback` defaults to every channel. With the default
 *     `hashTokens: 2`, `md.EURUSD.bid` and `md.EURUSD.ask` share a channel (key
 *     `md.EURUSD`), so a subscriber to `md.EURUSD.>` joins one group.
 *
 * A receiver joins the groups its subscriptions need: `channelsFor(pattern)` is
 * every channel that can carry a subject the pattern matches. A literal pattern
 * needs one channel. A wildcard pattern needs the channels of the rules it
 * overlaps, plus, unless a rule's prefix contains it entirely, the hash channels:
 * one of them when the wildcards come after the first `hashTokens` tokens
 * (`md.EURUSD.*`), all of them otherwise (`md.*.bid`, `>`). Receivers filter by
 * subject after that, so a channel shared with other subjects costs bandwidth,
 * never correctness.
 *
 * Every publisher and receiver of one deployment must use the same map (same
 * channel list, rules and hashTokens): the mapping is not negotiated on the wire.
 *
 * Pure: no Node APIs, no I/O (see README.md in this folder).
 */
import { isValidPattern, isValidSubject } from './subject.js';
import { HopbusError } from '../runtime/errors.js';

export interface ChannelRule {
  /** A literal subject prefix, in whole tokens: `md.fx` covers `md.fx` and `md.fx.>`. */
  prefix: string;
  /** Index of the channel. */
  channel: number;
}

export interface ChannelMapConfig {
  /** Number of channels (at least 1). */
  count: number;
  rules?: readonly ChannelRule[];
  /** Tokens of the subject hashed by the fallback; 0 = the whole subject. Default 2. */
  hashTokens?: number;
  /** Channels the hash spreads over (default: all of them). */
  fallback?: readonly number[];
}

export const DEFAULT_HASH_TOKENS = 2;

/** Thrown for an invalid channel map configuration. */
export class ChannelConfigError extends HopbusError {
  declare readonly code: 'BAD_CHANNELS';
  constructor(message: string) {
    super('BAD_CHANNELS', message);
  }
}

interface Rule {
  tokens: string[];
  channel: number;
}

const CACHE_MAX = 4096;

export class ChannelMap {
  readonly count: number;
  readonly hashTokens: number;
  /** Longest prefix first, so the first rule that matches is the longest. */
  private readonly rules: Rule[];
  private readonly fallback: number[];
  private readonly cache = new Map<string, number>();

  constructor(config: ChannelMapConfig) {
    const { count, rules = [], hashTokens = DEFAULT_HASH_TOKENS } = config;
    if (!Number.isInteger(count) || count < 1 || count > 65_535) throw new ChannelConfigError(`channel count must be an integer from 1 to 65535, got ${count}`);
    if (!Number.isInteger(hashTokens) || hashTokens < 0) throw new ChannelConfigError(`hashTokens must be a non-negative integer, got ${hashTokens}`);
    this.count = count;
    this.hashTokens = hashTokens;
    const seen = new Set<string>();
    this.rules = rules.map((r, i) => {
      if (r === null || typeof r !== 'object' || typeof r.prefix !== 'string' || !isValidSubject(r.prefix)) {
        throw new ChannelConfigError(`rule ${i}: prefix must be a literal subject (no wildcards), got ${JSON.stringify(r?.prefix)}`);
      }
      if (!Number.isInteger(r.channel) || r.channel < 0 || r.channel >= count) {
        throw new ChannelConfigError(`rule ${i} (prefix "${r.prefix}"): channel must be an index from 0 to ${count - 1}, got ${JSON.stringify(r.channel)}`);
      }
      if (seen.has(r.prefix)) throw new ChannelConfigError(`rule ${i}: prefix "${r.prefix}" appears twice`);
      seen.add(r.prefix);
      return { tokens: r.prefix.split('.'), channel: r.channel };
    });
    this.rules.sort((a, b) => b.tokens.length - a.tokens.length);
    const fb = config.fallback ?? Array.from({ length: count }, (_, i) => i);
    if (fb.length === 0) throw new ChannelConfigError('fallback must name at least one channel');
    for (const c of fb) {
      if (!Number.isInteger(c) || c < 0 || c >= count)
        throw new ChannelConfigError(`fallback channel ${JSON.stringify(c)} is not an index from 0 to ${count - 1}`);
    }
    this.fallback = [...new Set(fb)];
  }

  /** The channel that carries `subject` (a valid publish subject). Cached: the hot path is one Map lookup. */
  channelOf(subject: string): number {
    const hit = this.cache.get(subject);
    if (hit !== undefined) return hit;
    const c = this.compute(subject);
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(subject, c);
    return c;
  }

  private compute(subject: string): number {
    if (this.count === 1) return 0;
    const tokens = subject.split('.');
    for (const r of this.rules) if (isPrefix(r.tokens, tokens)) return r.channel;
    return this.hashed(this.hashKey(tokens));
  }

  private hashKey(tokens: string[]): string {
    const k = this.hashTokens;
    return k === 0 || tokens.length <= k ? tokens.join('.') : tokens.slice(0, k).join('.');
  }

  private hashed(key: string): number {
    return this.fallback[fnv1a32(key) % this.fallback.length]!;
  }

  /**
   * Every channel that can carry a subject matching `pattern`, ascending. Exact for
   * literal patterns and for patterns inside one rule; otherwise it may include a
   * channel that never carries a match (never one too few: see the file comment).
   */
  channelsFor(pattern: string): number[] {
    if (!isValidPattern(pattern)) throw new ChannelConfigError(`invalid subscription pattern ${JSON.stringify(pattern)}`);
    if (this.count === 1) return [0];
    const p = pattern.split('.');
    if (!p.includes('*') && !p.includes('>')) return [this.channelOf(pattern)];
    const out = new Set<number>();
    // The longest rule whose prefix contains every subject of the pattern: only
    // longer rules can then take subjects away from it, and the hash never applies.
    let covering: Rule | null = null;
    for (const r of this.rules) {
      if (contains(p, r.tokens)) {
        covering = r;
        break;
      }
    }
    for (const r of this.rules) {
      if (covering !== null && r.tokens.length <= covering.tokens.length) break;
      if (overlaps(p, r.tokens)) out.add(r.channel);
    }
    if (covering !== null) {
      out.add(covering.channel);
    } else {
      const k = this.hashTokens;
      const head = k === 0 ? p : p.slice(0, k);
      if (k > 0 && !head.includes('*') && !head.includes('>')) {
        // Every subject of the pattern starts with these k literal tokens: one key.
        out.add(this.hashed(head.join('.')));
      } else {
        for (const c of this.fallback) out.add(c);
      }
    }
    return [...out].sort((a, b) => a - b);
  }
}

function isPrefix(prefix: string[], tokens: string[]): boolean {
  if (tokens.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== tokens[i]) return false;
  return true;
}

/** Every subject matching pattern p starts with the literal tokens r. */
function contains(p: string[], r: string[]): boolean {
  if (p.length < r.length) return false;
  for (let i = 0; i < r.length; i++) if (p[i] !== r[i]) return false; // '*' and '>' differ from any literal
  return true;
}

/** Some subject matching pattern p starts with the tokens r. */
function overlaps(p: string[], r: string[]): boolean {
  for (let i = 0; i < r.length; i++) {
    if (i >= p.length) return false; // p's subjects are shorter than the prefix
    const t = p[i]!;
    if (t === '>') return true;
    if (t !== '*' && t !== r[i]) return false;
  }
  return true;
}

/** 32-bit FNV-1a over the UTF-8 encoding of `s`, as an unsigned integer. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, 0x01000193);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // a lone surrogate encodes as U+FFFD, as TextEncoder does
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >> 6)), 0x01000193);
      h = Math.imul(h ^ (0x80 | (c & 0x3f)), 0x01000193);
    } else if (c < 0x10000) {
      h = Math.imul(h ^ (0xe0 | (c >> 12)), 0x01000193);
      h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), 0x01000193);
      h = Math.imul(h ^ (0x80 | (c & 0x3f)), 0x01000193);
    } else {
      h = Math.imul(h ^ (0xf0 | (c >> 18)), 0x01000193);
      h = Math.imul(h ^ (0x80 | ((c >> 12) & 0x3f)), 0x01000193);
      h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), 0x01000193);
      h = Math.imul(h ^ (0x80 | (c & 0x3f)), 0x01000193);
    }
  }
  return h >>> 0;
}
