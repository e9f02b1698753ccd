/**
 * hopbus in the peer benchmark: its broker as a process of its own, and the client
 * adapter every hopbus target shares. A transport's target is a small file beside
 * this one (hopbus-tcp.ts, hopbus-unix.ts) that names the broker listener it needs
 * and the endpoint its clients dial.
 *
 * The broker runs as `node dist/bin/hopbus.js broker --port 0 --no-nats --log-level warn` plus
 * each registered listener's flags, and prints "hopbus broker ready: <urls>".
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { connectBroker, type Bus } from '../../../client/index.js';
import { distRoot, startNode } from '../../procs.js';
import type { BusClient, Endpoint, OnMessage, Server, Target } from '../target.js';

/** A broker listener besides TCP: its command-line flags and the endpoint it gives clients. */
export interface BrokerListener {
  args(tmpDir: string): string[];
  endpoint(tmpDir: string): string;
}

const listeners = new Map<string, BrokerListener>();

/** Adds a listener to the broker the bench starts (a transport's target file calls this). */
export function registerBrokerListener(transport: string, l: BrokerListener): void {
  listeners.set(transport, l);
}

export function hopbusVersion(): string {
  const pkg = path.join(distRoot, '..', 'package.json');
  let commit = '';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: path.dirname(pkg), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    /* not a git checkout */
  }
  const { version } = JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string };
  return `hopbus ${version}${commit ? ` (${commit})` : ''}`;
}

export const hopbusBroker: Server = {
  name: 'hopbus-broker',
  packages: [],
  async start(tmpDir) {
    // No NATS listener here: hopbus-nats has a broker of its own (hopbus-nats.ts).
    const args = ['broker', '--port', '0', '--no-nats', '--log-level', 'warn'];
    for (const l of listeners.values()) args.push(...l.args(tmpDir));
    const proc = await startNode('bin/hopbus.js', args, /hopbus broker ready:/);
    const endpoints: Endpoint = { tcp: /tcp:\/\/\S+/.exec(proc.ready)![0] };
    for (const [t, l] of listeners) endpoints[t] = l.endpoint(tmpDir);
    const ws = /ws:\/\/\S+/.exec(proc.ready);
    if (ws) endpoints.ws = ws[0];
    return { endpoints, version: hopbusVersion(), command: `node dist/bin/hopbus.js ${args.join(' ')}`, stop: proc.stop };
  },
};

/** The settings every hopbus target uses: the client's defaults, which are its low-latency ones. */
export const HOPBUS_SETTINGS = [
  'client defaults: no timers on the send path (an idle link writes at once; writes queued behind a busy one leave together when it completes)',
  'payloads passed as Uint8Array (raw, no codec)',
  'timestamps off, verbose off',
];

export class HopbusClient implements BusClient {
  constructor(private readonly bus: Bus) {}

  publish(subject: string, payload: Uint8Array): void {
    this.bus.publish(subject, payload);
  }

  async subscribe(pattern: string, onMessage: OnMessage): Promise<void> {
    this.bus.subscribe(pattern, (msg) => onMessage(msg.data));
    await this.bus.flush();
  }

  close(): Promise<void> {
    return this.bus.close();
  }
}

/** A hopbus target over the broker listener `transport` ('tcp' is always there). */
export function hopbusTarget(transport: string, settings: readonly string[] = []): Target {
  return {
    name: `hopbus-${transport}`,
    kind: 'hopbus',
    server: hopbusBroker.name,
    client: hopbusVersion(),
    settings: [`transport: ${transport}`, ...HOPBUS_SETTINGS, ...settings],
    wildcards: true,
    duplex: true,
    endpoint: (s) => ({ url: s.endpoints[transport]! }),
    connect: async (ep, name) => new HopbusClient(await connectBroker(String(ep.url), { name })),
  };
}
