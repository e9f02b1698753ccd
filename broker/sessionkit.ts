/**
 * broker/sessionkit.ts: what every session codec (the hopbus one, broker/session.ts; the
 * NATS one, broker/nats/session.ts) builds and reports the same way: its outbound queue
 * and publisher gate from the broker's options, its user's limits once it is admitted,
 * and its /connz figures.
 *
 * Threading: the broker's thread.
 */
import type { Link } from '../transports/link.js';
import type { FlowStats, GateOwner } from './gate.js';
import { PublisherGate } from './gate.js';
import type { SessionHost } from './host.js';
import { Outbound, type OutboundOwner } from './policy.js';
import { Limiter, stricterLimit, type RateLimit } from './ratelimit.js';
import type { UserLimits } from './auth/index.js';

/** A session's outbound queue, bounded and rate-limited as the broker's options say. */
export function sessionOutbound(owner: OutboundOwner, host: SessionHost): Outbound {
  const o = host.options;
  return new Outbound(
    owner,
    o.highWaterBytes,
    o.maxPending,
    o.maxPendingMsgs,
    o.deliverRate ? new Limiter({ ...o.deliverRate, action: 'refuse' }, host.clock.now()) : null,
  );
}

/** A session's publisher gate, with the broker's publish rate limit when one is configured. */
export function sessionGate(owner: GateOwner, host: SessionHost): PublisherGate {
  const gate = new PublisherGate(owner, host.counters, host.clock);
  if (host.options.publishRate) gate.own = new Limiter(host.options.publishRate, host.clock.now());
  return gate;
}

/**
 * A connection is admitted as a user (broker/auth/): its outbound bound and publish rate
 * become the lower of the user's `limits` and the broker's, and `asked`, a rate the
 * client asked for (already lowered to the broker's), lowers the rate once more. The
 * only place a session's own publish rate is set after sessionGate(), so that no later
 * step puts back a higher one.
 */
export function applyUserLimits(out: Outbound, gate: PublisherGate, host: SessionHost, limits: Readonly<UserLimits>, asked?: RateLimit): void {
  if (limits.maxPending !== undefined) out.lower(limits.maxPending);
  if (limits.publishRate === undefined && asked === undefined) return;
  const broker = host.options.publishRate;
  let rate: RateLimit | undefined = limits.publishRate === undefined ? broker : broker ? stricterLimit(limits.publishRate, broker) : limits.publishRate;
  if (asked !== undefined) rate = rate ? stricterLimit(rate, asked) : asked;
  gate.own = new Limiter(rate!, host.clock.now());
}

/** What a session's /connz entry is made of, whatever its codec. */
export interface SessionFigures<S extends object> {
  id: number;
  name: string;
  link: Link;
  connectedAt: number;
  subscriptions: number;
  stats: S;
  out: Outbound;
  gate: PublisherGate;
  /** Keepalive round trip in ms, negative until the first PONG. */
  rttMs: number;
}

/** A session's /connz figures (broker.metrics() per connection). */
export function sessionMetrics<S extends object>(s: SessionFigures<S>) {
  const o = s.out;
  return {
    cid: s.id,
    name: s.name,
    transport: s.link.transport,
    remote: s.link.remote,
    connectedAt: s.connectedAt,
    subscriptions: s.subscriptions,
    ...s.stats,
    pendingBytes: o.pendingBytes,
    heldMsgs: o.hold.length,
    /** Slabs and slot pages the hold ring has taken, ever: grows with the bytes held, never per message (broker/holdring.ts). */
    holdBlocks: o.hold.blocksTaken,
    /** Memory held for this connection now, framing and bookkeeping included: outbound (Outbound.memoryBytes) and a partial inbound frame. */
    memoryBytes: o.memoryBytes + (s.link.inboundBytes ?? 0),
    ...o.stats,
    ...(s.gate.flow as FlowStats),
    /** Not being read right now (rate limit or a blocked consumer). */
    paused: s.gate.paused,
    /** Keepalive round trip in µs, null until the first PONG. */
    rttUs: s.rttMs < 0 ? null : Math.round(s.rttMs * 1000),
  };
}
