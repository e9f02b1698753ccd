/**
 * The registry of systems the peer benchmark runs, in the order they appear in
 * tables and plots. Adding one is a file in this folder exporting a Target (and, if
 * it needs a process of its own, a Server), plus a line in each list below.
 *
 * A hopbus transport gets a file like hopbus-unix.ts: registerBrokerListener() for
 * the broker's flags, hopbusTarget() for the client side. Not here yet: shm and inproc,
 * whose clients live in a worker thread or in the broker's own process, which this
 * harness (clients in the bench process, broker in its own) does not model; they are
 * measured by `npm run bench` (bench/shm.ts) against their own floors.
 *
 * Floors still to come: node-sab-pingpong (two processes' worth of threads over a
 * SharedArrayBuffer with Atomics.wait/notify) and node-dgram-pingpong (UDP on
 * loopback). Each is a Target of kind 'floor' whose `cases` names the ones it can run
 * (hop, pingpong), so the other cases show it as "n/a".
 */
import type { Server, Target } from '../target.js';
import { floorTcpRelay, relayServer } from './floor-tcp-relay.js';
import { hopbusBroker } from './hopbus.js';
import { hopbusTcp } from './hopbus-tcp.js';
import { hopbusUnix } from './hopbus-unix.js';
import { hopbusWs } from './hopbus-ws.js';
import { hopbusUdp } from './hopbus-udp.js';
import { nats, natsServer } from './nats.js';
import { redis, redisServer } from './redis.js';
import { mosquittoServer, mqtt } from './mqtt.js';

export const SERVERS: readonly Server[] = [relayServer, hopbusBroker, natsServer, redisServer, mosquittoServer];

export const TARGETS: readonly Target[] = [floorTcpRelay, hopbusTcp, hopbusUnix, hopbusWs, hopbusUdp, nats, redis, mqtt];

export function targetNamed(name: string): Target {
  const t = TARGETS.find((x) => x.name === name);
  if (t === undefined) throw new Error(`no target "${name}": one of ${TARGETS.map((x) => x.name).join(', ')}`);
  return t;
}
