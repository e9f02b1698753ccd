/**
 * What the writer does when the disk is slow, fails or is full, and what each fsync
 * policy does and when: the file operations are Node's, wrapped to count fsyncs, to hold
 * writes back, or to fail a write with ENOSPC, and timers run on a FakeClock.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../runtime/clock.js';
import { type JournalFs, nodeJournalFs, openJournal } from '../../journal/index.js';
import { until } from '../kit/wait.js';
import { message, openWriter, segFiles, tmpDir } from './helpers.js';

/** Node's fs with counters and switches. */
function instrumented() {
  const calls = { fsync: 0, writes: 0 };
  let failWrites: string | null = null;
  let hold: Promise<void> | null = null;
  /** What every write and writev goes through: held while held, failing while failing, counted. */
  const beforeWrite = async (): Promise<void> => {
    if (hold !== null) await hold;
    if (failWrites !== null) {
      const err = new Error(`${failWrites}: no space left on device, write`) as NodeJS.ErrnoException;
      err.code = failWrites;
      throw err;
    }
    calls.writes++;
  };
  const fsx: JournalFs = {
    ...nodeJournalFs,
    async write(fd, buf, off, len, pos) {
      await beforeWrite();
      return nodeJournalFs.write(fd, buf, off, len, pos);
    },
    async writev(fd, bufs, pos) {
      await beforeWrite();
      return nodeJournalFs.writev!(fd, bufs, pos);
    },
    async fsync(fd) {
      calls.fsync++;
      return nodeJournalFs.fsync(fd);
    },
  };
  return {
    fsx,
    calls,
    fail(code: string | null) {
      failWrites = code;
    },
    holdWrites(): () => void {
      let release!: () => void;
      hold = new Promise<void>((r) => (release = r));
      return () => {
        hold = null;
        release();
      };
    },
  };
}

const readSeqs = (dir: string): number[] => {
  const out: number[] = [];
  openJournal(dir, { onEvent: () => undefined }).forEach({}, (r) => void out.push(r.seq));
  return out;
};

describe("fsync 'interval'", () => {
  it('writes at once but fsyncs only when the oldest unsynced record has waited fsyncIntervalMs', async () => {
    const dir = tmpDir();
    const clock = new FakeClock();
    const io = instrumented();
    const { w } = await openWriter(dir, { fsync: 'interval', fsyncIntervalMs: 1000, clock, fs: io.fsx });
    w.append(message(1), 1);
    await until(() => w.stats().writtenSeq === 1, 'the first record written');
    expect(io.calls.fsync).toBe(0);
    clock.advance(400);
    w.append(message(2), 2);
    await until(() => w.stats().writtenSeq === 2, 'the second record written');
    clock.advance(599);
    expect(io.calls.fsync).toBe(0);
    expect(w.stats().syncedSeq).toBe(0);
    clock.advance(1); // 1000 ms after the first record arrived
    await until(() => w.stats().syncedSeq === 2, 'an fsync covering both records');
    expect(io.calls.fsync).toBe(1);
    // Nothing new: no timer, no fsync.
    expect(clock.pending).toBe(0);
    w.append(message(3), 3);
    expect(clock.pending).toBe(1);
    clock.advance(1000);
    await until(() => w.stats().syncedSeq === 3, 'the third record synced');
    expect(io.calls.fsync).toBe(2);
    await w.close();
  });

  it("refuses an interval over 1 s (the journal's promise)", async () => {
    await expect(openWriter(tmpDir(), { fsync: 'interval', fsyncIntervalMs: 1500 })).rejects.toMatchObject({ code: 'BAD_OPTIONS' });
  });
});

describe("fsync 'always' and 'none'", () => {
  it("'always' fsyncs after every batch write; 'none' never", async () => {
    for (const policy of ['always', 'none'] as const) {
      const dir = tmpDir();
      const io = instrumented();
      const { w } = await openWriter(dir, { fsync: policy, fs: io.fsx });
      for (let i = 1; i <= 5; i++) {
        w.append(message(i), i);
        // With 'always' the fsync follows the write: wait for it too, or a loaded machine sees the last one in flight.
        await until(() => w.stats().writtenSeq === i && (policy !== 'always' || w.stats().syncedSeq === i), `record ${i} written`);
      }
      // A batch counts as synced once its fsync has completed, after the write: wait for that.
      if (policy === 'always') await until(() => w.stats().syncedSeq === 5, 'the fifth record synced');
      const st = w.stats();
      expect(st.writes).toBe(5);
      if (policy === 'always') {
        // One fsync per batch, done before the batch counts as synced.
        expect(io.calls.fsync).toBe(5);
        expect(st.fsyncs).toBe(5);
        expect(st.syncedSeq).toBe(5);
      } else {
        expect(io.calls.fsync).toBe(0);
      }
      await w.close();
      if (policy === 'none') expect(io.calls.fsync).toBe(0);
      expect(readSeqs(dir)).toEqual([1, 2, 3, 4, 5]);
    }
  });
});

describe('the bound between the caller and the disk', () => {
  it('drops and counts records when the disk cannot keep up; their seqs stay a visible gap; a loss event tells the run', async () => {
    const dir = tmpDir();
    const io = instrumented();
    const { w, events } = await openWriter(dir, { fsync: 'none', batchBytes: 4096, maxPendingBytes: 4 * 4096, fs: io.fsx });
    const release = io.holdWrites();
    let accepted = 0;
    let refused = 0;
    for (let i = 1; i <= 2000; i++) {
      if (w.append(message(i, 64), i)) accepted++;
      else refused++;
    }
    const st = w.stats();
    expect(refused).toBeGreaterThan(0);
    expect(st.dropped).toBe(refused);
    expect(st.droppedFull).toBe(refused);
    expect(st.pendingBytes).toBeLessThanOrEqual(4 * 4096);
    release();
    await w.flush();
    expect(w.append(message(2001, 64), 2001)).toBe(true); // room again: the run of drops ends
    await w.close();
    const loss = events.filter((e) => e.type === 'loss');
    expect(loss).toHaveLength(1);
    expect(loss[0]).toMatchObject({ reason: 'full', count: refused, toSeq: 2000 });
    const seqs = readSeqs(dir);
    expect(seqs.length).toBe(accepted + 1);
    // The records that were taken are all there; the gap is exactly the dropped ones.
    expect(seqs[seqs.length - 1]).toBe(2001);
    expect(2001 - seqs.length).toBe(refused);
  });
});

describe('batches queued behind a write in flight', () => {
  it('leave together in one writev, whole and in order, index entries included', async () => {
    const dir = tmpDir();
    const io = instrumented();
    const { w } = await openWriter(dir, { fsync: 'none', batchBytes: 4096, maxPendingBytes: 64 * 4096, indexEveryRecords: 16, fs: io.fsx });
    w.append(message(1, 64), 1);
    await until(() => w.stats().writtenSeq === 1, 'the first record written');
    const release = io.holdWrites();
    // One write in flight (held), then about 30 batches queued behind it.
    for (let i = 2; i <= 1200; i++) expect(w.append(message(i, 64), i)).toBe(true);
    const writesBefore = w.stats().writes;
    release();
    await w.flush();
    const st = w.stats();
    // The held write and the queued batches: two or three writes, not thirty.
    expect(st.writes - writesBefore).toBeLessThanOrEqual(3);
    expect(st).toMatchObject({ written: 1200, dropped: 0, writtenSeq: 1200 });
    await w.close();
    expect(readSeqs(dir)).toEqual(Array.from({ length: 1200 }, (_, i) => i + 1));
    // The index still finds records in the middle of the coalesced write.
    const from: number[] = [];
    openJournal(dir).forEach({ from: { seq: 777 } }, (r) => {
      from.push(r.seq);
      return from.length < 3;
    });
    expect(from).toEqual([777, 778, 779]);
  });

  it('a short writev goes on from where it stopped', async () => {
    const dir = tmpDir();
    let short = 0;
    // A writev that takes only part of what it is given (a full pipe, a signal): the writer must write the rest.
    const fsx: JournalFs = {
      ...nodeJournalFs,
      async writev(fd, bufs, pos) {
        const total = bufs.reduce((a, b) => a + b.length, 0);
        const take = Math.max(1, Math.floor(total / 3) + 5);
        const joined = Buffer.concat(bufs).subarray(0, take);
        short++;
        return nodeJournalFs.write(fd, joined, 0, joined.length, pos);
      },
    };
    let release!: () => void;
    let hold: Promise<void> | null = null;
    const heldFs: JournalFs = {
      ...fsx,
      async write(fd, buf, off, len, pos) {
        if (hold !== null) await hold;
        return nodeJournalFs.write(fd, buf, off, len, pos);
      },
    };
    const { w } = await openWriter(dir, { fsync: 'none', batchBytes: 4096, maxPendingBytes: 64 * 4096, fs: heldFs });
    hold = new Promise<void>((r) => (release = r));
    for (let i = 1; i <= 600; i++) expect(w.append(message(i, 64), i)).toBe(true);
    await until(() => w.stats().pendingBytes > 4 * 4096, 'batches queued behind the held write');
    hold = null;
    release();
    await w.flush();
    expect(short).toBeGreaterThan(0);
    expect(w.stats()).toMatchObject({ written: 600, dropped: 0 });
    await w.close();
    expect(readSeqs(dir)).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
  });
});

describe('I/O errors', () => {
  it('ENOSPC at the write call is reported with the file and offset, the batch counted as lost, the segment kept whole, and writing resumes', async () => {
    const dir = tmpDir();
    const clock = new FakeClock();
    const io = instrumented();
    const { w, events } = await openWriter(dir, { fsync: 'none', clock, fs: io.fsx, retryMs: 1000 });
    for (let i = 1; i <= 10; i++) w.append(message(i), i);
    await w.flush();
    const size = fs.statSync(path.join(dir, segFiles(dir)[0]!)).size;
    io.fail('ENOSPC');
    for (let i = 11; i <= 20; i++) w.append(message(i), i);
    await until(() => events.some((e) => e.type === 'error'), 'the write error reported');
    const err = events.find((e) => e.type === 'error')!;
    expect(err).toMatchObject({ op: 'write', file: path.join(dir, segFiles(dir)[0]!), offset: size, lostFrom: 11, lostTo: 20 });
    expect((err as { error: NodeJS.ErrnoException }).error.code).toBe('ENOSPC');
    // The partial batch is cut off again: the segment ends with its last whole record.
    await until(() => fs.statSync(path.join(dir, segFiles(dir)[0]!)).size === size, 'the segment cut back to its last whole batch');
    // While failing: appends are dropped and counted, not queued.
    expect(w.append(message(21), 21)).toBe(false);
    expect(w.stats()).toMatchObject({ droppedIo: 11, ioErrors: 1 });
    io.fail(null);
    clock.advance(1000);
    expect(w.append(message(22), 22)).toBe(true);
    await w.close();
    expect(events.filter((e) => e.type === 'loss')).toEqual([{ type: 'loss', reason: 'io', fromSeq: 21, toSeq: 21, count: 1 }]);
    expect(readSeqs(dir)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 22]);
  });
});
