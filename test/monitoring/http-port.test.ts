/**
 * The HTTP port is the broker's own: a second broker asked for a busy HTTP port fails
 * to start with ListenError, like the TCP port, instead of sharing the port with the
 * first (uWebSockets.js listens with SO_REUSEPORT unless told otherwise), and the first
 * keeps answering alone. Also for a port held by any other process.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { ListenError, startBroker } from '../../broker/index.js';
import { dist, until } from '../kit/index.js';

describe('a busy HTTP port', () => {
  it('refuses to start a second broker on it (in another process); the first goes on answering, alone', async () => {
    // A fixed port, as an operator gives it (uWS asks for SO_REUSEPORT only for a non-zero port).
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const fixed = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const first = spawn(process.execPath, [dist('bin/hopbus.js'), 'broker', '--port', '0', '--no-nats', '--http-port', String(fixed), '--log-level', 'warn'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      let err = '';
      first.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      await until(() => /monitoring: http:\/\/127\.0\.0\.1:\d+\//.test(err), 'the first broker up');
      const port = Number(/monitoring: http:\/\/127\.0\.0\.1:(\d+)\//.exec(err)![1]);
      const firstId = ((await (await fetch(`http://127.0.0.1:${port}/varz`)).json()) as { serverId: string }).serverId;
      const second = await startBroker({ port: 0, httpPort: port, logLevel: 'silent' }).then(
        (b) => b.close().then(() => null),
        (e: unknown) => e,
      );
      expect(second).toBeInstanceOf(ListenError);
      expect((second as Error).message).toContain(`cannot listen for HTTP on 127.0.0.1:${port}`);
      const ids = new Set<string>();
      for (let i = 0; i < 20; i++) ids.add(((await (await fetch(`http://127.0.0.1:${port}/varz`)).json()) as { serverId: string }).serverId);
      expect([...ids]).toEqual([firstId]);
    } finally {
      first.kill('SIGKILL');
    }
  });

  it('refuses a port that another process listens on', async () => {
    const other = net.createServer();
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    try {
      const port = (other.address() as net.AddressInfo).port;
      await expect(startBroker({ port: 0, httpPort: port, logLevel: 'silent' })).rejects.toBeInstanceOf(ListenError);
    } finally {
      await new Promise((r) => other.close(r));
    }
  });
});
