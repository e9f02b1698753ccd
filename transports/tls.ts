/**
 * TLS over the stream transport (node:tls): the listener side that sorts a fresh
 * connection into TLS or plain by its first bytes and runs the handshake, and the
 * client's dialer for tls:// addresses. Once the handshake is done a TLS socket is a
 * socket like any other: the StreamLink over it batches writes exactly as over TCP, so
 * a burst of messages leaves in one write and so in as few TLS records as the burst's
 * size allows (16 KiB of plaintext a record), not one record per message.
 *
 * One node:tls Server per listener holds the certificates and runs every handshake: a
 * connection is handed to it with `server.emit('connection', socket)` (the documented
 * way to run TLS over a socket accepted elsewhere), either at once or, for protocols
 * that upgrade in place (NATS: INFO in plain text, then TLS), later.
 *
 * Knows sockets and frames' first bytes, never sessions or users: the certificate a
 * client presented is handed up on the link (`certificate`), and the broker maps it.
 */
import net from 'node:net';
import tls from 'node:tls';
import { ConnectionError } from '../runtime/errors.js';
import type { AcceptFn, Listener, PeerCertificate } from './link.js';
import { StreamLink } from './stream.js';
import type { Endpoint } from './url.js';
import type { ClientTlsOptions } from './tls-options.js';

export { CLIENT_TLS_KEYS, type ClientTlsOptions } from './tls-options.js';

export interface TlsServerSettings {
  /** node:tls server options: key, cert, ca, requestCert, rejectUnauthorized, minVersion. */
  secure: tls.TlsOptions;
  /** Plain-text connections are refused (true) or served beside TLS ones on the same port (false). */
  required: boolean;
  /** A new connection must send its first bytes, and then finish its TLS handshake, within this time each. */
  handshakeTimeoutMs: number;
  /** Sent to a plain-text connection on a TLS-only port before it is closed (the protocol's error, saying to use TLS). */
  plainRefusal: Buffer;
  /** A handshake failed or timed out, or plain text came to a TLS-only port: for the owner's log and counters. */
  onFailure?(remote: string, err: Error): void;
}

/**
 * A TLS ClientHello begins with a handshake record: 0x16, then the record version 3.1 to
 * 3.4. Read as a hopbus frame's little-endian length those three bytes are at least
 * 66,326, beyond the 4 KiB a CONNECT may be, so no valid CONNECT is mistaken for TLS.
 */
export function looksLikeTls(chunk: Buffer): boolean {
  return chunk[0] === 0x16 && (chunk.length < 2 || chunk[1] === 0x03) && (chunk.length < 3 || (chunk[2]! >= 1 && chunk[2]! <= 4));
}

function keyOf(s: net.Socket): string {
  return `${s.remoteAddress}:${s.remotePort}`;
}

/** The verified client certificate of `s`, or null when it presented none or it did not verify. */
export function peerCertificate(s: tls.TLSSocket): PeerCertificate | null {
  if (!s.authorized) return null;
  const c = s.getPeerCertificate();
  if (c === null || typeof c !== 'object' || c.subject === undefined) return null;
  const subject: Record<string, string> = {};
  for (const [k, v] of Object.entries(c.subject as unknown as Record<string, string | string[]>)) subject[k] = Array.isArray(v) ? v.join('+') : v;
  const altNames = typeof c.subjectaltname === 'string' && c.subjectaltname !== '' ? c.subjectaltname.split(/,\s*/) : [];
  return { subject, altNames };
}

interface Waiting {
  then(s: tls.TLSSocket): void;
  failed(err: Error): void;
}

/** The TLS side of one listener: sorts connections, runs their handshakes. */
export class TlsGate {
  private readonly server: tls.Server;
  /** Connections whose handshake is running, by remote address: what to do when it ends. */
  private readonly waiting = new Map<string, Waiting>();

  constructor(readonly settings: TlsServerSettings) {
    // The handshake timeout is upgrade()'s own, which also covers what node:tls's does not see.
    this.server = tls.createServer({ ...settings.secure, handshakeTimeout: 0 });
    this.server.on('secureConnection', (s: tls.TLSSocket) => {
      const k = keyOf(s);
      const w = this.waiting.get(k);
      this.waiting.delete(k);
      if (w === undefined) s.destroy();
      else w.then(s);
    });
    this.server.on('tlsClientError', (err: Error, s: tls.TLSSocket) => {
      // The socket may be gone (remoteAddress undefined): then its raw socket's close tells upgrade().
      this.waiting.get(keyOf(s))?.failed(err);
    });
  }

  private fail(raw: net.Socket, remote: string, err: Error): void {
    this.settings.onFailure?.(remote, err);
    raw.destroy();
  }

  /**
   * Runs the TLS handshake over `raw`, a connected socket of which nothing has been read
   * (or whose first chunk was put back); `then` gets the TLS socket once the handshake
   * is done and the client's certificate, where asked for, verified. On failure `raw`
   * is destroyed and `failed` is told (after onFailure).
   */
  upgrade(raw: net.Socket, then: (s: tls.TLSSocket) => void, failed: (err: Error) => void = () => {}): void {
    const k = keyOf(raw);
    const ms = this.settings.handshakeTimeoutMs;
    let done = false;
    const fail = (err: Error) => {
      if (done) return;
      done = true;
      if (timer !== null) clearTimeout(timer);
      this.waiting.delete(k);
      this.fail(raw, k, err);
      failed(err);
    };
    const timer = ms > 0 ? setTimeout(() => fail(new ConnectionError(`${k} did not finish its TLS handshake within ${ms} ms`)), ms) : null;
    this.waiting.set(k, {
      then: (s) => {
        done = true;
        if (timer !== null) clearTimeout(timer);
        then(s);
      },
      failed: fail,
    });
    // A peer that gives up mid-handshake (an alert, a reset) may close before tlsClientError names it.
    raw.once('close', () => fail(new ConnectionError(`${k} closed the connection during the TLS handshake`)));
    this.server.emit('connection', raw);
  }

  /**
   * Waits for what a fresh connection sends first. A TLS ClientHello is put back and
   * upgraded (`secure` gets the TLS socket); anything else is plain text: refused with
   * `plainRefusal` on a TLS-only port, else put back and handed to `plain` (the socket is
   * paused: resume it once something reads it). Silence past the handshake timeout, or a
   * failed handshake, closes the connection (and calls `failed`).
   */
  sniff(raw: net.Socket, secure: (s: tls.TLSSocket) => void, plain: (raw: net.Socket) => void, failed: (err: Error) => void = () => {}): void {
    const remote = keyOf(raw);
    const ms = this.settings.handshakeTimeoutMs;
    const timer =
      ms > 0
        ? setTimeout(() => {
            const err = new ConnectionError(`${remote} sent nothing within ${ms} ms of connecting`);
            this.fail(raw, remote, err);
            failed(err);
          }, ms)
        : null;
    raw.once('close', () => {
      if (timer !== null) clearTimeout(timer);
    });
    raw.once('data', (chunk: Buffer) => {
      if (timer !== null) clearTimeout(timer);
      raw.pause();
      raw.unshift(chunk);
      if (looksLikeTls(chunk)) {
        this.upgrade(raw, secure, failed);
        return;
      }
      if (this.settings.required) {
        const err = new ConnectionError(`${remote} spoke plain text to a TLS-only port`);
        this.settings.onFailure?.(remote, err);
        // Reading resumes (and discards) so that the peer's close is seen.
        raw.resume();
        raw.end(this.settings.plainRefusal);
        // Bounded: a peer that does not read its refusal is cut off.
        setTimeout(() => raw.destroy(), 1000).unref();
        failed(err);
        return;
      }
      plain(raw);
    });
  }
}

/**
 * Listens on host:port for TLS connections (and plain ones beside them unless
 * `required`); each becomes a StreamLink handed to `accept`: transport 'tls' with the
 * client's verified certificate, or 'tcp'.
 */
export async function listenTls(ep: Endpoint, maxFrame: number, accept: AcceptFn, settings: TlsServerSettings): Promise<Listener> {
  const gate = new TlsGate(settings);
  const server = net.createServer({ noDelay: true });
  /** Connections not handed to `accept` yet (first bytes or handshake pending): closing the listener ends them. */
  const pending = new Set<net.Socket>();
  server.on('connection', (raw) => {
    // Errors before a link adopts the socket (a reset during the handshake) are the gate's to report.
    raw.on('error', () => {});
    raw.setNoDelay(true);
    const remote = keyOf(raw);
    pending.add(raw);
    raw.once('close', () => pending.delete(raw));
    gate.sniff(
      raw,
      (s) => {
        pending.delete(raw);
        const link = new StreamLink(s, 'tls', remote, maxFrame);
        link.certificate = peerCertificate(s);
        accept(link);
      },
      (plain) => {
        pending.delete(raw);
        accept(new StreamLink(plain, 'tcp', remote, maxFrame));
        plain.resume();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(ep.port ?? 0, ep.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const host = ep.host ?? '127.0.0.1';
  return {
    url: `tls://${host.includes(':') ? `[${host}]` : host}:${(server.address() as net.AddressInfo).port}`,
    transport: 'tls',
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const raw of pending) raw.destroy();
      }),
  };
}

/** Certificate errors whose fix is on the client's side: say which option it is. */
const TRUST_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
]);

/**
 * An OpenSSL error's reason alone: "tlsv13 alert certificate required" out of
 * "8061...:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../deps/...".
 */
export function tlsReason(err: Error): string {
  const m = /^[0-9A-F]+:error:[0-9A-F]+:[^:]*:[^:]*:([^:]+):/.exec(err.message);
  return m !== null ? m[1]! : err.message;
}

/** The broker's alerts about this client's certificate: missing, not trusted, refused. */
const CLIENT_CERT_ALERT = /certificate required|alert number 116|bad certificate|alert number 42|unknown ca|alert number 48/i;

/**
 * Whose fix a failed client handshake is: 'trust' (the server's certificate is not signed
 * by a CA the client trusts), 'name' (it is not for the address dialled), 'client-cert'
 * (the server wants a client certificate it trusts), or null (something else).
 */
export function tlsTrouble(err: NodeJS.ErrnoException): 'trust' | 'name' | 'client-cert' | null {
  const code = err.code ?? '';
  if (TRUST_CODES.has(code)) return 'trust';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'name';
  if (CLIENT_CERT_ALERT.test(err.message)) return 'client-cert';
  return null;
}

const CLIENT_HINTS = {
  trust: ": the broker's certificate is not signed by a trusted CA (give its CA in the tls.ca option, or --tls-ca FILE)",
  name: ": the broker's certificate is not for this address (tls.servername names the one it carries)",
  'client-cert': ': the broker wants a client certificate it trusts (tls.cert and tls.key, or --tls-cert and --tls-key)',
};

function handshakeError(ep: Endpoint, err: NodeJS.ErrnoException): ConnectionError {
  const trouble = tlsTrouble(err);
  return new ConnectionError(`TLS handshake with ${ep.url} failed: ${tlsReason(err)}${trouble === null ? '' : CLIENT_HINTS[trouble]}`, { cause: err });
}

/**
 * The client's side of a TLS handshake over `raw`, a connected socket (fresh, or one a
 * protocol upgrades in place after a plain-text greeting): `then` gets the TLS socket
 * once the handshake is done and the server's certificate checked (against `o.ca`, or
 * the system's CAs, and the name `o.host` or `o.servername`). On failure `failed` gets
 * node:tls's error as it is (tlsReason and tlsTrouble read it), or a timeout, before the
 * connection closes (so the owner can say why first); then both sockets are destroyed.
 */
export function clientHandshake(
  raw: net.Socket,
  o: tls.ConnectionOptions,
  timeoutMs: number,
  then: (s: tls.TLSSocket) => void,
  failed: (err: Error) => void,
): void {
  // From here on the TLS socket reports the connection's errors; the raw one's would be unhandled.
  raw.on('error', () => {});
  const socket = tls.connect({ ...o, socket: raw });
  let settled = false;
  const fail = (err: Error) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    failed(err);
    socket.destroy();
    raw.destroy();
  };
  const timer = setTimeout(() => fail(new ConnectionError(`the TLS handshake did not finish within ${timeoutMs} ms`)), timeoutMs);
  socket.once('error', fail);
  socket.once('close', () => fail(new ConnectionError('the connection closed during the TLS handshake')));
  socket.once('secureConnect', () => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.removeListener('error', fail);
    then(socket);
  });
}

/** Dials tls://host:port: resolves once the handshake is done and the broker's certificate checked. */
export function dialTls(ep: Endpoint, maxFrame: number, timeoutMs: number, o: ClientTlsOptions = {}): Promise<StreamLink> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const socket = tls.connect({
      host: ep.host,
      port: ep.port!,
      ca: o.ca,
      cert: o.cert,
      key: o.key,
      rejectUnauthorized: o.rejectUnauthorized ?? true,
      ...(o.servername !== undefined ? { servername: o.servername } : net.isIP(ep.host ?? '') === 0 ? { servername: ep.host } : {}),
    });
    const timer = setTimeout(() => {
      settled = true;
      socket.destroy();
      reject(new ConnectionError(`connect to ${ep.url} timed out after ${timeoutMs} ms (TCP connect and TLS handshake)`));
    }, timeoutMs);
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      reject(err.code === 'ECONNREFUSED' ? err : handshakeError(ep, err));
    });
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      socket.removeAllListeners('error');
      // With TLS 1.3 the broker refuses a client certificate after the client's handshake is
      // done: the alert arrives as the link's error, which gets the same hint (before the
      // link, registered next, records it).
      socket.on('error', (err: NodeJS.ErrnoException) => {
        if (CLIENT_CERT_ALERT.test(err.message)) err.message = handshakeError(ep, err).message;
      });
      resolve(new StreamLink(socket, 'tls', ep.url, maxFrame));
    });
  });
}
