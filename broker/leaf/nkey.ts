/**
 * broker/leaf/nkey.ts: signing a hub's nonce with a user nkey seed, for a remote's
 * `nkey` option: CONNECT then carries `nkey` (the public key, 'U...') and `sig` (the
 * Ed25519 signature of the nonce's bytes, base64url), as nats-server expects of a leaf
 * or client nkey user.
 *
 * A user seed is base32 (no padding) of
 *
 *   [ 18 << 3 | (20 << 3) >> 5 ][ ((20 << 3) & 31) << 3 ][ Ed25519 seed: 32 bytes ][ CRC-16/XMODEM: 2 bytes, LE ]
 *
 * ('SU...'); the public nkey's layout is in broker/auth/nkey.ts, which also reads it.
 */
import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { base32Decode, crc16 } from '../auth/nkey.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const SEED_PREFIX = 18 << 3;
const USER_PREFIX = 20 << 3;
/** PKCS#8 DER of an Ed25519 private key, before its 32 seed bytes. */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >>> bits) & 31];
    }
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31];
  return out;
}

function withCrc(raw: Buffer): Buffer {
  const c = Buffer.alloc(2);
  c.writeUInt16LE(crc16(raw));
  return Buffer.concat([raw, c]);
}

/** A user nkey seed ('SU...'), or null when `text` is not one. */
export interface UserSeed {
  readonly key: KeyObject;
  /** The public user nkey, 'U...'. */
  readonly publicKey: string;
}

export function parseUserSeed(text: string): UserSeed | null {
  if (typeof text !== 'string' || text[0] !== 'S') return null;
  const raw = base32Decode(text);
  if (raw === null || raw.length !== 36) return null;
  if (crc16(raw.subarray(0, 34)) !== raw.readUInt16LE(34)) return null;
  if ((raw[0]! & 248) !== SEED_PREFIX || (((raw[0]! & 7) << 5) | ((raw[1]! & 248) >> 3)) !== USER_PREFIX) return null;
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, raw.subarray(2, 34)]), format: 'der', type: 'pkcs8' });
  const x = Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x!, 'base64url');
  return { key, publicKey: base32Encode(withCrc(Buffer.concat([Buffer.from([USER_PREFIX]), x]))) };
}

/** The seed text of 32 raw Ed25519 seed bytes (tests make users with it). */
export function encodeUserSeed(seed: Uint8Array): string {
  return base32Encode(withCrc(Buffer.concat([Buffer.from([SEED_PREFIX | (USER_PREFIX >> 5), (USER_PREFIX & 31) << 3]), seed])));
}

/** CONNECT's `sig`: the seed's signature of the nonce, base64url. */
export function signNonce(seed: UserSeed, nonce: string): string {
  return sign(null, Buffer.from(nonce, 'latin1'), seed.key).toString('base64url');
}
