/**
 * client/replay.ts: publishes the messages of a journal (journal/, docs/JOURNAL.md) again,
 * through any connection: in seq order, with their subject (or `<as>.<subject>`), reply,
 * headers and payload kind, at the pace they were recorded scaled by `speed`, or as fast
 * as flow control allows (`speed: 'max'`).
 *
 * Pacing keeps an absolute schedule: message i is due at start + (its recorded time -
 * the first one's) / speed, so a late timer never makes the replay drift; gaps shorter
 * than a timer can sleep (1 ms) are kept on average, not one by one. Times come from the
 * records' wall clock (their segment's anchor), so a journal written by several broker
 * runs replays across its restarts too; a recorded time that steps back counts as no gap.
 *
 * Flow control: the connection is flushed (a round trip through the broker) whenever
 * more than `flushBytes` are queued towards it, so a replay never outruns the broker
 * or its own connection's pending limit, and at the end, so that when it resolves the
 * broker has every message.
 *
 * Imports journal/ (below the client) and the client's payload codec; never broker/.
 */
import { openJournal, type CorruptEvent, type JournalPosition, type RecordView } from '../journal/index.js';
import { PayloadKind } from '../transports/protocol/index.js';
import { isValidSubject } from '../topics/index.js';
import { realClock, type Clock } from '../runtime/clock.js';
import { unpackr } from './codec.js';
import { OptionsError } from './errors.js';
import type { Connection, PublishOptions } from './types.js';

export interface ReplayOptions {
  /** The first record: `{ seq }` or `{ timeMs }` (wall clock, ms since the Unix epoch); default the oldest. */
  from?: JournalPosition;
  /** The last record (inclusive), the same way; default the newest. */
  to?: JournalPosition;
  /** Only subjects matching these patterns. */
  subjects?: string | readonly string[];
  /** `'max'` (the default): as fast as flow control allows; a number N > 0: the recorded pace times N (1 = as recorded). */
  speed?: number | 'max';
  /** Publish under `<as>.<subject>` instead of the recorded subject. */
  as?: string;
  /** Flush the connection when more than this many bytes are queued towards it (default 1 MiB). */
  flushBytes?: number;
  /** The clock that paces the replay (a FakeClock in tests); ms. */
  clock?: Clock;
  /** Corrupt records skipped by the read (default: a console warning). */
  onCorrupt?: (e: CorruptEvent) => void;
  /** Called after each message is published (its record, valid during the call only). */
  onMessage?: (r: RecordView) => void;
}

export interface ReplaySummary {
  /** Messages published, and the payload bytes among them. */
  messages: number;
  payloadBytes: number;
  /** Seqs of the first and last messages published (0 when none). */
  firstSeq: number;
  lastSeq: number;
  /** From the first publish to the end of the final flush, by the replay's clock. */
  seconds: number;
  msgsPerSec: number;
}

/** Throws OptionsError when `speed` is neither 'max' nor a positive finite number. */
function checkSpeed(speed: number | 'max'): void {
  if (speed !== 'max' && !(typeof speed === 'number' && Number.isFinite(speed) && speed > 0)) {
    throw new OptionsError(`replay speed must be 'max' or a number above 0 (1 = as recorded), got ${JSON.stringify(speed)}`);
  }
}

/**
 * Replays the journal in `journalDir` into `connection` (see the top of this file). Throws
 * JournalError when the directory is not a journal, OptionsError for bad options; resolves
 * with what it published once the last message has reached the broker.
 */
export async function replay(journalDir: string, connection: Connection, options: ReplayOptions = {}): Promise<ReplaySummary> {
  const speed = options.speed ?? 'max';
  checkSpeed(speed);
  const as = options.as;
  if (as !== undefined && !isValidSubject(as)) throw new OptionsError(`replay "as" must be a subject prefix such as "rp", got ${JSON.stringify(as)}`);
  const flushBytes = options.flushBytes ?? 1024 * 1024;
  const clock = options.clock ?? realClock;
  const journal = openJournal(journalDir, options.onCorrupt ? { onEvent: options.onCorrupt } : {});
  // Publish subjects under the prefix, made once per recorded subject (subjects are interned).
  const prefixed = new Map<string, string>();
  const pubOptions: PublishOptions = {};
  const summary: ReplaySummary = { messages: 0, payloadBytes: 0, firstSeq: 0, lastSeq: 0, seconds: 0, msgsPerSec: 0 };
  let start = 0;
  let prevMs = 0;
  // Recorded time since the first message, gaps that step back counted as none.
  let virtualMs = 0;
  /** Publishes one record; a promise when the connection has more than flushBytes queued (wait for it). */
  const publishOne = (r: RecordView): Promise<void> | undefined => {
    let subject = r.subject();
    if (as !== undefined) {
      let p = prefixed.get(subject);
      if (p === undefined) prefixed.set(subject, (p = `${as}.${subject}`));
      subject = p;
    }
    pubOptions.reply = r.replyLen > 0 ? r.reply() : undefined;
    pubOptions.headers = r.headersLen > 0 ? (unpackr.unpack(r.headers()) as Record<string, string>) : undefined;
    connection.publish(subject, payloadOf(r), pubOptions.reply !== undefined || pubOptions.headers !== undefined ? pubOptions : undefined);
    summary.messages++;
    summary.payloadBytes += r.payloadLen;
    summary.lastSeq = r.seq;
    options.onMessage?.(r);
    return connection.pendingBytes > flushBytes ? connection.flush() : undefined;
  };
  const range = {
    ...(options.from ? { from: options.from } : {}),
    ...(options.to ? { to: options.to } : {}),
    ...(options.subjects ? { subjects: options.subjects } : {}),
  };
  // One callback per record, awaited only when it returns a promise (a pacing wait, a
  // flush under back-pressure): no promise per message at full speed.
  await journal.each(range, (r) => {
    const tMs = r.timeMs();
    let wait = 0;
    if (summary.messages === 0) {
      start = clock.now();
      summary.firstSeq = r.seq;
    } else {
      if (tMs > prevMs) virtualMs += tMs - prevMs;
      if (speed !== 'max') wait = start + virtualMs / speed - clock.now();
    }
    prevMs = tMs;
    if (wait >= 1) return new Promise<void>((resolve) => clock.timeout(resolve, wait)).then(() => publishOne(r));
    return publishOne(r);
  });
  if (summary.messages > 0) await connection.flush();
  summary.seconds = summary.messages > 0 ? (clock.now() - start) / 1000 : 0;
  summary.msgsPerSec = summary.seconds > 0 ? summary.messages / summary.seconds : 0;
  return summary;
}

/**
 * The payload as publish() takes it so that it travels with the recorded kind: raw bytes
 * (a view, copied into the connection's buffer at once), a string for UTF-8, the decoded
 * value for msgpack (encoded again: the same value, the bytes as the client's codec writes it).
 */
function payloadOf(r: RecordView): unknown {
  const p = r.payload();
  switch (r.kind) {
    case PayloadKind.UTF8:
      return p.toString('utf8');
    case PayloadKind.MSGPACK:
      return p.length === 0 ? undefined : unpackr.unpack(p);
    default:
      return p;
  }
}
