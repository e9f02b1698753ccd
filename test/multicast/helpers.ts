/**
 * Shared by the multicast suites: a describe that skips loudly, saying why, when this
 * machine cannot do loopback multicast (test/kit/guards.ts), unique groups and ports per test file so parallel
 * files never hear each other, and buses closed after every test even when it failed.
 */
import { afterEach } from 'vitest';
import { connectMulticast, type Msg, type MulticastBus, type MulticastConnectOptions } from '../../client/index.js';
import { describeNeeding, multicastProblem, until } from '../kit/index.js';

export { until };

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

/** What one receiver got, as `subject=payload`, with fence markers kept apart (fence()). */
export interface Log {
  list: string[];
  fences: Set<string>;
  on: (m: Msg) => void;
}

const FENCE = 'fence:';

export function collect(): Log {
  const list: string[] = [];
  const fences = new Set<string>();
  return {
    list,
    fences,
    on: (m) => {
      const s = m.string();
      if (s.startsWith(FENCE)) fences.add(`${m.subject}=${s}`);
      else list.push(`${m.subject}=${s}`);
    },
  };
}

let fences = 0;

/**
 * The acknowledgement a negative check waits for ("nothing more arrives"): `from`
 * publishes a marker on each of `subjects`, and each of `at` must receive them all. A
 * multicast channel keeps a source's order, and so does a TCP connection, so whatever
 * the traffic before it caused on those paths (a loop, a duplicate) has arrived by then.
 * Use one subject per channel the traffic used.
 */
export async function fence(from: { publish(subject: string, data: string): void }, subjects: string[], ...at: Log[]): Promise<void> {
  const tag = `${FENCE}${++fences}`;
  for (const s of subjects) from.publish(s, tag);
  const want = subjects.map((s) => `${s}=${tag}`);
  await until(() => at.every((l) => want.every((w) => l.fences.has(w))), `the fence ${tag} on ${subjects.join(', ')}`);
}
