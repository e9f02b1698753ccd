/**
 * npm run bench:leaf: the cost of crossing hosts through a NATS cluster, in one run.
 *
 *   cross-hopbus  hopbus client -> broker 1 -> leaf -> nats-server A -> route -> B -> leaf -> broker 2 -> hopbus client
 *   cross-nats    nats.js -> nats-server A -> route -> nats-server B -> nats.js (the same two nodes: the floor of the path)
 *   local-leafed  hopbus client -> broker 1 -> hopbus client, broker 1 leafed (its uplink connected)
 *   local-alone   the same on a broker with no leafnodes: local-leafed / local-alone is what the uplink costs local traffic
 *
 * Latency: request/reply round trips, one at a time (p50/p99/p99.9 in µs). Throughput:
 * `--count` messages published back to back, timed until the last one is received.
 * It starts a 2-node nats-server cluster (routes and leafnode ports) on loopback on free
 * ports with config files in a temp directory, and stops everything it started.
 *
 *   node dist/bench/leaf.js [--runs N] [--count N] [--quick]
 *
 * Run it alone on the machine: other load shows up in every figure.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connect as natsConnect } from '@nats-io/transport-node';
import { startBroker, type StartedBroker } from '../broker/index.js';
import { connectBroker, type Bus } from '../client/index.js';
import { startProcess, stopAll } from './procs.js';
import { fileURLToPath } from 'node:url';
import { histogram, median, medianOf, percentiles, type Percentiles } from './stats.js';

interface Row {
  case: string;
  latency: Percentiles;
  msgsPerSec: number;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

interface Node {
  client: number;
  leaf: number;
  http: number;
}

/** Two nats-server nodes routed to each other, each with a leafnode port. */
async function startCluster(dir: string): Promise<Node[]> {
  const nodes: Node[] = [];
  const routes: number[] = [];
  for (let i = 0; i < 2; i++) {
    nodes.push({ client: await freePort(), leaf: await freePort(), http: await freePort() });
    routes.push(await freePort());
  }
  for (let i = 0; i < 2; i++) {
    const n = nodes[i]!;
    const conf = path.join(dir, `n${i}.conf`);
    fs.writeFileSync(
      conf,
      `server_name: n${i}\nlisten: 127.0.0.1:${n.client}\nhttp: 127.0.0.1:${n.http}\n` +
        `cluster { name: bench, listen: 127.0.0.1:${routes[i]}, routes: [nats-route://127.0.0.1:${routes[1 - i]}] }\n` +
        `leafnodes { listen: 127.0.0.1:${n.leaf} }\n`,
    );
    await startProcess('nats-server', ['-c', conf], /Server is ready/, { watch: 'both' });
  }
  for (const n of nodes) {
    for (;;) {
      const r = (await (await fetch(`http://127.0.0.1:${n.http}/routez`)).json()) as { num_routes: number };
      if (r.num_routes >= 1) break;
      await new Promise((res) => setTimeout(res, 20));
    }
  }
  return nodes;
}

/** Round trips of `request`, one at a time, into a histogram (ns). */
async function roundTrips(count: number, request: () => Promise<unknown>): Promise<Percentiles> {
  const h = histogram();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await request();
    h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1e6)));
  }
  return percentiles(h);
}

/** `count` messages published back to back, until the last is received: messages/s. */
async function flood(count: number, publish: (i: number) => void, received: () => number): Promise<number> {
  const start = received();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) publish(i);
  while (received() - start < count) await new Promise((r) => setImmediate(r));
  return Math.round(count / ((performance.now() - t0) / 1000));
}

async function hopbusPair(pubBroker: StartedBroker, subBroker: StartedBroker, name: string, count: number): Promise<Row> {
  const sub: Bus = await connectBroker(subBroker.url);
  const pub: Bus = await connectBroker(pubBroker.url);
  let got = 0;
  sub.subscribe(`${name}.data`, () => void got++);
  sub.subscribe(`${name}.echo`, (m) => m.respond(m.data));
  await sub.flush();
  // Interest has crossed once a request is answered.
  for (;;) {
    try {
      await pub.request(`${name}.echo`, 'x', { timeoutMs: 2000 });
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const payload = Buffer.alloc(64);
  const latency = await roundTrips(Math.min(count, 10_000), () => pub.request(`${name}.echo`, payload, { timeoutMs: 5000 }));
  const msgsPerSec = await flood(
    count,
    () => pub.publish(`${name}.data`, payload),
    () => got,
  );
  await pub.close();
  await sub.close();
  return { case: name, latency, msgsPerSec };
}

async function natsPair(a: Node, b: Node, count: number): Promise<Row> {
  const sub = await natsConnect({ servers: `127.0.0.1:${b.client}` });
  const pub = await natsConnect({ servers: `127.0.0.1:${a.client}` });
  let got = 0;
  sub.subscribe('cross-nats.data', { callback: () => void got++ });
  sub.subscribe('cross-nats.echo', { callback: (_e, m) => void m.respond(m.data) });
  await sub.flush();
  for (;;) {
    try {
      await pub.request('cross-nats.echo', 'x', { timeout: 2000 });
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const payload = Buffer.alloc(64);
  const latency = await roundTrips(Math.min(count, 10_000), () => pub.request('cross-nats.echo', payload, { timeout: 5000 }));
  const msgsPerSec = await flood(
    count,
    () => pub.publish('cross-nats.data', payload),
    () => got,
  );
  await pub.close();
  await sub.close();
  return { case: 'cross-nats', latency, msgsPerSec };
}

const HELP = `Usage: node dist/bench/leaf.js [options]   (npm run bench:leaf -- [options])

Options:
  --runs N     runs of every case, interleaved; medians reported with min..max (default 3)
  --count N    messages per throughput case (default 100000)
  --quick      a smoke check: 1 run of 200 messages (not figures)
  -h, --help   show this help

Run it alone on the machine: other load shows up in every figure.`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { count: { type: 'string' }, runs: { type: 'string' }, quick: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const count = values.quick ? 200 : Number(values.count ?? 100_000);
  const runs = values.quick ? 1 : Number(values.runs ?? 3);
  if (!Number.isInteger(count) || count < 1) throw new Error('--count must be a positive integer');
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
  const loadBefore = os.loadavg();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-bench-leaf-'));
  const brokers: StartedBroker[] = [];
  try {
    const [a, b] = await startCluster(dir);
    const opts = { port: 0, logLevel: 'silent', maxPending: 256 * 1024 * 1024 } as const;
    const b1 = await startBroker({ ...opts, leafnodes: { remotes: [{ urls: [`nats://127.0.0.1:${a!.leaf}`], maxPending: 64 * 1024 * 1024 }] } });
    const b2 = await startBroker({ ...opts, leafnodes: { remotes: [{ urls: [`nats://127.0.0.1:${b!.leaf}`], maxPending: 64 * 1024 * 1024 }] } });
    const alone = await startBroker(opts);
    brokers.push(b1, b2, alone);
    const cases: [string, () => Promise<Row>][] = [
      ['cross-hopbus', () => hopbusPair(b1, b2, 'cross-hopbus', count)],
      ['cross-nats', () => natsPair(a!, b!, count)],
      ['local-leafed', () => hopbusPair(b1, b1, 'local-leafed', count)],
      ['local-alone', () => hopbusPair(alone, alone, 'local-alone', count)],
    ];
    const rows = new Map<string, Row[]>(cases.map(([n]) => [n, []]));
    for (let r = 0; r < runs; r++) for (const [n, run] of cases) rows.get(n)!.push(await run());
    const dropped = b1.broker.metrics().leafnodes[0]!.dropped;
    const med = (n: string) => medianOf(rows.get(n)!.map((x) => x.latency));
    const rate = (n: string) => rows.get(n)!.map((x) => x.msgsPerSec);
    const lines: string[] = [
      `# bench:leaf, ${new Date().toISOString()}`,
      '',
      `${os.cpus().length} x ${os.cpus()[0]?.model}, Node ${process.version}; ${runs} run(s) of every case, interleaved; ${count.toLocaleString('en-US')} messages per throughput case${values.quick ? ' (--quick: a smoke check, not figures)' : ''}.`,
      `Latency: request/reply round trips one at a time, µs; medians of the runs, min..max of p50 and p99. Load average before: ${loadBefore.map((x) => x.toFixed(2)).join(' ')}.`,
      '',
      '| case | p50 µs | p99 µs | p99.9 µs | p50 spread | p99 spread | msgs/s (median) | msgs/s spread |',
      '|---|---:|---:|---:|---|---|---:|---|',
    ];
    for (const [n] of cases) {
      const m = med(n);
      const t = rate(n);
      lines.push(
        `| ${n} | ${m.p50} | ${m.p99} | ${m.p999} | ${m.spread.p50![0]}..${m.spread.p50![1]} | ${m.spread.p99![0]}..${m.spread.p99![1]} | ${median(t).toLocaleString('en-US')} | ${Math.min(...t).toLocaleString('en-US')}..${Math.max(...t).toLocaleString('en-US')} |`,
      );
    }
    const ratio = (x: string, y: string, k: 'p50' | 'p99') => (med(x)[k] / med(y)[k]).toFixed(3);
    lines.push(
      '',
      `local hop with the uplink connected / without: ${ratio('local-leafed', 'local-alone', 'p50')}x at p50, ${ratio('local-leafed', 'local-alone', 'p99')}x at p99; throughput ${(median(rate('local-leafed')) / median(rate('local-alone'))).toFixed(3)}x`,
      `cross-hopbus / cross-nats: ${ratio('cross-hopbus', 'cross-nats', 'p50')}x at p50, ${ratio('cross-hopbus', 'cross-nats', 'p99')}x at p99; throughput ${(median(rate('cross-hopbus')) / median(rate('cross-nats'))).toFixed(3)}x`,
      `uplink drops: ${dropped}; load average after: ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );
    console.log(lines.join('\n'));
    if (!values.quick) {
      const out = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results');
      fs.mkdirSync(out, { recursive: true });
      fs.writeFileSync(path.join(out, 'leaf.md'), lines.join('\n') + '\n');
      fs.writeFileSync(path.join(out, 'leaf.json'), JSON.stringify(Object.fromEntries(rows), null, 2) + '\n');
    }
  } finally {
    await Promise.all(brokers.map((x) => x.close()));
    await stopAll();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch(async (err: unknown) => {
  console.error(`bench:leaf: ${(err as Error).stack ?? String(err)}`);
  await stopAll();
  process.exit(1);
});
