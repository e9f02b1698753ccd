/**
 * broker/counters.ts: the broker-wide counters, one plain object every part
 * increments in place (router, sessions, publisher gates). Monitoring reads them.
 *
 * Imports nothing.
 */

export interface BrokerCounters {
  msgsIn: number;
  bytesIn: number;
  msgsOut: number;
  bytesOut: number;
  /** Published messages no subscription matched. */
  unrouted: number;
  slowConsumers: number;
  connectionsTotal: number;
  /** Connections refused or closed for a protocol violation. */
  protocolErrors: number;
  /** Messages dropped by slow-consumer policies, by reason. */
  droppedOldest: number;
  droppedNewest: number;
  /** Messages replaced by a newer one on the same subject (conflate policy). */
  conflated: number;
  /** Messages refused by a rate limit with action "refuse". */
  rateRefused: number;
  /** Total time publishers spent paused (rate limits, block policy), ms. */
  pausedMs: number;
  /** Connections refused by authentication (wrong or missing credentials, back-off, a user's connection limit). */
  authFailures: number;
  /** PUBs and SUBs refused by a connection's permissions (broker/auth/). */
  permissionViolations: number;
  /** Connections whose TLS handshake failed or timed out, or that spoke plain text to a TLS-only port (broker/tls.ts). */
  tlsFailures: number;
  /** Requests to the monitoring endpoints refused for missing or wrong credentials (option `monitoring`). */
  monitorAuthFailures: number;
}

export function newCounters(): BrokerCounters {
  return {
    msgsIn: 0,
    bytesIn: 0,
    msgsOut: 0,
    bytesOut: 0,
    unrouted: 0,
    slowConsumers: 0,
    connectionsTotal: 0,
    protocolErrors: 0,
    droppedOldest: 0,
    droppedNewest: 0,
    conflated: 0,
    rateRefused: 0,
    pausedMs: 0,
    authFailures: 0,
    permissionViolations: 0,
    tlsFailures: 0,
    monitorAuthFailures: 0,
  };
}
