/**
 * broker/auth/subjects.ts: the three questions permissions ask of subject patterns,
 * token by token (`*` one token, `>` one or more trailing tokens; topics/subject.ts).
 *
 *  - matches(p, s): the literal subject s is one that p matches;
 *  - covers(q, p):  every subject p can match, q matches too (p is a subset of q);
 *  - overlaps(p, q): some subject matches both.
 *
 * Pure functions over validated patterns; not on the per-message path (decisions are
 * cached by the callers, permissions.ts).
 */

/** s (a literal subject) is matched by pattern p. */
export function matches(p: string, s: string): boolean {
  return covers(p, s);
}

/** Every subject that p matches is matched by q (for literal p: q matches p). */
export function covers(q: string, p: string): boolean {
  const qt = q.split('.');
  const pt = p.split('.');
  for (let i = 0; i < qt.length; i++) {
    const a = qt[i]!;
    // '>' takes what is left of p, which must be at least one token.
    if (a === '>') return pt.length > i;
    if (i >= pt.length) return false;
    const b = pt[i]!;
    if (a === '*') {
      if (b === '>') return false;
      continue;
    }
    if (a !== b) return false;
  }
  return pt.length === qt.length;
}

/** Some subject is matched by both p and q. */
export function overlaps(p: string, q: string): boolean {
  const pt = p.split('.');
  const qt = q.split('.');
  for (let i = 0; ; i++) {
    if (i === pt.length || i === qt.length) return pt.length === qt.length;
    const a = pt[i]!;
    const b = qt[i]!;
    // Either side takes the rest (both have at least one token from here).
    if (a === '>' || b === '>') return true;
    if (a === '*' || b === '*' || a === b) continue;
    return false;
  }
}
