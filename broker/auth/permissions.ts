/**
 * broker/auth/permissions.ts: what one identity may publish and subscribe to.
 *
 *  - `publish` and `subscribe` each have `allow` and `deny` lists of subject patterns;
 *    deny wins; no `allow` list means every subject (but `$SYS`, below).
 *  - `$SYS.>` is reserved for the broker's own reports: a subject whose first token is
 *    `$SYS` is allowed only by an allow pattern whose first token is literally `$SYS`
 *    (so `>` alone does not grant it). A connection may always publish its own latency
 *    report, `$SYS.report.<its client id>`.
 *  - PUB: the decision for a subject is cached per identity (a bounded map, emptied when
 *    full), so the hot path pays one Map lookup per message.
 *  - SUB: checked once. A wildcard that could match a denied or reserved subject is
 *    refused, as nats-server refuses subscriptions its deny lists match, rather than
 *    filtered at delivery: nothing is looked at per delivered message, and a client is
 *    told at once what it cannot see. It must subscribe narrower (`md.>` rather than `>`).
 *    An allowed pattern must be inside an allow pattern (`md.*.bid` inside `md.>`).
 *  - `allow_responses`: a connection that receives a request (a message with a reply
 *    subject) may publish to that reply subject `max` times (default 1) within
 *    `expiresMs` (default 60,000; 0 = no expiry), even where `publish` denies it, as with
 *    nats-server's allow_responses. Kept per connection (Access), bounded.
 */
import { covers, matches, overlaps } from './subjects.js';

export interface SubjectRules {
  allow?: string[];
  deny?: string[];
}

export interface PermissionsConfig {
  publish?: SubjectRules | string[];
  subscribe?: SubjectRules | string[];
  allow_responses?: boolean | { max?: number; expiresMs?: number };
}

/** Entries of the per-identity publish decision cache before it is emptied. */
export const DECISION_CACHE_SIZE = 4096;
/** Reply subjects one connection may hold an allow_responses right for at once (oldest dropped first). */
export const MAX_RESPONSE_GRANTS = 4096;

const SYS = '$SYS';

function firstToken(p: string): string {
  const dot = p.indexOf('.');
  return dot < 0 ? p : p.slice(0, dot);
}

class Rules {
  readonly allow: readonly string[] | null;
  readonly deny: readonly string[];
  /** Allow patterns that grant `$SYS` subjects (first token literally `$SYS`). */
  readonly sys: readonly string[];

  constructor(r: SubjectRules | string[] | undefined) {
    const rules: SubjectRules = Array.isArray(r) ? { allow: r } : (r ?? {});
    this.allow = rules.allow ?? null;
    this.deny = rules.deny ?? [];
    this.sys = (rules.allow ?? []).filter((p) => firstToken(p) === SYS);
  }

  /** The reference decision for a literal subject. */
  subject(s: string): boolean {
    for (const d of this.deny) if (matches(d, s)) return false;
    if (firstToken(s) === SYS) return this.sys.some((a) => matches(a, s));
    return this.allow === null || this.allow.some((a) => matches(a, s));
  }

  /** A subscription pattern: nothing it could match is denied or reserved, and an allow pattern covers it. */
  pattern(p: string): boolean {
    for (const d of this.deny) if (overlaps(d, p)) return false;
    const first = firstToken(p);
    if (first === SYS) return this.sys.some((a) => covers(a, p));
    // A wildcard first token could also see $SYS subjects: only a full $SYS grant allows that.
    if ((first === '*' || first === '>') && !this.sys.some((a) => covers(a, '$SYS.>'))) return false;
    return this.allow === null || this.allow.some((a) => covers(a, p));
  }
}

/** One identity's rules, compiled; shared by all of its connections. */
export class Permissions {
  private readonly pub: Rules;
  private readonly sub: Rules;
  /** allow_responses: grants per request received, or null when off. */
  readonly responses: { max: number; expiresMs: number } | null;
  private readonly decisions = new Map<string, boolean>();

  constructor(cfg: PermissionsConfig = {}) {
    this.pub = new Rules(cfg.publish);
    this.sub = new Rules(cfg.subscribe);
    const r = cfg.allow_responses;
    this.responses = r === undefined || r === false ? null : r === true ? { max: 1, expiresMs: 60_000 } : { max: r.max ?? 1, expiresMs: r.expiresMs ?? 60_000 };
  }

  /** May publish to `subject` (cached; see the top of this file). */
  mayPublish(subject: string): boolean {
    let d = this.decisions.get(subject);
    if (d === undefined) {
      d = this.pub.subject(subject);
      if (this.decisions.size >= DECISION_CACHE_SIZE) this.decisions.clear();
      this.decisions.set(subject, d);
    }
    return d;
  }

  /** May subscribe to `pattern` (not cached: once per SUB). */
  maySubscribe(pattern: string): boolean {
    return this.sub.pattern(pattern);
  }

  /** Entries in the decision cache (tests). */
  get cached(): number {
    return this.decisions.size;
  }
}
