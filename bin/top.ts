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
  /** The broker's monitoring token (option `monitoring`), sent as a Bearer token. */
  token?: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type J = any;

const HOPS: Array<[string, string]> = [
  ['pubToBroker', 'publisher -> broker'],
  ['brokerToClient', 'broker -> client'],
  ['endToEnd', 'end to end'],
  ['handler', 'handler (application)'],
];

/** One rule for every figure: three significant digits, k/M/G from 1,000 on; whole numbers below stay whole. */
export function num(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '-';
  const a = Math.abs(n);
  for (const [f, u] of [
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ] as const) {
    if (a >= f) return `${Number((n / f).toPrecision(3))}${u}`;
  }
  return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(3)));
}

function pad(s: string | number, n: number, left = false): string {
  const t = String(s);
  if (t.length >= n) return t.length > n ? t.slice(0, n - 1) + '~' : t;
  return left ? t + ' '.repeat(n - t.length) : ' '.repeat(n - t.length) + t;
}

async function get(url: string, token: string | undefined): Promise<J> {
  let r: Response;
  try {
    r = await fetch(url, { signal: AbortSignal.timeout(5000), ...(token ? { headers: { Authorization: `Bearer ${token}` } } : {}) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if (cause?.code === 'ECONNREFUSED') throw new ConnectionError(`nothing listens at ${new URL(url).origin} (is the broker running, with --http-port?)`);
    if ((err as Error).name === 'TimeoutError') throw new ConnectionError(`${url}: no answer within 5 s`);
    if (cause?.message === 'bad port') {
      throw new ConnectionError(
        `${url}: port ${new URL(url).port} is one that HTTP clients refuse to use (browsers block it too): give the broker's --http-port`,
      );
    }
    throw new ConnectionError(`${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  if (r.status === 401)
    throw new ConnectionError(
      `${url}: HTTP 401, ${token ? 'the monitoring token is wrong' : "the broker's monitoring asks for a token (--token or HOPBUS_MONITOR_TOKEN)"}`,
    );
  if (!r.ok) throw new ConnectionError(`${url}: HTTP ${r.status}${r.status === 404 ? " (is this a hopbus broker's HTTP port?)" : ''}`);
  try {
    return await r.json();
  } catch {
    throw new ConnectionError(`${url} did not answer with JSON: this is not a hopbus broker's HTTP port`);
  }
}

/**
 * One screen of text from the three documents, at most `width` columns (the layout is
 * drawn for 80) and `height` rows (the connections table gets what is left).
 */
export function renderTop(varz: J, connz: J, lat: J, width = 80, height = 24): string {
  const out: string[] = [];
  const r = varz.rates;
  const b = varz.bursts;
  const t = varz.totals;
  out.push(`hopbus top - ${varz.serverName} ${varz.serverId}  v${varz.version}  up ${varz.uptimeSec}s`);
  out.push(
    `connections ${varz.connections} (total ${varz.totalConnections})  subscriptions ${varz.subscriptions}  latency service ${varz.config.latency ? 'on' : 'off'}`,
  );
  out.push('');
  out.push(
    `rates     msgs in/s ${pad(num(r.msgsInPerSec), 6)}  out/s ${pad(num(r.msgsOutPerSec), 6)}   bytes in/s ${pad(num(r.bytesInPerSec), 6)}  out/s ${pad(num(r.bytesOutPerSec), 6)}`,
  );
  out.push(
    `bursts    busiest 1 ms ${pad(num(b.peak1msMsgs), 6)} msgs ${pad(num(b.peak1msBytes), 6)} B   5 ms ${pad(num(b.peak5msMsgs), 6)} msgs ${pad(num(b.peak5msBytes), 6)} B`,
  );
  out.push(
    `totals    in ${num(t.msgsIn)}  out ${num(t.msgsOut)}  unrouted ${num(t.unrouted)}  dropped ${num(t.droppedOldest + t.droppedNewest)}  conflated ${num(t.conflated)}  slow ${t.slowConsumers}`,
  );
  out.push('');
  out.push(
    `${pad('latency, last interval (us)', 28, true)}${pad('count', 7)}${pad('p50', 9)}${pad('p90', 9)}${pad('p99', 9)}${pad('p99.9', 9)}${pad('max', 9)}`,
  );
  for (const [k, name] of HOPS) {
    const s = lat.interval?.[k];
    if (!s) continue;
    out.push(
      `  ${pad(name, 26, true)}${pad(num(s.count), 7)}${pad(num(s.p50), 9)}${pad(num(s.p90), 9)}${pad(num(s.p99), 9)}${pad(num(s.p999), 9)}${pad(num(s.max), 9)}`,
    );
  }
  out.push('');
  out.push(
    `${pad('cid', 5)} ${pad('name', 16, true)} ${pad('tr', 5, true)}${pad('subs', 5)} ${pad('msgs in', 7)} ${pad('msgs out', 8)} ${pad('pending', 7)} ${pad('dropped', 7)} ${pad('rtt us', 7)}`,
  );
  const conns = [...connz.connections].sort((a: J, c: J) => c.msgsOut + c.msgsIn - (a.msgsOut + a.msgsIn));
  const rows = Math.max(1, height - out.length - 1);
  const shown = conns.length > rows ? rows - 1 : rows;
  for (const c of conns.slice(0, shown)) {
    out.push(
      `${pad(c.cid, 5)} ${pad(c.name || '-', 16, true)} ${pad(c.transport, 5, true)}${pad(c.subscriptions, 5)} ${pad(num(c.msgsIn), 7)} ${pad(num(c.msgsOut), 8)} ${pad(num(c.pendingBytes), 7)} ${pad(num(c.dropped), 7)} ${pad(num(c.rttUs), 7)}`,
    );
  }
  if (conns.length > shown) out.push(`... and ${conns.length - shown} more`);
  return out.map((l) => (l.length > width ? l.slice(0, width - 1) + '~' : l)).join('\n');
}

async function frame(url: string, width: number, height: number, token?: string): Promise<string> {
  const [varz, connz, lat] = await Promise.all([get(`${url}/varz`, token), get(`${url}/connz`, token), get(`${url}/latency`, token)]);
  return renderTop(varz, connz, lat, width, height);
}

export async function runTop(o: TopOptions): Promise<void> {
  if (o.once) {
    console.log(await frame(o.url, 80, 32, o.token));
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
      text = await frame(o.url, out.columns || 80, out.rows || 24, o.token);
    } catch (err) {
      text = `hopbus top: cannot read ${o.url}: ${(err as Error).message}\n(retrying every ${o.intervalMs} ms; q quits)`;
    }
    if (done) return;
    out.write(`\x1b[H${text.split('\n').join('\x1b[K\n')}\x1b[K\x1b[J`);
    timer = setTimeout(() => void draw(), o.intervalMs);
  };
  await draw();
}
