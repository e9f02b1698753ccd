/**
 * The layering, enforced (README "Architecture"; the rules and why are in
 * .dependency-cruiser.cjs): runtime/ imports nothing of ours, topics/ only runtime/,
 * topics/, transports/, runtime/ and journal/ never broker/ or client/, nothing below journal/
 * imports it, metrics/ neither of them,
 * broker/ and client/ never each other, and no import cycle anywhere. Type-only
 * imports count.
 *
 * The rules are proven on a small tree that breaks each of them once
 * (test/fixtures/layers/), so a rule that stopped matching would fail here too.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult, type IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const FOLDERS = ['runtime', 'topics', 'transports', 'journal', 'metrics', 'broker', 'client', 'bin', 'bench'];

/** One line per violation: `rule: from -> to`, or `no-cycle: a -> b -> ... -> a`. */
function describeViolation(v: IViolation): string {
  if (v.cycle && v.cycle.length > 0) return `${v.rule.name}: ${[v.from, ...v.cycle.map((c) => c.name)].join(' -> ')}`;
  return `${v.rule.name}: ${v.from} -> ${v.to}`;
}

async function violations(baseDir: string, folders: string[], tsConfig?: string): Promise<string[]> {
  const { tsConfig: _fromConfig, ...options } = await extractDepcruiseOptions(path.join(root, '.dependency-cruiser.cjs'));
  const transpile = tsConfig ? { tsConfig: extractTSConfig(path.join(baseDir, tsConfig)) } : {};
  if (tsConfig) Object.assign(options, { tsConfig: { fileName: path.join(baseDir, tsConfig) } });
  const cwd = process.cwd();
  // dependency-cruiser resolves the folders and reports paths relative to the working directory.
  process.chdir(baseDir);
  try {
    const r = await cruise(folders, { ...options, baseDir, outputType: 'json' }, {}, transpile);
    const result = (typeof r.output === 'string' ? JSON.parse(r.output) : r.output) as ICruiseResult;
    return [...new Set((result.summary.violations ?? []).map(describeViolation))].sort();
  } finally {
    process.chdir(cwd);
  }
}

describe('the layering of the source tree', () => {
  it('has no forbidden import and no cycle', async () => {
    expect(await violations(root, FOLDERS, 'tsconfig.json')).toEqual([]);
  }, 60_000);
});

describe('the layering rules (.dependency-cruiser.cjs)', () => {
  it('catch each kind of forbidden import and a cycle, type-only imports included, and allow the permitted ones', async () => {
    const fixture = path.join(root, 'test', 'fixtures', 'layers');
    const found = await violations(fixture, ['runtime', 'topics', 'transports', 'journal', 'metrics', 'broker', 'client']);
    expect(found).toEqual(
      expect.arrayContaining([
        'runtime-imports-nothing: runtime/clock.ts -> topics/subject.ts',
        'topics-imports-runtime-only: topics/subject.ts -> metrics/gauge.ts',
        'below-broker-and-client: metrics/gauge.ts -> broker/session.ts',
        'below-broker-and-client: transports/link.ts -> client/bus.ts',
        'below-broker-and-client: journal/writer.ts -> broker/router.ts',
        'journal-above-transports: transports/tap.ts -> journal/writer.ts',
        'broker-not-client: broker/session.ts -> client/bus.ts',
        'client-not-broker: client/bus.ts -> broker/router.ts',
        'no-cycle: broker/router.ts -> broker/session.ts -> broker/router.ts',
      ]),
    );
    // topics/ importing runtime/, transports/ importing both, and journal/ importing all three, are allowed.
    const notCycles = found.filter((v) => !v.startsWith('no-cycle: '));
    expect(notCycles.filter((v) => / topics\/subject\.ts -> runtime\//.test(v) || v.includes(': transports/ok.ts -> '))).toEqual([]);
    expect(notCycles.filter((v) => v.includes(': journal/writer.ts -> ') && !v.endsWith(' -> broker/router.ts'))).toEqual([]);
  }, 60_000);
});
