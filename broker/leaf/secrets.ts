/**
 * broker/leaf/secrets.ts: what a remote's `tls` and `credentials` options name, read and
 * checked once, when the broker's options are resolved (broker/config.ts), so that a
 * missing file or a bad key stops the broker at start with a sentence naming the option
 * and the file, not an uplink that fails later at every attempt.
 *
 *  - `tls: { ca, cert, key, servername, handshakeFirst }`: `ca`, `cert`, `key` are file
 *    paths or PEM text, as the broker's own `tls` option (broker/tls.ts readPem).
 *  - `credentials: '/path/user.creds'`: a NATS credentials file, a user JWT and its nkey
 *    seed between the standard markers (nsc writes them):
 *
 *      -----BEGIN NATS USER JWT-----
 *      eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJ...
 *      ------END NATS USER JWT------
 *      (text)
 *      -----BEGIN USER NKEY SEED-----
 *      SUA...
 *      ------END USER NKEY SEED------
 *
 *    CONNECT carries the JWT and the seed's signature of the hub's nonce (nkey.ts). The
 *    JWT is checked for its shape and that it names the seed's user; its signature chain
 *    (user, account, operator) and expiry are the hub's to check.
 *
 * The seed never leaves this process: it is never logged, and toJSON shows file names only.
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { isPem, readPem } from '../tls.js';
import type { LeafnodesOptions, LeafRemoteOptions, LeafTlsOptions } from './config.js';
import { parseUserSeed, type UserSeed } from './nkey.js';

/** A remote's `tls` option, loaded: how to run the handshake with each of its hubs. */
export class LeafTls {
  readonly ca: Buffer | null;
  readonly cert: Buffer | null;
  readonly key: Buffer | null;
  readonly servername: string | null;
  /** TLS from the first byte, before the hub's INFO (a hub with `handshake_first`). */
  readonly handshakeFirst: boolean;
  private readonly shown: Record<string, unknown>;

  /** `at` names the option in errors ("leafnodes.remotes[0].tls"). */
  constructor(o: LeafTlsOptions, at: string) {
    this.ca = o.ca === undefined ? null : readPem(`${at}.ca`, o.ca);
    this.cert = o.cert === undefined ? null : readPem(`${at}.cert`, o.cert);
    this.key = o.key === undefined ? null : readPem(`${at}.key`, o.key);
    this.servername = o.servername ?? null;
    this.handshakeFirst = o.handshakeFirst === true;
    const shown = (v: string | undefined) => (v === undefined ? null : isPem(v) ? '(PEM text)' : v);
    this.shown = { ca: shown(o.ca), cert: shown(o.cert), key: shown(o.key), servername: this.servername, handshakeFirst: this.handshakeFirst };
    try {
      tls.createSecureContext(this.secure());
    } catch (err) {
      throw new Error(`"${at}": the certificate, key and CA cannot be used together: ${(err as Error).message}`, { cause: err });
    }
  }

  private secure(): tls.SecureContextOptions {
    return { ...(this.ca !== null ? { ca: this.ca } : {}), ...(this.cert !== null ? { cert: this.cert, key: this.key! } : {}) };
  }

  /** node:tls client options for a hub at `host`: its certificate is checked against `ca` (else the system's CAs) and the name. */
  connectOptions(host: string): tls.ConnectionOptions {
    const name = this.servername ?? (net.isIP(host) === 0 ? host : null);
    return { ...this.secure(), host, rejectUnauthorized: true, ...(name !== null ? { servername: name } : {}) };
  }

  toJSON() {
    return this.shown;
  }
}

/** A remote's `credentials` file, read: the user JWT and the seed that signs the hub's nonce. */
export class Credentials {
  readonly jwt: string;
  readonly seed: UserSeed;

  constructor(
    readonly file: string,
    at: string,
  ) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`"${at}": cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
    const jwt = block(text, 'NATS USER JWT');
    if (jwt === null) throw new Error(`"${at}": ${file} has no user JWT (a "-----BEGIN NATS USER JWT-----" block); is it a NATS .creds file?`);
    const claims = jwtClaims(jwt);
    if (claims === null) throw new Error(`"${at}": the JWT in ${file} is not a NATS JWT (three base64url parts: header, claims, signature)`);
    const nats = claims.nats as Record<string, unknown> | undefined;
    if (typeof claims.sub !== 'string' || (nats?.type !== undefined && nats.type !== 'user'))
      throw new Error(`"${at}": the JWT in ${file} is not a user's (its claims have type ${JSON.stringify(nats?.type)})`);
    const seedText = block(text, 'USER NKEY SEED');
    if (seedText === null) throw new Error(`"${at}": ${file} has no user nkey seed (a "-----BEGIN USER NKEY SEED-----" block)`);
    // Never put the seed's text in an error: it is the user's secret.
    const seed = parseUserSeed(seedText);
    if (seed === null) throw new Error(`"${at}": the nkey seed in ${file} is not a valid user seed (SU..., checksum)`);
    if (seed.publicKey !== claims.sub)
      throw new Error(`"${at}": the seed in ${file} is not the JWT's user's (the JWT is for ${claims.sub as string}, the seed for ${seed.publicKey})`);
    this.jwt = jwt;
    this.seed = seed;
  }

  toJSON() {
    return { file: this.file, user: this.seed.publicKey };
  }
}

/** What one remote's options name, loaded. */
export interface RemoteSecrets {
  /** TLS to its hubs: the `tls` option, or defaults for `tls://` URLs; null for plain TCP. */
  readonly tls: LeafTls | null;
  readonly credentials: Credentials | null;
}

/** Reads and checks a (valid-shaped) remote's `tls` and `credentials`; throws an Error naming the option. */
export function loadRemoteSecrets(r: LeafRemoteOptions, at: string): RemoteSecrets {
  const tlsUrl = r.urls.some((u) => u.startsWith('tls://'));
  return {
    tls: r.tls !== undefined ? new LeafTls(r.tls, `${at}.tls`) : tlsUrl ? new LeafTls({}, `${at}.tls`) : null,
    credentials: r.credentials !== undefined ? new Credentials(r.credentials, `${at}.credentials`) : null,
  };
}

/** The `leafnodes` option with what its remotes' `tls` and `credentials` name, read. */
export interface ResolvedLeafnodes extends LeafnodesOptions {
  /** One per remote, in order. */
  readonly secrets: readonly RemoteSecrets[];
}

/** The (valid) `leafnodes` option with its remotes' files read; throws an Error naming the option and the file. */
export function resolveLeafnodes(o: LeafnodesOptions): ResolvedLeafnodes {
  return { ...o, secrets: o.remotes.map((r, i) => loadRemoteSecrets(r, `leafnodes.remotes[${i}]`)) };
}

/** The text between `-----BEGIN <label>-----` and the next marker line (any number of dashes), or null. */
function block(text: string, label: string): string | null {
  const lines = text.split(/\r?\n/);
  const begin = new RegExp(`^\\s*-{3,}\\s*BEGIN ${label}\\s*-{3,}\\s*$`, 'i');
  const start = lines.findIndex((l) => begin.test(l));
  if (start < 0) return null;
  let out = '';
  for (let i = start + 1; i < lines.length; i++) {
    const l = lines[i]!.trim();
    if (/^-{3,}/.test(l)) break;
    out += l;
  }
  return out === '' ? null : out;
}

/** A JWT's claims (its middle part), or null when it is not header.claims.signature with JSON objects. */
function jwtClaims(jwt: string): Record<string, unknown> | null {
  const parts = jwt.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+={0,2}$/.test(p))) return null;
  try {
    const header: unknown = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'));
    const claims: unknown = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    const typ = header !== null && typeof header === 'object' ? (header as Record<string, unknown>).typ : undefined;
    if (typeof typ !== 'string' || typ.toUpperCase() !== 'JWT') return null;
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) return null;
    return claims as Record<string, unknown>;
  } catch {
    return null;
  }
}
