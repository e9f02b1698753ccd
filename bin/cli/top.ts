/** hopbus top: the command line of bin/top.ts (a broker's figures, live in the terminal). */
import { runTop } from '../top.js';
import { UsageError, int, parseCommand, str, type CommandSpec } from './args.js';

export const TOP: CommandSpec = {
  usage: 'top [options]',
  about: `Shows a broker's message rates, microburst peaks, latency per hop and busiest
connections, redrawn every interval, from its HTTP port (/varz, /connz, /latency).
Drawn for 80 columns and the terminal's height. Press q or Ctrl-C to quit.
For an https:// port whose CA the system does not trust: NODE_EXTRA_CA_CERTS=ca.pem.`,
  flags: [
    { name: 'url', short: 'u', kind: 'string', arg: 'URL', env: 'HOPBUS_HTTP_URL', default: 'http://127.0.0.1:8222', help: "the broker's HTTP address" },
    { name: 'interval', short: 'i', kind: 'string', arg: 'MS', default: '1000', help: 'refresh interval in ms' },
    { name: 'once', kind: 'boolean', help: 'print one frame (no screen control) and exit' },
    { name: 'token', kind: 'string', arg: 'TOKEN', env: 'HOPBUS_MONITOR_TOKEN', help: "the broker's monitoring token (option monitoring)" },
  ],
  positionals: [0, 0],
};

export async function runTopCommand(args: string[]): Promise<void> {
  const p = parseCommand(args, TOP);
  if (p === null) return;
  const intervalMs = int(p.values, 'interval', 100)!;
  const base = str(p.values, 'url')!;
  let u: URL;
  try {
    u = new URL(base);
  } catch {
    throw new UsageError(`--url must be an http:// URL (or https://) of a broker's HTTP port, got "${base}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new UsageError(`--url must be an http:// URL (or https://) of a broker's HTTP port, got "${base}"`);
  const token = str(p.values, 'token');
  await runTop({ url: u.origin, intervalMs, once: p.values.once === true, ...(token !== undefined ? { token } : {}) });
}
