/**
 * The official Node client (@nats-io/transport-node) against the parser and encoders
 * alone, over a real loopback socket: a test-only stand-in for the NATS session (a
 * list of subscriptions and a token matcher in place of the router) shows that INFO,
 * PONG, MSG, HMSG and the no-responders answer are what the client needs, and that
 * what it sends parses. The real session and its router wiring are tested with it.
 */
import net from 'node:net';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MsgTemplate, PONG_LINE, errLine, infoLine, noRespondersSize, writeNoResponders } from '../../broker/nats/encode.js';
import { NatsParser, type NatsHandler } from '../../broker/nats/parser.js';

interface Sub {
  pattern: string[];
  sid: Buffer;
  conn: Conn;
}

/** NATS subject matching for the stand-in: `*` one token, `>` the rest. */
function matches(pattern: string[], subject: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === '>') return subject.length > i;
    if (i >= subject.length || (pattern[i] !== '*' && pattern[i] !== subject[i])) return false;
  }
  return pattern.length === subject.length;
}

const subs: Sub[] = [];
const template = new MsgTemplate();
const MAX_PAYLOAD = 64 * 1024;

class Conn implements NatsHandler {
  readonly parser = new NatsParser(this, { maxPayload: MAX_PAYLOAD });
  noResponders = false;
  constructor(readonly socket: net.Socket) {}
  onConnect(json: string): void {
    const o = JSON.parse(json) as { headers?: boolean; no_responders?: boolean };
    this.parser.headers = o.headers === true;
    this.noResponders = o.no_responders === true;
  }
  onPub(buf: Buffer, so: number, sl: number, ro: number, rl: number, ho: number, hl: number, po: number, pl: number): void {
    const subject = buf.toString('utf8', so, so + sl);
    const reply = buf.toString('utf8', ro, ro + rl);
    const tokens = subject.split('.');
    const to = subs.filter((s) => matches(s.pattern, tokens));
    if (to.length === 0 && reply !== '' && this.noResponders) {
      const mine = subs.find((s) => s.conn === this && matches(s.pattern, reply.split('.')));
      if (mine) {
        const out = Buffer.alloc(noRespondersSize(Buffer.byteLength(reply), mine.sid.length, sl));
        writeNoResponders(out, 0, reply, mine.sid, subject);
        this.socket.write(out);
      }
      return;
    }
    // Formatted once, written per subscriber.
    template.prepare(subject, reply, hl > 0 ? buf : null, ho, hl, buf, po, pl);
    for (const s of to) {
      const out = Buffer.alloc(template.size(s.sid.length));
      template.write(out, 0, s.sid);
      s.conn.socket.write(out);
    }
  }
  onSub(buf: Buffer, so: number, sl: number, _qo: number, _ql: number, io: number, il: number): void {
    subs.push({ pattern: buf.toString('utf8', so, so + sl).split('.'), sid: Buffer.from(buf.subarray(io, io + il)), conn: this });
  }
  onUnsub(buf: Buffer, io: number, il: number): void {
    const sid = buf.subarray(io, io + il);
    const i = subs.findIndex((s) => s.conn === this && s.sid.equals(sid));
    if (i >= 0) subs.splice(i, 1);
  }
  onPing(): void {
    this.socket.write(PONG_LINE);
  }
  onPong(): void {}
  onError(text: string): void {
    if (text !== '') this.socket.write(errLine(text));
    this.socket.end();
  }
}

let server: net.Server;
let port = 0;
let nextId = 1;
const clients: NatsConnection[] = [];

beforeAll(async () => {
  server = net.createServer((socket) => {
    const c = new Conn(socket);
    socket.write(
      infoLine({
        server_id: 'NTEST',
        server_name: 'hopbus-test',
        version: '2.10.0',
        proto: 1,
        headers: true,
        max_payload: MAX_PAYLOAD,
        client_id: nextId++,
        host: '127.0.0.1',
        port,
      }),
    );
    socket.on('data', (d: Buffer) => c.parser.parse(d));
    socket.on('close', () => {
      for (let i = subs.length - 1; i >= 0; i--) if (subs[i]!.conn === c) subs.splice(i, 1);
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function client(): Promise<NatsConnection> {
  const c = await connect({ servers: `127.0.0.1:${port}`, reconnect: false });
  clients.push(c);
  return c;
}

describe('nats.js client against the NATS parser and encoders', () => {
  it('connects and flushes (INFO read, CONNECT parsed, PING answered with PONG)', async () => {
    const c = await client();
    await c.flush();
    expect(c.info?.server_name).toBe('hopbus-test');
  });

  it('publishes and receives on wildcards, headers intact, a 40 KB payload among small ones', async () => {
    const a = await client();
    const b = await client();
    const got: { subject: string; data: string; h: string[] }[] = [];
    const done = new Promise<void>((resolve) => {
      b.subscribe('px.*.>', {
        callback: (_e, m) => {
          got.push({ subject: m.subject, data: m.string(), h: m.headers?.values('K') ?? [] });
          if (got.length === 3) resolve();
        },
      });
    });
    await b.flush();
    const h = headers();
    h.append('K', 'v1');
    h.append('K', 'v2');
    a.publish('px.eur.spot', 'one');
    a.publish('px.usd.fwd.1m', 'x'.repeat(40_000), { headers: h });
    a.publish('other', 'no');
    a.publish('px.jpy.spot', 'three');
    await done;
    expect(got).toEqual([
      { subject: 'px.eur.spot', data: 'one', h: [] },
      { subject: 'px.usd.fwd.1m', data: 'x'.repeat(40_000), h: ['v1', 'v2'] },
      { subject: 'px.jpy.spot', data: 'three', h: [] },
    ]);
  });

  it('request/reply through the reply subject', async () => {
    const svc = await client();
    const req = await client();
    svc.subscribe('svc.echo', {
      callback: (_e, m) => {
        m.respond(`echo:${m.string()}`);
      },
    });
    await svc.flush();
    const r = await req.request('svc.echo', 'hi', { timeout: 2000 });
    expect(r.string()).toBe('echo:hi');
  });

  it('a request nobody serves gets the 503 answer, which nats.js turns into its no-responders error', async () => {
    const req = await client();
    await expect(req.request('nobody.home', 'x', { timeout: 2000 })).rejects.toThrow(/no responders/i);
  });
});
