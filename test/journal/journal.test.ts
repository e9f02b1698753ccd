/**
 * The journal as a whole, on real files: what is appended is read back whole and in
 * order, in batches and segments; seeks by seq and by time go through the index; a
 * reopened journal goes on with the next seq; retention deletes whole old segments.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../runtime/clock.js';
import { JournalError, JournalWriter, type RecordView, openJournal, recordSource, SubjectFilter } from '../../journal/index.js';
import { HopbusError, OptionsError } from '../../runtime/errors.js';
import { LOCK_FILE } from '../../journal/writer.js';
import { FLAG_REQUEST, FLAG_TS, MsgView, Op, PayloadKind, msgSize, writeMsgHeader } from '../../transports/protocol/index.js';
import { encodeIndexEntry, readIndex } from '../../journal/segment.js';
import { message, openWriter, segFiles, tmpDir } from './helpers.js';

/** Anchors every segment at wall ms 1e6 = monotonic 0, so record i (time i ms) reads as wall ms 1e6 + i. */
const anchors = { wallClock: () => 1_000_000, monoClock: () => 0 };

type Seen = { seq: number; subject: string; payload: string; reply: string; headers: number; timeMs: number };
const seen = (r: RecordView): Seen => ({
  seq: r.seq,
  subject: r.subject(),
  payload: r.payload().toString(),
  reply: r.reply(),
  headers: r.headersLen,
  timeMs: r.timeMs(),
});

async function appendN(w: { append: (s: ReturnType<typeof message>, t: number) => boolean }, from: number, n: number, size = 16): Promise<void> {
  for (let i = from; i < from + n; i++) {
    expect(w.append(message(i, size), i * 1e6)).toBe(true);
    // Let the writer's batches go out now and then, as a broker's event loop would.
    if (i % 500 === 0) await new Promise((r) => setImmediate(r));
  }
}

describe('a journal written and read back', () => {
  it('returns every record whole and in order, with its subject, reply, headers, payload and time, through every read loop (forEach, read, each)', async () => {
    const dir = tmpDir();
    const { w, events } = await openWriter(dir, { ...anchors, fsync: 'none' });
    await appendN(w, 1, 3000);
    await w.close();
    expect(events).toEqual([]);
    const st = w.stats();
    expect(st).toMatchObject({ appended: 3000, written: 3000, dropped: 0, writtenSeq: 3000, nextSeq: 3001 });
    // Batched: far fewer writes than records.
    expect(st.writes).toBeLessThan(100);

    const j = openJournal(dir);
    const viaCallback: Seen[] = [];
    expect(j.forEach({}, (r) => void viaCallback.push(seen(r)))).toBe(3000);
    const viaIterator: Seen[] = [];
    for await (const r of j.read()) viaIterator.push(seen(r));
    expect(viaIterator).toEqual(viaCallback);
    // each(): the same records; a promise returned is awaited before the next record, false stops.
    const viaEach: Seen[] = [];
    expect(await j.each({}, (r) => void viaEach.push(seen(r)))).toBe(3000);
    expect(viaEach).toEqual(viaCallback);
    const awaited: number[] = [];
    let inFlight = false;
    const n = await j.each({ from: { seq: 2990 } }, (r) => {
      expect(inFlight).toBe(false);
      awaited.push(r.seq);
      if (r.seq === 2995) return false;
      if (r.seq % 2 === 0) return undefined;
      inFlight = true;
      const seq = r.seq;
      return new Promise<void>((resolve) =>
        setImmediate(() => {
          // The view still holds this record while its promise is pending.
          expect(r.seq).toBe(seq);
          inFlight = false;
          resolve();
        }),
      );
    });
    expect(n).toBe(6);
    expect(awaited).toEqual([2990, 2991, 2992, 2993, 2994, 2995]);
    expect(viaCallback.map((s) => s.seq)).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    expect(viaCallback[4]).toEqual({ seq: 5, subject: 'md.S1', payload: 'm5'.padEnd(16, '.'), reply: '_INBOX.5', headers: 5, timeMs: 1_000_005 });
    expect(viaCallback[6]).toEqual({ seq: 7, subject: 'md.S3', payload: 'm7'.padEnd(16, '.'), reply: '', headers: 0, timeMs: 1_000_007 });
    expect(j.lastSeq()).toBe(3000);
  });

  it('rolls segments at segmentBytes, names each by its first seq, and reads across them', async () => {
    const dir = tmpDir();
    const { w } = await openWriter(dir, { ...anchors, fsync: 'none', segmentBytes: 16 * 1024, batchBytes: 4096 });
    await appendN(w, 1, 2000, 40);
    await w.close();
    const segs = segFiles(dir);
    expect(segs.length).toBeGreaterThan(5);
    for (const s of segs) {
      expect(s).toMatch(/^\d{20}\.seg$/);
      // Each segment is at most segmentBytes, and its first record has the seq in its name.
      expect(fs.statSync(path.join(dir, s)).size).toBeLessThanOrEqual(16 * 1024);
      expect(fs.existsSync(path.join(dir, s.replace('.seg', '.idx')))).toBe(true);
    }
    const firsts: number[] = [];
    let prev = 0;
    const j = openJournal(dir);
    j.forEach({}, (r) => {
      expect(r.seq).toBe(prev + 1);
      if (r.fileOffset === 40) firsts.push(r.seq);
      prev = r.seq;
    });
    expect(prev).toBe(2000);
    expect(firsts).toEqual(segs.map((s) => Number(s.slice(0, 20))));
  });

  it('seeks by seq and by time through the index, and stops at `to`', async () => {
    const dir = tmpDir();
    const { w } = await openWriter(dir, { ...anchors, fsync: 'none', segmentBytes: 64 * 1024, indexEveryRecords: 50 });
    await appendN(w, 1, 5000, 24);
    await w.close();
    const idx = readIndex(path.join(dir, segFiles(dir)[1]!.replace('.seg', '.idx')));
    // Every 50 records, and the segment's first.
    expect(idx.seqs[1]! - idx.seqs[0]!).toBe(50);
    expect(idx.seqs[0]).toBe(Number(segFiles(dir)[1]!.slice(0, 20)));

    const j = openJournal(dir);
    const seqs = (opts: Parameters<typeof j.forEach>[0]) => {
      const out: number[] = [];
      j.forEach(opts, (r) => void out.push(r.seq));
      return out;
    };
    expect(seqs({ from: { seq: 3127 }, to: { seq: 3131 } })).toEqual([3127, 3128, 3129, 3130, 3131]);
    expect(seqs({ from: { seq: 4999 } })).toEqual([4999, 5000]);
    // Record i was received at wall ms 1e6 + i.
    expect(seqs({ from: { timeMs: 1_002_345 }, to: { timeMs: 1_002_347 } })).toEqual([2345, 2346, 2347]);
    expect(seqs({ from: { timeMs: 1_002_345.5 }, to: { seq: 2347 } })).toEqual([2346, 2347]);
    expect(seqs({ from: { timeMs: 0 }, to: { seq: 2 } })).toEqual([1, 2]);
    expect(seqs({ from: { seq: 6000 } })).toEqual([]);
    const got: number[] = [];
    for await (const r of j.read({ from: { seq: 1234 }, to: { timeMs: 1_001_236 } })) got.push(r.seq);
    expect(got).toEqual([1234, 1235, 1236]);
  });

  it('returns only the subjects asked for', async () => {
    const dir = tmpDir();
    const { w } = await openWriter(dir, { fsync: 'none' });
    await appendN(w, 1, 400);
    await w.close();
    const subjects = new Set<string>();
    const n = openJournal(dir).forEach({ subjects: ['md.S1', 'md.S3'] }, (r) => void subjects.add(r.subject()));
    expect(n).toBe(200);
    expect([...subjects].sort()).toEqual(['md.S1', 'md.S3']);
    expect(openJournal(dir).forEach({ subjects: 'md.*' }, () => undefined)).toBe(400);
    expect(new SubjectFilter(['md.>']).matches('md.a.b')).toBe(true);
  });

  it('goes on after a reopen with the next seq, in a new segment', async () => {
    const dir = tmpDir();
    const a = await openWriter(dir, { fsync: 'none' });
    await appendN(a.w, 1, 100);
    await a.w.close();
    const b = await openWriter(dir, { fsync: 'none' });
    expect(b.w.seq).toBe(101);
    await appendN(b.w, 101, 50);
    await b.w.close();
    expect(segFiles(dir)).toEqual(['00000000000000000001.seg', '00000000000000000101.seg']);
    const seqs: number[] = [];
    openJournal(dir).forEach({}, (r) => void seqs.push(r.seq));
    expect(seqs).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
    expect(b.events).toEqual([]);
  });
});

describe('retention', () => {
  it('by maxBytes deletes whole segments, oldest first, never the one being written', async () => {
    const dir = tmpDir();
    const { w, events } = await openWriter(dir, { fsync: 'none', segmentBytes: 8192, batchBytes: 4096, maxBytes: 30_000 });
    await appendN(w, 1, 3000, 40);
    await w.close();
    await w.enforceRetention();
    const deleted = events.filter((e) => e.type === 'retention');
    expect(deleted.length).toBeGreaterThan(5);
    expect(deleted.every((e) => e.type === 'retention' && e.reason === 'maxBytes')).toBe(true);
    let bytes = 0;
    for (const n of fs.readdirSync(dir)) bytes += fs.statSync(path.join(dir, n)).size;
    expect(bytes).toBeLessThanOrEqual(30_000);
    expect(w.stats().deletedSegments).toBe(deleted.length);
    // What is left is the newest records, whole and gap-free up to the last one.
    const seqs: number[] = [];
    openJournal(dir).forEach({}, (r) => void seqs.push(r.seq));
    expect(seqs[seqs.length - 1]).toBe(3000);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.idx')).length).toBe(segFiles(dir).length);
  });

  it('by maxAgeMs deletes the closed segments whose newest record is older than that, on the writer clock', async () => {
    const dir = tmpDir();
    let wall = 5_000_000;
    const clock = new FakeClock();
    const { w, events } = await openWriter(dir, { fsync: 'none', segmentBytes: 8192, maxAgeMs: 60_000, clock, wallClock: () => wall });
    await appendN(w, 1, 600, 40);
    await w.flush();
    const before = segFiles(dir);
    expect(before.length).toBeGreaterThan(2);
    expect(events.filter((e) => e.type === 'retention')).toEqual([]);
    wall += 61_000;
    clock.advance(60_000); // the retention timer
    await w.enforceRetention(); // (the timer's run, awaited)
    expect(segFiles(dir)).toEqual([before[before.length - 1]]);
    expect(events.filter((e) => e.type === 'retention').length).toBe(before.length - 1);
    await w.close();
  });
});

describe('the writer of a directory', () => {
  it('is one at a time: a second is refused while the first is open, and a lock left by a dead process is taken over', async () => {
    const dir = tmpDir();
    const a = await openWriter(dir, { fsync: 'none' });
    await expect(openWriter(dir, { fsync: 'none' })).rejects.toMatchObject({ code: 'JOURNAL', message: expect.stringContaining('one writer per directory') });
    await a.w.close();
    // A process that is gone (as after kill -9) left its pid in the lock.
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    fs.writeFileSync(path.join(dir, LOCK_FILE), dead.stdout);
    const b = await openWriter(dir, { fsync: 'none' });
    expect(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8').trim()).toBe(String(process.pid));
    await b.w.close();
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
  });

  it("records a broker's parsed PUB frame as it is (a MsgView is a RecordSource): the same subject, reply, headers, payload, kind and flags", async () => {
    const dir = tmpDir();
    const { w } = await openWriter(dir, { fsync: 'none' });
    const subject = Buffer.from('md.EURUSD');
    const reply = Buffer.from('_INBOX.q1');
    const headers = Buffer.from([0x81, 0xa1, 0x6b, 0xa1, 0x76]);
    const payload = Buffer.from([1, 2, 3, 250, 251]);
    const len = msgSize(subject.length, reply.length, headers.length, payload.length, true);
    const frame = Buffer.alloc(len + 10);
    let p = writeMsgHeader(frame, 10, len, Op.PUB, FLAG_TS | FLAG_REQUEST, PayloadKind.MSGPACK, 0, subject.length, reply.length, headers.length);
    p += 16; // the timestamp block
    for (const part of [subject, reply, headers, payload]) p += part.copy(frame, p);
    const view = new MsgView().parse(frame, 10, len);
    const recvNs = 123_456_789_012;
    expect(w.append(view, recvNs)).toBe(true);
    await w.close();
    const got: unknown[] = [];
    openJournal(dir).forEach({}, (r) => {
      got.push({
        subject: r.subject(),
        reply: r.reply(),
        headers: [...r.headers()],
        payload: [...r.payload()],
        kind: r.kind,
        flags: r.flags,
        timeNs: r.timeNs,
      });
    });
    expect(got).toEqual([
      {
        subject: 'md.EURUSD',
        reply: '_INBOX.q1',
        headers: [...headers],
        payload: [...payload],
        kind: PayloadKind.MSGPACK,
        flags: FLAG_REQUEST,
        timeNs: recvNs,
      },
    ]);
  });
});

describe('records longer than a batch or a read', () => {
  it('are written in a batch of their own and read back whole through a read buffer that grows to them', async () => {
    const dir = tmpDir();
    const { w } = await openWriter(dir, { fsync: 'none', batchBytes: 64 * 1024, maxPendingBytes: 4 * 1024 * 1024 });
    const big = Buffer.alloc(300_000, 7);
    big.write('head', 0);
    w.append(message(1), 1);
    w.append(recordSource('md.big', big), 2);
    w.append(message(3), 3);
    // Longer than the whole bound: refused as too large, counted, its seq a gap.
    expect(w.append(recordSource('md.huge', Buffer.alloc(5 * 1024 * 1024)), 4)).toBe(false);
    w.append(message(5), 5);
    await w.close();
    expect(w.stats()).toMatchObject({ droppedTooLarge: 1, dropped: 1 });
    for (const chunkBytes of [4096, 1 << 20]) {
      const got: [number, number][] = [];
      openJournal(dir, { chunkBytes }).forEach({}, (r) => void got.push([r.seq, r.payloadLen]));
      expect(got).toEqual([
        [1, 16],
        [2, 300_000],
        [3, 16],
        [5, 16],
      ]);
      const payloads: Buffer[] = [];
      for await (const r of openJournal(dir, { chunkBytes }).read({ from: { seq: 2 }, to: { seq: 2 } })) payloads.push(Buffer.from(r.payload()));
      expect(payloads[0]!.equals(big)).toBe(true);
    }
  });
});

describe('a damaged index', () => {
  it('only makes a seek scan: garbage, an entry pointing into the middle of a record, or no index at all', async () => {
    const dir = tmpDir();
    const { w } = await openWriter(dir, { fsync: 'none', indexEveryRecords: 10 });
    for (let i = 1; i <= 500; i++) w.append(message(i), i);
    await w.close();
    const idxPath = path.join(dir, segFiles(dir)[0]!.replace('.seg', '.idx'));
    const seek = () => {
      const out: number[] = [];
      const bad: unknown[] = [];
      openJournal(dir, { onEvent: (e) => bad.push(e) }).forEach({ from: { seq: 333 }, to: { seq: 335 } }, (r) => void out.push(r.seq));
      expect(bad).toEqual([]);
      return out;
    };
    expect(seek()).toEqual([333, 334, 335]);
    // A well-formed entry that points 3 bytes into record 331.
    const idx = readIndex(idxPath);
    const at = idx.seqs.indexOf(331);
    const b = Buffer.alloc(24 * (at + 1));
    for (let i = 0; i <= at; i++) encodeIndexEntry(b, i * 24, idx.seqs[i]!, idx.times[i]!, idx.offsets[i]! + (i === at ? 3 : 0));
    fs.writeFileSync(idxPath, b);
    expect(seek()).toEqual([333, 334, 335]);
    fs.writeFileSync(idxPath, Buffer.alloc(240, 0xab));
    expect(seek()).toEqual([333, 334, 335]);
    fs.rmSync(idxPath);
    expect(seek()).toEqual([333, 334, 335]);
  });
});

describe('reading while a writer appends', () => {
  it('sees every record written so far, whole, and more on the next read; never repairs or reports the live tail', async () => {
    const dir = tmpDir();
    const { w } = await openWriter(dir, { fsync: 'none', segmentBytes: 8192 });
    const j = openJournal(dir, { onEvent: (e) => expect.fail(`unexpected ${JSON.stringify(e)}`) });
    for (let round = 1; round <= 3; round++) {
      for (let i = (round - 1) * 300 + 1; i <= round * 300; i++) w.append(message(i), i);
      await w.flush();
      const seqs: number[] = [];
      for await (const r of j.read()) seqs.push(r.seq);
      expect(seqs).toEqual(Array.from({ length: round * 300 }, (_, k) => k + 1));
    }
    await w.close();
  });
});

describe('JournalError', () => {
  it('is a HopbusError with a code to branch on, and bad options are OptionsError (BAD_OPTIONS) as everywhere', async () => {
    expect(() => openJournal(path.join(tmpDir(), 'missing'))).toThrow(expect.objectContaining({ name: 'JournalError', code: 'JOURNAL' }));
    const err = await openWriter(tmpDir(), { segmentBytes: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HopbusError);
    expect(err).toBeInstanceOf(OptionsError);
    expect(err).toMatchObject({ code: 'BAD_OPTIONS', message: expect.stringContaining('segmentBytes') });
    const busy = await openWriter(tmpDir());
    const again = await JournalWriter.open({ dir: busy.w.dir }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(JournalError);
    expect(again).toBeInstanceOf(HopbusError);
    await busy.w.close();
  });
});
