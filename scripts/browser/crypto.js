// node:crypto in the browser bundle: only randomBytes (inbox and client ids).
import { Buffer } from 'buffer';

export function randomBytes(n) {
  const b = Buffer.alloc(n);
  globalThis.crypto.getRandomValues(b);
  return b;
}
