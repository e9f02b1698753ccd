/**
 * What a suite needs of the machine, each as `null` when present, else why not (for
 * guards.ts). None of them decides by how fast the machine is: the multicast probe waits
 * for its datagram, and its bound is only a safety net for a machine where the datagram
 * never comes back.
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

/** How long the multicast probe waits for its own datagram before calling multicast broken. */
const PROBE_SAFETY_MS = 20_000;

/**
 * null when loopback multicast works here, else why not. Sends a datagram to a group on
 * 127.0.0.1 every 50 ms until one comes back; a loaded machine just takes longer.
 */
export async function multicastProblem(): Promise<string | null> {
  const group = '239.250.250.250';
  const r = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const s = dgram.createSocket('udp4');
  let resend: NodeJS.Timeout | undefined;
  let safety: NodeJS.Timeout | undefined;
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
    const sendError = new Promise<string>((resolve) => s.once('error', (err) => resolve(`sending to a multicast group fails: ${err.message}`)));
    const got = new Promise<null>((resolve) => r.once('message', () => resolve(null)));
    const never = new Promise<string>((resolve) => {
      safety = setTimeout(() => resolve(`no datagram sent to a multicast group on loopback came back in ${PROBE_SAFETY_MS / 1000} s`), PROBE_SAFETY_MS);
    });
    const send = () => s.send('probe', port, group);
    send();
    resend = setInterval(send, 50);
    return await Promise.race([got, sendError, never]);
  } catch (err) {
    return `loopback multicast fails: ${(err as Error).message}`;
  } finally {
    clearInterval(resend);
    clearTimeout(safety);
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

export const CHROMIUM = '/usr/bin/chromium';

export function chromiumProblem(): string | null {
  return fs.existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing (apt-get install -y chromium; .ci/run installs it)`;
}
