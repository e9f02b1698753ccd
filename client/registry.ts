/**
 * The subscription registry of one connection: every subscription by sid, and the
 * local dispatch tree by pattern. The broker sends a message once per connection;
 * the tree finds every local subscription it matches (queue-group members are reached
 * by sid only: the broker picked one of them). Bus keeps Subscriptions here,
 * MulticastBus its Inboxes (a Subscription with a receive queue).
 *
 * Threading: the client's thread.
 */
import { SubjectTree } from '../topics/index.js';
import type { Subscription } from './subscription.js';

export class Registry<T> {
  private readonly bySid = new Map<number, T>();
  /** Local dispatch of broadcast MSGs: non-queue subscriptions only. */
  private readonly tree = new SubjectTree<T>({ cacheSize: 1024 });
  private sid = 1;

  /** The sid of the next subscription. */
  nextSid(): number {
    return this.sid++;
  }

  add(sub: Subscription, entry: T): void {
    this.bySid.set(sub.sid, entry);
    if (sub.queue === '') this.tree.insert(sub.subject, entry);
  }

  /** Removes `sub`; returns its entry, or undefined when it was not here (already forgotten). */
  remove(sub: Subscription): T | undefined {
    const entry = this.bySid.get(sub.sid);
    if (entry === undefined) return undefined;
    this.bySid.delete(sub.sid);
    if (sub.queue === '') this.tree.remove(sub.subject, entry);
    return entry;
  }

  get(sid: number): T | undefined {
    return this.bySid.get(sid);
  }

  /** The entries whose pattern matches `subject` (the tree's cached array: do not keep it). */
  match(subject: string): readonly T[] {
    return this.tree.match(subject);
  }

  /** How many entries there are. */
  get size(): number {
    return this.bySid.size;
  }

  values(): IterableIterator<T> {
    return this.bySid.values();
  }

  /** A copy of the entries, for loops that remove as they go. */
  list(): T[] {
    return [...this.bySid.values()];
  }
}
