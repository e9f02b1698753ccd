/**
 * A worker that dies, however it dies, is noticed by the broker, which frees its
 * connection and subscriptions and goes on serving everyone else; and a broker thread
 * that dies is noticed by its shm clients.
 *
 * Threads that die without telling anyone are found by the heartbeat, which runs on real
 * threads and so on real time: its timeout is 1 s, far above a loaded machine's scheduling
 * hiccups, so that no live thread is declared dead while a test sets up; nothing measures
 * how long detection took. (ShmLink's heartbeat on a fake clock: test/transports/shm-clock.)
 * Workers load dist/: run `npx tsc -p tsconfig.json` first.
 */
import { describe, expect, it } from 'vitest';
import type { StartedBroker } from '../../broker/index.js';
import type { ShmEndpoint, ShmEndpointOptions } from '../../transports/shm/hub.js';
import { H_CAPACITY, H_STATE, HUB_CLAIMS, HUB_PARKED, HUB_SEQ, STATE_CLAIMED, ringOffset } from '../../transports/shm/layout.js';
import { RingWriter } from '../../transports/shm/ring.js';
import { Signal } from '../../transports/shm/wait.js';
import { connectBroker as connect, type Bus } from '../../client/index.js';
import type { Worker } from 'node:worker_threads';
import { Agent, exited, nextMessage, startWorker, until, useShmWorld } from './helpers.js';

const shm = useShmWorld();
const { buses, agents } = shm;

const shmSessions = (b: StartedBroker) => [...b.broker.sessions].filter((s) => s.link.transport === 'shm');

/** A broker with a TCP client and a healthy worker, plus a doomed worker subscribed to `doomed.>`. */
async function scene(endpointOptions: ShmEndpointOptions = {}) {
  const b = await shm.start();
  const healthy = await Agent.start(b.endpoint('shm'), { wait: 'hybrid', name: 'healthy' });
  agents.push(healthy);
  await healthy.call('echo', { subject: 'svc.healthy' });
  const doomed = await Agent.start(b.endpoint('shm', endpointOptions), { wait: 'park', name: 'doomed' });
  agents.push(doomed);
  await doomed.call('sub', { subject: 'doomed.>' });
  await doomed.call('echo', { subject: 'svc.doomed' });
  const tcp = await connect(b.url, { reconnect: false });
  buses.push(tcp);
  expect(shmSessions(b).length).toBe(2);
  return { b, healthy, doomed, tcp };
}

/** The broker has forgotten the doomed worker and still serves the others. */
async function survivorsServed(b: StartedBroker, healthy: Agent, tcp: Bus): Promise<void> {
  await until(() => shmSessions(b).length === 1, "the dead worker's session is gone", 10_000);
  expect(shmSessions(b)[0]!.name).toBe('healthy');
  // Its subscriptions are gone: publishing to them routes nowhere.
  const unrouted = b.broker.counters.unrouted;
  tcp.publish('doomed.x', 'anyone?');
  await tcp.flush();
  expect(b.broker.counters.unrouted).toBe(unrouted + 1);
  await expect(tcp.request('svc.doomed', 'x', { timeoutMs: 2000 })).rejects.toThrow(/no responders/i);
  // Everyone else is served as before.
  expect((await tcp.request('svc.healthy', 'still there?')).string()).toBe('still there?');
  const fresh = await Agent.start(b.endpoint('shm'), { wait: 'park' });
  agents.push(fresh);
  const r = await fresh.call<{ value: unknown }>('request', { subject: 'svc.healthy', data: 'new worker' });
  expect(Buffer.from(r.value as Uint8Array).toString()).toBe('new worker');
}

describe('a worker that dies', () => {
  it('process.exit(): its exit hook marks the connection, and the broker frees it at once', async () => {
    const { b, healthy, doomed, tcp } = await scene({ heartbeatTimeoutMs: 60_000 });
    doomed.post('crash', { how: 'exit' });
    expect(await exited(doomed.worker)).toBe(7);
    await survivorsServed(b, healthy, tcp);
  });

  it('an uncaught exception: freed at once', async () => {
    const { b, healthy, doomed, tcp } = await scene({ heartbeatTimeoutMs: 60_000 });
    doomed.post('crash', { how: 'throw' });
    expect(await exited(doomed.worker)).toBe(1);
    await survivorsServed(b, healthy, tcp);
  });

  it('worker.terminate(), nobody told the broker: freed once its heartbeat is overdue', async () => {
    const { b, healthy, doomed, tcp } = await scene({ heartbeatMs: 50, heartbeatTimeoutMs: 1000 });
    await doomed.worker.terminate();
    await survivorsServed(b, healthy, tcp);
  });

  it("worker.terminate() of a Worker bound to its endpoint: freed on the Worker's exit event", async () => {
    const b = await shm.start();
    const healthy = await Agent.start(b.endpoint('shm'), { wait: 'hybrid', name: 'healthy' });
    agents.push(healthy);
    await healthy.call('echo', { subject: 'svc.healthy' });
    const tcp = await connect(b.url, { reconnect: false });
    buses.push(tcp);
    // Bind the endpoint to the Worker that will use it (sent by postMessage once the
    // Worker exists): its exit event frees the connection, with no heartbeat needed.
    const doomed = await Agent.start((worker: Worker) => b.endpoint('shm', { heartbeatTimeoutMs: 60_000, worker }), { wait: 'park', name: 'doomed' });
    agents.push(doomed);
    await doomed.call('sub', { subject: 'doomed.>' });
    await doomed.call('echo', { subject: 'svc.doomed' });
    expect(shmSessions(b).length).toBe(2);
    await doomed.worker.terminate();
    await survivorsServed(b, healthy, tcp);
  });

  it('a worker stuck in an endless loop: its heartbeat stops, the broker frees it', async () => {
    const { b, healthy, doomed, tcp } = await scene({ heartbeatMs: 50, heartbeatTimeoutMs: 1000 });
    doomed.post('crash', { how: 'hang' });
    await survivorsServed(b, healthy, tcp);
  });
});

describe('a broker in a worker of its own', () => {
  it('serves a main-thread shm client and TCP clients; when it is terminated, the shm client learns it from the missing heartbeat', async () => {
    const bw = startWorker('broker', {});
    const { url } = await nextMessage<{ url: string }>(bw, (m) => 'url' in m);
    try {
      bw.postMessage({ id: 1, cmd: 'endpoint', options: { heartbeatMs: 50, heartbeatTimeoutMs: 1000 } });
      const { endpoint } = await nextMessage<{ endpoint: unknown }>(bw, (m) => 'endpoint' in m);
      const local = await connect(endpoint as never, { wait: 'hybrid', reconnect: false });
      buses.push(local);
      const tcp = await connect(url, { reconnect: false });
      buses.push(tcp);
      // shm (main thread) -> broker thread -> TCP, and back.
      tcp.subscribe('svc.tcp', (m) => m.respond(`tcp saw ${m.string()}`));
      await tcp.flush();
      expect((await local.request('svc.tcp', 'hi')).string()).toBe('tcp saw hi');
      local.subscribe('svc.main', (m) => m.respond(`main saw ${m.string()}`));
      await local.flush();
      expect((await tcp.request('svc.main', 'yo')).string()).toBe('main saw yo');

      const gone = new Promise<Error | null>((resolve) => local.once('disconnect', (e) => resolve(e ?? null)));
      await bw.terminate();
      const err = await gone;
      expect(err?.message).toMatch(/broker thread stopped|broker thread exited/);
    } finally {
      await bw.terminate();
    }
  });
});

describe('a client that breaks the ring protocol', () => {
  /** Claims an endpoint by hand, as a client would, and returns its UP ring's writer. */
  function rogue(ep: ShmEndpoint) {
    const header = new Int32Array(ep.conn, 0, 32);
    Atomics.store(header, H_STATE, STATE_CLAIMED);
    const cap = header[H_CAPACITY]!;
    const writer = new RingWriter(ep.conn, ringOffset(cap, false), cap);
    const announce = () => {
      const hub = new Int32Array(ep.hub);
      Atomics.add(hub, HUB_CLAIMS, 1);
      new Signal(hub, HUB_SEQ, HUB_PARKED).ring();
    };
    return { writer, announce, indices: new Int32Array(ep.conn, ringOffset(cap, false), 1) };
  }

  it('bytes that are not a frame: ERR and close, like TCP; everyone else is served', async () => {
    const b = await shm.start();
    const tcp = await connect(b.url, { reconnect: false });
    buses.push(tcp);
    tcp.subscribe('svc.tcp', (m) => m.respond(m.data));
    await tcp.flush();
    const r = rogue(b.endpoint('shm'));
    const garbage = Buffer.from([3, 0, 0, 0, 0x01, 0, 0]); // a 3-byte frame: shorter than any frame
    r.writer.write(garbage, 0, garbage.length);
    r.writer.publish();
    r.announce();
    await until(() => b.broker.counters.protocolErrors === 1, 'the broker refuses the rogue client');
    await until(() => shmSessions(b).length === 0, 'and forgets it');
    expect((await tcp.request('svc.tcp', 'ok')).string()).toBe('ok');
  });

  it('ring indices that make no sense (more bytes than the ring holds): the connection is closed', async () => {
    const b = await shm.start();
    const r = rogue(b.endpoint('shm', { ringBytes: 4096 }));
    Atomics.store(r.indices, 0, 10 * 4096); // tail far past head
    r.announce();
    await until(() => b.broker.counters.connectionsTotal === 1, 'the broker adopts the connection');
    await until(() => shmSessions(b).length === 0, 'the broker closes it');
  });
});
