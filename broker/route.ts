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
  /** Round-robin cursor per group. */
  readonly cursor: number[] = [];
  readonly total: number;

  constructor(subs: readonly Subscription[]) {
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
    for (const g of byQueue.values()) {
      this.groups.push(g);
      this.cursor.push(0);
    }
  }
}

export const buildRoute = (subs: Subscription[]): Route => new Route(subs);
