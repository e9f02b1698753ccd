/** The buffer of an iterator subscription (client/subscription.ts): bounded by maxPending, drops the newest past it. */
import { describe, expect, it } from 'vitest';
import { SlowConsumerError } from '../../client/errors.js';
import type { Msg } from '../../client/msg.js';
import { Subscription } from '../../client/subscription.js';

// The buffer reads only a message's size: any object with one stands for a message.
const m = (i: number, size = 100) => ({ i, size }) as unknown as Msg;

function iteratorSub(maxPending: number, maxPendingBytes?: number) {
  const errors: Error[] = [];
  const sub = new Subscription({ unsubscribeSid: () => {}, reportError: (e) => errors.push(e) }, 1, 'x', null, { maxPending, maxPendingBytes });
  return { sub, errors, it: sub[Symbol.asyncIterator]() };
}

describe('iterator subscription buffer', () => {
  it('buffers messages nobody is waiting for, and hands them out in order', async () => {
    const { sub, it } = iteratorSub(8);
    for (let i = 0; i < 5; i++) sub.deliver(m(i));
    const got = [];
    for (let i = 0; i < 5; i++) got.push(((await it.next()).value as unknown as { i: number }).i);
    expect(got).toEqual([0, 1, 2, 3, 4]);
  });

  it('past maxPending, drops the arriving messages, counts them, and reports one SlowConsumerError per overflow', async () => {
    const { sub, errors, it } = iteratorSub(3);
    for (let i = 0; i < 6; i++) sub.deliver(m(i));
    expect(sub.dropped).toBe(3);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(SlowConsumerError);
    for (let i = 0; i < 3; i++) await it.next(); // emptied: the next overflow is reported again
    for (let i = 0; i < 4; i++) sub.deliver(m(i));
    expect(errors).toHaveLength(2);
  });

  it('past maxPendingBytes, drops the arriving messages the same way, and takes new ones as the consumer frees bytes', async () => {
    const { sub, errors, it } = iteratorSub(1000, 1000);
    for (let i = 0; i < 5; i++) sub.deliver(m(i, 300));
    expect(sub.dropped).toBe(2);
    expect(sub.pendingBytes).toBe(900);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(SlowConsumerError);
    expect(errors[0]!.message).toMatch(/\(1000 messages, 1000 bytes\) is full/);
    await it.next();
    expect(sub.pendingBytes).toBe(600);
    sub.deliver(m(9, 400));
    expect(sub.pendingBytes).toBe(1000);
    expect(sub.dropped).toBe(2);
    sub.deliver(m(10, 1));
    expect(sub.dropped).toBe(3);
  });

  it('a waiting consumer gets the message directly; after close it gets what was buffered, then done', async () => {
    const { sub, it } = iteratorSub(4);
    const waiting = it.next();
    sub.deliver(m(7));
    expect(((await waiting).value as unknown as { i: number }).i).toBe(7);
    sub.deliver(m(8));
    sub.close();
    expect(((await it.next()).value as unknown as { i: number }).i).toBe(8);
    expect((await it.next()).done).toBe(true);
  });
});
