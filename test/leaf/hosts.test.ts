/**
 * Across hosts: a NATS hub in network namespace A, a hopbus broker beside it in A, and a
 * hopbus broker in namespace B whose uplink crosses the veth pair to the hub. The test
 * reaches both brokers through their Unix sockets (a filesystem path is the same in every
 * namespace). Runs as root (CI does); elsewhere it says why and skips.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TwoHosts } from '../../bench/netns.js';
import { startProcess, type Proc } from '../../bench/procs.js';
import { connectBroker, NoRespondersError, type Bus } from '../../client/index.js';
import { describeNeeding, dist, netnsProblem, until } from '../kit/index.js';
import { natsServerProblem } from './hub.js';

const problem = natsServerProblem() ?? netnsProblem();
const describe = describeNeeding(natsServerProblem() === null ? 'netns' : 'nats-server', problem);

describe('a leafnode uplink across hosts (network namespaces, veth)', () => {
  let net: TwoHosts;
  let dir: string;
  const procs: Proc[] = [];
  const buses: Bus[] = [];
  // Each namespace has ports of its own, unused by anything else.
  const LEAF_PORT = 7422;

  beforeAll(async () => {
    net = new TwoHosts();
    net.create();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-leaf-hosts-'));
    const conf = path.join(dir, 'hub.conf');
    fs.writeFileSync(conf, `server_name: hubA\nlisten: 127.0.0.1:4222\nleafnodes {\n  listen: 0.0.0.0:${LEAF_PORT}\n}\n`);
    procs.push(await startProcess('ip', ['netns', 'exec', net.a, 'nats-server', '-c', conf], /Server is ready/, { watch: 'both', timeoutMs: 15_000 }));
    const broker = (ns: string, name: string, hub: string) =>
      startProcess(
        'ip',
        [
          'netns',
          'exec',
          ns,
          process.execPath,
          dist('bin/hopbus.js'),
          'broker',
          '--name',
          name,
          '--host',
          '127.0.0.1',
          '--port',
          '0',
          '--unix',
          path.join(dir, `${name}.sock`),
          '--no-nats',
          '--log-level',
          'warn',
          '--leaf',
          hub,
        ],
        /^hopbus broker ready: /,
        { watch: 'both', timeoutMs: 15_000 },
      );
    procs.push(await broker(net.a, 'a1', `nats://127.0.0.1:${LEAF_PORT}`));
    procs.push(await broker(net.b, 'b1', `nats://${net.addrA}:${LEAF_PORT}`));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close().catch(() => undefined)));
    await Promise.all(procs.map((p) => p.stop()));
    await net?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a publish on the broker in A reaches a subscriber of the broker in B; a request from A is answered in B', async () => {
    const a = await connectBroker(`unix://${path.join(dir, 'a1.sock')}`, { reconnect: false });
    const b = await connectBroker(`unix://${path.join(dir, 'b1.sock')}`, { reconnect: false });
    buses.push(a, b);
    const got: unknown[] = [];
    b.subscribe('wan.>', (m) => void got.push(m.value));
    b.subscribe('wan.ping', (m) => m.respond(`pong from ${b.info!.serverName}`));
    await b.flush();
    // Until B's uplink is up and its interest has reached A through the hub: no responders until then.
    let answer = '';
    for (let i = 0; i < 20_000 && answer === ''; i++) {
      try {
        answer = (await a.request('wan.ping', '', { timeoutMs: 5000 })).value as string;
      } catch (err) {
        if (!(err instanceof NoRespondersError)) throw err;
        await a.flush(); // a round trip to broker A per attempt
      }
    }
    expect(answer).toBe('pong from b1');
    a.publish('wan.EURUSD', { bid: 1.0841 });
    await a.request('wan.ping', '', { timeoutMs: 5000 });
    await until(() => got.some((v) => typeof v === 'object' && v !== null && (v as { bid?: number }).bid === 1.0841), 'the price in B');
  });
});
