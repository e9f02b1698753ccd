/**
 * broker/leaf/: hopbus as a leafnode of a NATS cluster (docs/LEAFNODE.md). Local
 * clients keep hopbus's paths; what crosses hosts travels over the cluster, and only
 * what remote interest asks for crosses.
 *
 *   config.ts      the `leafnodes` option, validated
 *   secrets.ts     what a remote's `tls` and `credentials` name, read once at start
 *   bounds.ts      `import`/`export` patterns: what may cross, and `$` subjects kept home
 *   parser.ts      the hub's side of the leafnode protocol (INFO, LS+/LS-, LMSG/HMSG, ...)
 *   connection.ts  one connection to a hub: handshake, interest both ways, messages both ways
 *   uplink.ts      one remote: URL rotation, back-off, local interest to announce
 *   index.ts       the broker's uplinks together (this file): the router's interest
 *                  listener, loop decisions, monitoring
 *
 * Must not import broker.ts or the sessions; it gets a SessionHost like a session does.
 */
import { randomBytes } from 'node:crypto';
import type { SessionHost } from '../host.js';
import type { InterestListener } from '../router.js';
import type { Subscription } from '../subscription.js';
import { LDS_PREFIX, type LeafConnection } from './connection.js';
import type { LeafnodesOptions } from './config.js';
import type { ResolvedLeafnodes } from './secrets.js';
import { Uplink, type Dialer, type UplinkGroup } from './uplink.js';

export { leafnodesOptionsProblem, type LeafnodesOptions, type LeafRemoteOptions, type LeafTlsOptions } from './config.js';
export type { Uplink } from './uplink.js';

/** The broker's uplinks (see the top of this file). */
export class Leafnodes implements InterestListener, UplinkGroup {
  readonly uplinks: Uplink[];
  /** This broker's loop-detection subject, announced on every uplink. */
  readonly lds = `${LDS_PREFIX}${randomBytes(11).toString('hex')}`;
  readonly reconnectDelayMs: number;
  readonly maxReconnectDelayMs: number;
  readonly loopDelayMs: number;
  private seq = 0;

  constructor(
    private readonly host: SessionHost,
    /** Resolved (broker/config.ts): the remotes' files are read already; else they are read here. */
    o: LeafnodesOptions | ResolvedLeafnodes,
    dial?: Dialer,
  ) {
    this.reconnectDelayMs = o.reconnectDelayMs ?? 100;
    this.maxReconnectDelayMs = Math.max(this.reconnectDelayMs, o.maxReconnectDelayMs ?? 5000);
    this.loopDelayMs = o.loopDelayMs ?? 30_000;
    const secrets = 'secrets' in o ? o.secrets : undefined;
    this.uplinks = o.remotes.map((r, i) => new Uplink(i, r, host, this, dial, secrets?.[i]));
    // The journal's subjects are standing interest: what the cluster publishes on them is
    // recorded here whether or not a local client subscribes (it fills a failover's gap).
    for (const pattern of host.options.journal?.subjects ?? []) for (const u of this.uplinks) u.interestChanged({ pattern, queue: '' }, 1);
  }

  start(): void {
    for (const u of this.uplinks) u.start();
  }

  interestChanged(sub: Subscription, delta: 1 | -1): void {
    const ups = this.uplinks;
    for (let i = 0; i < ups.length; i++) ups[i]!.interestChanged(sub, delta);
  }

  nextSeq(): number {
    return ++this.seq;
  }

  /**
   * This broker's $LDS came back through `c`: it reaches the same cluster through another
   * uplink. The younger connection gives way (established later, or not yet, or the later
   * remote when both are new); the other keeps serving. With no other live uplink, and none
   * standing by (whose withdrawn interest this may be the echo of), the loop is elsewhere
   * (through another leaf of the cluster), and `c` gives way as nats-server's leafs do.
   */
  loop(u: Uplink, c: LeafConnection): void {
    const rank = (x: Uplink) => {
      const k = x.conn!;
      return [k.isOpen ? 0 : 1, k.isOpen ? k.seq : 0, x.index];
    };
    const mine = rank(u);
    const older = this.uplinks.some((o) => {
      if (o === u || o.conn === null || !o.conn.open) return false;
      const r = rank(o);
      return r[0]! < mine[0]! || (r[0] === mine[0] && (r[1]! < mine[1]! || (r[1] === mine[1] && r[2]! < mine[2]!)));
    });
    const others = this.uplinks.some((o) => o !== u && o.conn !== null && o.conn.open);
    // No other live uplink, but one standing by for a loop: this is the echo of the interest it withdrew.
    const echo = !others && this.uplinks.some((o) => o !== u && o.state === 'standby');
    if (older || (!others && !echo)) {
      this.host.log.warn({ leaf: u.name, url: c.url, delayMs: this.loopDelayMs }, 'leafnode loop detected: this remote stands by');
      // Standing by from now on, before its close completes: the others' late loop notices are echoes of it.
      u.state = 'standby';
      c.loopDetected(this.loopDelayMs);
    }
  }

  lost(u: Uplink): void {
    for (const o of this.uplinks) if (o !== u) o.wake();
  }

  metrics() {
    return this.uplinks.map((u) => u.metrics());
  }

  async close(graceMs = 2000): Promise<void> {
    const closing = Promise.all(this.uplinks.map((u) => u.close()));
    const force = setTimeout(() => {
      for (const u of this.uplinks) u.conn?.link.destroy();
    }, graceMs);
    await closing;
    clearTimeout(force);
  }
}
