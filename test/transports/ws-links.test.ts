/**
 * The two WebSocket links over scripted sockets: what each keeps of its own on top of
 * BufferedLink (how a batch leaves, how a close ends), without a network.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../runtime/clock.js';
import { runBatched } from '../../transports/batch.js';
import { CLOSE_GRACE_MS } from '../../transports/buffered.js';
import type { LinkHandler } from '../../transports/link.js';
import { WsClientLink, type WebSocketLike } from '../../transports/ws/client.js';
import { PAUSE_BUFFER_MAX, UwsLink } from '../../transports/ws/server.js';
import { frameOf as frame } from '../shm/helpers.js';

class Handler implements LinkHandler {
  seqs: number[] = [];
  closes: (Error | null)[] = [];
  onFrame(buf: Buffer, off: number, _len: number): void {
    this.seqs.push(buf.readUInt32LE(off + 8)); // frameOf's sequence number
  }
  onClose(err: Error | null): void {
    this.closes.push(err);
  }
}

class ScriptedWebSocket implements WebSocketLike {
  binaryType = 'arraybuffer';
  bufferedAmount = 0;
  readyState = 1;
  sent: Buffer[] = [];
  closedWith: number | null = null;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  send(data: Uint8Array): void {
    this.sent.push(Buffer.from(data));
  }
  close(code?: number): void {
    this.closedWith = code ?? 1005;
  }
  /** The peer's bytes arrive. */
  deliver(b: Buffer): void {
    this.onmessage!({ data: new Uint8Array(b).buffer });
  }
}

const microtasks = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('WsClientLink', () => {
  it('a burst of sends leaves as one message at the end of the synchronous run', async () => {
    const ws = new ScriptedWebSocket();
    const link = new WsClientLink(ws, 'ws://t', 1 << 20);
    link.start(new Handler());
    link.send(frame(12, 1), 0, 12);
    link.send(frame(12, 2), 0, 12);
    expect(ws.sent).toHaveLength(0);
    expect(link.pendingBytes).toBe(24);
    await microtasks();
    expect(ws.sent).toEqual([Buffer.concat([frame(12, 1), frame(12, 2)])]);
    expect(link.pendingBytes).toBe(0);
  });

  it('inside a batch window, leaves at the end of the window', () => {
    const ws = new ScriptedWebSocket();
    const link = new WsClientLink(ws, 'ws://t', 1 << 20);
    link.start(new Handler());
    runBatched(() => link.send(frame(12, 1), 0, 12), null);
    expect(ws.sent).toHaveLength(1);
  });

  it('cuts a send over 1 MiB into several messages', () => {
    const ws = new ScriptedWebSocket();
    const link = new WsClientLink(ws, 'ws://t', 1 << 22);
    link.start(new Handler());
    const big = frame(2.5 * 1024 * 1024, 1);
    runBatched(() => link.send(big, 0, big.length), null);
    expect(ws.sent.map((m) => m.length)).toEqual([1 << 20, 1 << 20, big.length - (2 << 20)]);
    expect(Buffer.concat(ws.sent).equals(big)).toBe(true);
  });

  it('reads messages that arrive before start, and holds them while paused', () => {
    const ws = new ScriptedWebSocket();
    const link = new WsClientLink(ws, 'ws://t', 1 << 20);
    ws.deliver(frame(12, 1));
    const h = new Handler();
    link.start(h);
    expect(h.seqs).toEqual([1]);
    link.pause();
    ws.deliver(frame(12, 2));
    expect(h.seqs).toEqual([1]);
    link.resume();
    expect(h.seqs).toEqual([1, 2]);
  });

  it('reports the close code once; a clean close is not an error', () => {
    const ws = new ScriptedWebSocket();
    const link = new WsClientLink(ws, 'ws://t', 1 << 20);
    const h = new Handler();
    link.start(h);
    ws.onclose!({ code: 1006, reason: '' });
    ws.onclose!({ code: 1000, reason: '' });
    expect(h.closes.map((e) => e?.message)).toEqual(['WebSocket closed with code 1006']);

    const ws2 = new ScriptedWebSocket();
    const link2 = new WsClientLink(ws2, 'ws://t', 1 << 20);
    const h2 = new Handler();
    link2.start(h2);
    link2.close();
    expect(ws2.closedWith).toBe(1000);
    ws2.onclose!({ code: 1000, reason: '' });
    expect(h2.closes).toEqual([null]);
  });
});

/** The part of a uWS WebSocket that UwsLink uses. */
class ScriptedUws {
  sent: Buffer[] = [];
  buffered = 0;
  status = 1;
  ended = false;
  closed = false;
  cork(fn: () => void): void {
    fn();
  }
  send(data: Uint8Array): number {
    this.sent.push(Buffer.from(data));
    return this.status;
  }
  getBufferedAmount(): number {
    return this.buffered;
  }
  end(): void {
    this.ended = true;
  }
  close(): void {
    this.closed = true;
  }
}

function uwsLink(ws: ScriptedUws, clock = new FakeClock()): UwsLink {
  return new UwsLink(ws as never, 'peer', 1 << 20, clock);
}

describe('UwsLink', () => {
  it('an idle link sends at once; in a batch window, once at the end', () => {
    const ws = new ScriptedUws();
    const link = uwsLink(ws);
    link.start(new Handler());
    link.send(frame(12, 1), 0, 12);
    expect(ws.sent).toHaveLength(1);
    runBatched(() => {
      link.send(frame(12, 2), 0, 12);
      link.send(frame(12, 3), 0, 12);
    }, null);
    expect(ws.sent.map((m) => m.length)).toEqual([12, 24]);
  });

  it('back-pressure starts the write clock; uWS dropping a message destroys the link', async () => {
    const clock = new FakeClock(5000);
    const ws = new ScriptedUws();
    const link = uwsLink(ws, clock);
    const h = new Handler();
    link.start(h);
    ws.status = 0;
    ws.buffered = 12;
    link.send(frame(12, 1), 0, 12);
    expect(link.writeBlockedSince).toBe(5000);
    expect(link.pendingBytes).toBe(12);
    ws.buffered = 0;
    link.onDrain();
    expect(link.writeBlockedSince).toBe(0);
    ws.status = 2;
    link.send(frame(12, 2), 0, 12);
    expect(link.closed).toBe(true);
    await microtasks();
    expect(ws.closed).toBe(true);
    link.onClosed(1006);
    expect(h.closes.map((e) => e?.message)).toEqual(['uWS dropped a message (maxBackpressure reached)']);
  });

  it('holds messages while paused, and disconnects a peer that sends more than PAUSE_BUFFER_MAX', () => {
    const ws = new ScriptedUws();
    const link = uwsLink(ws);
    const h = new Handler();
    link.start(h);
    link.pause();
    const f = frame(12, 1);
    link.onMessage(new Uint8Array(f).buffer as ArrayBuffer, true);
    expect(h.seqs).toEqual([]);
    link.resume();
    expect(h.seqs).toEqual([1]);
    link.pause();
    const big = new ArrayBuffer(PAUSE_BUFFER_MAX + 1);
    link.onMessage(big, true);
    expect(link.closed).toBe(true);
  });

  it('a close that the peer does not drain is destroyed after CLOSE_GRACE_MS', async () => {
    const clock = new FakeClock();
    const ws = new ScriptedUws();
    const link = uwsLink(ws, clock);
    link.start(new Handler());
    ws.buffered = 100;
    link.close();
    await microtasks();
    expect(ws.ended).toBe(false);
    clock.advance(CLOSE_GRACE_MS);
    await microtasks();
    expect(ws.closed).toBe(true);
  });
});
