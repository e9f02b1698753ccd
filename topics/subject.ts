/**
 * Subject grammar of the bus.
 *
 *   subject  = token *( "." token )
 *   token    = 1*( any character except "." , whitespace, control )
 *
 * In a subscription pattern a token may also be exactly `*` (matches one
 * token) or exactly `>` (matches one or more trailing tokens; only as the
 * last token). A publish subject never contains `*` or `>` at all: as whole
 * tokens they are wildcards, and inside a token (`a*`, `b>`) they would be
 * ambiguous with the wildcards, so they are refused everywhere.
 *
 * "Whitespace" is exactly what JavaScript's /\s/ matches; "control" is any
 * code unit below 0x20 plus 0x7f (DEL).
 *
 * The validators run on every publish, so the success path is one
 * charCodeAt loop: no regex, no split, no allocation. Everything that builds
 * strings (error messages) lives on the failure path.
 */
import { HopbusError } from '../runtime/errors.js';

/** Largest subject or pattern accepted, in UTF-8 bytes (not UTF-16 code units). */
export const MAX_SUBJECT_BYTES = 1024;

/** Largest number of `.`-separated tokens in a subject or pattern. */
export const MAX_SUBJECT_TOKENS = 64;

/** Thrown for every refused subject or pattern; the message names the problem and the subject. */
export class SubjectError extends HopbusError {
  declare readonly code: 'BAD_SUBJECT';
  /** The refused input (stringified if it was not a string). */
  readonly subject: string;

  constructor(message: string, subject: string) {
    super('BAD_SUBJECT', message);
    this.subject = subject;
  }
}

// Failure codes of scan(). 0 means valid; anything else is built into a
// message only by fail(), so the boolean validators never allocate.
const OK = 0;
const E_NOT_STRING = 1;
const E_EMPTY = 2;
const E_TOO_LONG = 3;
const E_TOO_MANY_TOKENS = 4;
const E_EMPTY_TOKEN = 5;
const E_WHITESPACE = 6;
const E_CONTROL = 7;
const E_LONE_SURROGATE = 12;
const E_WILDCARD_IN_SUBJECT = 8;
const E_PARTIAL_WILDCARD = 9;
const E_GT_NOT_LAST = 10;
const E_TRAILING_DOT = 11;

// Index of the offending code unit of the last failed scan. A module-level
// slot rather than a returned object keeps the hot path allocation-free; it
// is read synchronously right after scan() returns, so it cannot be stale.
let errIndex = 0;

const DOT = 0x2e;
const STAR = 0x2a;
const GT = 0x3e;

/** True for the code units /\s/ matches at or above 0x80 (the ASCII ones are tested inline). */
function isNonAsciiWhitespace(c: number): boolean {
  return (
    c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff
  );
}

/**
 * One pass over the input; returns OK or the first failure found (scanning
 * left to right, with size limits that need the whole string checked after
 * the structural rules).
 */
function scan(s: unknown, pattern: boolean): number {
  if (typeof s !== 'string') return E_NOT_STRING;
  const n = s.length;
  if (n === 0) return E_EMPTY;
  // Every UTF-16 code unit is at least one UTF-8 byte, so this refuses huge
  // input in O(1) before looking at it.
  if (n > MAX_SUBJECT_BYTES) return E_TOO_LONG;

  let bytes = 0;
  let tokens = 1;
  let tokenStart = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      bytes += 1;
      if (c === DOT) {
        if (i === tokenStart) {
          errIndex = i;
          return E_EMPTY_TOKEN;
        }
        tokens++;
        tokenStart = i + 1;
      } else if (c <= 0x20 || c === 0x7f) {
        errIndex = i;
        // \t \n \v \f \r and space are whitespace for /\s/; the rest are controls.
        return c === 0x20 || (c >= 0x09 && c <= 0x0d) ? E_WHITESPACE : E_CONTROL;
      } else if (c === STAR || c === GT) {
        errIndex = i;
        const whole = i === tokenStart && (i + 1 === n || s.charCodeAt(i + 1) === DOT);
        if (!whole) return E_PARTIAL_WILDCARD;
        if (!pattern) return E_WILDCARD_IN_SUBJECT;
        if (c === GT && i + 1 !== n) return E_GT_NOT_LAST;
      }
    } else if (c < 0x800) {
      bytes += 2;
      if (c === 0xa0) {
        errIndex = i;
        return E_WHITESPACE;
      }
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      // A well-formed surrogate pair is one 4-byte code point.
      bytes += 4;
      i++;
    } else {
      // A lone surrogate would reach the wire as U+FFFD, so two different subjects
      // could arrive as the same bytes: refuse it.
      if (c >= 0xd800 && c <= 0xdfff) {
        errIndex = i;
        return E_LONE_SURROGATE;
      }
      bytes += 3;
      if (isNonAsciiWhitespace(c)) {
        errIndex = i;
        return E_WHITESPACE;
      }
    }
  }
  if (tokenStart === n) {
    // Trailing "." (n > 0, so the last character was the separator).
    errIndex = n - 1;
    return E_TRAILING_DOT;
  }
  if (bytes > MAX_SUBJECT_BYTES) return E_TOO_LONG;
  if (tokens > MAX_SUBJECT_TOKENS) return E_TOO_MANY_TOKENS;
  return OK;
}

/** UTF-8 length of `s`, without encoding it (lone surrogates count 3, as TextEncoder writes U+FFFD). */
export function subjectByteLength(s: string): number {
  let bytes = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

// ---------------------------------------------------------------------------
// Failure path: everything below may allocate.

function describeNonString(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function safeString(v: unknown): string {
  try {
    return String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

/** The input quoted for a message; long inputs are cut (the full text stays on SubjectError.subject). */
function quote(s: string): string {
  const LIMIT = 80;
  if (s.length <= LIMIT) return JSON.stringify(s);
  let cut = 60;
  const last = s.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--; // do not split a surrogate pair
  return JSON.stringify(s.slice(0, cut)).slice(0, -1) + '..."';
}

function hex(c: number): string {
  return 'U+' + c.toString(16).toUpperCase().padStart(4, '0');
}

/** 1-based token number of the token containing code unit `index`. */
function tokenPosition(s: string, index: number): number {
  let pos = 1;
  for (let i = 0; i < index; i++) if (s.charCodeAt(i) === DOT) pos++;
  return pos;
}

function tokenAt(s: string, index: number): string {
  const start = s.lastIndexOf('.', index - 1) + 1;
  let end = s.indexOf('.', index);
  if (end === -1) end = s.length;
  return s.slice(start, end);
}

function countTokens(s: string): number {
  let n = 1;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === DOT) n++;
  return n;
}

function fail(code: number, input: unknown, pattern: boolean): SubjectError {
  const kind = pattern ? 'pattern' : 'subject';
  if (code === E_NOT_STRING) {
    return new SubjectError(`invalid ${kind}: expected a string, got ${describeNonString(input)}`, safeString(input));
  }
  const s = input as string;
  const prefix = `invalid ${kind} ${quote(s)}: `;
  switch (code) {
    case E_EMPTY:
      return new SubjectError(`${kind} is empty`, s);
    case E_TOO_LONG:
      return new SubjectError(`${kind} ${quote(s)} is ${subjectByteLength(s)} bytes, over the limit of ${MAX_SUBJECT_BYTES}`, s);
    case E_TOO_MANY_TOKENS:
      return new SubjectError(`${prefix}${countTokens(s)} tokens, over the limit of ${MAX_SUBJECT_TOKENS}`, s);
    case E_EMPTY_TOKEN:
      // errIndex is the "." that closes the empty token.
      return new SubjectError(`${prefix}empty token at position ${tokenPosition(s, errIndex)} (${errIndex === 0 ? 'leading "."' : '".." in a row'})`, s);
    case E_TRAILING_DOT:
      return new SubjectError(`${prefix}empty token at position ${countTokens(s)} (trailing ".")`, s);
    case E_WHITESPACE:
      return new SubjectError(`${prefix}contains whitespace at index ${errIndex} (${hex(s.charCodeAt(errIndex))})`, s);
    case E_LONE_SURROGATE:
      return new SubjectError(`${prefix}contains an unpaired UTF-16 surrogate at index ${errIndex}: subjects must be valid Unicode`, s);
    case E_CONTROL:
      return new SubjectError(`${prefix}contains control character at index ${errIndex} (${hex(s.charCodeAt(errIndex))})`, s);
    case E_WILDCARD_IN_SUBJECT:
      return new SubjectError(`${prefix}wildcards are not allowed in a publish subject ("${s[errIndex]}" at position ${tokenPosition(s, errIndex)})`, s);
    case E_PARTIAL_WILDCARD: {
      const ch = s[errIndex];
      const token = JSON.stringify(tokenAt(s, errIndex));
      const pos = tokenPosition(s, errIndex);
      return new SubjectError(
        pattern
          ? `${prefix}"${ch}" must be a whole token, found ${token} at position ${pos}`
          : `${prefix}"${ch}" is not allowed in a publish subject, even inside a token: found ${token} at position ${pos}`,
        s,
      );
    }
    case E_GT_NOT_LAST:
      return new SubjectError(`${prefix}">" must be the last token (found at position ${tokenPosition(s, errIndex)} of ${countTokens(s)})`, s);
    default:
      return new SubjectError(`${prefix}unknown problem (code ${code})`, s);
  }
}

// ---------------------------------------------------------------------------
// Public validators.

/** Throws SubjectError unless `s` is a valid publish subject (no wildcards). */
export function validateSubject(s: string): void {
  const code = scan(s, false);
  if (code !== OK) throw fail(code, s, false);
}

/** Throws SubjectError unless `p` is a valid subscription pattern (`*` and a trailing `>` allowed). */
export function validatePattern(p: string): void {
  const code = scan(p, true);
  if (code !== OK) throw fail(code, p, true);
}

/** Like validateSubject, as a boolean; never throws, never allocates. */
export function isValidSubject(s: string): boolean {
  return scan(s, false) === OK;
}

/** Like validatePattern, as a boolean; never throws, never allocates. */
export function isValidPattern(p: string): boolean {
  return scan(p, true) === OK;
}
