/**
 * client/mux.ts: one reply subscription for every request, told apart by token; the
 * timers on a FakeClock.
 */
import { describe, expect, it } from 'vitest';
import { RequestMux, type MuxHost } from '../../client/mux.js';
import { ConnectionError, NoRespondersError, TimeoutError } from '../../client/index.js';
import type { Msg } from '../../client/msg.js';
import type { MsgHandler, Subscription } from '../../client/subscription.js';
import { FakeClock } from '../../runtime/clock.js';

/** A host that records the reply subscription and lets the test deliver replies to it. */
function host(): MuxHost & { handler: MsgHandler | null; subs: number; sub: Subscription } {
  const sub = {} as Subscription;
  const h = {
    handler: null as MsgHandler | null,
    subs: 0,
    sub,
    subscribe(pattern: string, handler: MsgHandler): Subscription {
      expect(pattern).toMatch(/^_INBOX\.[0-9a-f]{16}\.\*$/);
      h.handler = handler;
      h.subs++;
      return sub;
    },
  };
  return h;
}

const reply = (subject: string, noResponders = false): Msg => ({ subject, noResponders }) as Msg;

describe('RequestMux', () => {
  it('subscribes once for all requests and resolves each with the reply to its own token', async () => {
    const h = host();
    const mux = new RequestMux(h, new FakeClock(), true);
    const sent: string[] = [];
    const a = mux.request('svc.a', 1000, (r) => sent.push(r));
    const b = mux.request('svc.b', 1000, (r) => sent.push(r));
    expect(h.subs).toBe(1);
    expect(sent).toHaveLength(2);
    expect(sent[0]!.startsWith(mux.prefix)).toBe(true);
    h.handler!(reply(sent[1]!));
    h.handler!(reply(sent[0]!));
    h.handler!(reply(sent[0]!)); // a second responder: ignored
    expect((await a).subject).toBe(sent[0]);
    expect((await b).subject).toBe(sent[1]);
  });

  it('times out on the clock, and a late reply is ignored', async () => {
    const h = host();
    const clock = new FakeClock();
    const mux = new RequestMux(h, clock, false, ' (nobody says so)');
    let to = '';
    const p = mux.request('svc', 500, (r) => (to = r));
    const settled = expect(p).rejects.toThrow(/request to "svc" \(nobody says so\)/);
    clock.advance(499);
    expect(clock.pending).toBe(1);
    clock.advance(1);
    await settled;
    await expect(p).rejects.toBeInstanceOf(TimeoutError);
    h.handler!(reply(to));
  });

  it('rejects with NoRespondersError on a broker connection; without a broker the flagged reply is a reply', async () => {
    const h1 = host();
    const brokered = new RequestMux(h1, new FakeClock(), true);
    let r1 = '';
    const p1 = brokered.request('nobody', 1000, (r) => (r1 = r));
    h1.handler!(reply(r1, true));
    await expect(p1).rejects.toBeInstanceOf(NoRespondersError);
    const h2 = host();
    const clock = new FakeClock();
    const brokerless = new RequestMux(h2, clock, false);
    let r2 = '';
    const p2 = brokerless.request('x', 1000, (r) => (r2 = r));
    h2.handler!(reply(r2, true));
    expect((await p2).noResponders).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it('rejects with what send throws, clears its timer, and waits for `after` before sending', async () => {
    const h = host();
    const clock = new FakeClock();
    const mux = new RequestMux(h, clock, true);
    await expect(
      mux.request('x', 1000, () => {
        throw new Error('too big');
      }),
    ).rejects.toThrow('too big');
    expect(clock.pending).toBe(0);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let sent = false;
    const p = mux.request(
      'y',
      1000,
      (r) => {
        sent = true;
        h.handler!(reply(r));
      },
      () => gate,
    );
    await Promise.resolve();
    expect(sent).toBe(false);
    release();
    await p;
    expect(sent).toBe(true);
  });

  it('close fails every pending request; a forgotten reply subscription is made again', async () => {
    const h = host();
    const clock = new FakeClock();
    const mux = new RequestMux(h, clock, true);
    const p = mux.request('x', 1000, () => {});
    expect(mux.owns(h.sub)).toBe(true);
    mux.forgotten(h.sub);
    expect(mux.owns(h.sub)).toBe(false);
    void mux.request('y', 1000, () => {}).catch(() => {});
    expect(h.subs).toBe(2);
    mux.close(new ConnectionError('connection closed'));
    await expect(p).rejects.toBeInstanceOf(ConnectionError);
    expect(clock.pending).toBe(0);
  });
});
