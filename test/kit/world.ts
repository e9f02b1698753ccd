/**
 * The world of one test: real brokers on loopback (TCP, or a Unix socket in a temporary
 * directory), real SDK clients and raw wire clients, all closed after the test even when
 * it failed: clients first, then raw sockets, then brokers.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { startBroker, type BrokerOptions, type StartedBroker } from '../../broker/index.js';
import type { Session } from '../../broker/session.js';
import { connectBroker as connect, type Bus, type ConnectOptions } from '../../client/index.js';
import { RawClient } from './wire.js';

/** The broker-side session of the client that connected with this name. */
export function sessionOf(b: StartedBroker, name: string): Session {
  const found = [...b.broker.sessions].filter((s) => s.name === name);
  if (found.length !== 1) throw new Error(`expected one session named "${name}", found ${found.length}`);
  return found[0]!;
}

export function portOf(b: StartedBroker): number {
  return Number(new URL(b.url).port);
}

/** A URL nobody listens on (a port just released by a broker). */
export async function deadUrl(): Promise<string> {
  const b = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent' });
  const url = b.url;
  await b.close();
  return url;
}

export interface World {
  /** Starts a broker on 127.0.0.1, a free port, silent logs, plus `options`. */
  broker(options?: BrokerOptions): Promise<StartedBroker>;
  /** Connects an SDK client; closed after the test. */
  connect(servers: string | string[], options?: ConnectOptions): Promise<Bus>;
  /** Tracks a client made some other way. */
  track(bus: Bus): Bus;
  /** Opens a raw socket to a broker's TCP port (or Unix socket path). */
  raw(target: StartedBroker | { path: string }): Promise<RawClient>;
  /** A fresh temporary directory, removed after the test. */
  tmpdir(): string;
}

export function useWorld(): World {
  const brokers: StartedBroker[] = [];
  const buses: Bus[] = [];
  const raws: RawClient[] = [];
  const dirs: string[] = [];

  afterEach(async () => {
    const bs = buses.splice(0);
    await Promise.all(bs.map((b) => b.close().catch(() => undefined)));
    for (const r of raws.splice(0)) r.socket.destroy();
    const brs = brokers.splice(0);
    await Promise.all(brs.map((b) => b.close().catch(() => undefined)));
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  const world: World = {
    async broker(options = {}) {
      const b = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', ...options });
      brokers.push(b);
      return b;
    },
    async connect(servers, options) {
      const bus = await connect(servers, options);
      buses.push(bus);
      // Tests that expect errors add their own bus.on('error') listener.
      return bus;
    },
    track(bus) {
      buses.push(bus);
      return bus;
    },
    async raw(target) {
      const r = await RawClient.dial('path' in target ? { path: target.path } : { port: portOf(target) });
      raws.push(r);
      return r;
    },
    tmpdir() {
      const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-'));
      dirs.push(d);
      return d;
    },
  };
  return world;
}
