/**
 * broker/subscription.ts: a subscription, and the two faces of a session the router
 * sees: a `Subscriber` it delivers to and a `Publisher` it takes messages from.
 *
 * These interfaces are the seam between routing and wire protocols. Today one class
 * implements both (broker/session.ts, the hopbus codec). A session of another codec
 * (the NATS client protocol, a leafnode uplink) implements them too and feeds the
 * same router: see broker/router.ts for where it plugs in.
 *
 * Imports types only, and nothing that imports it back (no session, router or broker).
 */
import type { Access } from './auth/access.js';
import type { Policy } from '../transports/protocol/index.js';
import type { PublisherGate } from './gate.js';
import type { ClientLatency } from './report.js';

/**
 * What the router delivers to. Keep implementations few and their shapes stable:
 * `deliver` is called once per message per receiving session, and V8 keeps that call
 * monomorphic while one class implements it.
 */
export interface Subscriber {
  readonly id: number;
  /** False once closing: the router skips it (queue groups pick another member). */
  readonly open: boolean;
  /** Set when it delivers to other shm clients itself (broker/direct.ts); the router only reads `acked`. */
  readonly direct: DirectPublisher | null;
  /**
   * True when it must not receive its own publishes (NATS CONNECT `echo: false`): the
   * router then picks another member of a queue group for them. Unset means false.
   */
  readonly noEcho?: boolean;
  /**
   * True when it reads MSG frames with a sequence block (FLAG_SEQ): it is then given a
   * cached subject's frame from the last-value cache, which carries the subject's
   * sequence, instead of the publisher's. Unset means false (older clients, NATS).
   */
  readonly seqFrames?: boolean;
  /**
   * True for a leafnode uplink (broker/leaf/): a RemoteSubscriber. Its subscriptions
   * are the hub's interest, so the router fans out to it last (Route.remotes), never
   * announces them back and never hands it what another uplink brought in. Unset: false.
   */
  readonly remote?: boolean;
  /**
   * One message: buf[off, off+len) is a hopbus MSG frame, shared by every receiver of
   * this fanout (do not modify it; copy what must outlive the call). `sid` is non-zero
   * for a queue delivery: the receiver's copy carries that subscription id. `subs` are
   * the receiver's subscriptions it matched, `policy` governs its copy if it is behind,
   * `from` is the publishing session (null for the broker's own and imported messages).
   * A codec other than hopbus re-encodes the frame; it can do that once per message for
   * all its sessions by keying its encoding on Router.fanouts (the fanout in progress).
   */
  deliver(buf: Buffer, off: number, len: number, sid: number, subject: string, subs: readonly Subscription[], policy: Policy, from: Publisher | null): void;
  /** An auto-unsubscribe count ran out: forget `sub` (and take it out of the router). */
  removeSub(sub: Subscription): void;
}

/**
 * A leafnode uplink as the router sees it (broker/leaf/uplink.ts): one call per message
 * for all of its matching subscriptions, with the queue groups the hub should pick a
 * member of (those with no local member that took the message; empty for plain interest only).
 */
export interface RemoteSubscriber extends Subscriber {
  readonly remote: true;
  deliverRemote(buf: Buffer, off: number, len: number, subject: string, queues: readonly string[], from: Publisher | null): void;
}

/** The part of a direct-plane member the router reads. */
export interface DirectPublisher {
  /** Peers this publisher serves itself: the router skips them for its messages. */
  readonly acked: ReadonlySet<Subscriber>;
}

/** What the router needs of the session a message came from. */
export interface Publisher {
  readonly direct: DirectPublisher | null;
  /** A leafnode uplink (see Subscriber.remote): what it publishes never goes back out to an uplink. */
  readonly remote?: boolean;
  /** Its rate limits and pause state (broker/gate.ts). */
  readonly gate: PublisherGate;
  /** The client's last latency report ($SYS.report.<id>), set by the monitor. */
  report: ClientLatency | null;
  /** Its permissions and limits (broker/auth/access.ts), checked by the router per PUB; null or absent: none. */
  readonly access?: Access | null;
  /** A non-fatal error: the connection stays up. */
  error(code: number, text: string): void;
  /** Reports the error and closes the connection. */
  fatal(code: number, text: string): void;
  /** A consumer with the block policy is behind / has caught up (broker/policy.ts). */
  block(by: object): void;
  unblock(by: object): void;
}

/** One subscription held by a session, as the subject tree stores it. */
export class Subscription {
  /** Messages delivered so far (counted only when `max` is set). */
  delivered = 0;
  /** Auto-unsubscribe after this many messages; 0 = no limit. */
  max = 0;
  /** Messages a slow-consumer policy dropped / conflated for it, in total. */
  dropped = 0;
  conflated = 0;
  /**
   * The direct plane's interest seq from which direct publishers serve this
   * subscription themselves; Infinity when they never do (broker/direct.ts).
   */
  servedSeq = Infinity;
  /**
   * A snapshot or replay subscription: its messages must all come through the broker,
   * in order with its image, never from a direct publisher's channel (broker/direct.ts:
   * publishers learn it as REMOTE interest; Router.fanout sends it its own copy when a
   * direct publisher serves its session's other subscriptions itself).
   */
  brokerOnly = false;
  /** Not yet reported to the client in a LOSS frame. */
  unreportedDropped = 0;
  unreportedConflated = 0;
  /** [this], for loss accounting of queue deliveries without an allocation per message. */
  readonly self: readonly Subscription[];
  constructor(
    readonly session: Subscriber,
    readonly sid: number,
    readonly pattern: string,
    readonly queue: string,
    /** The policy it asked for; DEFAULT means the broker's. */
    readonly policy: Policy,
  ) {
    this.self = [this];
  }
}
