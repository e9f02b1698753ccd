/**
 * broker/auth/admit.ts: the authentication step of every codec's handshake, in one
 * place: check what the client presented, count and log a failure (remote address and
 * claimed name, never a secret), and give a connection that passes its Identity and,
 * when it has anything to check, its Access.
 */
import type { Logger } from 'pino';
import type { PeerCertificate } from '../../transports/link.js';
import type { Clock } from '../../runtime/clock.js';
import type { BrokerCounters } from '../counters.js';
import type { ResolvedOptions } from '../config.js';
import { Access } from './access.js';
import type { Credentials, Identity } from './authenticator.js';

export interface AdmitHost {
  readonly options: Pick<ResolvedOptions, 'auth' | 'maxPayload' | 'maxSubscriptions'>;
  readonly log: Logger;
  readonly counters: BrokerCounters;
  readonly clock: Clock;
}

export interface Admitted {
  identity: Identity;
  /** Null: nothing to check for this connection. */
  access: Access | null;
}

/** The connection `cid` from `link` presented `creds`: admitted, or the failure text (already counted and logged). */
export function admit(
  host: AdmitHost,
  creds: Credentials,
  link: { readonly remote: string; readonly transport: string; readonly certificate?: PeerCertificate | null },
  cid: number,
  nonce: string | null,
  protocol: 'hopbus' | 'nats',
): Admitted | string {
  const clock = host.clock;
  const got = host.options.auth.authenticate(creds, link.remote, link.transport, nonce, clock.now(), link.certificate ?? null);
  if ('failure' in got) {
    host.counters.authFailures++;
    host.log.warn({ cid, remote: link.remote, transport: link.transport, protocol, user: got.claimed, reason: got.failure }, 'authentication failed');
    return got.failure;
  }
  got.connections++;
  const access = got.unrestricted ? null : new Access(got, cid, host.options, host.counters, () => clock.now());
  return { identity: got, access };
}
