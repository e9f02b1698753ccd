/**
 * broker/auth/nkey.ts: NATS nkeys, the Ed25519 public keys of users, and the nonce
 * they sign. An nkey is base32 (RFC 4648, no padding) of
 *
 *   [ prefix: 1 byte ][ Ed25519 public key: 32 bytes ][ CRC-16/XMODEM of the 33: 2 bytes, little-endian ]
 *
 * and a user's prefix byte is 20 << 3 (so the text starts with 'U'). A client proves it
 * holds the seed by signing the nonce the server sent in INFO (its ASCII bytes) and
 * sending the signature in CONNECT `sig`, base64 (URL-safe or not, padded or not).
 * Verification is node:crypto's Ed25519; nothing else is needed from the nkeys library.
 */
import { createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const USER_PREFIX = 20 << 3;

/** A user nkey's Ed25519 public key, or null when `text` is not one. */
export function parseUserNkey(text: string): KeyObject | null {
  if (typeof text !== 'string' || text.length !== 56 || text[0] !== 'U') return null;
  const raw = base32Decode(text);
  if (raw === null || raw.length !== 35 || raw[0] !== USER_PREFIX) return null;
  if (crc16(raw.subarray(0, 33)) !== raw.readUInt16LE(33)) return null;
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.subarray(1, 33).toString('base64url') }, format: 'jwk' });
}

/** Whether `sig` (base64) is `key`'s signature of `nonce`. */
export function verifyNonce(key: KeyObject, nonce: string, sig: string): boolean {
  const s = Buffer.from(sig, 'base64');
  if (s.length !== 64) return false;
  try {
    return verify(null, Buffer.from(nonce, 'latin1'), key, s);
  } catch {
    return false;
  }
}

/** A fresh nonce for one connection: 16 random bytes, base64url (22 characters). */
export function newNonce(): string {
  return randomBytes(16).toString('base64url');
}

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

/** CRC-16/XMODEM (polynomial 0x1021, initial 0), the nkeys checksum. */
export function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < bytes.length; i++) {
    crc ^= bytes[i]! << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}
