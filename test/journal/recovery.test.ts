/**
 * Crash safety and bad data: a writer killed with SIGKILL mid-stream, a torn tail, bytes
 * overwritten in the middle of a segment, a broken segment header. Recovery finds the
 * last whole record, every record read back verifies, the damage is reported with its
 * file and offset and skipped, and appending goes on with the next seq.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CorruptEvent, openJournal, type RecordView } from '../../journal/index.js';
import { dist } from '../kit/dist.js';
import { message, openWriter, segFiles, tmpDir } from './helpers.js';

const read = (dir: string) => {
  const events: CorruptEvent[] = [];
  const recs: { seq: number; payload: string; file: string; offset: number }[] = [];
  openJournal(dir, { onEvent: (e) => events.push(e) }).forEach(
    {},
    (r: RecordView) => void recs.push({ seq: r.seq, payload: r.payload().toString(), file: r.file, offset: r.fileOffset }),
  );
  return { events, recs, seqs: recs.map((r) => r.seq) };
};
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

async function journalOf(n: number, opts: Parameters<typeof openWriter>[1] = {}): Promise<string> {
  const dir = tmpDir();
  const { w } = await openWriter(dir, { fsync: 'none', ...opts });
  for (let i = 1; i <= n; i++) w.append(message(i), i);
  await w.close();
  return dir;
}

describe('a writer killed with SIGKILL mid-stream', () => {
  for (const fsync of ['none', 'interval'] as const) {
    it(`(fsync '${fsync}') leaves only whole records, gap-free up to the last one, at least up to what it had written; appending goes on`, async () => {
      const dir = tmpDir();
      const child = spawn(process.execPath, [path.join(import.meta.dirname, 'fixtures', 'appender.mjs'), dist('journal/index.js'), dir, fsync], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let written = 0;
      const childEvents: string[] = [];
      let out = '';
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
      await new Promise<void>((resolve, reject) => {
        child.on('exit', () => reject(new Error('the appender exited by itself')));
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          let nl: number;
          while ((nl = out.indexOf('\n')) >= 0) {
            const line = out.slice(0, nl);
            out = out.slice(nl + 1);
            if (line.startsWith('written ')) written = Number(line.slice(8));
            if (line.startsWith('event ')) childEvents.push(line);
            // Several segments' worth, then kill it while it is still appending.
            if (written >= 40_000) resolve();
          }
        });
      });
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      expect(childEvents).toEqual([]);

      const { w, events } = await openWriter(dir, { fsync });
      expect(events.filter((e) => e.type !== 'truncated')).toEqual([]);
      const next = w.seq;
      const r1 = read(dir);
      expect(r1.events).toEqual([]);
      expect(segFiles(dir).length).toBeGreaterThan(3);
      // Whole: each record is the one appended with its seq. Gap-free from 1 to the last.
      expect(r1.seqs).toEqual(range(1, next - 1));
      for (const r of r1.recs) expect(r.payload).toBe(`m${r.seq}`.padEnd(16, '.'));
      // A killed process loses nothing it had written: the page cache outlives it.
      expect(next - 1).toBeGreaterThanOrEqual(written);

      for (let i = next; i < next + 100; i++) w.append(message(i), i);
      await w.close();
      const r2 = read(dir);
      expect(r2.events).toEqual([]);
      expect(r2.seqs).toEqual(range(1, next + 99));
    }, 60_000);
  }
});

describe('recovery at open', () => {
  it('cuts a torn tail (a record half written), reports it with the file and offset, and goes on from the last whole record', async () => {
    const dir = await journalOf(100);
    const seg = path.join(dir, segFiles(dir)[0]!);
    const whole = fs.statSync(seg).size;
    // The first 30 bytes of a record with seq 101, as a crash in the middle of a write leaves it.
    const b = Buffer.alloc(256);
    const { encodeRecord } = await import('../../journal/record.js');
    encodeRecord(b, 0, 101, 101, message(101));
    fs.appendFileSync(seg, b.subarray(0, 30));
    const { w, events } = await openWriter(dir, { fsync: 'none' });
    expect(events).toEqual([{ type: 'truncated', file: seg, offset: whole, bytes: 30 }]);
    expect(fs.statSync(seg).size).toBe(whole);
    expect(w.seq).toBe(101);
    w.append(message(101), 101);
    await w.close();
    expect(read(dir).seqs).toEqual(range(1, 101));
  });

  it('removes a segment that never got past its header, and reuses its seq', async () => {
    const dir = await journalOf(10);
    fs.writeFileSync(path.join(dir, '00000000000000000011.seg'), Buffer.alloc(17));
    const { w, events } = await openWriter(dir, { fsync: 'none' });
    expect(events).toEqual([]);
    expect(w.seq).toBe(11);
    expect(segFiles(dir)).toEqual(['00000000000000000001.seg']);
    await w.close();
  });
});

describe('corrupt data', () => {
  it('in the middle of a segment is reported with its file and offset and skipped; the records after it are read', async () => {
    const dir = await journalOf(1000, { segmentBytes: 40 * 1024 });
    const segs = segFiles(dir);
    expect(segs.length).toBeGreaterThan(1);
    const before = read(dir).recs;
    // Overwrite the middle of record 200 (its checksum fails) and the length field of record 400 (not a record at all).
    const r200 = before[199]!;
    const r400 = before[399]!;
    const fd200 = fs.openSync(r200.file, 'r+');
    fs.writeSync(fd200, Buffer.from('XXXX'), 0, 4, r200.offset + 40);
    fs.closeSync(fd200);
    const fd400 = fs.openSync(r400.file, 'r+');
    fs.writeSync(fd400, Buffer.from([0xff, 0xff, 0xff, 0x7f]), 0, 4, r400.offset);
    fs.closeSync(fd400);

    const after = read(dir);
    expect(after.events).toEqual([
      { type: 'corrupt', file: r200.file, offset: r200.offset, reason: 'the record fails its checksum' },
      { type: 'corrupt', file: r400.file, offset: r400.offset, reason: 'not a record (impossible length fields)' },
    ]);
    expect(after.seqs).toEqual(range(1, 1000).filter((s) => s !== 200 && s !== 400));
    for (const r of after.recs) expect(r.payload).toBe(`m${r.seq}`.padEnd(16, '.'));
    // Seeking past it works too, and the async iterator reports the same.
    const events: CorruptEvent[] = [];
    const seqs: number[] = [];
    for await (const r of openJournal(dir, { onEvent: (e) => events.push(e) }).read({ from: { seq: 199 }, to: { seq: 201 } })) seqs.push(r.seq);
    expect(seqs).toEqual([199, 201]);
    expect(events).toHaveLength(1);
  });

  it('in the last segment is reported at open and skipped, and the writer goes on after the last whole record', async () => {
    const dir = await journalOf(300, { indexEveryRecords: 100000, indexEveryBytes: 1 << 30 });
    const before = read(dir).recs;
    const r150 = before[149]!;
    const fd = fs.openSync(r150.file, 'r+');
    fs.writeSync(fd, Buffer.from('garbage!'), 0, 8, r150.offset + 2);
    fs.closeSync(fd);
    const { w, events } = await openWriter(dir, { fsync: 'none' });
    expect(events).toEqual([{ type: 'corrupt', file: r150.file, offset: r150.offset, reason: expect.any(String) }]);
    expect(w.seq).toBe(301);
    w.append(message(301), 301);
    await w.close();
    expect(read(dir).seqs).toEqual(range(1, 301).filter((s) => s !== 150));
  });

  it('a segment whose header is broken is reported and skipped whole; the segments after it are read', async () => {
    const dir = await journalOf(600, { segmentBytes: 8 * 1024 });
    const segs = segFiles(dir);
    const victim = path.join(dir, segs[1]!);
    const fd = fs.openSync(victim, 'r+');
    fs.writeSync(fd, Buffer.from('NOPE'), 0, 4, 0);
    fs.closeSync(fd);
    const { events, seqs } = read(dir);
    expect(events).toEqual([{ type: 'corrupt', file: victim, offset: 0, reason: 'not a journal segment (bad magic)' }]);
    const lost = range(Number(segs[1]!.slice(0, 20)), Number(segs[2]!.slice(0, 20)) - 1);
    expect(seqs).toEqual(range(1, 600).filter((s) => !lost.includes(s)));
  });
});
