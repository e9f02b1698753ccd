/**
 * runtime/: the small pieces every layer uses, below all of them.
 *
 *   clock.ts   monotonic time as numbers (monoNs, u64 halves) and Clock/FakeClock for timers
 *   errors.ts  HopbusError and the one vocabulary of error codes
 *   ring.ts    Ring: the bounded FIFO (held messages, receiver queues, iterator buffers)
 *   bucket.ts  TokenBucket: every rate limit
 *
 * Must not import anything of hopbus (topics/, transports/, metrics/, broker/, client/
 * all import it; it imports none of them) and nothing Node-only, so that the browser
 * bundle can use it.
 */
export * from './clock.js';
export * from './errors.js';
export * from './ring.js';
export * from './bucket.js';
