/**
 * broker/auth/subjects.ts: the three questions permissions ask of subject patterns,
 * token by token (`*` one token, `>` one or more trailing tokens; topics/subject.ts).
 *
 *  - matches(p, s): the literal subject s is one that p matches;
 *  - covers(q, p):  every subject p can match, q matches too (p is a subset of q);
 *  - overlaps(p, q): some subject matches both.
 *
 * Pure functions over validated patterns; not on the per-message path (decisions are
 * cached by the callers, permissions.ts). The *Tokens forms take patterns already split
 * on '.', so that a rule list is split once, not at every check.
 */

/** s (a literal subject) is matched by pattern p. */
export function matches(p: string, s: string): boolean {
  return coversTokens(p.split('.'), s.split('.'));
}

/** Every subject that p matches is matched by q (for literal p: q matches p). */
export function covers(q: string, p: string): boolean {
  return coversTokens(q.split('.'), p.split('.'));
}

/** Some subject is matched by both p and q. */
export function overlaps(p: string, q: string): boolean {
  return overlapsTokens(p.split('.'), q.split('.'));
}

/** covers() over patterns already split into tokens (the permission rules split theirs once). */
export function coversTokens(qt: readonly string[], pt: readonly string[]): boolean {
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

/** overlaps() over patterns already split into tokens. */
export function overlapsTokens(pt: readonly string[], qt: readonly string[]): boolean {
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
