// node:crypto in the browser bundle: randomBytes (inbox and client ids), and the Ed25519
// functions of transports/nkeys.ts, which are not here: a browser client gives `nkey` and
// `sign` instead of `seed` (client/options.ts says so when they throw).
import { Buffer } from 'buffer';

export function randomBytes(n) {
  const b = Buffer.alloc(n);
  globalThis.crypto.getRandomValues(b);
  return b;
}

function unavailable() {
  throw new Error('no Ed25519 in the browser build');
}

export const createPrivateKey = unavailable;
export const createPublicKey = unavailable;
export const sign = unavailable;
