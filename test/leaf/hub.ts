/**
 * Real nats-server processes for the leafnode suites: a cluster of N nodes with routes
 * between them, each with a client port, a monitoring port and a leafnode port, all on
 * 127.0.0.1 on free ports (bound on port 0 first, then written into a config file in a
 * mkdtemp directory). Every process is killed by stop(), on failure too (the suites
 * call it in afterAll/afterEach).
 *
 * Readiness is read, not slept for: a node is up when its monitoring port answers, the
 * cluster is formed when every node's /routez lists the others, and a leaf is attached
 * when the hub's /leafz lists it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { eventually } from '../kit/index.js';

/** null when nats-server can run here, else why not. */
export function natsServerProblem(): string | null {
  const r = spawnSync('nats-server', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return `nats-server is not installed (apt-get install nats-server): ${r.error?.message ?? r.stderr}`;
  return null;
}

/** A free TCP port on 127.0.0.1 (bound on 0, read, released). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export interface HubNode {
  readonly name: string;
  readonly clientPort: number;
  readonly httpPort: number;
  readonly leafPort: number;
  readonly routePort: number;
  /** nats://127.0.0.1:clientPort */
  readonly clientUrl: string;
  /** nats://127.0.0.1:leafPort */
  readonly leafUrl: string;
  proc: ChildProcess | null;
  /** GET a monitoring endpoint (/varz, /routez, /leafz, /subsz) as JSON. */
  monitor(endpoint: string): Promise<Record<string, unknown>>;
  /** Kills the process (SIGKILL: a node that dies) and waits for its exit. */
  kill(): Promise<void>;
}

export interface HubOptions {
  /** Nodes, named A, B, C, ... (default 3). */
  nodes?: number;
  /** The leafnode authorization every node requires: { user, password }. */
  leafAuth?: { user: string; password: string };
  /** Config text added to every node's file (e.g. a top-level `authorization { ... }`, which leaf connections meet too when the leafnode port has none). */
  extra?: string;
  /** Config text added inside every node's `leafnodes { ... }` block (e.g. its `tls { ... }`). */
  leafExtra?: string;
}

export interface Hub {
  readonly nodes: HubNode[];
  readonly dir: string;
  /** Waits until every node's /routez lists every other node. */
  formed(): Promise<void>;
  /** Waits until node `n` lists `count` leafnode connections in /leafz (at least, or exactly with `exact`). */
  leafs(n: HubNode, count: number, exact?: boolean): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

export async function startHub(o: HubOptions = {}): Promise<Hub> {
  const count = o.nodes ?? 3;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-hub-'));
  const ports: { client: number; http: number; leaf: number; route: number }[] = [];
  for (let i = 0; i < count; i++) ports.push({ client: await freePort(), http: await freePort(), leaf: await freePort(), route: await freePort() });
  const nodes: HubNode[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const name = String.fromCharCode(65 + i);
      const p = ports[i]!;
      const routes = ports.filter((_, j) => j !== i).map((q) => `nats-route://127.0.0.1:${q.route}`);
      const auth = o.leafAuth ? `\n  authorization { user: "${o.leafAuth.user}", password: "${o.leafAuth.password}" }` : '';
      const conf = [
        `server_name: ${name}`,
        `listen: 127.0.0.1:${p.client}`,
        `http: 127.0.0.1:${p.http}`,
        `cluster {\n  name: hub\n  listen: 127.0.0.1:${p.route}\n  routes: [${routes.join(', ')}]\n}`,
        `leafnodes {\n  listen: 127.0.0.1:${p.leaf}${auth}${o.leafExtra ? `\n  ${o.leafExtra}` : ''}\n}`,
        o.extra ?? '',
        '',
      ].join('\n');
      const file = path.join(dir, `${name}.conf`);
      fs.writeFileSync(file, conf);
      nodes.push(makeNode(name, p, file, dir));
    }
    await Promise.all(
      nodes.map((n) =>
        eventually(
          () => n.monitor('/varz').catch(() => null),
          (v) => v !== null,
          `nats-server ${n.name} serving /varz`,
        ),
      ),
    );
  } catch (err) {
    await Promise.all(nodes.map((n) => n.kill()));
    throw err;
  }
  return {
    nodes,
    dir,
    async formed() {
      for (const n of nodes) {
        if (n.proc === null) continue;
        const live = nodes.filter((m) => m !== n && m.proc !== null).length;
        await eventually(
          () => n.monitor('/routez'),
          (v) => (v.num_routes as number) >= live,
          `nats-server ${n.name} routed to the ${live} other nodes`,
        );
      }
    },
    async leafs(n, want, exact = false) {
      const v = await eventually(
        () => n.monitor('/leafz'),
        (v) => (exact ? (v.leafnodes as number) === want : (v.leafnodes as number) >= want),
        `nats-server ${n.name} with ${exact ? '' : 'at least '}${want} leafnode connections`,
      );
      return (v.leafs as Record<string, unknown>[] | undefined) ?? [];
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.kill()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function makeNode(name: string, p: { client: number; http: number; leaf: number; route: number }, file: string, dir: string): HubNode {
  const log = fs.openSync(path.join(dir, `${name}.log`), 'a');
  const proc = spawn('nats-server', ['-c', file], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const node: HubNode = {
    name,
    clientPort: p.client,
    httpPort: p.http,
    leafPort: p.leaf,
    routePort: p.route,
    clientUrl: `nats://127.0.0.1:${p.client}`,
    leafUrl: `nats://127.0.0.1:${p.leaf}`,
    proc,
    async monitor(endpoint) {
      const res = await fetch(`http://127.0.0.1:${p.http}${endpoint}`);
      return (await res.json()) as Record<string, unknown>;
    },
    async kill() {
      const pr = node.proc;
      if (pr === null) return;
      node.proc = null;
      if (pr.exitCode !== null || pr.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => pr.once('exit', () => resolve()));
      pr.kill('SIGKILL');
      await exited;
    },
  };
  return node;
}
