/**
 * broker/replaylive.ts: replay-then-live subscriptions (a SUB with SUB_FROM_SEQ or
 * SUB_FROM_TIME, docs/JOURNAL.md "Replay then live"): every journal record matching the
 * pattern from a sequence or a time on, then live messages, as one unbroken run, the way
 * Aeron's replay merge and JetStream's deliver-by-start-sequence give it.
 *
 * The merge, on the broker's thread (which has the journal writer):
 *  1. The subscription goes into the router at once (its live messages reach the
 *     connection), but the client hands it no broadcast message before IMAGE BEGIN: until
 *     then it gets only what this file sends it, addressed by sid with FLAG_REPLAY.
 *  2. Catch-up: the journal is read from the start position to its end as found, records
 *     sent paced like an image (broker/cache/feed.ts: at most highWater bytes a turn, only
 *     while the link has room).
 *  3. The tail: in one synchronous step, T = the seq the next recorded message will get,
 *     and live messages for the subscription start being copied aside (bounded). Then the
 *     writer flushes (every record below T is in the files) and the records up to T-1 are
 *     read and sent. Every message routed since step 3 began is either among those records
 *     (seq < T: no, those were routed before) or in the copies (seq >= T): the copies are
 *     sent next, then BEGIN and END, in one synchronous step with nothing held for the
 *     connection, and from there on live messages count for it. No gap, no duplicate.
 *  4. If the copies outgrow their bound (publishers outran the flush and the read), they
 *     are dropped and step 3 starts again from a new T: those messages are in the journal
 *     by then. A journal that keeps outrunning its reader keeps the subscription replaying.
 *
 * Replayed records and the copies carry FLAG_REPLAY and, in the sequence block, their
 * journal seq (a copy of a message the journal does not record carries none); their
 * reply subject is dropped (a replayed request must not be answered). Live messages after
 * BEGIN are the ones the journal records after the last replayed one, and those it does
 * not record. Messages on subjects the journal does not record reach the subscription only
 * once it is live.
 *
 * Threading: the broker's thread; reads use libuv's pool. Must not import sessions or the broker.
 */
import type { Logger } from 'pino';
import { openJournal, type JournalPosition, type RecordView } from '../journal/index.js';
import { FLAG_REPLAY, FLAG_SEQ, IMAGE_SIZE, ImageKind, MSG_HEADER, MsgView, Op, SEQ_BLOCK, writeImage, writeMsgHeader } from '../transports/protocol/index.js';
import { writeU64 } from '../runtime/clock.js';
import type { Link } from '../transports/link.js';
import type { Outbound } from './policy.js';
import type { Recorder } from './recorder.js';
import type { Subscription } from './subscription.js';

/** What a catch-up needs of its session. */
export interface CatchUpOwner {
  readonly link: Link;
  readonly out: Outbound;
  readonly open: boolean;
  readonly stats: { msgsOut: number; bytesOut: number };
  /** The catch-up cannot go on (the journal could not be read): tell the client why and end the subscription. */
  replayFailed(sub: Subscription, why: string): void;
}

/** Live messages copied aside during the tail (step 3): their frames and journal seqs. */
class Copies {
  frames: Buffer[] = [];
  seqs: number[] = [];
  bytes = 0;
  overflowed = false;
  constructor(readonly limit: number) {}
  add(buf: Buffer, off: number, len: number, seq: number): void {
    if (this.overflowed) return;
    if (this.bytes + len > this.limit) {
      this.overflowed = true;
      this.frames = [];
      this.seqs = [];
      this.bytes = 0;
      return;
    }
    this.frames.push(Buffer.from(buf.subarray(off, off + len)));
    this.seqs.push(seq);
    this.bytes += len;
  }
}

/** Replay-then-live of one subscription. */
export class CatchUp {
  /** Messages sent before going live (records and copies): IMAGE END's count. */
  sent = 0;
  /** Times the tail had to start again (its copies outgrew their bound). */
  restarts = 0;
  live = false;
  private copies: Copies | null = null;
  private closed = false;
  private wake: (() => void) | null = null;
  private immediate: ReturnType<typeof setImmediate> | null = null;
  private readonly view = new MsgView();

  constructor(
    private readonly owner: CatchUpOwner,
    readonly sub: Subscription,
    private readonly recorder: Recorder,
    private readonly start: JournalPosition,
    private readonly highWater: number,
    /** Bytes of live copies kept during the tail. */
    private readonly copyLimit: number,
    private readonly log: Logger,
  ) {}

  /** Starts the catch-up (after the subscription went into the router). */
  begin(): void {
    this.run().catch((err: unknown) => {
      const why = (err as Error).message;
      this.log.error({ sid: this.sub.sid, pattern: this.sub.pattern, err: why }, 'replay-then-live failed');
      this.close();
      if (this.owner.open) this.owner.replayFailed(this.sub, `the replay of "${this.sub.pattern}" failed: ${why}; the subscription was removed`);
    });
  }

  /** A live message queued for the connection: copied aside during the tail when it is for this subscription. */
  onLive(buf: Buffer, off: number, len: number, subs: readonly Subscription[], seq: number): void {
    if (this.copies !== null && subs.includes(this.sub)) this.copies.add(buf, off, len, seq);
  }

  /** The link has drained: go on in the next turn. */
  drained(): void {
    if (this.wake !== null && this.immediate === null) this.immediate = setImmediate(this.resume);
  }

  close(): void {
    this.closed = true;
    this.copies = null;
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.immediate = null;
    this.resume();
  }

  private readonly resume = (): void => {
    this.immediate = null;
    const w = this.wake;
    this.wake = null;
    w?.();
  };

  private get stopped(): boolean {
    return this.closed || !this.owner.open || this.owner.link.closed;
  }

  /** Resolves when the link has room (and nothing is held), at once if it has. */
  private room(): Promise<void> | null {
    const { link, out } = this.owner;
    if (link.pendingBytes <= this.highWater && out.hold.length === 0) return null;
    return new Promise((resolve) => (this.wake = resolve));
  }

  private async run(): Promise<void> {
    const journal = openJournal(this.recorder.dir, {
      onEvent: (e) => this.log.warn({ file: e.file, offset: e.offset, reason: e.reason }, 'journal: corrupt data skipped by a replay'),
    });
    // Step 2: the journal as far as it goes now.
    let last = await this.replay(journal, this.start, Infinity, 0);
    for (;;) {
      if (this.stopped) return;
      // Step 3, in one synchronous step: T, and copies from here on.
      const t = this.recorder.nextSeq;
      const copies = (this.copies = new Copies(this.copyLimit));
      await this.recorder.flush();
      if (this.stopped) return;
      last = await this.replay(journal, last > 0 ? { seq: last + 1 } : this.start, t - 1, last);
      if (this.stopped) return;
      // Nothing held for the connection when BEGIN goes out (the order rule, as for images).
      for (let wait = this.room(); wait !== null && !copies.overflowed; wait = this.room()) await wait;
      if (this.stopped) return;
      if (copies.overflowed) {
        // Step 4: those messages are in the journal by now; read on from there.
        this.restarts++;
        this.log.info(
          { sid: this.sub.sid, pattern: this.sub.pattern, lastSeq: last, restarts: this.restarts },
          'replay-then-live: live messages outran the tail; reading on',
        );
        this.copies = null;
        continue;
      }
      this.copies = null;
      // (Copies older than a start seq past the journal's end are not asked for.)
      const min = 'seq' in this.start ? this.start.seq : 0;
      for (let i = 0; i < copies.frames.length; i++) {
        const seq = copies.seqs[i]!;
        if (seq === 0 || seq >= min) this.sendCopy(copies.frames[i]!, seq);
      }
      this.control(ImageKind.BEGIN, 0);
      this.control(ImageKind.END, this.sent);
      this.live = true;
      return;
    }
  }

  /** Sends the records from `from` up to seq `to` (inclusive); returns the last seq sent (or `last`). */
  private async replay(journal: ReturnType<typeof openJournal>, from: JournalPosition, to: number, last: number): Promise<number> {
    if ('seq' in from && to < from.seq) return last;
    const it = journal.read({ from, ...(to !== Infinity ? { to: { seq: to } } : {}), subjects: this.sub.pattern });
    let budget = this.highWater;
    try {
      for await (const r of it) {
        if (this.stopped) return last;
        if (budget <= 0 || this.owner.link.pendingBytes > this.highWater) {
          budget = this.highWater;
          await new Promise<void>((resolve) => {
            this.wake = resolve;
            // Over the mark: onDrain wakes it; else the next turn does.
            if (this.owner.link.pendingBytes <= this.highWater) this.immediate = setImmediate(this.resume);
          });
          if (this.stopped) return last;
        }
        budget -= this.sendRecord(r);
        last = r.seq;
      }
    } finally {
      await it.return(undefined);
    }
    return last;
  }

  /** A journal record as a MSG for this subscription alone: FLAG_REPLAY, its seq, no reply. */
  private sendRecord(r: RecordView): number {
    const s = r.subjectLen;
    const h = r.headersLen;
    const p = r.payloadLen;
    const total = MSG_HEADER + SEQ_BLOCK + s + h + p;
    const link = this.owner.link;
    const out = link.reserve(total);
    let at = writeMsgHeader(out, link.writeOffset, total, Op.MSG, FLAG_SEQ | FLAG_REPLAY, r.kind, this.sub.sid, s, 0, h);
    writeU64(out, at, r.seq);
    at += SEQ_BLOCK;
    r.buf.copy(out, at, r.subjectOff, r.subjectOff + s);
    r.buf.copy(out, at + s, r.headersOff, r.headersOff + h + p);
    link.commit(total);
    this.counted(total);
    return total;
  }

  /** A live message copied during the tail, as a MSG for this subscription alone, with its journal seq (none if not recorded). */
  private sendCopy(frame: Buffer, seq: number): void {
    const v = this.view.parse(frame, 0, frame.length);
    const s = v.subjectLen;
    const h = v.headersLen;
    const p = v.payloadLen;
    const block = seq > 0 ? SEQ_BLOCK : 0;
    const total = MSG_HEADER + block + s + h + p;
    const link = this.owner.link;
    const out = link.reserve(total);
    let at = writeMsgHeader(out, link.writeOffset, total, Op.MSG, (seq > 0 ? FLAG_SEQ : 0) | FLAG_REPLAY, v.kind, this.sub.sid, s, 0, h);
    if (seq > 0) {
      writeU64(out, at, seq);
      at += SEQ_BLOCK;
    }
    frame.copy(out, at, v.subjectOff, v.subjectOff + s);
    frame.copy(out, at + s, v.headersOff, v.headersOff + h + p);
    link.commit(total);
    this.counted(total);
  }

  private counted(n: number): void {
    this.sent++;
    const st = this.owner.stats;
    st.msgsOut++;
    st.bytesOut += n;
  }

  private control(kind: ImageKind, count: number): void {
    const link = this.owner.link;
    const buf = link.reserve(IMAGE_SIZE);
    writeImage(buf, link.writeOffset, kind, this.sub.sid, count);
    link.commit(IMAGE_SIZE);
  }
}
