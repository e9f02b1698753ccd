/**
 * nkey login on the hopbus protocol (docs/PROTOCOL.md "Handshake", docs/SECURITY.md):
 * a CONNECT naming an nkey is answered with a CHALLENGE carrying a fresh nonce, the
 * client answers with a PROOF (the Ed25519 signature), and only then is it admitted
 * (INFO) or refused (AUTH), as for passwords: counted, logged, backed off per address.
 * The SDK with a seed or with nkey + sign, over real TCP, Unix and WebSocket
 * connections; raw sockets for what the SDK never sends; the handshake timeout on a
 * FakeClock. Keys come from the nats.js nkeys library and from our own encoder.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FREE_FAILURES } from '../../broker/auth/backoff.js';
import { startBroker, type BrokerOptions } from '../../broker/index.js';
import { ConnectionError, connectBroker, OptionsError } from '../../client/index.js';
import { resolveConnectOptions } from '../../client/options.js';
import { FakeClock } from '../../runtime/clock.js';
import { encodeUserSeed, parseUserSeed, signBytes } from '../../transports/nkeys.js';
import { ERR, FLAG_FATAL, OP, RawClient, bareFrame, connectFrame, portOf, proofFrame, until, useWorld } from '../kit/index.js';
import { capture, refusal } from './helpers.js';
import { wsUrl } from '../monitoring/http.js';

const AUTH = 13;
const alice = nkeys.createUser();
const ALICE_SEED = new TextDecoder().decode(alice.getSeed());
const ALICE = alice.getPublicKey();
// A second user, made by our own encoder.
const BOB_SEED = encodeUserSeed(randomBytes(32));
const BOB = parseUserSeed(BOB_SEED)!.publicKey;
const STRANGER_SEED = encodeUserSeed(randomBytes(32));

const NKEYS: BrokerOptions = { users: [{ nkey: ALICE }, { nkey: BOB }, { user: 'carol', password: 'secret' }] };

const world = useWorld();

/** A raw connection that sent CONNECT { nkey } and holds the CHALLENGE's nonce. */
async function challenged(target: Parameters<typeof RawClient.dial>[0], nkey = ALICE): Promise<{ raw: RawClient; nonce: Buffer }> {
  const raw = await RawClient.dial(target);
  raw.send(connectFrame({ name: 'raw', nkey }));
  await until(() => raw.frames.length > 0 || raw.isClosed, 'the CHALLENGE');
  const f = raw.frames[0]!;
  expect(f.op).toBe(OP.CHALLENGE);
  return { raw, nonce: f.nonce! };
}

describe('nkey login on the hopbus protocol', () => {
  it('admits the right seed over TCP, Unix and WebSocket, and the user talks to the others', async () => {
    const sock = path.join(world.tmpdir(), 'hopbus.sock');
    const b = await world.broker({ ...NKEYS, httpPort: 0, unix: sock });
    const got: string[] = [];
    const tcp = await world.connect(b.url, { seed: ALICE_SEED, name: 'tcp' });
    tcp.subscribe('chat', (m) => got.push(m.string()));
    await tcp.flush();
    const unix = await world.connect(`unix://${sock}`, { seed: BOB_SEED });
    const ws = await world.connect(wsUrl(b), { seed: ALICE_SEED });
    const carol = await world.connect(b.url, { user: 'carol', pass: 'secret' });
    unix.publish('chat', 'unix');
    ws.publish('chat', 'ws');
    carol.publish('chat', 'carol');
    await Promise.all([unix.flush(), ws.flush(), carol.flush()]);
    await until(() => got.length === 3, 'three messages');
    expect(got.sort()).toEqual(['carol', 'unix', 'ws']);
    expect([...b.broker.sessions].map((s) => s.identity?.name).sort()).toEqual([ALICE, ALICE, BOB, 'carol'].sort());
    expect(b.broker.counters.authFailures).toBe(0);
  });

  it('admits nkey + sign, a sign that takes its time, on every reconnect too', async () => {
    const b = await world.broker(NKEYS);
    let signed = 0;
    const kp = nkeys.fromSeed(alice.getSeed());
    const bus = await world.connect(b.url, {
      nkey: ALICE,
      sign: async (nonce) => {
        signed++;
        await new Promise((r) => setImmediate(r));
        return kp.sign(nonce);
      },
      reconnectDelayMs: 1,
      reconnectJitterMs: 0,
    });
    await bus.flush();
    expect(signed).toBe(1);
    const reconnected = new Promise<void>((resolve) => bus.once('reconnect', () => resolve()));
    for (const s of b.broker.sessions) s.link.destroy();
    await reconnected;
    await bus.flush();
    expect(signed).toBe(2);
  });

  it('refuses an unknown key and a bad signature with AUTH, counted and logged without the signature', async () => {
    const { lines, logger } = capture();
    const b = await startBroker({ host: '127.0.0.1', port: 0, ...NKEYS }, logger);
    try {
      const unknown = await refusal(connectBroker(b.url, { seed: STRANGER_SEED, reconnect: false }));
      expect(unknown.message).toMatch(/authorization violation: unknown nkey$/);
      const forged = await refusal(connectBroker(b.url, { nkey: ALICE, sign: () => new Uint8Array(64).fill(7), reconnect: false }));
      expect(forged.message).toMatch(/authorization violation: the nkey signature of the nonce does not verify$/);
      // Bob's seed signing for Alice's key: a real signature, of the wrong key.
      const bob = parseUserSeed(BOB_SEED)!;
      await refusal(connectBroker(b.url, { nkey: ALICE, sign: (n) => signBytes(bob, n), reconnect: false }));
      expect(b.broker.counters.authFailures).toBe(3);
      await until(() => lines.filter((l) => l.msg === 'authentication failed').length === 3, 'three log lines');
      const failed = lines.filter((l) => l.msg === 'authentication failed');
      expect(failed[0]).toMatchObject({ protocol: 'hopbus', transport: 'tcp', reason: 'unknown nkey' });
      expect(failed[1]).toMatchObject({ user: ALICE, reason: 'the nkey signature of the nonce does not verify' });
      const all = lines.map((l) => JSON.stringify(l)).join('\n');
      expect(all).not.toContain(Buffer.alloc(64, 7).toString('base64'));
      expect(all).not.toContain(STRANGER_SEED);
      await until(() => b.broker.sessions.size === 0, 'the refused sessions gone');
    } finally {
      await b.close();
    }
  });

  it('sends a fresh nonce to each connection, and a PROOF of another nonce does not verify', async () => {
    const b = await world.broker(NKEYS);
    const one = await challenged({ port: portOf(b) });
    const two = await challenged({ port: portOf(b) });
    expect(one.nonce.equals(two.nonce)).toBe(false);
    // Replaying one connection's signature on another is refused.
    const seed = parseUserSeed(ALICE_SEED)!;
    two.raw.send(proofFrame(signBytes(seed, one.nonce)));
    await two.raw.closed;
    expect(two.raw.frames.slice(1).map((f) => [f.op, f.code])).toEqual([[OP.ERR, AUTH]]);
    one.raw.send(proofFrame(signBytes(seed, one.nonce)));
    await until(() => one.raw.frames.some((f) => f.op === OP.INFO), 'INFO');
    one.raw.socket.destroy();
  });

  it('refuses any other frame in place of the PROOF as a protocol error', async () => {
    const b = await world.broker(NKEYS);
    const { raw } = await challenged({ port: portOf(b) });
    raw.send(bareFrame(OP.PING));
    await raw.closed;
    const err = raw.frames[1]!;
    expect([err.op, err.code, err.flags & FLAG_FATAL]).toEqual([OP.ERR, ERR.PROTOCOL, FLAG_FATAL]);
    expect(err.text).toBe('expected PROOF in answer to the nkey CHALLENGE, got PING');
    expect(b.broker.counters.protocolErrors).toBe(1);
    // A PROOF of the wrong size is cut by the reader.
    const second = await challenged({ port: portOf(b) });
    second.raw.send(proofFrame(new Uint8Array(63)));
    await second.raw.closed;
    expect(second.raw.frames[1]!.text).toBe('in answer to the nkey CHALLENGE: PROOF frame must be 72 bytes, got 71');
  });

  it('asks no CHALLENGE where no nkey is configured: an open broker admits, one with passwords refuses at once', async () => {
    const open = await world.broker();
    await (await world.connect(open.url, { seed: ALICE_SEED })).flush();
    const users = await world.broker({ users: [{ user: 'carol', password: 'secret' }] });
    const raw = await world.raw(users);
    raw.send(connectFrame({ nkey: ALICE }));
    await raw.closed;
    expect(raw.frames.map((f) => [f.op, f.code])).toEqual([[OP.ERR, AUTH]]);
    expect(raw.frames[0]!.text).toBe('authorization violation: unknown nkey');
  });

  it('takes a CONNECT `sig` for an unknown option: the signature only comes in PROOF', async () => {
    const b = await world.broker(NKEYS);
    const raw = await world.raw(b);
    raw.send(connectFrame({ nkey: ALICE, sig: 'AAAA' }));
    await raw.closed;
    expect(raw.frames.map((f) => [f.op, f.code])).toEqual([[OP.ERR, ERR.PROTOCOL]]);
    expect(raw.frames[0]!.text).toMatch(/^unknown CONNECT option "sig"/);
  });
});

describe('on the clock', () => {
  it('closes a connection that never answers its CHALLENGE when the handshake timeout runs out, naming the PROOF', async () => {
    const clock = new FakeClock(1000);
    const b = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', handshakeTimeoutMs: 2000, ...NKEYS }, undefined, clock);
    try {
      const { raw } = await challenged({ port: portOf(b) });
      // The timeout runs from the connect, not from the CONNECT: it bounds the exchange as a whole.
      clock.advance(1999);
      // The timer's fatal ERR counts a protocol error at once: none yet.
      expect(b.broker.counters.protocolErrors).toBe(0);
      clock.advance(1);
      await raw.closed;
      expect(raw.frames.map((f) => f.op)).toEqual([OP.CHALLENGE, OP.ERR]);
      expect(raw.frames[1]!.text).toBe('no PROOF in answer to the nkey CHALLENGE within 2000 ms of connecting');
      await until(() => b.broker.sessions.size === 0, 'the session gone');
    } finally {
      await b.close();
    }
  });

  it('backs off an address after repeated bad signatures, refusing even the right seed until its time is up', async () => {
    const clock = new FakeClock(1000);
    const b = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', ...NKEYS }, undefined, clock);
    try {
      for (let i = 0; i < FREE_FAILURES; i++) await refusal(connectBroker(b.url, { nkey: ALICE, sign: () => randomBytes(64), reconnect: false }));
      const err = await refusal(connectBroker(b.url, { seed: ALICE_SEED, reconnect: false }));
      expect(err.message).toMatch(/too many failed attempts from this address; try again in 250 ms/);
      clock.advance(250);
      const ok = world.track(await connectBroker(b.url, { seed: ALICE_SEED, reconnect: false }));
      await ok.flush();
      expect(b.broker.counters.authFailures).toBe(FREE_FAILURES + 1);
    } finally {
      await b.close();
    }
  });

  it('garbage in place of the PROOF: one fatal ERR, never INFO, and the broker serves on', async () => {
    const clock = new FakeClock(1000);
    const b = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', handshakeTimeoutMs: 2000, readDeadlineMs: 0, ...NKEYS }, undefined, clock);
    const allowed = [ERR.PROTOCOL, ERR.UNKNOWN_OP, ERR.FRAME_TOO_LARGE, AUTH];
    try {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 160 }), async (garbage) => {
          const { raw } = await challenged({ port: portOf(b) });
          raw.send(Buffer.from(garbage));
          // A cut frame waits for more bytes: the handshake timeout ends it.
          await until(() => raw.isClosed || b.broker.sessions.size > 0, 'the session');
          clock.advance(2000);
          await raw.closed;
          const after = raw.frames.slice(1);
          expect(after.map((f) => f.op)).toEqual([OP.ERR]);
          expect(after[0]!.flags & FLAG_FATAL).toBe(FLAG_FATAL);
          expect(allowed).toContain(after[0]!.code);
        }),
        { numRuns: 40 },
      );
      await until(() => b.broker.sessions.size === 0, 'every garbage connection gone');
      clock.advance(60_000); // past any back-off the garbage earned
      const ok = world.track(await connectBroker(b.url, { seed: ALICE_SEED, reconnect: false }));
      await ok.flush();
    } finally {
      await b.close();
    }
  });
});

describe('the client options', () => {
  const bad = (o: object) => () => resolveConnectOptions(o);
  it('take a seed, or nkey with sign, and say what is wrong otherwise, never echoing a seed', () => {
    const r = resolveConnectOptions({ seed: ALICE_SEED });
    expect(r.nkey).toBe(ALICE);
    expect(typeof r.sign).toBe('function');
    expect(resolveConnectOptions({ nkey: ALICE, sign: () => new Uint8Array(64) }).nkey).toBe(ALICE);
    expect(bad({ seed: ALICE_SEED, nkey: ALICE })).toThrow(/give "seed", or "nkey" with "sign"/);
    expect(bad({ nkey: ALICE })).toThrow(/"nkey" needs "sign"/);
    expect(bad({ sign: () => new Uint8Array(64) })).toThrow(/"sign" needs "nkey"/);
    expect(bad({ nkey: ALICE, sign: 'yes' })).toThrow(/"sign" must be a function/);
    expect(bad({ nkey: 'UABC', sign: () => new Uint8Array(64) })).toThrow(/must be a public user nkey \(56 characters starting with U\), got "UABC"/);
    expect(bad({ nkey: ALICE_SEED, sign: () => new Uint8Array(64) })).toThrow(/holds a seed \(SU\.\.\.\): pass it as "seed"/);
    expect(bad({ seed: ALICE })).toThrow(/holds a public nkey/);
    expect(bad({ seed: ALICE_SEED, user: 'carol', pass: 'x' })).toThrow(/cannot go with "user"/);
    for (const o of [
      { seed: ALICE_SEED.slice(0, 10) + (ALICE_SEED[10] === 'A' ? 'B' : 'A') + ALICE_SEED.slice(11) },
      { nkey: ALICE_SEED, sign: () => new Uint8Array(64) },
    ]) {
      let msg = '';
      try {
        resolveConnectOptions(o);
      } catch (err) {
        expect(err).toBeInstanceOf(OptionsError);
        msg = (err as Error).message;
      }
      expect(msg).not.toBe('');
      expect(msg).not.toContain(ALICE_SEED.slice(4, 40));
    }
  });

  it('a sign that returns something else than 64 bytes fails the connect, saying so', async () => {
    const b = await world.broker(NKEYS);
    const err = await connectBroker(b.url, { nkey: ALICE, sign: () => new Uint8Array(10), reconnect: false }).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err!.message).toMatch(/"sign" failed: it must return the 64-byte Ed25519 signature of the nonce, got 10 bytes/);
  });
});
