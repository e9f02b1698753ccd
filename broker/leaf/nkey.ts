/**
 * broker/leaf/nkey.ts: signing a hub's nonce with a user nkey seed, for a remote's
 * `nkey` option: CONNECT then carries `nkey` (the public key, 'U...') and `sig` (the
 * Ed25519 signature of the nonce's bytes, base64url), as nats-server expects of a leaf
 * or client nkey user. The seed's layout and decoding are transports/nkeys.ts's, which
 * the hopbus client shares.
 */
import { signBytes, type UserSeed } from '../../transports/nkeys.js';

export { encodeUserSeed, parseUserSeed, type UserSeed } from '../../transports/nkeys.js';

/** CONNECT's `sig`: the seed's signature of the nonce, base64url. */
export function signNonce(seed: UserSeed, nonce: string): string {
  return signBytes(seed, Buffer.from(nonce, 'latin1')).toString('base64url');
}
