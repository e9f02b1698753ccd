/**
 * Waiting in tests without reading the wall clock as a clock: `until` polls a condition
 * and its timeout is only a safety net (a failing test ends instead of hanging), never
 * the thing a test measures. A negative check ("nothing more arrives") waits for an
 * acknowledgement instead: a flush() or PING/PONG round trip through the broker, which
 * proves that everything sent before it has been processed.
 */

/** Polls `cond` every 2 ms until it holds; fails, naming `what`, after `timeoutMs` (a safety net). */
export async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Rejects after `ms` with `what`; for racing a promise that must settle first (a safety net, not a measure). */
export function guard(ms: number, what: string): Promise<never> {
  return new Promise((_, reject) => {
    const t = setTimeout(() => reject(new Error(`guard of ${ms} ms elapsed first: ${what}`)), ms);
    t.unref();
  });
}

/** One turn of the event loop: lets I/O callbacks and timers due now run. */
export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * until() for a value read asynchronously (another process's or thread's report): reads
 * it, one read at a time, until `done` holds, and returns the last value read; fails,
 * naming `what` and the last value, after `timeoutMs` (a safety net).
 */
export async function eventually<T>(read: () => Promise<T>, done: (v: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}; last read: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
