/**
 * hopbus replay --dir DIR: publishes the messages a broker recorded into a journal
 * (hopbus broker --journal DIR --record PATTERN) again, to a broker, in order, at the
 * recorded pace or faster, under their own subjects or a prefix; then prints how many, in
 * how long. The work is client/replay.ts.
 */
import fs from 'node:fs';
import type { JournalPosition } from '../../journal/index.js';
import { replay, type ReplayOptions } from '../../client/replay.js';
import { UsageError, list, parseCommand, str, type CommandSpec } from './args.js';
import { SERVER_FLAGS, openBus, resolveServer } from './server.js';
import { isValidPattern, isValidSubject } from '../../topics/index.js';

export const REPLAY: CommandSpec = {
  usage: 'replay --dir DIR [options]',
  about: `Publishes the messages of a journal (recorded by hopbus broker --journal DIR --record
PATTERN) to a broker again, in seq order, with their subject, reply, headers and payload
kind. SEQ is a record's sequence number; TIME is an ISO 8601 date (2026-01-05T14:30:00Z) or
ms since the Unix epoch with an "ms" suffix (1767623400000ms). --speed 1 keeps the recorded
gaps between messages, N divides them by N, max sends as fast as flow control allows (the
connection is flushed whenever 1 MiB is queued). Prints a summary when done.`,
  flags: [
    ...SERVER_FLAGS,
    { name: 'dir', short: 'd', kind: 'string', arg: 'DIR', help: 'the journal directory' },
    { name: 'from', kind: 'string', arg: 'SEQ|TIME', defaultText: 'the oldest record', help: 'the first record to replay' },
    { name: 'to', kind: 'string', arg: 'SEQ|TIME', defaultText: 'the newest record', help: 'the last record to replay (inclusive)' },
    { name: 'subjects', kind: 'list', arg: 'PATTERN', defaultText: 'all', help: 'replay only subjects matching PATTERN' },
    { name: 'speed', kind: 'string', arg: 'max|1|N', default: 'max', help: 'max, or the recorded pace times N (1 = as recorded)' },
    { name: 'as', kind: 'string', arg: 'PREFIX', help: 'publish each message under PREFIX.<subject>' },
    { name: 'quiet', short: 'q', kind: 'boolean', help: 'print nothing on success' },
  ],
  positionals: [0, 0],
  footer: `Examples:
  hopbus replay --dir /var/lib/hopbus/md
  hopbus replay --dir /var/lib/hopbus/md --subjects 'md.EURUSD.>' --speed 1 --as rp
  hopbus replay --dir /var/lib/hopbus/md --from 1000 --to 2000 -s tcp://md-archive:7400`,
};

/** --from/--to: a seq (digits), ms since the epoch ("...ms"), or an ISO 8601 date. */
export function parsePosition(flag: string, v: string): JournalPosition {
  if (/^\d+$/.test(v)) {
    const seq = Number(v);
    if (!Number.isSafeInteger(seq) || seq < 1) throw new UsageError(`--${flag} ${v}: a seq must be an integer of at least 1`);
    return { seq };
  }
  const ms = /^(\d+)ms$/.exec(v);
  if (ms) return { timeMs: Number(ms[1]) };
  const t = /^\d{4}-\d{2}-\d{2}/.test(v) ? Date.parse(v) : NaN;
  if (Number.isNaN(t)) throw new UsageError(`--${flag} must be a SEQ (e.g. 1000) or a TIME (e.g. 2026-01-05T14:30:00Z or 1767623400000ms), got "${v}"`);
  return { timeMs: t };
}

export function parseSpeed(v: string): number | 'max' {
  if (v === 'max') return 'max';
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`--speed must be max or a number above 0 (1 = as recorded), got "${v}"`);
  return n;
}

export async function runReplay(args: string[]): Promise<void> {
  const p = parseCommand(args, REPLAY);
  if (p === null) return;
  const { values } = p;
  const dir = str(values, 'dir');
  if (dir === undefined) throw new UsageError('replay needs --dir DIR: the journal directory');
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UsageError(`--dir ${dir}: no such directory`);
  const options: ReplayOptions = { speed: parseSpeed(str(values, 'speed')!) };
  const from = str(values, 'from');
  if (from !== undefined) options.from = parsePosition('from', from);
  const to = str(values, 'to');
  if (to !== undefined) options.to = parsePosition('to', to);
  const subjects = list(values, 'subjects');
  for (const s of subjects) if (!isValidPattern(s)) throw new UsageError(`--subjects: "${s}" is not a valid subject pattern`);
  if (subjects.length > 0) options.subjects = subjects;
  const as = str(values, 'as');
  if (as !== undefined && !isValidSubject(as)) throw new UsageError(`--as must be a subject prefix such as "rp", got "${as}"`);
  if (as !== undefined) options.as = as;
  const server = resolveServer(values);
  const bus = await openBus(server, 'hopbus-replay');
  let s;
  try {
    s = await replay(dir, bus, options);
  } finally {
    await bus.close();
  }
  if (values.quiet === true) return;
  const range = s.messages > 0 ? ` (seq ${s.firstSeq}..${s.lastSeq})` : '';
  const rate = s.seconds > 0 ? Math.round(s.msgsPerSec) : 0;
  console.log(`replayed ${s.messages} message${s.messages === 1 ? '' : 's'}${range} in ${s.seconds.toFixed(3)} s (${rate} msg/s)`);
}
