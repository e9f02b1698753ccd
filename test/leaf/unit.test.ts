/**
 * The leafnode pieces on their own: the hub-side parser over any chunking, the
 * import/export bounds, the `leafnodes` option's validation, and the uplink's URL
 * rotation and back-off on a fake clock (no sockets, no time).
 */
import { describe, expect, it } from 'vitest';
import { Broker } from '../../broker/broker.js';
import { ConfigError, resolveOptions } from '../../broker/config.js';
import { Bounds, covers } from '../../broker/leaf/bounds.js';
import { Leafnodes } from '../../broker/leaf/index.js';
import { LeafParser, type LeafHandler } from '../../broker/leaf/parser.js';
import { subLine } from '../../broker/leaf/connection.js';
import { FakeClock } from '../../runtime/clock.js';
import { randomBytes } from 'node:crypto';
import { encodeUserSeed, parseUserSeed, signNonce } from '../../broker/leaf/nkey.js';
import { parseUserNkey, verifyNonce } from '../../broker/auth/nkey.js';

function recorder(): { h: LeafHandler; calls: string[] } {
  const calls: string[] = [];
  const h: LeafHandler = {
    onInfo: (j) => void calls.push(`INFO ${j}`),
    onPing: () => void calls.push('PING'),
    onPong: () => void calls.push('PONG'),
    onErr: (t) => void calls.push(`ERR ${t}`),
    onSub: (s, q, w) => void calls.push(`SUB ${s}|${q}|${w}`),
    onUnsub: (s, q) => void calls.push(`UNSUB ${s}|${q}`),
    onMsg: (buf, so, sl, ro, rl, queues, bo, hl, size) =>
      void calls.push(
        `MSG ${buf.toString('latin1', so, so + sl)}|${buf.toString('latin1', ro, ro + rl)}|${queues?.join(',') ?? '-'}|${buf.toString('latin1', bo, bo + hl)}|${buf.toString('latin1', bo + hl, bo + size)}`,
      ),
    onError: (d) => void calls.push(`FAIL ${d}`),
  };
  return { h, calls };
}

const STREAM =
  'INFO {"server_id":"X","client_id":3,"leafnode_urls":["127.0.0.1:7422"]}\r\n' +
  'PING\r\nPONG\r\n+OK\r\n' +
  'LS+ md.>\r\nLS+ work.jobs workers 3\r\nLS- md.>\r\nls- work.jobs workers\r\n' +
  'LMSG md.EURUSD 5\r\nhello\r\n' +
  'LMSG svc.echo _INBOX.1 2\r\nhi\r\n' +
  'LMSG work.jobs | workers other 3\r\njob\r\n' +
  'LMSG work.jobs + _INBOX.2 workers 0\r\n\r\n' +
  'HMSG md.x 12 14\r\nNATS/1.0\r\n\r\nab\r\n' +
  'HMSG md.x + r.1 q1 12 12\r\nNATS/1.0\r\n\r\n\r\n' +
  "-ERR 'Loop detected'\r\n";

const EXPECTED = [
  'INFO {"server_id":"X","client_id":3,"leafnode_urls":["127.0.0.1:7422"]}',
  'PING',
  'PONG',
  'SUB md.>||1',
  'SUB work.jobs|workers|3',
  'UNSUB md.>|',
  'UNSUB work.jobs|workers',
  'MSG md.EURUSD||-||hello',
  'MSG svc.echo|_INBOX.1|-||hi',
  'MSG work.jobs||workers,other||job',
  'MSG work.jobs|_INBOX.2|workers||',
  'MSG md.x||-|NATS/1.0\r\n\r\n|ab',
  'MSG md.x|r.1|q1|NATS/1.0\r\n\r\n|',
  'ERR Loop detected',
];

describe('LeafParser: the hub side of the leafnode protocol', () => {
  it('reads every op the same whether the stream comes whole, byte by byte, or in any two pieces', () => {
    const whole = recorder();
    new LeafParser(whole.h, 1 << 20).parse(Buffer.from(STREAM, 'latin1'));
    expect(whole.calls).toEqual(EXPECTED);
    const bytes = recorder();
    const p = new LeafParser(bytes.h, 1 << 20);
    for (const b of Buffer.from(STREAM, 'latin1')) p.parse(Buffer.from([b]));
    expect(bytes.calls).toEqual(EXPECTED);
    for (let cut = 1; cut < STREAM.length; cut += 7) {
      const two = recorder();
      const q = new LeafParser(two.h, 1 << 20);
      q.parse(Buffer.from(STREAM.slice(0, cut), 'latin1'));
      q.parse(Buffer.from(STREAM.slice(cut), 'latin1'));
      expect(two.calls).toEqual(EXPECTED);
    }
  });

  it('stops at the first violation and says why: a wrong byte count, a bad reply indicator, an unknown op, an oversized body', () => {
    for (const [input, why] of [
      ['LMSG a 3\r\nabcd\r\n', /CR LF/],
      ['LMSG a x q 3\r\nabc\r\n', /reply indicator/],
      ['RMSG $G a 1\r\nx\r\n', /unknown protocol operation "RMSG"/],
      ['LMSG a 100\r\n', /over the limit of 10/],
      ['LS+ a q\r\n', /LS\+ needs/],
    ] as const) {
      const r = recorder();
      const p = new LeafParser(r.h, 10);
      p.parse(Buffer.from(input + 'PING\r\n', 'latin1'));
      expect(r.calls).toHaveLength(1);
      expect(r.calls[0]).toMatch(why);
      expect(p.closed).toBe(true);
    }
  });
});

describe('import/export bounds', () => {
  it('covers: wildcards on both sides, $ subjects only under a literal first token', () => {
    expect(covers('>', 'md.EURUSD.bid')).toBe(true);
    expect(covers('md.>', 'md.*.bid')).toBe(true);
    expect(covers('md.*.bid', 'md.>')).toBe(false);
    expect(covers('md.*', 'md.EURUSD')).toBe(true);
    expect(covers('md.*', 'md.EURUSD.bid')).toBe(false);
    expect(covers('>', '$SYS.report.1')).toBe(false);
    expect(covers('*.>', '$SYS.report.1')).toBe(false);
    expect(covers('$SYS.>', '$SYS.report.1')).toBe(true);
  });

  it('clip: a pattern inside a bound crosses whole, a wider one as the bounds inside it, an overlapping one not at all', () => {
    const b = new Bounds(['md.EURUSD.>', 'orders.>']);
    expect(b.clip('orders.new')).toEqual(['orders.new']);
    expect(b.clip('md.>')).toEqual(['md.EURUSD.>']);
    expect(b.clip('>')).toEqual(['md.EURUSD.>', 'orders.>']);
    expect(b.clip('*.EURUSD.bid')).toEqual([]);
    expect(new Bounds(undefined).clip('$SYS.>')).toEqual([]);
    expect(new Bounds(undefined).allows('md.x')).toBe(true);
    expect(new Bounds(undefined).allows('$SYS.x')).toBe(false);
  });

  it('LS+ lines: plain keys without a weight, queue keys with theirs, LS- at zero', () => {
    expect(subLine('md.>', 2)).toBe('LS+ md.>\r\n');
    expect(subLine('work.jobs workers', 3)).toBe('LS+ work.jobs workers 3\r\n');
    expect(subLine('work.jobs workers', 0)).toBe('LS- work.jobs workers\r\n');
  });
});

describe('nkey seeds', () => {
  it("a seed made here gives a public nkey that the broker's own nkey reader takes, and signatures it verifies", () => {
    const seed = encodeUserSeed(randomBytes(32));
    expect(seed).toMatch(/^SU[A-Z2-7]{56}$/);
    const s = parseUserSeed(seed)!;
    expect(s.publicKey).toMatch(/^U[A-Z2-7]{55}$/);
    const key = parseUserNkey(s.publicKey)!;
    expect(verifyNonce(key, 'nonce-1', signNonce(s, 'nonce-1'))).toBe(true);
    expect(verifyNonce(key, 'nonce-2', signNonce(s, 'nonce-1'))).toBe(false);
    expect(parseUserSeed('SUAAAA')).toBeNull();
    expect(parseUserSeed(s.publicKey)).toBeNull();
  });
});

describe('the leafnodes option', () => {
  const bad = (leafnodes: unknown) => () => resolveOptions({ leafnodes } as never);
  it('refuses unknown keys, bad URLs, bad patterns, bad tls and credentials options, and what is not supported yet, naming each', () => {
    expect(bad({ remotes: [{ urls: ['nats://h:7422'], colour: 'red' }] })).toThrow(/unknown key "colour"/);
    expect(bad({ remotes: [], extra: 1 })).toThrow(/unknown key "extra"/);
    expect(bad({ remotes: [] })).toThrow(/non-empty array/);
    expect(bad({ remotes: [{ urls: ['h:7422'] }] })).toThrow(ConfigError);
    expect(bad({ remotes: [{ urls: ['nats://h'] }] })).toThrow(/needs a host and a port/);
    expect(bad({ remotes: [{ urls: ['ws://h:7422'] }] })).toThrow(/not supported yet/);
    expect(bad({ remotes: [{ urls: ['nats://h:7422'], tls: { verify: true } }] })).toThrow(/tls" has an unknown key "verify"/);
    expect(bad({ remotes: [{ urls: ['nats://h:7422'], tls: { cert: '/c.pem' } }] })).toThrow(/"cert" and "key" go together/);
    expect(bad({ remotes: [{ urls: ['nats://h:7422'], tls: { handshakeFirst: 'yes' } }] })).toThrow(/handshakeFirst" must be true or false/);
    expect(bad({ remotes: [{ urls: ['nats://h:7422'], tls: { ca: '/nonexistent/ca.pem' } }] })).toThrow(
      /"leafnodes\.remotes\[0\]\.tls\.ca": cannot read \/nonexistent\/ca\.pem: ENOENT/,
    );
    expect(bad({ remotes: [{ urls: ['nats://h:7422'], nkey: 'UABC' }] })).toThrow(/user nkey seed/);
    expect(bad({ remotes: [{ urls: ['nats://h:7422'], credentials: '/x.creds' }] })).toThrow(
      /"leafnodes\.remotes\[0\]\.credentials": cannot read \/x\.creds: ENOENT/,
    );
    expect(bad({ remotes: [{ urls: ['nats://h:7422'], credentials: 7 }] })).toThrow(/path of a NATS \.creds file/);
    expect(bad({ remotes: [{ urls: ['nats://h:7422'], export: ['md.>.x'] }] })).toThrow(/valid subject patterns/);
    expect(bad({ remotes: [{ urls: ['nats://h:7422'], user: 'u' }] })).toThrow(/go together/);
    expect(bad({ remotes: [{ urls: ['nats://h:7422'], policy: 'block' }] })).toThrow(/drop-oldest, drop-newest, disconnect/);
    expect(resolveOptions({ leafnodes: { remotes: [{ urls: ['nats://h:7422'], import: ['orders.>'] }] } }).leafnodes!.remotes[0]!.import).toEqual(['orders.>']);
  });
});

describe('uplink dialling on a fake clock', () => {
  it('rotates over the URLs, waiting reconnectDelayMs after a failure, doubling up to maxReconnectDelayMs', async () => {
    const clock = new FakeClock();
    const broker = new Broker({ port: 0, logLevel: 'silent' }, undefined, clock);
    const dialled: number[] = [];
    const leaf = new Leafnodes(
      broker,
      { remotes: [{ urls: ['nats://127.0.0.1:1001', 'nats://127.0.0.1:1002'] }], reconnectDelayMs: 100, maxReconnectDelayMs: 800 },
      (_host, port) => {
        dialled.push(port);
        return Promise.reject(new Error('refused'));
      },
    );
    const up = leaf.uplinks[0]!;
    leaf.start();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      await Promise.resolve(); // the dial's rejection
      await Promise.resolve();
      expect(up.state).toBe('waiting');
      delays.push(up.lastDelayMs);
      clock.advance(up.lastDelayMs - 1);
      expect(dialled).toHaveLength(i + 1); // not a millisecond early
      clock.advance(1);
    }
    expect(delays).toEqual([100, 200, 400, 800, 800, 800]);
    expect(dialled.slice(0, 6)).toEqual([1001, 1002, 1001, 1002, 1001, 1002]);
    expect(up.lastError).toMatch(/cannot connect to nats:\/\/127.0.0.1:1002: refused/);
    await leaf.close();
    expect(clock.pending).toBe(0);
    await broker.close();
  });
});
