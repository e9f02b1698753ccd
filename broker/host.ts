/**
 * broker/host.ts: what a session is given instead of the whole Broker. A session of
 * any codec (hopbus today; the NATS client protocol and a leafnode later) needs the
 * same few things: the config, the log, the counters, a clock, the router to
 * subscribe and publish through, liveness, the direct plane, and a way to say it has
 * gone.
 *
 * Types only. Must not import session.ts or broker.ts.
 */
import type { Logger } from 'pino';
import type { Policy } from '../transports/protocol/index.js';
import type { Clock } from '../runtime/clock.js';
import type { ResolvedOptions } from './config.js';
import type { BrokerCounters } from './counters.js';
import type { DirectPlane } from './direct.js';
import type { Liveness } from './liveness.js';
import type { Router } from './router.js';
import type { Subscriber } from './subscription.js';
import type { LastValueCache } from './cache/cache.js';
import type { Recorder } from './recorder.js';

export interface SessionHost {
  readonly options: ResolvedOptions;
  readonly log: Logger;
  readonly counters: BrokerCounters;
  readonly clock: Clock;
  readonly serverId: string;
  /** Policy of subscriptions that name none (config slowConsumerPolicy). */
  readonly defaultPolicy: Policy;
  readonly router: Router;
  readonly liveness: Liveness;
  readonly direct: DirectPlane;
  /** The last-value cache (empty when the config has no `cache`). */
  readonly cache: LastValueCache;
  /** The journal's recorder (option `journal`), or null: replay-then-live subscriptions read it. */
  readonly recorder: Recorder | null;
  /** The session's link is closed for good: forget it. */
  detach(session: Subscriber): void;
}
