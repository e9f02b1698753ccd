/**
 * NATS headers <-> hopbus headers, so that a message keeps its headers whichever
 * protocol publishes it and whichever receives it.
 *
 * NATS (HPUB/HMSG): a block `NATS/1.0[ <code>[ <description>]]\r\n`, then
 * `<key>: <value>\r\n` lines, then `\r\n`. A key may repeat; keys keep their case
 * (nats.js and nats.go send them as written); values are read trimmed of spaces and
 * tabs (as nats.js and Go's textproto do) and cannot contain CR or LF.
 * hopbus: a msgpack map of string -> string (client/codec.ts encodeHeaders).
 *
 * The mapping:
 * - A key that repeats becomes one hopbus value, its values joined with '\n' in block
 *   order. NATS values cannot contain LF, so this is lossless: going back, a hopbus
 *   value is written as one `key: part` line per '\n'-separated part. (A comma join,
 *   HTTP style, would not survive values that contain commas.)
 * - The status line maps to two pseudo keys, ':status' (the code, e.g. '503' for no
 *   responders, '408' for a request timeout) and ':description' (e.g. 'No Responders'),
 *   present only when the block has them. A NATS key cannot contain ':' (the colon ends
 *   it), so they never collide with a real header.
 * - A key '__proto__' does not survive msgpack: msgpackr reads it back as '__proto_'
 *   (its guard against prototype pollution).
 * - hopbus -> NATS: a key that cannot be a NATS key (empty, ':' or a byte outside
 *   printable ASCII 33..126) is left out, and a CR in a value is dropped: either would
 *   break the framing of the block for every NATS client.
 */
import { Packr, Unpackr } from 'msgpackr';

export type HeaderMap = Record<string, string>;

export const STATUS_KEY = ':status';
export const DESCRIPTION_KEY = ':description';

/** 'NATS/1.0' */
const PREFIX = [0x4e, 0x41, 0x54, 0x53, 0x2f, 0x31, 0x2e, 0x30];
const CR = 13;
const LF = 10;
const SP = 32;
const TAB = 9;
const COLON = 58;

// Same settings as the hopbus codec (client/codec.ts), so both read each other's maps.
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/**
 * Reads the NATS header block buf[off, off + len) into a header map, or null when it
 * does not start with `NATS/1.0` (nats-server and the clients reject such a block).
 * Lines without a colon are skipped, as nats.js does.
 */
export function parseNatsHeaders(buf: Buffer, off: number, len: number): HeaderMap | null {
  if (len < PREFIX.length) return null;
  for (let i = 0; i < PREFIX.length; i++) if (buf[off + i] !== PREFIX[i]) return null;
  const end = off + len;
  // No prototype: a header may well be called 'constructor' or 'toString'.
  const out = Object.create(null) as HeaderMap;
  let p = off + PREFIX.length;
  // Status line: `NATS/1.0 503 No Responders` -> code, then the description.
  let eol = lineEnd(buf, p, end);
  let s = skipBlanks(buf, p, eol);
  if (s < eol) {
    let c = s;
    while (c < eol && buf[c]! >= 48 && buf[c]! <= 57) c++;
    if (c > s) out[STATUS_KEY] = buf.toString('latin1', s, c);
    const d = skipBlanks(buf, c, eol);
    const de = trimEnd(buf, d, eol);
    if (de > d) out[DESCRIPTION_KEY] = buf.toString('utf8', d, de);
  }
  p = next(buf, eol, end);
  while (p < end) {
    eol = lineEnd(buf, p, end);
    if (eol === p) break; // the empty line that ends the block
    let colon = p;
    while (colon < eol && buf[colon] !== COLON) colon++;
    if (colon < eol && colon > p) {
      const key = buf.toString('utf8', p, colon);
      s = skipBlanks(buf, colon + 1, eol);
      const value = buf.toString('utf8', s, trimEnd(buf, s, eol));
      const had = out[key];
      out[key] = had === undefined ? value : `${had}\n${value}`;
    }
    p = next(buf, eol, end);
  }
  return out;
}

/** Index of the CR (or bare LF) that ends the line starting at p, or `end`. */
function lineEnd(buf: Buffer, p: number, end: number): number {
  while (p < end && buf[p] !== CR && buf[p] !== LF) p++;
  return p;
}

/** Start of the line after the one ending at eol. */
function next(buf: Buffer, eol: number, end: number): number {
  if (eol < end && buf[eol] === CR) eol++;
  if (eol < end && buf[eol] === LF) eol++;
  return eol;
}

function skipBlanks(buf: Buffer, p: number, end: number): number {
  while (p < end && (buf[p] === SP || buf[p] === TAB)) p++;
  return p;
}

function trimEnd(buf: Buffer, start: number, end: number): number {
  while (end > start && (buf[end - 1] === SP || buf[end - 1] === TAB)) end--;
  return end;
}

/** A key NATS clients accept: printable ASCII without ':' (nats.js canonicalMIMEHeaderKey's test). */
function validKey(k: string): boolean {
  if (k.length === 0) return false;
  for (let i = 0; i < k.length; i++) {
    const c = k.charCodeAt(i);
    if (c < 33 || c > 126 || c === COLON) return false;
  }
  return true;
}

function isStatusCode(s: string): boolean {
  if (s.length !== 3) return false;
  for (let i = 0; i < 3; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** `s` with CR and LF replaced, only when it has any (values almost never do). */
function oneLine(s: string, by: string): string {
  return s.indexOf('\r') < 0 && s.indexOf('\n') < 0 ? s : s.replace(/[\r\n]/g, by);
}

/**
 * The NATS header block for a header map: the status line from ':status' and
 * ':description', then a line per value ('\n' splits a joined value back into lines).
 */
export function formatNatsHeaders(h: HeaderMap): Buffer {
  let s = 'NATS/1.0';
  const status = h[STATUS_KEY];
  if (status !== undefined && isStatusCode(status)) {
    s += ` ${status}`;
    const d = h[DESCRIPTION_KEY];
    if (d !== undefined && d !== '') s += ` ${oneLine(d, ' ')}`;
  }
  s += '\r\n';
  for (const k of Object.keys(h)) {
    if (k === STATUS_KEY || k === DESCRIPTION_KEY || !validKey(k)) continue;
    const v = h[k];
    if (typeof v !== 'string') continue;
    let from = 0;
    for (let nl = v.indexOf('\n'); ; nl = v.indexOf('\n', from)) {
      const part = nl < 0 ? v.slice(from) : v.slice(from, nl);
      s += `${k}: ${oneLine(part, '')}\r\n`;
      if (nl < 0) break;
      from = nl + 1;
    }
  }
  return Buffer.from(`${s}\r\n`, 'utf8');
}

/** A NATS header block as hopbus header bytes (the msgpack map), or null when it is not a NATS/1.0 block. */
export function natsToHopbusHeaders(buf: Buffer, off: number, len: number): Buffer | null {
  const h = parseNatsHeaders(buf, off, len);
  return h === null ? null : Buffer.from(packr.pack(h));
}

/** hopbus header bytes (a msgpack map of strings) as a NATS header block, or null when they are not such a map. */
export function hopbusToNatsHeaders(buf: Buffer, off: number, len: number): Buffer | null {
  let h: unknown;
  try {
    h = unpackr.unpack(buf.subarray(off, off + len));
  } catch {
    return null;
  }
  if (h === null || typeof h !== 'object') return null;
  const proto = Object.getPrototypeOf(h) as unknown;
  if (proto !== Object.prototype && proto !== null) return null; // an array, or one of msgpackr's extension types
  return formatNatsHeaders(h as HeaderMap);
}
