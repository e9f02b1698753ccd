/**
 * broker/auth/: who connects and what each may publish and subscribe to.
 *
 *   authenticator.ts  identities from the config; one check per connection's CONNECT
 *   password.ts       the $scrypt$ format, plain-text secrets, constant-time checks
 *   nkey.ts           Ed25519 user nkeys and the nonce they sign
 *   backoff.ts        the per-address back-off against password guessing
 *   permissions.ts    allow/deny per subject and queue group, $SYS reserved, allow_responses
 *   access.ts         one connection's rights, asked by the router (PUB) and sessions (SUB)
 *   subjects.ts       pattern matching, covering and overlap, for the permission checks
 *   config.ts         validation of the `users`, `tokens` and `anonymous` options
 *   monitoring.ts     who may read the HTTP monitoring endpoints (option `monitoring`)
 *
 * Part of the broker layer: imports topics/, transports/ (protocol, nkeys.ts), and
 * broker/counters.ts and broker/ratelimit.ts (a user's publishRate);
 * never sessions, the router or the broker, which call into it.
 */
export { Access, publishViolation, subscribeViolation } from './access.js';
export {
  Authenticator,
  Identity,
  type AuthConfig,
  type AuthFailure,
  type Credentials,
  type TokenConfig,
  type UserConfig,
  type CertificateMatch,
  type UserLimits,
  type AnonymousConfig,
} from './authenticator.js';
export { authOptionProblem } from './config.js';
export { MonitorGuard, MONITOR_PERMISSIONS, monitoringOptionProblem, type MonitoringConfig } from './monitoring.js';
export { newNonce, parseUserNkey, verifyNonce } from './nkey.js';
export { SCRYPT_DEFAULTS, Secret, hashPassword, parseHash } from './password.js';
export { Permissions, type PermissionsConfig, type SubjectRules } from './permissions.js';
export { covers, matches, overlaps } from './subjects.js';
