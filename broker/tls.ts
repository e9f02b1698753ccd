/**
 * broker/tls.ts: the broker option `tls` (docs/SECURITY.md), validated and loaded once
 * at start, and the settings each listener hands to transports/tls.ts.
 *
 *   tls: { cert, key, ca?, verify?, required?, minVersion?, http? }
 *
 *  - `cert`, `key`, `ca`: file paths (the --config JSON), or PEM text (embedded options;
 *    anything that begins with "-----BEGIN"). Read here, when the broker is made: a
 *    missing file or a key that does not match its certificate stops it with a sentence
 *    naming the option.
 *  - `verify`: ask every client of the TCP and NATS listeners for a certificate signed by
 *    `ca` (required then) and refuse those without one. Users configured with
 *    `certificate: { subject, san }` are who such a certificate says (broker/auth/).
 *  - `required` (default true): plain-text connections are refused, with an error that
 *    says to use TLS; false serves both on the same port (the first bytes tell which).
 *  - `minVersion`: 'TLSv1.2' (default) or 'TLSv1.3'.
 *  - `http` (default true): the HTTP port (monitoring, dashboard, WebSocket) serves
 *    HTTPS and WSS with the same certificate; it never asks browsers for certificates.
 *
 * Applies to the TCP listener (tls://host:port), the NATS listener (TLS after INFO, as
 * nats-server) and the HTTP port; the Unix socket, shm and inproc stay in the host.
 */
import fs from 'node:fs';
import tls from 'node:tls';
import type { TlsServerSettings } from '../transports/tls.js';

export interface TlsConfig {
  /** The broker's certificate (chain): a file path, or PEM text. */
  cert: string;
  /** Its private key: a file path, or PEM text. */
  key: string;
  /** The CA(s) that sign clients' certificates (needed with `verify`): a file path, or PEM text. */
  ca?: string;
  /** Require a client certificate signed by `ca` on the TCP and NATS listeners (default false). */
  verify?: boolean;
  /** Refuse plain-text connections (default true); false serves TLS and plain text on the same ports. */
  required?: boolean;
  /** Oldest TLS version accepted: 'TLSv1.2' (default) or 'TLSv1.3'. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** Serve HTTPS and WSS on the HTTP port too (default true). */
  http?: boolean;
}

const KEYS: Record<keyof TlsConfig, 'string' | 'bool' | 'version'> = {
  cert: 'string',
  key: 'string',
  ca: 'string',
  verify: 'bool',
  required: 'bool',
  minVersion: 'version',
  http: 'bool',
};
const VERSIONS = ['TLSv1.2', 'TLSv1.3'];

/** What is wrong with the `tls` option's shape, or null (files are read by loadTls). */
export function tlsOptionProblem(value: unknown): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return '"tls" must be an object { cert, key, ca, verify, required, minVersion, http }';
  const t = value as Record<string, unknown>;
  for (const [k, v] of Object.entries(t)) {
    const kind = KEYS[k as keyof TlsConfig];
    if (kind === undefined) return `"tls" has an unknown key "${k}"; known keys: ${Object.keys(KEYS).join(', ')}`;
    if (v === undefined) continue;
    if (kind === 'string' && (typeof v !== 'string' || v === '')) return `"tls.${k}" must be a file path or PEM text, got ${JSON.stringify(v)}`;
    if (kind === 'bool' && typeof v !== 'boolean') return `"tls.${k}" must be true or false, got ${JSON.stringify(v)}`;
    if (kind === 'version' && !VERSIONS.includes(v as string)) return `"tls.${k}" must be one of ${VERSIONS.join(', ')}, got ${JSON.stringify(v)}`;
  }
  if (t.cert === undefined || t.key === undefined) return '"tls" needs "cert" and "key" (the broker\'s certificate and its private key)';
  if (t.verify === true && t.ca === undefined) return '"tls.verify" needs "tls.ca": the CA that signs the clients\' certificates';
  return null;
}

/** PEM text given inline (anything that begins with "-----BEGIN"), not a file path. */
export function isPem(s: string): boolean {
  return s.trimStart().startsWith('-----BEGIN');
}

/**
 * A certificate, key or CA option: PEM text as it is, or the file it names, read now;
 * a file that cannot be read is an Error naming the option (`what`, e.g. "tls.cert").
 */
export function readPem(what: string, v: string): Buffer {
  if (isPem(v)) return Buffer.from(v, 'utf8');
  try {
    return fs.readFileSync(v);
  } catch (err) {
    throw new Error(`"${what}": cannot read ${v}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/** The `tls` option, loaded: what every listener needs, and what logs may show. */
export class TlsSettings {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer | null;
  readonly verify: boolean;
  readonly required: boolean;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly http: boolean;
  /** The file each came from, or null for PEM text given inline (never shown). */
  readonly files: { cert: string | null; key: string | null; ca: string | null };

  constructor(c: TlsConfig) {
    const read = (what: 'cert' | 'key' | 'ca', v: string): Buffer => readPem(`tls.${what}`, v);
    this.cert = read('cert', c.cert);
    this.key = read('key', c.key);
    this.ca = c.ca === undefined ? null : read('ca', c.ca);
    this.verify = c.verify === true;
    this.required = c.required !== false;
    this.minVersion = c.minVersion ?? 'TLSv1.2';
    this.http = c.http !== false;
    this.files = {
      cert: isPem(c.cert) ? null : c.cert,
      key: isPem(c.key) ? null : c.key,
      ca: c.ca === undefined || isPem(c.ca) ? null : c.ca,
    };
    try {
      tls.createSecureContext(this.secureOptions());
    } catch (err) {
      throw new Error(`"tls": the certificate, key and CA cannot be used together: ${(err as Error).message}`, { cause: err });
    }
  }

  /** node:tls server options of the TCP and NATS listeners. */
  secureOptions(): tls.TlsOptions {
    return {
      cert: this.cert,
      key: this.key,
      ...(this.ca !== null ? { ca: this.ca } : {}),
      minVersion: this.minVersion,
      requestCert: this.verify,
      rejectUnauthorized: this.verify,
    };
  }

  /** What transports/tls.ts needs for one listener. */
  serverSettings(handshakeTimeoutMs: number, plainRefusal: Buffer, onFailure: (remote: string, err: Error) => void): TlsServerSettings {
    return { secure: this.secureOptions(), required: this.required, handshakeTimeoutMs, plainRefusal, onFailure };
  }

  /** For the startup log and /varz: paths and switches, never key material. */
  toJSON() {
    const shown = (f: string | null) => f ?? '(PEM text)';
    return {
      cert: shown(this.files.cert),
      key: shown(this.files.key),
      ca: this.ca === null ? null : shown(this.files.ca),
      verify: this.verify,
      required: this.required,
      minVersion: this.minVersion,
      http: this.http,
    };
  }
}
