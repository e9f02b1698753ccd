/**
 * Two "hosts" on one wire: network namespaces A and B joined by a veth pair, each
 * with an address, its loopback up and a multicast route (239.0.0.0/8) on the veth.
 * Peers run inside them as child processes (`ip netns exec NS node ...`). Names and
 * addresses are unique per run; destroy() removes everything (deleting a namespace
 * deletes its end of the veth pair, its routes and its nftables rules), and is
 * safe to call twice or after a partial create(). Used by test/multicast/hosts.test.ts
 * and bench/multicast.ts.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { startNode, type Proc } from './procs.js';

/** The peer script, relative to distRoot: dist/ when this runs compiled, the repo root under vitest. */
const PEER = import.meta.url.includes('/dist/') ? 'bench/mcast-peer.js' : 'dist/bench/mcast-peer.js';

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

export class TwoHosts {
  readonly a: string;
  readonly b: string;
  readonly addrA: string;
  readonly addrB: string;
  private readonly made: string[] = [];
  private readonly procs: Proc[] = [];

  constructor() {
    TwoHosts.sweepStale();
    const tag = `${process.pid.toString(36)}-${randomBytes(2).toString('hex')}`;
    this.a = `hbA${tag}`;
    this.b = `hbB${tag}`;
    const n = 1 + (randomBytes(1)[0]! % 250);
    const m = 1 + (process.pid % 250);
    this.addrA = `10.${200 + (n % 50)}.${m}.1`;
    this.addrB = `10.${200 + (n % 50)}.${m}.2`;
  }

  /** Removes namespaces left by a run that was killed before its cleanup (its process is gone). */
  static sweepStale(): void {
    let list = '';
    try {
      list = execFileSync('ip', ['netns', 'list'], { stdio: 'pipe' }).toString();
    } catch {
      return;
    }
    for (const line of list.split('\n')) {
      const m = /^(hb[AB]([0-9a-z]+)-[0-9a-f]{4})\b/.exec(line);
      if (m === null) continue;
      const pid = parseInt(m[2]!, 36);
      let alive = true;
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
      if (!alive) {
        try {
          ip('netns', 'del', m[1]!);
        } catch {
          /* raced with someone else */
        }
      }
    }
  }

  create(): void {
    ip('netns', 'add', this.a);
    this.made.push(this.a);
    ip('netns', 'add', this.b);
    this.made.push(this.b);
    ip('link', 'add', 'vA', 'netns', this.a, 'type', 'veth', 'peer', 'name', 'vB', 'netns', this.b);
    for (const [ns, dev, addr] of [
      [this.a, 'vA', this.addrA],
      [this.b, 'vB', this.addrB],
    ] as const) {
      ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev);
      ip('-n', ns, 'link', 'set', dev, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      // Multicast on the namespace's own loopback too (peers with iface 127.0.0.1).
      ip('-n', ns, 'link', 'set', 'lo', 'multicast', 'on');
      ip('-n', ns, 'route', 'add', '239.0.0.0/8', 'dev', dev);
    }
  }

  /** Runs an nft command inside a namespace. */
  nft(ns: string, ...args: string[]): void {
    execFileSync('ip', ['netns', 'exec', ns, 'nft', ...args], { stdio: 'pipe' });
  }

  /** Drops `percent`% of UDP datagrams to `port` at random, on the `hook` (input or output) of a namespace. */
  randomLoss(ns: string, hook: 'input' | 'output', port: number, percent: number): void {
    this.nft(ns, 'add', 'table', 'inet', 'hbloss');
    this.nft(ns, 'add', 'chain', 'inet', 'hbloss', 'c', `{ type filter hook ${hook} priority 0; }`);
    this.nft(ns, 'add', 'rule', 'inet', 'hbloss', 'c', 'udp', 'dport', String(port), 'numgen', 'random', 'mod', '100', '<', String(percent), 'counter', 'drop');
  }

  /** The packets the loss rule dropped so far. */
  dropped(ns: string): number {
    const out = execFileSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', 'inet', 'hbloss'], { stdio: 'pipe' }).toString();
    const m = /counter packets (\d+)/.exec(out);
    return m ? Number(m[1]) : 0;
  }

  /** Starts a multicast peer (bench/mcast-peer) in a namespace. */
  async peer(ns: string, args: string[]): Promise<Peer> {
    const p = await startNode(PEER, args, /^READY/, 15_000, { stdin: true, wrap: ['ip', 'netns', 'exec', ns] });
    this.procs.push(p);
    return new Peer(p);
  }

  async destroy(): Promise<void> {
    await Promise.all(this.procs.splice(0).map((p) => p.stop()));
    for (const ns of this.made.splice(0).reverse()) {
      try {
        ip('netns', 'del', ns);
      } catch {
        /* already gone */
      }
    }
  }
}

/** A peer process: send it a command, wait for the line it answers. */
export class Peer {
  private out = '';
  constructor(readonly proc: Proc) {
    (proc.child.stdout as Readable).on('data', (d: Buffer) => (this.out += d.toString()));
    // A peer that exited on purpose (a source that dies) makes a later command an EPIPE: not an error here.
    (proc.child.stdin as Writable | null)?.on('error', () => {});
  }

  get ready(): string {
    return this.proc.ready;
  }

  send(cmd: string): void {
    const child = this.proc.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    (child.stdin as Writable).write(`${cmd}\n`);
  }

  /** Waits for a line starting with `prefix` (after the ones already consumed) and returns its JSON. */
  async line<T = Record<string, unknown>>(prefix: string, timeoutMs = 20_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const i = this.out.indexOf(`${prefix} `);
      if (i >= 0) {
        const nl = this.out.indexOf('\n', i);
        if (nl >= 0) {
          const text = this.out.slice(i + prefix.length + 1, nl);
          this.out = this.out.slice(nl + 1);
          return JSON.parse(text) as T;
        }
      }
      if (Date.now() > end) throw new Error(`no "${prefix}" line within ${timeoutMs} ms; output so far: ${this.out.slice(-500)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stats<T = RecvStats>(): Promise<T> {
    this.send('stats');
    return this.line<T>('STATS');
  }
}

export interface RecvStats {
  received: number;
  distinct: number;
  duplicates: number;
  reordered: number;
  maxSeen: number;
  lossEvents: number;
  lostReported: number;
  gone: string[];
  naksSent: number;
  gapsRepaired: number;
  lostDatagrams: number;
  lostMessages: number;
  /** Times a source dropped this receiver from its flow-control window. */
  slow: number;
}
