/**
 * vitest globalSetup (vitest.config.ts): runs once before every suite.
 * - Refuses to run with a dist/ older than the sources (see dist.ts).
 * - Collects the suites that could not run here (guards.ts) and prints them together at
 *   the end of the run, so a skip is never silent.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { distProblem } from './dist.js';

declare module 'vitest' {
  export interface ProvidedContext {
    skipReport: string;
  }
}

let report = '';

export function setup(project: TestProject): void {
  const problem = distProblem();
  if (problem !== null) throw new Error(problem);
  report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-skips-')), 'skipped.txt');
  fs.writeFileSync(report, '');
  project.provide('skipReport', report);
}

export function teardown(): void {
  if (report === '') return;
  const lines = [
    ...new Set(
      fs
        .readFileSync(report, 'utf8')
        .split('\n')
        .filter((l) => l !== ''),
    ),
  ];
  fs.rmSync(path.dirname(report), { recursive: true, force: true });
  if (lines.length === 0) return;
  const bar = '!'.repeat(72);
  console.warn(`\n${bar}\nNOT RUN on this machine (${lines.length}): each says what it needs\n  ${lines.join('\n  ')}\n${bar}\n`);
}
