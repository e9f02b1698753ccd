/**
 * A test-only builder of NATS decentralized-auth material, with node:crypto's Ed25519: an
 * operator, accounts and users (nkeys: seed and public key), their JWTs (header
 * {"typ":"JWT","alg":"ed25519-nkey"}, claims jti/iat/iss/sub/name/nats{type,version:2},
 * base64url, signed by the issuer's seed), and a user's .creds file as nsc writes it.
 * A nats-server in operator mode (`operator`, `resolver: MEMORY`, `resolver_preload`)
 * trusts what it makes.
 *
 * An nkey is base32 (no padding) of [prefix byte][32-byte Ed25519 public key][CRC-16 LE];
 * a seed of [18 << 3 | prefix >> 5][(prefix & 31) << 3][32-byte Ed25519 seed][CRC-16 LE].
 */
import { createPrivateKey, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { base32Encode as base32, withCrc } from '../../transports/nkeys.js';

const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const PREFIX = { operator: 14 << 3, account: 0, user: 20 << 3 } as const;
const SEED = 18 << 3;

export interface Nkey {
  readonly kind: keyof typeof PREFIX;
  /** 'O...', 'A...' or 'U...'. */
  readonly publicKey: string;
  /** 'SO...', 'SA...' or 'SU...'. */
  readonly seed: string;
  readonly key: KeyObject;
}

export function newNkey(kind: keyof typeof PREFIX): Nkey {
  const raw = randomBytes(32);
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, raw]), format: 'der', type: 'pkcs8' });
  const pub = Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x!, 'base64url');
  const p = PREFIX[kind];
  return {
    kind,
    publicKey: base32(withCrc(Buffer.concat([Buffer.from([p]), pub]))),
    seed: base32(withCrc(Buffer.concat([Buffer.from([SEED | (p >> 5), (p & 31) << 3]), raw]))),
    key,
  };
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8').toString('base64url');

/** A JWT for `subject`, issued (signed) by `issuer`; `exp` in seconds since the epoch. */
export function jwt(issuer: Nkey, subject: Nkey, name: string, nats: Record<string, unknown>, exp?: number): string {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    jti: base32(randomBytes(32)),
    iat: exp !== undefined && exp < now ? exp - 60 : now,
    ...(exp !== undefined ? { exp } : {}),
    iss: issuer.publicKey,
    name,
    sub: subject.publicKey,
    nats: { ...nats, type: subject.kind, version: 2 },
  };
  const body = `${b64({ typ: 'JWT', alg: 'ed25519-nkey' })}.${b64(claims)}`;
  return `${body}.${sign(null, Buffer.from(body, 'utf8'), issuer.key).toString('base64url')}`;
}

export const operatorJwt = (op: Nkey) => jwt(op, op, 'test-operator', {});

export const accountJwt = (op: Nkey, acc: Nkey, name = 'test-account') =>
  jwt(op, acc, name, {
    limits: { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 },
    default_permissions: { pub: {}, sub: {} },
  });

export const userJwt = (acc: Nkey, user: Nkey, exp?: number) => jwt(acc, user, 'test-user', { pub: {}, sub: {}, subs: -1, data: -1, payload: -1 }, exp);

/** A .creds file's text, as nsc writes it. */
export function credsText(userJwtText: string, seed: string): string {
  return [
    '-----BEGIN NATS USER JWT-----',
    userJwtText,
    '------END NATS USER JWT------',
    '',
    '************************* IMPORTANT *************************',
    'NKEY Seed printed below can be used to sign and prove identity.',
    'NKEYs are sensitive and should be treated as secrets.',
    '',
    '-----BEGIN USER NKEY SEED-----',
    seed,
    '------END USER NKEY SEED------',
    '',
    '*************************************************************',
    '',
  ].join('\n');
}
