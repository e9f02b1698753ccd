/**
 * broker/auth/backoff.ts: a small per-address back-off against password guessing.
 * After FREE_FAILURES failed attempts from one address, its next attempt must wait
 * BASE_MS, doubling with each further failure up to MAX_MS; an attempt that comes
 * sooner is refused without looking at its credentials (so it costs no scrypt). A
 * success forgets the address; so does a quiet FORGET_MS. At most MAX_ADDRESSES are
 * remembered (the oldest is forgotten first), so a flood of addresses costs bounded
 * memory. Time is the caller's clock (a FakeClock in tests).
 */

export const FREE_FAILURES = 3;
export const BASE_MS = 250;
export const MAX_MS = 30_000;
export const FORGET_MS = 10 * 60_000;
export const MAX_ADDRESSES = 10_000;

interface Entry {
  failures: number;
  /** clock.now() before which the next attempt is refused. */
  until: number;
  last: number;
}

export class AuthBackoff {
  private readonly entries = new Map<string, Entry>();

  /** Milliseconds `address` must still wait before it may try again; 0 when it may try now. */
  wait(address: string, now: number): number {
    const e = this.entries.get(address);
    if (e === undefined) return 0;
    if (now - e.last >= FORGET_MS) {
      this.entries.delete(address);
      return 0;
    }
    return e.until > now ? Math.ceil(e.until - now) : 0;
  }

  failed(address: string, now: number): void {
    let e = this.entries.get(address);
    if (e === undefined) {
      if (this.entries.size >= MAX_ADDRESSES) this.entries.delete(this.entries.keys().next().value!);
      e = { failures: 0, until: 0, last: now };
      this.entries.set(address, e);
    }
    e.failures++;
    e.last = now;
    if (e.failures >= FREE_FAILURES) e.until = now + Math.min(MAX_MS, BASE_MS * 2 ** (e.failures - FREE_FAILURES));
  }

  succeeded(address: string): void {
    this.entries.delete(address);
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * The address part of a link's `remote`, which the back-off is keyed on: TCP links say
 * "address:port" (IPv6 without brackets), so the port is cut; WebSocket links say the
 * address alone and Unix links "unix:PATH", kept whole.
 */
export function addressOf(remote: string, transport: string): string {
  if (transport !== 'tcp' && transport !== 'tls') return remote;
  const colon = remote.lastIndexOf(':');
  return colon > 0 ? remote.slice(0, colon) : remote;
}
