/**
 * Shared by the multicast suites: can this machine do multicast at all (tests skip,
 * saying why, when it cannot), unique groups and ports per test file so parallel
 * files never hear each other, and buses closed after every test even when it failed.
 */
import dgram from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { afterEach } from 'vitest';
import { connectMulticast, type MulticastBus, type MulticastConnectOptions } from '../../client/index.js';

export { until } from '../broker/harness.js';

/** null when loopback multicast works here, else why not. */
export async function multicastProblem(): Promise<string | null> {
  const group = '239.250.250.250';
  const r = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const s = dgram.createSocket('udp4');
  try {
    const port = await new Promise<number>((resolve, reject) => {
      r.once('error', reject);
      r.bind(0, group, () => resolve(r.address().port));
    });
    r.addMembership(group, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(0, '127.0.0.1', () => resolve());
    });
    s.setMulticastInterface('127.0.0.1');
    const got = new Promise<boolean>((resolve) => {
      r.once('message', () => resolve(true));
      setTimeout(() => resolve(false), 1000).unref();
    });
    s.send('probe', port, group);
    return (await got) ? null : 'a datagram sent to a multicast group on loopback did not come back within 1 s';
  } catch (err) {
    return `loopback multicast fails: ${(err as Error).message}`;
  } finally {
    r.close();
    s.close();
  }
}

/** null when network namespaces with veth pairs can be made (root, iproute2), else why not. */
export function netnsProblem(): string | null {
  if (process.getuid?.() !== 0) return 'not root: network namespaces need root';
  const ns = `hbprobe${process.pid}`;
  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'pipe' });
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'pipe' });
    return null;
  } catch (err) {
    return `cannot create a network namespace: ${(err as Error).message.split('\n')[0]}`;
  }
}

export function nftProblem(): string | null {
  try {
    execFileSync('nft', ['--version'], { stdio: 'pipe' });
    return null;
  } catch {
    return 'nft (Debian package nftables) is not installed';
  }
}

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
