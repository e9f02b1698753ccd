/**
 * broker/leaf/bounds.ts: what may cross an uplink, as subject patterns.
 *
 * A remote's `import` patterns bound what comes in from the hub: a local subscription is
 * announced to the hub (LS+) only inside them, and a message from the hub outside them
 * is dropped. Its `export` patterns bound what goes out: the hub's interest is taken in
 * only inside them, so the router never hands the uplink a local publish outside them.
 *
 * A pattern that is not inside a bound is clipped to it where one is nested in the other:
 * a local `md.>` with `import: ['md.EURUSD.>']` is announced as `md.EURUSD.>`; a pattern
 * that merely overlaps a bound (`*.bid` against `md.>`) is left out (announcing it whole
 * would let in what the bound keeps out).
 *
 * Subjects whose first token begins with `$` ($SYS, $LDS, $JS, ...) are the servers' own:
 * a wildcard in a bound never reaches them; only a bound whose first token is that same
 * literal (`$SYS.>`) lets them cross.
 *
 * Pure functions over strings; nothing here is per message but `allows` on the inbound
 * path, a lookup in a bounded cache of verdicts.
 */

const EVERYTHING: readonly string[] = ['>'];

/** Whether every subject that `inner` matches is matched by `outer` (both valid patterns). */
export function covers(outer: string, inner: string): boolean {
  const o = outer.split('.');
  const i = inner.split('.');
  if (isSystem(i[0]!) && o[0] !== i[0]) return false;
  for (let k = 0; k < o.length; k++) {
    const ot = o[k]!;
    if (ot === '>') return i.length > k;
    if (k >= i.length) return false;
    const it = i[k]!;
    if (it === '>') return false;
    if (ot !== '*' && ot !== it) return false;
  }
  return o.length === i.length;
}

function isSystem(token: string): boolean {
  return token.charCodeAt(0) === 36; // '$'
}

export class Bounds {
  readonly patterns: readonly string[];

  /** No bounds but the default: every subject but the `$` ones passes (lets hot paths skip a check). */
  readonly allPass: boolean;

  /** `patterns` undefined: everything but the `$` subjects. */
  constructor(patterns: readonly string[] | undefined) {
    this.patterns = patterns ?? EVERYTHING;
    this.allPass = this.patterns.includes('>');
  }

  /** What of pattern `p` may cross: [p] when a bound covers it, else the bounds nested inside it; [] when none. */
  clip(p: string): string[] {
    const out: string[] = [];
    for (const b of this.patterns) {
      if (covers(b, p)) return [p];
      if (covers(p, b)) out.push(b);
    }
    return out;
  }

  /** Verdicts on subjects seen, so that a stream of messages costs a map lookup each; cleared when full. */
  private readonly seen = new Map<string, boolean>();

  /** Whether a (literal) subject may cross. */
  allows(subject: string): boolean {
    let v = this.seen.get(subject);
    if (v === undefined) {
      v = false;
      for (const b of this.patterns) if (covers(b, subject)) v = true;
      if (this.seen.size >= 4096) this.seen.clear();
      this.seen.set(subject, v);
    }
    return v;
  }
}
