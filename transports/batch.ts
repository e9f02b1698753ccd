/**
 * Smart batching without timers.
 *
 * While a thread processes one inbound chunk (which may hold hundreds of frames), the
 * frames it writes to each link are gathered and leave in one write per link when the
 * chunk is done: `runBatched(fn)` marks that window. Outside a window, a write to an
 * idle link goes out at once, and writes queued behind a busy link leave together when
 * the link's current write completes. Either way no message waits on a timer.
 */

export interface Flushable {
  /** Set while the link is in the pending list, so it is added once per window. */
  batched: boolean;
  flush(): void;
}

let depth = 0;
/** Counts outermost windows, so a reader can tell one inbound chunk from the next. */
let windows = 0;
const dirty: Flushable[] = [];

/** True inside runBatched: links defer their flush to the end of the window. */
export function batching(): boolean {
  return depth > 0;
}

/** Identifies the current outermost window (valid while batching() is true). */
export function windowId(): number {
  return windows;
}

export function deferFlush(link: Flushable): void {
  if (!link.batched) {
    link.batched = true;
    dirty.push(link);
  }
}

/** Runs fn, then flushes every link written during it. Re-entrant. */
export function runBatched<A>(fn: (arg: A) => void, arg: A): void {
  if (depth++ === 0) windows++;
  try {
    fn(arg);
  } finally {
    if (--depth === 0) flushDirty();
  }
}

function flushDirty(): void {
  if (dirty.length === 0) return;
  // A flush may write to other links (a drain handler), so the list can grow while we walk it.
  for (let i = 0; i < dirty.length; i++) {
    const link = dirty[i]!;
    link.batched = false;
    link.flush();
  }
  dirty.length = 0;
}
