/**
 * The server -> client writers, read back by the official nats.js client's own parser
 * (@nats-io/nats-core, which @nats-io/transport-node runs): what it decodes is what a
 * NATS client will see. Sizes are checked to be exact, and MsgTemplate to write for
 * each sid the same bytes as a one-shot writeMsg.
 */
import fc from 'fast-check';
import { Kind, Parser, type ParserEvent } from '@nats-io/nats-core/internal';
import { describe, expect, it } from 'vitest';
import {
  MsgTemplate,
  OK_LINE,
  PING_LINE,
  PONG_LINE,
  digits,
  errLine,
  infoLine,
  msgSize,
  noRespondersSize,
  sidBytes,
  utf8Length,
  writeMsg,
  writeNoResponders,
  writeOk,
  writePing,
  writePong,
  writeString,
  writeUint,
  type NatsInfo,
} from '../../broker/nats/encode.js';
import { ERR_MAX_PAYLOAD } from '../../broker/nats/errors.js';
import { parseNatsHeaders } from '../../broker/nats/headers.js';
import { run } from './recorder.js';

interface Seen {
  kind: number;
  subject?: string;
  reply?: string;
  sid?: number;
  hdr?: number;
  size?: number;
  data?: string;
}

/** Runs bytes through nats.js's client parser, in chunks when given several. */
function natsjs(...chunks: Buffer[]): Seen[] {
  const out: Seen[] = [];
  const p = new Parser({
    push(e: ParserEvent) {
      const s: Seen = { kind: e.kind };
      if (e.msg) {
        s.subject = Buffer.from(e.msg.subject).toString('utf8');
        if (e.msg.reply) s.reply = Buffer.from(e.msg.reply).toString('utf8');
        s.sid = e.msg.sid;
        s.hdr = e.msg.hdr;
        s.size = e.msg.size;
      }
      if (e.data) s.data = Buffer.from(e.data).toString('latin1');
      out.push(s);
    },
  });
  for (const c of chunks) p.parse(c);
  return out;
}

const INFO: NatsInfo = {
  server_id: 'NHOPBUS',
  server_name: 'hopbus',
  version: '0.1.0',
  proto: 1,
  headers: true,
  max_payload: 1048576,
  client_id: 7,
  host: '127.0.0.1',
  port: 4222,
};

describe('NATS encoder: control lines', () => {
  it('INFO is one line of JSON with only what is implemented (no jetstream)', () => {
    const ev = natsjs(infoLine(INFO));
    expect(ev).toHaveLength(1);
    expect(ev[0]!.kind).toBe(Kind.INFO);
    const info = JSON.parse(ev[0]!.data!) as Record<string, unknown>;
    expect(info).toEqual(INFO);
    expect(info).not.toHaveProperty('jetstream');
  });

  it('PING, PONG, +OK and -ERR as nats.js reads them', () => {
    const buf = Buffer.alloc(64);
    let n = writePing(buf, 0);
    n += writePong(buf, n);
    n += writeOk(buf, n);
    expect(buf.subarray(0, n)).toEqual(Buffer.concat([PING_LINE, PONG_LINE, OK_LINE]));
    expect(natsjs(buf.subarray(0, n), errLine(ERR_MAX_PAYLOAD)).map((e) => [e.kind, e.data])).toEqual([
      [Kind.PING, undefined],
      [Kind.PONG, undefined],
      [Kind.OK, undefined],
      [Kind.ERR, `'${ERR_MAX_PAYLOAD}'`],
    ]);
  });

  it('PING and PONG are also what the hopbus NATS parser reads from a client', () => {
    expect(run(Buffer.concat([PING_LINE, PONG_LINE]))).toEqual([{ op: 'ping' }, { op: 'pong' }]);
  });

  it('writes numbers and strings without toString or Buffer#write for ASCII, UTF-8 beyond it', () => {
    const b = Buffer.alloc(32);
    for (const n of [0, 7, 10, 99, 100, 123456789, 2 ** 32]) {
      expect(b.toString('latin1', 0, writeUint(b, 0, n))).toBe(String(n));
      expect(digits(n)).toBe(String(n).length);
    }
    for (const s of ['', 'foo.bar', 'prix.€', 'ü.ß.>']) {
      expect(utf8Length(s)).toBe(Buffer.byteLength(s));
      expect(b.toString('utf8', 0, writeString(b, 0, s))).toBe(s);
    }
  });
});

describe('NATS encoder: MSG and HMSG', () => {
  it('MSG with and without reply: nats.js reads subject, sid, reply, payload; the size is exact', () => {
    const payload = Buffer.from('hello');
    const buf = Buffer.alloc(256);
    const n1 = writeMsg(buf, 0, 'foo.bar', sidBytes(12), '', null, 0, 0, payload, 0, 5);
    const n2 = writeMsg(buf, n1, 'foo', sidBytes(3), '_INBOX.x', null, 0, 0, payload, 1, 3);
    expect(n1).toBe(msgSize(7, 2, 0, 0, 5));
    expect(n2).toBe(msgSize(3, 1, 8, 0, 3));
    expect(buf.toString('latin1', 0, n1)).toBe('MSG foo.bar 12 5\r\nhello\r\n');
    expect(natsjs(buf.subarray(0, n1 + n2))).toEqual([
      { kind: Kind.MSG, subject: 'foo.bar', sid: 12, hdr: -1, size: 5, data: 'hello' },
      { kind: Kind.MSG, subject: 'foo', reply: '_INBOX.x', sid: 3, hdr: -1, size: 3, data: 'ell' },
    ]);
  });

  it('HMSG: header size and total size as nats.js expects, headers first in the data', () => {
    const hdr = Buffer.from('NATS/1.0\r\nA: 1\r\n\r\n');
    const body = Buffer.from('xyz');
    const buf = Buffer.alloc(256);
    const n = writeMsg(buf, 0, 'q', sidBytes(1), 'r', hdr, 0, hdr.length, body, 0, 3);
    expect(n).toBe(msgSize(1, 1, 1, hdr.length, 3));
    expect(natsjs(buf.subarray(0, n))).toEqual([
      { kind: Kind.MSG, subject: 'q', reply: 'r', sid: 1, hdr: hdr.length, size: hdr.length + 3, data: `${hdr.toString()}xyz` },
    ]);
  });

  it('MsgTemplate writes per sid exactly what writeMsg writes (formatted once, copied per subscriber)', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z.]{1,20}$/),
        fc.option(fc.stringMatching(/^[A-Z_.0-9]{1,20}$/), { nil: '' }),
        fc.boolean(),
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.nat(1_000_000), { minLength: 1, maxLength: 5 }),
        (subject, reply, withHeaders, bytes, sids) => {
          const payload = Buffer.from(bytes);
          const hdr = withHeaders ? Buffer.from('NATS/1.0\r\nK: v\r\n\r\n') : null;
          const hl = hdr === null ? 0 : hdr.length;
          const t = new MsgTemplate();
          t.prepare(subject, reply, hdr, 0, hl, payload, 0, payload.length);
          for (const s of sids) {
            const sid = sidBytes(s);
            const a = Buffer.alloc(t.size(sid.length));
            const b = Buffer.alloc(msgSize(subject.length, sid.length, reply.length, hl, payload.length));
            expect(t.write(a, 0, sid)).toBe(a.length);
            expect(writeMsg(b, 0, subject, sid, reply, hdr, 0, hl, payload, 0, payload.length)).toBe(b.length);
            expect(a).toEqual(b);
            const ev = natsjs(a);
            expect(ev).toHaveLength(1);
            expect(ev[0]!.subject).toBe(subject);
            expect(ev[0]!.sid).toBe(s);
            expect(ev[0]!.reply).toBe(reply === '' ? undefined : reply);
            expect(ev[0]!.data ?? '').toBe((hdr === null ? '' : hdr.toString('latin1')) + payload.toString('latin1'));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('MsgTemplate copes with a subject and reply longer than its first buffers', () => {
    const subject = 's'.repeat(2000);
    const reply = 'r'.repeat(1500);
    const t = new MsgTemplate();
    t.prepare(subject, reply, null, 0, 0, Buffer.from('p'), 0, 1);
    const sid = sidBytes(5);
    const out = Buffer.alloc(t.size(1));
    t.write(out, 0, sid);
    expect(natsjs(out)).toEqual([{ kind: Kind.MSG, subject, reply, sid: 5, hdr: -1, size: 1, data: 'p' }]);
  });

  it('a PUB the hopbus parser read comes out as the same MSG to nats.js, split anywhere', () => {
    const r = run('PUB prices.eur rep.1 11\r\nhello world\r\n');
    expect(r[0]!.op).toBe('pub');
    const e = r[0] as { subject: string; reply: string; payload: string };
    const payload = Buffer.from(e.payload);
    const out = Buffer.alloc(msgSize(e.subject.length, 1, e.reply.length, 0, payload.length));
    writeMsg(out, 0, e.subject, sidBytes(9), e.reply, null, 0, 0, payload, 0, payload.length);
    const want = [{ kind: Kind.MSG, subject: 'prices.eur', reply: 'rep.1', sid: 9, hdr: -1, size: 11, data: 'hello world' }];
    for (let i = 0; i <= out.length; i++) expect(natsjs(out.subarray(0, i), out.subarray(i))).toEqual(want);
  });

  it("the no-responders answer is nats-server's HMSG 503 with Nats-Subject, and nats.js reads status 503", () => {
    const buf = Buffer.alloc(256);
    const n = writeNoResponders(buf, 0, '_INBOX.abc.1', sidBytes(4), 'svc.echo');
    expect(n).toBe(noRespondersSize(12, 1, 8));
    expect(buf.toString('latin1', 0, n)).toBe('HMSG _INBOX.abc.1 4 40 40\r\nNATS/1.0 503\r\nNats-Subject: svc.echo\r\n\r\n\r\n');
    const ev = natsjs(buf.subarray(0, n));
    expect(ev[0]).toMatchObject({ kind: Kind.MSG, subject: '_INBOX.abc.1', sid: 4, hdr: 40, size: 40 });
    expect(parseNatsHeaders(Buffer.from(ev[0]!.data!, 'latin1'), 0, 40)).toEqual({ ':status': '503', 'Nats-Subject': 'svc.echo' });
  });
});
