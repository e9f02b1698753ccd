/**
 * broker/auth/permissions.ts: what one identity may publish and subscribe to.
 *
 *  - `publish` and `subscribe` each have `allow` and `deny` lists of subject patterns;
 *    deny wins; no `allow` list means every subject (but `$SYS`, below).
 *  - `$SYS.>` is reserved for the broker's own reports: a subject under `$SYS.` is allowed
 *    only by an allow pattern that itself starts with `$SYS.` (so `>` alone does not grant
 *    it). A connection may always publish its own latency report, `$SYS.report.<its client id>`.
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

const SYS = '$SYS.';

/**
 * The part of pattern p that reaches into `$SYS.>`, as a pattern, or null when none does:
 * p itself under `$SYS.`; `*.x.y` reaches `$SYS.x.y`; `>` reaches all of `$SYS.>`.
 */
function reserved(p: string): string | null {
  if (p.startsWith(SYS)) return p;
  if (p === '>' || p.startsWith('>.')) return '$SYS.>';
  if (p.startsWith('*.')) return SYS + p.slice(2);
  return null;
}

class Rules {
  readonly allow: readonly string[] | null;
  readonly deny: readonly string[];
  /** Allow patterns that grant `$SYS.` subjects (those that start with `$SYS.`). */
  readonly sys: readonly string[];

  constructor(r: SubjectRules | string[] | undefined) {
    const rules: SubjectRules = Array.isArray(r) ? { allow: r } : (r ?? {});
    this.allow = rules.allow ?? null;
    this.deny = rules.deny ?? [];
    this.sys = (rules.allow ?? []).filter((p) => p.startsWith(SYS));
  }

  /** The reference decision for a literal subject. */
  subject(s: string): boolean {
    for (const d of this.deny) if (matches(d, s)) return false;
    if (s.startsWith(SYS)) return this.sys.some((a) => matches(a, s));
    return this.allow === null || this.allow.some((a) => matches(a, s));
  }

  /** A subscription pattern: nothing it could match is denied or reserved, and an allow pattern covers it. */
  pattern(p: string): boolean {
    for (const d of this.deny) if (overlaps(d, p)) return false;
    const sys = reserved(p);
    if (sys === p) return this.sys.some((a) => covers(a, p));
    // A wildcard first token could also see $SYS subjects: allowed only with a grant for those.
    if (sys !== null && !this.sys.some((a) => covers(a, sys))) return false;
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
