/**
 * The receive path of a broker connection, per message: a MSG frame (from the broker
 * or a direct channel) is parsed in place, its subject interned, its hops measured
 * when it is timestamped, and it is handed to the local subscriptions it matches.
 * Nothing is allocated per message but the one Msg every matching subscription shares.
 *
 * Threading: the client's thread.
 */
import { FLAG_REPLAY, FLAG_SNAPSHOT, MsgView } from '../transports/protocol/index.js';
import { SubjectCache } from '../transports/intern.js';
import type { LatencyMeter } from './latency.js';
import { Msg, type Responder } from './msg.js';
import type { Registry } from './registry.js';
import type { Subscription } from './subscription.js';

/** The counters the receive path adds to. */
export interface InCounters {
  msgsIn: number;
  bytesIn: number;
}

/**
 * Parses MSG frames in place into one reused view, and gives each its subject as an
 * interned string: a subscriber sees few distinct subjects, and decoding the same
 * UTF-8 again for every message would be wasted work. Shared by Bus and MulticastBus.
 */
export class MsgDecoder {
  readonly view = new MsgView();
  private readonly subjects = new SubjectCache(1024);

  /** Parses the frame at buf[off, off+len) into `view` and returns its subject. */
  read(buf: Buffer, off: number, len: number): string {
    const v = this.view.parse(buf, off, len);
    let subject = this.subjects.lookup(buf, v.subjectOff, v.subjectLen);
    if (subject === null) {
      subject = v.subject();
      this.subjects.store(buf, v.subjectOff, v.subjectLen, subject);
    }
    return subject;
  }
}

export class Inbound {
  private readonly decoder = new MsgDecoder();

  /** `expired(sub)`: the subscription had its `max` messages. */
  constructor(
    private readonly subs: Registry<Subscription>,
    private readonly counters: InCounters,
    private readonly latency: LatencyMeter | null,
    private readonly responder: Responder,
    private readonly expired: (sub: Subscription) => void,
  ) {}

  /**
   * One MSG frame at buf[off, off+len); `direct` when it came through a direct channel
   * from another shm client (then it is not for snapshot or replay subscriptions: the
   * broker sends them their own copy, in order with their image).
   */
  onMsg(buf: Buffer, off: number, len: number, direct = false): void {
    const d = this.decoder;
    const subject = d.read(buf, off, len);
    const v = d.view;
    this.counters.msgsIn++;
    this.counters.bytesIn += len;
    const lat = this.latency;
    if (lat === null) {
      this.dispatch(v, subject, direct);
      return;
    }
    const arrived = lat.received(len);
    const tsOff = v.tsOff;
    if (tsOff < 0) {
      this.dispatch(v, subject, direct);
      return;
    }
    const start = lat.transit(buf, tsOff, arrived);
    const weight = lat.lastWeight;
    this.dispatch(v, subject, direct);
    if (start >= 0) lat.handled(start, weight);
  }

  /** By sid for a queue-group member (the broker picked it), else every local match; one Msg shared by all. */
  private dispatch(v: MsgView, subject: string, direct: boolean): void {
    if (v.sid !== 0) {
      const sub = this.subs.get(v.sid);
      if (sub === undefined) return;
      // A cached value or a replayed record, for that subscription alone; any other message
      // addressed to a snapshot or replay subscription before its IMAGE BEGIN (the broker's
      // own copy beside a direct channel) was routed before it counted, like a broadcast.
      if (v.flags & (FLAG_SNAPSHOT | FLAG_REPLAY)) sub.countImaged();
      else if (sub.awaiting) return;
      if (!sub.deliver(new Msg(v, subject, this.responder))) this.expired(sub);
      return;
    }
    const list = this.subs.match(subject);
    if (list.length === 0) return;
    const msg = new Msg(v, subject, this.responder);
    for (let i = 0; i < list.length; i++) {
      const sub = list[i]!;
      // A snapshot or replay subscription before its IMAGE BEGIN: routed before the broker had it.
      if (sub.awaiting || (direct && sub.subFlags !== 0)) continue;
      if (!sub.deliver(msg)) this.expired(sub);
    }
  }
}
