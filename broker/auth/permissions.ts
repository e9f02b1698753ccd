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
 *  - Queue groups, as nats-server has them: a subscribe entry may be "subject queue"
 *    (`"orders.> workers"`; the queue part a group name, or `*` or `>` for any group).
 *    Allow: a plain entry that covers the pattern allows it with any group and with none,
 *    unless a queue entry covers it too and the SUB names a group: then the group must
 *    be one of those entries' (allow `["orders.>", "orders.> workers"]`: orders.> with no
 *    group, or in workers). A queue entry alone allows only its group. Deny: a plain entry
 *    refuses whatever the group; a queue entry refuses only its group (deny wins).
 *  - `allow_responses`: a connection that receives a request (a message with a reply
 *    subject) may publish to that reply subject `max` times (default 1) within
 *    `expiresMs` (default 60,000; 0 = no expiry), even where `publish` denies it, as with
 *    nats-server's allow_responses. Kept per connection (Access), bounded.
 */
import { coversTokens, overlapsTokens } from './subjects.js';

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
 * A subscribe entry split into its subject pattern and queue-group part: "orders.> workers"
 * is ["orders.>", "workers"], "orders.>" is ["orders.>", null]. Whitespace separates them,
 * as in nats-server; more than two parts is a string (what is wrong), as config.ts reports it.
 */
export function splitSubjectQueue(entry: string): [string, string | null] | string {
  const parts = entry.trim().split(/\s+/);
  if (parts.length > 2)
    return `has ${parts.length} parts: a subscribe entry is a subject pattern, or a pattern and a queue group separated by a space ("orders.> workers")`;
  return [parts[0]!, parts[1] ?? null];
}

/** The queue part of a rule (a group name, or `*` / `>` for any group) admits group `queue` (not ''). */
function queueMatches(rule: string, queue: string): boolean {
  return rule === queue || rule === '*' || rule === '>';
}

/** One rule: its subject pattern split once, and its queue group (null: any group and none). */
interface Rule {
  readonly tokens: readonly string[];
  readonly sys: boolean;
  readonly queue: string | null;
}

function rule(entry: string, queues: boolean): Rule {
  const sq = queues ? splitSubjectQueue(entry) : null;
  const [subject, queue] = sq === null || typeof sq === 'string' ? [entry, null] : sq;
  return { tokens: subject.split('.'), sys: subject.startsWith(SYS), queue };
}

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

/**
 * Whether the allow rules `list` grant pattern pt (split) in group `queue` ('' for none):
 * a plain rule that covers it, unless queue rules cover it too and a group is named, in
 * which case one of those must name the group (nats-server's canSubscribe).
 */
function granted(list: readonly Rule[], pt: readonly string[], queue: string): boolean {
  let plain = false;
  let queued = false;
  for (const r of list) {
    if (r.queue !== null && queue === '') continue;
    if (!coversTokens(r.tokens, pt)) continue;
    if (r.queue === null) plain = true;
    else if (queueMatches(r.queue, queue)) return true;
    else queued = true;
  }
  return plain && !queued;
}

class Rules {
  readonly allow: readonly Rule[] | null;
  readonly deny: readonly Rule[];
  /** Allow rules that grant `$SYS.` subjects (those that start with `$SYS.`). */
  readonly sys: readonly Rule[];

  /** `queues`: entries may name a queue group (subscribe rules). */
  constructor(r: SubjectRules | string[] | undefined, queues: boolean) {
    const rules: SubjectRules = Array.isArray(r) ? { allow: r } : (r ?? {});
    this.allow = rules.allow === undefined ? null : rules.allow.map((e) => rule(e, queues));
    this.deny = (rules.deny ?? []).map((e) => rule(e, queues));
    this.sys = (this.allow ?? []).filter((a) => a.sys);
  }

  /** The decision for a literal subject (publish rules; once per subject, then cached). */
  subject(s: string): boolean {
    const st = s.split('.');
    for (const d of this.deny) if (coversTokens(d.tokens, st)) return false;
    if (s.startsWith(SYS)) return granted(this.sys, st, '');
    return this.allow === null || granted(this.allow, st, '');
  }

  /**
   * A subscription pattern in group `queue` ('' for none): nothing it could match is
   * denied (for that group) or reserved, and the allow rules grant it.
   */
  pattern(p: string, queue: string): boolean {
    const pt = p.split('.');
    for (const d of this.deny) {
      if (d.queue !== null && (queue === '' || !queueMatches(d.queue, queue))) continue;
      if (overlapsTokens(d.tokens, pt)) return false;
    }
    const sys = reserved(p);
    if (sys === p) return granted(this.sys, pt, queue);
    // A wildcard first token could also see $SYS subjects: allowed only with a grant for those.
    if (sys !== null && !granted(this.sys, sys.split('.'), queue)) return false;
    return this.allow === null || granted(this.allow, pt, queue);
  }
}

/** One identity's rules, compiled; shared by all of its connections. */
export class Permissions {
  private readonly pub: Rules;
  private readonly sub: Rules;
  /** allow_responses: grants per request received, or null when off. */
  readonly responses: { max: number; expiresMs: number } | null;
  private readonly decisions = new Map<string, boolean>();
  /** Publish decisions made from the rules (cache misses), for tests. */
  private misses = 0;

  constructor(cfg: PermissionsConfig = {}) {
    this.pub = new Rules(cfg.publish, false);
    this.sub = new Rules(cfg.subscribe, true);
    const r = cfg.allow_responses;
    this.responses = r === undefined || r === false ? null : r === true ? { max: 1, expiresMs: 60_000 } : { max: r.max ?? 1, expiresMs: r.expiresMs ?? 60_000 };
  }

  /** May publish to `subject` (cached; see the top of this file). */
  mayPublish(subject: string): boolean {
    let d = this.decisions.get(subject);
    if (d === undefined) {
      this.misses++;
      d = this.pub.subject(subject);
      if (this.decisions.size >= DECISION_CACHE_SIZE) this.decisions.clear();
      this.decisions.set(subject, d);
    }
    return d;
  }

  /** May subscribe to `pattern` in queue group `queue` ('' for none; not cached: once per SUB). */
  maySubscribe(pattern: string, queue = ''): boolean {
    return this.sub.pattern(pattern, queue);
  }

  /** Entries in the decision cache (tests). */
  get cached(): number {
    return this.decisions.size;
  }

  /** Publish decisions computed from the rules rather than found in the cache (tests). */
  get computed(): number {
    return this.misses;
  }
}
