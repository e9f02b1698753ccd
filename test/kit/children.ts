/**
 * Child processes a test starts (fixtures: subscribers frozen with SIGSTOP, hoarders):
 * useChildProcesses() ends every one still running after each test (thawed first, so a
 * stopped process can die, then SIGKILL, and its exit awaited), and jsonLines() collects
 * the JSON lines a fixture prints, as they arrive.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { afterEach } from 'vitest';

/** Registers the clean-up; returns track(child), which returns the child. */
export function useChildProcesses(): (child: ChildProcess) => ChildProcess {
  const children: ChildProcess[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const gone = once(c, 'exit');
      c.kill('SIGCONT');
      c.kill('SIGKILL');
      await gone;
    }
  });
  return (child) => {
    children.push(child);
    return child;
  };
}

/** Every JSON line `stream` prints, parsed, in the array returned (filled as lines arrive). */
export function jsonLines(stream: Readable): Record<string, unknown>[] {
  const events: Record<string, unknown>[] = [];
  let buf = '';
  stream.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl; (nl = buf.indexOf('\n')) >= 0; buf = buf.slice(nl + 1)) events.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
  });
  return events;
}
