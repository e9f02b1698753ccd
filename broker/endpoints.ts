/**
 * The JSON documents of the monitoring endpoints (/varz, /connz, /subsz, /latency,
 * /healthz), built from the broker's counters and the monitor's interval figures.
 * Field names are stable: docs/MONITORING.md lists each one, and dashboards, `hopbus
 * top` and users' scripts read them. Add fields; never rename or remove one.
 */
import { POLICY_NAMES } from '../transports/protocol/index.js';
import { HOPS } from '../metrics/latency.js';
import { summarize, type LatencySummary } from '../metrics/latency.js';
import { VERSION } from '../transports/protocol/version.js';
import type { DirectPlane } from './direct.js';
import type { Recorder } from './recorder.js';
import type { LastValueCache } from './cache/cache.js';
import type { Leafnodes } from './leaf/index.js';
import { allSessions, isNats, type Monitor, type MonitorHost } from './monitor.js';

/**
 * What the endpoints (and /metrics, broker/prometheus.ts) read of the broker. Must not
 * import broker.ts: the broker imports the HTTP port, which imports this.
 */
export interface Observed extends MonitorHost {
  readonly monitor: Monitor;
  readonly direct: Pick<DirectPlane, 'stats'>;
  readonly urls: string[];
  readonly httpPort: number | null;
  /** The NATS listener's URL and port, or null when there is none. */
  readonly natsUrl: string | null;
  readonly natsPort: number | null;
  /** The journal recorder (option `journal`), or null when nothing is recorded. */
  readonly recorder: Pick<Recorder, 'stats'> | null;
  /** The last-value cache (option `cache`). */
  readonly cache: Pick<LastValueCache, 'stats' | 'stores'>;
  /** The leafnode uplinks (option `leafnodes`), or null when there are none. */
  readonly leafnodes: Pick<Leafnodes, 'metrics'> | null;
}

export function healthz(b: Observed) {
  return { status: 'ok', serverId: b.serverId, uptimeSec: Math.round((Date.now() - b.startedAt) / 1000) };
}

export function varz(b: Observed) {
  const o = b.options;
  const m = b.monitor;
  const c = b.counters;
  return {
    serverId: b.serverId,
    serverName: o.name,
    version: VERSION,
    proto: 1,
    now: new Date().toISOString(),
    startedAt: new Date(b.startedAt).toISOString(),
    uptimeSec: Math.round((Date.now() - b.startedAt) / 1000),
    urls: b.urls,
    config: {
      host: o.host,
      port: o.port,
      httpPort: b.httpPort,
      natsPort: b.natsPort,
      maxPayload: o.maxPayload,
      maxPending: o.maxPending,
      maxConnections: o.maxConnections,
      maxSubscriptions: o.maxSubscriptions,
      pingIntervalMs: o.pingIntervalMs,
      slowConsumerPolicy: o.slowConsumerPolicy,
      latency: o.latency,
      monitorIntervalMs: o.monitorIntervalMs,
      /** The `tls` option as logs show it (paths, switches; never key material), or null. */
      tls: o.tls === null ? null : o.tls.toJSON(),
    },
    connections: b.sessions.size + b.natsSessions.size,
    totalConnections: c.connectionsTotal,
    /** NATS client connections (also in `connections`), and where they connect. */
    nats: { url: b.natsUrl, connections: b.natsSessions.size },
    subscriptions: b.router.tree.size,
    totals: { ...c },
    direct: b.direct.stats(),
    /** Recording (option `journal`): what matched, was recorded, written, fsynced, dropped (by reason), the I/O errors; null when off. */
    journal: b.recorder === null ? null : b.recorder.stats(),
    /** The last-value cache (option `cache`): subjects and bytes held, values served (hits), `last` misses, evictions, expirations, tombstones, snapshots; null when off. */
    cache: b.cache.stores.length === 0 ? null : b.cache.stats(),
    /** The uplinks to NATS clusters (docs/LEAFNODE.md): state, hub, interest both ways, messages, drops; [] when none. */
    leafnodes: b.leafnodes === null ? [] : b.leafnodes.metrics(),
    rates: m.rates,
    bursts: m.bursts,
    memory: { rssBytes: process.memoryUsage.rss(), heapUsedBytes: process.memoryUsage().heapUsed },
  };
}

export function connz(b: Observed) {
  const now = Date.now();
  const connections = allSessions(b).map((s) => {
    const m = s.metrics();
    return {
      cid: m.cid,
      name: m.name,
      lang: s.lang,
      /** 'hopbus' or 'nats': the protocol the client speaks; NATS clients also say their client version. */
      protocol: isNats(s) ? 'nats' : 'hopbus',
      ...(isNats(s) ? { version: s.client.version } : {}),
      transport: m.transport,
      remote: m.remote,
      connectedAt: new Date(m.connectedAt).toISOString(),
      uptimeSec: Math.round((now - m.connectedAt) / 1000),
      subscriptions: m.subscriptions,
      subjects: [...s.subs.values()].slice(0, 100).map((sub) => ({
        sid: sub.sid,
        pattern: sub.pattern,
        ...(sub.queue ? { queue: sub.queue } : {}),
        policy: POLICY_NAMES[sub.policy] ?? 'default',
        dropped: sub.dropped,
        conflated: sub.conflated,
      })),
      msgsIn: m.msgsIn,
      bytesIn: m.bytesIn,
      msgsOut: m.msgsOut,
      bytesOut: m.bytesOut,
      pendingBytes: m.pendingBytes,
      pendingPeak: m.pendingPeak,
      heldMsgs: m.heldMsgs,
      memoryBytes: m.memoryBytes,
      memoryPeak: m.memoryPeak,
      dropped: m.droppedOldest + m.droppedNewest,
      droppedOldest: m.droppedOldest,
      droppedNewest: m.droppedNewest,
      conflated: m.conflated,
      paused: m.paused,
      pausedMs: Math.round(m.pausedMs),
      rateRefused: m.refused,
      rttUs: m.rttUs,
      latency: s.report === null ? null : { at: new Date(s.report.at).toISOString(), ...s.report.hops },
    };
  });
  // The uplinks to NATS hubs are connections too, listed apart (they are not clients).
  const leafnodes = b.leafnodes === null ? [] : b.leafnodes.metrics();
  return { serverId: b.serverId, now: new Date(now).toISOString(), count: connections.length, connections, leafnodes };
}

export function subsz(b: Observed) {
  const st = b.router.tree.stats();
  let queue = 0;
  const byPolicy: Record<string, number> = {};
  for (const s of allSessions(b)) {
    for (const sub of s.subs.values()) {
      if (sub.queue) queue++;
      const p = POLICY_NAMES[sub.policy] ?? 'default';
      byPolicy[p] = (byPolicy[p] ?? 0) + 1;
    }
  }
  const lookups = st.hits + st.misses;
  return {
    serverId: b.serverId,
    now: new Date().toISOString(),
    subscriptions: b.router.tree.size,
    queueSubscriptions: queue,
    byPolicy,
    cache: {
      size: st.cached,
      capacity: b.options.matchCacheSize,
      hits: st.hits,
      misses: st.misses,
      hitRate: lookups === 0 ? 0 : Math.round((st.hits / lookups) * 10000) / 10000,
    },
    topSubjects: b.monitor.topSubjects,
    heavyHitters: b.monitor.heavyHitters(20),
  };
}

export function latencyz(b: Observed) {
  return b.monitor.latencyReport();
}

/** Since-start summaries per hop class, for Prometheus. */
export function latencyTotals(b: Observed): Record<string, LatencySummary> {
  return Object.fromEntries(HOPS.map((h) => [h, summarize(b.monitor.hops[h].total)]));
}
