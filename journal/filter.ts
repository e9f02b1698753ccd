/**
 * journal/filter.ts: which subjects a journal records or a read returns, as subject
 * patterns ('md.>', 'fx.*.EURUSD'). One SubjectTree (topics/) holds the patterns; its
 * match cache makes a repeated subject one Map lookup, no allocation.
 */
import { SubjectTree, validatePattern } from '../topics/index.js';

export class SubjectFilter {
  private readonly tree: SubjectTree<true, boolean>;
  /** The patterns, as given. */
  readonly patterns: readonly string[];

  /** Throws SubjectError (code BAD_SUBJECT) for an invalid pattern. */
  constructor(patterns: string | readonly string[]) {
    this.patterns = typeof patterns === 'string' ? [patterns] : [...patterns];
    this.tree = new SubjectTree<true, boolean>({ build: (values) => values.length > 0 });
    for (const p of this.patterns) {
      validatePattern(p);
      this.tree.insert(p, true);
    }
  }

  /** Whether a subject matches one of the patterns. */
  matches(subject: string): boolean {
    return this.tree.match(subject);
  }
}
