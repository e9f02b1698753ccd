/**
 * Failover over a real NATS cluster: a hub node dies and the hopbus broker moves to
 * another node with all its interest announced again; a hopbus broker (a child process)
 * dies and its clients, given its address only, move to the broker it told them of
 * (INFO connectUrls), resubscribe, keep receiving what a NATS client elsewhere publishes,
 * and are told of the gap ('gap' event, counted).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { expect, it } from 'vitest';
import { connectBroker, type Bus, type GapEvent, type Msg } from '../../client/index.js';
import { describeNeeding, dist, until } from '../kit/index.js';
import { freePort, natsServerProblem } from './hub.js';
import { useLeafRig } from './rig.js';

const describe = describeNeeding('nats-server', natsServerProblem());

const { cleanup, hub: hub3, broker, nats } = useLeafRig();

async function bus(url: string, o: Parameters<typeof connectBroker>[1] = {}): Promise<Bus> {
  const c = await connectBroker(url, o);
  cleanup.push(() => c.close());
  return c;
}

/** Requests `subject` from `n` until a responder answers (interest has propagated to n's node); no responders are retried. */
async function reachable(n: NatsConnection, subject: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    try {
      await n.request(subject, '', { timeout: 2000 });
      return;
    } catch (err) {
      const e = err as { code?: string; message: string };
      if (!/503|no responders/i.test(`${e.code ?? ''} ${e.message}`)) throw err;
    }
  }
  throw new Error(`${subject} never became reachable`);
}

describe('failover over a NATS cluster', () => {
  it('node A dies: broker 1 moves to node B and announces its interest again; NATS clients on C reach it', async () => {
    const hub = await hub3();
    const [A, B, C] = hub.nodes;
    const b1 = await broker({ leafnodes: { remotes: [{ urls: [A!.leafUrl, B!.leafUrl] }], reconnectDelayMs: 10 } });
    await hub.leafs(A!, 1);
    const up = b1.broker.leafnodes!.uplinks[0]!;
    await until(() => up.state === 'connected', 'broker 1 on node A');
    const client = await bus(b1.url);
    const got: string[] = [];
    client.subscribe('fx.>', (m) => void got.push(m.string()));
    client.subscribe('fx.ping', (m) => m.respond('pong'));
    client.subscribe('fx.jobs', () => undefined, { queue: 'w' });
    await client.flush();
    const n = await nats(C!.clientPort);
    await reachable(n, 'fx.ping');
    n.publish('fx.tick', 'before');
    await n.request('fx.ping', '', { timeout: 5000 });
    await until(() => got.includes('before'), 'the first tick');

    await A!.kill();
    await until(() => up.state === 'connected' && up.url === B!.leafUrl, 'broker 1 on node B');
    const leafs = await hub.leafs(B!, 1);
    // Everything announced again: the three subscriptions (plain, plain, queue) and the $LDS subject.
    expect(leafs[0]!.subscriptions).toBe(4);
    expect(up.stats.connects).toBe(2);
    await reachable(n, 'fx.ping');
    n.publish('fx.tick', 'after');
    await n.request('fx.ping', '', { timeout: 5000 });
    await until(() => got.includes('after'), 'the tick after the move');
  });

  it('broker 1 (a process) dies: its client, given only its address, moves to broker 2, resubscribes, keeps receiving, and is told of the gap', async () => {
    const hub = await hub3();
    const [A, B, C] = hub.nodes;
    const p1 = await freePort();
    const p2 = await freePort();
    const dir = fs.mkdtempSync(path.join(hub.dir, 'b1-'));
    const cfg = path.join(dir, 'b1.json');
    fs.writeFileSync(cfg, JSON.stringify({ cluster: { peers: [`tcp://127.0.0.1:${p2}`] }, leafnodes: { remotes: [{ urls: [A!.leafUrl] }] } }));
    const child: ChildProcess = spawn(
      process.execPath,
      [dist('bin/hopbus.js'), 'broker', '--port', String(p1), '--no-nats', '--log-level', 'warn', '--config', cfg],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    cleanup.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    });
    await until(() => /^hopbus broker ready: /m.test(stderr), `broker 1 ready (stderr: ${stderr})`);
    const b2 = await broker({ port: p2, cluster: { peers: [`tcp://127.0.0.1:${p1}`] }, leafnodes: { remotes: [{ urls: [B!.leafUrl] }] } });
    await hub.leafs(A!, 1);
    await hub.leafs(B!, 1);

    const client = await bus(`tcp://127.0.0.1:${p1}`, { reconnectDelayMs: 10, maxReconnectDelayMs: 50, reconnectJitterMs: 0 });
    expect(client.info!.connectUrls).toEqual([`tcp://127.0.0.1:${p2}`]);
    const got: Msg[] = [];
    const gaps: GapEvent[] = [];
    client.on('gap', (g) => void gaps.push(g));
    client.subscribe('px.>', (m) => void got.push(m));
    client.subscribe('px.ping', (m) => m.respond(m.string()));
    await client.flush();
    const n = await nats(C!.clientPort);
    await reachable(n, 'px.ping');
    n.publish('px.EURUSD', '1');
    await n.request('px.ping', '', { timeout: 5000 });
    await until(() => got.some((m) => m.string() === '1'), 'the first price through broker 1');

    child.kill('SIGKILL');
    await exited;
    await until(() => gaps.length === 1, "the client's gap event");
    expect(gaps[0]!.moved).toBe(true);
    expect(gaps[0]!.toServerId).toBe(b2.broker.serverId);
    expect(gaps[0]!.server).toBe(`tcp://127.0.0.1:${p2}`);
    expect(gaps[0]!.subscriptions).toBe(2);
    expect(client.stats.gaps).toBe(1);
    // Resubscribed on broker 2, which announced it to node B: node C reaches the client again.
    await reachable(n, 'px.ping');
    n.publish('px.EURUSD', '2');
    await n.request('px.ping', '', { timeout: 5000 });
    await until(() => got.some((m) => m.string() === '2'), 'the price after the move, through broker 2');
  });

  it("a backup broker's journal records what the cluster publishes on its subjects, with no local subscriber: the gap can be filled", async () => {
    const hub = await hub3();
    const [A, , C] = hub.nodes;
    const dir = fs.mkdtempSync(path.join(hub.dir, 'journal-'));
    const b = await broker({ journal: { dir, subjects: ['px.>'] }, leafnodes: { remotes: [{ urls: [A!.leafUrl] }] } });
    await hub.leafs(A!, 1);
    expect([...b.broker.leafnodes!.uplinks[0]!.interest.keys()]).toEqual(['px.>']);
    const n = await nats(C!.clientPort);
    // Once node C knows the broker's interest in px.>, a publish there reaches the journal.
    for (let i = 0; b.broker.recorder!.stats().matched === 0 && i < 500; i++) {
      n.publish('px.EURUSD', String(i));
      await n.flush(); // a round trip to node C per attempt, no timer
    }
    await until(() => b.broker.recorder!.stats().matched > 0, 'a cluster message in the journal');
  });

  it("the NATS listener's INFO names the nats:// peers in connect_urls", async () => {
    const b = await broker({ natsPort: 0, cluster: { peers: ['nats://10.1.2.3:4222', 'tcp://10.1.2.3:7400'] } });
    const info = await new Promise<string>((resolve, reject) => {
      const s = net.connect(b.broker.natsPort!, '127.0.0.1');
      let text = '';
      s.on('data', (d) => {
        text += d.toString('latin1');
        if (text.includes('\r\n')) {
          s.destroy();
          resolve(text);
        }
      });
      s.on('error', reject);
    });
    const json = JSON.parse(info.slice(5, info.indexOf('\r\n'))) as { connect_urls?: string[] };
    expect(json.connect_urls).toEqual(['10.1.2.3:4222']);
    const c = await bus(b.url, { reconnect: false });
    expect(c.info!.connectUrls).toEqual(['tcp://10.1.2.3:7400']);
  });
});
