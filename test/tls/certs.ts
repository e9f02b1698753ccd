/** The TLS suites' certificates: made by openssl for each run (bench/certs.ts, which the benchmark's TLS cases use too). */
export * from '../../bench/certs.js';
