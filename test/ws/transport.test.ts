/**
 * The WebSocket transport (ws://host:httpPort/bus): SDK clients over WebSocket and
 * over TCP on one broker, both ways; request/reply; messages larger than a WebSocket
 * message chunk; protocol errors; and what /connz says about ws connections.
 */
import net from 'node:net';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { connectFrame, until, useWorld } from '../kit/index.js';
import { ConnectionError, connect, type Msg } from '../../client/index.js';
import { getJson, wsUrl } from '../monitoring/http.js';

const w = useWorld();

describe('WebSocket clients', () => {
  it('publish to TCP subscribers and receive from TCP publishers, in order', async () => {
    const b = await w.broker({ httpPort: 0 });
    const ws = await w.connect(wsUrl(b), { name: 'ws-client' });
    const tcp = await w.connect(b.url, { name: 'tcp-client' });
    expect(ws.server).toBe(wsUrl(b));
    const atTcp: string[] = [];
    const atWs: unknown[] = [];
    tcp.subscribe('from.ws', (m) => atTcp.push(m.string()));
    ws.subscribe('from.tcp.*', (m) => atWs.push(m.value));
    await Promise.all([tcp.flush(), ws.flush()]);
    for (let i = 0; i < 500; i++) ws.publish('from.ws', `m${i}`);
    for (let i = 0; i < 500; i++) tcp.publish(`from.tcp.${i % 3}`, { i });
    await until(() => atTcp.length === 500 && atWs.length === 500, 'both directions delivered');
    expect(atTcp).toEqual(Array.from({ length: 500 }, (_, i) => `m${i}`));
    expect(atWs).toEqual(Array.from({ length: 500 }, (_, i) => ({ i })));
    const c = await getJson(b, '/connz');
    expect(c.connections.find((x: { name: string }) => x.name === 'ws-client')).toMatchObject({ transport: 'ws', msgsIn: 500, msgsOut: 500 });
    expect(c.connections.find((x: { name: string }) => x.name === 'tcp-client')).toMatchObject({ transport: 'tcp' });
  });

  it('dial ws://host:port without a path as /bus', async () => {
    const b = await w.broker({ httpPort: 0 });
    const ws = await w.connect(`ws://127.0.0.1:${b.broker.httpPort}`);
    await ws.flush();
    expect(b.broker.sessions.size).toBe(1);
  });

  it('do request/reply with TCP responders, and answer TCP requesters', async () => {
    const b = await w.broker({ httpPort: 0 });
    const ws = await w.connect(wsUrl(b));
    const tcp = await w.connect(b.url);
    tcp.subscribe('svc.tcp', (m) => m.respond(`tcp:${m.string()}`));
    ws.subscribe('svc.ws', (m) => m.respond(`ws:${m.string()}`));
    await Promise.all([tcp.flush(), ws.flush()]);
    expect((await ws.request('svc.tcp', 'a')).string()).toBe('tcp:a');
    expect((await tcp.request('svc.ws', 'b')).string()).toBe('ws:b');
  });

  it('carry messages larger than one WebSocket message chunk (frames span messages)', async () => {
    const b = await w.broker({ httpPort: 0, maxPayload: 4 * 1024 * 1024 });
    const ws = await w.connect(wsUrl(b));
    const tcp = await w.connect(b.url);
    const big = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    const got: Msg[] = [];
    tcp.subscribe('big', (m) => got.push(m));
    ws.subscribe('big', (m) => got.push(m));
    await Promise.all([tcp.flush(), ws.flush()]);
    ws.publish('big', big);
    ws.publish('big', 'small after big');
    await until(() => got.length === 4, 'both copies of both messages');
    const bigs = got.filter((m) => m.data.length === big.length);
    expect(bigs).toHaveLength(2);
    for (const m of bigs) expect(Buffer.compare(Buffer.from(m.data), big)).toBe(0);
  });

  it('measure latency over WebSocket like over TCP', async () => {
    const b = await w.broker({ httpPort: 0, monitorIntervalMs: 50 });
    const ws = await w.connect(wsUrl(b), { name: 'ws-sub' });
    const pub = await w.connect(wsUrl(b), { timestamps: true });
    let n = 0;
    ws.subscribe('lat', () => n++);
    await ws.flush();
    for (let i = 0; i < 100; i++) pub.publish('lat', i);
    await until(() => n === 100, 'delivery');
    expect(ws.stats().latency!.total.endToEnd.count).toBe(100);
    await until(() => b.broker.monitor.hops.pubToBroker.total.totalCount === 100, 'the broker interval');
  });

  it('are closed when the broker shuts down, and without reconnect publish then throws ConnectionError', async () => {
    const b = await w.broker({ httpPort: 0 });
    const ws = await w.connect(wsUrl(b), { reconnect: false });
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    await b.close();
    await closed;
    expect(() => ws.publish('x', 'y')).toThrow(ConnectionError);
  });
});

describe('flow control over WebSocket', () => {
  it('a broker shutting down flushes what it queued to WebSocket subscribers first', async () => {
    const b = await w.broker({ httpPort: 0 });
    const ws = await w.connect(wsUrl(b), { reconnect: false });
    const pub = await w.connect(b.url, { reconnect: false });
    let n = 0;
    ws.subscribe('bye', () => n++);
    await ws.flush();
    for (let i = 0; i < 5000; i++) pub.publish('bye', 'x'.repeat(100));
    await pub.flush();
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    await b.close();
    await closed;
    expect(n).toBe(5000);
  });

  it('a WebSocket publisher over a slow rate limit is held back, not dropped (uWS cannot pause reads: the link holds them)', async () => {
    const b = await w.broker({ httpPort: 0, publishRate: { msgsPerSec: 2000, burstMsgs: 100, action: 'slow' } });
    const sub = await w.connect(b.url);
    const pub = await w.connect(wsUrl(b), { name: 'ws-pub' });
    const got: number[] = [];
    sub.subscribe('rl', (m) => got.push(m.value as number));
    await sub.flush();
    for (let i = 0; i < 1000; i++) pub.publish('rl', i);
    await until(() => [...b.broker.sessions].some((s) => s.name === 'ws-pub' && s.flow.throttled > 0), 'the publisher throttled');
    await until(() => got.length === 1000, 'every message, in order', 20_000);
    expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });
});

describe('dialing', () => {
  it('a server that never answers the WebSocket handshake fails the connect after timeoutMs, cleanly', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      await expect(connect(`ws://127.0.0.1:${port}/bus`, { timeoutMs: 200, reconnect: false })).rejects.toThrow(/timed out/);
    } finally {
      silent.close();
    }
  });

  it('nobody listening: the connect is refused at once', async () => {
    await expect(connect('ws://127.0.0.1:1/bus', { reconnect: false })).rejects.toBeInstanceOf(ConnectionError);
  });
});

describe('the broker end of /bus', () => {
  it('refuses text messages and malformed frames, like a TCP connection, and serves others on', async () => {
    const b = await w.broker({ httpPort: 0 });
    const other = await w.connect(wsUrl(b));
    const raw = new WebSocket(wsUrl(b));
    await new Promise((r, j) => {
      raw.once('open', r);
      raw.once('error', j);
    });
    const closed = new Promise<void>((r) => raw.once('close', () => r()));
    const frames: Buffer[] = [];
    raw.on('message', (d: Buffer) => frames.push(Buffer.from(d)));
    raw.send(connectFrame({ name: 'raw' }));
    const bad = Buffer.alloc(6);
    bad.writeUInt32LE(6, 0);
    bad[4] = 0x7f; // unknown op
    raw.send(bad);
    await closed;
    const all = Buffer.concat(frames);
    // INFO, then a fatal ERR UNKNOWN_OP (2).
    expect(all[4]).toBe(0x02);
    const errAt = all.readUInt32LE(0);
    expect(all[errAt + 4]).toBe(0x41);
    expect(all.readUInt16LE(errAt + 6)).toBe(2);
    expect(b.broker.counters.protocolErrors).toBe(1);
    await other.flush();

    const text = new WebSocket(wsUrl(b));
    await new Promise((r) => text.once('open', r));
    const textClosed = new Promise<void>((r) => text.once('close', () => r()));
    text.send('hello');
    await textClosed;
    await other.flush();
  });
});
