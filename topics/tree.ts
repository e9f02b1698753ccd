import { isValidPattern, SubjectError, validatePattern } from './subject.js';
import { OptionsError } from '../runtime/errors.js';

/**
 * One level of the token trie (the shape of nats-server's sublist.go).
 *
 * Layout of a node, reached by the pattern tokens from the root to it:
 *   literals  child per literal next token (Map, created on first use)
 *   star      child for a `*` next token
 *   fwc       values of patterns whose next (and last) token is `>`;
 *             `>` is always last, so it needs a value list, not a node
 *   values    values of patterns that end exactly at this node
 *
 * Invariants:
 * - Map keys are never "*" or ">": wildcard tokens only live in star/fwc,
 *   so one subject token costs at most one Map lookup plus the two wildcard
 *   slots, whatever the number of sibling literals.
 * - Empty containers are null, and a node whose four slots are all null is
 *   unlinked from its parent on removal, so memory follows the live
 *   subscriptions, not the history of subscribe/unsubscribe churn.
 */
class Node<T> {
  literals: Map<string, Node<T>> | null = null;
  star: Node<T> | null = null;
  fwc: T[] | null = null;
  values: T[] | null = null;
}

function isEmptyNode<T>(n: Node<T>): boolean {
  return n.values === null && n.fwc === null && n.star === null && n.literals === null;
}

function pushAll<T>(out: T[], from: T[] | null): void {
  if (from === null) return;
  for (let i = 0; i < from.length; i++) out.push(from[i]!);
}

/** SameValueZero, like Map and Array.prototype.includes (so NaN can be removed). */
function indexOfValue<T>(arr: T[], value: T): number {
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i];
    if (v === value || (v !== v && value !== value)) return i;
  }
  return -1;
}

function hasWildcard(pattern: string): boolean {
  // Valid patterns only contain '*' and '>' as whole tokens.
  return pattern.indexOf('*') !== -1 || pattern.indexOf('>') !== -1;
}

export interface SubjectTreeOptions<T, R> {
  /** Most subjects whose results are kept (FIFO eviction). Default 4096; 0 disables the cache. */
  cacheSize?: number;
  /**
   * Turns the matched values of one subject into the result returned (and
   * cached) by match(); e.g. dedupe, group by queue. It receives a fresh
   * array it may keep. Default: the array itself. Required in practice when
   * R is not `readonly T[]`. A result of `undefined` is never cached.
   */
  build?: (values: T[], subject: string) => R;
}

export interface SubjectTreeStats {
  hits: number;
  misses: number;
  cached: number;
}

const DEFAULT_CACHE_SIZE = 4096;

// Set by a static block inside SubjectTree: lets module-level code (the
// test-only countTrieNodes) read #root without widening the public API.
let rootOf: <T, R>(tree: SubjectTree<T, R>) => Node<T>;

/**
 * Subscription index: patterns (with `*` and `>`) to values, matched against
 * concrete subjects. Match cost follows the depth of the subject and the
 * matching branches, not the number of stored subscriptions.
 *
 * match() results are cached per subject. The returned object is shared: it
 * is the same object on every cache hit until an insert or remove whose
 * pattern matches that subject, so callers must treat it as immutable.
 */
export class SubjectTree<T, R = readonly T[]> {
  static {
    rootOf = <U, V>(tree: SubjectTree<U, V>) => tree.#root;
  }

  #root = new Node<T>();
  #size = 0;
  readonly #capacity: number;
  readonly #build: (values: T[], subject: string) => R;
  // Insertion-ordered, so the first key is the oldest entry to evict. A hit
  // deliberately does not re-insert (no LRU refresh): that would make hits
  // mutate the Map, and a hit must stay a pure lookup.
  readonly #cache = new Map<string, R>();
  #hits = 0;
  #misses = 0;

  constructor(options?: SubjectTreeOptions<T, R>) {
    const cap = options?.cacheSize ?? DEFAULT_CACHE_SIZE;
    // No Infinity: the bound is what keeps unvalidated or high-cardinality subjects from growing memory.
    if (!Number.isSafeInteger(cap) || cap < 0) {
      throw new OptionsError(`SubjectTree: cacheSize must be a non-negative integer, got ${String(cap)}`);
    }
    this.#capacity = cap;
    this.#build = options?.build ?? ((values: T[]) => values as unknown as R);
  }

  /** Number of stored (pattern, value) entries, duplicates included. */
  get size(): number {
    return this.#size;
  }

  /** Number of subjects whose result is cached right now. */
  get cacheSize(): number {
    return this.#cache.size;
  }

  /** Cache counters since construction or clear(); with cacheSize 0 every match is a miss. */
  stats(): SubjectTreeStats {
    return { hits: this.#hits, misses: this.#misses, cached: this.#cache.size };
  }

  /** Removes every entry, the cache and the hit/miss counters (as if newly constructed). */
  clear(): void {
    this.#root = new Node<T>();
    this.#size = 0;
    this.#cache.clear();
    this.#hits = 0;
    this.#misses = 0;
  }

  /**
   * Stores `value` under `pattern` (throws SubjectError if the pattern is
   * invalid). Entries are a multiset: inserting the same pair twice stores it
   * twice, and the same value may sit under several patterns.
   */
  insert(pattern: string, value: T): void {
    validatePattern(pattern);
    const tokens = pattern.split('.');
    let node = this.#root;
    const last = tokens.length - 1;
    for (let i = 0; i <= last; i++) {
      const t = tokens[i]!;
      if (t === '>') {
        // Validation guarantees i === last.
        (node.fwc ??= []).push(value);
        this.#size++;
        this.#afterChange(pattern);
        return;
      }
      if (t === '*') {
        node = node.star ??= new Node<T>();
      } else {
        const lits = (node.literals ??= new Map());
        let child = lits.get(t);
        if (child === undefined) {
          child = new Node<T>();
          lits.set(t, child);
        }
        node = child;
      }
    }
    (node.values ??= []).push(value);
    this.#size++;
    this.#afterChange(pattern);
  }

  /**
   * Removes one occurrence of (pattern, value); false if there is none
   * (including when the pattern is not even valid, as it cannot have been
   * inserted). Nodes left empty are unlinked.
   */
  remove(pattern: string, value: T): boolean {
    if (!isValidPattern(pattern)) return false;
    const tokens = pattern.split('.');
    const last = tokens.length - 1;
    const path: Node<T>[] = [this.#root];
    let node = this.#root;
    const endsWithFwc = tokens[last] === '>';
    const depth = endsWithFwc ? last : last + 1;
    for (let i = 0; i < depth; i++) {
      const t = tokens[i]!;
      const next = t === '*' ? node.star : node.literals?.get(t);
      if (next == null) return false;
      node = next;
      path.push(node);
    }
    const list = endsWithFwc ? node.fwc : node.values;
    if (list === null) return false;
    const idx = indexOfValue(list, value);
    if (idx === -1) return false;
    list.splice(idx, 1);
    if (list.length === 0) {
      if (endsWithFwc) node.fwc = null;
      else node.values = null;
    }
    // Unlink empty nodes bottom-up; path[i] was reached from path[i-1] by tokens[i-1].
    for (let i = path.length - 1; i > 0; i--) {
      const n = path[i]!;
      if (!isEmptyNode(n)) break;
      const parent = path[i - 1]!;
      const t = tokens[i - 1]!;
      if (t === '*') parent.star = null;
      else {
        const lits = parent.literals!;
        lits.delete(t);
        if (lits.size === 0) parent.literals = null;
      }
    }
    this.#size--;
    this.#afterChange(pattern);
    return true;
  }

  /**
   * All values whose pattern matches `subject`, one per stored entry (a value
   * stored under two matching patterns appears twice; deduping is the
   * caller's job, or build's). Order is unspecified.
   *
   * The subject is expected to be valid (validateSubject); it is not checked
   * here because this runs per message. Any other string still gives a
   * well-defined answer (tokens are compared literally) without throwing.
   *
   * The result is shared and cached: do not mutate it. The tree never
   * mutates a result it has returned either (a change makes the next miss
   * build a new one), so iterating a result while the loop body inserts or
   * removes entries is safe and sees the state as of the match.
   */
  match(subject: string): R {
    // Hit path: one Map lookup and a counter bump, no allocation.
    const cached = this.#cache.get(subject);
    if (cached !== undefined) {
      this.#hits++;
      return cached;
    }
    return this.#miss(subject);
  }

  #miss(subject: string): R {
    this.#misses++;
    if (typeof subject !== 'string') {
      throw new SubjectError(`invalid subject: expected a string, got ${subject === null ? 'null' : typeof subject}`, String(subject));
    }
    const out: T[] = [];
    const tokens = subject.split('.');
    collect(this.#root, tokens, 0, out);
    const result = this.#build(out, subject);
    const cap = this.#capacity;
    if (cap > 0 && result !== undefined) {
      const cache = this.#cache;
      if (cache.size >= cap) {
        // Oldest first (Map iteration is insertion order).
        const oldest = cache.keys().next();
        if (oldest.done !== true) cache.delete(oldest.value);
      }
      cache.set(subject, result);
    }
    return result;
  }

  /**
   * Drops the cached results that `pattern` can affect, i.e. exactly the
   * cached subjects it matches; every other cached result is still exact
   * because a pattern that does not match a subject never contributes to it.
   */
  /**
   * Runs fn with cache invalidation deferred to its end, so that many changes (a
   * client with thousands of subscriptions leaving) cost one pass over the cache, or
   * one clear, instead of a scan of the cache per wildcard pattern.
   */
  batch(fn: () => void): void {
    this.#batchDepth++;
    try {
      fn();
    } finally {
      if (--this.#batchDepth === 0 && this.#deferred !== null) {
        const patterns = this.#deferred;
        this.#deferred = null;
        if (patterns.length > 16) this.#cache.clear();
        else for (const p of patterns) this.#afterChange(p);
      }
    }
  }

  #batchDepth = 0;
  #deferred: string[] | null = null;

  #afterChange(pattern: string): void {
    const cache = this.#cache;
    if (cache.size === 0) return;
    if (this.#batchDepth > 0) {
      (this.#deferred ??= []).push(pattern);
      return;
    }
    if (!hasWildcard(pattern)) {
      // A literal pattern matches only the identical subject.
      cache.delete(pattern);
      return;
    }
    // Deleting the current key while iterating a Map is safe in JS.
    for (const subject of cache.keys()) {
      if (SubjectTree.matches(pattern, subject)) cache.delete(subject);
    }
  }

  /**
   * Whether a single `pattern` matches `subject`, token by token: `*` takes
   * exactly one token, `>` one or more trailing tokens, anything else must be
   * equal. No allocation. The pattern is assumed valid (validatePattern) and
   * the subject a publish subject; for other strings the answer follows the
   * same token rules and it never throws.
   */
  static matches(pattern: string, subject: string): boolean {
    const pn = pattern.length;
    const sn = subject.length;
    let pi = 0;
    let si = 0;
    // Loop invariant: pi and si are the starts of the current tokens, and
    // both strings have a (possibly empty) token there.
    for (;;) {
      let pEnd = pattern.indexOf('.', pi);
      if (pEnd === -1) pEnd = pn;
      let sEnd = subject.indexOf('.', si);
      if (sEnd === -1) sEnd = sn;
      const plen = pEnd - pi;
      if (plen === 1 && pattern.charCodeAt(pi) === 0x3e /* > */) return true;
      if (!(plen === 1 && pattern.charCodeAt(pi) === 0x2a) /* * */) {
        if (plen !== sEnd - si) return false;
        for (let k = 0; k < plen; k++) {
          if (pattern.charCodeAt(pi + k) !== subject.charCodeAt(si + k)) return false;
        }
      }
      const pDone = pEnd === pn;
      const sDone = sEnd === sn;
      if (pDone || sDone) return pDone && sDone;
      pi = pEnd + 1;
      si = sEnd + 1;
    }
  }
}

/**
 * Appends to `out` the values of every pattern below `node` that matches
 * tokens[i..]. Precondition: i < tokens.length. Recursion depth is bounded
 * by the trie depth (≤ MAX_SUBJECT_TOKENS), whatever the subject length.
 */
function collect<T>(node: Node<T>, tokens: string[], i: number, out: T[]): void {
  // `>` here takes tokens[i..], which is at least one token.
  pushAll(out, node.fwc);
  const last = i + 1 === tokens.length;
  const star = node.star;
  if (star !== null) {
    if (last) pushAll(out, star.values);
    else collect(star, tokens, i + 1, out);
  }
  const lits = node.literals;
  if (lits !== null) {
    const child = lits.get(tokens[i]!);
    if (child !== undefined) {
      if (last) pushAll(out, child.values);
      else collect(child, tokens, i + 1, out);
    }
  }
}

/**
 * @internal Test hook, not re-exported from index.ts: number of trie nodes,
 * root included. 1 means the trie holds nothing, i.e. removals pruned fully.
 */
export function countTrieNodes<T, R>(tree: SubjectTree<T, R>): number {
  let count = 0;
  const stack: Node<T>[] = [rootOf(tree)];
  while (stack.length > 0) {
    const n = stack.pop()!;
    count++;
    if (n.star !== null) stack.push(n.star);
    if (n.literals !== null) for (const c of n.literals.values()) stack.push(c);
  }
  return count;
}
