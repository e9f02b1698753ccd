/**
 * broker/recorder.ts: recording published messages into a journal (journal/, docs/JOURNAL.md),
 * option `journal: { dir, subjects, ... }`. The router calls `record` for every message it
 * accepted, before the frame is turned into a MSG; the recorder keeps those whose subject
 * matches one of `subjects` and hands the frame's own bytes (a MsgView over them) to the
 * JournalWriter with the broker's receive time. Per message that is one cached
 * subject-tree lookup and, when it matches, one copy into the writer's batch: nothing is
 * allocated, nothing waits for the disk.
 *
 * What the journal could not record (its memory bound reached, writes failing) and its
 * I/O errors are counted here and shown in /varz and /metrics (`journal`); each is logged
 * once per event the writer reports (a run of drops is one event), never per message.
 *
 * Threading: the broker's thread. Must not import: router.ts, session.ts, broker.ts.
 */
import type { Logger } from 'pino';
import { JournalWriter, SubjectFilter, type FsyncPolicy, type JournalEvent, type JournalWriterStats, type RecordSource } from '../journal/index.js';
import { chunkNowNs } from '../metrics/clock.js';

/** Broker option `journal`: what to record, and where. */
export interface JournalOptions {
  /** The journal directory (created if missing; one broker at a time). */
  dir: string;
  /** Subject patterns to record ('md.>', 'fx.*.EURUSD'); at least one. */
  subjects: string[];
  /** A segment file is closed and a new one begun past this size (default 64 MiB). */
  segmentBytes?: number;
  /** Retention: the journal's files add up to at most this many bytes. */
  maxBytes?: number;
  /** Retention: closed segments whose newest record is older than this are deleted. */
  maxAgeMs?: number;
  /** 'none', 'interval' (the default: within 500 ms) or 'always' (after every write); docs/JOURNAL.md says what each keeps. */
  fsync?: FsyncPolicy;
}

/** The keys of JournalOptions, for the option's validation (broker/config.ts). */
export const JOURNAL_OPTION_KEYS: readonly (keyof JournalOptions)[] = ['dir', 'subjects', 'segmentBytes', 'maxBytes', 'maxAgeMs', 'fsync'];

/** The `journal` section of /varz. */
export interface RecorderStats extends JournalWriterStats {
  dir: string;
  subjects: readonly string[];
  fsync: FsyncPolicy;
  /** Messages that matched `subjects` (recorded or dropped). */
  matched: number;
  /** Runs of records the journal could not record (one `loss` event each). */
  losses: number;
}

export class Recorder {
  private matched = 0;
  private losses = 0;

  private constructor(
    private readonly writer: JournalWriter,
    private readonly filter: SubjectFilter,
    private readonly options: JournalOptions,
  ) {}

  /** Recovers and opens the journal directory; throws JournalError when it cannot be used. */
  static async open(options: JournalOptions, log: Logger): Promise<Recorder> {
    const filter = new SubjectFilter(options.subjects);
    let recorder: Recorder | null = null;
    const onEvent = (e: JournalEvent): void => {
      if (e.type === 'loss' && recorder !== null) recorder.losses++;
      Recorder.log(log, e);
    };
    const writer = await JournalWriter.open({
      dir: options.dir,
      ...(options.segmentBytes !== undefined ? { segmentBytes: options.segmentBytes } : {}),
      ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
      ...(options.maxAgeMs !== undefined ? { maxAgeMs: options.maxAgeMs } : {}),
      ...(options.fsync !== undefined ? { fsync: options.fsync } : {}),
      onEvent,
    });
    recorder = new Recorder(writer, filter, options);
    log.info({ dir: options.dir, subjects: options.subjects, fsync: writer.fsyncPolicy, nextSeq: writer.seq }, 'journal recording');
    return recorder;
  }

  private static log(log: Logger, e: JournalEvent): void {
    switch (e.type) {
      case 'error':
        log.error({ op: e.op, file: e.file, offset: e.offset, err: e.error.message, lostFrom: e.lostFrom, lostTo: e.lostTo }, 'journal: file operation failed');
        break;
      case 'loss':
        log.warn({ reason: e.reason, fromSeq: e.fromSeq, toSeq: e.toSeq, count: e.count }, 'journal: messages not recorded');
        break;
      case 'truncated':
        log.warn({ file: e.file, offset: e.offset, bytes: e.bytes }, 'journal: torn tail cut at recovery');
        break;
      case 'corrupt':
        log.warn({ file: e.file, offset: e.offset, reason: e.reason }, 'journal: corrupt data skipped');
        break;
      case 'retention':
        log.info({ file: e.file, bytes: e.bytes, reason: e.reason }, 'journal: segment deleted by retention');
        break;
    }
  }

  /**
   * The hot path: `v` is the router's view of a PUB frame it accepted (its bytes as they
   * arrived), `subject` its interned subject. The receive time is the arrival of the
   * chunk the frame came in (metrics/clock.ts: one clock read per chunk). Returns the
   * record's journal seq, or 0 when the subject is not recorded.
   */
  record(subject: string, v: RecordSource): number {
    if (!this.filter.matches(subject)) return 0;
    this.matched++;
    this.writer.append(v, chunkNowNs());
    // The seq it took (a dropped record takes one too): replay-then-live merges on it (broker/replaylive.ts).
    return this.writer.seq - 1;
  }

  // --- for replay-then-live subscriptions (broker/replaylive.ts) ---------------------------

  /** The journal directory, for readers. */
  get dir(): string {
    return this.options.dir;
  }

  /** The seq the next recorded message will get: every record below it is appended (or dropped). */
  get nextSeq(): number {
    return this.writer.seq;
  }

  /** Resolves once every record appended so far is in the files (readable), or was dropped. */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /** Whether `subject` is recorded. */
  records(subject: string): boolean {
    return this.filter.matches(subject);
  }

  stats(): RecorderStats {
    return {
      dir: this.options.dir,
      subjects: this.filter.patterns,
      fsync: this.writer.fsyncPolicy,
      matched: this.matched,
      losses: this.losses,
      ...this.writer.stats(),
    };
  }

  /** Writes what was appended (fsynced unless the policy is 'none'), closes the files, releases the lock. */
  close(): Promise<void> {
    return this.writer.close();
  }
}
