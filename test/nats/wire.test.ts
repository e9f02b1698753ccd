/**
 * The NATS listener against what no official client sends, over raw sockets: each bad
 * input gets the -ERR nats-server sends (or, where it sends none, only the close), that
 * connection alone is closed, and the broker serves everyone else on. Then a fuzz suite
 * in the manner of test/transports/fuzz.test.ts: random and mutated NATS traffic from
 * hostile sockets while a healthy nats.js publisher streams to a nats.js and a hopbus
 * subscriber; at the end not one healthy message was lost or reordered.
 */
import net from 'node:net';
import fc from 'fast-check';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from '../../broker/index.js';
import { connectBroker, type Bus } from '../../client/index.js';
import { FakeClock } from '../../runtime/clock.js';
import { NatsParser } from '../../broker/nats/parser.js';
import { until } from '../kit/index.js';
import { RawNats } from './raw.js';
import { Recorder } from './recorder.js';

const MAX_PAYLOAD = 1024;
const raws: RawNats[] = [];

afterEach(() => {
  for (const r of raws.splice(0)) r.socket.destroy();
});

async function raw(b: StartedBroker, connectJson = '{"verbose":false,"pedantic":false,"headers":true}'): Promise<RawNats> {
  const r = await RawNats.dial(b.broker.natsPort!);
  raws.push(r);
  if (connectJson !== '') r.write(`CONNECT ${connectJson}\r\n`);
  return r;
}

/** The connection still works: a PING is answered. */
async function alive(r: RawNats): Promise<void> {
  const pongs = (r.text.match(/PONG\r\n/g) ?? []).length;
  r.write('PING\r\n');
  await until(() => (r.text.match(/PONG\r\n/g) ?? []).length > pongs || r.closed, 'a PONG');
  expect(r.closed).toBe(false);
}

describe('NATS listener: bad input closes only that connection', () => {
  let b: StartedBroker;
  let healthy: RawNats;

  beforeAll(async () => {
    b = await startBroker({ host: '127.0.0.1', port: 0, natsPort: 0, logLevel: 'silent', maxPayload: MAX_PAYLOAD });
  });
  afterAll(async () => {
    await b.close();
  });
  afterEach(async () => {
    // Every case leaves the broker serving: a fresh connection subscribes and receives.
    healthy = await raw(b);
    healthy.write('SUB ok 1\r\nPUB ok 2\r\nhi\r\nPING\r\n');
    await healthy.waitFor(/MSG ok 1 2\r\nhi\r\n/, 'the healthy delivery');
    healthy.socket.destroy();
  });

  const fatal: Array<[string, string, string]> = [
    ['garbage', 'FOO BAR\r\n', "-ERR 'Unknown Protocol Operation'"],
    ['MSG from a client', 'MSG a 1 2\r\nhi\r\n', "-ERR 'Unknown Protocol Operation'"],
    ['a payload longer than its byte count', 'PUB a 3\r\nabcdef\r\n', "-ERR 'Unknown Protocol Operation'"],
    ['a payload not followed by CRLF', 'PUB a 2\r\nhiXX', "-ERR 'Unknown Protocol Operation'"],
    ['an oversized control line without CRLF', `SUB ${'a'.repeat(5000)}`, "-ERR 'maximum control line exceeded'"],
    ['an oversized control line', `SUB ${'a'.repeat(5000)} 1\r\n`, "-ERR 'maximum control line exceeded'"],
    ['a payload over max_payload, refused on its control line', `PUB big ${MAX_PAYLOAD + 1}\r\n`, "-ERR 'Maximum Payload Violation'"],
    ['an HPUB total over max_payload', `HPUB big 12 ${MAX_PAYLOAD + 1}\r\n`, "-ERR 'Maximum Payload Violation'"],
  ];
  for (const [what, bytes, err] of fatal) {
    it(`${what}: ${err}, then close`, async () => {
      const r = await raw(b);
      r.write(bytes);
      await r.waitClosed(what);
      expect(r.lines).toContain(err);
    });
  }

  it('CONNECT with an unknown protocol, or no_responders without headers: the -ERR nats-server sends', async () => {
    const a = await raw(b, '{"protocol":2}');
    await a.waitClosed('protocol 2');
    expect(a.lines).toContain("-ERR 'invalid client protocol'");
    const c = await raw(b, '{"no_responders":true,"headers":false}');
    await c.waitClosed('no_responders without headers');
    expect(c.lines).toContain("-ERR 'no responders requires headers support'");
  });

  it('CONNECT that is not JSON, a PUB without a size, HPUB without headers: closed without an -ERR, as nats-server does', async () => {
    for (const bytes of ['CONNECT {nope\r\n', 'CONNECT {}\r\nPUB a\r\n', 'CONNECT {}\r\nHPUB a 12 14\r\nNATS/1.0\r\n\r\nhi\r\n']) {
      const r = await raw(b, '');
      r.write(bytes);
      await r.waitClosed(bytes);
      expect(r.lines.filter((l) => l.startsWith('-ERR'))).toEqual([]);
    }
  });

  it('an invalid SUB subject gets a non-fatal Invalid Subject; the connection serves on', async () => {
    const r = await raw(b);
    r.write('SUB a..b 1\r\n');
    await r.waitFor(/-ERR 'Invalid Subject'\r\n/, 'the -ERR');
    await alive(r);
  });

  it('verbose: +OK after CONNECT, SUB, PUB and UNSUB; pedantic: Invalid Publish Subject, not fatal', async () => {
    const r = await raw(b, '{"verbose":true,"pedantic":true}');
    r.write('SUB v 1\r\nPUB v 1\r\nx\r\nUNSUB 1\r\n');
    await until(() => (r.text.match(/\+OK\r\n/g) ?? []).length === 4, 'four +OK');
    r.write('PUB bad..subject 1\r\nx\r\n');
    await r.waitFor(/-ERR 'Invalid Publish Subject'\r\n/, 'the pedantic -ERR');
    await alive(r);
  });

  it('op names in any case, a bare LF line ending, and a message split across many writes', async () => {
    const r = await raw(b);
    r.write('sub split 7\n');
    const msg = 'PuB split 10\r\n0123456789\r\nping\r\n';
    for (const ch of msg) r.write(ch);
    await r.waitFor(/MSG split 7 10\r\n0123456789\r\n/, 'the message');
  });

  it('an op before CONNECT is served (no authentication is configured), like nats-server', async () => {
    const r = await raw(b, '');
    r.write('SUB pre 1\r\nPUB pre 1\r\nz\r\n');
    await r.waitFor(/MSG pre 1 1\r\nz\r\n/, 'the message');
  });
});

describe('NATS listener: maxConnections', () => {
  it('a connection over maxConnections gets -ERR maximum connections exceeded in place of INFO', async () => {
    const b = await startBroker({ host: '127.0.0.1', port: 0, natsPort: 0, logLevel: 'silent', maxConnections: 1 });
    try {
      const first = await raw(b);
      await alive(first);
      const socket = net.connect({ host: '127.0.0.1', port: b.broker.natsPort! });
      let text = '';
      let closed = false;
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      socket.on('error', () => {});
      socket.on('close', () => (closed = true));
      await until(() => closed, 'the refused connection closed');
      expect(text).toBe("-ERR 'maximum connections exceeded'\r\n");
      await alive(first);
    } finally {
      await b.close();
    }
  });
});

describe('NATS listener: liveness and slow consumers', () => {
  it('a client that answers no PING is closed with Stale Connection; a NATS PING is answered at once', async () => {
    const clock = new FakeClock();
    const b = await startBroker({ host: '127.0.0.1', port: 0, natsPort: 0, logLevel: 'silent', pingIntervalMs: 1000, maxPingsOut: 2 }, undefined, clock);
    try {
      const r = await raw(b);
      await alive(r);
      clock.advance(1000);
      await r.waitFor(/PING\r\n/, "the broker's PING");
      clock.advance(1000);
      clock.advance(1000);
      await r.waitClosed('stale');
      expect(r.lines).toContain("-ERR 'Stale Connection'");
      expect(r.lines.filter((l) => l === 'PING').length).toBe(2);
    } finally {
      await b.close();
    }
  });

  it('a client that sends no CONNECT within the handshake timeout is closed', async () => {
    const clock = new FakeClock();
    const b = await startBroker({ host: '127.0.0.1', port: 0, natsPort: 0, logLevel: 'silent', handshakeTimeoutMs: 500 }, undefined, clock);
    try {
      const r = await raw(b, '');
      await alive(r);
      clock.advance(500);
      await r.waitClosed('no CONNECT');
      expect(r.lines).toContain("-ERR 'Authentication Timeout'");
    } finally {
      await b.close();
    }
  });

  it('a NATS subscriber that stops reading is a slow consumer past maxPending: closed, counted, the publisher unharmed', async () => {
    const b = await startBroker({ host: '127.0.0.1', port: 0, natsPort: 0, logLevel: 'silent', maxPending: 256 * 1024 });
    try {
      const slow = await raw(b);
      slow.write('SUB flood 1\r\nPING\r\n');
      await slow.waitFor(/PONG\r\n/, 'the SUB applied');
      slow.socket.pause();
      const pub = await connect({ servers: `127.0.0.1:${b.broker.natsPort}`, reconnect: false });
      const chunk = new Uint8Array(1000);
      const session = [...b.broker.natsSessions][0]!;
      for (let i = 0; i < 5000 && session.open; i++) {
        pub.publish('flood', chunk);
        if (i % 100 === 99) await pub.flush();
      }
      await until(() => !session.open, 'the slow consumer closed');
      expect(b.broker.counters.slowConsumers).toBe(1);
      await pub.flush();
      expect(pub.isClosed()).toBe(false);
      await pub.close();
    } finally {
      await b.close();
    }
  });

  it('drop-newest as the broker default: a stuck NATS subscriber loses messages, counted, and stays connected', async () => {
    const b = await startBroker({
      host: '127.0.0.1',
      port: 0,
      natsPort: 0,
      logLevel: 'silent',
      maxPending: 64 * 1024,
      highWaterBytes: 16 * 1024,
      slowConsumerPolicy: 'drop-newest',
    });
    try {
      const slow = await raw(b);
      slow.write('SUB flood 1\r\nPING\r\n');
      await slow.waitFor(/PONG\r\n/, 'the SUB applied');
      slow.socket.pause();
      const pub = await connect({ servers: `127.0.0.1:${b.broker.natsPort}`, reconnect: false });
      const chunk = new Uint8Array(8000);
      for (let i = 0; i < 20_000 && b.broker.counters.droppedNewest === 0; i++) {
        pub.publish('flood', chunk);
        if (i % 100 === 99) await pub.flush();
      }
      await until(() => b.broker.counters.droppedNewest > 0, 'drops counted');
      const session = [...b.broker.natsSessions].find((s) => s.subs.size === 1)!;
      expect(session.open).toBe(true);
      expect(session.out.stats.droppedNewest).toBeGreaterThan(0);
      await pub.close();
    } finally {
      await b.close();
    }
  });
});

// --- fuzz ------------------------------------------------------------------------------

/**
 * What the broker must do with `bytes` after a valid CONNECT: the -ERR text it stops
 * with ('' for a close without one), or null when it serves them all; and whether the
 * stream ends on a complete PING (so a PONG is owed). The parser decides (its own tests
 * pin it to nats-server's); the session adds one fatal case: a header block that is not
 * NATS/1.0.
 */
function predict(bytes: Buffer): { fatal: string | null; pong: boolean } {
  const rec = new Recorder();
  const p = new NatsParser(rec, { maxPayload: MAX_PAYLOAD });
  p.headers = true;
  p.parse(bytes);
  for (const e of rec.events) {
    if (e.op === 'error') return { fatal: e.text, pong: false };
    if (e.op === 'pub' && e.headers !== '' && !e.headers.startsWith('NATS/1.0')) return { fatal: 'Unknown Protocol Operation', pong: false };
  }
  return { fatal: null, pong: rec.events.at(-1)?.op === 'ping' };
}

const token = fc.stringMatching(/^[a-z]{1,6}$/);
const subject = fc.array(token, { minLength: 1, maxLength: 3 }).map((t) => t.join('.'));
const payload = fc.string({ maxLength: 40 });
const op = fc.oneof(
  fc.tuple(subject, payload).map(([s, p]) => `PUB fz.${s} ${Buffer.byteLength(p)}\r\n${p}\r\n`),
  fc.tuple(subject, payload).map(([s, p]) => {
    const h = 'NATS/1.0\r\nK: v\r\n\r\n';
    return `HPUB fz.${s} ${h.length} ${h.length + Buffer.byteLength(p)}\r\n${h}${p}\r\n`;
  }),
  fc.tuple(subject, fc.integer({ min: 1, max: 99 })).map(([s, sid]) => `SUB fz.${s} ${sid}\r\n`),
  fc.tuple(subject, token, fc.integer({ min: 1, max: 99 })).map(([s, q, sid]) => `SUB fz.${s} ${q} ${sid}\r\n`),
  fc.tuple(fc.integer({ min: 1, max: 99 }), fc.integer({ min: 0, max: 5 })).map(([sid, max]) => `UNSUB ${sid}${max ? ` ${max}` : ''}\r\n`),
  fc.constant('PING\r\n'),
  fc.constant('PONG\r\n'),
);
/** A stream of valid ops, then one mutation: a byte flipped, dropped or inserted, or the stream cut. */
const hostile = fc
  .tuple(fc.array(op, { minLength: 1, maxLength: 12 }), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'drop', 'insert', 'cut', 'none'))
  .map(([ops, at, byte, how]) => {
    const b = Buffer.from(ops.join(''), 'utf8');
    const i = at % b.length;
    if (how === 'flip') b[i] = byte;
    if (how === 'drop') return Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
    if (how === 'insert') return Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]);
    if (how === 'cut') return b.subarray(0, i);
    return b;
  });

describe('NATS listener: fuzz', () => {
  let b: StartedBroker;
  let pub: NatsConnection;
  let sub: NatsConnection;
  let hb: Bus;
  let pump: NodeJS.Timeout | null = null;
  let published = 0;
  const atNats: number[] = [];
  const atHopbus: number[] = [];

  beforeAll(async () => {
    b = await startBroker({ host: '127.0.0.1', port: 0, natsPort: 0, logLevel: 'silent', maxPayload: MAX_PAYLOAD });
    const servers = `127.0.0.1:${b.broker.natsPort}`;
    sub = await connect({ servers, reconnect: false, name: 'healthy-sub' });
    pub = await connect({ servers, reconnect: false, name: 'healthy-pub' });
    hb = await connectBroker(b.url, { name: 'healthy-hopbus', reconnect: false });
    sub.subscribe('health', { callback: (_e, m) => void atNats.push(Number(m.string())) });
    hb.subscribe('health', (m) => void atHopbus.push(Number(m.string())));
    await sub.flush();
    await hb.flush();
    pump = setInterval(() => {
      for (let k = 0; k < 5; k++) pub.publish('health', String(published++));
    }, 2);
  });

  afterAll(async () => {
    if (pump) clearInterval(pump);
    await Promise.allSettled([pub?.close(), sub?.close(), hb?.close()]);
    await b?.close();
  });

  it('mutated traffic: the -ERR the model predicts, then close; or everything served, the last PING answered', async () => {
    await fc.assert(
      fc.asyncProperty(hostile, async (bytes) => {
        const sent = Buffer.concat([bytes, Buffer.from('\r\nPING\r\n')]);
        const want = predict(sent);
        const r = await raw(b, '{"headers":true}');
        r.write(sent);
        if (want.fatal === null && want.pong) await r.waitFor(/PONG\r\n$/, 'the last PONG');
        // Half-close: the broker closes its side too, whatever it was waiting for.
        r.socket.end();
        await r.waitClosed('the end of the stream');
        const errs = r.lines.filter((l) => l.startsWith('-ERR'));
        const fatalErrs = errs.filter((l) => l !== "-ERR 'Invalid Subject'");
        if (want.fatal === null || want.fatal === '') expect(fatalErrs).toEqual([]);
        else expect(fatalErrs).toEqual([`-ERR '${want.fatal}'`]);
        r.socket.destroy();
        raws.splice(raws.indexOf(r), 1);
      }),
      { numRuns: 150 },
    );
    await until(() => b.broker.natsSessions.size === 2, 'every hostile connection released');
  }, 60_000);

  it('random bytes: closed or served, never a crash', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 300 }), async (bytes) => {
        const socket = net.connect({ host: '127.0.0.1', port: b.broker.natsPort! });
        socket.on('error', () => {});
        let closed = false;
        socket.on('close', () => (closed = true));
        socket.on('data', () => {});
        await new Promise<void>((resolve) => socket.once('connect', resolve));
        socket.end(Buffer.from(bytes));
        await until(() => closed, 'the broker closes it');
      }),
      { numRuns: 100 },
    );
    await until(() => b.broker.natsSessions.size === 2, 'every hostile connection released');
  }, 60_000);

  it('the healthy stream lost nothing and kept its order, at the NATS and at the hopbus subscriber', async () => {
    const target = published;
    await until(() => atNats.length >= target && atHopbus.length >= target, 'the stream caught up');
    expect(atNats.slice(0, target)).toEqual(Array.from({ length: target }, (_, i) => i));
    expect(atHopbus.slice(0, target)).toEqual(Array.from({ length: target }, (_, i) => i));
    expect(target).toBeGreaterThan(100);
  });
});
