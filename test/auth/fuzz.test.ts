/**
 * A fuzz pass on the CONNECT/auth path of a real broker with users and tokens: random
 * credential fields (strings, wrong types, huge, unicode, the right secret among them)
 * over raw hopbus and NATS sockets. Each connection is either admitted (and then
 * answers a PING) for exactly the right credentials, or refused with AUTH, PROTOCOL or
 * FRAME_TOO_LARGE (a CONNECT over 4 KiB)
 * (NATS: `Authorization Violation`, `maximum control line exceeded` for a huge CONNECT, or
 * a close for CONNECT that is not JSON) and closed;
 * no secret appears in any answer; the broker serves a healthy client throughout.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_MS } from '../../broker/auth/backoff.js';
import { startBroker, type StartedBroker } from '../../broker/index.js';
import { connectBroker } from '../../client/index.js';
import { FakeClock } from '../../runtime/clock.js';
import { RawClient, bareFrame, connectFrame, portOf, until } from '../kit/index.js';
import { RawNats } from '../nats/raw.js';

const INFO = 0x02;
const PING = 0x30;
const PONG = 0x31;
const ERR = 0x41;
const PROTOCOL = 1;
const AUTH = 13;
/** A CONNECT over 4 KiB is refused at its length prefix, before it is read. */
const FRAME_TOO_LARGE = 3;

const secret = fc.oneof(fc.constant('wonderland'), fc.constant('tok-123'), fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }));
const value = fc.oneof(
  secret,
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 2 }),
  fc.string({ minLength: 2000, maxLength: 3000 }),
);
const creds = fc.record({ user: fc.oneof(fc.constant('alice'), value), pass: value, token: value }, { requiredKeys: [] });

function rightful(c: Record<string, unknown>): boolean {
  if (c.user !== undefined) return c.user === 'alice' && c.pass === 'wonderland';
  return c.token === 'tok-123';
}

const OPTS = {
  host: '127.0.0.1',
  port: 0,
  logLevel: 'silent',
  pingIntervalMs: 0,
  natsPort: 0,
  users: [{ user: 'alice', password: 'wonderland' }],
  tokens: ['tok-123'],
};

/** A broker on a FakeClock: each attempt starts past any back-off (that is tested elsewhere; here it would refuse the right credentials after a run of wrong ones). */
async function withBroker(run: (b: StartedBroker, clock: FakeClock) => Promise<void>): Promise<void> {
  const clock = new FakeClock(1000);
  const b = await startBroker(OPTS, undefined, clock);
  try {
    await run(b, clock);
  } finally {
    await b.close();
  }
}

const strings = (c: Record<string, unknown>) => Object.fromEntries(Object.entries(c).filter(([, v]) => typeof v === 'string'));
const typed = (c: Record<string, unknown>) => ['user', 'pass', 'token'].every((k) => c[k] === undefined || typeof c[k] === 'string');

describe('fuzzed credentials', () => {
  it('on the hopbus protocol: admitted exactly with the right ones, else AUTH or PROTOCOL and closed', async () => {
    await withBroker(async (b, clock) => {
      const healthy = await connectBroker(b.url, { user: 'alice', pass: 'wonderland', reconnect: false });
      await fc.assert(
        fc.asyncProperty(creds, async (c) => {
          clock.advance(MAX_MS);
          const raw = await RawClient.dial({ port: portOf(b) });
          try {
            raw.send(connectFrame(c), bareFrame(PING));
            await until(() => raw.isClosed || raw.frames.some((f) => f.op === PONG), 'an answer');
            const ops = raw.frames.map((f) => f.op);
            if (typed(c) && rightful(c)) {
              expect(ops).toEqual([INFO, PONG]);
            } else {
              await raw.closed;
              expect(ops).toEqual([ERR]);
              expect([AUTH, PROTOCOL, FRAME_TOO_LARGE]).toContain(raw.frames[0]!.code);
              expect(raw.frames[0]!.text).not.toContain('wonderland');
              expect(raw.frames[0]!.text).not.toContain('tok-123');
            }
          } finally {
            raw.socket.destroy();
          }
        }),
        { numRuns: 60, examples: [[{ user: 'alice', pass: 'wonderland' }], [{ token: 'tok-123' }], [{ user: 'alice', pass: 'Wonderland' }]] },
      );
      await healthy.flush();
      await healthy.close();
    });
  });

  it('on the NATS listener: admitted exactly with the right ones, else closed', async () => {
    await withBroker(async (b, clock) => {
      await fc.assert(
        fc.asyncProperty(creds, fc.boolean(), async (c, broken) => {
          clock.advance(MAX_MS);
          const raw = await RawNats.dial(b.broker.natsPort!);
          try {
            const json = JSON.stringify({ verbose: false, user: c.user, pass: c.pass, auth_token: c.token });
            raw.write(`CONNECT ${broken ? json.slice(0, -1) : json}\r\nPING\r\n`);
            // The NATS listener ignores credential fields that are not strings (nats-server reads them into typed fields).
            if (!broken && rightful(strings(c))) {
              await raw.waitFor(/PONG\r\n/, 'PONG');
            } else {
              await raw.waitClosed('refused');
              expect(raw.text).not.toMatch(/PONG|wonderland|tok-123/);
              // A CONNECT line over 4096 bytes is refused before it is read, as nats-server does.
              if (!broken) expect(raw.text).toMatch(/-ERR '(Authorization Violation|maximum control line exceeded)'/);
            }
          } finally {
            raw.socket.destroy();
          }
        }),
        {
          numRuns: 60,
          examples: [
            [{ user: 'alice', pass: 'wonderland' }, false],
            [{ token: 'tok-123' }, false],
            [{ token: 'tok-123' }, true],
          ],
        },
      );
    });
  });
});
