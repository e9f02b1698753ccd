import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, startBroker } from '../../broker/index.js';
import { connect } from '../../client/index.js';
import { OP, subFrame, pubFrame, useWorld } from '../kit/index.js';

const w = useWorld();

describe('Unix-domain sockets', () => {
  it('a broker with the unix option listens on TCP and on the socket, and lists both urls', async () => {
    const sock = path.join(w.tmpdir(), 'bus.sock');
    const b = await w.broker({ unix: sock });
    expect(b.url).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(b.urls).toEqual([b.url, `unix://${sock}`]);
    expect(fs.statSync(sock).isSocket()).toBe(true);
  });

  it('an SDK client connects with unix:///path and publishes and subscribes', async () => {
    const sock = path.join(w.tmpdir(), 'bus.sock');
    const b = await w.broker({ unix: sock });
    const bus = await w.connect(`unix://${sock}`);
    expect(bus.server).toBe(`unix://${sock}`);
    const got: string[] = [];
    bus.subscribe('u.*', (m) => got.push(m.string()));
    bus.publish('u.1', 'over unix');
    await bus.flush();
    expect(got).toEqual(['over unix']);
    expect([...b.broker.sessions][0]!.link.transport).toBe('unix');
  });

  it('a TCP publisher reaches a Unix-socket subscriber, and back', async () => {
    const sock = path.join(w.tmpdir(), 'bus.sock');
    const b = await w.broker({ unix: sock });
    const unixSub = await w.connect(`unix://${sock}`);
    const tcpSub = await w.connect(b.url);
    const toUnix: number[] = [];
    const toTcp: number[] = [];
    unixSub.subscribe('to.unix', (m) => toUnix.push(m.value as number));
    tcpSub.subscribe('to.tcp', (m) => toTcp.push(m.value as number));
    await Promise.all([unixSub.flush(), tcpSub.flush()]);
    for (let i = 0; i < 1000; i++) {
      tcpSub.publish('to.unix', i);
      unixSub.publish('to.tcp', i);
    }
    await Promise.all([unixSub.flush(), tcpSub.flush()]);
    await Promise.all([unixSub.flush(), tcpSub.flush()]);
    expect(toUnix).toEqual([...Array(1000).keys()]);
    expect(toTcp).toEqual([...Array(1000).keys()]);
  });

  it('request/reply works across transports', async () => {
    const sock = path.join(w.tmpdir(), 'bus.sock');
    const b = await w.broker({ unix: sock });
    const responder = await w.connect(`unix://${sock}`);
    responder.subscribe('svc', (m) => m.respond(`unix says ${m.string()}`));
    await responder.flush();
    const requester = await w.connect(b.url);
    expect((await requester.request('svc', 'hi')).string()).toBe('unix says hi');
  });

  it('a broker with port null serves only the Unix socket', async () => {
    const sock = path.join(w.tmpdir(), 'only.sock');
    const b = await w.broker({ port: null, unix: sock });
    expect(b.url).toBe(`unix://${sock}`);
    expect(b.urls).toEqual([`unix://${sock}`]);
    const raw = await w.raw({ path: sock });
    await raw.handshake();
    raw.send(subFrame(1, 'r'), pubFrame('r', 'raw over unix'));
    await raw.roundTrip();
    expect(raw.frames.filter((f) => f.op === OP.MSG).map((f) => f.text)).toEqual(['raw over unix']);
  });

  it('closing the broker removes its socket file', async () => {
    const sock = path.join(w.tmpdir(), 'bus.sock');
    const b = await w.broker({ unix: sock });
    await b.close();
    expect(fs.existsSync(sock)).toBe(false);
  });

  it('a second broker on the path of a running one is refused and leaves it serving', async () => {
    const sock = path.join(w.tmpdir(), 'bus.sock');
    await w.broker({ unix: sock });
    await expect(startBroker({ port: null, unix: sock, logLevel: 'silent' })).rejects.toThrow(/in use/);
    const bus = await w.connect(`unix://${sock}`);
    expect(bus.connected).toBe(true);
  });

  it('a stale socket file left by a dead broker (nobody answers on it) is replaced', async () => {
    const dir = w.tmpdir();
    const sock = path.join(dir, 'bus.sock');
    // Make a socket file nobody listens on: listen elsewhere, move the file, stop listening.
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(path.join(dir, 'tmp.sock'), resolve));
    fs.renameSync(path.join(dir, 'tmp.sock'), sock);
    await new Promise((resolve) => server.close(resolve));
    expect(fs.statSync(sock).isSocket()).toBe(true);
    await w.broker({ port: null, unix: sock });
    const bus = await w.connect(`unix://${sock}`);
    expect(bus.connected).toBe(true);
  });

  it('a path that exists and is not a socket is never replaced', async () => {
    const file = path.join(w.tmpdir(), 'not-a-socket');
    fs.writeFileSync(file, 'precious');
    await expect(startBroker({ port: null, unix: file, logLevel: 'silent' })).rejects.toThrow(/not a socket/);
    expect(fs.readFileSync(file, 'utf8')).toBe('precious');
  });

  it('connecting to a Unix path nobody serves rejects with ConnectionError', async () => {
    const sock = path.join(w.tmpdir(), 'nobody.sock');
    await expect(connect(`unix://${sock}`)).rejects.toMatchObject({ name: 'ConnectionError' });
  });

  it('an empty unix path is refused with ConfigError', async () => {
    await expect(startBroker({ port: null, unix: '', logLevel: 'silent' })).rejects.toBeInstanceOf(ConfigError);
  });
});
