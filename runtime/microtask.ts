/**
 * runtime/microtask.ts: the cheapest way to run a function in a microtask.
 *
 * Node's queueMicrotask wraps every callback in an AsyncResource and a bound function
 * (for async_hooks), about 150 ns a call; a reaction on an already settled promise
 * goes on the same microtask queue, in the same order, for a fraction of that. Used
 * where a hand-off per batch is on the per-message path (inproc, shm). A callback that
 * throws surfaces as an unhandled rejection instead of an uncaught exception; these
 * callbacks do not throw.
 */
const SETTLED = Promise.resolve();

export function microtask(fn: () => void): void {
  void SETTLED.then(fn);
}
