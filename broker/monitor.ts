/**
 * The broker's monitoring and latency service: per-message counting (cheap enough to
 * stay on), per-interval rates, microburst peaks, latency histograms per hop class,
 * the busiest subjects, client latency reports, and the periodic `$SYS.latency` and
 * `$SYS.stats` publications. The HTTP endpoints (http.ts) and `hopbus top` read the
 * snapshots built here. docs/MONITORING.md documents every field.
 *
 * Per published message (`onPublish`, only when the latency service is on):
 *   one cached clock read per inbound chunk (metrics/clock.ts chunkNowNs),
 *   a microburst slot increment, two counters on the cached Route, and for
 *   timestamped messages a sampling test (all of them below 50k msg/s, one in N
 *   above: metrics/latency.ts Sampler) and a typed-array increment. Nothing is allocated.
 * Everything else happens once per interval, on a timer.
 *
 * Threading: the broker's thread. Must not import broker.ts or the router's users:
 * it sees the broker as `MonitorHost`, and the router sees it as a PublishTap.
 */
import { Packr } from 'msgpackr';
import { PayloadKind } from '../transports/protocol/index.js';
import { BurstMeter, type BurstPeaks } from '../metrics/burst.js';
import { chunkNowNs } from '../metrics/clock.js';
import { readU64 } from '../runtime/clock.js';
import { HOPS, Sampler, stampWeight, hopRecorders, summarize, type HopRecorders, type LatencySummary } from '../metrics/latency.js';
import { SpaceSaving, type HeavyHitter } from '../metrics/topk.js';
import type { ResolvedOptions } from './config.js';
import type { BrokerCounters } from './counters.js';
import { decodeReport } from './report.js';
import type { Route } from './route.js';
import type { PublishTap, Router } from './router.js';
import type { Session } from './session.js';
import type { NatsSession } from './nats/session.js';
import type { Publisher } from './subscription.js';

/** What the monitor reads of the broker. */
export interface MonitorHost {
  readonly serverId: string;
  readonly startedAt: number;
  readonly options: ResolvedOptions;
  readonly counters: BrokerCounters;
  readonly sessions: ReadonlySet<Session>;
  /** NATS client connections (broker/nats/session.ts): monitored like hopbus ones. */
  readonly natsSessions: ReadonlySet<NatsSession>;
  readonly router: Router;
}

/** A NATS connection (they carry kind 'nats'; hopbus sessions carry no kind). */
export function isNats(s: Session | NatsSession): s is NatsSession {
  return (s as { kind?: string }).kind === 'nats';
}

/** Every connection, hopbus and NATS, for the snapshots. */
export function allSessions(b: MonitorHost): Array<Session | NatsSession> {
  return [...b.sessions, ...b.natsSessions];
}

/** Subjects of the latency service (docs/PROTOCOL.md, "System subjects"). */
export const SYS_REPORT_PREFIX = '$SYS.report.';
export const SYS_LATENCY = '$SYS.latency';
export const SYS_STATS = '$SYS.stats';

/** Routes harvested per interval at most (the rest wait for a later interval). */
const SEEN_CAP = 4096;
/** Subjects the heavy-hitters table keeps. */
const TOP_CAPACITY = 100;
/** Subjects shown in "busiest this interval". */
const TOP_SHOWN = 10;

const packr = new Packr({ useRecords: false });

export interface Rates {
  intervalMs: number;
  msgsInPerSec: number;
  bytesInPerSec: number;
  msgsOutPerSec: number;
  bytesOutPerSec: number;
}

export interface SubjectRate {
  subject: string;
  msgsPerSec: number;
  bytesPerSec: number;
}

const ZERO_RATES: Rates = { intervalMs: 0, msgsInPerSec: 0, bytesInPerSec: 0, msgsOutPerSec: 0, bytesOutPerSec: 0 };
const ZERO_BURSTS: BurstPeaks = { peak1msMsgs: 0, peak1msBytes: 0, peak5msMsgs: 0, peak5msBytes: 0 };

export class Monitor implements PublishTap {
  /** The latency service is on (config `latency`). */
  readonly enabled: boolean;
  readonly hops: HopRecorders = hopRecorders();
  private readonly burst = new BurstMeter();
  private readonly sampler = new Sampler();
  private readonly heavy = new SpaceSaving(TOP_CAPACITY);
  private readonly seen: Route[] = [];
  private epoch = 1;
  private timer: NodeJS.Timeout | null = null;
  private prev = { at: 0, msgsIn: 0, bytesIn: 0, msgsOut: 0, bytesOut: 0 };
  /** Figures of the last completed interval. */
  rates: Rates = { ...ZERO_RATES };
  bursts: BurstPeaks = { ...ZERO_BURSTS };
  topSubjects: SubjectRate[] = [];
  /** Client reports that could not be decoded. */
  badReports = 0;
  reports = 0;

  constructor(private readonly broker: MonitorHost) {
    this.enabled = broker.options.latency;
  }

  start(): void {
    const c = this.broker.counters;
    this.prev = { at: performance.now(), msgsIn: c.msgsIn, bytesIn: c.bytesIn, msgsOut: c.msgsOut, bytesOut: c.bytesOut };
    this.timer = setInterval(this.tick, this.broker.options.monitorIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** The hot path: one published message (already routed). See the top of this file. */
  onPublish(route: Route, buf: Buffer, tsOff: number, len: number): void {
    const now = chunkNowNs();
    this.burst.note(now / 1e6, len);
    if (tsOff >= 0 && this.sampler.take(now)) this.hops.pubToBroker.record(now - readU64(buf, tsOff), this.sampler.weight * stampWeight(buf, tsOff));
    if (route.seen !== this.epoch && this.seen.length < SEEN_CAP) {
      route.seen = this.epoch;
      this.seen.push(route);
    }
    route.msgs++;
    route.bytes += len;
  }

  /** A message on a `$SYS.` subject from a client: a latency report is taken in. Routed as usual afterwards. */
  onSystem(from: Publisher, subject: string, buf: Buffer, payloadOff: number, payloadLen: number, kind: number): void {
    if (!this.enabled || !subject.startsWith(SYS_REPORT_PREFIX) || kind !== PayloadKind.MSGPACK) return;
    try {
      from.report = decodeReport(buf.subarray(payloadOff, payloadOff + payloadLen), this.hops);
      this.reports++;
    } catch {
      this.badReports++;
    }
  }

  /** Once per interval: rates, peaks, histograms, busiest subjects, $SYS publications. */
  private readonly tick = (): void => {
    const b = this.broker;
    const c = b.counters;
    const now = performance.now();
    const dt = (now - this.prev.at) / 1000;
    if (dt > 0) {
      this.rates = {
        intervalMs: Math.round(dt * 1000),
        msgsInPerSec: Math.round((c.msgsIn - this.prev.msgsIn) / dt),
        bytesInPerSec: Math.round((c.bytesIn - this.prev.bytesIn) / dt),
        msgsOutPerSec: Math.round((c.msgsOut - this.prev.msgsOut) / dt),
        bytesOutPerSec: Math.round((c.bytesOut - this.prev.bytesOut) / dt),
      };
    }
    this.sampler.adapt(this.rates.msgsInPerSec);
    this.prev = { at: now, msgsIn: c.msgsIn, bytesIn: c.bytesIn, msgsOut: c.msgsOut, bytesOut: c.bytesOut };
    this.bursts = this.burst.take();
    for (const hop of HOPS) this.hops[hop].roll();
    this.harvest(dt);
    // Publish only to someone listening: building a report is not free.
    const r = b.router;
    if (r.hasSubscribers(SYS_LATENCY)) r.publishInternal(SYS_LATENCY, packr.pack(this.latencyReport()));
    if (r.hasSubscribers(SYS_STATS)) r.publishInternal(SYS_STATS, packr.pack(this.statsReport()));
  };

  /** Moves the per-route counts of this interval into the busiest-subjects figures. */
  private harvest(dt: number): void {
    const seen = this.seen;
    seen.sort((a, b) => b.msgs - a.msgs);
    const top: SubjectRate[] = [];
    for (let i = 0; i < seen.length; i++) {
      const r = seen[i]!;
      if (r.msgs === 0) continue;
      if (top.length < TOP_SHOWN && dt > 0) top.push({ subject: r.subject, msgsPerSec: Math.round(r.msgs / dt), bytesPerSec: Math.round(r.bytes / dt) });
      this.heavy.add(r.subject, r.msgs, r.bytes);
      r.msgs = 0;
      r.bytes = 0;
    }
    this.topSubjects = top;
    seen.length = 0;
    this.epoch++;
  }

  /** Busiest subjects since the broker started (space-saving estimates). */
  heavyHitters(n = 20): HeavyHitter[] {
    return this.heavy.top(n);
  }

  // --- snapshots: the JSON of the endpoints and of the $SYS publications ---------------

  latencyReport() {
    const b = this.broker;
    const interval: Record<string, LatencySummary> = {};
    const total: Record<string, LatencySummary> = {};
    for (const hop of HOPS) {
      interval[hop] = this.hops[hop].last;
      total[hop] = summarize(this.hops[hop].total);
    }
    const clients = [];
    for (const s of allSessions(b)) {
      if (s.report !== null)
        clients.push({
          cid: s.id,
          name: s.name,
          at: new Date(s.report.at).toISOString(),
          msgsIn: s.report.msgsIn,
          peak1ms: s.report.peak1ms,
          peak5ms: s.report.peak5ms,
          hops: s.report.hops,
        });
    }
    return {
      serverId: b.serverId,
      serverName: b.options.name,
      now: new Date().toISOString(),
      enabled: this.enabled,
      intervalMs: b.options.monitorIntervalMs,
      unit: 'us',
      interval,
      total,
      bursts: this.bursts,
      clients,
    };
  }

  statsReport() {
    const b = this.broker;
    const c = b.counters;
    const consumers = [];
    for (const s of allSessions(b)) {
      const o = s.out;
      const dropped = o.stats.droppedOldest + o.stats.droppedNewest;
      const pending = o.pendingBytes;
      if (dropped + o.stats.conflated > 0 || pending > 0) {
        consumers.push({
          cid: s.id,
          name: s.name,
          transport: s.link.transport,
          pendingBytes: pending,
          heldMsgs: o.hold.length,
          dropped,
          conflated: o.stats.conflated,
        });
      }
    }
    consumers.sort((a, b2) => b2.pendingBytes - a.pendingBytes || b2.dropped - a.dropped);
    return {
      serverId: b.serverId,
      serverName: b.options.name,
      now: new Date().toISOString(),
      uptimeSec: Math.round((Date.now() - b.startedAt) / 1000),
      connections: b.sessions.size + b.natsSessions.size,
      subscriptions: b.router.tree.size,
      rates: this.rates,
      bursts: this.bursts,
      totals: { ...c },
      topSubjects: this.topSubjects,
      consumers: consumers.slice(0, 10),
      latency: Object.fromEntries(HOPS.map((h) => [h, this.hops[h].last])),
    };
  }
}
