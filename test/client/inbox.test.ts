/**
 * The receiver-side slow-consumer queue of multicast subscriptions (client/inbox.ts):
 * each policy at its bound, conflation, loss counts, and the delivery rate. Time is
 * passed in; nothing waits on a clock.
 */
import { describe, expect, it } from 'vitest';
import { Inbox, MsgRate, type InboxPolicy } from '../../client/inbox.js';
import { Msg } from '../../client/msg.js';
import { Subscription } from '../../client/subscription.js';
import { MSG_HEADER, MsgView, Op, msgSize, writeMsgHeader } from '../../transports/protocol/index.js';

const responder = { publish: () => {} };

/** A real received message on `subject` whose one-byte payload is `n`. */
function message(subject: string, n: number): Msg {
  const s = Buffer.byteLength(subject);
  const buf = Buffer.alloc(msgSize(s, 0, 0, 1, false));
  const at = writeMsgHeader(buf, 0, buf.length, Op.MSG, 0, 0, 0, s, 0, 0);
  buf.write(subject, at, 'utf8');
  buf[MSG_HEADER + s] = n;
  return new Msg(new MsgView().parse(buf, 0, buf.length), subject, responder);
}

const n = (m: Msg | undefined) => (m === undefined ? undefined : (m.data as Uint8Array)[0]);

function inbox(policy: InboxPolicy, max: number) {
  const sub = new Subscription({ unsubscribeSid: () => {}, reportError: () => {} }, 1, 'x.>', null, {});
  return { sub, box: new Inbox(sub, policy, max, [0]) };
}

function drain(box: Inbox): [string, number][] {
  const out: [string, number][] = [];
  for (let m = box.shift(); m !== undefined; m = box.shift()) out.push([m.subject, n(m)!]);
  return out;
}

describe('Inbox', () => {
  it('below its bound, queues every message in order, whatever the policy', () => {
    for (const policy of ['drop-oldest', 'drop-newest', 'conflate', 'disconnect'] as const) {
      const { box, sub } = inbox(policy, 4);
      for (let i = 0; i < 4; i++) expect(box.push(message(`x.${i}`, i))).toBe(true);
      expect(box.count).toBe(4);
      expect(drain(box)).toEqual([
        ['x.0', 0],
        ['x.1', 1],
        ['x.2', 2],
        ['x.3', 3],
      ]);
      expect([sub.dropped, sub.conflated]).toEqual([0, 0]);
    }
  });

  it('drop-oldest: at the bound, the oldest message makes room, counted as dropped', () => {
    const { box, sub } = inbox('drop-oldest', 2);
    for (let i = 0; i < 5; i++) box.push(message('x.a', i));
    expect(box.count).toBe(2);
    expect(sub.dropped).toBe(3);
    expect(box.unreportedDropped).toBe(3);
    expect(drain(box)).toEqual([
      ['x.a', 3],
      ['x.a', 4],
    ]);
  });

  it('drop-newest: at the bound, the arriving message is dropped, counted as dropped', () => {
    const { box, sub } = inbox('drop-newest', 2);
    for (let i = 0; i < 5; i++) expect(box.push(message('x.a', i))).toBe(true);
    expect(sub.dropped).toBe(3);
    expect(box.unreportedDropped).toBe(3);
    expect(drain(box)).toEqual([
      ['x.a', 0],
      ['x.a', 1],
    ]);
  });

  it('disconnect: at the bound, push refuses and queues nothing more', () => {
    const { box, sub } = inbox('disconnect', 2);
    box.push(message('x.a', 0));
    box.push(message('x.a', 1));
    expect(box.push(message('x.a', 2))).toBe(false);
    expect(box.count).toBe(2);
    expect(sub.dropped).toBe(0);
  });

  it('conflate: a queued message is replaced by a newer one on its subject, at any time, keeping its place', () => {
    const { box, sub } = inbox('conflate', 10);
    box.push(message('x.a', 0));
    box.push(message('x.b', 1));
    box.push(message('x.a', 2));
    box.push(message('x.a', 3));
    expect(box.count).toBe(2);
    expect(sub.conflated).toBe(2);
    expect(box.unreportedConflated).toBe(2);
    expect(drain(box)).toEqual([
      ['x.a', 3],
      ['x.b', 1],
    ]);
  });

  it("conflate: once a subject's message has been taken, the next one on it queues anew at the tail", () => {
    const { box } = inbox('conflate', 10);
    box.push(message('x.a', 0));
    box.push(message('x.b', 1));
    expect(n(box.shift())).toBe(0);
    box.push(message('x.a', 2));
    expect(drain(box)).toEqual([
      ['x.b', 1],
      ['x.a', 2],
    ]);
  });

  it('conflate: at the bound, a message on a new subject behaves as drop-oldest', () => {
    const { box, sub } = inbox('conflate', 2);
    box.push(message('x.a', 0));
    box.push(message('x.b', 1));
    box.push(message('x.c', 2));
    expect(sub.dropped).toBe(1);
    // x.a left with the dropped message: a new x.a queues, it does not conflate.
    box.push(message('x.a', 3));
    expect(sub.conflated).toBe(0);
    expect(drain(box)).toEqual([
      ['x.c', 2],
      ['x.a', 3],
    ]);
  });

  it('clear empties the queue and forgets the subjects it conflated', () => {
    const { box, sub } = inbox('conflate', 10);
    box.push(message('x.a', 0));
    box.clear();
    expect(box.count).toBe(0);
    box.push(message('x.a', 1));
    expect(sub.conflated).toBe(0);
    expect(drain(box)).toEqual([['x.a', 1]]);
  });
});

describe('MsgRate', () => {
  it('admits a burst at once, then one message per 1/perSec', () => {
    const r = new MsgRate(100, 3, 0);
    expect([r.admit(0), r.admit(0), r.admit(0), r.admit(0)]).toEqual([true, true, true, false]);
    expect(r.admit(9)).toBe(false);
    expect(r.admit(10)).toBe(true);
  });

  it('waitMs says how long until the next message is admitted, 0 when it would be now', () => {
    const r = new MsgRate(100, 1, 0);
    expect(r.waitMs(0)).toBe(0);
    r.admit(0);
    expect(r.waitMs(0)).toBe(10);
    expect(r.waitMs(4)).toBe(6);
    expect(r.waitMs(10)).toBe(0);
  });

  it('starts from the time its caller gives, not from a clock of its own', () => {
    const r = new MsgRate(1, 1, 5_000);
    r.admit(5_000);
    expect(r.admit(5_999)).toBe(false);
    expect(r.admit(6_000)).toBe(true);
  });
});
