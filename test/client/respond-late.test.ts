/**
 * A late msg.respond(): the responder's connection was closed (or is draining) by the
 * time the answer is ready, say in a timer. It returns false and the connection reports
 * a ConnectionError as an 'error' event; nothing is thrown into the timer, which would
 * crash the process.
 */
import { describe, expect, it } from 'vitest';
import { ConnectionError, OptionsError, type Msg } from '../../client/index.js';
import { useWorld } from '../kit/index.js';

const w = useWorld();

describe('msg.respond() after the connection closed', () => {
  it('returns false and emits a ConnectionError instead of throwing', async () => {
    const b = await w.broker();
    const responder = await w.connect(b.url);
    const requester = await w.connect(b.url);
    const got = new Promise<Msg>((resolve) => responder.subscribe('svc.slow', resolve));
    await responder.flush();
    void requester.request('svc.slow', 'q', { timeoutMs: 60_000 }).catch(() => {});
    const msg = await got;
    const errors: unknown[] = [];
    responder.on('error', (e: unknown) => errors.push(e));
    await responder.close();
    // What a timer callback would do once its work is done.
    const answered = await new Promise<boolean>((resolve) => setImmediate(() => resolve(msg.respond('late'))));
    expect(answered).toBe(false);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(ConnectionError);
  });

  it('still throws for a message with no reply subject (a mistake in the caller, not a late answer)', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    const got = new Promise<Msg>((resolve) => bus.subscribe('plain', resolve));
    await bus.flush();
    bus.publish('plain', 'x');
    const msg = await got;
    expect(() => msg.respond('y')).toThrow(OptionsError);
  });
});
