/**
 * The request mux: one wildcard subscription on this connection's inbox prefix
 * (`_INBOX.<random>.*`) answers every request, told apart by the token after the
 * prefix. One subscription for all requests, as nats.js's muxsubscription.ts: a
 * request costs a map entry and a timer, not a SUB/UNSUB round trip.
 *
 * Threading: the client's thread.
 */
import { randomBytes } from 'node:crypto';
import type { Clock, Timer } from '../runtime/clock.js';
import { NoRespondersError, TimeoutError } from './errors.js';
import type { Msg } from './msg.js';
import type { MsgHandler, Subscription } from './subscription.js';

interface PendingRequest {
  resolve(msg: Msg): void;
  reject(err: Error): void;
  timer: Timer;
  subject: string;
}

/** What the mux needs from its connection: a subscription for the replies. */
export interface MuxHost {
  subscribe(pattern: string, handler: MsgHandler): Subscription;
}

export class RequestMux {
  readonly prefix = `_INBOX.${randomBytes(8).toString('hex')}.`;
  private sub: Subscription | null = null;
  private readonly requests = new Map<string, PendingRequest>();
  private seq = 0;

  /**
   * `brokered`: a broker answers a request nobody subscribes to with "no responders"
   * (NoRespondersError); without one (multicast) nobody can, and `timeoutNote` says so.
   */
  constructor(
    private readonly host: MuxHost,
    private readonly clock: Clock,
    private readonly brokered: boolean,
    private readonly timeoutNote = '',
  ) {}

  /**
   * Starts a request to `subject`: `send(reply)` publishes it, at once or once the
   * promise `after()` returns settles (asked after the reply subscription is made, so
   * it can wait for that subscription too); what `send` throws rejects the request.
   * Resolves with the first reply, rejects with TimeoutError after timeoutMs.
   */
  request(subject: string, timeoutMs: number, send: (reply: string) => void, after: (() => Promise<unknown> | null) | null = null): Promise<Msg> {
    if (this.sub === null) this.sub = this.host.subscribe(`${this.prefix}*`, this.onReply);
    const token = (++this.seq).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      const timer = this.clock.timeout(() => {
        this.requests.delete(token);
        reject(new TimeoutError(`request to "${subject}"${this.timeoutNote}`, timeoutMs));
      }, timeoutMs);
      this.requests.set(token, { resolve, reject, timer, subject });
      const go = (): void => {
        try {
          send(this.prefix + token);
        } catch (err) {
          this.clock.clear(timer);
          this.requests.delete(token);
          reject(err);
        }
      };
      const wait = after === null ? null : after();
      if (wait === null) go();
      else void wait.then(go);
    });
  }

  private readonly onReply = (msg: Msg): void => {
    const token = msg.subject.slice(this.prefix.length);
    const r = this.requests.get(token);
    if (r === undefined) return; // late reply after a timeout, or a second responder
    this.requests.delete(token);
    this.clock.clear(r.timer);
    if (this.brokered && msg.noResponders) r.reject(new NoRespondersError(r.subject));
    else r.resolve(msg);
  };

  /** True for the mux's own subscription (drain keeps it until the end). */
  owns(sub: Subscription): boolean {
    return sub === this.sub;
  }

  /** The connection forgot `sub`: if it was the mux's, the next request subscribes again. */
  forgotten(sub: Subscription): void {
    if (sub === this.sub) this.sub = null;
  }

  /** Fails every pending request with `err` (the connection closed). */
  close(err: Error): void {
    for (const r of this.requests.values()) {
      this.clock.clear(r.timer);
      r.reject(err);
    }
    this.requests.clear();
  }
}
