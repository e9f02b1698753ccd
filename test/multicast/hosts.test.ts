/**
 * Across hosts: sources and receivers in two network namespaces joined by a veth
 * pair, loss injected with nftables. Runs as root (CI does); elsewhere it says why
 * and skips.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeNeeding, eventually, itNeeding, multicastProblem, netnsProblem, nftProblem } from '../kit/index.js';
import { TwoHosts, type Peer, type RecvStats } from '../../bench/netns.js';

const multicast = await multicastProblem();
const suite = describeNeeding(multicast === null ? 'netns' : 'multicast', multicast ?? netnsProblem());
const nftIt = itNeeding('nft', nftProblem());

// A channel of its own; nothing else on the machine uses these namespaces.
const GROUP = '239.77.1.1';
const PORT = 45_001;
const COUNT = 20_000;

interface SentStats {
  count: number;
  retransmits: number;
  naksReceived: number;
  datagramsOut: number;
}

suite('multicast across hosts (network namespaces, veth)', () => {
  let net: TwoHosts;
  const urlA = () => `udp://${GROUP}:${PORT}?iface=${net.addrA}`;
  const urlB = () => `udp://${GROUP}:${PORT}?iface=${net.addrB}`;

  beforeAll(() => {
    net = new TwoHosts();
    net.create();
  });
  afterAll(async () => {
    await net?.destroy();
  });

  /** Runs one source in A, the receivers given, publishes COUNT messages, and returns what each receiver saw. */
  async function run(receivers: Peer[], pubOpts: Record<string, unknown> = {}, count = COUNT): Promise<{ sent: SentStats; got: RecvStats[] }> {
    const src = await net.peer(net.a, ['pub', urlA(), 'x.seq', String(count), JSON.stringify({ rate: 100_000, slice: 100, ...pubOpts })]);
    try {
      src.send('go');
      const sent = await src.line<SentStats>('SENT');
      // Wait until every receiver has everything (received or reported lost).
      const got = await eventually(
        () => Promise.all(receivers.map((r) => r.stats())),
        (gs) => gs.every((g) => g.received + g.lostReported >= count),
        'every receiver to account for every message',
        15_000,
      );
      if (pubOpts.exitAfterMs !== undefined) return { sent, got }; // it is dead by now
      src.send('stats');
      return { sent: { ...sent, ...(await src.line<SentStats>('STATS')) }, got };
    } finally {
      src.send('quit');
      await src.proc.stop();
    }
  }

  it('a source in A reaches receivers in B (over the veth) and in A (looped back), every message once and in order', async () => {
    const rb1 = await net.peer(net.b, ['recv', urlB(), 'x.>']);
    const rb2 = await net.peer(net.b, ['recv', urlB(), 'x.>']);
    const ra = await net.peer(net.a, ['recv', urlA(), 'x.>']);
    try {
      const { got } = await run([rb1, rb2, ra]);
      for (const g of got) {
        expect(g).toMatchObject({ received: COUNT, distinct: COUNT, duplicates: 0, reordered: 0, maxSeen: COUNT - 1, lostMessages: 0 });
      }
    } finally {
      for (const p of [rb1, rb2, ra]) p.send('quit');
    }
  });

  nftIt("5% random loss on B's input (nftables): every gap is NAKed across the wire and repaired; nothing is lost", async () => {
    net.randomLoss(net.b, 'input', PORT, 5);
    const rb = await net.peer(net.b, ['recv', urlB(), 'x.>']);
    try {
      const { sent, got } = await run([rb]);
      const g = got[0]!;
      const dropped = net.dropped(net.b);
      expect(dropped).toBeGreaterThan(0);
      expect(g).toMatchObject({ received: COUNT, distinct: COUNT, duplicates: 0, reordered: 0, lostMessages: 0, lossEvents: 0 });
      expect(g.gapsRepaired).toBeGreaterThan(0);
      expect(g.naksSent).toBeGreaterThan(0);
      expect(sent.retransmits).toBeGreaterThan(0);
    } finally {
      rb.send('quit');
      net.nft(net.b, 'delete', 'table', 'inet', 'hbloss');
    }
  });

  nftIt("5% random loss on A's output: every receiver misses the same datagrams; repairs are multicast and all are repaired", async () => {
    net.randomLoss(net.a, 'output', PORT, 5);
    const r1 = await net.peer(net.b, ['recv', urlB(), 'x.>']);
    const r2 = await net.peer(net.b, ['recv', urlB(), 'x.>']);
    try {
      const { sent, got } = await run([r1, r2]);
      expect(net.dropped(net.a)).toBeGreaterThan(0);
      for (const g of got) expect(g).toMatchObject({ received: COUNT, distinct: COUNT, duplicates: 0, reordered: 0, lostMessages: 0 });
      // One repair serves both receivers: far fewer NAKs reach the source than the two sent in the worst case.
      expect(sent.retransmits).toBeGreaterThan(0);
    } finally {
      for (const p of [r1, r2]) p.send('quit');
      net.nft(net.a, 'delete', 'table', 'inet', 'hbloss');
    }
  });

  it('a source in A that dies without a goodbye is declared gone by the receiver in B', async () => {
    const rb = await net.peer(net.b, ['recv', urlB(), 'x.>', JSON.stringify({ sourceTimeoutMs: 400 })]);
    try {
      await run([rb], { exitAfterMs: 0, heartbeatMaxMs: 50 }, 1000);
      const g = await eventually(
        () => rb.stats(),
        (s) => s.gone.length > 0,
        'the receiver to declare the source gone',
        5_000,
      );
      expect(g.received).toBe(1000);
      expect(g.gone).toEqual(['timeout']);
    } finally {
      rb.send('quit');
    }
  });
});
