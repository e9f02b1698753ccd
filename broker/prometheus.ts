/**
 * /metrics in the Prometheus text exposition format (version 0.0.4): every metric
 * has HELP and TYPE lines, names start with `hopbus_`, counters end in `_total`,
 * durations are in seconds and sizes in bytes, as Prometheus conventions ask.
 * Latency quantiles are since the broker started (a `summary`; the interval
 * figures are in /latency).
 */
import { HOPS } from '../metrics/latency.js';
import { VERSION } from '../transports/protocol/version.js';
import { latencyTotals, type Observed } from './endpoints.js';
import { allSessions } from './monitor.js';

const HOP_LABEL: Record<string, string> = { pubToBroker: 'pub_to_broker', brokerToClient: 'broker_to_client', endToEnd: 'end_to_end', handler: 'handler' };

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

class Out {
  readonly lines: string[] = [];
  metric(name: string, type: 'counter' | 'gauge' | 'summary', help: string, samples: Array<[Record<string, string | number>, number]>): void {
    this.lines.push(`# HELP hopbus_${name} ${help}`, `# TYPE hopbus_${name} ${type}`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels)
        .map(([k, v]) => `${k}="${esc(String(v))}"`)
        .join(',');
      this.lines.push(`hopbus_${name}${l ? `{${l}}` : ''} ${Number.isFinite(value) ? value : 0}`);
    }
  }
  one(name: string, type: 'counter' | 'gauge', help: string, value: number): void {
    this.metric(name, type, help, [[{}, value]]);
  }
}

export function prometheus(b: Observed): string {
  const c = b.counters;
  const m = b.monitor;
  const o = new Out();
  o.metric('info', 'gauge', 'Broker identity (always 1).', [[{ server_id: b.serverId, server_name: b.options.name, version: VERSION }, 1]]);
  o.one('uptime_seconds', 'gauge', 'Seconds since the broker started.', Math.round((Date.now() - b.startedAt) / 1000));
  o.one('connections', 'gauge', 'Open client connections (hopbus and NATS).', b.sessions.size + b.natsSessions.size);
  o.metric('connections_by_protocol', 'gauge', 'Open client connections by the protocol they speak.', [
    [{ protocol: 'hopbus' }, b.sessions.size],
    [{ protocol: 'nats' }, b.natsSessions.size],
  ]);
  o.one('connections_total', 'counter', 'Connections accepted since start.', c.connectionsTotal);
  o.one('subscriptions', 'gauge', 'Subscriptions held by all connections.', b.router.tree.size);
  o.one('messages_in_total', 'counter', 'Messages published to the broker.', c.msgsIn);
  o.one('bytes_in_total', 'counter', 'Bytes of published frames.', c.bytesIn);
  o.one('messages_out_total', 'counter', 'Messages delivered to connections.', c.msgsOut);
  o.one('bytes_out_total', 'counter', 'Bytes of delivered frames.', c.bytesOut);
  o.one('messages_unrouted_total', 'counter', 'Published messages no subscription matched.', c.unrouted);
  o.one('slow_consumers_total', 'counter', 'Connections closed as slow consumers.', c.slowConsumers);
  o.one('protocol_errors_total', 'counter', 'Connections closed for a protocol violation.', c.protocolErrors);
  o.metric('messages_dropped_total', 'counter', 'Messages dropped by slow-consumer policies.', [
    [{ reason: 'oldest' }, c.droppedOldest],
    [{ reason: 'newest' }, c.droppedNewest],
  ]);
  o.one('messages_conflated_total', 'counter', 'Messages replaced by a newer one on the same subject.', c.conflated);
  o.one('messages_rate_refused_total', 'counter', 'Messages refused by a rate limit.', c.rateRefused);
  o.one('auth_failures_total', 'counter', 'Connections refused by authentication.', c.authFailures);
  o.one('tls_failures_total', 'counter', 'Connections whose TLS handshake failed, or plain text on a TLS-only port.', c.tlsFailures);
  o.one('monitor_auth_failures_total', 'counter', 'Monitoring requests refused for missing or wrong credentials.', c.monitorAuthFailures);
  o.one('permission_violations_total', 'counter', 'Publishes and subscriptions refused by permissions.', c.permissionViolations);
  const d = b.direct.stats();
  o.one('direct_messages_total', 'counter', "Messages shm clients wrote into each other's direct channels (not in messages_in/out).", d.msgs);
  o.one('direct_bytes_total', 'counter', 'Bytes of those messages.', d.bytes);
  o.one('direct_channels', 'gauge', 'Open direct channels between shm clients.', d.channels);
  o.one('publishers_paused_seconds_total', 'counter', 'Time publishers spent paused by rate limits or the block policy.', c.pausedMs / 1000);
  o.metric('rate_messages_per_second', 'gauge', 'Message rate over the last monitor interval.', [
    [{ direction: 'in' }, m.rates.msgsInPerSec],
    [{ direction: 'out' }, m.rates.msgsOutPerSec],
  ]);
  o.metric('rate_bytes_per_second', 'gauge', 'Byte rate over the last monitor interval.', [
    [{ direction: 'in' }, m.rates.bytesInPerSec],
    [{ direction: 'out' }, m.rates.bytesOutPerSec],
  ]);
  o.metric('burst_messages', 'gauge', 'Published messages in the busiest window of the last interval.', [
    [{ window: '1ms' }, m.bursts.peak1msMsgs],
    [{ window: '5ms' }, m.bursts.peak5msMsgs],
  ]);
  o.metric('burst_bytes', 'gauge', 'Published bytes in the busiest window of the last interval.', [
    [{ window: '1ms' }, m.bursts.peak1msBytes],
    [{ window: '5ms' }, m.bursts.peak5msBytes],
  ]);
  const st = b.router.tree.stats();
  o.metric('match_cache_lookups_total', 'counter', 'Subject match cache lookups.', [
    [{ result: 'hit' }, st.hits],
    [{ result: 'miss' }, st.misses],
  ]);
  o.one('match_cache_entries', 'gauge', 'Subjects in the match cache.', st.cached);
  const rec = b.recorder;
  if (rec !== null) {
    const j = rec.stats();
    o.one('journal_messages_matched_total', 'counter', 'Published messages whose subject the journal records.', j.matched);
    o.one('journal_records_appended_total', 'counter', 'Messages accepted into the journal.', j.appended);
    o.one('journal_records_written_total', 'counter', 'Records written to segment files.', j.written);
    o.one('journal_bytes_written_total', 'counter', 'Bytes of records written to segment files.', j.writtenBytes);
    o.metric('journal_records_dropped_total', 'counter', 'Messages the journal could not record, by reason.', [
      [{ reason: 'full' }, j.droppedFull],
      [{ reason: 'io' }, j.droppedIo],
      [{ reason: 'too_large' }, j.droppedTooLarge],
    ]);
    o.one('journal_losses_total', 'counter', 'Runs of messages the journal could not record.', j.losses);
    o.one('journal_io_errors_total', 'counter', 'Journal file operations that failed.', j.ioErrors);
    o.one('journal_fsyncs_total', 'counter', 'fsync calls of the journal.', j.fsyncs);
    o.one('journal_pending_bytes', 'gauge', 'Bytes between the broker and the disk (bounded).', j.pendingBytes);
    o.one('journal_segments', 'gauge', 'Segment files in the journal.', j.segments);
    o.one('journal_bytes', 'gauge', 'Bytes of the journal on disk (segments and indexes).', j.bytes);
    o.one('journal_segments_deleted_total', 'counter', 'Segments deleted by retention.', j.deletedSegments);
  }
  if (b.cache.stores.length > 0) {
    const lc = b.cache.stats();
    o.one('cache_subjects', 'gauge', 'Subjects with a value in the last-value cache.', lc.subjects);
    o.one('cache_bytes', 'gauge', 'Bytes the last-value cache holds (frames and bookkeeping).', lc.bytes);
    o.metric('cache_lookups_total', 'counter', 'Cached values asked for: served (snapshot values and last answers), and last requests with nothing cached.', [
      [{ result: 'hit' }, lc.hits],
      [{ result: 'miss' }, lc.misses],
    ]);
    o.one('cache_updates_total', 'counter', 'Messages stored in the last-value cache (tombstones included).', lc.updates);
    o.metric('cache_removals_total', 'counter', 'Subjects dropped from the last-value cache, by reason.', [
      [{ reason: 'evicted' }, lc.evictions],
      [{ reason: 'expired' }, lc.expirations],
      [{ reason: 'deleted' }, lc.deletes],
      [{ reason: 'oversize' }, lc.oversize],
    ]);
    o.one('cache_snapshots_total', 'counter', 'Snapshot subscriptions made.', lc.snapshots);
    o.one('cache_images_pending', 'gauge', 'Snapshot images still on their way to their subscribers.', lc.imagesPending);
  }
  const totals = latencyTotals(b);
  const q: Array<[Record<string, string | number>, number]> = [];
  const counts: Array<[Record<string, string | number>, number]> = [];
  for (const hop of HOPS) {
    const s = totals[hop]!;
    const hl = HOP_LABEL[hop]!;
    for (const [qq, v] of [
      ['0.5', s.p50],
      ['0.9', s.p90],
      ['0.99', s.p99],
      ['0.999', s.p999],
      ['1', s.max],
    ] as const)
      q.push([{ hop: hl, quantile: qq }, v / 1e6]);
    counts.push([{ hop: hl, sum: (s.mean * s.count) / 1e6 }, s.count]);
  }
  o.lines.push('# HELP hopbus_latency_seconds Latency per hop class since start (HDR histogram quantiles).', '# TYPE hopbus_latency_seconds summary');
  for (const [labels, v] of q) o.lines.push(`hopbus_latency_seconds{hop="${labels.hop}",quantile="${labels.quantile}"} ${v}`);
  for (const [labels, v] of counts) {
    o.lines.push(`hopbus_latency_seconds_sum{hop="${labels.hop}"} ${labels.sum}`, `hopbus_latency_seconds_count{hop="${labels.hop}"} ${v}`);
  }
  const leafs = b.leafnodes === null ? [] : b.leafnodes.metrics();
  if (leafs.length > 0) {
    const by = (f: (l: (typeof leafs)[number]) => number) => leafs.map((l) => [{ leaf: l.name }, f(l)] as [Record<string, string>, number]);
    o.metric(
      'leafnode_connected',
      'gauge',
      'Whether each leafnode uplink is connected to a hub (1) or not (0).',
      by((l) => (l.state === 'connected' ? 1 : 0)),
    );
    o.metric(
      'leafnode_connects_total',
      'counter',
      'Connections each uplink established.',
      by((l) => l.connects),
    );
    o.metric(
      'leafnode_messages_in_total',
      'counter',
      'Messages from the hub.',
      by((l) => l.msgsIn),
    );
    o.metric(
      'leafnode_messages_out_total',
      'counter',
      'Messages sent to the hub.',
      by((l) => l.msgsOut),
    );
    o.metric(
      'leafnode_bytes_in_total',
      'counter',
      'Message bytes from the hub.',
      by((l) => l.bytesIn),
    );
    o.metric(
      'leafnode_bytes_out_total',
      'counter',
      'Message bytes sent to the hub.',
      by((l) => l.bytesOut),
    );
    o.metric(
      'leafnode_dropped_total',
      'counter',
      'Messages for the hub dropped by the uplink policy (the hub was behind).',
      by((l) => l.dropped),
    );
    o.metric(
      'leafnode_refused_total',
      'counter',
      'Messages from the hub not routed (outside the import bounds, or unreadable).',
      by((l) => l.refused),
    );
    o.metric(
      'leafnode_loops_total',
      'counter',
      'Loops detected on each uplink.',
      by((l) => l.loops),
    );
    o.metric(
      'leafnode_pending_bytes',
      'gauge',
      'Bytes queued towards the hub.',
      by((l) => l.pendingBytes),
    );
    o.metric('leafnode_interest', 'gauge', 'Interest keys announced to the hub (local) and taken in from it (remote).', [
      ...leafs.map((l) => [{ leaf: l.name, side: 'local' }, l.localInterest] as [Record<string, string>, number]),
      ...leafs.map((l) => [{ leaf: l.name, side: 'remote' }, l.remoteInterest] as [Record<string, string>, number]),
    ]);
  }
  const conns = allSessions(b);
  o.metric(
    'connection_pending_bytes',
    'gauge',
    'Bytes queued towards each connection.',
    conns.map((s) => [{ cid: s.id, name: s.name, transport: s.link.transport }, s.out.pendingBytes]),
  );
  o.metric(
    'connection_rtt_seconds',
    'gauge',
    'Keepalive round trip of each connection (absent until measured).',
    conns.filter((s) => s.rttMs >= 0).map((s) => [{ cid: s.id, name: s.name, transport: s.link.transport }, s.rttMs / 1000]),
  );
  return o.lines.join('\n') + '\n';
}
