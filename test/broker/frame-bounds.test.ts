/**
 * What a connection can make the broker buffer. Before CONNECT: a CONNECT-sized frame
 * (4 KiB), not a max-size one. After it: a frame that is begun and never completed is
 * cut off by the read deadline (on the broker's clock) and its bytes are released.
 */
import fs from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../runtime/clock.js';
import { startBroker, type StartedBroker } from '../../broker/index.js';
import { ERR, RawClient, connectFrame, pubFrame, until, useWorld } from '../kit/index.js';
import { useBrokerProcesses } from '../client/processes.js';

const w = useWorld();
const brokerProcess = useBrokerProcesses();

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** The first `n` bytes of a PUB frame of `total` bytes (its length prefix says `total`). */
function partialPub(total: number, n: number): Buffer {
  const f = pubFrame('big', new Uint8Array(total - 20 - 3));
  expect(f.length).toBe(total);
  return f.subarray(0, n);
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

async function withFakeClock(options: Record<string, unknown>): Promise<{ b: StartedBroker; clock: FakeClock }> {
  const clock = new FakeClock();
  const b = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', ...options }, undefined, clock);
  return { b, clock };
}

describe('before CONNECT', () => {
  it('a frame larger than 4 KiB is refused at its length prefix with FRAME_TOO_LARGE, naming the handshake', async () => {
    const b = await w.broker();
    const raw = await w.raw(b);
    raw.send(partialPub(64 * 1024, 4096));
    await raw.closed;
    const errs = raw.errors();
    expect(errs.map((e) => e.code)).toEqual([ERR.FRAME_TOO_LARGE]);
    expect(errs[0]!.text).toMatch(/^before CONNECT: frame of 65536 bytes exceeds the limit of 4096 bytes/);
  });

  it('a CONNECT of up to 4 KiB is accepted, and after it a max-size frame is', async () => {
    const b = await w.broker();
    const raw = await w.raw(b);
    await raw.handshake({ name: 'n'.repeat(3000) });
    raw.send(pubFrame('big', new Uint8Array(1024 * 1024 - 100)));
    await raw.roundTrip();
    expect(raw.errors()).toEqual([]);
  });

  it('100 unauthenticated sockets each sending 1.2 MB minus one byte do not grow the broker process by their bytes (RSS from /proc)', async () => {
    const broker = await brokerProcess();
    const pid = broker.proc.pid!;
    const warm = await RawClient.dial({ port: broker.port });
    await warm.handshake();
    const before = rssOf(pid);
    const frame = partialPub(1_200_000, 1_199_999);
    const raws = await Promise.all(Array.from({ length: 100 }, () => RawClient.dial({ port: broker.port })));
    for (const r of raws) r.send(frame);
    await Promise.all(raws.map((r) => r.closed));
    for (const r of raws) expect(r.errors().map((e) => e.code)).toEqual([ERR.FRAME_TOO_LARGE]);
    const grown = rssOf(pid) - before;
    // Buffered whole, they would hold 120 MB; the rest is the sockets' own cost and the
    // garbage of what the broker reads (and ignores) until each client sees the close.
    expect(grown).toBeLessThan(64 * 1024 * 1024);
    warm.socket.destroy();
  });
});

describe('after CONNECT: the read deadline', () => {
  it('a frame begun and not completed within readDeadlineMs closes the connection with PROTOCOL (on the broker clock)', async () => {
    const { b, clock } = await withFakeClock({ readDeadlineMs: 1000 });
    try {
      const raw = await RawClient.dial({ port: Number(new URL(b.url).port) });
      await raw.handshake();
      const session = [...b.broker.sessions][0]!;
      raw.send(partialPub(1024 * 1024, 1000));
      await until(() => session.link.partialFrame !== 0, 'the broker to hold the partial frame');
      clock.advance(250); // first sighting
      clock.advance(1000);
      await raw.closed;
      const errs = raw.errors();
      expect(errs.map((e) => e.code)).toEqual([ERR.PROTOCOL]);
      expect(errs[0]!.text).toMatch(/a frame begun \d+ ms ago is still incomplete \(readDeadlineMs 1000\)/);
      await until(() => b.broker.sessions.size === 0, 'the broker to drop the connection');
    } finally {
      await b.close();
    }
  });

  it('a frame completed within the deadline, and a stream of frames each split across chunks, are left alone', async () => {
    const { b, clock } = await withFakeClock({ readDeadlineMs: 1000 });
    try {
      const raw = await RawClient.dial({ port: Number(new URL(b.url).port) });
      await raw.handshake();
      const session = [...b.broker.sessions][0]!;
      const whole = pubFrame('big', new Uint8Array(100_000));
      for (let i = 0; i < 5; i++) {
        // Each frame is partial at a check, but never the same one at two checks a deadline apart.
        raw.send(whole.subarray(0, 50_000));
        await until(() => session.link.partialFrame !== 0, 'the partial frame');
        clock.advance(600);
        raw.send(whole.subarray(50_000));
        await raw.roundTrip();
        clock.advance(600);
      }
      await raw.roundTrip();
      expect(raw.errors()).toEqual([]);
      expect(session.stats.msgsIn).toBe(5);
    } finally {
      await b.close();
    }
  });

  it('50 connections holding 1 MiB partial frames each: the deadline releases every byte (external memory after GC)', async () => {
    const { b, clock } = await withFakeClock({ readDeadlineMs: 1000 });
    try {
      const port = Number(new URL(b.url).port);
      gc();
      const before = process.memoryUsage().arrayBuffers;
      const frame = partialPub(1024 * 1024, 1024 * 1024 - 1);
      const raws = await Promise.all(Array.from({ length: 50 }, () => RawClient.dial({ port })));
      for (const r of raws) r.send(connectFrame(), frame);
      await until(() => [...b.broker.sessions].filter((s) => s.link.partialFrame !== 0).length === 50, 'all 50 partial frames held');
      gc();
      expect(process.memoryUsage().arrayBuffers - before).toBeGreaterThan(40 * 1024 * 1024);
      clock.advance(250);
      clock.advance(1000);
      await Promise.all(raws.map((r) => r.closed));
      await until(() => b.broker.sessions.size === 0, 'the broker to drop them');
      // V8 frees large backing stores after a collection, on a thread of its own: poll.
      await until(() => {
        gc();
        return process.memoryUsage().arrayBuffers - before < 8 * 1024 * 1024;
      }, 'the partial frames to be freed');
    } finally {
      await b.close();
    }
  });
});
