/**
 * Connecting to the wrong kind of server says so: a web server, a NATS server (here
 * hopbus's own NATS listener, which speaks as nats-server does), a server that accepts
 * and says nothing (an HTTP port waiting for a request), and nothing listening.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionError, connect } from '../../client/index.js';
import { until, useWorld } from '../kit/index.js';
import { Bus } from '../../client/bus.js';
import { FakeClock } from '../../runtime/clock.js';

const w = useWorld();
const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function serve(onSocket: (s: net.Socket) => void): Promise<string> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.resume(); // read (and drop) what the client sends, so its close is seen
    onSocket(s);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

async function failure(url: string): Promise<Error> {
  const err = await connect(url, { reconnect: false }).then(
    async (bus) => {
      await bus.close();
      return null;
    },
    (e: unknown) => e as Error,
  );
  expect(err).toBeInstanceOf(ConnectionError);
  return err!;
}

describe('connecting to something that is not a hopbus broker', () => {
  it('a web server that answers at once: "is an HTTP server"', async () => {
    const url = await serve((s) => s.once('data', () => s.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')));
    expect((await failure(url)).message).toContain(`${url} is an HTTP server, not a hopbus broker's TCP port`);
  });

  it('a NATS server (the INFO it sends first): "is a NATS server"', async () => {
    const b = await w.broker({ natsPort: 0 });
    const url = b.broker.natsUrl!.replace('nats://', 'tcp://');
    expect((await failure(url)).message).toContain(`${url} is a NATS server (it sent INFO)`);
  });

  it('a server that accepts and never answers: the handshake timeout says what it means', async () => {
    const url = await serve(() => {});
    // The handshake's timer runs on a fake clock: the timeout is the test advancing it.
    const clock = new FakeClock();
    let err: unknown = null;
    const opened = new Bus(url, { reconnect: false, timeoutMs: 300 }, clock).open().catch((e: unknown) => (err = e));
    await until(() => {
      clock.advance(100);
      return err !== null;
    }, 'the handshake to time out on the clock');
    await opened;
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).message).toMatch(/handshake timed out after 300 ms: the server accepted the connection but did not answer as a hopbus broker/);
  });

  it('nothing listening: "nothing listens there"', async () => {
    const url = await serve(() => {});
    await new Promise((r) => servers.pop()!.close(r));
    expect((await failure(url)).message).toContain(`${url}: nothing listens there (is the broker running?)`);
  });
});
