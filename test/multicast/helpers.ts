/**
 * Shared by the multicast suites: a describe that skips loudly, saying why, when this
 * machine cannot do loopback multicast (test/kit/guards.ts), unique groups and ports per test file so parallel
 * files never hear each other, and buses closed after every test even when it failed.
 */
import { afterEach } from 'vitest';
import { connectMulticast, type MulticastBus, type MulticastConnectOptions } from '../../client/index.js';

import { describeNeeding, multicastProblem } from '../kit/index.js';

export { until } from '../kit/index.js';

/** `describe` for a suite that needs loopback multicast: skipped loudly (or failed under HOPBUS_REQUIRE) without it. */
export const describeMulticast = describeNeeding('multicast', await multicastProblem());

/**
 * A group and port for test file `file` (1..40), channel n (0..9), unique per run:
 * the second and third octets and the port also depend on the process id.
 */
export function channelOf(file: number, n = 0): { group: string; port: number; key: string } {
  const p = process.pid;
  const group = `239.${100 + file}.${p % 250}.${10 + n}`;
  const port = 20_000 + ((p * 7 + file * 131) % 9_000) + n;
  return { group, port, key: `${group}:${port}` };
}

export function urlOf(file: number, n = 0, iface = '127.0.0.1'): string {
  const c = channelOf(file, n);
  return `udp://${c.key}?iface=${iface}`;
}

/** Opens multicast buses and closes them after each test. */
export function useBuses(): { open(url: string, o?: MulticastConnectOptions): Promise<MulticastBus> } {
  const open: MulticastBus[] = [];
  afterEach(async () => {
    const all = open.splice(0);
    await Promise.all(all.map((b) => b.close().catch(() => {})));
  });
  return {
    async open(url, o) {
      const b = await connectMulticast(url, { lingerMs: 0, ...o });
      open.push(b);
      b.on('error', () => {});
      return b;
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
