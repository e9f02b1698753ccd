/**
 * The shared test kit now lives in test/kit/. This file only re-exports it for the
 * keepalive suites (test/broker/keepalive.test.ts, test/client/keepalive.test.ts) that
 * still import it; delete it once they import '../kit/index.js'.
 */
export * from '../kit/index.js';
