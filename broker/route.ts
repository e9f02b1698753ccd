/**
 * broker/route.ts: a Route, the fanout lists of one subject, built from its matching
 * subscriptions and cached by the subject tree.
 *
 * Must not import the router, sessions or the broker (it is below them).
 */
import { Policy } from '../transports/protocol/index.js';
import { POLICY_RANK } from './policy.js';
import { SubjectTree } from '../topics/index.js';
import type { Limiter } from './ratelimit.js';
import type { CacheStore } from './cache/store.js';
import type { RemoteSubscriber, Subscriber, Subscription } from './subscription.js';

/** A subject-pattern rate limit from the config, shared by every subject it matches. */
export interface SubjectLimit {
  pattern: string;
  limiter: Limiter;
}

/**
 * Everything the broker needs to fan one subject out, derived once per subject from
 * the matching subscriptions and cached by the subject tree (rebuilt after any
 * insert/remove that concerns the subject). Building it here keeps the per-message
 * path to plain array walks:
 *  - `sessions`: each session with at least one matching non-queue subscription,
 *    once, however many of its subscriptions match: it gets the message once and
 *    dispatches locally; `sessionSubs[i]` are those subscriptions and
 *    `sessionPolicy[i]` the policy that governs that session's copy;
 *  - `groups`: one array per queue name; each message goes to one member, in turn;
 *  - `limited`: subscriptions with an auto-unsubscribe count, which the broker counts;
 *  - `limiters`: the subject-pattern rate limits that apply to this subject.
 */
export class Route {
  readonly sessions: Subscriber[] = [];
  readonly sessionSubs: Subscription[][] = [];
  readonly sessionPolicy: Policy[] = [];
  /**
   * The lowest interest seq among `sessionSubs[i]`: a direct publisher that had applied
   * it knew at least one of them, so it served that session itself (Router.fanout).
   */
  readonly sessionMinSeq: number[] = [];
  /**
   * Per session, its matching brokerOnly subscriptions (snapshot and replay ones), or
   * null: when a direct publisher serves the session itself, these still get their copy
   * from the broker, addressed by sid (Router.fanout).
   */
  readonly sessionBrokerOnly: (Subscription[] | null)[] = [];
  readonly groups: Subscription[][] = [];
  readonly limited: Subscription[] = [];
  readonly limiters: Limiter[] = [];
  /** The queue name of each of `groups`. */
  readonly groupNames: string[] = [];
  /**
   * Leafnode uplinks with interest (broker/leaf/): each once, after every local receiver
   * (local queue members first, as NATS leafnodes do). `remotePlain[r]`: it has plain
   * interest (it gets every message); `remoteGroups[r]`: indices into `groups` of the
   * queue groups it has members of (it gets a message for each that no local member
   * took). A queue name only uplinks have is a group with no local members.
   */
  readonly remotes: RemoteSubscriber[] = [];
  readonly remotePlain: boolean[] = [];
  readonly remoteGroups: number[][] = [];
  /** Per group, whether this message was taken already: null when no uplink has queue interest here. */
  readonly groupHit: Uint8Array | null = null;
  /**
   * Round-robin cursor per group. Cursors belong to the queue name, not to this
   * route: a route is rebuilt whenever a subscription comes or goes, and a group
   * spans every subject its members match, so a per-route cursor would restart at
   * the first member and starve the others.
   */
  readonly cursor: QueueCursor[] = [];
  readonly total: number;
  /**
   * Monitoring (broker/monitor.ts): messages and bytes published to this subject
   * since the monitor last harvested them, and the monitor interval in which this
   * route was last put on its harvest list. Counting on the cached route costs no
   * lookup per message.
   */
  msgs = 0;
  bytes = 0;
  seen = 0;
  readonly subject: string;
  /** The last-value cache store that keeps this subject, or null (set by the router when it builds the route). */
  lvc: CacheStore | null = null;

  constructor(
    subs: readonly Subscription[],
    subject: string,
    defaultPolicy: Policy,
    subjectLimits: readonly SubjectLimit[],
    cursorFor: (queue: string) => QueueCursor,
  ) {
    this.total = subs.length;
    this.subject = subject;
    const byQueue = new Map<string, Subscription[]>();
    const index = new Map<Subscriber, number>();
    let remoteQueues: Map<number, Set<string>> | null = null;
    for (const sub of subs) {
      if (sub.session.remote === true) {
        const r = this.remoteIndex(sub.session as RemoteSubscriber);
        if (sub.queue === '') this.remotePlain[r] = true;
        if (sub.max > 0) this.limited.push(sub);
        else {
          if (!byQueue.has(sub.queue)) byQueue.set(sub.queue, []);
          remoteQueues ??= new Map();
          let q = remoteQueues.get(r);
          if (q === undefined) remoteQueues.set(r, (q = new Set()));
          q.add(sub.queue);
        }
        continue;
      }
      if (sub.queue !== '') {
        let g = byQueue.get(sub.queue);
        if (g === undefined) byQueue.set(sub.queue, (g = []));
        g.push(sub);
        continue;
      }
      const policy = sub.policy === Policy.DEFAULT ? defaultPolicy : sub.policy;
      const i = index.get(sub.session);
      if (i === undefined) {
        index.set(sub.session, this.sessions.length);
        this.sessions.push(sub.session);
        this.sessionSubs.push([sub]);
        this.sessionPolicy.push(policy);
        this.sessionMinSeq.push(sub.servedSeq);
        this.sessionBrokerOnly.push(sub.brokerOnly ? [sub] : null);
      } else {
        this.sessionSubs[i]!.push(sub);
        if (sub.brokerOnly) (this.sessionBrokerOnly[i] ??= []).push(sub);
        if (sub.servedSeq < this.sessionMinSeq[i]!) this.sessionMinSeq[i] = sub.servedSeq;
        if (POLICY_RANK[policy]! < POLICY_RANK[this.sessionPolicy[i]!]!) this.sessionPolicy[i] = policy;
      }
      if (sub.max > 0) this.limited.push(sub);
    }
    for (const [queue, g] of byQueue) {
      this.groups.push(g);
      this.groupNames.push(queue);
      this.cursor.push(cursorFor(queue));
    }
    if (remoteQueues !== null) {
      for (const [r, names] of remoteQueues) for (const name of names) this.remoteGroups[r]!.push(this.groupNames.indexOf(name));
      this.groupHit = new Uint8Array(this.groups.length);
    }
    for (const l of subjectLimits) if (SubjectTree.matches(l.pattern, subject)) this.limiters.push(l.limiter);
  }

  private remoteIndex(s: RemoteSubscriber): number {
    let r = this.remotes.indexOf(s);
    if (r < 0) {
      r = this.remotes.push(s) - 1;
      this.remotePlain.push(false);
      this.remoteGroups.push([]);
    }
    return r;
  }
}

/** The next member a queue group hands a message to; shared by every route of the group. */
export interface QueueCursor {
  next: number;
}
