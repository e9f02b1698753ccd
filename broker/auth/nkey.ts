/**
 * broker/auth/nkey.ts: NATS nkeys, the Ed25519 public keys of users, and the nonce
 * they sign. An nkey is base32 (RFC 4648, no padding) of
 *
 *   [ prefix: 1 byte ][ Ed25519 public key: 32 bytes ][ CRC-16/XMODEM of the 33: 2 bytes, little-endian ]
 *
 * and a user's prefix byte is 20 << 3 (so the text starts with 'U'). A client proves it
 * holds the seed by signing the nonce the server sent (its ASCII bytes): on the NATS
 * listener the nonce is in INFO and the signature in CONNECT `sig`, base64 (URL-safe or
 * not, padded or not); on the hopbus protocol the nonce is in a CHALLENGE frame and the
 * signature in the PROOF that answers it (broker/session.ts).
 * Verification is node:crypto's Ed25519; nothing else is needed from the nkeys library.
 * The text format is transports/nkeys.ts's, shared with the client.
 */
import { createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import { userNkeyBytes } from '../../transports/nkeys.js';

/** A user nkey's Ed25519 public key, or null when `text` is not one. */
export function parseUserNkey(text: string): KeyObject | null {
  const x = userNkeyBytes(text);
  if (x === null) return null;
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: x.toString('base64url') }, format: 'jwk' });
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
