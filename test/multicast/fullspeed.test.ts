/**
 * A source publishing as fast as it can, with flow control (the default 'min'), to 1 and
 * to 4 receiving processes, with 1% and 5% of the data datagrams dropped at random by
 * nftables: every message must arrive at every receiver exactly once and in order, and
 * none may be lost beyond repair. Two topologies, each in network namespaces of its own
 * so that the loss rules touch nothing else on the machine:
 *
 *  - loopback: source and receivers in one namespace, on its loopback interface;
 *  - hosts: the source in namespace A, the receivers in B, across a veth pair.
 *
 * Then a receiver frozen with SIGSTOP: the source drops it from its window after
 * slowReceiverMs and the others get everything; after SIGCONT the frozen one hears that
 * it was dropped (a 'slow' event) and accounts for every message, received or reported lost.
 *
 * Needs root, iproute2 and nftables; elsewhere it says why and skips. No duration is
 * asserted; the waits are for counts.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeNeeding, eventually, multicastProblem, netnsProblem, nftProblem } from '../kit/index.js';
import { TwoHosts, type Peer, type RecvStats } from '../../bench/netns.js';

const multicast = await multicastProblem();
const netns = multicast ?? netnsProblem() ?? nftProblem();
const suite = describeNeeding(multicast !== null ? 'multicast' : netnsProblem() !== null ? 'netns' : 'nft', netns);

const GROUP = '239.78.1.1';
const PORT = 45_101;
/** Messages per run (HOPBUS_MCAST_COUNT overrides, for a quicker local run). */
const COUNT = Number(process.env.HOPBUS_MCAST_COUNT ?? 200_000);

interface SourceStats {
  count: number;
  retransmits: number;
  windowFull: number;
  slowReceivers: number;
  heldBytes: number;
  statusIn: number;
}

suite('multicast at full speed with flow control (network namespaces, nftables loss)', () => {
  let net: TwoHosts;

  beforeAll(() => {
    net = new TwoHosts();
    net.create();
  });
  afterAll(async () => {
    await net?.destroy();
  });

  const url = (iface: string) => `udp://${GROUP}:${PORT}?iface=${iface}`;

  /** Starts `n` receivers, then a source publishing COUNT messages of `size` bytes as fast as it can; returns what each saw. */
  async function run(where: 'loopback' | 'hosts', n: number, size: number, recvOpts: object = {}, pubOpts: object = {}) {
    const rns = where === 'loopback' ? net.a : net.b;
    const riface = where === 'loopback' ? '127.0.0.1' : net.addrB;
    const siface = where === 'loopback' ? '127.0.0.1' : net.addrA;
    const receivers: Peer[] = [];
    try {
      for (let i = 0; i < n; i++) receivers.push(await net.peer(rns, ['recv', url(riface), 'fs.>', JSON.stringify(recvOpts)]));
      const src = await net.peer(net.a, ['pub', url(siface), 'fs.seq', String(COUNT), JSON.stringify({ rate: 0, size, slice: 256, ...pubOpts })]);
      try {
        src.send('go');
        const sent = await src.line<SourceStats>('SENT', 120_000);
        const got = await eventually(
          () => Promise.all(receivers.map((r) => r.stats())),
          (gs) => gs.every((g) => g.received + g.lostReported >= COUNT),
          'every receiver to account for every message',
          120_000,
        );
        src.send('stats');
        return { sent: { ...sent, ...(await src.line<SourceStats>('STATS')) }, got };
      } finally {
        src.send('quit');
        await src.proc.stop();
      }
    } finally {
      for (const r of receivers) r.send('quit');
      await Promise.all(receivers.map((r) => r.proc.stop()));
    }
  }

  function expectComplete(got: RecvStats[]): void {
    for (const g of got) {
      expect(g).toMatchObject({ received: COUNT, distinct: COUNT, duplicates: 0, reordered: 0, maxSeen: COUNT - 1, lostMessages: 0, lossEvents: 0 });
    }
  }

  for (const where of ['loopback', 'hosts'] as const) {
    for (const loss of [1, 5]) {
      for (const [n, size] of [
        [1, 16],
        [1, 256],
        [4, 16],
        [4, 256],
      ] as const) {
        it(
          `${where}: ${COUNT.toLocaleString('en-US')} messages of ${size} B at full speed to ${n} receiving process${n > 1 ? 'es' : ''}, ${loss}% loss: all delivered once, in order, none lost beyond repair`,
          { timeout: 240_000 },
          async () => {
            const ns = where === 'loopback' ? net.a : net.b;
            net.randomLoss(ns, 'input', PORT, loss);
            try {
              const { sent, got } = await run(where, n, size);
              expect(net.dropped(ns)).toBeGreaterThan(0);
              expectComplete(got);
              expect(got.every((g) => g.gapsRepaired > 0 && g.slow === 0)).toBe(true);
              expect(sent.retransmits).toBeGreaterThan(0);
              expect(sent.slowReceivers).toBe(0);
              expect(sent.heldBytes).toBe(0);
            } finally {
              net.nft(ns, 'delete', 'table', 'inet', 'hbloss');
            }
          },
        );
      }
    }
  }

  it(
    'a receiver frozen (SIGSTOP) past slowReceiverMs is dropped from the window; the others get everything; after SIGCONT it is told (slow) and accounts for every message',
    { timeout: 240_000 },
    async () => {
      const count = Math.min(COUNT, 100_000);
      const recv = () => net.peer(net.b, ['recv', url(net.addrB), 'fs.>']);
      const healthy = [await recv(), await recv()];
      const frozen = await recv();
      const all = [...healthy, frozen];
      // Paced (100k msg/s for a second), so that the freeze falls in the middle of the stream.
      const src = await net.peer(net.a, [
        'pub',
        url(net.addrA),
        'fs.seq',
        String(count),
        JSON.stringify({ rate: 100_000, size: 64, slice: 256, slowReceiverMs: 300 }),
      ]);
      try {
        src.send('go');
        // Frozen once it is in the window: it has heard the source (and sent its STATUS).
        await eventually(
          () => frozen.stats(),
          (g) => g.received > 0,
          'the receiver to be frozen to hear the source',
          30_000,
        );
        frozen.proc.child.kill('SIGSTOP');
        const got = await eventually(
          () => Promise.all(healthy.map((r) => r.stats())),
          (gs) => gs.every((g) => g.received >= count),
          'the healthy receivers to get every message',
          120_000,
        );
        for (const g of got) expect(g).toMatchObject({ received: count, distinct: count, duplicates: 0, reordered: 0, lostMessages: 0, slow: 0 });
        await src.line('SENT', 60_000);
        src.send('stats');
        const s = await src.line<SourceStats>('STATS');
        expect(s.slowReceivers).toBeGreaterThanOrEqual(1);
        frozen.proc.child.kill('SIGCONT');
        const f = await eventually(
          () => frozen.stats(),
          (g) => g.slow >= 1 && g.received + g.lostReported >= count,
          'the frozen receiver, resumed, to hear that it was dropped and to account for every message',
          60_000,
        );
        expect(f.duplicates).toBe(0);
        expect(f.reordered).toBe(0);
        expect(f.received + f.lostReported).toBe(count);
      } finally {
        frozen.proc.child.kill('SIGCONT');
        src.send('quit');
        for (const r of all) r.send('quit');
        await Promise.all([src, ...all].map((p) => p.proc.stop()));
      }
    },
  );
});
