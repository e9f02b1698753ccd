import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  isValidPattern,
  isValidSubject,
  MAX_SUBJECT_BYTES,
  MAX_SUBJECT_TOKENS,
  SubjectError,
  subjectByteLength,
  validatePattern,
  validateSubject,
} from '../../topics/index.js';

/** The error thrown by fn, asserting it is a SubjectError. */
function errorOf(fn: () => void): SubjectError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SubjectError);
    return err as SubjectError;
  }
  throw new Error('expected a SubjectError, nothing was thrown');
}

const subjectMessage = (s: unknown) => errorOf(() => validateSubject(s as string)).message;
const patternMessage = (p: unknown) => errorOf(() => validatePattern(p as string)).message;

const utf8 = new TextEncoder();

/** Naive reference grammar, written for clarity rather than speed. */
function referenceValid(s: unknown, pattern: boolean): boolean {
  if (typeof s !== 'string' || s.length === 0) return false;
  if (utf8.encode(s).length > MAX_SUBJECT_BYTES) return false;
  // eslint-disable-next-line no-control-regex -- the grammar forbids control characters, so the reference names them
  if (/[\s\u0000-\u001f\u007f]/.test(s)) return false;
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s)) return false; // a lone surrogate

  const tokens = s.split('.');
  if (tokens.length > MAX_SUBJECT_TOKENS) return false;
  return tokens.every((t, i) => {
    if (t === '') return false;
    if (t === '*') return pattern;
    if (t === '>') return pattern && i === tokens.length - 1;
    return !t.includes('*') && !t.includes('>');
  });
}

describe('lone surrogates', () => {
  it('refuses an unpaired surrogate, which would reach the wire as U+FFFD', () => {
    expect(() => validateSubject('md.\ud800.bid')).toThrow(/unpaired UTF-16 surrogate at index 3/);
    expect(isValidPattern('a.\udc00')).toBe(false);
    expect(isValidSubject('md.\ud83d\ude00.bid')).toBe(true);
  });
});

describe('valid subjects', () => {
  const subjects = [
    'a',
    'md.AAPL.bid',
    'orders.desk7.fill.12345',
    'a-b_c:d/e@f',
    'prix.€.bid',
    'ticker.日本.7203',
    'emoji.😀.x',
    'x'.repeat(MAX_SUBJECT_BYTES),
  ];
  it.each(subjects)('accepts %j as a publish subject and as a pattern', (s) => {
    expect(() => validateSubject(s)).not.toThrow();
    expect(isValidSubject(s)).toBe(true);
    expect(() => validatePattern(s)).not.toThrow();
    expect(isValidPattern(s)).toBe(true);
  });
});

describe('valid patterns', () => {
  const patterns = ['*', '>', 'md.*.bid', 'md.>', '*.*.>', 'a.*', '*.b', 'orders.desk3.>'];
  it.each(patterns)('accepts %j as a pattern but not as a publish subject', (p) => {
    expect(() => validatePattern(p)).not.toThrow();
    expect(isValidPattern(p)).toBe(true);
    expect(isValidSubject(p)).toBe(false);
    expect(subjectMessage(p)).toContain('wildcards are not allowed in a publish subject');
  });
});

describe('SubjectError', () => {
  it('is an Error with code BAD_SUBJECT, its own name, and the refused input', () => {
    const err = errorOf(() => validateSubject('md..bid'));
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('BAD_SUBJECT');
    expect(err.name).toBe('SubjectError');
    expect(err.subject).toBe('md..bid');
  });
});

describe('refusals name the problem and the subject', () => {
  it('empty input', () => {
    expect(subjectMessage('')).toBe('subject is empty');
    expect(patternMessage('')).toBe('pattern is empty');
  });

  it('empty token between two dots, with its 1-based position', () => {
    expect(subjectMessage('md..bid')).toBe('invalid subject "md..bid": empty token at position 2 (".." in a row)');
    expect(patternMessage('a.b..')).toBe('invalid pattern "a.b..": empty token at position 3 (".." in a row)');
  });

  it('leading and trailing dots are empty tokens too', () => {
    expect(subjectMessage('.md')).toBe('invalid subject ".md": empty token at position 1 (leading ".")');
    expect(subjectMessage('md.')).toBe('invalid subject "md.": empty token at position 2 (trailing ".")');
    expect(subjectMessage('.')).toBe('invalid subject ".": empty token at position 1 (leading ".")');
    expect(patternMessage('md.*.')).toBe('invalid pattern "md.*.": empty token at position 3 (trailing ".")');
  });

  it('wildcard tokens in a publish subject', () => {
    expect(subjectMessage('md.*.bid')).toBe('invalid subject "md.*.bid": wildcards are not allowed in a publish subject ("*" at position 2)');
    expect(subjectMessage('md.>')).toBe('invalid subject "md.>": wildcards are not allowed in a publish subject (">" at position 2)');
  });

  it('">" anywhere but last in a pattern', () => {
    expect(patternMessage('a.>.b')).toBe('invalid pattern "a.>.b": ">" must be the last token (found at position 2 of 3)');
    expect(patternMessage('>.a')).toBe('invalid pattern ">.a": ">" must be the last token (found at position 1 of 2)');
  });

  it('wildcard characters inside a token, in patterns', () => {
    expect(patternMessage('md.a*')).toBe('invalid pattern "md.a*": "*" must be a whole token, found "a*" at position 2');
    expect(patternMessage('b>')).toBe('invalid pattern "b>": ">" must be a whole token, found "b>" at position 1');
    expect(patternMessage('*a.b')).toBe('invalid pattern "*a.b": "*" must be a whole token, found "*a" at position 1');
    expect(patternMessage('x.**')).toBe('invalid pattern "x.**": "*" must be a whole token, found "**" at position 2');
    expect(patternMessage('x.>>')).toBe('invalid pattern "x.>>": ">" must be a whole token, found ">>" at position 2');
  });

  it('wildcard characters inside a token, in publish subjects', () => {
    expect(subjectMessage('md.a*')).toBe('invalid subject "md.a*": "*" is not allowed in a publish subject, even inside a token: found "a*" at position 2');
    expect(subjectMessage('px>.1')).toBe('invalid subject "px>.1": ">" is not allowed in a publish subject, even inside a token: found "px>" at position 1');
  });

  it('whitespace, with its index and code point', () => {
    expect(subjectMessage('md. bid')).toBe('invalid subject "md. bid": contains whitespace at index 3 (U+0020)');
    expect(subjectMessage('a\tb')).toBe('invalid subject "a\\tb": contains whitespace at index 1 (U+0009)');
    expect(subjectMessage('a\nb')).toContain('contains whitespace at index 1 (U+000A)');
    expect(subjectMessage('a\u00a0b')).toContain('contains whitespace at index 1 (U+00A0)');
    expect(subjectMessage('ab\u2028')).toContain('contains whitespace at index 2 (U+2028)');
    expect(subjectMessage('\u3000')).toContain('contains whitespace at index 0 (U+3000)');
    expect(patternMessage('*.\ufeff')).toContain('contains whitespace at index 2 (U+FEFF)');
  });

  it('control characters, with their index and code point', () => {
    expect(subjectMessage('a\u0001b')).toBe('invalid subject "a\\u0001b": contains control character at index 1 (U+0001)');
    expect(subjectMessage('a.\u0000')).toContain('contains control character at index 2 (U+0000)');
    expect(patternMessage('a\u007f')).toContain('contains control character at index 1 (U+007F)');
  });

  it('non-string input', () => {
    expect(subjectMessage(42)).toBe('invalid subject: expected a string, got number');
    expect(subjectMessage(undefined)).toBe('invalid subject: expected a string, got undefined');
    expect(patternMessage(null)).toBe('invalid pattern: expected a string, got null');
    expect(patternMessage(['a'])).toBe('invalid pattern: expected a string, got array');
    expect(errorOf(() => validateSubject(7 as unknown as string)).subject).toBe('7');
    expect(isValidSubject({} as unknown as string)).toBe(false);
    expect(isValidPattern(Symbol('x') as unknown as string)).toBe(false);
  });
});

describe('byte limit (UTF-8, not UTF-16 length)', () => {
  it('accepts exactly MAX_SUBJECT_BYTES ASCII bytes and refuses one more', () => {
    expect(MAX_SUBJECT_BYTES).toBe(1024);
    expect(isValidSubject('a'.repeat(1024))).toBe(true);
    const over = 'a'.repeat(1025);
    expect(subjectMessage(over)).toBe(`subject "${'a'.repeat(60)}..." is 1025 bytes, over the limit of 1024`);
    expect(errorOf(() => validateSubject(over)).subject).toBe(over);
  });

  it('counts 2-byte characters as 2', () => {
    expect(isValidSubject('é'.repeat(512))).toBe(true); // 1024 bytes, 512 code units
    expect(subjectMessage('é'.repeat(513))).toMatch(/ is 1026 bytes, over the limit of 1024$/);
  });

  it('counts 3-byte characters as 3', () => {
    const at = '€'.repeat(341) + 'a'; // 1023 + 1
    expect(subjectByteLength(at)).toBe(1024);
    expect(isValidSubject(at)).toBe(true);
    expect(subjectMessage(at + 'b')).toMatch(/ is 1025 bytes, over the limit of 1024$/);
  });

  it('counts a surrogate pair (astral character) as 4, not 6', () => {
    const at = '😀'.repeat(256); // 512 code units, 1024 bytes
    expect(isValidSubject(at)).toBe(true);
    expect(subjectMessage(at + 'a')).toMatch(/ is 1025 bytes, over the limit of 1024$/);
  });

  it('applies the same limit to patterns', () => {
    expect(isValidPattern('*.' + 'a'.repeat(1022))).toBe(true);
    expect(patternMessage('*.' + 'a'.repeat(1023))).toMatch(/^pattern ".*" is 1025 bytes, over the limit of 1024$/);
  });

  it('truncates a long subject in the message without splitting a surrogate pair', () => {
    const msg = subjectMessage('a'.repeat(59) + '😀'.repeat(600));
    expect(msg).toBe(`subject "${'a'.repeat(59)}..." is 2459 bytes, over the limit of 1024`);
  });

  it('subjectByteLength agrees with TextEncoder, lone surrogates included', () => {
    const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
    const anyString = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: codeUnit, maxLength: 40 }));
    fc.assert(
      fc.property(anyString, (s) => subjectByteLength(s) === utf8.encode(s).length),
      { numRuns: 500 },
    );
  });
});

describe('token limit', () => {
  const tokens = (n: number, t = 'a') => Array.from({ length: n }, () => t).join('.');

  it('accepts exactly MAX_SUBJECT_TOKENS tokens and refuses one more', () => {
    expect(MAX_SUBJECT_TOKENS).toBe(64);
    expect(isValidSubject(tokens(64))).toBe(true);
    expect(subjectMessage(tokens(65))).toMatch(/^invalid subject ".*": 65 tokens, over the limit of 64$/);
  });

  it('counts wildcard tokens in patterns', () => {
    expect(isValidPattern(tokens(63, '*') + '.>')).toBe(true);
    expect(patternMessage(tokens(64, '*') + '.>')).toMatch(/: 65 tokens, over the limit of 64$/);
  });
});

describe('whitespace, control characters and lone surrogates are exactly what is refused', () => {
  it('classifies every UTF-16 code unit like the reference', () => {
    const wrong: string[] = [];
    for (let c = 0; c <= 0xffff; c++) {
      const ch = String.fromCharCode(c);
      const s = 'a' + ch + 'b';
      const refused = /\s/.test(ch) || c < 0x20 || c === 0x7f || ch === '*' || ch === '>' || (c >= 0xd800 && c <= 0xdfff);
      if (isValidSubject(s) === refused) wrong.push(c.toString(16));
    }
    expect(wrong).toEqual([]);
  });
});

describe('validators agree with a naive reference grammar', () => {
  // Small alphabet full of edge cases, so that every rule is hit often.
  const nasty = fc.constantFrom('a', 'b', '.', '.', '*', '>', ' ', '\t', '\u0001', '\u007f', 'é', '€', '😀', '\u2028', '\ud800');
  const candidate = fc.oneof(
    fc.string({ unit: nasty, maxLength: 12 }),
    fc.array(fc.constantFrom('a', 'bc', '*', '>', 'a*', ''), { minLength: 1, maxLength: 6 }).map((t) => t.join('.')),
  );

  it('isValidSubject / isValidPattern match the reference', () => {
    fc.assert(
      fc.property(candidate, (s) => {
        expect(isValidSubject(s)).toBe(referenceValid(s, false));
        expect(isValidPattern(s)).toBe(referenceValid(s, true));
      }),
      { numRuns: 2000 },
    );
  });

  it('validate* throw a SubjectError exactly when isValid* is false', () => {
    fc.assert(
      fc.property(candidate, (s) => {
        for (const [validate, isValid] of [
          [validateSubject, isValidSubject],
          [validatePattern, isValidPattern],
        ] as const) {
          let thrown: unknown;
          try {
            validate(s);
          } catch (err) {
            thrown = err;
          }
          if (isValid(s)) expect(thrown).toBeUndefined();
          else {
            expect(thrown).toBeInstanceOf(SubjectError);
            expect((thrown as SubjectError).subject).toBe(s);
            expect((thrown as SubjectError).message.length).toBeGreaterThan(0);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('every pattern valid as a publish subject is also a valid pattern', () => {
    fc.assert(
      fc.property(candidate, (s) => !isValidSubject(s) || isValidPattern(s)),
      { numRuns: 1000 },
    );
  });
});
