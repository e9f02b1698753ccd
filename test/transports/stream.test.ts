import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ListenError } from '../../runtime/errors.js';
import { runBatched } from '../../transports/batch.js';
import { Op, ProtocolError, msgSize, writeMsgHeader } from '../../transports/protocol/index.js';
import type { Link, LinkHandler, Listener } from '../../transports/link.js';
import { StreamLink, dialStream, listenStream } from '../../transports/stream.js';
import { parseUrl, type Endpoint } from '../../transports/url.js';
import { tick, until } from '../kit/index.js';

const MAX_FRAME = 8 * 1024 * 1024;

/** Records what a link hands its handler. */
class Recorder implements LinkHandler {
  frames: Buffer[] = [];
  drains = 0;
  closedWith: Error | null | undefined = undefined;
  readonly closed: Promise<Error | null>;
  private resolveClosed!: (e: Error | null) => void;
  constructor() {
    this.closed = new Promise((r) => (this.resolveClosed = r));
  }
  onFrame(buf: Buffer, off: number, len: number): void {
    this.frames.push(buf.subarray(off, off + len));
  }
  onClose(err: Error | null): void {
    expect(this.closedWith).toBeUndefined(); // once, for good
    this.closedWith = err;
    this.resolveClosed(err);
  }
  onDrain(): void {
    this.drains++;
  }
  /** Sequence numbers of the received frames (see writeSeq). */
  seqs(): number[] {
    return this.frames.map((f) => f.readUInt32LE(f.length - 4));
  }
}

/** Writes a PUB on subject "s" whose payload is `size - 21` bytes ending in the u32 `seq`, straight into the link. */
function writeSeq(link: Link, seq: number, size = 32): void {
  const payload = size - 21;
  const total = msgSize(1, 0, 0, payload, false);
  const buf = link.reserve(total);
  const off = link.writeOffset;
  const at = writeMsgHeader(buf, off, total, Op.PUB, 0, 0, 0, 1, 0, 0);
  buf[at] = 0x73; // "s"
  buf.fill(seq & 0xff, at + 1, at + 1 + payload - 4);
  buf.writeUInt32LE(seq, at + 1 + payload - 4);
  link.commit(total);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-stream-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

// Everything a test opens, closed after it even when it fails.
const links: Link[] = [];
const listeners: Listener[] = [];
const sockets: net.Socket[] = [];
const children: ReturnType<typeof spawn>[] = [];
afterEach(async () => {
  for (const l of links.splice(0)) l.destroy();
  for (const s of sockets.splice(0)) s.destroy();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(listeners.splice(0).map((l) => l.close()));
});

let nextSock = 0;
function endpointFor(transport: 'tcp' | 'unix'): Endpoint {
  return transport === 'tcp' ? parseUrl('tcp://127.0.0.1:0') : parseUrl(`unix://${path.join(tmp, `s${nextSock++}.sock`)}`);
}

interface Pair {
  client: StreamLink;
  server: Link;
  c: Recorder;
  s: Recorder;
  listener: Listener;
  /** The client's raw socket, when built with `ownSocket`. */
  socket?: net.Socket;
}

async function pair(transport: 'tcp' | 'unix', opts: { ownSocket?: boolean; start?: boolean } = {}): Promise<Pair> {
  let accept!: (l: Link) => void;
  const accepted = new Promise<Link>((r) => (accept = r));
  const listener = await listenStream(endpointFor(transport), MAX_FRAME, (l) => {
    links.push(l);
    accept(l);
  });
  listeners.push(listener);
  const ep = parseUrl(listener.url);
  let client: StreamLink;
  let socket: net.Socket | undefined;
  if (opts.ownSocket) {
    socket = transport === 'tcp' ? net.connect({ host: ep.host!, port: ep.port! }) : net.connect({ path: ep.path! });
    sockets.push(socket);
    await new Promise<void>((resolve, reject) => {
      socket!.once('connect', resolve);
      socket!.once('error', reject);
    });
    client = new StreamLink(socket, transport, ep.url, MAX_FRAME);
  } else {
    client = await dialStream(ep, MAX_FRAME, 5000);
  }
  links.push(client);
  const server = await accepted;
  const c = new Recorder();
  const s = new Recorder();
  if (opts.start !== false) {
    client.start(c);
    server.start(s);
  }
  return { client, server, c, s, listener, socket };
}

/** Counts the writes a socket is asked to make (observes, then calls the real write). */
function countWrites(socket: net.Socket): number[] {
  const sizes: number[] = [];
  const real = socket.write.bind(socket) as (...a: unknown[]) => boolean;
  socket.write = ((chunk: Uint8Array, ...rest: unknown[]) => {
    sizes.push(chunk.length);
    return real(chunk, ...rest);
  }) as typeof socket.write;
  return sizes;
}

describe.each(['tcp', 'unix'] as const)('StreamLink over %s', (transport) => {
  it('reports its transport and peer', async () => {
    const { client, server } = await pair(transport);
    expect(client.transport).toBe(transport);
    expect(server.transport).toBe(transport);
    if (transport === 'tcp') expect(server.remote).toMatch(/^127\.0\.0\.1:\d+$/);
    else expect(server.remote).toMatch(/^unix:\//);
    expect(client.closed).toBe(false);
  });

  it('frames committed in one synchronous burst arrive complete and in order', async () => {
    const { client, s } = await pair(transport);
    const n = 20_000;
    for (let i = 0; i < n; i++) writeSeq(client, i, 24 + (i % 50));
    await until(() => s.frames.length >= n, `${n} frames`);
    expect(s.frames).toHaveLength(n);
    expect(s.seqs()).toEqual(range(n));
    s.frames.forEach((f, i) => expect(f.length).toBe(24 + (i % 50)));
  });

  it('a burst of more than 1 MB, with frames larger than the write buffer, arrives whole and in order', async () => {
    const { client, s } = await pair(transport);
    const sizes = [...range(300).map(() => 8 * 1024), 1_500_000, ...range(300).map(() => 100), 3 * 1024 * 1024];
    sizes.forEach((size, i) => writeSeq(client, i, size));
    const total = sizes.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(5 * 1024 * 1024);
    expect(client.pendingBytes).toBe(total);
    await until(() => s.frames.length >= sizes.length, 'every frame of the burst');
    expect(s.seqs()).toEqual(range(sizes.length));
    expect(s.frames.map((f) => f.length)).toEqual(sizes);
    // The filler bytes too: nothing was torn or shifted.
    s.frames.forEach((f, i) => expect(f.subarray(21, f.length - 4).every((b) => b === (i & 0xff))).toBe(true));
  });

  it('smart batching: an idle link writes at once; commits made while a write is in flight leave together in one write', async () => {
    const { client, s, socket } = await pair(transport, { ownSocket: true });
    const writes = countWrites(socket!);
    for (let i = 0; i < 1000; i++) writeSeq(client, i);
    expect(writes).toEqual([32]); // the first frame left at once; the rest wait for it
    expect(client.pendingBytes).toBe(1000 * 32);
    await until(() => s.frames.length >= 1000, '1000 frames');
    expect(writes).toEqual([32, 999 * 32]);
    expect(s.seqs()).toEqual(range(1000));
  });

  it('smart batching: inside a batch window nothing is written until the window closes, then one write', async () => {
    const { client, s, socket } = await pair(transport, { ownSocket: true });
    const writes = countWrites(socket!);
    runBatched(() => {
      for (let i = 0; i < 500; i++) writeSeq(client, i);
      expect(writes).toEqual([]);
    }, undefined);
    expect(writes).toEqual([500 * 32]);
    await until(() => s.frames.length >= 500, '500 frames');
    expect(s.seqs()).toEqual(range(500));
  });

  it('send() copies bytes in, so the caller may reuse its buffer at once', async () => {
    const { client, s } = await pair(transport);
    const scratch = Buffer.alloc(64);
    const expected: Buffer[] = [];
    for (let i = 0; i < 100; i++) {
      const at = writeMsgHeader(scratch, 10, 30, Op.PUB, 0, 0, 0, 1, 0, 0);
      scratch[at] = 0x61;
      scratch.fill(i, at + 1, 10 + 30);
      expected.push(Buffer.from(scratch.subarray(10, 40)));
      client.send(scratch, 10, 30);
    }
    await until(() => s.frames.length >= 100, '100 frames');
    expect(s.frames).toEqual(expected);
  });

  it('pendingBytes falls to 0 and onDrain fires once everything is handed to the OS', async () => {
    const { client, c } = await pair(transport);
    expect(client.pendingBytes).toBe(0);
    for (let i = 0; i < 200; i++) writeSeq(client, i, 16 * 1024);
    expect(client.pendingBytes).toBe(200 * 16 * 1024);
    await until(() => c.drains > 0, 'onDrain');
    expect(client.pendingBytes).toBe(0);
    // And again for a second burst.
    const before = c.drains;
    writeSeq(client, 200, 100);
    await until(() => c.drains > before, 'a second onDrain');
    expect(client.pendingBytes).toBe(0);
  });

  it('frames are not read before start(), and arrive once it is called', async () => {
    const { client, server } = await pair(transport, { start: false });
    client.start(new Recorder());
    for (let i = 0; i < 10; i++) writeSeq(client, i);
    const s = new Recorder();
    // Two turns of the event loop: the second includes a poll phase begun after the bytes were in
    // the server's receive buffer (the client's drain), where a reading socket would have read them.
    await tick();
    await tick();
    server.start(s);
    await until(() => s.frames.length >= 10, '10 frames after start');
    expect(s.seqs()).toEqual(range(10));
  });

  it('pause() holds inbound frames back until resume()', async () => {
    const { client, server, s, c } = await pair(transport);
    server.pause();
    for (let i = 0; i < 10; i++) writeSeq(client, i);
    await until(() => c.drains > 0, 'the client to hand its bytes to the OS');
    // Two turns of the event loop: the second includes a poll phase begun after the bytes were in
    // the server's receive buffer (the client's drain), where a reading socket would have read them.
    await tick();
    await tick();
    expect(s.frames).toHaveLength(0);
    server.resume();
    await until(() => s.frames.length >= 10, '10 frames after resume');
    expect(s.seqs()).toEqual(range(10));
  });

  it('close() flushes everything queued, then closes both ends cleanly', async () => {
    const { client, c, s } = await pair(transport);
    const n = 2000;
    for (let i = 0; i < n; i++) writeSeq(client, i, 2048); // 4 MB: several writes' worth
    expect(client.pendingBytes).toBeGreaterThan(0);
    client.close();
    expect(await s.closed).toBeNull();
    expect(s.seqs()).toEqual(range(n));
    expect(await c.closed).toBeNull();
    expect(client.closed).toBe(true);
    expect(client.pendingBytes).toBe(0);
  });

  it('close() twice, then destroy(), is harmless: onClose runs once', async () => {
    const { client, c, s } = await pair(transport);
    writeSeq(client, 1);
    client.close();
    client.close();
    client.destroy();
    await c.closed;
    await s.closed;
    expect(c.closedWith === null || c.closedWith instanceof Error).toBe(true);
  });

  it('writes after the peer closed do not throw; the link reports the close', async () => {
    const { client, server, c } = await pair(transport);
    server.destroy();
    // Keep writing, synchronously and across turns, until the close is noticed (EPIPE/ECONNRESET or FIN).
    let turns = 0;
    while (c.closedWith === undefined) {
      expect(() => {
        for (let i = 0; i < 100; i++) writeSeq(client, i, 1024);
        client.send(Buffer.from([6, 0, 0, 0, Op.PING, 0]), 0, 6);
      }).not.toThrow();
      await new Promise((r) => setTimeout(r, 2));
      if (++turns > 2000) throw new Error('the client never noticed the close');
    }
    expect(client.closed).toBe(true);
    // And after the close, writes are still accepted silently.
    expect(() => {
      for (let i = 0; i < 10; i++) writeSeq(client, i);
      client.close();
      client.destroy();
    }).not.toThrow();
  });

  it('bytes written to a closed link are dropped, not kept: pendingBytes stays 0', async () => {
    const { client, server, c } = await pair(transport);
    server.destroy();
    client.destroy();
    await c.closed;
    for (let i = 0; i < 1000; i++) writeSeq(client, i, 1024);
    expect(client.pendingBytes).toBe(0);
  });

  it('a link closed by the peer before start() reports the close when started', async () => {
    const { client, server } = await pair(transport, { start: false });
    client.destroy();
    await until(() => server.closed, 'the server side to see the close');
    const s = new Recorder();
    server.start(s);
    expect(s.closedWith).toBeNull();
  });

  it('bytes that are not frames close the link with the ProtocolError', async () => {
    const { client, s } = await pair(transport);
    client.send(Buffer.from([6, 0, 0, 0, Op.PING, 0, 6, 0, 0, 0, 0x99, 0]), 0, 12);
    const err = await s.closed;
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe('UNKNOWN_OP');
    expect(s.frames).toHaveLength(1); // the PING before it was delivered
  });

  it('an oversized frame is refused from its length prefix alone', async () => {
    const { client, server, s } = await pair(transport);
    server.setMaxFrame!(1000);
    const prefix = Buffer.alloc(6);
    prefix.writeUInt32LE(1001, 0);
    prefix[4] = Op.PUB;
    client.send(prefix, 0, 6);
    const err = await s.closed;
    expect((err as ProtocolError).code).toBe('FRAME_TOO_LARGE');
  });
});

describe('listenStream on a Unix socket path', () => {
  /** Leaves a socket file nobody listens on: a child binds it and is killed with SIGKILL. */
  async function staleSocket(file: string): Promise<void> {
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(file)}, () => console.log('up'))`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('up') && resolve());
      child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
    });
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    expect(fs.statSync(file).isSocket()).toBe(true);
    await expect(new Promise((resolve, reject) => net.connect({ path: file }).once('connect', resolve).once('error', reject))).rejects.toThrow(/ECONNREFUSED/);
  }

  it('replaces a stale socket file left by a dead server, and serves on it', async () => {
    const file = path.join(tmp, 'stale.sock');
    await staleSocket(file);
    const accepted: Link[] = [];
    const listener = await listenStream(parseUrl(`unix://${file}`), MAX_FRAME, (l) => {
      links.push(l);
      accepted.push(l);
    });
    listeners.push(listener);
    expect(listener.url).toBe(`unix://${file}`);
    const client = await dialStream(parseUrl(listener.url), MAX_FRAME, 5000);
    links.push(client);
    client.start(new Recorder());
    await until(() => accepted.length === 1, 'the connection to be accepted');
    const s = new Recorder();
    accepted[0]!.start(s);
    writeSeq(client, 42);
    await until(() => s.frames.length === 1, 'one frame');
    expect(s.seqs()).toEqual([42]);
  });

  it('refuses a socket a live server is listening on, and leaves that server working', async () => {
    const file = path.join(tmp, 'live.sock');
    const first = await listenStream(parseUrl(`unix://${file}`), MAX_FRAME, (l) => links.push(l));
    listeners.push(first);
    await expect(listenStream(parseUrl(`unix://${file}`), MAX_FRAME, (l) => links.push(l))).rejects.toThrow(`${file} is in use by a running server`);
    await expect(listenStream(parseUrl(`unix://${file}`), MAX_FRAME, () => {})).rejects.toBeInstanceOf(ListenError);
    const client = await dialStream(parseUrl(first.url), MAX_FRAME, 5000);
    links.push(client);
    expect(fs.statSync(file).isSocket()).toBe(true);
  });

  it('refuses to replace a path that is not a socket', async () => {
    const file = path.join(tmp, 'regular-file');
    fs.writeFileSync(file, 'keep me');
    await expect(listenStream(parseUrl(`unix://${file}`), MAX_FRAME, () => {})).rejects.toThrow(`${file} exists and is not a socket; refusing to replace it`);
    await expect(listenStream(parseUrl(`unix://${file}`), MAX_FRAME, () => {})).rejects.toBeInstanceOf(ListenError);
    expect(fs.readFileSync(file, 'utf8')).toBe('keep me');
  });

  it('removes its socket file when the listener closes', async () => {
    const file = path.join(tmp, 'gone.sock');
    const l = await listenStream(parseUrl(`unix://${file}`), MAX_FRAME, () => {});
    expect(fs.existsSync(file)).toBe(true);
    await l.close();
    expect(fs.existsSync(file)).toBe(false);
  });
});

describe('dialStream', () => {
  it('rejects when nobody listens', async () => {
    await expect(dialStream(parseUrl(`unix://${path.join(tmp, 'nobody.sock')}`), MAX_FRAME, 2000)).rejects.toThrow(/ENOENT|ECONNREFUSED/);
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    await expect(dialStream(parseUrl(`tcp://127.0.0.1:${port}`), MAX_FRAME, 2000)).rejects.toThrow(/ECONNREFUSED/);
  });
});
