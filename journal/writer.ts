/**
 * journal/writer.ts: records messages into a journal directory (journal/segment.ts),
 * off the caller's hot path. docs/JOURNAL.md describes the promises; this comment says
 * how the code keeps them.
 *
 *   append() ──encode──> current batch ──seal──> queue ──pump──> write(segment) ──> index ──> fsync (policy)
 *            (one copy)  (one Buffer)            (bounded)       (one writev for the batches queued)
 *
 * - append() copies the message's bytes into the current batch buffer (record.ts), gives
 *   it the next sequence and returns at once. Nothing else happens per message: no
 *   syscall, no promise, no timer.
 * - Smart batching, no timer: when the pump is idle the batch is sealed and written on the
 *   next turn of the event loop (setImmediate); while a write is in flight, records
 *   gather behind it and leave together in the next write. Under load batches grow to
 *   `batchBytes`, and the batches queued behind a write in flight leave in one writev:
 *   the pump gets one turn of the event loop per write, and a caller that appends more
 *   than a batch per turn (a broker routing a burst) must not outrun one batch per turn.
 *   When idle a record reaches the file within one loop turn.
 * - The bound: every batch buffer (current, queued, being written) counts against
 *   `maxPendingBytes`. When a record cannot have room under it, the record is dropped:
 *   append() returns false, `stats.dropped` counts it, and a `loss` event tells the run of
 *   drops when it ends. A dropped record still consumes its sequence, so the journal
 *   itself shows the loss: a gap of k seqs is k messages that arrived and were not
 *   recorded (dropped at the bound, or in a batch whose write failed).
 * - fsync: 'none' never (the OS writes back when it likes); 'always' after every batch
 *   write, before the next one; 'interval' when the oldest unsynced record has waited
 *   `fsyncIntervalMs` (a Clock timer, so tests drive it with FakeClock).
 * - I/O errors (ENOSPC, EIO, ...) never throw at the caller: an `error` event names the
 *   operation, the file and the offset; the batch's records are counted as dropped; the
 *   segment is cut back to its last whole batch (or, if that fails too, the next batch
 *   starts a new segment); for `retryMs` appends are dropped (counted) rather than
 *   written, then writing is tried again.
 * - Retention deletes whole closed segments (never the one being written), oldest first,
 *   while the journal is over `maxBytes` or a segment's newest record is older than
 *   `maxAgeMs`; checked when a segment is closed and every min(maxAgeMs, 60 s).
 *
 * Opening recovers the directory first (segment.ts recoverSegment): the last segment is
 * walked to its last whole record, a torn tail is cut off, and appending resumes with the
 * next sequence in a new segment.
 *
 * Threading: one thread, the caller's; the file operations run on libuv's pool.
 * Must not import: broker/, client/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Clock, type Timer, monoNs, realClock } from '../runtime/clock.js';
import { OptionsError } from '../runtime/errors.js';
import { JournalError } from './errors.js';
import { MAX_RECORD_BYTES, RECORD_HEADER, type RecordSource, encodeRecord, recordSize } from './record.js';
import {
  INDEX_ENTRY,
  MAX_SEGMENT_BYTES,
  SEGMENT_HEADER,
  type SegmentFile,
  encodeIndexEntry,
  encodeSegmentHeader,
  indexPathOf,
  listSegments,
  readIndex,
  recoverSegment,
  segmentName,
} from './segment.js';

export type FsyncPolicy = 'none' | 'interval' | 'always';

/** At most this many batches in one writev (IOV_MAX is 1024 on Linux). */
const MAX_RUN = 64;

/** The file in a journal directory that names the process writing it. */
export const LOCK_FILE = 'writer.lock';

/** The directories this process has a writer open on. */
const openDirs = new Set<string>();

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Defaults of the options users tune, each with its reason. */
export const JOURNAL_DEFAULTS = {
  /** A segment is closed and a new one begun past this size: small enough to delete often, large enough to be few files. */
  segmentBytes: 64 * 1024 * 1024,
  /** The largest single write: large sequential writes, a bounded latency per write. */
  batchBytes: 1024 * 1024,
  /** Memory between the caller and the disk: 16 batches of 1 MiB, about a quarter second of a fast disk. */
  maxPendingBytes: 16 * 1024 * 1024,
  fsync: 'interval' as FsyncPolicy,
  /** 'interval': fsync at most this long after a record arrived (plus the writes ahead of it), half the 1 s promised. */
  fsyncIntervalMs: 500,
  /** An index entry every this many records, or ... */
  indexEveryRecords: 1024,
  /** ... every this many bytes, whichever comes first: a seek reads at most about this much to find its record. */
  indexEveryBytes: 256 * 1024,
  /** After an I/O error, appends are dropped (and counted) this long before a write is tried again. */
  retryMs: 1000,
} as const;

/** The file operations the writer uses, replaceable so that tests can make them fail (ENOSPC at the write call). */
export interface JournalFs {
  open(p: string, flags: string): Promise<number>;
  write(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number>;
  /** Several buffers at once from `pos`; without it, batches are written one by one. Returns the bytes written. */
  writev?(fd: number, bufs: Buffer[], pos: number): Promise<number>;
  fsync(fd: number): Promise<void>;
  ftruncate(fd: number, len: number): Promise<void>;
  close(fd: number): Promise<void>;
  unlink(p: string): Promise<void>;
}

function cb<T>(fn: (done: (err: NodeJS.ErrnoException | null, v?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));
}

/** Node's fs, through its callback API (no FileHandle objects). */
export const nodeJournalFs: JournalFs = {
  open: (p, flags) => cb<number>((d) => fs.open(p, flags, 0o644, d)),
  write: (fd, buf, off, len, pos) => cb<number>((d) => fs.write(fd, buf, off, len, pos, d)),
  writev: (fd, bufs, pos) => cb<number>((d) => fs.writev(fd, bufs, pos, d)),
  fsync: (fd) => cb<void>((d) => fs.fsync(fd, d)),
  ftruncate: (fd, len) => cb<void>((d) => fs.ftruncate(fd, len, d)),
  close: (fd) => cb<void>((d) => fs.close(fd, d)),
  unlink: (p) => cb<void>((d) => fs.unlink(p, d)),
};

/** What the writer reports. None of these is thrown: they arrive through `onEvent`. */
export type JournalEvent =
  /** A file operation failed: `op` on `file` at byte `offset`; `lostFrom..lostTo` (seqs) were not recorded (0, 0 when none). */
  | {
      type: 'error';
      op: 'open' | 'write' | 'index' | 'fsync' | 'truncate' | 'close' | 'unlink';
      file: string;
      offset: number;
      error: Error;
      lostFrom: number;
      lostTo: number;
    }
  /** A run of `count` records (seqs from..to) was not recorded: the bound was reached ('full'), or writing was failing ('io'). */
  | { type: 'loss'; reason: 'full' | 'io' | 'too-large'; fromSeq: number; toSeq: number; count: number }
  /** Recovery cut a torn tail: `bytes` bytes from `offset` of `file` were not a whole record. */
  | { type: 'truncated'; file: string; offset: number; bytes: number }
  /** Recovery found bytes that are not a record at `offset` of `file`, followed by good records: they are skipped. */
  | { type: 'corrupt'; file: string; offset: number; reason: string }
  /** Retention deleted a whole segment. */
  | { type: 'retention'; file: string; bytes: number; reason: 'maxBytes' | 'maxAgeMs' };

export interface JournalWriterOptions {
  /** The journal directory (created if missing). */
  dir: string;
  segmentBytes?: number;
  /** Retention: the journal's files add up to at most this (the segment being written excepted). */
  maxBytes?: number;
  /** Retention: a closed segment whose newest record is older than this is deleted. */
  maxAgeMs?: number;
  fsync?: FsyncPolicy;
  /** 'interval' only: 1..1000 ms. */
  fsyncIntervalMs?: number;
  batchBytes?: number;
  maxPendingBytes?: number;
  indexEveryRecords?: number;
  indexEveryBytes?: number;
  retryMs?: number;
  /** Timers (fsync interval, I/O retry, retention); FakeClock in tests. */
  clock?: Clock;
  /** Wall-clock ms since the Unix epoch (segment anchors, retention by age). Default Date.now. */
  wallClock?: () => number;
  /** Monotonic ns (segment anchors). Default runtime/clock monoNs. */
  monoClock?: () => number;
  /** The first seq of an empty journal. Default 1. */
  firstSeq?: number;
  onEvent?: (e: JournalEvent) => void;
  fs?: JournalFs;
}

export interface JournalWriterStats {
  /** The seq the next append gets. */
  nextSeq: number;
  /** Records accepted by append() (encoded into a batch). */
  appended: number;
  /** Records and bytes written to segment files. */
  written: number;
  writtenBytes: number;
  /** Seq of the last record written, and of the last one covered by a completed fsync. */
  writtenSeq: number;
  syncedSeq: number;
  /** Writes (batches) and fsyncs done. */
  writes: number;
  fsyncs: number;
  /** Records not recorded, all reasons, and by reason. */
  dropped: number;
  droppedFull: number;
  droppedIo: number;
  droppedTooLarge: number;
  /** File operations that failed. */
  ioErrors: number;
  /** Bytes of batch buffers in use now, and the bound. */
  pendingBytes: number;
  maxPendingBytes: number;
  /** Segment files in the directory, and their bytes with their indexes (as far as this writer knows). */
  segments: number;
  bytes: number;
  /** Segments deleted by retention. */
  deletedSegments: number;
}

interface Batch {
  buf: Buffer;
  len: number;
  records: number;
  firstSeq: number;
  lastSeq: number;
  /** The first record starts a new segment (a roll was decided at append). */
  newSegment: boolean;
  /** Index entries: seq, time, offset from the batch's start. */
  idxSeq: number[];
  idxTime: number[];
  idxRel: number[];
  /** Came from the pool (batchBytes long) and goes back to it. */
  pooled: boolean;
}

interface OpenSegment {
  path: string;
  idxPath: string;
  fd: number;
  idxFd: number;
  /** Bytes in the file (header included) and in its index. */
  end: number;
  idxEnd: number;
  /** A write failed and could not be undone: the next batch starts a new segment. */
  broken: boolean;
}

interface ClosedSegment {
  path: string;
  idxPath: string;
  bytes: number;
  /** When its newest record was written, wall ms (file mtime for segments found at open). */
  lastWallMs: number;
}

function positiveInt(name: string, v: number | undefined, dflt: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < 1 || v > max) throw new OptionsError(`journal option ${name} must be an integer from 1 to ${max}, got ${String(v)}`);
  return v;
}

/** Prints what must not go unnoticed when the caller gave no onEvent. */
function defaultOnEvent(e: JournalEvent): void {
  if (e.type === 'error') console.warn(`journal: ${e.op} failed on ${e.file} at offset ${e.offset}: ${e.error.message}`);
  else if (e.type === 'loss') console.warn(`journal: ${e.count} records not recorded (${e.reason}), seqs ${e.fromSeq}..${e.toSeq}`);
  else if (e.type === 'corrupt') console.warn(`journal: corrupt data skipped in ${e.file} at offset ${e.offset}: ${e.reason}`);
  else if (e.type === 'truncated') console.warn(`journal: torn tail of ${e.bytes} bytes cut from ${e.file} at offset ${e.offset}`);
}

export class JournalWriter {
  readonly dir: string;
  readonly fsyncPolicy: FsyncPolicy;
  private readonly segmentBytes: number;
  private readonly batchBytes: number;
  private readonly maxPendingBytes: number;
  /** No record longer than this can ever be taken: MAX_RECORD_BYTES, or the whole bound if smaller. */
  private readonly maxRecordBytes: number;
  private readonly maxBytes: number | undefined;
  private readonly maxAgeMs: number | undefined;
  private readonly fsyncIntervalMs: number;
  private readonly indexEveryRecords: number;
  private readonly indexEveryBytes: number;
  private readonly retryMs: number;
  private readonly clock: Clock;
  private readonly wallClock: () => number;
  private readonly monoClock: () => number;
  private readonly onEvent: (e: JournalEvent) => void;
  private readonly fs: JournalFs;

  private nextSeq = 1;
  /** The seq of the last record taken into a batch (what flush() waits for). */
  private lastTaken = 0;
  // Append side: the logical segment (what has been given to batches, written or not).
  private segLogicalBytes = SEGMENT_HEADER;
  private segLogicalRecords = 0;
  /** The next record starts a new segment (after open, and when the current one is full). */
  private rollNext = true;
  private recsSinceIdx = 0;
  private bytesSinceIdx = 0;
  private cur: Batch | null = null;
  private readonly queue: Batch[] = [];
  /** The batches of one write, and their buffers for writev (reused). */
  private readonly run: Batch[] = [];
  private readonly iov: Buffer[] = [];
  private readonly pool: Buffer[] = [];
  private pendingBytes = 0;
  // Drops: the current run.
  private lossReason: 'full' | 'io' | 'too-large' | null = null;
  private lossFrom = 0;
  private lossTo = 0;
  private lossCount = 0;
  private failedUntil = -Infinity;
  // Pump side.
  private seg: OpenSegment | null = null;
  private readonly closedSegs: ClosedSegment[] = [];
  private pumping: Promise<void> | null = null;
  private kickScheduled = false;
  private syncDue = false;
  /** While >= 0: an fsync is to follow the write of this seq. */
  private syncTarget = -1;
  private syncTimer: Timer | null = null;
  private retentionTimer: Timer | null = null;
  private retaining: Promise<void> | null = null;
  private idxScratch = Buffer.alloc(INDEX_ENTRY * 64);
  private doneSeq = 0;
  private readonly waiters: { seq: number; resolve: () => void }[] = [];
  private closed = false;
  private locked = false;
  private readonly st: Omit<JournalWriterStats, 'nextSeq' | 'pendingBytes' | 'maxPendingBytes' | 'segments' | 'bytes'> = {
    appended: 0,
    written: 0,
    writtenBytes: 0,
    writtenSeq: 0,
    syncedSeq: 0,
    writes: 0,
    fsyncs: 0,
    dropped: 0,
    droppedFull: 0,
    droppedIo: 0,
    droppedTooLarge: 0,
    ioErrors: 0,
    deletedSegments: 0,
  };

  /** Opens (and first recovers) a journal directory for appending. */
  static async open(opts: JournalWriterOptions): Promise<JournalWriter> {
    const w = new JournalWriter(opts);
    try {
      await fs.promises.mkdir(w.dir, { recursive: true });
    } catch (err) {
      throw new JournalError(`cannot create the journal directory ${w.dir}: ${(err as Error).message}`, { cause: err });
    }
    try {
      w.lock();
      w.recover();
    } catch (err) {
      w.unlock();
      if (err instanceof JournalError) throw err;
      throw new JournalError(`cannot recover the journal ${w.dir}: ${(err as Error).message}`, { cause: err });
    }
    if (w.maxAgeMs !== undefined) {
      w.retentionTimer = w.clock.interval(() => void w.enforceRetention(), Math.min(w.maxAgeMs, 60_000)).unref();
    }
    return w;
  }

  private constructor(o: JournalWriterOptions) {
    if (typeof o.dir !== 'string' || o.dir === '') throw new OptionsError('journal option dir must be a directory path');
    const d = JOURNAL_DEFAULTS;
    this.dir = path.resolve(o.dir);
    this.fsyncPolicy = o.fsync ?? d.fsync;
    if (this.fsyncPolicy !== 'none' && this.fsyncPolicy !== 'interval' && this.fsyncPolicy !== 'always')
      throw new OptionsError(`journal option fsync must be 'none', 'interval' or 'always', got ${String(this.fsyncPolicy)}`);
    this.segmentBytes = positiveInt('segmentBytes', o.segmentBytes, d.segmentBytes, MAX_SEGMENT_BYTES - MAX_RECORD_BYTES);
    this.batchBytes = positiveInt('batchBytes', o.batchBytes, d.batchBytes, 256 * 1024 * 1024);
    this.maxPendingBytes = positiveInt('maxPendingBytes', o.maxPendingBytes, Math.max(d.maxPendingBytes, this.batchBytes * 2));
    if (this.maxPendingBytes < this.batchBytes)
      throw new OptionsError(`journal option maxPendingBytes (${this.maxPendingBytes}) must hold at least one batch (batchBytes ${this.batchBytes})`);
    this.maxRecordBytes = Math.min(MAX_RECORD_BYTES, this.maxPendingBytes);
    this.maxBytes = o.maxBytes === undefined ? undefined : positiveInt('maxBytes', o.maxBytes, 0);
    this.maxAgeMs = o.maxAgeMs === undefined ? undefined : positiveInt('maxAgeMs', o.maxAgeMs, 0);
    this.fsyncIntervalMs = positiveInt('fsyncIntervalMs', o.fsyncIntervalMs, d.fsyncIntervalMs, 1000);
    this.indexEveryRecords = positiveInt('indexEveryRecords', o.indexEveryRecords, d.indexEveryRecords);
    this.indexEveryBytes = positiveInt('indexEveryBytes', o.indexEveryBytes, d.indexEveryBytes);
    this.retryMs = positiveInt('retryMs', o.retryMs, d.retryMs);
    this.clock = o.clock ?? realClock;
    this.wallClock = o.wallClock ?? Date.now;
    this.monoClock = o.monoClock ?? monoNs;
    this.onEvent = o.onEvent ?? defaultOnEvent;
    this.fs = o.fs ?? nodeJournalFs;
    this.nextSeq = positiveInt('firstSeq', o.firstSeq, 1);
  }

  // --- one writer per directory ---------------------------------------------------------

  /**
   * Takes the directory's lock file (`writer.lock`, holding the pid). A lock left by a
   * process that is gone (killed with SIGKILL) is taken over; one held by a live process
   * is refused: two writers would interleave their segments.
   */
  private lock(): void {
    const p = path.join(this.dir, LOCK_FILE);
    const held = Number(fs.readFileSync(p, { encoding: 'utf8', flag: 'a+' }).trim());
    if (openDirs.has(this.dir) || (Number.isSafeInteger(held) && held > 0 && held !== process.pid && processAlive(held))) {
      throw new JournalError(`the journal ${this.dir} is being written by process ${held} (${p}); one writer per directory, close the other first`);
    }
    fs.writeFileSync(p, `${process.pid}\n`);
    openDirs.add(this.dir);
    this.locked = true;
  }

  private unlock(): void {
    if (!this.locked) return;
    this.locked = false;
    openDirs.delete(this.dir);
    fs.rmSync(path.join(this.dir, LOCK_FILE), { force: true });
  }

  // --- recovery -------------------------------------------------------------------------

  /** Finds where the journal ends: the last whole record of the last non-empty segment. */
  private recover(): void {
    const segs = listSegments(this.dir);
    const buf = Buffer.allocUnsafe(1024 * 1024);
    while (segs.length > 0) {
      const last = segs[segs.length - 1]!;
      const st = recoverSegment(last, buf, true);
      const size = fs.statSync(last.path).size;
      if (st.headerProblem !== '') {
        if (size <= SEGMENT_HEADER) {
          // Created, never written past its header: nothing was lost.
          this.removeSync(last);
          segs.pop();
          this.nextSeq = Math.max(this.nextSeq, last.firstSeq);
          continue;
        }
        this.onEvent({ type: 'corrupt', file: last.path, offset: 0, reason: st.headerProblem });
        // Its records cannot be trusted nor counted: the next seq is above any it could hold.
        this.nextSeq = Math.max(this.nextSeq, last.firstSeq + Math.ceil(size / (RECORD_HEADER + 1)));
        break;
      }
      for (const c of st.corrupt) this.onEvent({ type: 'corrupt', file: last.path, offset: c.offset, reason: c.reason });
      if (st.tailBytes > 0) {
        fs.truncateSync(last.path, st.end);
        this.onEvent({ type: 'truncated', file: last.path, offset: st.end, bytes: st.tailBytes });
      }
      this.trimIndexSync(last, st.end);
      if (st.records === 0 && st.corrupt.length === 0) {
        this.removeSync(last);
        segs.pop();
        this.nextSeq = Math.max(this.nextSeq, last.firstSeq);
        continue;
      }
      this.nextSeq = Math.max(this.nextSeq, st.lastSeq + 1);
      break;
    }
    for (const s of segs) {
      const ip = indexPathOf(s.path);
      const stat = fs.statSync(s.path);
      const ib = fs.statSync(ip, { throwIfNoEntry: false })?.size ?? 0;
      this.closedSegs.push({ path: s.path, idxPath: ip, bytes: stat.size + ib, lastWallMs: stat.mtimeMs });
    }
    this.doneSeq = this.lastTaken = this.nextSeq - 1;
    this.st.writtenSeq = this.st.syncedSeq = this.nextSeq - 1;
  }

  private removeSync(s: SegmentFile): void {
    fs.rmSync(s.path, { force: true });
    fs.rmSync(indexPathOf(s.path), { force: true });
  }

  /** Cuts an index to its entries that point below `end` (and to whole entries). */
  private trimIndexSync(s: SegmentFile, end: number): void {
    const ip = indexPathOf(s.path);
    let size: number;
    try {
      size = fs.statSync(ip).size;
    } catch {
      return;
    }
    const idx = readIndex(ip);
    let keep = 0;
    while (keep < idx.offsets.length && idx.offsets[keep]! < end) keep++;
    if (keep * INDEX_ENTRY !== size) fs.truncateSync(ip, keep * INDEX_ENTRY);
  }

  // --- the caller's side ----------------------------------------------------------------

  /**
   * Records one message: its bytes as `src` lays them out (the broker passes the MsgView
   * of the frame it routes) and the broker's receive time, monotonic ns. Returns true
   * when the record was taken, false when it was dropped (counted, and reported as a
   * `loss` event when the run of drops ends) or the writer is closed. Never throws for
   * I/O; allocates nothing once the batch pool has warmed up.
   */
  append(src: RecordSource, timeNs: number): boolean {
    if (this.closed) return false;
    const size = recordSize(src);
    const seq = this.nextSeq++;
    if (size > this.maxRecordBytes) return this.drop(seq, 'too-large');
    if (this.failedUntil > -Infinity) {
      if (this.clock.now() < this.failedUntil) return this.drop(seq, 'io');
      this.failedUntil = -Infinity;
    }
    if (this.segLogicalRecords > 0 && this.segLogicalBytes + size > this.segmentBytes) this.rollNext = true;
    let b = this.cur;
    if (b === null || this.rollNext || b.len + size > b.buf.length) {
      if (b !== null) this.seal();
      b = this.newBatch(size);
      // At the bound: the record is dropped; a roll that was due stays due for the next one.
      if (b === null) return this.drop(seq, 'full');
      b.firstSeq = seq;
      if (this.rollNext) {
        b.newSegment = true;
        this.rollNext = false;
        this.segLogicalBytes = SEGMENT_HEADER;
        this.segLogicalRecords = 0;
      }
      this.cur = b;
    }
    if (this.segLogicalRecords === 0 || this.recsSinceIdx >= this.indexEveryRecords || this.bytesSinceIdx >= this.indexEveryBytes) {
      b.idxSeq.push(seq);
      b.idxTime.push(timeNs);
      b.idxRel.push(b.len);
      this.recsSinceIdx = 0;
      this.bytesSinceIdx = 0;
    }
    b.len += encodeRecord(b.buf, b.len, seq, timeNs, src);
    b.records++;
    b.lastSeq = seq;
    this.lastTaken = seq;
    this.segLogicalBytes += size;
    this.segLogicalRecords++;
    this.recsSinceIdx++;
    this.bytesSinceIdx += size;
    this.st.appended++;
    if (this.lossReason !== null) this.endLoss();
    if (this.fsyncPolicy === 'interval' && this.syncTimer === null) {
      this.syncTimer = this.clock.timeout(this.onSyncDue, this.fsyncIntervalMs);
    }
    if (!this.kickScheduled && this.pumping === null) {
      this.kickScheduled = true;
      setImmediate(this.kick);
    }
    return true;
  }

  /**
   * Writes everything appended so far and, unless fsync is 'none', fsyncs it; resolves
   * when that is done. It does not reject: what failed was reported as events (and the
   * records counted as dropped).
   */
  flush(): Promise<void> {
    const target = this.lastTaken;
    if (this.settledSeq() >= target && this.cur === null && this.queue.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.waiters.push({ seq: target, resolve });
      if (this.fsyncPolicy !== 'none') this.syncDue = true;
      this.kickNow();
    });
  }

  /** Stops taking records, writes and fsyncs (unless 'none') what was taken, closes the files. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    this.clock.clear(this.syncTimer);
    this.clock.clear(this.retentionTimer);
    this.syncTimer = this.retentionTimer = null;
    while (this.pumping !== null) await this.pumping;
    if (this.seg !== null) await this.closeSegment(this.seg);
    this.seg = null;
    if (this.lossReason !== null) this.endLoss();
    this.unlock();
  }

  /** Counters (a new object each call; for monitoring, not per message). */
  stats(): JournalWriterStats {
    let bytes = this.seg === null ? 0 : this.seg.end + this.seg.idxEnd;
    for (const c of this.closedSegs) bytes += c.bytes;
    return {
      ...this.st,
      nextSeq: this.nextSeq,
      pendingBytes: this.pendingBytes,
      maxPendingBytes: this.maxPendingBytes,
      segments: this.closedSegs.length + (this.seg === null ? 0 : 1),
      bytes,
    };
  }

  /** The seq the next append will get. */
  get seq(): number {
    return this.nextSeq;
  }

  private drop(seq: number, reason: 'full' | 'io' | 'too-large'): false {
    if (this.lossReason !== reason) {
      if (this.lossReason !== null) this.endLoss();
      this.lossReason = reason;
      this.lossFrom = seq;
      this.lossCount = 0;
    }
    this.lossTo = seq;
    this.lossCount++;
    this.st.dropped++;
    if (reason === 'full') this.st.droppedFull++;
    else if (reason === 'io') this.st.droppedIo++;
    else this.st.droppedTooLarge++;
    return false;
  }

  private endLoss(): void {
    const e: JournalEvent = { type: 'loss', reason: this.lossReason!, fromSeq: this.lossFrom, toSeq: this.lossTo, count: this.lossCount };
    this.lossReason = null;
    this.onEvent(e);
  }

  /** A batch buffer with room for `size`, within the bound; null at the bound. */
  private newBatch(size: number): Batch | null {
    const pooled = size <= this.batchBytes;
    const cap = pooled ? this.batchBytes : size;
    if (this.pendingBytes + cap > this.maxPendingBytes) return null;
    this.pendingBytes += cap;
    const buf = pooled ? (this.pool.pop() ?? Buffer.allocUnsafe(cap)) : Buffer.allocUnsafe(cap);
    return { buf, len: 0, records: 0, firstSeq: 0, lastSeq: 0, newSegment: false, idxSeq: [], idxTime: [], idxRel: [], pooled };
  }

  private releaseBatch(b: Batch): void {
    this.pendingBytes -= b.buf.length;
    if (b.pooled) this.pool.push(b.buf);
  }

  private seal(): void {
    const b = this.cur;
    this.cur = null;
    if (b === null) return;
    if (b.records === 0) {
      this.releaseBatch(b);
      return;
    }
    this.queue.push(b);
  }

  private readonly kick = (): void => {
    this.kickScheduled = false;
    this.kickNow();
  };

  private kickNow(): void {
    if (this.pumping !== null) return;
    this.pumping = this.pump()
      .catch((err: unknown) => this.report('write', this.seg?.path ?? this.dir, this.seg?.end ?? 0, err))
      .finally(() => {
        this.pumping = null;
        // Work that arrived while the last step was awaited.
        if (this.cur !== null || this.queue.length > 0 || this.syncDue) this.kickNow();
      });
  }

  private readonly onSyncDue = (): void => {
    this.syncTimer = null;
    this.syncDue = true;
    this.kickNow();
  };

  private settledSeq(): number {
    return this.fsyncPolicy === 'none' ? this.doneSeq : this.st.syncedSeq;
  }

  private resolveWaiters(): void {
    const s = this.settledSeq();
    for (let i = 0; i < this.waiters.length;) {
      if (this.waiters[i]!.seq <= s) {
        this.waiters[i]!.resolve();
        this.waiters.splice(i, 1);
      } else {
        i++;
      }
    }
  }

  // --- the disk's side ------------------------------------------------------------------

  private async pump(): Promise<void> {
    for (;;) {
      // An fsync that fell due covers what was appended before it: seal that, write it, then fsync.
      if (this.syncDue && this.syncTarget < 0) {
        this.syncDue = false;
        this.clock.clear(this.syncTimer);
        this.syncTimer = null;
        this.seal();
        this.syncTarget = this.queue.length > 0 ? this.queue[this.queue.length - 1]!.lastSeq : this.doneSeq;
      }
      if (this.syncTarget >= 0 && this.doneSeq >= this.syncTarget) {
        if (this.fsyncPolicy !== 'none') await this.syncOpen();
        this.st.syncedSeq = this.doneSeq;
        this.syncTarget = -1;
        this.resolveWaiters();
        continue;
      }
      if (this.queue.length === 0) this.seal();
      if (this.queue.length === 0) break;
      // The batches queued, up to the next that starts a segment, in one write.
      const run = this.run;
      run.length = 0;
      run.push(this.queue.shift()!);
      if (this.fs.writev !== undefined) while (this.queue.length > 0 && !this.queue[0]!.newSegment && run.length < MAX_RUN) run.push(this.queue.shift()!);
      try {
        await this.writeBatches(run);
      } finally {
        for (const b of run) this.releaseBatch(b);
      }
      this.doneSeq = run[run.length - 1]!.lastSeq;
      run.length = 0;
      if (this.fsyncPolicy === 'none') this.resolveWaiters();
    }
  }

  private report(op: Extract<JournalEvent, { type: 'error' }>['op'], file: string, offset: number, err: unknown, lostFrom = 0, lostTo = 0): void {
    this.st.ioErrors++;
    this.onEvent({ type: 'error', op, file, offset, error: err as Error, lostFrom, lostTo });
  }

  private lose(b: Batch): void {
    this.st.dropped += b.records;
    this.st.droppedIo += b.records;
    this.failedUntil = this.clock.now() + this.retryMs;
  }

  private async writeAll(fd: number, buf: Buffer, len: number, pos: number): Promise<void> {
    let done = 0;
    while (done < len) done += await this.fs.write(fd, buf, done, len - done, pos + done);
  }

  /** The batches' bytes end to end from `pos`: one writev, the rest (a short write) one by one. */
  private async writeAllv(fd: number, run: readonly Batch[], pos: number): Promise<void> {
    const bufs = this.iov;
    bufs.length = 0;
    let total = 0;
    for (const b of run) {
      bufs.push(b.len === b.buf.length ? b.buf : b.buf.subarray(0, b.len));
      total += b.len;
    }
    let done = await this.fs.writev!(fd, bufs, pos);
    bufs.length = 0;
    // A short write: the rest batch by batch, from where it stopped.
    for (let i = 0, start = 0; i < run.length && done < total; start += run[i]!.len, i++) {
      const b = run[i]!;
      const end = start + b.len;
      if (done >= end) continue;
      const from = done - start;
      await this.writeAll(fd, b.buf.subarray(from, b.len), b.len - from, pos + done);
      done = end;
    }
  }

  /** Writes a run of batches (only the first may start a segment) and their index entries. */
  private async writeBatches(run: readonly Batch[]): Promise<void> {
    const first = run[0]!;
    const last = run[run.length - 1]!;
    let seg = this.seg;
    if (first.newSegment || seg === null || seg.broken) {
      if (seg !== null) await this.closeSegment(seg);
      this.seg = seg = await this.openSegment(first.firstSeq);
      if (seg === null) {
        for (const b of run) this.lose(b);
        return;
      }
      void this.enforceRetention();
    }
    const at = seg.end;
    let len = 0;
    for (const b of run) len += b.len;
    try {
      if (run.length === 1) await this.writeAll(seg.fd, first.buf, first.len, at);
      else await this.writeAllv(seg.fd, run, at);
    } catch (err) {
      this.report('write', seg.path, at, err, first.firstSeq, last.lastSeq);
      for (const b of run) this.lose(b);
      try {
        await this.fs.ftruncate(seg.fd, at);
      } catch (err2) {
        this.report('truncate', seg.path, at, err2);
        seg.broken = true;
      }
      return;
    }
    seg.end += len;
    this.st.writes++;
    let n = 0;
    for (const b of run) {
      this.st.written += b.records;
      n += b.idxSeq.length;
    }
    this.st.writtenBytes += len;
    this.st.writtenSeq = last.lastSeq;
    if (n > 0 && seg.idxFd >= 0) {
      if (this.idxScratch.length < n * INDEX_ENTRY) this.idxScratch = Buffer.alloc(n * INDEX_ENTRY * 2);
      let k = 0;
      let base = at;
      for (const b of run) {
        for (let i = 0; i < b.idxSeq.length; i++, k++) encodeIndexEntry(this.idxScratch, k * INDEX_ENTRY, b.idxSeq[i]!, b.idxTime[i]!, base + b.idxRel[i]!);
        base += b.len;
      }
      try {
        await this.writeAll(seg.idxFd, this.idxScratch, n * INDEX_ENTRY, seg.idxEnd);
        seg.idxEnd += n * INDEX_ENTRY;
      } catch (err) {
        // The index is a hint (readers verify it and fall back to a scan): stop extending this one.
        this.report('index', seg.idxPath, seg.idxEnd, err);
        const fd = seg.idxFd;
        seg.idxFd = -1;
        await this.fs.close(fd).catch(() => undefined);
      }
    }
    for (const b of run) b.idxSeq.length = b.idxTime.length = b.idxRel.length = 0;
    if (this.fsyncPolicy === 'always') {
      await this.syncOpen();
      this.st.syncedSeq = last.lastSeq;
      this.resolveWaiters();
    }
  }

  private async syncOpen(): Promise<void> {
    if (this.seg !== null) await this.syncSegment(this.seg);
  }

  private async syncSegment(seg: OpenSegment): Promise<void> {
    try {
      await this.fs.fsync(seg.fd);
      this.st.fsyncs++;
    } catch (err) {
      this.report('fsync', seg.path, seg.end, err);
    }
  }

  private async openSegment(firstSeq: number): Promise<OpenSegment | null> {
    const p = path.join(this.dir, segmentName(firstSeq));
    const ip = indexPathOf(p);
    let fd = -1;
    try {
      fd = await this.fs.open(p, 'w');
      await this.writeAll(fd, encodeSegmentHeader({ firstSeq, wallMs: this.wallClock(), monoNs: this.monoClock() }), SEGMENT_HEADER, 0);
    } catch (err) {
      this.report('open', p, 0, err);
      if (fd >= 0) await this.fs.close(fd).catch(() => undefined);
      await this.fs.unlink(p).catch(() => undefined);
      return null;
    }
    let idxFd = -1;
    try {
      idxFd = await this.fs.open(ip, 'w');
    } catch (err) {
      this.report('open', ip, 0, err);
    }
    if (this.fsyncPolicy !== 'none') await this.syncDir();
    return { path: p, idxPath: ip, fd, idxFd, end: SEGMENT_HEADER, idxEnd: 0, broken: false };
  }

  /** Makes a new file's name durable (a crash after the fsync of its data must not lose the file); best effort. */
  private async syncDir(): Promise<void> {
    // Node's fs, not the replaceable one: this is not the data's path, and its failure is not reported.
    let fd = -1;
    try {
      fd = await nodeJournalFs.open(this.dir, 'r');
      await nodeJournalFs.fsync(fd);
    } catch {
      // Some filesystems refuse to fsync a directory; the data's own fsync still holds.
    } finally {
      if (fd >= 0) await nodeJournalFs.close(fd).catch(() => undefined);
    }
  }

  private async closeSegment(seg: OpenSegment): Promise<void> {
    if (this.fsyncPolicy !== 'none' && !seg.broken) await this.syncSegment(seg);
    await this.fs.close(seg.fd).catch((err: unknown) => this.report('close', seg.path, seg.end, err));
    if (seg.idxFd >= 0) await this.fs.close(seg.idxFd).catch((err: unknown) => this.report('close', seg.idxPath, seg.idxEnd, err));
    if (this.seg === seg) this.seg = null;
    this.closedSegs.push({ path: seg.path, idxPath: seg.idxPath, bytes: seg.end + seg.idxEnd, lastWallMs: this.wallClock() });
  }

  /**
   * Deletes whole closed segments, oldest first, while over maxBytes or older than
   * maxAgeMs. Runs by itself (after a segment is closed, and on a timer with maxAgeMs);
   * public so that an operator or a test can run it now.
   */
  enforceRetention(): Promise<void> {
    if (this.retaining !== null) return this.retaining;
    this.retaining = this.retain().finally(() => {
      this.retaining = null;
    });
    return this.retaining;
  }

  private async retain(): Promise<void> {
    if (this.maxBytes === undefined && this.maxAgeMs === undefined) return;
    const now = this.wallClock();
    let total = this.seg === null ? 0 : this.seg.end + this.seg.idxEnd;
    for (const c of this.closedSegs) total += c.bytes;
    // After close() the newest segment is among the closed ones: it is kept, like the one being written.
    const keep = this.seg === null ? 1 : 0;
    while (this.closedSegs.length > keep) {
      const old = this.closedSegs[0]!;
      const byBytes = this.maxBytes !== undefined && total > this.maxBytes;
      const byAge = this.maxAgeMs !== undefined && now - old.lastWallMs > this.maxAgeMs;
      if (!byBytes && !byAge) break;
      this.closedSegs.shift();
      try {
        await this.fs.unlink(old.path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.report('unlink', old.path, 0, err);
      }
      await this.fs.unlink(old.idxPath).catch(() => undefined);
      total -= old.bytes;
      this.st.deletedSegments++;
      this.onEvent({ type: 'retention', file: old.path, bytes: old.bytes, reason: byBytes ? 'maxBytes' : 'maxAgeMs' });
    }
  }
}
