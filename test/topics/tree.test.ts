import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SubjectError, SubjectTree } from '../../topics/index.js';
import { countTrieNodes } from '../../topics/tree.js';
import { OptionsError } from '../../runtime/errors.js';

/** Naive reference matcher: split both on '.', compare token by token. */
function refMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i; // one or more remaining tokens
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

const sorted = <T>(xs: readonly T[]): T[] => [...xs].sort();

function treeWith(entries: Array<[string, string]>, cacheSize?: number): SubjectTree<string> {
  const tree = new SubjectTree<string>(cacheSize === undefined ? {} : { cacheSize });
  for (const [p, v] of entries) tree.insert(p, v);
  return tree;
}

describe('matching', () => {
  it('a literal pattern matches only the identical subject', () => {
    const tree = treeWith([['md.AAPL.bid', 'v']]);
    expect(tree.match('md.AAPL.bid')).toEqual(['v']);
    expect(tree.match('md.AAPL.ask')).toEqual([]);
    expect(tree.match('md.AAPL')).toEqual([]);
    expect(tree.match('md.AAPL.bid.x')).toEqual([]);
    expect(tree.match('md')).toEqual([]);
  });

  it('"*" matches exactly one token', () => {
    const tree = treeWith([['md.*.bid', 'v']]);
    expect(tree.match('md.AAPL.bid')).toEqual(['v']);
    expect(tree.match('md.MSFT.bid')).toEqual(['v']);
    expect(tree.match('md.bid')).toEqual([]);
    expect(tree.match('md.A.B.bid')).toEqual([]);
    expect(tree.match('md.AAPL.ask')).toEqual([]);
  });

  it('a lone "*" matches every single-token subject and nothing longer', () => {
    const tree = treeWith([['*', 'v']]);
    expect(tree.match('a')).toEqual(['v']);
    expect(tree.match('a.b')).toEqual([]);
  });

  it('">" matches one or more trailing tokens, never zero', () => {
    const tree = treeWith([['a.>', 'v']]);
    expect(tree.match('a.b')).toEqual(['v']);
    expect(tree.match('a.b.c.d')).toEqual(['v']);
    expect(tree.match('a')).toEqual([]);
    expect(tree.match('b.a')).toEqual([]);
  });

  it('a lone ">" matches every subject', () => {
    const tree = treeWith([['>', 'v']]);
    expect(tree.match('a')).toEqual(['v']);
    expect(tree.match('x.y.z')).toEqual(['v']);
  });

  it('mixed patterns: every matching entry is returned', () => {
    const tree = treeWith([
      ['md.AAPL.bid', 'literal'],
      ['md.*.bid', 'star'],
      ['md.>', 'fwc'],
      ['*.*.>', 'star-star-fwc'],
      ['*.AAPL.*', 'star-lit-star'],
      ['md.*', 'too-short'],
      ['md.AAPL.bid.>', 'too-long'],
      ['orders.>', 'other-branch'],
    ]);
    expect(sorted(tree.match('md.AAPL.bid'))).toEqual(sorted(['literal', 'star', 'fwc', 'star-star-fwc', 'star-lit-star']));
    expect(sorted(tree.match('md.MSFT.bid'))).toEqual(sorted(['star', 'fwc', 'star-star-fwc']));
    expect(sorted(tree.match('md.AAPL'))).toEqual(sorted(['fwc', 'too-short']));
  });

  it('a value stored under two matching patterns appears twice (the caller dedupes)', () => {
    const tree = treeWith([
      ['md.*.bid', 'sub1'],
      ['md.>', 'sub1'],
    ]);
    expect(tree.match('md.X.bid')).toEqual(['sub1', 'sub1']);
  });

  it('does not throw on subjects that were never validated', () => {
    const tree = treeWith([
      ['*', 'star'],
      ['a.>', 'fwc'],
      ['a.*.c', 'mid'],
    ]);
    for (const weird of ['', '.', 'a..c', 'a.*.c', 'a.>', ' ', 'a.b c']) {
      const expected = ['star', 'fwc', 'mid'].filter((_, i) => refMatches(['*', 'a.>', 'a.*.c'][i]!, weird));
      expect(sorted(tree.match(weird))).toEqual(sorted(expected));
    }
  });

  it('refuses a non-string subject with a SubjectError', () => {
    const tree = treeWith([['>', 'v']]);
    expect(() => tree.match(undefined as unknown as string)).toThrow(SubjectError);
  });
});

describe('insert', () => {
  it('validates the pattern and refuses an invalid one with a SubjectError', () => {
    const tree = new SubjectTree<string>();
    expect(() => tree.insert('a.>.b', 'v')).toThrow('">" must be the last token');
    expect(() => tree.insert('md..bid', 'v')).toThrow(SubjectError);
    expect(tree.size).toBe(0);
  });

  it('stores duplicates: the same (pattern, value) twice is two entries', () => {
    const tree = treeWith([
      ['a.b', 'v'],
      ['a.b', 'v'],
    ]);
    expect(tree.size).toBe(2);
    expect(tree.match('a.b')).toEqual(['v', 'v']);
  });

  it('keeps the insertion order of values under one pattern', () => {
    const tree = treeWith([
      ['a.b', 'first'],
      ['a.b', 'second'],
      ['a.b', 'third'],
    ]);
    expect(tree.match('a.b')).toEqual(['first', 'second', 'third']);
  });
});

describe('remove', () => {
  it('removes one occurrence at a time', () => {
    const tree = treeWith([
      ['a.b', 'v'],
      ['a.b', 'v'],
    ]);
    expect(tree.remove('a.b', 'v')).toBe(true);
    expect(tree.match('a.b')).toEqual(['v']);
    expect(tree.remove('a.b', 'v')).toBe(true);
    expect(tree.match('a.b')).toEqual([]);
    expect(tree.remove('a.b', 'v')).toBe(false);
    expect(tree.size).toBe(0);
  });

  it('returns false, changing nothing, for an absent pattern, an absent value or an invalid pattern', () => {
    const tree = treeWith([
      ['a.*', 'v'],
      ['a.>', 'w'],
    ]);
    expect(tree.remove('a.b', 'v')).toBe(false);
    expect(tree.remove('a.*', 'w')).toBe(false);
    expect(tree.remove('a.*.c', 'v')).toBe(false);
    expect(tree.remove('a', 'v')).toBe(false);
    expect(tree.remove('b.>', 'w')).toBe(false);
    expect(tree.remove('a..b', 'v')).toBe(false);
    expect(tree.remove(42 as unknown as string, 'v')).toBe(false);
    expect(tree.size).toBe(2);
    expect(sorted(tree.match('a.x'))).toEqual(['v', 'w']);
  });

  it('removes only the given value, leaving others under the same pattern', () => {
    const tree = treeWith([
      ['md.*', 'a'],
      ['md.*', 'b'],
    ]);
    expect(tree.remove('md.*', 'a')).toBe(true);
    expect(tree.match('md.x')).toEqual(['b']);
  });

  it('compares values by SameValueZero, so NaN can be removed', () => {
    const tree = new SubjectTree<number>();
    tree.insert('a', NaN);
    expect(tree.remove('a', NaN)).toBe(true);
    expect(tree.size).toBe(0);
  });

  it('prunes emptied nodes, so churn does not grow memory', () => {
    const tree = new SubjectTree<number>();
    tree.insert('keep.me', 0);
    const baseline = countTrieNodes(tree);
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 200; i++) tree.insert(`churn.${round}.${i}.*.x.>`, i);
      for (let i = 0; i < 200; i++) expect(tree.remove(`churn.${round}.${i}.*.x.>`, i)).toBe(true);
      expect(countTrieNodes(tree)).toBe(baseline);
    }
    expect(tree.remove('keep.me', 0)).toBe(true);
    expect(countTrieNodes(tree)).toBe(1);
  });

  it('does not prune a node still used by a longer pattern', () => {
    const tree = treeWith([
      ['a.b', 'short'],
      ['a.b.c', 'long'],
      ['a.b.>', 'fwc'],
    ]);
    tree.remove('a.b', 'short');
    expect(tree.match('a.b.c')).toEqual(['fwc', 'long']);
    tree.remove('a.b.c', 'long');
    expect(tree.match('a.b.c')).toEqual(['fwc']);
  });
});

describe('size, clear', () => {
  it('size counts stored (pattern, value) entries', () => {
    const tree = treeWith([
      ['a', '1'],
      ['a', '1'],
      ['b.*', '1'],
      ['>', '2'],
    ]);
    expect(tree.size).toBe(4);
    tree.remove('a', '1');
    expect(tree.size).toBe(3);
  });

  it('clear empties the entries, the cache and the counters', () => {
    const tree = treeWith([['a.>', 'v']]);
    tree.match('a.b');
    tree.match('a.b');
    tree.clear();
    expect(tree.size).toBe(0);
    expect(tree.cacheSize).toBe(0);
    expect(tree.stats()).toEqual({ hits: 0, misses: 0, cached: 0 });
    expect(tree.match('a.b')).toEqual([]);
    expect(countTrieNodes(tree)).toBe(1);
  });
});

describe('result cache', () => {
  it('returns the same object on every hit and counts hits and misses', () => {
    const tree = treeWith([['md.*.bid', 'v']]);
    const first = tree.match('md.X.bid');
    expect(tree.match('md.X.bid')).toBe(first);
    expect(tree.match('md.X.bid')).toBe(first);
    expect(tree.stats()).toEqual({ hits: 2, misses: 1, cached: 1 });
    expect(tree.cacheSize).toBe(1);
  });

  it('sees a pattern inserted after the subject was cached', () => {
    const tree = new SubjectTree<string>();
    expect(tree.match('md.X.bid')).toEqual([]);
    tree.insert('md.*.bid', 'star');
    expect(tree.match('md.X.bid')).toEqual(['star']);
    tree.insert('md.X.bid', 'literal');
    expect(sorted(tree.match('md.X.bid'))).toEqual(['literal', 'star']);
    tree.insert('md.>', 'fwc');
    expect(sorted(tree.match('md.X.bid'))).toEqual(['fwc', 'literal', 'star']);
  });

  it('forgets a removed pattern for cached subjects', () => {
    const tree = treeWith([
      ['md.*.bid', 'star'],
      ['md.X.bid', 'literal'],
    ]);
    expect(sorted(tree.match('md.X.bid'))).toEqual(['literal', 'star']);
    tree.remove('md.*.bid', 'star');
    expect(tree.match('md.X.bid')).toEqual(['literal']);
    tree.remove('md.X.bid', 'literal');
    expect(tree.match('md.X.bid')).toEqual([]);
  });

  it('invalidates only the cached subjects the changed pattern matches', () => {
    const tree = treeWith([['md.>', 'v']]);
    const bid = tree.match('md.X.bid');
    const orders = tree.match('orders.1');
    const ask = tree.match('md.X.ask');
    tree.insert('md.*.bid', 'w');
    expect(tree.match('orders.1')).toBe(orders);
    expect(tree.match('md.X.ask')).toBe(ask);
    expect(tree.match('md.X.bid')).not.toBe(bid);
    tree.insert('orders.2', 'literal'); // literal pattern: only that exact subject
    expect(tree.match('orders.1')).toBe(orders);
    tree.remove('md.*.bid', 'w');
    expect(tree.match('md.X.ask')).toBe(ask);
  });

  it('a failed removal keeps every cached result', () => {
    const tree = treeWith([['md.>', 'v']]);
    const r = tree.match('md.X');
    expect(tree.remove('md.>', 'absent')).toBe(false);
    expect(tree.match('md.X')).toBe(r);
  });

  it('never holds more than cacheSize subjects', () => {
    const tree = treeWith([['s.*', 'v']], 8);
    for (let i = 0; i < 1000; i++) {
      expect(tree.match(`s.${i}`)).toEqual(['v']);
      expect(tree.cacheSize).toBeLessThanOrEqual(8);
    }
    expect(tree.stats()).toEqual({ hits: 0, misses: 1000, cached: 8 });
  });

  it('evicts the oldest cached subject first; a hit does not refresh it', () => {
    const tree = treeWith([['>', 'v']], 2);
    tree.match('a'); // miss, cached [a]
    tree.match('b'); // miss, cached [a, b]
    tree.match('a'); // hit, order unchanged
    tree.match('c'); // miss, evicts a (oldest inserted): [b, c]
    expect(tree.stats()).toEqual({ hits: 1, misses: 3, cached: 2 });
    tree.match('b'); // hit
    tree.match('a'); // miss
    expect(tree.stats()).toEqual({ hits: 2, misses: 4, cached: 2 });
  });

  it('cacheSize 0 disables caching: every match is a fresh miss', () => {
    const tree = treeWith([['a.*', 'v']], 0);
    const first = tree.match('a.b');
    const second = tree.match('a.b');
    expect(second).toEqual(['v']);
    expect(second).not.toBe(first);
    expect(tree.stats()).toEqual({ hits: 0, misses: 2, cached: 0 });
  });

  it('refuses a cacheSize that is not a non-negative integer', () => {
    for (const bad of [-1, 1.5, NaN, Infinity]) {
      expect(() => new SubjectTree({ cacheSize: bad })).toThrow(OptionsError);
    }
  });
});

describe('build option', () => {
  type Built = { values: readonly string[]; unique: ReadonlySet<string> };
  function builtTree() {
    let builds = 0;
    const tree = new SubjectTree<string, Built>({
      build: (values) => {
        builds++;
        return { values, unique: new Set(values) };
      },
    });
    return { tree, builds: () => builds };
  }

  it('builds once per miss and returns the same built object on every hit', () => {
    const { tree, builds } = builtTree();
    tree.insert('md.*.bid', 'sub1');
    tree.insert('md.>', 'sub1');
    const first = tree.match('md.X.bid');
    expect(first.values).toEqual(['sub1', 'sub1']);
    expect([...first.unique]).toEqual(['sub1']);
    expect(tree.match('md.X.bid')).toBe(first);
    expect(tree.match('md.X.bid')).toBe(first);
    expect(builds()).toBe(1);
  });

  it('rebuilds after an insert or remove that affects the subject, and only then', () => {
    const { tree, builds } = builtTree();
    tree.insert('md.*.bid', 'a');
    const first = tree.match('md.X.bid');
    tree.insert('orders.>', 'unrelated');
    expect(tree.match('md.X.bid')).toBe(first);
    expect(builds()).toBe(1);

    tree.insert('md.X.>', 'b');
    const second = tree.match('md.X.bid');
    expect(second).not.toBe(first);
    expect([...second.unique].sort()).toEqual(['a', 'b']);
    expect(builds()).toBe(2);

    tree.remove('md.*.bid', 'a');
    const third = tree.match('md.X.bid');
    expect(third).not.toBe(second);
    expect(third.values).toEqual(['b']);
    expect(builds()).toBe(3);
  });

  it('an undefined build result is returned but never cached', () => {
    let builds = 0;
    const tree = new SubjectTree<string, undefined>({
      build: () => {
        builds++;
        return undefined;
      },
    });
    expect(tree.match('a')).toBeUndefined();
    expect(tree.match('a')).toBeUndefined();
    expect(builds).toBe(2);
    expect(tree.cacheSize).toBe(0);
  });
});

describe('SubjectTree.matches (single pattern)', () => {
  const cases: Array<[string, string, boolean]> = [
    ['a.b.c', 'a.b.c', true],
    ['a.b.c', 'a.b', false],
    ['a.b', 'a.b.c', false],
    ['a.b.c', 'a.b.cd', false],
    ['a.*.c', 'a.b.c', true],
    ['a.*.c', 'a.c', false],
    ['a.*', 'a.b.c', false],
    ['*', 'a', true],
    ['*', 'a.b', false],
    ['a.>', 'a', false],
    ['a.>', 'a.b', true],
    ['a.>', 'a.b.c', true],
    ['>', 'a', true],
    ['*.>', 'a', false],
    ['*.>', 'a.b', true],
    ['md.*.bid', 'md.€.bid', true],
  ];
  it.each(cases)('matches(%j, %j) is %s', (pattern, subject, expected) => {
    expect(SubjectTree.matches(pattern, subject)).toBe(expected);
  });
});

// ---------------------------------------------------------------------------
// Property-based: the tree against the naive reference, through random
// sequences of inserts, removals and matches.

const TOKENS = ['a', 'b', 'c'] as const;
const subjectArb = fc.array(fc.constantFrom(...TOKENS), { minLength: 1, maxLength: 4 }).map((t) => t.join('.'));
const patternArb = fc
  .tuple(
    fc.array(fc.constantFrom('a', 'b', 'c', '*', '*'), { minLength: 0, maxLength: 4 }),
    fc.boolean(), // ends with '>'
  )
  .filter(([tokens, fwc]) => tokens.length > 0 || fwc)
  .map(([tokens, fwc]) => (fwc ? [...tokens, '>'] : tokens).join('.'));
const valueArb = fc.integer({ min: 0, max: 3 }); // few values, so duplicates are common

type Op =
  | { op: 'insert'; pattern: string; value: number }
  | { op: 'remove'; pattern: string; value: number }
  | { op: 'removeExisting'; index: number }
  | { op: 'match'; subject: string };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('insert' as const), pattern: patternArb, value: valueArb }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('removeExisting' as const), index: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('remove' as const), pattern: patternArb, value: valueArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('match' as const), subject: subjectArb }) },
);

const scenarioArb = fc.record({
  ops: fc.array(opArb, { minLength: 1, maxLength: 40 }),
  probes: fc.uniqueArray(subjectArb, { minLength: 1, maxLength: 12 }),
});

function referenceMatch(model: Array<[string, number]>, subject: string): number[] {
  return model.filter(([p]) => refMatches(p, subject)).map(([, v]) => v);
}

const byNumber = (a: number, b: number) => a - b;

describe('property: the tree agrees with the naive reference matcher', () => {
  it('SubjectTree.matches equals the reference on random patterns and subjects', () => {
    fc.assert(
      fc.property(patternArb, subjectArb, (p, s) => SubjectTree.matches(p, s) === refMatches(p, s)),
      { numRuns: 2000 },
    );
  });

  for (const cacheSize of [0, 8, 4096]) {
    it(`match results are the reference multiset after every insert and removal (cacheSize ${cacheSize})`, () => {
      let totalHits = 0;
      fc.assert(
        fc.property(scenarioArb, ({ ops, probes }) => {
          const tree = new SubjectTree<number>({ cacheSize });
          const model: Array<[string, number]> = [];
          let previous = new Map<string, readonly number[]>();

          const check = (changedPattern: string | null) => {
            const now = new Map<string, readonly number[]>();
            for (const s of probes) {
              const got = tree.match(s);
              expect([...got].sort(byNumber)).toEqual(referenceMatch(model, s).sort(byNumber));
              // With a cache large enough never to evict, a result survives
              // exactly when the change could not affect it.
              if (cacheSize === 4096 && previous.has(s)) {
                const untouched = changedPattern === null || !refMatches(changedPattern, s);
                if (untouched) expect(got).toBe(previous.get(s));
                else expect(got).not.toBe(previous.get(s));
              }
              now.set(s, got);
            }
            previous = now;
            expect(tree.size).toBe(model.length);
            expect(tree.cacheSize).toBeLessThanOrEqual(cacheSize);
          };

          check(null);
          for (const op of ops) {
            let changed: string | null = null;
            if (op.op === 'insert') {
              tree.insert(op.pattern, op.value);
              model.push([op.pattern, op.value]);
              changed = op.pattern;
            } else if (op.op === 'remove') {
              const idx = model.findIndex(([p, v]) => p === op.pattern && v === op.value);
              expect(tree.remove(op.pattern, op.value)).toBe(idx !== -1);
              if (idx !== -1) {
                model.splice(idx, 1);
                changed = op.pattern;
              }
            } else if (op.op === 'removeExisting') {
              if (model.length === 0) continue;
              const [p, v] = model.splice(op.index % model.length, 1)[0]!;
              expect(tree.remove(p, v)).toBe(true);
              changed = p;
            } else {
              expect([...tree.match(op.subject)].sort(byNumber)).toEqual(referenceMatch(model, op.subject).sort(byNumber));
            }
            check(changed);
          }

          // Removing everything left leaves an empty, fully pruned trie.
          for (const [p, v] of model.splice(0)) expect(tree.remove(p, v)).toBe(true);
          previous = new Map(); // several changes at once: identity is not predicted here
          check(null);
          expect(countTrieNodes(tree)).toBe(1);
          totalHits += tree.stats().hits;
        }),
        { numRuns: 400 },
      );
      // The cached variants must actually have served hits, or the property proved nothing about the cache.
      if (cacheSize > 0) expect(totalHits).toBeGreaterThan(0);
    });
  }
});

describe('batched changes', () => {
  it('defers cache invalidation to the end of a batch and stays correct', () => {
    const t = new SubjectTree<number>({ cacheSize: 64 });
    for (let i = 0; i < 40; i++) t.insert(`a.*.${i}`, i);
    t.insert('a.>', 100);
    expect([...t.match('a.b.3')].sort((x, y) => x - y)).toEqual([3, 100]);
    t.batch(() => {
      for (let i = 0; i < 40; i++) t.remove(`a.*.${i}`, i);
    });
    expect([...t.match('a.b.3')]).toEqual([100]);
    t.batch(() => t.remove('a.>', 100));
    expect([...t.match('a.b.3')]).toEqual([]);
    expect(t.size).toBe(0);
  });
});
