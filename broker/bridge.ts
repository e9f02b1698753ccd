/**
 * The broker's multicast bridge (broker option `multicast`): messages published to
 * the broker over any transport whose subject matches `export` go out on their
 * multicast channel; messages heard on the channels that match `import` are routed
 * to the broker's own subscribers, exactly like a PUB from a connection.
 *
 * No loops and no duplicates, by construction:
 *  - what the bridge imports is routed to local sessions only (Router.routeImported),
 *    never exported again, so a message crosses the bridge at most once;
 *  - the bridge's endpoint drops datagrams carrying its own session id (the
 *    kernel loops multicast back to the sending host), so it never imports what it
 *    exported;
 *  - two brokers bridging the same channels: each imports the other's exports and
 *    exports only what its own connections published.
 *
 * Which groups it joins: the channels that can carry a subject of an `import`
 * pattern (topics/channels.ts channelsFor), once, at start.
 *
 * Threading: the broker's thread. Must not import broker.ts (config.ts imports this
 * file for its option check): it sees the broker as `BridgeHost`.
 */
import { ChannelMap } from '../topics/channels.js';
import { SubjectTree, isValidPattern, isValidSubject } from '../topics/index.js';
import { FLAG_REQUEST, FLAG_TS, MsgView, Op } from '../transports/protocol/index.js';
import { SubjectCache, copyBytes } from '../transports/intern.js';
import { resolveChannels, type ChannelSpec } from '../transports/multicast/config.js';
import {
  ENDPOINT_DEFAULTS,
  MulticastEndpoint,
  type EndpointHandler,
  type EndpointOptions,
  type EndpointStats,
  type GapEvent,
  type SourceEvent,
  type SourceRef,
} from '../transports/multicast/endpoint.js';
import type { Logger } from 'pino';

export interface MulticastBridgeOptions extends ChannelSpec, Partial<Omit<EndpointOptions, 'receiveOwn' | 'testDrop' | 'iface'>> {
  /** udp://group:port?iface=ADDR: channel 0 and the interface. */
  url: string;
  /** Interface address (overrides ?iface=; default 127.0.0.1). */
  iface?: string;
  /** Subject patterns published to the broker that go out on multicast (default ['>']). */
  export?: string[];
  /** Subject patterns heard on multicast that the broker routes to its subscribers (default ['>']). */
  import?: string[];
  /** Milliseconds close() keeps answering NAKs before saying goodbye (default 100). */
  lingerMs?: number;
}

const OWN = new Set(['url', 'iface', 'export', 'import', 'lingerMs', 'channels', 'rules', 'hashTokens', 'fallback']);
const TUNABLE = new Set(Object.keys(ENDPOINT_DEFAULTS).filter((k) => k !== 'receiveOwn' && k !== 'testDrop' && k !== 'iface'));

export interface BridgeCounters {
  exported: number;
  imported: number;
  /** Messages lost on multicast before they could be imported (unrepaired gaps). */
  lostMessages: number;
  sourcesGone: number;
  /** Messages not exported because the flow-control window held maxHeldBytes already (multicast receivers behind). */
  exportDropped: number;
  /** Times a multicast source dropped this bridge from its window (it was too slow), and receivers this bridge dropped. */
  slow: number;
  receiversSlow: number;
}

/** The problem with a `multicast` broker option, or null. */
export function bridgeOptionsProblem(v: unknown): string | null {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return '"multicast" must be an object { url, channels, rules, export, import, ... }';
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!OWN.has(k) && !TUNABLE.has(k)) return `unknown multicast option "${k}"; known: ${[...OWN, ...TUNABLE].join(', ')}`;
  }
  if (typeof o.url !== 'string') return 'multicast.url must be a udp://group:port?iface=ADDR string';
  for (const k of ['export', 'import'] as const) {
    const list = o[k];
    if (list === undefined) continue;
    if (!Array.isArray(list) || !list.every((p) => typeof p === 'string' && isValidPattern(p))) return `multicast.${k} must be an array of subject patterns`;
  }
  for (const k of TUNABLE) {
    const x = o[k];
    if (k === 'flowControl') continue; // a mode or a per-channel map: the endpoint checks it
    if (k === 'datagramBytes' && x === 'auto') continue;
    if (x !== undefined && !(typeof x === 'number' && Number.isFinite(x) && x >= 0)) return `multicast.${k} must be a non-negative number`;
  }
  if (o.lingerMs !== undefined && !(typeof o.lingerMs === 'number' && o.lingerMs >= 0)) return 'multicast.lingerMs must be a non-negative number';
  try {
    const r = resolveChannels(o.url, o as ChannelSpec);
    new ChannelMap(r.map);
  } catch (err) {
    return `multicast: ${(err as Error).message}`;
  }
  return null;
}

/** What the bridge needs of the broker. */
export interface BridgeHost {
  readonly log: Logger;
  /** Largest frame the broker accepts (and the bridge reassembles). */
  readonly maxFrame: number;
  readonly router: { routeImported(buf: Buffer, off: number, len: number, subject: string, tsOff: number): void };
}

export class MulticastBridge implements EndpointHandler {
  readonly counters: BridgeCounters = { exported: 0, imported: 0, lostMessages: 0, sourcesGone: 0, exportDropped: 0, slow: 0, receiversSlow: 0 };
  /** Exports are being refused (the window is closed and the hold is full): logged once per episode. */
  private refusing = false;
  private readonly ep: MulticastEndpoint;
  private readonly map: ChannelMap;
  private readonly exports = new SubjectTree<number>({ cacheSize: 4096 });
  private readonly imports = new SubjectTree<number>({ cacheSize: 4096 });
  private readonly lingerMs: number;
  private readonly view = new MsgView();
  private readonly subjects = new SubjectCache(4096);

  private constructor(
    private readonly broker: BridgeHost,
    readonly options: MulticastBridgeOptions,
  ) {
    const { url, iface, export: ex = ['>'], import: im = ['>'], lingerMs = 100, channels: _c, rules: _r, hashTokens: _h, fallback: _f, ...tuning } = options;
    const r = resolveChannels(url, options);
    this.map = new ChannelMap(r.map);
    ex.forEach((p, i) => this.exports.insert(p, i));
    im.forEach((p, i) => this.imports.insert(p, i));
    this.lingerMs = lingerMs;
    this.ep = new MulticastEndpoint(
      r.addrs,
      {
        ...tuning,
        ...(r.ttl === undefined || tuning.ttl !== undefined ? {} : { ttl: r.ttl }),
        iface: iface ?? r.iface ?? '127.0.0.1',
        receiveOwn: false,
        maxMessageBytes: broker.maxFrame,
      },
      this,
    );
  }

  static async start(broker: BridgeHost, options: MulticastBridgeOptions): Promise<MulticastBridge> {
    const b = new MulticastBridge(broker, options);
    await b.ep.open();
    const need = new Set<number>();
    for (const p of options.import ?? ['>']) for (const ch of b.map.channelsFor(p)) need.add(ch);
    try {
      await Promise.all([...need].map((ch) => b.ep.join(ch)));
    } catch (err) {
      await b.ep.close();
      throw err;
    }
    return b;
  }

  /** Where it sends from; which channels it listens on. */
  describe(): { address: string; session: number; channels: string[]; joined: string[] } {
    return {
      address: this.ep.address,
      session: this.ep.session,
      channels: this.ep.channels.map((c) => c.key),
      joined: this.ep.channels.filter((_, i) => this.ep.isJoined(i)).map((c) => c.key),
    };
  }

  stats(): BridgeCounters & EndpointStats {
    return { ...this.ep.stats(), ...this.counters };
  }

  /**
   * A PUB a connection published (still a PUB: the broker patches its own copy
   * after this). Sends it on its subject's channel as a broadcast MSG; returns
   * whether it went out.
   */
  export(buf: Buffer, off: number, len: number, subject: string): boolean {
    if (this.exports.match(subject).length === 0) return false;
    const w = this.ep.sender(this.map.channelOf(subject));
    if (w.held > 0 && !w.room(len)) {
      // The broker's publishers cannot be made to wait for multicast receivers: counted and logged.
      this.counters.exportDropped++;
      if (!this.refusing) {
        this.refusing = true;
        this.broker.log.warn(
          { channel: w.addr.key, heldBytes: w.heldBytes },
          'multicast bridge: receivers behind, the flow-control hold is full; exports dropped',
        );
      }
      return true;
    }
    this.refusing = false;
    const out = w.reserve(len);
    const at = w.writeOffset;
    copyBytes(buf, off, out, at, len);
    out[at + 4] = Op.MSG;
    out[at + 5] = buf[off + 5]! & (FLAG_TS | FLAG_REQUEST);
    out.writeUInt32LE(0, at + 8);
    w.commit(len);
    this.counters.exported++;
    return true;
  }

  /** True when messages on `subject` go out on multicast (so "no responders" cannot be known). */
  exportsSubject(subject: string): boolean {
    return this.exports.match(subject).length > 0;
  }

  /** @internal EndpointHandler: a MSG frame from another source (checked by the endpoint). */
  onFrame(buf: Buffer, off: number, len: number): void {
    const v = this.view.parse(buf, off, len);
    let subject = this.subjects.lookup(buf, v.subjectOff, v.subjectLen);
    if (subject === null) {
      subject = v.subject();
      if (!isValidSubject(subject)) return; // only valid subjects are cached
      this.subjects.store(buf, v.subjectOff, v.subjectLen, subject);
    }
    if (v.replyLen > 0 && !isValidSubject(v.reply())) return;
    if (this.imports.match(subject).length === 0) return;
    this.counters.imported++;
    this.broker.router.routeImported(buf, off, len, subject, v.tsOff);
  }

  /** @internal */
  onLoss(e: GapEvent): void {
    this.counters.lostMessages += e.messages;
    this.broker.log.warn(
      { source: e.source.sourceId, channel: e.source.addr.key, datagrams: e.datagrams, messages: e.messages, reason: e.reason },
      'multicast bridge: messages lost',
    );
  }

  /** @internal */
  onSlow(source: SourceRef): void {
    this.counters.slow++;
    this.broker.log.warn({ source: source.sourceId, channel: source.addr.key }, "multicast bridge: dropped from a source's flow-control window (too slow)");
  }

  /** @internal */
  onReceiverSlow(receiver: string, channel: number): void {
    this.counters.receiversSlow++;
    this.broker.log.warn({ receiver, channel: this.ep.channels[channel]?.key }, 'multicast bridge: a receiver dropped from the flow-control window (too slow)');
  }

  /** @internal */
  onSourceGone(e: SourceEvent): void {
    this.counters.sourcesGone++;
    this.broker.log.info({ source: e.source.sourceId, channel: e.source.addr.key, reason: e.reason }, 'multicast bridge: source gone');
  }

  close(): Promise<void> {
    return this.ep.close(this.lingerMs);
  }
}
