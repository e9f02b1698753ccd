/**
 * A multicast source's heartbeats, on a FakeClock: when they go out while the channel
 * is idle (back-off from heartbeatMinMs, doubling, capped at heartbeatMaxMs), what each
 * one announces, how a datagram restarts the back-off, and that close() says BYE and
 * stops them. No socket and no wall clock: the sender's datagrams are captured.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../runtime/clock.js';
import { DType, F_BYE, HEADER } from '../../transports/multicast/wire.js';
import { capture, put } from './multicast-sender.js';

interface Beat {
  at: number;
  /** The interval it announces: "the next heartbeat comes within this many ms". */
  nextMs: number;
  bye: boolean;
}

/** A sender on a fake clock, min 5 ms and max 40 ms, whose heartbeats are logged with the time they left. */
function idleSource() {
  const clock = new FakeClock(0);
  const { s, out } = capture(1400, 16, { heartbeatMinMs: 5, heartbeatMaxMs: 40 }, clock);
  const beats: Beat[] = [];
  let seen = 0;
  /** Moves the clock, logging each heartbeat with the time it left. */
  const advance = (ms: number): void => {
    for (let t = 0; t < ms; t++) {
      clock.advance(1);
      for (; seen < out.length; seen++) {
        const d = out[seen]!;
        if (d[3] === DType.HEARTBEAT) beats.push({ at: clock.now(), nextMs: d.readUInt32LE(HEADER + 4), bye: (d[16]! & F_BYE) !== 0 });
      }
    }
  };
  /** Forgets what was logged, and what left before now (the hello heartbeats). */
  const reset = (): void => {
    beats.length = 0;
    seen = out.length;
  };
  return { clock, s, out, beats, advance, reset };
}

describe('multicast source heartbeats (FakeClock)', () => {
  it('an idle channel heartbeats at 5, 10, 20, 40, 40, ... ms after its last datagram, each announcing the next interval', () => {
    const src = idleSource();
    put(src.s, 'hb.x', '1');
    src.s.flush();
    // The first datagram is preceded by two hello heartbeats (at time 0).
    expect(src.s.stats.heartbeats).toBe(2);
    src.reset();
    src.advance(355);
    expect(src.beats.map((b) => b.at)).toEqual([5, 15, 35, 75, 115, 155, 195, 235, 275, 315, 355]);
    expect(src.beats.map((b) => b.nextMs)).toEqual([10, 20, 40, 40, 40, 40, 40, 40, 40, 40, 40]);
    // Never longer apart than announced: a receiver allowing 3 announced intervals never times out a live source.
    for (let i = 1; i < src.beats.length; i++) expect(src.beats[i]!.at - src.beats[i - 1]!.at).toBeLessThanOrEqual(src.beats[i - 1]!.nextMs);
    expect(src.s.stats.heartbeats).toBe(2 + 11);
  });

  it('no heartbeat before the first datagram, and none while the clock stands still', () => {
    const src = idleSource();
    src.advance(1000);
    expect(src.out).toEqual([]);
    put(src.s, 'hb.x', '1');
    src.s.flush();
    const n = src.out.length;
    expect(src.clock.pending).toBe(1); // one timer per channel
    expect(src.out.length).toBe(n);
  });

  it('a datagram restarts the back-off: the heartbeats after it come at 10, 20, 40 ms again', () => {
    const src = idleSource();
    put(src.s, 'hb.x', '1');
    src.s.flush();
    src.advance(100); // heartbeats at 5, 15, 35, 75; the next one is due at 115
    src.reset();
    put(src.s, 'hb.x', '2');
    src.s.flush();
    src.advance(100);
    // The timer armed before the datagram still fires at 115 (one timer per channel, not one per
    // datagram); from there the delay has started again at the minimum.
    expect(src.beats.map((b) => b.at)).toEqual([115, 125, 145, 185]);
    expect(src.beats.map((b) => b.nextMs)).toEqual([10, 20, 40, 40]);
  });

  it('close() sends BYE and stops the heartbeats', () => {
    const src = idleSource();
    put(src.s, 'hb.x', '1');
    src.s.flush();
    src.advance(20);
    src.s.close();
    src.advance(1); // log the BYE
    expect(src.beats.at(-1)).toMatchObject({ bye: true, nextMs: 0 });
    const n = src.out.length;
    expect(src.clock.pending).toBe(0);
    src.advance(1000);
    expect(src.out.length).toBe(n);
  });
});
