/**
 * journal/reader.ts: reads a journal directory (journal/segment.ts) in seq order, from a
 * seq or a time to a seq or a time, optionally only the subjects matching some patterns.
 * Two shapes over one loop (ReadLoop):
 *
 *   for await (const r of openJournal(dir).read({ from: { seq: 1000 } })) { ... }   // async iterator
 *   openJournal(dir).forEach({ subjects: 'md.>' }, (r) => { ... });                 // callback loop, synchronous reads
 *
 * Both hand out one RecordView per read, reused for every record (record.ts): nothing is
 * allocated per record unless the callback asks (payload(), a new subject's string).
 * The callback loop reads with synchronous large reads and is the fastest way through a
 * journal (a strategy replaying in-process); the async iterator reads off the event
 * loop's thread and suits a process that does other I/O meanwhile.
 *
 * Seeking: the segment is chosen by its name (its first seq) or by its first record's
 * time, then the segment's index gives the offset of the last indexed record at or
 * before the target; the loop walks from there. A record that does not verify is
 * reported (an event with the file and offset) and skipped: the loop finds the next
 * record that verifies and goes on. Times are compared per segment, through that
 * segment's wall-clock anchor.
 *
 * A reader never writes: it can read a journal while a writer appends to it (it stops at
 * the last whole record it finds) and never repairs one (the writer does, at open).
 * Must not import: broker/, client/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SubjectCache } from '../transports/intern.js';
import { OptionsError } from '../runtime/errors.js';
import { JournalError } from './errors.js';
import { SubjectFilter } from './filter.js';
import { RecordView } from './record.js';
import { SEGMENT_HEADER, type SegmentFile, SegmentCursor, Step, floorIndex, indexPathOf, listSegments, readIndex, recoverSegment } from './segment.js';

/** A position in a journal: a seq, or a wall-clock time in ms since the Unix epoch. */
export type JournalPosition = { seq: number } | { timeMs: number };

export interface ReadOptions {
  /** The first record: the one with this seq (or the next one there is), or the first received at or after this time. Default: the oldest. */
  from?: JournalPosition;
  /** The last record (inclusive): seq at most this, or received at or before this time. Default: the newest. */
  to?: JournalPosition;
  /** Only records whose subject matches one of these patterns. */
  subjects?: string | readonly string[];
}

/** What a read reports; nothing is thrown for bad data. */
export interface CorruptEvent {
  type: 'corrupt';
  file: string;
  offset: number;
  reason: string;
}

export interface OpenJournalOptions {
  /** Bad data found while reading (skipped). Default: a console warning. */
  onEvent?: (e: CorruptEvent) => void;
  /** Bytes read at a time (the buffer grows for a longer record). Default 1 MiB. */
  chunkBytes?: number;
}

function defaultOnEvent(e: CorruptEvent): void {
  console.warn(`journal: corrupt data skipped in ${e.file} at offset ${e.offset}: ${e.reason}`);
}

/** One read's state: which segment, where in it, and the bounds. Used by read() and forEach(). */
class ReadLoop {
  readonly view: RecordView;
  cursor: SegmentCursor | null = null;
  private segIdx: number;
  private buf: Buffer;
  private readonly fromSeq: number;
  private readonly toSeq: number;
  private readonly fromTimeMs: number;
  private readonly toTimeMs: number;
  private fromNs = -Infinity;
  private toNs = Infinity;
  private readonly filter: SubjectFilter | null;
  private first = true;
  private done = false;

  constructor(
    private readonly segs: SegmentFile[],
    opts: ReadOptions,
    chunkBytes: number,
    subjects: SubjectCache,
    private readonly onEvent: (e: CorruptEvent) => void,
  ) {
    this.view = new RecordView(subjects);
    this.buf = Buffer.allocUnsafe(chunkBytes);
    const f = opts.from;
    const t = opts.to;
    this.fromSeq = f !== undefined && 'seq' in f ? f.seq : -Infinity;
    this.fromTimeMs = f !== undefined && 'timeMs' in f ? f.timeMs : -Infinity;
    this.toSeq = t !== undefined && 'seq' in t ? t.seq : Infinity;
    this.toTimeMs = t !== undefined && 'timeMs' in t ? t.timeMs : Infinity;
    this.filter = opts.subjects === undefined ? null : new SubjectFilter(opts.subjects);
    this.segIdx = this.firstSegment();
  }

  /** The segment to start in: by name for a seq, by first record time for a time. */
  private firstSegment(): number {
    const segs = this.segs;
    if (this.fromSeq > -Infinity)
      return Math.max(
        0,
        floorIndex(
          segs.map((s) => s.firstSeq),
          this.fromSeq,
        ),
      );
    if (this.fromTimeMs > -Infinity) {
      let lo = 0;
      let hi = segs.length - 1;
      let found = 0;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        const t = firstTimeMs(segs[mid]!, this.buf);
        if (t !== null && t <= this.fromTimeMs) {
          found = mid;
          lo = mid + 1;
        } else {
          hi = mid - 1;
        }
      }
      return found;
    }
    return 0;
  }

  /** Opens the segment at segIdx into `cursor`; false when it cannot be read (and is skipped). */
  private openSegment(): boolean {
    const file = this.segs[this.segIdx]!;
    let cur: SegmentCursor;
    try {
      cur = this.cursor = new SegmentCursor(file, this.view, this.buf);
    } catch (err) {
      // Deleted by retention since it was listed: nothing to report. Unreadable: reported, skipped.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.onEvent({ type: 'corrupt', file: file.path, offset: 0, reason: `cannot read it: ${(err as Error).message}` });
      return false;
    }
    if (cur.header === null) {
      this.onEvent({ type: 'corrupt', file: file.path, offset: 0, reason: cur.headerProblem });
      return true;
    }
    const off = this.view.wallOffsetMs;
    this.fromNs = this.fromTimeMs > -Infinity ? (this.fromTimeMs - off) * 1e6 : -Infinity;
    this.toNs = this.toTimeMs < Infinity ? (this.toTimeMs - off) * 1e6 : Infinity;
    if (!this.first) return true;
    this.first = false;
    // Seek within the first segment through its index.
    if (this.fromSeq > file.firstSeq || this.fromNs > -Infinity) {
      const idx = readIndex(indexPathOf(file.path));
      const i = this.fromSeq > -Infinity ? floorIndex(idx.seqs, this.fromSeq) : floorIndex(idx.times, this.fromNs - 1);
      if (i >= 0) cur.tryMoveTo(idx.offsets[i]!, idx.seqs[i]!);
    }
    return true;
  }

  /** The next record in range into the view (RECORD), a read needed first (MORE), or the end (END). */
  next(): Step {
    if (this.done) return Step.END;
    for (;;) {
      let cur = this.cursor;
      if (cur === null) {
        if (this.segIdx >= this.segs.length) return this.finish();
        if (!this.openSegment()) {
          this.segIdx++;
          continue;
        }
        cur = this.cursor!;
      }
      const s = cur.step();
      if (s === Step.RECORD) {
        const v = this.view;
        if (v.seq > this.toSeq || v.timeNs > this.toNs) return this.finish();
        if (v.seq < this.fromSeq || v.timeNs < this.fromNs) continue;
        if (this.filter !== null && !this.filter.matches(v.subject())) continue;
        return Step.RECORD;
      }
      if (s === Step.MORE) return Step.MORE;
      if (s === Step.BAD) {
        this.onEvent({ type: 'corrupt', file: cur.file.path, offset: cur.pos, reason: cur.badReason });
        cur.resync();
        continue;
      }
      // The end of this segment. Bytes after its last record are corrupt unless this is the
      // newest segment, where they are a record still being written.
      if (cur.tailBytes > 0 && this.segIdx < this.segs.length - 1) {
        this.onEvent({ type: 'corrupt', file: cur.file.path, offset: cur.pos, reason: cur.badReason });
      }
      this.buf = cur.buffer;
      cur.close();
      this.cursor = null;
      this.segIdx++;
    }
  }

  private finish(): Step.END {
    this.done = true;
    this.close();
    return Step.END;
  }

  close(): void {
    this.cursor?.close();
    this.cursor = null;
  }
}

/** The wall-clock time of a segment's first record, or null when it has none that verifies. */
function firstTimeMs(file: SegmentFile, buf: Buffer): number | null {
  const view = new RecordView();
  let cur: SegmentCursor;
  try {
    cur = new SegmentCursor(file, view, buf);
  } catch {
    return null;
  }
  try {
    if (cur.header === null) return null;
    for (;;) {
      const s = cur.step();
      if (s === Step.RECORD) return view.timeMs();
      if (s === Step.MORE) cur.fillSync();
      else if (s === Step.BAD) cur.resync();
      else return null;
    }
  } finally {
    cur.close();
  }
}

/** A journal directory, opened for reading. */
export class Journal {
  readonly dir: string;
  private readonly onEvent: (e: CorruptEvent) => void;
  private readonly chunkBytes: number;
  // Shared by the reads of this journal: a subject is decoded once, whichever read meets it.
  private readonly subjects = new SubjectCache(4096);

  constructor(dir: string, opts: OpenJournalOptions = {}) {
    this.dir = path.resolve(dir);
    let st: fs.Stats;
    try {
      st = fs.statSync(this.dir);
    } catch (err) {
      throw new JournalError(`cannot open the journal ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
    if (!st.isDirectory()) throw new JournalError(`the journal ${this.dir} is not a directory`);
    this.onEvent = opts.onEvent ?? defaultOnEvent;
    const cb = opts.chunkBytes ?? 1024 * 1024;
    if (!Number.isSafeInteger(cb) || cb < 4096) throw new OptionsError(`chunkBytes must be an integer of at least 4096, got ${String(cb)}`);
    this.chunkBytes = cb;
  }

  /** The segment files now, oldest first (listed again by each read, so new segments are seen). */
  segments(): SegmentFile[] {
    return listSegments(this.dir);
  }

  /**
   * The records in range, in seq order, as an async iterator over one reused view (do
   * not keep it past the loop step). Breaking out of the loop closes the files.
   */
  async *read(opts: ReadOptions = {}): AsyncGenerator<RecordView, void, undefined> {
    const loop = new ReadLoop(this.segments(), opts, this.chunkBytes, this.subjects, this.onEvent);
    try {
      for (;;) {
        const s = loop.next();
        if (s === Step.RECORD) yield loop.view;
        else if (s === Step.MORE) await loop.cursor!.fill();
        else return;
      }
    } finally {
      loop.close();
    }
  }

  /**
   * The records in range, in seq order, each given to `fn` in one reused view; `fn`
   * returning false stops the loop. Synchronous (blocking reads): returns the number of
   * records given to fn.
   */
  forEach(opts: ReadOptions, fn: (r: RecordView) => boolean | void): number {
    const loop = new ReadLoop(this.segments(), opts, this.chunkBytes, this.subjects, this.onEvent);
    let n = 0;
    try {
      for (;;) {
        const s = loop.next();
        if (s === Step.RECORD) {
          n++;
          if (fn(loop.view) === false) break;
        } else if (s === Step.MORE) loop.cursor!.fillSync();
        else break;
      }
    } finally {
      loop.close();
    }
    return n;
  }

  /**
   * The records in range, in seq order, each given to `fn` in one reused view, reading
   * the files asynchronously. `fn` returning a promise is awaited before the next record
   * (a paced or flow-controlled consumer: replay), returning false stops the loop; any
   * other return goes straight on to the next record, with no promise or microtask per
   * record as an async iterator takes. Resolves with the number of records given to fn.
   */
  async each(opts: ReadOptions, fn: (r: RecordView) => boolean | void | Promise<unknown>): Promise<number> {
    const loop = new ReadLoop(this.segments(), opts, this.chunkBytes, this.subjects, this.onEvent);
    let n = 0;
    try {
      for (;;) {
        const s = loop.next();
        if (s === Step.RECORD) {
          n++;
          const ret = fn(loop.view);
          if (ret === false) break;
          if (ret !== undefined && ret !== true) await ret;
        } else if (s === Step.MORE) await loop.cursor!.fill();
        else break;
      }
    } finally {
      loop.close();
    }
    return n;
  }

  /** The seq of the newest whole record, or 0 for an empty journal (reads the newest segment from its last index entry). */
  lastSeq(): number {
    const segs = this.segments();
    const buf = Buffer.allocUnsafe(this.chunkBytes);
    for (let i = segs.length - 1; i >= 0; i--) {
      const st = recoverSegment(segs[i]!, buf, true);
      if (st.end > SEGMENT_HEADER) return st.lastSeq;
    }
    return 0;
  }
}

/** Opens a journal directory for reading (throws JournalError JOURNAL when it is not one). */
export function openJournal(dir: string, opts?: OpenJournalOptions): Journal {
  return new Journal(dir, opts);
}
