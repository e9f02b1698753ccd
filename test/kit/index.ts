/**
 * The test kit: what more than one suite needs, once.
 * - wait.ts: until() (a condition, with a timeout that is only a safety net), guard(), tick().
 * - wire.ts: the raw wire client and frame builders, for what the SDK would never send.
 * - world.ts: useWorld(): brokers, SDK clients and raw clients, closed after each test.
 * - guards.ts: suites that need multicast, nftables or Chromium skip loudly, or fail under HOPBUS_REQUIRE.
 * - probes.ts: can this machine do loopback multicast, network namespaces, nftables, Chromium.
 * - dist.ts: the built files that workers and child processes run, never stale (setup.ts checks).
 * - children.ts: useChildProcesses() (fixture processes ended after each test), jsonLines().
 */
export * from './wait.js';
export * from './wire.js';
export * from './world.js';
export * from './guards.js';
export * from './probes.js';
export * from './dist.js';
export * from './children.js';
