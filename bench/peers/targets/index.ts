/**
 * The registry of systems the peer benchmark runs, in the order they appear in
 * tables and plots. Adding one is a file in this folder exporting a Target (and, if
 * it needs a process of its own, a Server), plus a line in each list below.
 *
 * A hopbus transport gets a file like hopbus-unix.ts: registerBrokerListener() for
 * the broker's flags, hopbusTarget() for the client side. hopbus-shm and hopbus-inproc
 * run their broker inside the bench process (on a worker thread, on the bench's own
 * thread) and their ping-pong's far side on a thread (Target.echo), since neither
 * transport leaves its process.
 *
 * hopbus-nats is hopbus's NATS listener driven by nats.js exactly as the nats target
 * drives nats-server, so that the two rows differ only in the server; nats-to-hopbus and
 * hopbus-to-nats carry the same cases from one protocol to the other on that broker.
 *
 * Floors are Targets of kind 'floor' whose `cases` names the ones they can run (hop,
 * pingpong) where they have no subjects, so the other cases show them as "n/a": the
 * Node TCP relay, a relay thread over SharedArrayBuffer rings, a UDP relay process.
 */
import type { Server, Target } from '../target.js';
import { floorTcpRelay, relayServer } from './floor-tcp-relay.js';
import { floorSab, sabRelayServer } from './floor-sab.js';
import { dgramRelayServer, floorDgram } from './floor-dgram.js';
import { embeddedBroker, hopbusInproc } from './hopbus-inproc.js';
import { hopbusShm, shmBrokerThread } from './hopbus-shm.js';
import { hopbusBroker } from './hopbus.js';
import { hopbusTcp } from './hopbus-tcp.js';
import { hopbusUnix } from './hopbus-unix.js';
import { hopbusWs } from './hopbus-ws.js';
import { hopbusUdp } from './hopbus-udp.js';
import { hopbusNats, hopbusNatsBroker, hopbusToNats, natsToHopbus } from './hopbus-nats.js';
import { nats, natsServer } from './nats.js';
import { redis, redisServer } from './redis.js';
import { mosquittoServer, mqtt } from './mqtt.js';

export const SERVERS: readonly Server[] = [
  relayServer,
  sabRelayServer,
  dgramRelayServer,
  hopbusBroker,
  hopbusNatsBroker,
  shmBrokerThread,
  embeddedBroker,
  natsServer,
  redisServer,
  mosquittoServer,
];

export const TARGETS: readonly Target[] = [
  floorTcpRelay,
  floorSab,
  floorDgram,
  hopbusTcp,
  hopbusUnix,
  hopbusShm,
  hopbusInproc,
  hopbusWs,
  hopbusUdp,
  hopbusNats,
  natsToHopbus,
  hopbusToNats,
  nats,
  redis,
  mqtt,
];

export function targetNamed(name: string): Target {
  const t = TARGETS.find((x) => x.name === name);
  if (t === undefined) throw new Error(`no target "${name}": one of ${TARGETS.map((x) => x.name).join(', ')}`);
  return t;
}
