/**
 * Shared by the shm suites: a connected pair of ShmLinks in one thread (both ends
 * parking with Atomics.waitAsync, so one thread can serve both), frames of any size,
 * and worker threads running the fixtures against the built dist/ code.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach } from 'vitest';
import { startBroker, type BrokerOptions, type StartedBroker } from '../../broker/index.js';
import type { Bus } from '../../client/index.js';
import type { Clock } from '../../runtime/clock.js';
import type { LinkHandler } from '../../transports/link.js';
import { H_STATE, HUB_BYTES, STATE_CLAIMED, createConnection } from '../../transports/shm/layout.js';
import { ShmLink } from '../../transports/shm/link.js';
import { Poller } from '../../transports/shm/poller.js';
import { ParkWait, type WaitStrategy } from '../../transports/shm/wait.js';

import { until } from '../kit/index.js';

export { until };

const here = path.dirname(fileURLToPath(import.meta.url));

export const OP_PING = 0x30;
export const OP_INFO = 0x02;

/** A valid frame of exactly `size` bytes (6, or 8 and up) whose bytes depend on `seq`. */
export function frameOf(size: number, seq: number): Buffer {
  if (size === 6) return Buffer.from([6, 0, 0, 0, OP_PING, 0]);
  if (size < 8) throw new RangeError(`no frame is ${size} bytes long`);
  const b = Buffer.allocUnsafe(size);
  b.writeUInt32LE(size, 0);
  b[4] = OP_INFO;
  b[5] = 0;
  b.writeUInt16LE(1, 6);
  for (let i = 8; i < size; i++) b[i] = (seq * 13 + i) & 0xff;
  if (size >= 12) b.writeUInt32LE(seq, 8);
  return b;
}

/** Collects what a link delivers. */
export class Collector implements LinkHandler {
  frames: Buffer[] = [];
  closed: Error | null | undefined = undefined;
  drains = 0;
  onFrame(buf: Buffer, off: number, len: number): void {
    this.frames.push(Buffer.from(buf.subarray(off, off + len)));
  }
  onClose(err: Error | null): void {
    this.closed = err;
  }
  onDrain(): void {
    this.drains++;
  }
}

export interface Pair {
  client: ShmLink;
  broker: ShmLink;
  atClient: Collector;
  atBroker: Collector;
}

/** A client end and a broker end over one fresh connection, both in this thread. */
export function linkPair(capacity = 4096, o: { heartbeatMs?: number; heartbeatTimeoutMs?: number; wait?: WaitStrategy; clock?: Clock } = {}): Pair {
  const conn = createConnection(capacity);
  Atomics.store(new Int32Array(conn), H_STATE, STATE_CLAIMED);
  const hub = new SharedArrayBuffer(HUB_BYTES);
  const cfg = { conn, hub, maxFrame: 1 << 24, heartbeatMs: o.heartbeatMs ?? 50, heartbeatTimeoutMs: o.heartbeatTimeoutMs ?? 5000, clock: o.clock };
  const client = new ShmLink({ ...cfg, side: 'client', remote: 'test-client' });
  const broker = new ShmLink({ ...cfg, side: 'broker', remote: 'test-broker' });
  const wait = o.wait ?? new ParkWait({ blocking: false });
  client.attach(new Poller(client.ownSignal, wait, false));
  broker.attach(new Poller(broker.ownSignal, wait, false));
  const atClient = new Collector();
  const atBroker = new Collector();
  client.start(atClient);
  broker.start(atBroker);
  return { client, broker, atClient, atBroker };
}

/** Starts a fixture worker (test/shm/fixtures/<name>.mjs, which loads dist/). */
export function startWorker(name: string, workerData: unknown): Worker {
  const w = new Worker(path.join(here, 'fixtures', `${name}.mjs`), { workerData });
  w.on('error', () => {}); // crash tests make workers throw on purpose; the tests look at 'exit'
  return w;
}

/** The next message from a worker that satisfies `match`. */
export function nextMessage<T = Record<string, unknown>>(w: Worker, match: (m: T) => boolean = () => true, timeoutMs = 15_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      w.off('message', on);
      reject(new Error(`no matching message from the worker within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (m: T) => {
      if (!match(m)) return;
      clearTimeout(timer);
      w.off('message', on);
      resolve(m);
    };
    w.on('message', on);
  });
}

export function exited(w: Worker): Promise<number> {
  return new Promise((resolve) => {
    if (w.threadId === -1) resolve(-1);
    else w.once('exit', resolve);
  });
}

/** A hopbus client in a worker thread (fixtures/agent.mjs), driven by commands. */
export class Agent {
  private seq = 0;
  private constructor(readonly worker: Worker) {}

  /**
   * Starts the worker and connects it. `ep` is an endpoint, or a function that makes
   * one for the Worker (to bind the endpoint to it); that one is sent by postMessage.
   */
  static async start(ep: unknown, o: { wait?: string; name?: string; direct?: boolean } = {}): Promise<Agent> {
    const later = typeof ep === 'function';
    const w = startWorker('agent', { ep: later ? null : ep, wait: o.wait ?? 'park', name: o.name, direct: o.direct });
    if (later) w.postMessage({ ep: (ep as (w: Worker) => unknown)(w) });
    const first = await nextMessage<{ ready?: boolean; error?: string }>(w, (m) => 'ready' in m || 'error' in m);
    if (first.error) throw new Error(`agent could not connect: ${first.error}`);
    return new Agent(w);
  }

  /** Sends a command and resolves with its answer (rejects with the agent's error). */
  async call<T = Record<string, unknown>>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 15_000): Promise<T> {
    const id = ++this.seq;
    const reply = nextMessage<{ id?: number; error?: string }>(this.worker, (m) => m.id === id, timeoutMs);
    this.worker.postMessage({ id, cmd, ...args });
    const r = await reply;
    if (r.error) throw new Error(`agent ${cmd}: ${r.error}`);
    return r as T;
  }

  /**
   * Stops the agent's thread cold (a consumer that is stuck) and resolves once it is
   * frozen; it stays so until `release()` or `ms`.
   */
  async freeze(ms?: number): Promise<{ release(): void }> {
    const gate = new Int32Array(new SharedArrayBuffer(8));
    this.post('freeze', { sab: gate.buffer, ms });
    await until(() => Atomics.load(gate, 1) === 1, `agent ${this.worker.threadId} to freeze`);
    return {
      release() {
        Atomics.store(gate, 0, 1);
        Atomics.notify(gate, 0);
      },
    };
  }

  /** Sends a command without waiting for its answer. */
  post(cmd: string, args: Record<string, unknown> = {}): void {
    this.worker.postMessage({ id: ++this.seq, cmd, ...args });
  }

  async stop(): Promise<void> {
    await this.worker.terminate();
  }
}

/**
 * What one shm test opened, closed after it even when it failed: SDK clients first, then
 * agents (their workers), then the broker. Set `broker` to the one the test starts (or to
 * null when the test closed it itself).
 */
export interface ShmWorld {
  broker: StartedBroker | null;
  readonly buses: Bus[];
  readonly agents: Agent[];
  /** Starts the test's broker on 127.0.0.1, a free port, silent logs, plus `options`. */
  start(options?: BrokerOptions): Promise<StartedBroker>;
}

export function useShmWorld(): ShmWorld {
  const world: ShmWorld = {
    broker: null,
    buses: [],
    agents: [],
    async start(options = {}) {
      world.broker = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', ...options });
      return world.broker;
    },
  };
  afterEach(async () => {
    await Promise.all(world.buses.splice(0).map((b) => b.close()));
    await Promise.all(world.agents.splice(0).map((a) => a.stop()));
    await world.broker?.close();
    world.broker = null;
  });
  return world;
}
