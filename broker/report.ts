/**
 * broker/report.ts: a client's latency report ($SYS.report.<clientId>, docs/MONITORING.md):
 * its decoding and the summary a session keeps of the last one.
 *
 * Imports only metrics/, runtime/ and msgpackr: the session and the monitor both use it, so it
 * must import neither.
 */
import { Unpackr } from 'msgpackr';
import { decodeHistogram, summarize, type ClientReport, type Hop, type HopRecorders, type LatencySummary } from '../metrics/latency.js';
import { HopbusError } from '../runtime/errors.js';

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** A client's last latency report, as kept on its session. */
export interface ClientLatency {
  at: number;
  intervalMs: number;
  msgsIn: number;
  peak1ms: number;
  peak5ms: number;
  hops: Partial<Record<Hop, LatencySummary>>;
}

/** A payload on $SYS.report.<clientId> that is not a v1 report. */
export class ReportError extends HopbusError {
  constructor(message: string) {
    super('BAD_REPORT', message);
  }
}

/**
 * Decodes a v1 report, merging its histograms into the broker's `hops`. Throws a ReportError
 * when the payload is not a v1 report (the caller counts it as bad).
 */
export function decodeReport(payload: Uint8Array, into: HopRecorders): ClientLatency {
  const r = unpackr.unpack(payload) as ClientReport;
  if (r === null || typeof r !== 'object' || r.v !== 1 || typeof r.hist !== 'object' || r.hist === null) throw new ReportError('not a v1 report');
  const hops: Partial<Record<Hop, LatencySummary>> = {};
  for (const hop of ['brokerToClient', 'endToEnd', 'handler'] as const) {
    const enc = r.hist[hop];
    if (typeof enc !== 'string') continue;
    const h = decodeHistogram(enc);
    hops[hop] = summarize(h);
    into[hop].merge(h);
    h.destroy();
  }
  return {
    at: Date.now(),
    intervalMs: Number(r.intervalMs) || 0,
    msgsIn: Number(r.msgsIn) || 0,
    peak1ms: Number(r.peak1ms) || 0,
    peak5ms: Number(r.peak5ms) || 0,
    hops,
  };
}
