/**
 * What the journal suites share: a temporary directory per test, a writer whose events
 * are collected, and messages with a recognisable payload per seq.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, afterEach } from 'vitest';
import { JournalWriter, type JournalEvent, type JournalWriterOptions, recordSource, type RecordSource } from '../../journal/index.js';

const dirs: string[] = [];

afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh temporary directory, removed after the test. */
export function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-journal-'));
  dirs.push(d);
  return d;
}

/** A writer on dir; its events go to the returned array (nothing is printed). */
export async function openWriter(dir: string, opts: Partial<JournalWriterOptions> = {}): Promise<{ w: JournalWriter; events: JournalEvent[] }> {
  const events: JournalEvent[] = [];
  const w = await JournalWriter.open({ dir, onEvent: (e) => events.push(e), ...opts });
  return { w, events };
}

/** The i-th test message: subject md.<i mod 4>, payload "m<i>" padded to `size` bytes. */
export function message(i: number, size = 16): RecordSource {
  const body = `m${i}`.padEnd(size, '.');
  return recordSource(`md.S${i % 4}`, body, i % 5 === 0 ? { reply: `_INBOX.${i}`, headers: Uint8Array.of(0x81, 0xa1, 0x6b, 0xa1, 0x76) } : {});
}

/** The segment files of a directory, by name. */
export function segFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.seg'))
    .sort();
}

/**
 * A 1 MiB tmpfs mounted for this file's tests (a disk that really fills up), unmounted
 * after them. `problem` says why it could not be mounted (not root), for describeNeeding.
 */
export function useTinyTmpfs(prefix: string): { mnt: string; problem: string | null } {
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  let problem: string | null = null;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'pipe' });
  } catch (err) {
    fs.rmSync(mnt, { recursive: true, force: true });
    problem = `cannot mount a 1 MiB tmpfs (needs root): ${((err as { stderr?: Buffer }).stderr ?? '').toString().trim() || (err as Error).message}`;
  }
  afterAll(() => {
    if (problem !== null) return;
    execFileSync('umount', [mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  });
  return { mnt, problem };
}
