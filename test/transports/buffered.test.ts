/**
 * BufferedLink, the base every Link class shares (transports/buffered.ts): its write
 * buffer, its reading and its close bookkeeping, through a tiny concrete subclass, a
 * StreamLink over a scripted socket (the two swapping buffers, smart batching, the
 * bounded close on a fake clock) and a pair of inproc links (the cheapest real link).
 * No test here waits on the wall clock.
 */
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { describe, expect, it } from 'vitest';
import { FakeClock, type Clock } from '../../runtime/clock.js';
import { batching, deferFlush, runBatched } from '../../transports/batch.js';
import { BufferedLink, CLOSE_GRACE_MS, KEEP_BUFFER_MAX, WRITE_BUFFER } from '../../transports/buffered.js';
import { ProtocolError } from '../../transports/protocol/index.js';
import { inprocPair, type InprocLink } from '../../transports/inproc.js';
import type { LinkHandler } from '../../transports/link.js';
import { StreamLink } from '../../transports/stream.js';

/** A valid frame of `size` bytes (8 and up) whose last 4 bytes are `seq`. */
function frame(size: number, seq: number): Buffer {
  const b = Buffer.alloc(size, seq & 0xff);
  b.writeUInt32LE(size, 0);
  b[4] = 0x02; // INFO
  b[5] = 0;
  b.writeUInt16LE(1, 6);
  b.writeUInt32LE(seq, size - 4);
  return b;
}

const seqOf = (f: Buffer): number => f.readUInt32LE(f.length - 4);

/** Records what a link hands its handler; fails on a second onClose. */
class Handler implements LinkHandler {
  frames: Buffer[] = [];
  closes: (Error | null)[] = [];
  drains = 0;
  protocolErrors: ProtocolError[] = [];
  onFrame(buf: Buffer, off: number, len: number): void {
    this.frames.push(buf.subarray(off, off + len));
  }
  onClose(err: Error | null): void {
    this.closes.push(err);
  }
  onDrain(): void {
    this.drains++;
  }
  seqs(): number[] {
    return this.frames.map(seqOf);
  }
}

class ProtocolHandler extends Handler {
  onProtocolError(err: ProtocolError): void {
    this.protocolErrors.push(err);
  }
}

/**
 * The smallest transport: committed bytes leave when flush() is called (by the test,
 * or by batch.ts at the end of a window); handOut(n) hands over only the first n
 * queued bytes, the way a ring takes what it has room for.
 */
class TestLink extends BufferedLink {
  readonly transport = 'tcp' as const;
  /** Views of what left, as the receiver got them, and copies made when it left. */
  readonly views: Buffer[] = [];
  readonly copies: Buffer[] = [];

  constructor(
    private readonly rewriting = true,
    clock?: Clock,
  ) {
    super('test', 1 << 20, clock, rewriting);
  }

  get pendingBytes(): number {
    return this.used - this.from;
  }

  /** The current write buffer (to check its identity). */
  get buffer(): Buffer {
    return this.fill;
  }

  commit(n: number): void {
    if (this.closed) return;
    this.used += n;
    if (batching()) deferFlush(this);
  }

  flush(): void {
    this.handOut(this.used - this.from);
  }

  handOut(n: number): void {
    if (n === 0) return;
    const v = this.fill.subarray(this.from, this.from + n);
    this.views.push(v);
    this.copies.push(Buffer.from(v));
    this.from += n;
    if (this.from === this.used && this.rewriting) this.emptied();
  }

  feed(chunk: Buffer): void {
    this.receive(chunk);
  }

  get heldNow(): number {
    return this.heldBytes;
  }

  close(): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    this.flush();
    this.closed = true;
    this.finishSoon();
  }

  destroy(err?: Error): void {
    if (err) this.closeErr ??= err;
    this.closed = true;
    this.dropQueued();
    this.finishSoon();
  }

  /** The underlying channel is gone (a socket's 'close'). */
  gone(): void {
    this.finish();
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('BufferedLink: closing', () => {
  it('tells the handler once, however many times the channel reports its end', () => {
    const link = new TestLink();
    const h = new Handler();
    link.start(h);
    link.gone();
    link.gone();
    expect(h.closes).toEqual([null]);
    expect(link.closed).toBe(true);
  });

  it('tells a handler that starts after the end, at start, once', () => {
    const link = new TestLink();
    link.destroy(new Error('boom'));
    link.gone();
    const h = new Handler();
    link.start(h);
    expect(h.closes.map((e) => e?.message)).toEqual(['boom']);
    link.gone();
    expect(h.closes).toHaveLength(1);
  });

  it('close() sends what is queued; destroy() drops it; both report asynchronously, once', async () => {
    const a = new TestLink();
    const ha = new Handler();
    a.start(ha);
    a.send(frame(16, 1), 0, 16);
    a.close();
    a.close();
    expect(ha.closes).toEqual([]); // not re-entrant
    expect(a.copies.map(seqOf)).toEqual([1]);

    const b = new TestLink();
    const hb = new Handler();
    b.start(hb);
    b.send(frame(16, 2), 0, 16);
    b.destroy(new Error('first'));
    b.destroy(new Error('second'));
    expect(b.pendingBytes).toBe(0);
    b.send(frame(16, 3), 0, 16); // dropped: the link is gone
    expect(b.pendingBytes).toBe(0);
    await tick();
    expect(ha.closes).toEqual([null]);
    expect(hb.closes.map((e) => e?.message)).toEqual(['first']);
    expect(b.copies).toEqual([]);
  });

  it('bounds a graceful close on its clock', () => {
    const clock = new FakeClock();
    const sock = new ScriptedSocket();
    const link = new StreamLink(sock.asSocket(), 'unix', 'test', 1 << 20, clock);
    link.start(new Handler());
    link.send(frame(16, 1), 0, 16); // in flight, never completed: the peer stopped reading
    link.close();
    expect(sock.ended).toBe(false);
    clock.advance(CLOSE_GRACE_MS - 1);
    expect(sock.destroyed).toBe(false);
    clock.advance(1);
    expect(sock.destroyed).toBe(true);
  });

  it('drops the close timer when the link ends first', () => {
    const clock = new FakeClock();
    const sock = new ScriptedSocket();
    const link = new StreamLink(sock.asSocket(), 'unix', 'test', 1 << 20, clock);
    link.start(new Handler());
    link.close();
    expect(clock.pending).toBe(1);
    sock.emit('close');
    expect(clock.pending).toBe(0);
  });
});

describe('BufferedLink: reading', () => {
  it('holds chunks that arrive before start, and reads them at start', () => {
    const link = new TestLink();
    link.feed(frame(12, 1));
    link.feed(frame(12, 2));
    expect(link.heldNow).toBe(24);
    const h = new Handler();
    link.start(h);
    expect(h.seqs()).toEqual([1, 2]);
    expect(link.heldNow).toBe(0);
  });

  it('holds chunks while paused and reads them in order on resume; a second resume does nothing', () => {
    const link = new TestLink();
    const h = new Handler();
    link.start(h);
    link.feed(frame(12, 1));
    link.pause();
    link.feed(frame(12, 2));
    link.feed(Buffer.concat([frame(12, 3), frame(12, 4)]));
    expect(h.seqs()).toEqual([1]);
    expect(link.heldNow).toBe(36);
    link.resume();
    link.resume();
    expect(h.seqs()).toEqual([1, 2, 3, 4]);
    link.feed(frame(12, 5));
    expect(h.seqs()).toEqual([1, 2, 3, 4, 5]);
  });

  it('a pause from a handler holds the chunks behind the one being read', () => {
    const link = new TestLink();
    const h = new Handler();
    h.onFrame = (buf, off, len) => {
      h.frames.push(buf.subarray(off, off + len));
      if (h.frames.length === 1) link.pause();
    };
    link.start(h);
    link.pause();
    link.feed(frame(12, 1));
    link.feed(frame(12, 2));
    link.resume();
    expect(h.seqs()).toEqual([1]);
    link.resume();
    expect(h.seqs()).toEqual([1, 2]);
  });

  it('a protocol error goes to the handler, and nothing more is read', () => {
    const link = new TestLink();
    const h = new ProtocolHandler();
    link.start(h);
    link.feed(frame(12, 1));
    const bad = Buffer.alloc(8);
    bad.writeUInt32LE(0x7fffffff, 0); // over maxFrame
    link.feed(bad);
    link.feed(frame(12, 2));
    expect(h.seqs()).toEqual([1]);
    expect(h.protocolErrors).toHaveLength(1);
    expect(h.protocolErrors[0]).toBeInstanceOf(ProtocolError);
    expect(link.closed).toBe(false); // the handler decides: ERR, then close
  });

  it('without onProtocolError, a bad frame destroys the link', async () => {
    const link = new TestLink();
    const h = new Handler();
    link.start(h);
    const bad = Buffer.alloc(8);
    bad.writeUInt32LE(0x7fffffff, 0);
    link.feed(bad);
    expect(link.closed).toBe(true);
    await tick();
    expect(h.closes).toHaveLength(1);
    expect(h.closes[0]).toBeInstanceOf(ProtocolError);
  });

  it('reads each chunk in a batch window: what a handler writes leaves once per chunk', () => {
    const link = new TestLink();
    const h = new Handler();
    h.onFrame = () => {
      expect(batching()).toBe(true);
      link.send(frame(12, 9), 0, 12);
    };
    link.start(h);
    link.feed(Buffer.concat([frame(12, 1), frame(12, 2), frame(12, 3)]));
    expect(link.copies.map((c) => c.length)).toEqual([36]);
  });
});

describe('BufferedLink: the write buffer', () => {
  it('reserve() hands out the buffer at writeOffset; commit() queues exactly n bytes', () => {
    const link = new TestLink();
    const buf = link.reserve(100);
    expect(link.writeOffset).toBe(0);
    frame(12, 1).copy(buf, link.writeOffset);
    link.commit(12);
    const buf2 = link.reserve(12);
    expect(buf2).toBe(buf);
    expect(link.writeOffset).toBe(12);
    frame(12, 2).copy(buf2, link.writeOffset);
    link.commit(12);
    expect(link.pendingBytes).toBe(24);
    link.flush();
    expect(link.copies).toEqual([Buffer.concat([frame(12, 1), frame(12, 2)])]);
  });

  it('grows by doubling and keeps what is queued', () => {
    const link = new TestLink();
    const first = frame(12, 0);
    link.send(first, 0, first.length);
    const before = link.buffer;
    expect(before.length).toBe(WRITE_BUFFER);
    const second = frame(WRITE_BUFFER, 2);
    link.send(second, 0, second.length);
    expect(link.buffer).not.toBe(before);
    expect(link.buffer.length).toBe(2 * WRITE_BUFFER); // 64 KiB + 12 bytes fit once doubled
    link.flush();
    expect(link.copies).toHaveLength(1);
    expect(link.copies[0]!.equals(Buffer.concat([first, second]))).toBe(true);
  });

  it('a buffer that grows frame by frame up to KEEP_BUFFER_MAX is kept for reuse, not allocated again each time', () => {
    const link = new TestLink();
    const f = frame(276, 5); // a 256-byte publish
    const fill = () => {
      while (link.pendingBytes + f.length <= KEEP_BUFFER_MAX) link.send(f, 0, f.length);
    };
    fill();
    const grown = link.buffer;
    expect(grown.length).toBe(KEEP_BUFFER_MAX);
    link.flush();
    fill();
    expect(link.buffer).toBe(grown);
  });

  it('sends part of a Uint8Array as given by off and len', () => {
    const link = new TestLink();
    const f = frame(20, 7);
    const padded = new Uint8Array(30);
    padded.set(f, 5);
    link.send(padded, 5, 20);
    link.flush();
    expect(link.copies).toEqual([f]);
  });

  it('compacts a half-drained buffer in place instead of allocating', () => {
    const link = new TestLink();
    const big = frame(WRITE_BUFFER - 1000, 1);
    link.send(big, 0, big.length);
    const small = frame(500, 2);
    link.send(small, 0, small.length);
    const buf = link.buffer;
    link.handOut(big.length); // the ring took the first frame only
    const more = frame(2000, 3);
    link.send(more, 0, more.length);
    expect(link.buffer).toBe(buf);
    link.flush();
    expect(link.copies).toHaveLength(2);
    expect(link.copies[0]!.equals(big)).toBe(true);
    expect(link.copies[1]!.equals(Buffer.concat([small, more]))).toBe(true);
  });

  it('never rewrites bytes handed over when the receiver keeps views (inproc)', () => {
    const link = new TestLink(false);
    for (let i = 0; i < 200; i++) {
      const f = frame(1000, i);
      link.send(f, 0, f.length);
      if (i % 3 === 0) link.flush();
    }
    link.flush();
    const all = Buffer.concat(link.views);
    expect(all.equals(Buffer.concat(link.copies))).toBe(true);
    expect(all.length).toBe(200 * 1000);
  });

  it('drops a buffer grown past KEEP_BUFFER_MAX once it is empty', () => {
    const link = new TestLink();
    const huge = frame(KEEP_BUFFER_MAX + 10, 1);
    link.send(huge, 0, huge.length);
    expect(link.buffer.length).toBeGreaterThan(KEEP_BUFFER_MAX);
    link.flush();
    expect(link.buffer.length).toBe(0);
    link.send(frame(12, 2), 0, 12);
    expect(link.buffer.length).toBe(WRITE_BUFFER);
  });
});

/** A net.Socket stand-in: records writes and completes them when told to. */
class ScriptedSocket extends EventEmitter {
  writes: { buf: Buffer; copy: Buffer; cb: (err?: Error | null) => void }[] = [];
  ended = false;
  destroyed = false;
  asSocket(): net.Socket {
    return this as unknown as net.Socket;
  }
  write(buf: Buffer, cb: (err?: Error | null) => void): boolean {
    this.writes.push({ buf, copy: Buffer.from(buf), cb });
    return true;
  }
  /** Completes the oldest write in flight. */
  complete(): void {
    const w = this.writes.find((x) => x.cb !== done)!;
    const cb = w.cb;
    w.cb = done;
    cb(null);
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
  setNoDelay(): void {}
  pause(): void {}
  resume(): void {}
}
const done = (): void => {};

describe('StreamLink: two buffers and smart batching', () => {
  it('an idle link writes at once; what is committed meanwhile leaves together when the write completes', () => {
    const sock = new ScriptedSocket();
    const link = new StreamLink(sock.asSocket(), 'unix', 'test', 1 << 20);
    const h = new Handler();
    link.start(h);
    link.send(frame(12, 1), 0, 12);
    expect(sock.writes).toHaveLength(1);
    expect(link.writeBlockedSince).toBeGreaterThan(0);
    link.send(frame(12, 2), 0, 12);
    link.send(frame(12, 3), 0, 12);
    expect(sock.writes).toHaveLength(1);
    expect(link.pendingBytes).toBe(36);
    sock.complete();
    expect(sock.writes).toHaveLength(2);
    expect(sock.writes[1]!.copy).toEqual(Buffer.concat([frame(12, 2), frame(12, 3)]));
    expect(h.drains).toBe(0);
    sock.complete();
    expect(link.pendingBytes).toBe(0);
    expect(link.writeBlockedSince).toBe(0);
    expect(h.drains).toBe(1);
  });

  it('inside a batch window, commits to an idle link leave in one write at the end', () => {
    const sock = new ScriptedSocket();
    const link = new StreamLink(sock.asSocket(), 'unix', 'test', 1 << 20);
    link.start(new Handler());
    runBatched(() => {
      link.send(frame(12, 1), 0, 12);
      link.send(frame(12, 2), 0, 12);
      expect(sock.writes).toHaveLength(0);
    }, null);
    expect(sock.writes.map((w) => w.copy)).toEqual([Buffer.concat([frame(12, 1), frame(12, 2)])]);
  });

  it('reserve/commit across a swap: the bytes land in the new fill buffer, the one in flight is untouched', () => {
    const sock = new ScriptedSocket();
    const link = new StreamLink(sock.asSocket(), 'unix', 'test', 1 << 20);
    link.start(new Handler());
    const a = link.reserve(12);
    frame(12, 1).copy(a, link.writeOffset);
    link.commit(12); // swaps: `a` is now the socket's
    const b = link.reserve(12);
    expect(b).not.toBe(a);
    expect(link.writeOffset).toBe(0);
    frame(12, 2).copy(b, link.writeOffset);
    link.commit(12);
    expect(sock.writes[0]!.buf).toEqual(frame(12, 1));
    sock.complete(); // `b` goes out, `a` becomes the spare
    expect(sock.writes[1]!.buf).toEqual(frame(12, 2));
    const c = link.reserve(12);
    expect(c).toBe(a);
    sock.complete();
  });

  it('steady state allocates no buffer: two buffers swap roles', () => {
    const sock = new ScriptedSocket();
    const link = new StreamLink(sock.asSocket(), 'unix', 'test', 1 << 20);
    link.start(new Handler());
    const seen = new Set<ArrayBufferLike>();
    for (let i = 0; i < 100; i++) {
      link.send(frame(40, i), 0, 40);
      link.send(frame(40, i), 0, 40);
      sock.complete();
    }
    for (const w of sock.writes) seen.add(w.buf.buffer);
    expect(seen.size).toBe(2);
  });

  it('a close waits for the write in flight, then ends the socket', () => {
    const sock = new ScriptedSocket();
    const link = new StreamLink(sock.asSocket(), 'unix', 'test', 1 << 20, new FakeClock());
    const h = new Handler();
    link.start(h);
    link.send(frame(12, 1), 0, 12);
    link.send(frame(12, 2), 0, 12);
    link.close();
    expect(sock.ended).toBe(false);
    sock.complete();
    expect(sock.ended).toBe(false);
    sock.complete();
    expect(sock.ended).toBe(true);
    sock.emit('close');
    expect(h.closes).toEqual([null]);
  });

  it('destroy() keeps the first error and reports it once the socket closes', () => {
    const sock = new ScriptedSocket();
    const link = new StreamLink(sock.asSocket(), 'unix', 'test', 1 << 20);
    const h = new Handler();
    link.start(h);
    sock.emit('error', new Error('EPIPE'));
    link.destroy(new Error('later'));
    expect(link.closed).toBe(true);
    expect(h.closes).toEqual([]);
    sock.emit('close');
    expect(h.closes.map((e) => e?.message)).toEqual(['EPIPE']);
  });
});

describe('inproc: the base on the cheapest real link', () => {
  async function settle(): Promise<void> {
    for (let i = 0; i < 5; i++) await tick();
  }

  /** A started pair: c (client end) and b (broker end), with their handlers. */
  function joined(): { c: InprocLink; b: InprocLink; hc: Handler; hb: Handler } {
    const [c, b] = inprocPair('inproc://t', 1 << 20, 1 << 20);
    const hc = new Handler();
    const hb = new Handler();
    c.start(hc);
    b.start(hb);
    return { c, b, hc, hb };
  }

  it('close() delivers what is queued, then both ends close cleanly', async () => {
    const { c, hc, hb } = joined();
    for (let i = 0; i < 3; i++) c.send(frame(12, i), 0, 12);
    c.close();
    await settle();
    expect(hb.seqs()).toEqual([0, 1, 2]);
    expect(hc.closes).toEqual([null]);
    expect(hb.closes).toEqual([null]);
  });

  it('destroy() drops what is queued and resets the peer', async () => {
    const { c, hc, hb } = joined();
    c.send(frame(12, 1), 0, 12);
    c.destroy(new Error('gone'));
    await settle();
    expect(hb.frames).toEqual([]);
    expect(hc.closes.map((e) => e?.message)).toEqual(['gone']);
    expect(hb.closes.map((e) => e?.message)).toEqual(['inproc connection reset by the peer']);
  });

  it('a paused receiver holds what it was handed; the sender counts it as pending until resume', async () => {
    const { c, b, hc, hb } = joined();
    b.pause();
    c.send(frame(12, 1), 0, 12);
    c.send(frame(12, 2), 0, 12);
    await settle();
    expect(hb.frames).toEqual([]);
    expect(c.pendingBytes).toBe(24);
    expect(c.writeBlockedSince).toBeGreaterThan(0);
    b.resume();
    await settle();
    expect(hb.seqs()).toEqual([1, 2]);
    expect(c.pendingBytes).toBe(0);
    expect(c.writeBlockedSince).toBe(0);
    expect(hc.drains).toBeGreaterThan(0);
  });

  it('frames handed over stay intact while the sender keeps writing', async () => {
    const { c, hb } = joined();
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 50; i++) c.send(frame(1000, round * 50 + i), 0, 1000);
      await tick();
    }
    await settle();
    expect(hb.seqs()).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    for (const f of hb.frames) expect(f.readUInt32LE(0)).toBe(1000);
  });
});
