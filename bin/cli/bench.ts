/**
 * hopbus bench pub|sub|reqrep SUBJECT: load and measure a running broker from the
 * command line, the way `nats bench` does: several clients, a message count and size,
 * a progress line, and a summary per client and in total (rates; latency percentiles
 * for request/reply), as text, CSV or JSON.
 *
 * Publishers go as fast as flow control lets them: they flush whenever a megabyte is
 * queued, so a slow broker or consumer slows them down instead of being flooded.
 */
import hdr from 'hdr-histogram-js';
import type { Connection } from '../../client/index.js';
import { validateSubject } from '../../topics/index.js';
import { UsageError, int, parseCommand, str, type CommandSpec } from './args.js';
import { SERVER_FLAGS, openBus, resolveServer } from './server.js';

export const BENCH: CommandSpec = {
  usage: 'bench pub|sub|reqrep SUBJECT [options]',
  about: `pub: --clients publishers share --msgs messages of --size bytes, as fast as flow control allows.
sub: --clients subscribers each wait for --msgs messages (start them before the publishers).
reqrep: --clients requesters share --msgs requests, one in flight each, against a responder
  in this process (or, with --no-responder, against whatever answers, e.g. hopbus reply).
Prints a progress line on standard error and a summary: messages/s and MB/s per client and in
total; for reqrep also the round-trip latency p50/p90/p99/p99.9/max in µs.`,
  flags: [
    ...SERVER_FLAGS,
    { name: 'clients', short: 'c', kind: 'string', arg: 'N', default: '1', help: 'concurrent clients (connections)' },
    { name: 'msgs', short: 'n', kind: 'string', arg: 'N', default: '100000', help: 'messages (pub, reqrep: in total; sub: per subscriber)' },
    { name: 'size', kind: 'string', arg: 'BYTES', default: '128', help: 'payload size' },
    { name: 'no-responder', kind: 'boolean', help: 'reqrep: do not start a responder in this process' },
    { name: 'csv', kind: 'string', arg: 'FILE', help: 'also write the per-client rows as CSV to FILE ("-": standard output)' },
    { name: 'json', kind: 'boolean', help: 'print the summary as one JSON object instead of text' },
  ],
  positionals: [2, 2],
  needs: 'bench needs pub, sub or reqrep, and a SUBJECT',
  footer: `Examples:
  hopbus bench sub bench.x -c 2 -n 1000000 &   hopbus bench pub bench.x -c 2 -n 1000000 --size 64
  hopbus bench reqrep svc.echo -c 4 -n 20000`,
};

interface ClientRow {
  client: number;
  msgs: number;
  bytes: number;
  seconds: number;
}

export interface BenchSummary {
  mode: string;
  subject: string;
  server: string;
  clients: number;
  size: number;
  msgs: number;
  seconds: number;
  msgsPerSec: number;
  mbPerSec: number;
  rows: ClientRow[];
  latencyUs?: { p50: number; p90: number; p99: number; p999: number; max: number };
}

function progress(label: string, done: () => number, total: number): () => void {
  if (!process.stderr.isTTY) return () => {};
  const t = setInterval(() => process.stderr.write(`\r${label}: ${Math.min(100, Math.floor((100 * done()) / total))}%  `), 250);
  return () => {
    clearInterval(t);
    process.stderr.write(`\r${label}: 100%  \n`);
  };
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

/**
 * `msgs` messages of `size` bytes shared among the connections (the first ones take the
 * remainder), each connection sending its share with `send` one after another, then
 * `end`; a progress line under `label`. One row per connection.
 */
async function shared(
  buses: Connection[],
  msgs: number,
  size: number,
  label: string,
  send: (bus: Connection, payload: Buffer) => Promise<void> | void,
  end: (bus: Connection) => Promise<void> = async () => {},
): Promise<ClientRow[]> {
  const payload = Buffer.alloc(size, 0x61);
  let done = 0;
  const stop = progress(label, () => done, msgs);
  const rows = await Promise.all(
    buses.map(async (bus, i) => {
      const n = Math.floor(msgs / buses.length) + (i < msgs % buses.length ? 1 : 0);
      const t0 = now();
      for (let k = 0; k < n; k++) {
        const pending = send(bus, payload);
        if (pending !== undefined) await pending; // no microtask per publish when nothing waits
        done++;
      }
      await end(bus);
      return { client: i + 1, msgs: n, bytes: n * size, seconds: now() - t0 };
    }),
  );
  stop();
  return rows;
}

function benchPub(buses: Connection[], subject: string, msgs: number, size: number): Promise<ClientRow[]> {
  return shared(
    buses,
    msgs,
    size,
    'publishing',
    (bus, payload) => {
      bus.publish(subject, payload);
      if (bus.pendingBytes > 1 << 20) return bus.flush();
    },
    (bus) => bus.flush(),
  );
}

async function benchSub(buses: Connection[], subject: string, msgs: number): Promise<ClientRow[]> {
  let done = 0;
  const rows = buses.map(
    (bus, i) =>
      new Promise<ClientRow>((resolve, reject) => {
        let n = 0;
        let bytes = 0;
        let t0 = 0;
        bus.on('disconnect', () => reject(new UsageError(`subscriber ${i + 1} lost its connection after ${n} of ${msgs} messages`)));
        bus.subscribe(subject, (m) => {
          if (n === 0) t0 = now();
          n++;
          done++;
          bytes += m.data.length;
          if (n === msgs) resolve({ client: i + 1, msgs: n, bytes, seconds: now() - t0 });
        });
      }),
  );
  // Said once the broker has every subscription: publishers started after this line miss nothing.
  await Promise.all(buses.map((b) => b.flush()));
  console.error(`${buses.length} subscriber${buses.length === 1 ? '' : 's'} waiting for ${msgs} messages each on "${subject}"`);
  const stop = progress('receiving', () => done, msgs * buses.length);
  const out = await Promise.all(rows);
  stop();
  return out;
}

function benchReqRep(buses: Connection[], subject: string, msgs: number, size: number, h: hdr.Histogram): Promise<ClientRow[]> {
  return shared(buses, msgs, size, 'requesting', async (bus, payload) => {
    const s = process.hrtime.bigint();
    await bus.request(subject, payload, { timeoutMs: 5000 });
    h.recordValue(Math.max(1, Math.round(Number(process.hrtime.bigint() - s) / 1000)));
  });
}

export async function runBench(args: string[]): Promise<void> {
  const p = parseCommand(args, BENCH);
  if (p === null) return;
  const { values, positionals } = p;
  const [mode, subject] = positionals as [string, string];
  if (!['pub', 'sub', 'reqrep'].includes(mode)) throw new UsageError(`bench needs pub, sub or reqrep, got "${mode}"`);
  validateSubject(subject);
  const clients = int(values, 'clients', 1)!;
  const msgs = int(values, 'msgs', 1)!;
  const size = int(values, 'size', 0)!;
  const csv = str(values, 'csv');
  const server = resolveServer(values);
  const buses = await Promise.all(Array.from({ length: clients }, (_, i) => openBus(server, `hopbus-bench-${mode}-${i + 1}`)));
  let responder: Connection | null = null;
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60e6, numberOfSignificantValueDigits: 3 });
  try {
    if (mode === 'reqrep' && values['no-responder'] !== true) {
      responder = await openBus(server, 'hopbus-bench-responder');
      responder.subscribe(subject, (m) => m.respond(m.data));
      await responder.flush();
    }
    const t0 = now();
    const rows =
      mode === 'pub'
        ? await benchPub(buses, subject, msgs, size)
        : mode === 'sub'
          ? await benchSub(buses, subject, msgs)
          : await benchReqRep(buses, subject, msgs, size, h);
    const seconds = mode === 'sub' ? Math.max(...rows.map((r) => r.seconds)) : now() - t0;
    const total = rows.reduce((a, r) => a + r.msgs, 0);
    const bytes = rows.reduce((a, r) => a + r.bytes, 0);
    const summary: BenchSummary = {
      mode,
      subject,
      server,
      clients,
      size,
      msgs: total,
      seconds,
      msgsPerSec: Math.round(total / seconds),
      mbPerSec: bytes / seconds / 1e6,
      rows,
    };
    if (mode === 'reqrep') {
      const q = (x: number) => h.getValueAtPercentile(x);
      summary.latencyUs = { p50: q(50), p90: q(90), p99: q(99), p999: q(99.9), max: h.maxValue };
    }
    if (csv !== undefined) {
      const lines = [
        'client,msgs,bytes,seconds,msgs_per_sec,mb_per_sec',
        ...rows.map(
          (r) => `${r.client},${r.msgs},${r.bytes},${r.seconds.toFixed(6)},${Math.round(r.msgs / r.seconds)},${(r.bytes / r.seconds / 1e6).toFixed(3)}`,
        ),
      ];
      if (csv === '-') console.log(lines.join('\n'));
      else (await import('node:fs')).writeFileSync(csv, lines.join('\n') + '\n');
    }
    if (values.json === true) console.log(JSON.stringify(summary));
    else printSummary(summary);
  } finally {
    await Promise.allSettled([...buses, ...(responder ? [responder] : [])].map((b) => b.close()));
  }
}

function printSummary(s: BenchSummary): void {
  const rate = (msgs: number, bytes: number, sec: number) => `${Math.round(msgs / sec).toLocaleString('en-US')} msgs/s, ${(bytes / sec / 1e6).toFixed(2)} MB/s`;
  console.log(
    `${s.mode} "${s.subject}" on ${s.server}: ${s.clients} client${s.clients === 1 ? '' : 's'}, ${s.msgs.toLocaleString('en-US')} messages of ${s.size} B in ${s.seconds.toFixed(3)} s`,
  );
  if (s.rows.length > 1) for (const r of s.rows) console.log(`  [${r.client}] ${rate(r.msgs, r.bytes, r.seconds)} (${r.msgs.toLocaleString('en-US')} msgs)`);
  console.log(`  total: ${s.msgsPerSec.toLocaleString('en-US')} msgs/s, ${s.mbPerSec.toFixed(2)} MB/s`);
  const l = s.latencyUs;
  if (l) console.log(`  round trip (µs): p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  p99.9 ${l.p999}  max ${l.max}`);
}
