/**
 * transports/shm: worker_threads talk to a broker thread through SharedArrayBuffer
 * rings, with no system call on the data path.
 *
 *   layout.ts  the shared memory, drawn: connection header, the two rings, the hub block
 *   ring.ts    one single-producer / single-consumer byte ring (the two ends)
 *   wait.ts    wait strategies (spin, hybrid, park) and the doorbell signal
 *   poller.ts  a thread's poll loop: poll, spin or park, yield to the event loop
 *   link.ts    ShmLink: the Link contract over a pair of rings (either side)
 *   hub.ts     the broker side: endpoints, adoption, one loop over all rings
 *   dial.ts    the client side: connect(endpoint, { wait })
 *   direct.ts  direct channels between clients: their memory (made by the broker,
 *              passed on a BroadcastChannel) and their links
 *
 * Knows frames, not subjects or sessions; imports nothing from broker/ or client/.
 * Importing this module registers the 'shm' dialer.
 */
import './dial.js';

export { ShmHub, SHM_DEFAULTS, type ShmEndpoint, type ShmEndpointOptions } from './hub.js';
export { ShmLink } from './link.js';
export { HybridWait, ParkWait, SpinWait, waitStrategy, isWaitStrategy, type WaitStrategy, type WaitKind, type WaitOptions } from './wait.js';
