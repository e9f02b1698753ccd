import { threadId } from 'node:worker_threads';
import { registerDialer, type DialOptions } from '../dial.js';
import { UrlError, type Endpoint } from '../url.js';
import {
  H_BROKER_CLOSED,
  OPEN,
  H_CLIENT_THREAD,
  H_CLIENT_WAIT,
  H_STATE,
  HUB_BYTES,
  HUB_CLAIMS,
  HUB_PARKED,
  HUB_SEQ,
  LINE,
  STATE_CLAIMED,
  STATE_OFFERED,
  connectionProblem,
} from './layout.js';
import { ShmDirectPort } from './direct.js';
import { ShmLink } from './link.js';
import { Poller } from './poller.js';
import { Signal, waitKindCode, waitStrategy } from './wait.js';
import { ConnectionError } from '../../runtime/errors.js';

/**
 * The client side of the shm transport: claims an endpoint a broker handed out
 * (broker.endpoint('shm')), and runs this connection's poll loop with the wait
 * strategy the user chose (connect option `wait`).
 */
export function dialShm(ep: Endpoint, o: DialOptions): Promise<ShmLink> {
  const d = ep.descriptor as Record<string, unknown> | undefined;
  const bad = d === undefined ? 'it is not an endpoint object' : (connectionProblem(d.conn) ?? hubProblem(d));
  if (bad !== null) return Promise.reject(new UrlError(`not a usable shm endpoint (${bad}); pass the object broker.endpoint('shm') returned`));
  let strategy;
  try {
    strategy = waitStrategy(o.transportOptions?.wait);
  } catch (err) {
    return Promise.reject(err);
  }
  const conn = d!.conn as SharedArrayBuffer;
  const hub = d!.hub as SharedArrayBuffer;
  const header = new Int32Array(conn, 0, LINE);
  if (Atomics.load(header, H_BROKER_CLOSED) !== OPEN) {
    return Promise.reject(new ConnectionError(`shm endpoint ${ep.url} was withdrawn: its broker has closed (or the Worker it was made for has exited)`));
  }
  if (Atomics.compareExchange(header, H_STATE, STATE_OFFERED, STATE_CLAIMED) !== STATE_OFFERED) {
    return Promise.reject(
      new ConnectionError(`shm endpoint ${ep.url} is already taken: an endpoint serves one connection; ask the broker for another with broker.endpoint('shm')`),
    );
  }
  Atomics.store(header, H_CLIENT_WAIT, waitKindCode(strategy.kind));
  Atomics.store(header, H_CLIENT_THREAD, threadId);
  const link = new ShmLink({
    conn,
    hub,
    side: 'client',
    remote: ep.url,
    maxFrame: o.maxFrame,
    heartbeatMs: d!.heartbeatMs as number,
    heartbeatTimeoutMs: d!.heartbeatTimeoutMs as number,
  });
  link.attach(new Poller(link.ownSignal, strategy, true));
  link.direct = new ShmDirectPort(link, hub, o.maxFrame);
  // Tell the broker: it adopts the connection on its next pass.
  const words = new Int32Array(hub);
  Atomics.add(words, HUB_CLAIMS, 1);
  new Signal(words, HUB_SEQ, HUB_PARKED).ring();
  return Promise.resolve(link);
}

function hubProblem(d: Record<string, unknown>): string | null {
  if (!(d.hub instanceof SharedArrayBuffer) || d.hub.byteLength !== HUB_BYTES) return 'its "hub" field is not a broker hub block';
  for (const k of ['heartbeatMs', 'heartbeatTimeoutMs']) {
    const v = d[k];
    if (typeof v !== 'number' || !(v > 0)) return `its "${k}" field is not a positive number`;
  }
  return null;
}

registerDialer('shm', dialShm);
