/**
 * broker/auth/access.ts: one connection's rights, checked where its messages and
 * subscriptions come in. The router asks `admit` for every PUB of a connection that
 * has one (connections of an open broker have none: `access` is null and nothing is
 * checked); the sessions ask `subscribeRefusal` for every SUB and `maxSubscriptions`.
 *
 * A refused PUB is told to the publisher as a non-fatal AUTH error naming the subject
 * (`Permissions Violation for Publish to "x"`, the words nats-server uses), is not
 * delivered, and is counted (BrokerCounters.permissionViolations); the connection stays
 * open. A payload over the identity's maxPayload is fatal, like the broker's own limit.
 *
 * Threading: the broker's thread.
 */
import { ErrCode, MsgView } from '../../transports/protocol/index.js';
import type { BrokerCounters } from '../counters.js';
import type { Identity } from './authenticator.js';
import type { Permissions } from './permissions.js';
import { MAX_RESPONSE_GRANTS } from './permissions.js';

/** What `admit` needs of the publisher: a way to tell it. */
export interface Told {
  error(code: number, text: string): void;
  fatal(code: number, text: string): void;
}

const VIEW = new MsgView();

interface Grant {
  left: number;
  /** clock.now() after which it is void; Infinity for none. */
  expires: number;
}

export function publishViolation(subject: string): string {
  return `Permissions Violation for Publish to ${JSON.stringify(subject)}`;
}

export function subscribeViolation(subject: string, queue: string): string {
  return queue === ''
    ? `Permissions Violation for Subscription to ${JSON.stringify(subject)}`
    : `Permissions Violation for Subscription to ${JSON.stringify(subject)} using queue ${JSON.stringify(queue)}`;
}

export class Access {
  readonly perms: Permissions | null;
  readonly maxPayload: number;
  readonly maxSubscriptions: number;
  /** allow_responses grants: reply subject -> what is left of it; bounded, oldest first out. */
  private readonly grants: Map<string, Grant> | null;
  /** `$SYS.report.<client id>`: the connection's own latency report, always allowed. */
  private readonly ownReport: string;

  constructor(
    readonly identity: Identity,
    clientId: number,
    broker: { maxPayload: number; maxSubscriptions: number },
    private readonly counters: BrokerCounters,
    private readonly now: () => number,
  ) {
    this.perms = identity.permissions;
    this.maxPayload = Math.min(broker.maxPayload, identity.limits.maxPayload ?? Infinity);
    this.maxSubscriptions = Math.min(broker.maxSubscriptions, identity.limits.maxSubscriptions ?? Infinity);
    this.grants = this.perms?.responses ? new Map() : null;
    this.ownReport = `$SYS.report.${clientId}`;
  }

  /** The router's check of one PUB: true to route it; false when refused (the publisher has been told). */
  admit(from: Told, subject: string, payloadLen: number): boolean {
    if (payloadLen > this.maxPayload) {
      from.fatal(ErrCode.MAX_PAYLOAD, `maximum payload exceeded: ${payloadLen} bytes, the limit of ${this.identity.name} is ${this.maxPayload}`);
      return false;
    }
    const p = this.perms;
    if (p === null || p.mayPublish(subject) || subject === this.ownReport || this.useGrant(subject)) return true;
    this.counters.permissionViolations++;
    from.error(ErrCode.AUTH, publishViolation(subject));
    return false;
  }

  /** Why this connection may not subscribe to `pattern` (queue group `queue`), or null. Counted when refused. */
  subscribeRefusal(pattern: string, queue: string): string | null {
    if (this.perms === null || this.perms.maySubscribe(pattern, queue)) return null;
    this.counters.permissionViolations++;
    return subscribeViolation(pattern, queue);
  }

  /** Whether requests received open a reply right (allow_responses). */
  get grantsResponses(): boolean {
    return this.grants !== null;
  }

  /** A request with reply subject `reply` was delivered to this connection: it may answer (allow_responses). */
  noteRequest(reply: string): void {
    const g = this.grants;
    if (g === null || reply === '') return;
    const r = this.perms!.responses!;
    const existing = g.get(reply);
    const expires = r.expiresMs > 0 ? this.now() + r.expiresMs : Infinity;
    if (existing !== undefined) {
      existing.left = r.max;
      existing.expires = expires;
      return;
    }
    if (g.size >= MAX_RESPONSE_GRANTS) g.delete(g.keys().next().value!);
    g.set(reply, { left: r.max, expires });
  }

  /** noteRequest for a hopbus MSG frame buf[off, off+len) being delivered (only called when grantsResponses). */
  noteRequestFrame(buf: Buffer, off: number, len: number): void {
    const v = VIEW.parse(buf, off, len);
    if (v.replyLen > 0) this.noteRequest(v.reply());
  }

  private useGrant(subject: string): boolean {
    const g = this.grants;
    if (g === null) return false;
    const e = g.get(subject);
    if (e === undefined) return false;
    if (e.expires < this.now()) {
      g.delete(subject);
      return false;
    }
    if (--e.left <= 0) g.delete(subject);
    return true;
  }
}
