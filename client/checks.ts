/**
 * Checks of the options a caller passes to publish(), subscribe() and request(),
 * shared by Bus and MulticastBus so both refuse the same mistakes with the same
 * words. Not on the per-message path: publish() checks its options only when given.
 */
import { validateSubject } from '../topics/index.js';
import { OptionsError } from './errors.js';
import type { MsgHandler, SubscribeOptions } from './subscription.js';
import type { PublishOptions } from './types.js';

export const PUB_KEYS = new Set(['reply', 'headers']);
export const SUB_KEYS = new Set(['queue', 'max', 'maxPending', 'policy']);
/** A broker connection's subscriptions also take a byte bound for their iterator buffer. */
export const BUS_SUB_KEYS = new Set([...SUB_KEYS, 'maxPendingBytes', 'snapshot', 'from']);

/** Checks `snapshot` and `from` (a broker connection's subscriptions only). */
export function checkStart(opts: SubscribeOptions): void {
  if (opts.snapshot !== undefined && typeof opts.snapshot !== 'boolean') throw new OptionsError('subscribe option "snapshot" must be true or false');
  const f = opts.from as Record<string, unknown> | undefined;
  if (f !== undefined) {
    if (f === null || typeof f !== 'object') throw new OptionsError('subscribe option "from" must be { seq } or { time }');
    const keys = Object.keys(f);
    if (keys.length !== 1 || (keys[0] !== 'seq' && keys[0] !== 'time'))
      throw new OptionsError('subscribe option "from" must be { seq } or { time }, one of them');
    if (keys[0] === 'seq' && !(Number.isSafeInteger(f.seq) && (f.seq as number) >= 0))
      throw new OptionsError('subscribe option "from.seq" must be a non-negative integer');
    const t = f.time instanceof Date ? f.time.getTime() : f.time;
    if (keys[0] === 'time' && !(typeof t === 'number' && Number.isFinite(t) && t >= 0))
      throw new OptionsError('subscribe option "from.time" must be a Date or a number of ms since the epoch (fractions allowed)');
    if (opts.snapshot === true) throw new OptionsError('subscribe options "snapshot" and "from" do not go together');
  }
  if ((opts.snapshot === true || f !== undefined) && opts.queue !== undefined)
    throw new OptionsError('a snapshot or replay subscription cannot be in a queue group');
}
export const REQ_KEYS = new Set(['timeoutMs', 'headers']);

/** Throws OptionsError unless `obj` is an object whose keys are all in `allowed`. */
export function checkKeys(obj: object, allowed: Set<string>, what: string): void {
  if (obj === null || typeof obj !== 'object') throw new OptionsError(`${what} options must be an object`);
  for (const k of Object.keys(obj)) {
    if (!allowed.has(k)) throw new OptionsError(`unknown ${what} option "${k}"; known options: ${[...allowed].join(', ')}`);
  }
}

/** publish() options: the checked reply subject ('' for none). */
export function publishReply(options: PublishOptions): string {
  checkKeys(options, PUB_KEYS, 'publish');
  if (options.reply === undefined) return '';
  validateSubject(options.reply);
  return options.reply;
}

/** subscribe(pattern, handler?, options?) or subscribe(pattern, options): the handler (or null) and the checked options. */
export function subscribeArgs(
  handler: MsgHandler | SubscribeOptions | undefined,
  options: SubscribeOptions | undefined,
): [MsgHandler | null, SubscribeOptions] {
  let cb: MsgHandler | null = null;
  if (typeof handler === 'function') cb = handler;
  else if (handler !== undefined) options = handler;
  return [cb, options ?? {}];
}

/** The subscribe options both clients check the same way (in between, each checks `queue` and `policy` its own way). */
export function checkMax(opts: SubscribeOptions): void {
  if (opts.max !== undefined && !(Number.isSafeInteger(opts.max) && opts.max >= 0))
    throw new OptionsError('subscribe option "max" must be a non-negative integer');
}

export function checkMaxPending(opts: SubscribeOptions): void {
  if (opts.maxPending !== undefined && !(Number.isSafeInteger(opts.maxPending) && opts.maxPending > 0))
    throw new OptionsError('subscribe option "maxPending" must be a positive integer');
  if (opts.maxPendingBytes !== undefined && !(Number.isSafeInteger(opts.maxPendingBytes) && opts.maxPendingBytes > 0))
    throw new OptionsError('subscribe option "maxPendingBytes" must be a positive integer');
}
