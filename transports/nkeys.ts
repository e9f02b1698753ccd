/**
 * transports/nkeys.ts: NATS user nkeys and their seeds, as text, and signing a nonce with
 * a seed: what the broker (verifying users, signing for its leafnode remotes) and the
 * client (answering a CHALLENGE, docs/PROTOCOL.md) share. Here, below both of them.
 *
 * A public user nkey is base32 (RFC 4648, no padding) of
 *
 *   [ prefix 20 << 3: 1 byte ][ Ed25519 public key: 32 bytes ][ CRC-16/XMODEM of the 33: 2 bytes, LE ]
 *
 * ('U...', 56 characters), and a user seed is base32 of
 *
 *   [ 18 << 3 | (20 << 3) >> 5 ][ ((20 << 3) & 31) << 3 ][ Ed25519 seed: 32 bytes ][ CRC-16/XMODEM: 2 bytes, LE ]
 *
 * ('SU...', 58 characters). The text checks need nothing but bytes; the keys themselves are
 * node:crypto's Ed25519. The browser bundle has no Ed25519 there (scripts/browser/crypto.js
 * throws): a browser client signs with its own `sign` function instead of a seed.
 */
import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const SEED_PREFIX = 18 << 3;
export const USER_PREFIX = 20 << 3;
/** PKCS#8 DER of an Ed25519 private key, before its 32 seed bytes. */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

export function base32Decode(text: string): Buffer | null {
  const out = Buffer.allocUnsafe(Math.floor((text.length * 5) / 8));
  let bits = 0;
  let acc = 0;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const v = ALPHABET.indexOf(text[i]!);
    if (v < 0) return null;
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >>> bits) & 0xff;
    }
  }
  return out.subarray(0, n);
}

export function base32Encode(bytes: Uint8Array): string {
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

/** CRC-16/XMODEM (polynomial 0x1021, initial 0), the nkeys checksum. */
export function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < bytes.length; i++) {
    crc ^= bytes[i]! << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** `raw` followed by its CRC-16, little-endian: the bytes an nkey's text encodes. */
export function withCrc(raw: Buffer): Buffer {
  const c = Buffer.alloc(2);
  c.writeUInt16LE(crc16(raw));
  return Buffer.concat([raw, c]);
}

/** The 32 Ed25519 public-key bytes of a user nkey ('U...'), or null when `text` is not one. Needs no crypto. */
export function userNkeyBytes(text: unknown): Buffer | null {
  if (typeof text !== 'string' || text.length !== 56 || text[0] !== 'U') return null;
  const raw = base32Decode(text);
  if (raw === null || raw.length !== 35 || raw[0] !== USER_PREFIX) return null;
  if (crc16(raw.subarray(0, 33)) !== raw.readUInt16LE(33)) return null;
  return raw.subarray(1, 33);
}

/** The 32 Ed25519 seed bytes of a user seed ('SU...'), or null when `text` is not one. Needs no crypto. */
export function userSeedBytes(text: unknown): Buffer | null {
  if (typeof text !== 'string' || text[0] !== 'S') return null;
  const raw = base32Decode(text);
  if (raw === null || raw.length !== 36) return null;
  if (crc16(raw.subarray(0, 34)) !== raw.readUInt16LE(34)) return null;
  if ((raw[0]! & 248) !== SEED_PREFIX || (((raw[0]! & 7) << 5) | ((raw[1]! & 248) >> 3)) !== USER_PREFIX) return null;
  return raw.subarray(2, 34);
}

/** A user's signing key, from its seed. */
export interface UserSeed {
  readonly key: KeyObject;
  /** The public user nkey, 'U...'. */
  readonly publicKey: string;
}

/**
 * The signing key of a user seed ('SU...'), or null when `text` is not one. Throws where
 * node:crypto has no Ed25519 (the browser bundle).
 */
export function parseUserSeed(text: string): UserSeed | null {
  const seed = userSeedBytes(text);
  if (seed === null) return null;
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
  const x = Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x!, 'base64url');
  return { key, publicKey: base32Encode(withCrc(Buffer.concat([Buffer.from([USER_PREFIX]), x]))) };
}

/** The seed text of 32 raw Ed25519 seed bytes (tests make users with it). */
export function encodeUserSeed(seed: Uint8Array): string {
  return base32Encode(withCrc(Buffer.concat([Buffer.from([SEED_PREFIX | (USER_PREFIX >> 5), (USER_PREFIX & 31) << 3]), seed])));
}

/** The seed's Ed25519 signature (64 bytes) of `bytes`. */
export function signBytes(seed: UserSeed, bytes: Uint8Array): Buffer {
  return sign(null, bytes, seed.key);
}
