/**
 * MulticastBus's delivery to its subscriptions. Without a broker, a slow consumer is
 * handled here (client/inbox.ts holds each subscription's queue and policy): a
 * message goes straight to the callback while the bus keeps up; once callbacks have
 * used up the dispatch budget of this event-loop turn (`budgetMs`), or a
 * subscription is over its delivery rate, messages wait in the subscription's Inbox,
 * and are drained round robin, within the budget and each rate, on later turns.
 *
 * Threading: the client's thread.
 */
import type { HopbusError } from '../runtime/errors.js';
import { SlowConsumerError } from './errors.js';
import type { Inbox } from './inbox.js';
import type { Msg } from './msg.js';
import type { Subscription } from './subscription.js';
import type { LossEvent } from './types.js';

/** What the delivery needs from its bus. */
export interface DeliveryHost {
  readonly closed: boolean;
  /** Ends a subscription (its `max` reached, or cut off by its policy with `err`). */
  forget(sub: Subscription, err?: Error): void;
  reportError(err: HopbusError): void;
  /** Messages a subscription's queue dropped or conflated. */
  emitLoss(e: LossEvent): void;
}

export class InboxDelivery {
  private turnStart = 0;
  private turnFrames = 0;
  private behind = false;
  private draining = false;
  private readonly backlog = new Set<Inbox>();
  private rateTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly host: DeliveryHost,
    private readonly budgetMs: number,
  ) {}

  /** Subscriptions with messages waiting. */
  get queued(): number {
    return this.backlog.size;
  }

  /** Delivers one message, shared by every matching subscription: now, or into its queue. */
  deliver(list: readonly Inbox[], msg: Msg): void {
    if (this.turnStart === 0) {
      this.turnStart = performance.now();
      setImmediate(this.endTurn);
    } else if ((++this.turnFrames & 31) === 0 && !this.behind && performance.now() - this.turnStart > this.budgetMs) {
      this.behind = true;
    }
    for (let i = 0; i < list.length; i++) {
      const inbox = list[i]!;
      if (inbox.count === 0 && !this.behind && (inbox.rate === null || inbox.rate.admit(performance.now()))) {
        if (!inbox.sub.deliver(msg)) this.host.forget(inbox.sub);
      } else {
        this.enqueue(inbox, msg);
      }
    }
  }

  private readonly endTurn = (): void => {
    this.turnStart = 0;
    this.turnFrames = 0;
    if (this.backlog.size > 0) this.drainBacklog();
    else this.behind = false;
  };

  private enqueue(inbox: Inbox, msg: Msg): void {
    if (!inbox.push(msg)) {
      const err = new SlowConsumerError(`subscription "${inbox.sub.subject}" fell more than ${inbox.max} messages behind (policy disconnect): it was closed`);
      this.host.forget(inbox.sub, err);
      this.host.reportError(err);
      return;
    }
    this.backlog.add(inbox);
    // Queued only by its rate limit while the bus keeps up: nothing else would drain it.
    if (!this.behind && this.turnStart === 0) this.scheduleDrain(0);
  }

  /**
   * Runs queued messages for up to the budget, round robin over subscriptions, each
   * within its rate limit; the rest waits for the next turn (or, when only rate
   * limits hold messages back, for a timer at the next admission).
   */
  private drainBacklog(): void {
    if (this.draining) return;
    this.draining = true;
    const t0 = performance.now();
    let outOfTime = false;
    let waitMs = Infinity;
    try {
      for (;;) {
        let progress = false;
        for (const inbox of this.backlog) {
          this.reportQueueLoss(inbox);
          const rate = inbox.rate;
          for (let k = 0; k < 64 && inbox.count > 0; k++) {
            if (rate !== null && !rate.admit(performance.now())) {
              waitMs = Math.min(waitMs, rate.waitMs(performance.now()));
              break;
            }
            progress = true;
            if (!inbox.sub.deliver(inbox.shift()!)) {
              this.host.forget(inbox.sub);
              break;
            }
          }
          if (inbox.count === 0) this.backlog.delete(inbox);
        }
        if (this.backlog.size === 0 || !progress) break;
        if (performance.now() - t0 >= this.budgetMs) {
          outOfTime = true;
          break;
        }
      }
    } finally {
      this.draining = false;
    }
    // Behind only while callbacks use up the budget; a rate limit holds back its own subscription only.
    this.behind = outOfTime;
    if (this.backlog.size === 0) return;
    if (outOfTime) {
      this.turnStart = performance.now();
      setImmediate(this.endTurn);
    } else {
      this.scheduleDrain(waitMs);
    }
  }

  private scheduleDrain(ms: number): void {
    if (this.rateTimer !== null || this.host.closed) return;
    this.rateTimer = setTimeout(
      () => {
        this.rateTimer = null;
        this.drainBacklog();
      },
      Math.max(0, Math.min(ms, 1000)),
    );
  }

  private reportQueueLoss(inbox: Inbox): void {
    const dropped = inbox.unreportedDropped;
    const conflated = inbox.unreportedConflated;
    if (dropped === 0 && conflated === 0) return;
    inbox.unreportedDropped = 0;
    inbox.unreportedConflated = 0;
    this.host.emitLoss({ subscription: inbox.sub, subject: inbox.sub.subject, dropped, conflated, policy: inbox.policy });
    if (dropped > 0)
      this.host.reportError(
        new SlowConsumerError(
          `subscription "${inbox.sub.subject}" is behind: ${dropped} message(s) dropped by its ${inbox.policy} policy (${inbox.sub.dropped} so far)`,
        ),
      );
  }

  /** A subscription has ended: nothing of it waits any more. */
  remove(inbox: Inbox): void {
    this.backlog.delete(inbox);
  }

  /** The bus has closed: no more drains. */
  close(): void {
    if (this.rateTimer !== null) clearTimeout(this.rateTimer);
    this.rateTimer = null;
  }
}
