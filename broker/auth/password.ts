/**
 * broker/auth/password.ts: how passwords (and tokens) are stored and checked.
 *
 * A stored secret is either plain text (accepted, with a warning at startup) or an
 * scrypt hash in this format, which `hopbus passwd` prints:
 *
 *   $scrypt$N=16384,r=8,p=1$<salt, base64, 16 bytes>$<key, base64, 32 bytes>
 *
 * N, r and p are scrypt's cost, block size and parallelism (node:crypto scrypt); the key
 * is scrypt(password as UTF-8, salt, 32). Verification recomputes it with the stored
 * parameters and compares in constant time. scrypt is slow on purpose (about 16 MiB and
 * tens of ms at these settings) and runs on the broker's thread, so failed attempts are
 * slowed per address (backoff.ts), and a password that verified once is remembered as
 * its SHA-256 so reconnects do not pay scrypt again.
 */
import { createHash, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';

export const SCRYPT_PREFIX = '$scrypt$';

/** The defaults `hopbus passwd` uses (OWASP's minimum for scrypt is N=2^17 with r=8, p=1 at 64 MiB; 2^14 keeps a connect under ~50 ms). */
export const SCRYPT_DEFAULTS = { N: 16384, r: 8, p: 1 } as const;

const KEY_BYTES = 32;
const SALT_BYTES = 16;

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** The stored form of `password`: a fresh salt, the given cost. */
export function hashPassword(password: string, params: ScryptParams = SCRYPT_DEFAULTS): string {
  const salt = randomBytes(SALT_BYTES);
  const key = scryptSync(password, salt, KEY_BYTES, { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + (1 << 20) });
  return `${SCRYPT_PREFIX}N=${params.N},r=${params.r},p=${params.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export function isHashed(stored: string): boolean {
  return stored.startsWith(SCRYPT_PREFIX);
}

interface Parsed {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

/** The parts of a `$scrypt$` string, or a sentence saying what is wrong with it. */
export function parseHash(stored: string): Parsed | string {
  const parts = stored.slice(SCRYPT_PREFIX.length).split('$');
  if (parts.length !== 3) return 'an scrypt hash is $scrypt$N=..,r=..,p=..$SALT$KEY (run "hopbus passwd")';
  const params: Record<string, number> = {};
  for (const kv of parts[0]!.split(',')) {
    const [k, v] = kv.split('=');
    params[k!] = Number(v);
  }
  const { N, r, p } = params as unknown as ScryptParams;
  if (!Number.isSafeInteger(N) || N < 2 || (N & (N - 1)) !== 0 || N > 1 << 20) return 'scrypt N must be a power of two from 2 to 2^20';
  if (!Number.isSafeInteger(r) || r < 1 || r > 32 || !Number.isSafeInteger(p) || p < 1 || p > 16) return 'scrypt r must be 1..32 and p 1..16';
  const salt = Buffer.from(parts[1]!, 'base64');
  const key = Buffer.from(parts[2]!, 'base64');
  if (salt.length < 8 || key.length < 16) return 'the scrypt salt or key is too short';
  return { params: { N, r, p }, salt, key };
}

/** A stored secret, prepared for checking many times. */
export class Secret {
  private readonly parsed: Parsed | null;
  private readonly plain: Buffer | null;
  /** SHA-256 of the last given password that verified (see the top of this file). */
  private remembered: Buffer | null = null;

  constructor(stored: string) {
    if (isHashed(stored)) {
      const p = parseHash(stored);
      if (typeof p === 'string') throw new TypeError(p);
      this.parsed = p;
      this.plain = null;
    } else {
      this.parsed = null;
      this.plain = sha256(stored);
    }
  }

  get hashed(): boolean {
    return this.parsed !== null;
  }

  /** Whether `given` is this secret; constant time in what it compares. */
  verify(given: string): boolean {
    const digest = sha256(given);
    if (this.plain !== null) return timingSafeEqual(digest, this.plain);
    if (this.remembered !== null && timingSafeEqual(digest, this.remembered)) return true;
    const { params, salt, key } = this.parsed!;
    const got = scryptSync(given, salt, key.length, { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + (1 << 20) });
    const ok = timingSafeEqual(got, key);
    if (ok) this.remembered = digest;
    return ok;
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
