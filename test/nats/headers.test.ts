/**
 * NATS header blocks <-> hopbus header maps: multi-valued keys joined with '\n' and
 * split back, the status line as ':status'/':description', round trips both ways, and
 * agreement with nats.js's own header codec (MsgHdrsImpl) in both directions.
 */
import fc from 'fast-check';
import { MsgHdrsImpl, headers as natsHeaders } from '@nats-io/nats-core/internal';
import { describe, expect, it } from 'vitest';
import { encodeHeaders, unpackr } from '../../client/codec.js';
import {
  DESCRIPTION_KEY,
  STATUS_KEY,
  formatNatsHeaders,
  hopbusToNatsHeaders,
  natsToHopbusHeaders,
  parseNatsHeaders,
  type HeaderMap,
} from '../../broker/nats/headers.js';

function parse(s: string): HeaderMap | null {
  const b = Buffer.from(s, 'utf8');
  return parseNatsHeaders(b, 0, b.length);
}

describe('NATS headers -> header map', () => {
  it('reads keys as written (case kept) and values trimmed', () => {
    expect(parse('NATS/1.0\r\nContent-Type: text/plain\r\nx-id:  42 \t\r\n\r\n')).toEqual({ 'Content-Type': 'text/plain', 'x-id': '42' });
  });

  it('joins the values of a repeated key with \\n, in order', () => {
    expect(parse('NATS/1.0\r\nA: 1\r\nB: x\r\nA: 2\r\nA: 3\r\n\r\n')).toEqual({ A: '1\n2\n3', B: 'x' });
  });

  it('maps the status line to :status and :description', () => {
    expect(parse('NATS/1.0 503\r\n\r\n')).toEqual({ [STATUS_KEY]: '503' });
    expect(parse('NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\n\r\n')).toEqual({
      [STATUS_KEY]: '408',
      [DESCRIPTION_KEY]: 'Request Timeout',
      'Nats-Pending-Messages': '1',
    });
  });

  it('is null for a block that is not NATS/1.0, and skips lines without a colon', () => {
    expect(parse('HTTP/1.1\r\n\r\n')).toBeNull();
    expect(parse('NATS')).toBeNull();
    expect(parse('NATS/1.0\r\nnonsense\r\nA: b\r\n\r\n')).toEqual({ A: 'b' });
  });

  it('keys named like Object.prototype members are ordinary keys', () => {
    expect(parse('NATS/1.0\r\ntoString: a\r\nconstructor: b\r\ntoString: c\r\n\r\n')).toEqual({ toString: 'a\nc', constructor: 'b' });
  });

  it('a value may contain colons; an empty value is kept', () => {
    expect(parse('NATS/1.0\r\nUrl: http://x:1/y\r\nE:\r\n\r\n')).toEqual({ Url: 'http://x:1/y', E: '' });
  });
});

describe('header map -> NATS headers', () => {
  it('writes the status line and one line per value, ending with the empty line', () => {
    expect(formatNatsHeaders({ [STATUS_KEY]: '503', A: '1\n2', B: 'x' }).toString()).toBe('NATS/1.0 503\r\nA: 1\r\nA: 2\r\nB: x\r\n\r\n');
    expect(formatNatsHeaders({}).toString()).toBe('NATS/1.0\r\n\r\n');
  });

  it('leaves out keys no NATS client accepts and CRs in values, which would break the block', () => {
    expect(formatNatsHeaders({ 'bad key': 'v', 'a:b': 'v', '': 'v', é: 'v', ok: 'x\ry' }).toString()).toBe('NATS/1.0\r\nok: xy\r\n\r\n');
  });

  it('ignores a :status that is not a three-digit code', () => {
    expect(formatNatsHeaders({ [STATUS_KEY]: 'oops', [DESCRIPTION_KEY]: 'd' }).toString()).toBe('NATS/1.0\r\n\r\n');
  });
});

const key = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}$/).filter((k) => k !== '__proto__'); // msgpackr renames that one
/** A NATS header value as a client can send it: printable, no CR/LF, no blanks at either end (they are trimmed). */
const value = fc.stringMatching(/^([!-~]([ -~]{0,18}[!-~])?)?$/);
const map = fc.dictionary(
  key,
  fc.array(value, { minLength: 1, maxLength: 3 }).map((v) => v.join('\n')),
  { maxKeys: 6 },
);

describe('header mapping round trips', () => {
  it('map -> NATS block -> map is the identity for maps NATS can carry', () => {
    fc.assert(
      fc.property(map, fc.option(fc.constantFrom('503', '408', '100'), { nil: undefined }), (h, status) => {
        const m: HeaderMap = { ...h };
        if (status !== undefined) m[STATUS_KEY] = status;
        const b = formatNatsHeaders(m);
        expect(parseNatsHeaders(b, 0, b.length)).toEqual(m);
      }),
      { numRuns: 300 },
    );
  });

  it('NATS block -> hopbus header bytes -> NATS block keeps every key and value', () => {
    fc.assert(
      fc.property(map, (h) => {
        const block = formatNatsHeaders(h);
        const hop = natsToHopbusHeaders(block, 0, block.length)!;
        expect(unpackr.unpack(hop)).toEqual(h);
        const back = hopbusToNatsHeaders(hop, 0, hop.length)!;
        expect(parseNatsHeaders(back, 0, back.length)).toEqual(h);
      }),
      { numRuns: 200 },
    );
  });

  it('reads what the hopbus SDK encodes (client/codec.ts encodeHeaders)', () => {
    const hop = encodeHeaders({ 'trace-id': 'abc', multi: 'a\nb' }, 1024);
    expect(hopbusToNatsHeaders(hop, 0, hop.length)!.toString()).toBe('NATS/1.0\r\ntrace-id: abc\r\nmulti: a\r\nmulti: b\r\n\r\n');
  });

  it('is null for hopbus header bytes that are not a map', () => {
    const notMap = Buffer.from([0x93, 1, 2, 3]);
    expect(hopbusToNatsHeaders(notMap, 0, notMap.length)).toBeNull();
    expect(hopbusToNatsHeaders(Buffer.from([0xc1]), 0, 1)).toBeNull(); // msgpackr's 'never used' type, not a map
    expect(hopbusToNatsHeaders(Buffer.from([0x81]), 0, 1)).toBeNull(); // truncated
  });
});

describe('agreement with nats.js headers', () => {
  it('reads what nats.js encodes, repeated keys and status included', () => {
    const h = natsHeaders();
    h.append('A', '1');
    h.append('A', '2');
    h.set('Trace', 'x y');
    const b = Buffer.from((h as MsgHdrsImpl).encode());
    expect(parseNatsHeaders(b, 0, b.length)).toEqual({ A: '1\n2', Trace: 'x y' });
    const s = natsHeaders(503, 'No Responders');
    const sb = Buffer.from((s as MsgHdrsImpl).encode());
    expect(parseNatsHeaders(sb, 0, sb.length)).toEqual({ [STATUS_KEY]: '503', [DESCRIPTION_KEY]: 'No Responders' });
  });

  it('nats.js reads what this writes: the same keys, values and status', () => {
    fc.assert(
      fc.property(map, (h) => {
        const d = MsgHdrsImpl.decode(formatNatsHeaders({ ...h, [STATUS_KEY]: '503', [DESCRIPTION_KEY]: 'No Responders' }));
        expect(d.code).toBe(503);
        expect(d.description).toBe('No Responders');
        for (const [k, v] of Object.entries(h)) expect(d.values(k)).toEqual(v.split('\n'));
      }),
      { numRuns: 200 },
    );
  });
});
