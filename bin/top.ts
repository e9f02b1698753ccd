/**
 * `hopbus top`: a broker's figures live in the terminal. Polls /varz, /connz and
 * /latency on the broker's HTTP port every interval and redraws the screen with ANSI
 * escapes (alternate screen, cursor home, clear to end). `q` or Ctrl-C quits and
 * restores the terminal; `--once` prints one plain frame and exits (scripts, tests).
 */
import { ConnectionError } from '../runtime/errors.js';

interface TopOptions {
  url: string;
  intervalMs: number;
  once: boolean;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type J = any;

const HOPS: Array<[string, string]> = [
  ['pubToBroker', 'publisher -> broker'],
  ['brokerToClient', 'broker -> client'],
  ['endToEnd', 'end to end'],
  ['handler', 'handler (application)'],
];

function num(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '-';
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n * 100) / 100);
}

function pad(s: string | number, n: number, left = false): string {
  const t = String(s);
  if (t.length >= n) return t.slice(0, n);
  return left ? t + ' '.repeat(n - t.length) : ' '.repeat(n - t.length) + t;
}

async function get(url: string): Promise<J> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!r.ok) throw new ConnectionError(`${url}: HTTP ${r.status}`);
  return r.json();
}

/** One screen of text from the three documents. */
export function renderTop(varz: J, connz: J, lat: J, width = 100): string {
  const out: string[] = [];
  const r = varz.rates;
  const b = varz.bursts;
  const t = varz.totals;
  out.push(`hopbus top - ${varz.serverName} ${varz.serverId}  v${varz.version}  up ${varz.uptimeSec}s  ${varz.now}`);
  out.push(
    `connections ${varz.connections} (total ${varz.totalConnections})  subscriptions ${varz.subscriptions}  latency service ${varz.config.latency ? 'on' : 'off'}`,
  );
  out.push('');
  out.push(
    `rates     msgs in/s ${pad(num(r.msgsInPerSec), 9)}   out/s ${pad(num(r.msgsOutPerSec), 9)}   bytes in/s ${pad(num(r.bytesInPerSec), 9)}   out/s ${pad(num(r.bytesOutPerSec), 9)}`,
  );
  out.push(
    `bursts    busiest 1 ms ${pad(num(b.peak1msMsgs), 7)} msgs ${pad(num(b.peak1msBytes), 8)} B    busiest 5 ms ${pad(num(b.peak5msMsgs), 7)} msgs ${pad(num(b.peak5msBytes), 8)} B`,
  );
  out.push(
    `totals    in ${num(t.msgsIn)} msgs  out ${num(t.msgsOut)} msgs  unrouted ${num(t.unrouted)}  dropped ${num(t.droppedOldest + t.droppedNewest)}  conflated ${num(t.conflated)}  slow consumers ${t.slowConsumers}`,
  );
  out.push('');
  out.push(`latency, last interval (us)   ${pad('count', 9)}${pad('p50', 10)}${pad('p90', 10)}${pad('p99', 10)}${pad('p99.9', 10)}${pad('max', 10)}`);
  for (const [k, name] of HOPS) {
    const s = lat.interval?.[k];
    if (!s) continue;
    out.push(`  ${pad(name, 28, true)}${pad(num(s.count), 9)}${pad(s.p50, 10)}${pad(s.p90, 10)}${pad(s.p99, 10)}${pad(s.p999, 10)}${pad(s.max, 10)}`);
  }
  out.push('');
  out.push(
    `${pad('cid', 5)} ${pad('name', 16, true)} ${pad('tr', 4, true)} ${pad('subs', 5)} ${pad('msgs in', 9)} ${pad('msgs out', 9)} ${pad('pending', 9)} ${pad('dropped', 8)} ${pad('rtt us', 8)}`,
  );
  const conns = [...connz.connections].sort((a: J, c: J) => c.msgsOut + c.msgsIn - (a.msgsOut + a.msgsIn));
  for (const c of conns.slice(0, 20)) {
    out.push(
      `${pad(c.cid, 5)} ${pad(c.name || '-', 16, true)} ${pad(c.transport, 4, true)} ${pad(c.subscriptions, 5)} ${pad(num(c.msgsIn), 9)} ${pad(num(c.msgsOut), 9)} ${pad(num(c.pendingBytes), 9)} ${pad(num(c.dropped), 8)} ${pad(num(c.rttUs), 8)}`,
    );
  }
  if (conns.length > 20) out.push(`... and ${conns.length - 20} more`);
  return out.map((l) => l.slice(0, width)).join('\n');
}

async function frame(url: string, width: number): Promise<string> {
  const [varz, connz, lat] = await Promise.all([get(`${url}/varz`), get(`${url}/connz`), get(`${url}/latency`)]);
  return renderTop(varz, connz, lat, width);
}

export async function runTop(o: TopOptions): Promise<void> {
  if (o.once) {
    console.log(await frame(o.url, 200));
    return;
  }
  const out = process.stdout;
  const stdin = process.stdin;
  let timer: NodeJS.Timeout | null = null;
  let done = false;
  const finish = (code: number) => {
    if (done) return;
    done = true;
    if (timer) clearTimeout(timer);
    if (stdin.isTTY) stdin.setRawMode(false);
    stdin.pause();
    out.write('\x1b[?25h\x1b[?1049l'); // show the cursor, leave the alternate screen
    process.exit(code);
  };
  out.write('\x1b[?1049h\x1b[?25l'); // alternate screen, hide the cursor
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.resume();
  stdin.on('data', (d: Buffer) => {
    const k = d.toString();
    if (k === 'q' || k === 'Q' || k === '\x03') finish(0);
  });
  process.on('SIGINT', () => finish(0));
  process.on('SIGTERM', () => finish(0));
  const draw = async () => {
    let text: string;
    try {
      text = await frame(o.url, out.columns || 120);
    } catch (err) {
      text = `hopbus top: cannot read ${o.url}: ${(err as Error).message}\n(retrying every ${o.intervalMs} ms; q quits)`;
    }
    if (done) return;
    out.write(`\x1b[H${text.split('\n').join('\x1b[K\n')}\x1b[K\x1b[J`);
    timer = setTimeout(() => void draw(), o.intervalMs);
  };
  await draw();
}
