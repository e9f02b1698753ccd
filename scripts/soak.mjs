// The soak: a broker process under the abuse mix, beside a healthy stream, for a set time.
//   npm run soak -- [--seconds 60] [--rate 5000]
// The broker runs as `hopbus broker` in its own process (its RSS is read from /proc). Beside
// a paced healthy stream (one publisher, one subscriber, sequence numbers), it gets:
//   - mutated frames: connections sending valid conversations with random bytes changed;
//   - slow handshakes: connections dribbling a CONNECT one byte at a time;
//   - half-sent frames: connections that CONNECT, start a 1 MiB PUB and stop;
//   - a frozen consumer: a subscriber process stopped with SIGSTOP;
//   - a flooding publisher: as fast as the broker lets it (50k msg/s of 1 KiB), to what the
//     frozen consumer subscribes to;
//   - churn: 100k distinct subjects and queue names, subscribed and dropped.
// Every interval it prints the broker's RSS and the healthy stream's completeness; at the
// end, the totals. It exits 1 if the healthy stream lost or reordered a message.
// Not part of `npm test`: it takes as long as it is told to, and it loads the machine.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect } from '../dist/client/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HELP = `Usage: npm run soak -- [--seconds N] [--rate N]

Runs a broker process under an abuse mix (mutated frames from many connections, slow
handshakes, half-sent frames, a frozen consumer, a flooding publisher, 100k distinct
subjects and queue names) beside a healthy stream, and prints the stream's completeness
and the broker's RSS over time. Exit 0 when the healthy stream arrived complete.

  --seconds N   how long (default 60)
  --rate N      the healthy stream's messages per second (default 5000)
  -h, --help    show this help`;
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    rate: { type: 'string', default: '5000' },
    role: { type: 'string' },
    url: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}

async function soak(seconds, rate) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-soak-'));
  const config = path.join(dir, 'broker.json');
  // Short read deadline and handshake timeout, so the half-sent frames and slow handshakes cycle.
  fs.writeFileSync(config, JSON.stringify({ readDeadlineMs: 2000, handshakeTimeoutMs: 2000, maxPending: 16 * 1024 * 1024, httpPort: 0 }));
  const broker = spawn(
    process.execPath,
    [path.join(root, 'dist/bin/hopbus.js'), 'broker', '--port', '0', '--no-nats', '--log-level', 'error', '--config', config],
    {
      stdio: ['ignore', 'inherit', 'pipe'],
    },
  );
  const [url, http] = await readyLine(broker);
  const port = Number(new URL(url).port);
  const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${broker.pid}/status`, 'utf8'))[1]) / 1024;
  const rssStart = rss();
  let stopping = false;
  const stats = { mutated: 0, slow: 0, half: 0, churned: 0, flooded: 0, floodErrors: 0, failed: 0 };

  // The healthy stream.
  const sub = await connect(url, { name: 'soak-healthy-sub' });
  const pub = await connect(url, { name: 'soak-healthy-pub' });
  let sent = 0;
  let got = 0;
  let disorder = 0;
  sub.subscribe('healthy', (m) => {
    const seq = Buffer.from(m.data.buffer, m.data.byteOffset, 4).readUInt32LE(0);
    if (seq !== got) disorder++;
    got = seq + 1;
  });
  await sub.flush();
  const payload = Buffer.alloc(64);
  const t0 = performance.now();
  const paced = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    for (; sent < due; sent++) {
      payload.writeUInt32LE(sent, 0);
      pub.publish('healthy', payload);
    }
  }, 5);

  // The frozen consumer and the flooding publisher.
  const frozen = spawn(process.execPath, [fileURLToPath(import.meta.url), '--role', 'frozen', '--url', url], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => frozen.stdout.once('data', resolve));
  frozen.kill('SIGSTOP');
  // It asks the broker to hold it to 50k msg/s (not read beyond that): flooding, not saturating both cores.
  const flood = await connect(url, { name: 'soak-flood', publishRate: { msgsPerSec: 50_000, action: 'slow' } });
  flood.on('error', () => stats.floodErrors++);
  const floodLoop = (async () => {
    const blob = Buffer.alloc(1024);
    while (!stopping) {
      for (let i = 0; i < 256; i++) flood.publish(`flood.${i & 7}`, blob);
      stats.flooded += 256;
      await flood.flush().catch(() => {});
    }
  })();

  // Churn: distinct subjects and queue names, 100k of each over the run.
  const churn = await connect(url, { name: 'soak-churn' });
  const churnLoop = (async () => {
    for (let i = 0; !stopping && i < 100_000; i++) {
      churn.subscribe(`churn.s${i}`, () => {}).unsubscribe();
      churn.subscribe('churn.q', () => {}, { queue: `q${i}` }).unsubscribe();
      stats.churned++;
      if (i % 500 === 499) await churn.flush();
    }
  })();

  // The hostile connections, each a loop until the end.
  const hostile = [];
  for (let i = 0; i < 12; i++)
    hostile.push(
      loop(
        () => mutated(port),
        () => stats.mutated++,
      ),
    );
  for (let i = 0; i < 4; i++)
    hostile.push(
      loop(
        () => slowHandshake(port),
        () => stats.slow++,
      ),
    );
  for (let i = 0; i < 4; i++)
    hostile.push(
      loop(
        () => halfSent(port),
        () => stats.half++,
      ),
    );
  async function loop(attack, count) {
    while (!stopping) {
      await attack().then(count, () => stats.failed++);
      // An attack that fails at once must not starve everything else.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  console.log(`soak: ${seconds} s, healthy stream ${rate} msg/s of 64 B; broker ${url} (pid ${broker.pid}), RSS ${rssStart.toFixed(1)} MB at start`);
  console.log('   t s  broker RSS MB  healthy sent  received  missing  mutated  slow-hs  half-sent  churned  flooded');
  const series = [];
  const report = () => {
    const t = (performance.now() - t0) / 1000;
    const r = rss();
    series.push(r);
    console.log(
      `${t.toFixed(0).padStart(6)}  ${r.toFixed(1).padStart(13)}  ${String(sent).padStart(12)}  ${String(got).padStart(8)}  ${String(sent - got).padStart(7)}  ${String(stats.mutated).padStart(7)}  ${String(stats.slow).padStart(7)}  ${String(stats.half).padStart(9)}  ${String(stats.churned).padStart(7)}  ${String(stats.flooded).padStart(8)}`,
    );
  };
  const every = setInterval(report, 5000);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));

  stopping = true;
  clearInterval(paced);
  clearInterval(every);
  // Everything published has been routed, then everything routed to the subscriber has arrived.
  const settled = await pub
    .flush()
    .then(() => sub.flush())
    .then(
      () => 'settled',
      (err) => `the final flush failed: ${err.message}`,
    );
  report();
  const connz = await fetch(`${http}/connz`).then(
    (r) => r.json(),
    () => null,
  );
  const held = connz?.connections.find((c) => c.name === 'soak-frozen');
  const varz = await fetch(`${http}/varz`).then(
    (r) => r.json(),
    () => null,
  );
  frozen.kill('SIGKILL');
  await Promise.all([floodLoop, churnLoop, ...hostile]);
  await Promise.all([sub.close(), pub.close(), flood.close(), churn.close()]);
  broker.kill('SIGTERM');
  fs.rmSync(dir, { recursive: true, force: true });

  const complete = sent === got && disorder === 0 && settled === 'settled';
  console.log(
    `healthy stream: ${got} of ${sent} received (${((100 * got) / Math.max(1, sent)).toFixed(3)}%), ${disorder} out of order, ${settled}: ${complete ? 'complete' : 'INCOMPLETE'}`,
  );
  if (held) {
    console.log(
      `frozen consumer at the end: ${(held.pendingBytes / 2 ** 20).toFixed(1)} MiB pending (the bound counts these), ${(held.memoryBytes / 2 ** 20).toFixed(1)} MiB held in memory, ${held.heldMsgs} messages held, ${held.dropped} dropped`,
    );
  }
  console.log(
    `broker RSS: ${rssStart.toFixed(1)} MB at start, max ${Math.max(...series).toFixed(1)} MB, ${series.at(-1).toFixed(1)} MB at the end` +
      (varz
        ? `; slow consumers ${varz.slowConsumers ?? varz.totals?.slowConsumers ?? '?'}, protocol errors ${varz.protocolErrors ?? varz.totals?.protocolErrors ?? '?'}`
        : '') +
      `; hostile attempts that failed to run: ${stats.failed}`,
  );
  process.exitCode = complete ? 0 : 1;
}

/** The broker's TCP and monitoring addresses, from its ready lines (on its stderr, passed on once read). */
function readyLine(proc) {
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stderr.on('data', (d) => process.stderr.write(d));
    proc.stderr.on('data', (d) => {
      out += d.toString();
      const tcp = /hopbus broker ready: (tcp:\/\/\S+)/.exec(out);
      const http = /monitoring: (http:\/\/[^/\s]+)/.exec(out);
      if (tcp && http) resolve([tcp[1], http[1]]);
    });
    proc.once('exit', (code) => reject(new Error(`broker exited (${code}) before it was ready:\n${out}`)));
  });
}

/** A socket that resolves when it closes, destroyed after `ms` at the latest. */
function dial(port, ms) {
  const s = net.connect({ host: '127.0.0.1', port });
  s.on('error', () => {});
  s.resume(); // read (and drop) what the broker sends, so its close is seen
  const closed = new Promise((resolve) => s.once('close', resolve));
  const timer = setTimeout(() => s.destroy(), ms);
  closed.then(() => clearTimeout(timer));
  return { s, closed };
}

function frame(op, body) {
  const f = Buffer.alloc(6 + body.length);
  f.writeUInt32LE(f.length, 0);
  f[4] = op;
  body.copy(f, 6);
  return f;
}

/** CONNECT {} as the broker reads it: version 1 at offset 6, an empty msgpack map. */
const CONNECT = Buffer.from([9, 0, 0, 0, 0x01, 0, 1, 0, 0x80]);

function pub(subject, payload) {
  const s = Buffer.from(subject);
  const f = Buffer.alloc(20 + s.length + payload.length);
  f.writeUInt32LE(f.length, 0);
  f[4] = 0x10;
  f[6] = 0;
  f.writeUInt16LE(s.length, 12);
  s.copy(f, 20);
  payload.copy(f, 20 + s.length);
  return f;
}

function sub(sid, pattern) {
  const p = Buffer.from(pattern);
  const f = Buffer.alloc(16 + p.length);
  f.writeUInt32LE(f.length, 0);
  f[4] = 0x20;
  f.writeUInt32LE(sid, 8);
  f.writeUInt16LE(p.length, 12);
  p.copy(f, 16);
  return f;
}

/** A valid conversation with a few random bytes changed; waits for the broker to close it. */
async function mutated(port) {
  const conv = Buffer.concat([CONNECT, sub(1, 'fz.>'), pub('fz.a', Buffer.alloc(32)), frame(0x30, Buffer.alloc(0)), pub('fz.b', Buffer.alloc(100))]);
  for (let n = 1 + Math.floor(Math.random() * 3); n > 0; n--) conv[Math.floor(Math.random() * conv.length)] = Math.floor(Math.random() * 256);
  const { s, closed } = dial(port, 1000);
  s.write(conv);
  s.end();
  await closed;
}

/** CONNECT dribbled a byte every 200 ms: the handshake timeout ends it. */
async function slowHandshake(port) {
  const { s, closed } = dial(port, 10_000);
  let i = 0;
  const t = setInterval(() => {
    if (i < CONNECT.length - 1) s.write(CONNECT.subarray(i, ++i));
  }, 200);
  await closed;
  clearInterval(t);
}

/** CONNECT, then the first half of a 1 MiB PUB, then nothing: the read deadline ends it. */
async function halfSent(port) {
  const { s, closed } = dial(port, 10_000);
  const big = pub('half', Buffer.alloc(1024 * 1024 - 64));
  s.write(Buffer.concat([CONNECT, big.subarray(0, big.length >> 1)]));
  await closed;
}

// Last: the module's constants above are initialised before either role runs.
if (values.role === 'frozen') {
  // The frozen consumer: subscribes, says so, and is stopped by its parent.
  const bus = await connect(values.url, { name: 'soak-frozen', reconnect: false });
  bus.on('error', () => {});
  // drop-oldest: it stays connected, and the broker holds up to maxPending for it throughout.
  bus.subscribe('flood.>', () => {}, { policy: 'drop-oldest' });
  await bus.flush();
  console.log('ready');
} else {
  await soak(Number(values.seconds), Number(values.rate));
}
