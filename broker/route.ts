import type { Session } from './session.js';

/** One subscription held by a session, as the subject tree stores it. */
export class Subscription {
  /** Messages delivered to it so far (counted only when `max` is set). */
  delivered = 0;
  /** Auto-unsubscribe after this many messages; 0 = no limit. */
  max = 0;
  constructor(
    readonly session: Session,
    readonly sid: number,
    readonly pattern: string,
    readonly queue: string,
  ) {}
}

/**
 * Everything the broker needs to fan one subject out, derived once per subject from
 * the matching subscriptions and cached by the subject tree (rebuilt after any
 * insert/remove that concerns the subject). Building it here keeps the per-message
 * path to plain array walks:
 *  - `sessions`: each session with at least one matching non-queue subscription,
 *    once, however many of its subscriptions match: it gets the message once and
 *    dispatches locally;
 *  - `groups`: one array per queue name; each message goes to one member, in turn;
 *  - `limited`: subscriptions with an auto-unsubscribe count, which the broker counts.
 */
export class Route {
  readonly sessions: Session[] = [];
  readonly groups: Subscription[][] = [];
  readonly limited: Subscription[] = [];
  /**
   * Round-robin cursor per group. Cursors belong to the queue name, not to this
   * route: a route is rebuilt whenever a subscription comes or goes, and a group
   * spans every subject its members match, so a per-route cursor would restart at
   * the first member and starve the others.
   */
  readonly cursor: QueueCursor[] = [];
  readonly total: number;

  constructor(subs: readonly Subscription[], cursorFor: (queue: string) => QueueCursor) {
    this.total = subs.length;
    const byQueue = new Map<string, Subscription[]>();
    const seen = new Set<Session>();
    for (const sub of subs) {
      if (sub.queue !== '') {
        let g = byQueue.get(sub.queue);
        if (g === undefined) byQueue.set(sub.queue, (g = []));
        g.push(sub);
      } else {
        if (!seen.has(sub.session)) {
          seen.add(sub.session);
          this.sessions.push(sub.session);
        }
        if (sub.max > 0) this.limited.push(sub);
      }
    }
    for (const [queue, g] of byQueue) {
      this.groups.push(g);
      this.cursor.push(cursorFor(queue));
    }
  }
}

/** The next member a queue group hands a message to; shared by every route of the group. */
export interface QueueCursor {
  next: number;
}
