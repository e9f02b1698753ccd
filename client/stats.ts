/**
 * The counters of a broker connection and `bus.stats`, which is both callable (the
 * counters, pending bytes and latency figures) and readable field by field
 * (`bus.stats.msgsIn`), as it was before it became callable.
 */
import type { ClientLatencyStats, LatencyMeter } from './latency.js';

export interface BusStats {
  msgsIn: number;
  bytesIn: number;
  msgsOut: number;
  bytesOut: number;
  reconnects: number;
  /** Reconnects after which messages may have been missed ('gap' events). */
  gaps: number;
}

/** What bus.stats() returns: the counters, and this client's latency figures. */
export interface ClientStats extends BusStats {
  /** Bytes queued towards the broker. */
  pendingBytes: number;
  /** Hops measured on timestamped messages received; null with `latency: false`. */
  latency: ClientLatencyStats | null;
}

/** bus.stats: call it for everything; its fields still read the counters (bus.stats.msgsIn). */
export type StatsFn = (() => ClientStats) & Readonly<BusStats>;

export function newCounters(): BusStats {
  return { msgsIn: 0, bytesIn: 0, msgsOut: 0, bytesOut: 0, reconnects: 0, gaps: 0 };
}

/** `bus.stats` over `counters`; `pending()` reads the bytes queued now. */
export function statsFn(counters: BusStats, pending: () => number, latency: LatencyMeter | null): StatsFn {
  const fn = (): ClientStats => ({ ...counters, pendingBytes: pending(), latency: latency?.stats() ?? null });
  for (const k of Object.keys(counters) as (keyof BusStats)[]) Object.defineProperty(fn, k, { get: () => counters[k], enumerable: true });
  return fn as StatsFn;
}
