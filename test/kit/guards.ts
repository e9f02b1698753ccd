/**
 * Suites that need something of the machine (loopback multicast, network namespaces,
 * nftables, Chromium, libnats, nats-server for the leafnode suites) ask for it here. When it is missing the suite is skipped, and says
 * so three times: a console warning when the file is collected, the skipped suite's own
 * name (the reason), and a list printed at the end of the run (setup.ts). With
 * HOPBUS_REQUIRE=multicast,netns,nft,chromium (or `all`), which .ci/run sets for what it
 * installed, a missing requirement fails the run instead.
 */
import fs from 'node:fs';
import { describe, inject, it } from 'vitest';

type Body = () => void;
type Test = () => Promise<void> | void;

function required(what: string): boolean {
  const want = (process.env.HOPBUS_REQUIRE ?? '').split(',').map((s) => s.trim());
  return want.includes('all') || want.includes(what);
}

function record(line: string): void {
  console.warn(`SKIPPED: ${line}`);
  let report: string | undefined;
  try {
    report = inject('skipReport');
  } catch {
    report = undefined; // run without the globalSetup (a single file in an editor): the warning above is all
  }
  if (report) fs.appendFileSync(report, line + '\n');
}

/**
 * `describe` when `problem` is null; otherwise the suite is skipped with the reason in its
 * name (or fails, when HOPBUS_REQUIRE names `what`).
 */
export function describeNeeding(what: string, problem: string | null): (name: string, body: Body) => void {
  if (problem === null) return (name, body) => describe(name, body);
  if (required(what)) {
    return (name) =>
      describe(name, () => {
        it(`needs ${what}, required by HOPBUS_REQUIRE`, () => {
          throw new Error(`${name}: needs ${what}: ${problem}`);
        });
      });
  }
  return (name, body) => {
    record(`${name}: needs ${what}: ${problem}`);
    describe.skip(`${name} [skipped, needs ${what}: ${problem}]`, body);
  };
}

/** `it` when `problem` is null; otherwise the same skip-with-reason (or failure) for one test. */
export function itNeeding(what: string, problem: string | null): (name: string, test: Test, timeout?: number) => void {
  if (problem === null) return (name, test, timeout) => it(name, test, timeout);
  if (required(what)) {
    return (name) =>
      it(`${name} (needs ${what}, required by HOPBUS_REQUIRE)`, () => {
        throw new Error(`needs ${what}: ${problem}`);
      });
  }
  return (name) => {
    record(`${name}: needs ${what}: ${problem}`);
    it.skip(`${name} (skipped, needs ${what}: ${problem})`, () => {});
  };
}
