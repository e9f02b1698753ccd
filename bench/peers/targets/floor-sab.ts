/**
 * The shared-memory floor: the bench's clients on its main thread, a relay on a worker
 * thread (bench/peers/sab-relay.ts), SharedArrayBuffer rings between them (the ShmLink
 * of hopbus's shm transport, the same 'hybrid' wait). Each message is one frame of the
 * size a hopbus PUB frame has for its subject and payload; the relay forwards every
 * frame to every other connection without looking at it. So it has the topology of
 * hopbus-shm (main thread -> other thread -> main thread) minus everything a broker
 * does. No subjects: the cases where every connection wants every message (one hop,
 * ping-pong with one connection per side). The ping-pong's far side is a worker thread.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { MsgView, Op, msgSize, writeMsgHeader } from '../../../transports/protocol/index.js';
import { createConnection } from '../../../transports/shm/layout.js';
import { ShmLink } from '../../../transports/shm/link.js';
import { Poller } from '../../../transports/shm/poller.js';
import { HybridWait } from '../../../transports/shm/wait.js';
import { distRoot, stopWorker, workerReady } from '../../procs.js';
import type { BusClient, OnMessage, Server, Target } from '../target.js';

let relay: { worker: Worker; hub: SharedArrayBuffer } | null = null;

export const sabRelayServer: Server = {
  name: 'node-sab-relay',
  packages: [],
  async start() {
    const worker = new Worker(path.join(distRoot, 'bench/peers/sab-relay.js'));
    const hub = await new Promise<SharedArrayBuffer>((resolve, reject) => {
      worker.once('message', (m: { hub: SharedArrayBuffer }) => resolve(m.hub));
      worker.once('error', reject);
    });
    relay = { worker, hub };
    return {
      endpoints: { sab: 'worker thread' },
      version: `node ${process.version}`,
      command: 'dist/bench/peers/sab-relay.js on a worker thread of the bench process',
      stop: () => {
        relay = null;
        return stopWorker(worker);
      },
    };
  },
};

/** A fresh pair of rings, adopted by the relay thread; returns its buffer and the relay's hub block. */
async function adopt(): Promise<{ conn: SharedArrayBuffer; hub: SharedArrayBuffer }> {
  const r = relay;
  if (r === null) throw new Error('the SAB relay is not running');
  const conn = createConnection(1 << 20);
  const adopted = new Promise<void>((resolve) => {
    const on = (m: unknown) => {
      if (m !== 'adopted') return;
      r.worker.off('message', on);
      resolve();
    };
    r.worker.on('message', on);
  });
  r.worker.postMessage({ conn });
  await adopted;
  return { conn, hub: r.hub };
}

/** One connection to the relay, served by a poll loop on this thread. */
export async function sabConnect(): Promise<SabClient> {
  const { conn, hub } = await adopt();
  const link = new ShmLink({ conn, hub, side: 'client', remote: 'sab relay', maxFrame: 1 << 26, heartbeatMs: 1000, heartbeatTimeoutMs: Infinity });
  link.attach(new Poller(link.ownSignal, new HybridWait({ blocking: false }), false));
  return new SabClient(link);
}

export class SabClient implements BusClient {
  private readonly handlers: OnMessage[] = [];
  private readonly view = new MsgView();

  constructor(private readonly link: ShmLink) {
    link.start({
      onFrame: (buf, off, len) => {
        const v = this.view.parse(buf, off, len);
        const p = buf.subarray(v.payloadOff, v.payloadOff + v.payloadLen);
        for (const h of this.handlers) h(p);
      },
      onClose() {},
    });
  }

  publish(subject: string, payload: Uint8Array): void {
    const total = msgSize(subject.length, 0, 0, payload.length, false);
    const buf = this.link.reserve(total);
    const at = writeMsgHeader(buf, this.link.writeOffset, total, Op.PUB, 0, 0, 0, subject.length, 0, 0);
    buf.write(subject, at, 'latin1');
    buf.set(payload, at + subject.length);
    this.link.commit(total);
  }

  async subscribe(_pattern: string, onMessage: OnMessage): Promise<void> {
    // No subjects: every frame the relay forwards reaches every handler.
    this.handlers.push(onMessage);
  }

  async close(): Promise<void> {
    this.link.destroy();
  }
}

export const floorSab: Target = {
  name: 'node-sab-relay',
  kind: 'floor',
  server: sabRelayServer.name,
  client: `SharedArrayBuffer rings (hopbus ShmLink, ${process.version})`,
  settings: [
    "rings of 1 MiB, 'hybrid' wait as hopbus-shm",
    'frames the size of hopbus PUB frames, forwarded unparsed by a relay thread',
    'ping-pong far side: a worker thread',
  ],
  wildcards: false,
  duplex: true,
  cases: ['hop', 'pingpong'],
  echoWhere: 'a worker thread',
  endpoint: () => ({ transport: 'sab' }),
  connect: () => sabConnect(),
  async echo() {
    const w = new Worker(path.join(distRoot, 'bench/peers/sab-echo.js'), { workerData: await adopt() });
    await workerReady(w);
    return { stop: () => stopWorker(w) };
  },
};
