/**
 * One link to a broker and its handshake. `Conn` binds a link's events to the bus,
 * so the events of a replaced link are told apart from the live one's; `Handshake`
 * is the wait for INFO after CONNECT, bounded by timeoutMs on a Clock;
 * `helloFrame` is the CONNECT this client sends.
 *
 * Threading: the client's thread.
 */
import type { Clock, Timer } from '../runtime/clock.js';
import { Op, encodeHandshake } from '../transports/protocol/index.js';
import type { Link, LinkHandler } from '../transports/link.js';
import { VERSION } from '../transports/protocol/index.js';
import type { Endpoint } from '../transports/url.js';
import { ConnectionError } from '../runtime/errors.js';
import { ProtocolError } from '../transports/protocol/index.js';
import { packr } from './codec.js';
import { TimeoutError } from './errors.js';

/** No INFO came: the server took the connection and said nothing a hopbus broker says. */
class HandshakeTimeoutError extends TimeoutError {
  constructor(timeoutMs: number) {
    super('handshake', timeoutMs);
    this.message += ": the server accepted the connection but did not answer as a hopbus broker (an HTTP port waits for a request: give the broker's TCP port)";
  }
}
import type { ResolvedConnectOptions } from './options.js';

/** Largest frame accepted before INFO tells the real limits. */
export const INITIAL_MAX_FRAME = 64 * 1024 * 1024 + 256 * 1024;

/** What a Conn hands its link's events to. */
export interface ConnOwner {
  onFrame(conn: Conn, buf: Buffer, off: number, len: number): void;
  onLinkClose(conn: Conn, err: Error | null): void;
  /** The link closes with these frames never written (just before onLinkClose). */
  onLinkUnsent(conn: Conn, buf: Buffer, off: number, len: number): void;
}

export class Conn implements LinkHandler {
  /** Resolves when the link has closed. */
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  constructor(
    private readonly owner: ConnOwner,
    readonly link: Link,
    readonly ep: Endpoint,
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }
  onFrame(buf: Buffer, off: number, len: number): void {
    this.owner.onFrame(this, buf, off, len);
  }
  onUnsent(buf: Buffer, off: number, len: number): void {
    this.owner.onLinkUnsent(this, buf, off, len);
  }
  onClose(err: Error | null): void {
    this.resolveClosed();
    this.owner.onLinkClose(this, err);
  }
}

/**
 * Why a handshake failed, in words a user can act on when the server is not a hopbus
 * broker at all: the first bytes a web server or a NATS server sends are not a frame, and
 * the reader's refusal names them ("HTTP", "INFO"). Anything else is returned as it is.
 */
export function explainHandshakeFailure(err: Error, url: string): Error {
  const prefix = err instanceof ProtocolError ? err.prefix : undefined;
  if (prefix === undefined) return err;
  const text = String.fromCharCode(prefix & 0xff, (prefix >>> 8) & 0xff, (prefix >>> 16) & 0xff, prefix >>> 24);
  if (text === 'HTTP') {
    return new ConnectionError(
      `${url} is an HTTP server, not a hopbus broker's TCP port (a broker's HTTP port takes ws:// clients at /bus; its TCP port is printed as tcp://...)`,
      { cause: err },
    );
  }
  if (text === 'INFO') {
    return new ConnectionError(
      `${url} is a NATS server (it sent INFO): connect to it with a NATS client, or give hopbus's own TCP port (a hopbus broker serves NATS clients on its separate NATS port)`,
      { cause: err },
    );
  }
  return new ConnectionError(`${url} did not answer as a hopbus broker (its first bytes: ${JSON.stringify(text)})`, { cause: err });
}

/** The wait for the broker's INFO; rejects with TimeoutError after timeoutMs. */
export class Handshake {
  readonly done: Promise<void>;
  private res!: () => void;
  private rej!: (err: Error) => void;
  private readonly timer: Timer;
  constructor(
    private readonly clock: Clock,
    timeoutMs: number,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.res = resolve;
      this.rej = reject;
    });
    this.timer = clock.timeout(() => this.rej(new HandshakeTimeoutError(timeoutMs)), timeoutMs);
  }
  resolve(): void {
    this.clock.clear(this.timer);
    this.res();
  }
  reject(err: Error): void {
    this.clock.clear(this.timer);
    this.rej(err);
  }
}

/** A reconnecting client's previous connection, as its INFO named it. */
export interface Resume {
  serverId: string;
  clientId: number;
}

/** The CONNECT frame: who this client is and what it asks of the broker (and, reconnecting, which connection it had). */
export function helloFrame(options: ResolvedConnectOptions, link: Link, resume: Resume | null = null, creds?: { user?: string; pass?: string }): Buffer {
  // A URL's user part (tcp://user:pass@host) wins over the options: it names that server's account.
  const user = creds?.user || options.user;
  const pass = creds?.user ? (creds.pass ?? '') : options.pass;
  return encodeHandshake(
    Op.CONNECT,
    packr.pack({
      // The broker keeps 256 characters of it, and refuses a CONNECT over 4 KiB.
      name: options.name.slice(0, 256),
      lang: 'typescript',
      version: VERSION,
      verbose: options.verbose,
      timestamps: options.timestamps,
      ...(options.publishRate ? { publishRate: options.publishRate } : {}),
      ...(options.direct && link.direct !== undefined ? { direct: true } : {}),
      ...(resume !== null ? { resume: { serverId: resume.serverId, clientId: resume.clientId } } : {}),
      ...(user ? { user, pass } : {}),
      ...(options.token ? { token: options.token } : {}),
      // The broker answers with a CHALLENGE: bus.ts signs its nonce (options.sign).
      ...(options.nkey ? { nkey: options.nkey } : {}),
    }),
  );
}
