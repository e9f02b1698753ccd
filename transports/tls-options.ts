/**
 * The client's TLS settings (the connect option `tls`), apart from transports/tls.ts so
 * that code bound for the browser can name them without reaching node:tls.
 */

/** Client-side TLS settings: PEM text or buffers. */
export interface ClientTlsOptions {
  /** The CA certificate(s) that signed the broker's certificate (default: the system's). */
  ca?: string | Buffer | Array<string | Buffer>;
  /** This client's certificate, for a broker that verifies clients. */
  cert?: string | Buffer;
  /** The private key of `cert`. */
  key?: string | Buffer;
  /** Check the broker's certificate against `ca` and its name (default true). */
  rejectUnauthorized?: boolean;
  /** The name the broker's certificate must carry, and sent for SNI (default: the address's host). */
  servername?: string;
}

export const CLIENT_TLS_KEYS: ReadonlyArray<keyof ClientTlsOptions> = ['ca', 'cert', 'key', 'rejectUnauthorized', 'servername'];
