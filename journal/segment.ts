/**
 * journal/segment.ts: the journal's files. A journal is a directory of segment files,
 * each with an index file beside it:
 *
 *   00000000000000000001.seg   records with seq >= 1 (the name is the first seq, 20 digits)
 *   00000000000000000001.idx   a few of its records: seq -> offset, time -> offset
 *   00000000000000052311.seg   the next segment starts at seq 52311
 *   ...
 *
 * Segment file: a 40-byte header, then records (journal/record.ts) back to back.
 *
 *   0        4     6     8                 16                24                32      36      40
 *   +--------+-----+-----+-----------------+-----------------+-----------------+-------+-------+------------
 *   | magic  | ver | hlen| first seq (u64) | wall ms (u64)   | mono ns (u64)   | crc32 | 0     | records ...
 *   +--------+-----+-----+-----------------+-----------------+-----------------+-------+-------+------------
 *    0  u32  magic "HBJS" (0x48 0x42 0x4a 0x53)
 *    4  u16  format version (1)
 *    6  u16  header length (40): records start here
 *    8  u64  seq of the segment's first record (its file name)
 *   16  u64  wall clock when the segment was created, ms since the Unix epoch
 *   24  u64  monotonic clock at the same moment, ns: with the wall ms, the anchor that turns
 *            a record's monotonic time into wall time (wall = wallMs + (time - monoNs) / 1e6)
 *   32  u32  CRC-32 of bytes [0, 32)
 *   36  u32  reserved, 0
 *
 * A segment is written by one process: a writer that opens a journal starts a new
 * segment, so one anchor holds for every record in it (the monotonic clock restarts at a
 * reboot; a segment never spans one).
 *
 * Index file: 24-byte entries, appended as the segment grows (one per N records or bytes,
 * and always for a segment's first record). Times in a segment never decrease (the
 * broker stamps messages in arrival order on one thread), so one list serves both seeks.
 *
 *   0                 8                 16       20
 *   +-----------------+-----------------+--------+--------+
 *   | seq (u64)       | time ns (u64)   | offset | crc32  |
 *   +-----------------+-----------------+--------+--------+
 *   offset: u32, of the record in the segment file; crc32 of bytes [0, 20).
 *
 * The index is a hint: an entry is used only after the record it points at verifies
 * with the same seq; a bad or missing index makes a seek scan the segment instead.
 *
 * SegmentCursor walks one segment's records through a reused buffer, verifying each,
 * and is the one loop behind recovery (journal/writer.ts) and reading (journal/reader.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { readU64, writeU64 } from '../runtime/clock.js';
import { Check, MAX_RECORD_BYTES, RECORD_HEADER, RecordView, checkRecord, recordLength, recordSeq } from './record.js';
import { crc32 } from './crc32.js';

export const SEGMENT_MAGIC = 0x534a4248; // "HBJS" little-endian
export const SEGMENT_VERSION = 1;
export const SEGMENT_HEADER = 40;
export const INDEX_ENTRY = 24;
/** A segment's offsets are u32s in the index: no segment grows past this. */
export const MAX_SEGMENT_BYTES = 0xffffffff;

export const SEG_EXT = '.seg';
export const IDX_EXT = '.idx';

/** The file name of the segment whose first record has this seq. */
export function segmentName(firstSeq: number): string {
  return String(firstSeq).padStart(20, '0') + SEG_EXT;
}

export function indexPathOf(segPath: string): string {
  return segPath.slice(0, -SEG_EXT.length) + IDX_EXT;
}

/** A segment file found in a journal directory. */
export interface SegmentFile {
  /** The seq in its name: its first record's. */
  readonly firstSeq: number;
  readonly path: string;
}

/** The segment files of a directory, oldest first (names that are not 20 digits + .seg are ignored). */
export function listSegments(dir: string): SegmentFile[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: SegmentFile[] = [];
  for (const n of names) {
    if (!/^\d{20}\.seg$/.test(n)) continue;
    out.push({ firstSeq: Number(n.slice(0, 20)), path: path.join(dir, n) });
  }
  out.sort((a, b) => a.firstSeq - b.firstSeq);
  return out;
}

/** The header fields of a segment. */
export interface SegmentHeader {
  firstSeq: number;
  wallMs: number;
  monoNs: number;
}

export function encodeSegmentHeader(h: SegmentHeader): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER);
  b.writeUInt32LE(SEGMENT_MAGIC, 0);
  b.writeUInt16LE(SEGMENT_VERSION, 4);
  b.writeUInt16LE(SEGMENT_HEADER, 6);
  writeU64(b, 8, h.firstSeq);
  writeU64(b, 16, Math.round(h.wallMs));
  writeU64(b, 24, Math.round(h.monoNs));
  b.writeUInt32LE(crc32(b, 0, 32), 32);
  return b;
}

/** The header of b, or why it is not a segment header. */
export function decodeSegmentHeader(b: Buffer): SegmentHeader | string {
  if (b.length < SEGMENT_HEADER) return `the file is shorter than a segment header (${b.length} of ${SEGMENT_HEADER} bytes)`;
  if (b.readUInt32LE(0) !== SEGMENT_MAGIC) return 'not a journal segment (bad magic)';
  if (b.readUInt32LE(32) !== crc32(b, 0, 32)) return 'the segment header fails its checksum';
  const v = b.readUInt16LE(4);
  if (v !== SEGMENT_VERSION) return `segment format version ${v} is not supported (this release reads ${SEGMENT_VERSION})`;
  if (b.readUInt16LE(6) !== SEGMENT_HEADER) return 'bad segment header length';
  return { firstSeq: readU64(b, 8), wallMs: readU64(b, 16), monoNs: readU64(b, 24) };
}

/** Reads and decodes the header of the segment at p (synchronously). */
export function readSegmentHeader(p: string): SegmentHeader | string {
  const fd = fs.openSync(p, 'r');
  try {
    const b = Buffer.alloc(SEGMENT_HEADER);
    const n = fs.readSync(fd, b, 0, SEGMENT_HEADER, 0);
    return decodeSegmentHeader(b.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes index entry (seq, time, offset) at b[off]. */
export function encodeIndexEntry(b: Buffer, off: number, seq: number, timeNs: number, offset: number): void {
  writeU64(b, off, seq);
  writeU64(b, off + 8, timeNs);
  b.writeUInt32LE(offset, off + 16);
  b.writeUInt32LE(crc32(b, off, off + 20), off + 20);
}

/** The index of one segment, as parallel arrays (seq, time and offset ascend together). */
export interface SegmentIndex {
  seqs: number[];
  times: number[];
  offsets: number[];
}

/**
 * Reads an index file; stops at the first entry that fails its checksum or does not
 * ascend (what follows a bad entry is not trusted). A missing file is an empty index.
 */
export function readIndex(p: string): SegmentIndex {
  const idx: SegmentIndex = { seqs: [], times: [], offsets: [] };
  let b: Buffer;
  try {
    b = fs.readFileSync(p);
  } catch {
    return idx;
  }
  for (let off = 0; off + INDEX_ENTRY <= b.length; off += INDEX_ENTRY) {
    if (b.readUInt32LE(off + 20) !== crc32(b, off, off + 20)) break;
    const seq = readU64(b, off);
    const offset = b.readUInt32LE(off + 16);
    const n = idx.seqs.length;
    if (n > 0 && (seq <= idx.seqs[n - 1]! || offset <= idx.offsets[n - 1]!)) break;
    if (offset < SEGMENT_HEADER) break;
    idx.seqs.push(seq);
    idx.times.push(readU64(b, off + 8));
    idx.offsets.push(offset);
  }
  return idx;
}

/** Index of the last entry whose key is <= k in an ascending list, or -1. */
export function floorIndex(keys: number[], k: number): number {
  let lo = 0;
  let hi = keys.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! <= k) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

/** What a cursor step found. */
export const enum Step {
  /** A verified record, in the view. */
  RECORD = 0,
  /** The end of the segment's whole records (tailBytes says what follows, if anything). */
  END = 1,
  /** The buffer holds only part of the next record: fill() or fillSync(), then step again. */
  MORE = 2,
  /** Bytes at `pos` are not a record: see badReason; resync() finds the next record. */
  BAD = 3,
}

/**
 * Reads one segment file front to back through one buffer (grown only for a record
 * longer than it), verifying every record. Not re-entrant; one thread.
 *
 *   buf:   [ consumed | unread data ......... | free ]
 *          0          pos - bufPos             hi
 *   bufPos: the file offset of buf[0]; pos: the file offset of the next record.
 */
export class SegmentCursor {
  /** File offset of the next record. */
  pos = SEGMENT_HEADER;
  /** Seq of the last verified record (or the segment's first seq - 1). */
  lastSeq: number;
  /** After BAD: what is wrong at pos. After END: bytes past the last whole record. */
  badReason = '';
  tailBytes = 0;
  /** The file's size when opened, or after refreshSize(). */
  size: number;
  readonly header: SegmentHeader | null;
  readonly headerProblem: string;
  private buf: Buffer;
  private bufPos = SEGMENT_HEADER;
  private hi = 0;
  private fd: number;

  constructor(
    readonly file: SegmentFile,
    readonly view: RecordView,
    buf: Buffer,
  ) {
    this.buf = buf;
    this.fd = fs.openSync(file.path, 'r');
    this.size = fs.fstatSync(this.fd).size;
    const hb = Buffer.alloc(SEGMENT_HEADER);
    const n = fs.readSync(this.fd, hb, 0, SEGMENT_HEADER, 0);
    const h = decodeSegmentHeader(hb.subarray(0, n));
    if (typeof h === 'string') {
      this.header = null;
      this.headerProblem = h;
      this.size = Math.min(this.size, SEGMENT_HEADER);
    } else {
      this.header = h;
      this.headerProblem = '';
      view.wallOffsetMs = h.wallMs - h.monoNs / 1e6;
    }
    this.lastSeq = file.firstSeq - 1;
    view.file = file.path;
  }

  /** The buffer (it may have grown): pass it to the next cursor to reuse it. */
  get buffer(): Buffer {
    return this.buf;
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  /** Re-reads the file's size (a segment still being written grows). */
  refreshSize(): void {
    if (this.header !== null) this.size = fs.fstatSync(this.fd).size;
  }

  /** Moves to a file offset where a record starts (from the index or a resync); lastSeq is what precedes it. */
  moveTo(pos: number, lastSeq: number): void {
    this.pos = pos;
    this.lastSeq = lastSeq;
    this.bufPos = pos;
    this.hi = 0;
  }

  /**
   * Moves to an offset the index gives for `seq`, if the record there verifies and has
   * that seq; otherwise stays at the segment's start. Reads synchronously.
   */
  tryMoveTo(pos: number, seq: number): boolean {
    if (pos < SEGMENT_HEADER || pos >= this.size) return false;
    this.moveTo(pos, seq - 1);
    this.fillSync();
    if (this.step() === Step.RECORD && this.view.seq === seq) {
      // The record is still in the buffer: step it again from there.
      this.pos = pos;
      this.lastSeq = seq - 1;
      return true;
    }
    this.moveTo(SEGMENT_HEADER, this.file.firstSeq - 1);
    return false;
  }

  /** The next record into the view, or why not. Allocates nothing. */
  step(): Step {
    const at = this.pos - this.bufPos;
    const avail = this.hi - at;
    const c = checkRecord(this.buf, at, avail);
    if (c === Check.OK) {
      const seq = recordSeq(this.buf, at);
      if (seq <= this.lastSeq) {
        this.badReason = `record seq ${seq} does not follow seq ${this.lastSeq}`;
        return Step.BAD;
      }
      const v = this.view.parse(this.buf, at);
      v.fileOffset = this.pos;
      this.pos += v.len;
      this.lastSeq = seq;
      return Step.RECORD;
    }
    if (c === Check.SHORT) {
      if (this.bufPos + this.hi < this.size) return Step.MORE;
      this.tailBytes = this.size - this.pos;
      if (this.tailBytes > 0) this.badReason = `${this.tailBytes} bytes at the end are not a whole record`;
      return Step.END;
    }
    this.badReason = c === Check.BAD_CRC ? 'the record fails its checksum' : 'not a record (impossible length fields)';
    return Step.BAD;
  }

  /** Makes room and reads more of the file into the buffer (synchronously). */
  fillSync(): void {
    const want = this.prepareFill();
    this.filled(fs.readSync(this.fd, this.buf, this.hi, want, this.bufPos + this.hi));
  }

  private filled(n: number): void {
    this.hi += n;
    // The file is shorter than it was (cut by a writer's recovery): it ends here.
    if (n === 0) this.size = this.bufPos + this.hi;
  }

  /** Makes room and reads more of the file into the buffer, off the event loop's thread. */
  fill(): Promise<void> {
    const want = this.prepareFill();
    return new Promise((resolve, reject) => {
      fs.read(this.fd, this.buf, this.hi, want, this.bufPos + this.hi, (err, n) => {
        if (err) reject(err);
        else {
          this.filled(n);
          resolve();
        }
      });
    });
  }

  private prepareFill(): number {
    const at = this.pos - this.bufPos;
    // Keep the unread part, at the front.
    if (at > 0) {
      this.buf.copy(this.buf, 0, at, this.hi);
      this.hi -= at;
      this.bufPos = this.pos;
    }
    // A record longer than the buffer: grow it to the record (bounded by MAX_RECORD_BYTES).
    if (this.hi >= 4) {
      const need = recordLength(this.buf, 0);
      if (need <= MAX_RECORD_BYTES && need > this.buf.length) {
        const bigger = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
        this.buf.copy(bigger, 0, 0, this.hi);
        this.buf = bigger;
        this.view.buf = bigger;
      }
    }
    return Math.min(this.buf.length - this.hi, this.size - (this.bufPos + this.hi));
  }

  /**
   * After BAD: finds the next offset after pos where a verified record with a seq above
   * lastSeq starts, by trying every byte offset (corruption is rare; this is not a hot
   * path). Returns that offset (the cursor moves there) or -1 (none: the rest of the
   * segment is lost, and the cursor is at the end).
   */
  resync(): number {
    const win = Buffer.allocUnsafe(Math.max(64 * 1024, RECORD_HEADER * 2));
    let rec: Buffer | null = null;
    for (let base = this.pos + 1; base + RECORD_HEADER <= this.size;) {
      const n = fs.readSync(this.fd, win, 0, Math.min(win.length, this.size - base), base);
      const last = n - RECORD_HEADER;
      for (let i = 0; i <= last; i++) {
        const len = recordLength(win, i);
        if (len < RECORD_HEADER || len > MAX_RECORD_BYTES || base + i + len > this.size) continue;
        const seq = recordSeq(win, i);
        if (seq <= this.lastSeq) continue;
        let c: Check;
        if (i + len <= n) c = checkRecord(win, i, len);
        else {
          if (rec === null || rec.length < len) rec = Buffer.allocUnsafe(len);
          fs.readSync(this.fd, rec, 0, len, base + i);
          c = checkRecord(rec, 0, len);
        }
        if (c === Check.OK) {
          this.moveTo(base + i, this.lastSeq);
          return base + i;
        }
      }
      base += last + 1;
    }
    this.moveTo(this.size, this.lastSeq);
    return -1;
  }
}

/** What recoverSegment found in a segment (the writer cuts the file to `end`). */
export interface SegmentState {
  /** Offset just past the last whole record (SEGMENT_HEADER when none). */
  end: number;
  /** Seq of the last whole record, or firstSeq - 1. */
  lastSeq: number;
  records: number;
  /** Problems found: corrupt ranges skipped (offset, reason). */
  corrupt: { offset: number; reason: string }[];
  /** Bytes after `end` that are not a whole record (a torn tail), 0 if none. */
  tailBytes: number;
  /** Why the file is not a segment at all (its header), or ''. */
  headerProblem: string;
}

/**
 * Walks a segment to its last whole record, verifying checksums, synchronously: from the
 * last index entry that verifies (what precedes it was verified when it was written, and
 * readers check it again) or from the start. A corrupt range followed by good records is
 * reported and skipped; bad bytes with no good record after them are the torn tail.
 */
export function recoverSegment(file: SegmentFile, buf: Buffer, fromIndex: boolean): SegmentState {
  const view = new RecordView();
  const cur = new SegmentCursor(file, view, buf);
  const st: SegmentState = { end: SEGMENT_HEADER, lastSeq: file.firstSeq - 1, records: 0, corrupt: [], tailBytes: 0, headerProblem: cur.headerProblem };
  try {
    if (cur.header === null) return st;
    if (fromIndex) {
      const idx = readIndex(indexPathOf(file.path));
      for (let i = idx.seqs.length - 1; i >= 0; i--) {
        if (idx.offsets[i]! >= cur.size) continue;
        cur.moveTo(idx.offsets[i]!, idx.seqs[i]! - 1);
        cur.fillSync();
        if (cur.step() === Step.RECORD && view.seq === idx.seqs[i]) {
          st.end = cur.pos;
          st.lastSeq = view.seq;
          st.records++;
          break;
        }
        cur.moveTo(SEGMENT_HEADER, file.firstSeq - 1);
      }
    }
    for (;;) {
      const s = cur.step();
      if (s === Step.RECORD) {
        st.end = cur.pos;
        st.lastSeq = view.seq;
        st.records++;
      } else if (s === Step.MORE) {
        cur.fillSync();
      } else if (s === Step.BAD) {
        const at = cur.pos;
        const reason = cur.badReason;
        if (cur.resync() < 0) {
          st.tailBytes = cur.size - st.end;
          break;
        }
        st.corrupt.push({ offset: at, reason });
      } else {
        st.tailBytes = cur.tailBytes;
        break;
      }
    }
    return st;
  } finally {
    cur.close();
  }
}
