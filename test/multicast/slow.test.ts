import { expect, it } from 'vitest';
import { SlowConsumerError, type MulticastLossEvent } from '../../client/index.js';
import { describeMulticast, until, urlOf, useBuses } from './helpers.js';

const FILE = 4;
const w = useBuses();
const url = urlOf(FILE, 0);
const TOTAL = 3000;

function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    /* a slow callback */
  }
}

describeMulticast('multicast slow consumers', () => {
  it('drop-oldest (the default): a slow callback sees the newest messages; every message is delivered or counted dropped and reported', async () => {
    const a = await w.open(url);
    const b = await w.open(url, { dispatchBudgetMs: 5 });
    const got: number[] = [];
    const fast: number[] = [];
    const losses: MulticastLossEvent[] = [];
    b.on('loss', (e) => losses.push(e));
    const slow = b.subscribe(
      'slow.x',
      (m) => {
        got.push(Number(m.string()));
        spin(0.2);
      },
      { maxPending: 100 },
    );
    b.subscribe('slow.x', (m) => fast.push(Number(m.string())));
    await b.flush();
    for (let i = 0; i < TOTAL; i++) a.publish('slow.x', String(i));
    await until(() => got.length + slow.dropped === TOTAL && fast.length === TOTAL, 'every message delivered or dropped');
    expect(slow.dropped).toBeGreaterThan(0);
    expect(got.at(-1)).toBe(TOTAL - 1);
    expect(got).toEqual([...got].sort((x, y) => x - y)); // still in order, with holes
    expect(fast).toEqual([...Array(TOTAL).keys()]); // the other subscription lost nothing
    expect(losses.length).toBeGreaterThan(0);
    expect(losses.every((l) => l.policy === 'drop-oldest' && l.subscription === slow)).toBe(true);
    expect(losses.reduce((s, l) => s + l.dropped, 0)).toBe(slow.dropped);
    expect(b.stats.lostDatagrams).toBe(0); // the socket was read on time: nothing lost in the kernel
  });

  it('drop-newest: arrivals are dropped at the bound, so the newest are the ones lost', async () => {
    const a = await w.open(url);
    const b = await w.open(url, { dispatchBudgetMs: 5, policy: 'drop-newest', maxPending: 100 });
    const got: number[] = [];
    const sub = b.subscribe('dn.x', (m) => {
      got.push(Number(m.string()));
      spin(0.2);
    });
    await b.flush();
    for (let i = 0; i < TOTAL; i++) a.publish('dn.x', String(i));
    await until(() => got.length + sub.dropped === TOTAL, 'every message delivered or dropped');
    expect(sub.dropped).toBeGreaterThan(0);
    expect(got.at(-1)).toBeLessThan(TOTAL - 1);
  });

  it('conflate: a queued message is replaced by the newer one on its subject; the last value of each subject always arrives', async () => {
    const a = await w.open(url);
    const b = await w.open(url, { dispatchBudgetMs: 5 });
    const last = new Map<string, number>();
    let n = 0;
    const sub = b.subscribe(
      'cf.*',
      (m) => {
        last.set(m.subject, Number(m.string()));
        n++;
        spin(0.2);
      },
      { policy: 'conflate', maxPending: 1000 },
    );
    await b.flush();
    for (let i = 0; i < TOTAL; i++) a.publish(`cf.s${i % 5}`, String(i));
    await until(() => n + sub.conflated + sub.dropped === TOTAL, 'every message delivered, conflated or dropped');
    expect(sub.conflated).toBeGreaterThan(0);
    for (let k = 0; k < 5; k++) expect(last.get(`cf.s${k}`)).toBe(TOTAL - 5 + k);
  });

  it('disconnect: past its bound the subscription is closed with SlowConsumerError; the bus goes on', async () => {
    const a = await w.open(url);
    const b = await w.open(url, { dispatchBudgetMs: 5 });
    const errors: Error[] = [];
    b.on('error', (e) => errors.push(e));
    const sub = b.subscribe('dc.x', () => spin(0.2), { policy: 'disconnect', maxPending: 50 });
    let other = 0;
    b.subscribe('dc.y', () => other++);
    await b.flush();
    for (let i = 0; i < TOTAL; i++) a.publish('dc.x', String(i));
    await sub.closed;
    expect(errors.some((e) => e instanceof SlowConsumerError)).toBe(true);
    a.publish('dc.y', 'still here');
    await until(() => other === 1, 'the bus still delivers');
  });

  it("deliverRate: messages over a subscription's rate wait in its queue, where its policy acts; other buses are not slowed", async () => {
    const a = await w.open(url);
    const b = await w.open(url, { deliverRate: { msgsPerSec: 200, burstMsgs: 10 }, maxPending: 30 });
    const got: number[] = [];
    const sub = b.subscribe('rate.x', (m) => got.push(Number(m.string())));
    const c = await w.open(url);
    let free = 0;
    c.subscribe('rate.x', () => free++);
    await b.flush();
    await c.flush();
    for (let i = 0; i < 100; i++) a.publish('rate.x', String(i));
    await until(() => free === 100, 'the unlimited bus has everything');
    // 100 messages at 200/s after a burst of 10 cannot all be there yet, whatever the machine does.
    expect(got.length).toBeLessThan(100);
    await until(() => got.length + sub.dropped === 100, 'every message delivered or dropped');
    expect(sub.dropped).toBeGreaterThan(0); // a queue of 30 behind a 200/s limit: drop-oldest acted
    expect(got.at(-1)).toBe(99);
    expect(got).toEqual([...got].sort((x, y) => x - y));
    await expect(w.open(url, { deliverRate: { msgsPerSec: 0 } })).rejects.toThrow(/deliverRate/);
  });
});
