/**
 * Permissions against a reference: random allow/deny sets (fast-check) decided by
 * Permissions and by a brute-force reference over a finite universe of subjects, with
 * its own matcher (a regular expression per pattern). Tokens of the rules are a and b;
 * the universe also has c, which stands for every other token, and `$SYS.` subjects.
 *
 * The reference, for a literal subject s: refused if a deny pattern matches s; under
 * `$SYS.`, allowed only by an allow pattern that starts with `$SYS.`; otherwise allowed
 * without an allow list, or when an allow pattern matches s. For a subscription pattern
 * p: refused if some subject matches both p and a deny pattern; the subjects under `$SYS.`
 * that p matches must all be matched by one `$SYS.` allow pattern; the others by one
 * allow pattern (any, where there is no allow list).
 *
 * With queue groups (subscribe entries "pattern queue", the queue q1 or `*` for any): a
 * deny entry counts when it has no queue or names the SUB's group; of the allow entries
 * that match all of a part, one that names the SUB's group grants it, else a plain one
 * does unless another names some other group (nats-server's rule); entries with a queue
 * are left out for a SUB without one.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Permissions } from '../../broker/auth/index.js';
import { DECISION_CACHE_SIZE } from '../../broker/auth/permissions.js';
import { covers, matches, overlaps } from '../../broker/auth/subjects.js';

const TOKENS = ['a', 'b', 'c'];

function words(n: number, prefix: string[] = []): string[][] {
  if (n === 0) return [prefix];
  return TOKENS.flatMap((t) => words(n - 1, [...prefix, t]));
}

const PLAIN = [1, 2, 3, 4].flatMap((n) => words(n).map((w) => w.join('.')));
const SYS = [1, 2, 3].flatMap((n) => words(n).map((w) => `$SYS.${w.join('.')}`));
const UNIVERSE = [...PLAIN, ...SYS];

function regex(p: string): RegExp {
  const parts = p.split('.').map((t) => (t === '*' ? '[^.]+' : t === '>' ? '[^.]+(\\.[^.]+)*' : t.replace(/\$/g, '\\$')));
  return new RegExp(`^${parts.join('\\.')}$`);
}

const refMatch = (p: string, s: string) => regex(p).test(s);

interface Rules {
  allow?: string[];
  deny?: string[];
}

function refPublish(r: Rules, s: string): boolean {
  if ((r.deny ?? []).some((d) => refMatch(d, s))) return false;
  if (s.startsWith('$SYS.')) return (r.allow ?? []).some((a) => a.startsWith('$SYS.') && refMatch(a, s));
  return r.allow === undefined || r.allow.some((a) => refMatch(a, s));
}

function refSubscribe(r: Rules, p: string): boolean {
  const seen = UNIVERSE.filter((s) => refMatch(p, s));
  if ((r.deny ?? []).some((d) => seen.some((s) => refMatch(d, s)))) return false;
  const sys = seen.filter((s) => s.startsWith('$SYS.'));
  const plain = seen.filter((s) => !s.startsWith('$SYS.'));
  const grants = (r.allow ?? []).filter((a) => a.startsWith('$SYS.'));
  if (sys.length > 0 && !grants.some((a) => sys.every((s) => refMatch(a, s)))) return false;
  if (plain.length > 0 && r.allow !== undefined && !r.allow.some((a) => plain.every((s) => refMatch(a, s)))) return false;
  return true;
}

/** A pattern of 1 to 3 tokens over a, b, * (and > last), sometimes under $SYS. */
const pattern = fc.tuple(fc.boolean(), fc.array(fc.constantFrom('a', 'b', '*'), { minLength: 1, maxLength: 3 }), fc.boolean()).map(([sys, toks, tail]) => {
  const t = tail ? [...toks.slice(0, -1), '>'] : toks;
  return sys ? `$SYS.${t.slice(0, 2).join('.')}` : t.join('.');
});

const rules = fc.record({ allow: fc.array(pattern, { maxLength: 4 }), deny: fc.array(pattern, { maxLength: 3 }) }, { requiredKeys: ['deny'] });

describe('the pattern relations', () => {
  it('covers and overlaps agree with brute force over the universe', () => {
    fc.assert(
      fc.property(pattern, pattern, (p, q) => {
        const ps = UNIVERSE.filter((s) => refMatch(p, s));
        const qs = UNIVERSE.filter((s) => refMatch(q, s));
        expect(covers(q, p)).toBe(ps.every((s) => qs.includes(s)));
        expect(overlaps(p, q)).toBe(ps.some((s) => qs.includes(s)));
        for (const s of UNIVERSE.slice(0, 40)) expect(matches(p, s)).toBe(refMatch(p, s));
      }),
      { numRuns: 500 },
    );
  });
});

describe('Permissions against the reference decision', () => {
  it('publish: every subject of the universe, deny wins, $SYS reserved', () => {
    fc.assert(
      fc.property(rules, (r) => {
        const perms = new Permissions({ publish: r });
        for (const s of UNIVERSE) expect(perms.mayPublish(s), `${JSON.stringify(r)} publish ${s}`).toBe(refPublish(r, s));
        // Asked again: the cached decisions are the same.
        for (const s of UNIVERSE) expect(perms.mayPublish(s)).toBe(refPublish(r, s));
      }),
      { numRuns: 300 },
    );
  });

  it('subscribe: random patterns, refused when they could see a denied or reserved subject', () => {
    fc.assert(
      fc.property(rules, fc.array(pattern, { minLength: 1, maxLength: 8 }), (r, subs) => {
        const perms = new Permissions({ subscribe: r });
        for (const p of subs) expect(perms.maySubscribe(p), `${JSON.stringify(r)} subscribe ${p}`).toBe(refSubscribe(r, p));
      }),
      { numRuns: 500 },
    );
  });
});

/** A subscribe entry with its queue part: [pattern, null | 'q1' | '*']. */
const entry = fc.tuple(pattern, fc.constantFrom<string | null>(null, null, 'q1', '*'));
const queueRules = fc.record({ allow: fc.array(entry, { maxLength: 4 }), deny: fc.array(entry, { maxLength: 3 }) }, { requiredKeys: ['deny'] });
type Entry = [string, string | null];

const groupOk = (rule: string | null, queue: string) => rule === null || (queue !== '' && (rule === queue || rule === '*'));

function refGranted(entries: Entry[], part: string[], queue: string): boolean {
  let plain = false;
  let queued = false;
  for (const [a, aq] of entries) {
    if (aq !== null && queue === '') continue;
    if (!part.every((s) => refMatch(a, s))) continue;
    if (aq === null) plain = true;
    else if (groupOk(aq, queue)) return true;
    else queued = true;
  }
  return plain && !queued;
}

function refSubscribeQueue(r: { allow?: Entry[]; deny: Entry[] }, p: string, queue: string): boolean {
  const seen = UNIVERSE.filter((s) => refMatch(p, s));
  if (r.deny.some(([d, dq]) => groupOk(dq, queue) && seen.some((s) => refMatch(d, s)))) return false;
  const sys = seen.filter((s) => s.startsWith('$SYS.'));
  const plain = seen.filter((s) => !s.startsWith('$SYS.'));
  const grants = (r.allow ?? []).filter(([a]) => a.startsWith('$SYS.'));
  if (sys.length > 0 && !refGranted(grants, sys, queue)) return false;
  if (plain.length > 0 && r.allow !== undefined && !refGranted(r.allow, plain, queue)) return false;
  return true;
}

describe('queue-group rules against the reference decision', () => {
  it('subscribe with and without a group: random rules with queue entries', () => {
    const text = (e: Entry) => (e[1] === null ? e[0] : `${e[0]} ${e[1]}`);
    fc.assert(
      fc.property(queueRules, fc.array(fc.tuple(pattern, fc.constantFrom('', 'q1', 'q2')), { minLength: 1, maxLength: 8 }), (r, subs) => {
        const cfg = { deny: r.deny.map(text), ...(r.allow !== undefined ? { allow: r.allow.map(text) } : {}) };
        const perms = new Permissions({ subscribe: cfg });
        for (const [p, q] of subs)
          expect(perms.maySubscribe(p, q), `${JSON.stringify(cfg)} subscribe ${p} in ${JSON.stringify(q)}`).toBe(refSubscribeQueue(r, p, q));
      }),
      { numRuns: 500 },
    );
  });
});

describe('the publish decision cache', () => {
  it('with 1,000 rules, a subject is decided from them once and then found in the cache', () => {
    const allow = Array.from({ length: 600 }, (_, i) => (i === 300 ? 'bench.*' : i % 2 === 0 ? `md.${i}.>` : `px.s${i}.last`));
    const deny = Array.from({ length: 400 }, (_, i) => `md.${i * 2}.internal.>`);
    const perms = new Permissions({ publish: { allow, deny } });
    for (let i = 0; i < 10_000; i++) perms.mayPublish('bench.tp');
    expect(perms.mayPublish('md.4.internal.x')).toBe(false);
    expect(perms.mayPublish('bench.tp')).toBe(true);
    expect(perms.computed).toBe(2);
  });

  it('holds one entry per subject asked, and is bounded', () => {
    const perms = new Permissions({ publish: { allow: ['a.>'], deny: ['a.b'] } });
    expect(perms.mayPublish('a.c')).toBe(true);
    expect(perms.mayPublish('a.c')).toBe(true);
    expect(perms.cached).toBe(1);
    expect(perms.computed).toBe(1);
    for (let i = 0; i < DECISION_CACHE_SIZE + 10; i++) perms.mayPublish(`a.n${i}`);
    expect(perms.cached).toBeLessThanOrEqual(DECISION_CACHE_SIZE);
    expect(perms.mayPublish('a.b')).toBe(false);
  });
});
