/**
 * The NATS client-protocol parser as a specification: every op, every error with the
 * exact text nats-server sends (constant names from its source cited at each), and the
 * property that a byte stream means the same thing however the network chunks it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ERR_AUTH_VIOLATION, ERR_MAX_CONTROL_LINE, ERR_MAX_PAYLOAD, ERR_UNKNOWN_OP } from '../../broker/nats/errors.js';
import { MAX_CONTROL_LINE_SIZE, NatsParser } from '../../broker/nats/parser.js';
import { Recorder, cut, errorOf, run, type NatsEvent } from './recorder.js';

describe('NATS parser: each op', () => {
  it('reads CONNECT with its JSON, with or without a space before it', () => {
    expect(run('CONNECT {"verbose":false,"name":"a b"}\r\n')).toEqual([{ op: 'connect', json: '{"verbose":false,"name":"a b"}' }]);
    expect(run('CONNECT{}\r\n')).toEqual([{ op: 'connect', json: '{}' }]);
    expect(run('CONNECT \t {"x":1}\r\n')).toEqual([{ op: 'connect', json: '{"x":1}' }]);
  });

  it('hands CONNECT text that is not JSON to the session as is (nats-server closes without an -ERR then)', () => {
    expect(run('CONNECT {oops}\r\n')).toEqual([{ op: 'connect', json: '{oops}' }]);
  });

  it('reads PUB with and without a reply, payload as a view', () => {
    expect(run('PUB foo 5\r\nhello\r\n')).toEqual([{ op: 'pub', subject: 'foo', reply: '', headers: '', payload: 'hello' }]);
    expect(run('PUB foo.bar _INBOX.1 2\r\nhi\r\n')).toEqual([{ op: 'pub', subject: 'foo.bar', reply: '_INBOX.1', headers: '', payload: 'hi' }]);
  });

  it('reads an empty PUB payload and a payload containing CR LF', () => {
    expect(run('PUB a 0\r\n\r\n')).toEqual([{ op: 'pub', subject: 'a', reply: '', headers: '', payload: '' }]);
    expect(run('PUB a 4\r\n\r\n\r\n\r\n')).toEqual([{ op: 'pub', subject: 'a', reply: '', headers: '', payload: '\r\n\r\n' }]);
  });

  it('splits arguments on runs of spaces and tabs, as processPub does', () => {
    expect(run('PUB \t foo \t  r  3 \t\r\nabc\r\n')).toEqual([{ op: 'pub', subject: 'foo', reply: 'r', headers: '', payload: 'abc' }]);
  });

  it('hands out the chunk itself when a PUB is whole in it (no copy)', () => {
    const chunk = Buffer.from('PUB foo 5\r\nhello\r\n');
    let seen: Buffer | null = null;
    const r = new Recorder();
    r.onPub = (buf) => {
      seen = buf;
    };
    new NatsParser(r, { maxPayload: 1024 }).parse(chunk);
    expect(seen).toBe(chunk);
  });

  it('gathers a message that spans chunks in one buffer it reuses for the next such message', () => {
    const bufs: Buffer[] = [];
    const r = new Recorder();
    const record = r.onPub.bind(r);
    r.onPub = (buf, ...rest) => {
      bufs.push(buf);
      record(buf, ...rest);
    };
    const p = new NatsParser(r, { maxPayload: 1024 });
    p.parse(Buffer.from('PUB a 5\r\nhel'));
    p.parse(Buffer.from('lo\r\nPUB b 2\r'));
    p.parse(Buffer.from('\nhi\r\n'));
    expect(r.events).toEqual([
      { op: 'pub', subject: 'a', reply: '', headers: '', payload: 'hello' },
      { op: 'pub', subject: 'b', reply: '', headers: '', payload: 'hi' },
    ]);
    expect(bufs[1]).toBe(bufs[0]);
  });

  it('reads a payload far larger than its first buffer, arriving in many chunks', () => {
    const body = Buffer.alloc(200_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
    const whole = Buffer.concat([Buffer.from(`PUB big r ${body.length}\r\n`), body, Buffer.from('\r\nPING\r\n')]);
    const chunks: Buffer[] = [];
    for (let i = 0; i < whole.length; i += 1000) chunks.push(whole.subarray(i, i + 1000));
    const ev = run(chunks, { maxPayload: 1 << 20 });
    expect(ev).toEqual([{ op: 'pub', subject: 'big', reply: 'r', headers: '', payload: body.toString('latin1') }, { op: 'ping' }]);
  });

  it('reads HPUB: header block and body apart, sizes are header and total', () => {
    const hdr = 'NATS/1.0\r\nA: b\r\n\r\n';
    const line = `HPUB foo ${hdr.length} ${hdr.length + 5}\r\n${hdr}hello\r\n`;
    expect(run(line)).toEqual([{ op: 'pub', subject: 'foo', reply: '', headers: hdr, payload: 'hello' }]);
    const withReply = `HPUB foo rep ${hdr.length} ${hdr.length}\r\n${hdr}\r\n`;
    expect(run(withReply)).toEqual([{ op: 'pub', subject: 'foo', reply: 'rep', headers: hdr, payload: '' }]);
  });

  it('reads SUB with and without a queue group; a decimal sid also as a number', () => {
    expect(run('SUB foo.* 1\r\nSUB bar q 22\r\n')).toEqual([
      { op: 'sub', subject: 'foo.*', queue: '', sid: '1', sidNum: 1 },
      { op: 'sub', subject: 'bar', queue: 'q', sid: '22', sidNum: 22 },
    ]);
  });

  it('keeps a sid that is not a decimal number as bytes only (sid -1)', () => {
    expect(run('SUB foo abc\r\nUNSUB abc\r\n')).toEqual([
      { op: 'sub', subject: 'foo', queue: '', sid: 'abc', sidNum: -1 },
      { op: 'unsub', sid: 'abc', sidNum: -1, max: 0 },
    ]);
  });

  it('reads UNSUB with and without max; a max of 0 or not a number means now, as processUnsub', () => {
    expect(run('UNSUB 1\r\nUNSUB 2 10\r\nUNSUB 3 0\r\nUNSUB 4 x\r\n')).toEqual([
      { op: 'unsub', sid: '1', sidNum: 1, max: 0 },
      { op: 'unsub', sid: '2', sidNum: 2, max: 10 },
      { op: 'unsub', sid: '3', sidNum: 3, max: 0 },
      { op: 'unsub', sid: '4', sidNum: 4, max: 0 },
    ]);
  });

  it('reads PING and PONG, ignoring anything up to LF as nats-server does', () => {
    expect(run('PING\r\nPONG\r\nPING x\r\n')).toEqual([{ op: 'ping' }, { op: 'pong' }, { op: 'ping' }]);
  });

  it('accepts op names in any letter case', () => {
    expect(run('connect {}\r\nsub a 1\r\nPuB a 1\r\nx\r\npInG\r\nUnSuB 1\r\nhpub a 12 12\r\nNATS/1.0\r\n\r\n\r\n')).toEqual([
      { op: 'connect', json: '{}' },
      { op: 'sub', subject: 'a', queue: '', sid: '1', sidNum: 1 },
      { op: 'pub', subject: 'a', reply: '', headers: '', payload: 'x' },
      { op: 'ping' },
      { op: 'unsub', sid: '1', sidNum: 1, max: 0 },
      { op: 'pub', subject: 'a', reply: '', headers: 'NATS/1.0\r\n\r\n', payload: '' },
    ]);
  });

  it('accepts a control line ended by a bare LF, as parser.go (a CR before LF is dropped, not required)', () => {
    expect(run('SUB foo 1\nPUB foo 2\nhi\r\nPING\n')).toEqual([
      { op: 'sub', subject: 'foo', queue: '', sid: '1', sidNum: 1 },
      { op: 'pub', subject: 'foo', reply: '', headers: '', payload: 'hi' },
      { op: 'ping' },
    ]);
  });

  it('ignores +OK and a JSON INFO from a client, as nats-server does', () => {
    expect(run('+OK\r\nINFO {"a":1}\r\nPING\r\n')).toEqual([{ op: 'ping' }]);
  });
});

describe("NATS parser: errors (each text is nats-server's, each one stops the parser)", () => {
  it("an unknown op: parser.go parseErr, -ERR 'Unknown Protocol Operation'", () => {
    for (const bad of ['FOO bar\r\n', 'PUBX foo 1\r\n', 'P\r\n', 'SUBfoo 1\r\n', '\r\n', ' PING\r\n', 'PUB\r\n', 'UNSUB\r\n']) {
      expect(errorOf(run(bad)), bad).toBe(ERR_UNKNOWN_OP);
    }
  });

  it('MSG and HMSG from a client: Unknown Protocol Operation (server -> client only)', () => {
    expect(errorOf(run('MSG foo 1 2\r\nhi\r\n'))).toBe(ERR_UNKNOWN_OP);
    expect(errorOf(run('HMSG foo 1 12 12\r\n'))).toBe(ERR_UNKNOWN_OP);
  });

  it('a payload not followed by CR LF (wrong byte count): parser.go MSG_END_R/MSG_END_N -> parseErr', () => {
    expect(errorOf(run('PUB foo 3\r\nhello\r\n'))).toBe(ERR_UNKNOWN_OP);
    expect(errorOf(run('PUB foo 6\r\nhello\r\n\r\n'))).toBe(ERR_UNKNOWN_OP);
    expect(errorOf(run('PUB foo 5\r\nhello\n'))).toBe(ERR_UNKNOWN_OP);
    // The same when the payload arrived in pieces.
    expect(errorOf(run([Buffer.from('PUB foo 3\r\nhe'), Buffer.from('llo\r\n')]))).toBe(ERR_UNKNOWN_OP);
    expect(errorOf(run([Buffer.from('PUB foo 5\r\nhello\r'), Buffer.from('X')]))).toBe(ERR_UNKNOWN_OP);
  });

  it("arguments over MAX_CONTROL_LINE_SIZE: errors.go ErrMaxControlLine, -ERR 'maximum control line exceeded'", () => {
    const long = 'a'.repeat(MAX_CONTROL_LINE_SIZE + 1);
    expect(errorOf(run(`SUB ${long} 1\r\n`))).toBe(ERR_MAX_CONTROL_LINE);
    expect(errorOf(run(`CONNECT {"name":"${long}"}\r\n`))).toBe(ERR_MAX_CONTROL_LINE);
    // Exactly at the limit is fine (the limit counts the arguments, not the op or CR LF).
    const sub = 'b'.repeat(MAX_CONTROL_LINE_SIZE - 2);
    expect(run(`SUB ${sub} 1\r\n`)).toEqual([{ op: 'sub', subject: sub, queue: '', sid: '1', sidNum: 1 }]);
  });

  it('counts the limit without the CR, also when a chunk ends between CR and LF', () => {
    const subject = 'c'.repeat(MAX_CONTROL_LINE_SIZE - 2);
    const ev = run([Buffer.from(`SUB ${subject} 1\r`), Buffer.from('\n')]);
    expect(ev).toEqual([{ op: 'sub', subject, queue: '', sid: '1', sidNum: 1 }]);
    expect(errorOf(run([Buffer.from(`SUB ${subject}x 1\r`), Buffer.from('\n')]))).toBe(ERR_MAX_CONTROL_LINE);
  });

  it('refuses a too-long control line before its end arrives, and does not keep buffering', () => {
    const r = new Recorder();
    const p = new NatsParser(r, { maxPayload: 1024 });
    p.parse(Buffer.from('SUB '));
    for (let i = 0; i < 10 && !p.closed; i++) p.parse(Buffer.alloc(1000, 0x61));
    expect(r.events).toEqual([expect.objectContaining({ op: 'error', text: ERR_MAX_CONTROL_LINE })]);
    expect(p.closed).toBe(true);
  });

  it('bounds what it ignores after PING too', () => {
    expect(errorOf(run(`PING${' '.repeat(MAX_CONTROL_LINE_SIZE + 2)}\r\n`))).toBe(ERR_MAX_CONTROL_LINE);
  });

  it("a PUB size over max_payload: client.go maxPayloadViolation, -ERR 'Maximum Payload Violation', before any payload is read", () => {
    const r = new Recorder();
    const p = new NatsParser(r, { maxPayload: 10 });
    p.parse(Buffer.from('PUB foo 11\r\n'));
    expect(r.events).toEqual([expect.objectContaining({ op: 'error', text: ERR_MAX_PAYLOAD })]);
    expect(errorOf(run('PUB foo 10\r\n0123456789\r\n', { maxPayload: 10 }))).toBeUndefined();
  });

  it('an HPUB total (headers + body) over max_payload: processHeaderPub, Maximum Payload Violation', () => {
    expect(errorOf(run('HPUB foo 6 11\r\n', { maxPayload: 10 }))).toBe(ERR_MAX_PAYLOAD);
  });

  it('malformed PUB/HPUB/SUB/UNSUB arguments: nats-server closes without an -ERR (processPub & co. return an error, readLoop closes)', () => {
    const silent: [string, string][] = [
      ['PUB foo\r\n', 'processPub Parse Error'],
      ['PUB a b c 1\r\n', 'processPub Parse Error'],
      ['PUB foo x\r\n', 'processPub Bad or Missing Size'],
      ['PUB foo -1\r\n', 'processPub Bad or Missing Size'],
      ['PUB foo 1234567890\r\n', 'processPub Bad or Missing Size'], // parseSize: at most 9 digits
      ['HPUB foo 1\r\n', 'processHeaderPub Parse Error'],
      ['HPUB foo x 5\r\n', 'processHeaderPub Bad or Missing Header Size'],
      ['HPUB foo 5 x\r\n', 'processHeaderPub Bad or Missing Total Size'],
      ['HPUB foo 6 5\r\n', 'processHeaderPub Header Size larger then TotalSize'],
      ['SUB foo\r\n', 'processSub Parse Error'],
      ['SUB a b c d\r\n', 'processSub Parse Error'],
      ['UNSUB 1 2 3\r\n', 'processUnsub Parse Error'],
      ['INFO {nope\r\n', 'INFO from the client is not JSON'],
      ["-ERR 'oops'\r\n", 'Client Error'],
    ];
    for (const [bad, detail] of silent) {
      const ev = run(bad);
      expect(ev, bad).toEqual([{ op: 'error', text: '', detail: expect.stringContaining(detail) }]);
    }
  });

  it('HPUB before headers were negotiated: ErrMsgHeadersNotSupported, closed without an -ERR', () => {
    expect(run('HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n', { headers: false })).toEqual([{ op: 'error', text: '', detail: 'message headers not supported' }]);
  });

  it("an op before CONNECT while authentication is required: authViolation, -ERR 'Authorization Violation'", () => {
    expect(errorOf(run('PING\r\n', { requireConnect: true }))).toBe(ERR_AUTH_VIOLATION);
    expect(run('CONNECT {}\r\nPING\r\n', { requireConnect: true })).toEqual([{ op: 'connect', json: '{}' }, { op: 'ping' }]);
  });

  it('reports one error, then ignores everything after it, in this chunk and the next', () => {
    const r = new Recorder();
    const p = new NatsParser(r, { maxPayload: 1024 });
    p.parse(Buffer.from('PING\r\nBAD\r\nPING\r\n'));
    p.parse(Buffer.from('PING\r\n'));
    expect(r.events.map((e) => e.op)).toEqual(['ping', 'error']);
  });

  it('stop() from inside a callback ends the chunk there (the session closed the connection)', () => {
    const r = new Recorder();
    const p = new NatsParser(r, { maxPayload: 1024 });
    r.onConnect = () => p.stop();
    p.parse(Buffer.from('CONNECT {}\r\nPING\r\n'));
    expect(r.events).toEqual([]);
    expect(p.closed).toBe(true);
  });
});

// --- properties ----------------------------------------------------------------------

const token = fc.stringMatching(/^[a-zA-Z0-9_.*>-]{1,12}$/);
const payload = fc.uint8Array({ maxLength: 300 });

/** One valid client op as bytes. */
const op: fc.Arbitrary<Buffer> = fc.oneof(
  fc
    .record({ s: token, r: fc.option(token, { nil: undefined }), p: payload })
    .map(({ s, r, p }) => Buffer.concat([Buffer.from(`PUB ${s} ${r === undefined ? '' : `${r} `}${p.length}\r\n`), Buffer.from(p), Buffer.from('\r\n')])),
  fc.record({ s: token, k: fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,8}$/), v: fc.stringMatching(/^[ -~]{0,20}$/), p: payload }).map(({ s, k, v, p }) => {
    const h = Buffer.from(`NATS/1.0\r\n${k}: ${v}\r\n\r\n`);
    return Buffer.concat([Buffer.from(`HPUB ${s} ${h.length} ${h.length + p.length}\r\n`), h, Buffer.from(p), Buffer.from('\r\n')]);
  }),
  fc
    .record({ s: token, q: fc.option(token, { nil: undefined }), sid: fc.nat(99999) })
    .map(({ s, q, sid }) => Buffer.from(`SUB ${s} ${q === undefined ? '' : `${q} `}${sid}\r\n`)),
  fc
    .record({ sid: fc.nat(99999), max: fc.option(fc.nat(1000), { nil: undefined }) })
    .map(({ sid, max }) => Buffer.from(`UNSUB ${sid}${max === undefined ? '' : ` ${max}`}\r\n`)),
  fc.constantFrom('PING\r\n', 'PONG\r\n', 'ping\n', 'CONNECT {"verbose":false}\r\n', '+OK\r\n').map((s) => Buffer.from(s)),
);

describe('NATS parser: properties', () => {
  it('any split of a valid stream into chunks yields the same callbacks as the whole stream', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (ops, points) => {
        const whole = Buffer.concat(ops);
        const expected = run(whole);
        expect(expected.some((e) => e.op === 'error')).toBe(false);
        const chunks = cut(
          whole,
          points.map((p) => p % (whole.length + 1)),
        );
        expect(run(chunks)).toEqual(expected);
      }),
      { numRuns: 400 },
    );
  });

  it('byte-at-a-time parsing yields the same callbacks as the whole stream', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 6 }), (ops) => {
        const whole = Buffer.concat(ops);
        const bytes: Buffer[] = [];
        for (let i = 0; i < whole.length; i++) bytes.push(whole.subarray(i, i + 1));
        expect(run(bytes)).toEqual(run(whole));
      }),
      { numRuns: 100 },
    );
  });

  it('random garbage never throws out of the parser: it reports at most one error and stops', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 8 }), (chunks) => {
        let ev: NatsEvent[] = [];
        expect(() => {
          ev = run(
            chunks.map((c) => Buffer.from(c)),
            { maxPayload: 64 },
          );
        }).not.toThrow();
        const errors = ev.filter((e) => e.op === 'error');
        expect(errors.length).toBeLessThanOrEqual(1);
        if (errors.length === 1) expect(ev[ev.length - 1]).toBe(errors[0]);
      }),
      { numRuns: 500 },
    );
  });

  it('valid ops with garbage spliced in: never throws, and what came before the garbage is reported intact', () => {
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 1, maxLength: 6 }),
        fc.uint8Array({ minLength: 1, maxLength: 50 }),
        fc.array(op, { maxLength: 4 }),
        (before, junk, after) => {
          const prefix = run(Buffer.concat(before));
          const ev = run(Buffer.concat([...before, Buffer.from(junk), ...after]));
          expect(ev.slice(0, prefix.length)).toEqual(prefix);
        },
      ),
      { numRuns: 300 },
    );
  });
});
