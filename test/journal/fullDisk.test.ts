/**
 * A real full disk: a 1 MiB tmpfs mounted for the test (root only; without it the suite
 * is skipped loudly, and faults.test.ts still covers ENOSPC simulated at the write call).
 * The writer reports ENOSPC with the file and offset, never throws or crashes, keeps
 * every segment whole, and writes again once space is freed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { FakeClock } from '../../runtime/clock.js';
import { type CorruptEvent, openJournal } from '../../journal/index.js';
import { describeNeeding } from '../kit/guards.js';
import { until } from '../kit/wait.js';
import { message, openWriter, segFiles, useTinyTmpfs } from './helpers.js';

const { mnt, problem } = useTinyTmpfs('hopbus-journal-tmpfs-');

describeNeeding('tmpfs', problem)('a journal on a full filesystem', () => {
  it('reports ENOSPC with the file and offset, keeps its segments whole, and resumes when space is freed', async () => {
    const dir = path.join(mnt, 'journal');
    const clock = new FakeClock();
    const { w, events } = await openWriter(dir, { fsync: 'always', segmentBytes: 128 * 1024, batchBytes: 16 * 1024, clock, retryMs: 1000 });
    let i = 1;
    // Append until the disk is full and the writer says so.
    while (!events.some((e) => e.type === 'error')) {
      for (let k = 0; k < 100; k++, i++) w.append(message(i, 200), i);
      await new Promise((r) => setImmediate(r));
      expect(i).toBeLessThan(100_000); // 1 MiB holds about 4000 of these
    }
    const err = events.find((e) => e.type === 'error')!;
    if (err.type !== 'error') throw new Error('unreachable');
    expect((err.error as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(err.file.startsWith(dir)).toBe(true);
    expect(err.offset).toBeGreaterThanOrEqual(0);
    await w.flush();
    const st = w.stats();
    expect(st.ioErrors).toBeGreaterThan(0);
    expect(st.droppedIo).toBeGreaterThan(0);
    // While the disk is full, appends are refused and counted.
    expect(w.append(message(i, 200), i++)).toBe(false);

    // What is on disk is whole: every record verifies, seqs ascend, each payload matches its seq.
    const check = () => {
      const bad: CorruptEvent[] = [];
      const seqs: number[] = [];
      openJournal(dir, { onEvent: (e) => bad.push(e) }).forEach({}, (r) => {
        expect(r.payload().toString()).toBe(`m${r.seq}`.padEnd(200, '.'));
        seqs.push(r.seq);
      });
      expect(bad).toEqual([]);
      for (let k = 1; k < seqs.length; k++) expect(seqs[k]).toBeGreaterThan(seqs[k - 1]!);
      return seqs;
    };
    const full = check();
    expect(full[0]).toBe(1);

    // An operator frees space (the two oldest segments); after retryMs the writer writes again.
    for (const s of segFiles(dir).slice(0, 2)) {
      fs.rmSync(path.join(dir, s));
      fs.rmSync(path.join(dir, s.replace('.seg', '.idx')), { force: true });
    }
    clock.advance(1000);
    const writtenBefore = w.stats().written;
    const resumedFrom = i;
    for (let k = 0; k < 50; k++, i++) expect(w.append(message(i, 200), i)).toBe(true);
    await w.flush();
    await until(() => w.stats().written === writtenBefore + 50, 'the 50 records after the space was freed written');
    await w.close();
    const after = check();
    expect(after.slice(-50)).toEqual(Array.from({ length: 50 }, (_, k) => resumedFrom + k));
  });
});
