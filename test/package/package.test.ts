/**
 * What `npm publish` would ship, checked the way a consumer meets it: the packed file
 * list (no benchmark code, the licence, every `exports` target), the types as each
 * module-resolution mode sees them (arethetypeswrong), and `require()` from CommonJS.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, { types: string; default: string }>;
};

describe('the published package', () => {
  it('ships the licence, the docs and every exports target, and no benchmark code', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root });
    const files = new Set((JSON.parse(stdout) as [{ files: { path: string }[] }])[0].files.map((f) => f.path));
    expect(files.has('LICENSE')).toBe(true);
    expect(files.has('README.md')).toBe(true);
    expect(files.has('docs/PROTOCOL.md')).toBe(true);
    expect(files.has('dist/bin/hopbus.js')).toBe(true);
    for (const [entry, target] of Object.entries(pkg.exports)) {
      expect(files.has(target.types.replace(/^\.\//, '')), `${entry} types`).toBe(true);
      expect(files.has(target.default.replace(/^\.\//, '')), `${entry} code`).toBe(true);
    }
    expect([...files].filter((f) => f.startsWith('dist/bench/') || f.startsWith('bench/'))).toEqual([]);
  });

  it('resolves with types under node10, node16 (ESM and CommonJS) and bundler resolution (arethetypeswrong)', async () => {
    const attw = path.join(root, 'node_modules/@arethetypeswrong/cli/dist/index.js');
    // ESM only, by design: CommonJS callers load it with require() of ESM (Node >= 20.19) or import().
    const r = await run(process.execPath, [attw, '--pack', '.', '--format', 'json', '--ignore-rules', 'cjs-resolves-to-esm'], { cwd: root }).then(
      (x) => ({ code: 0, out: x.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
    );
    // problems: { [kind]: [{ kind, entrypoint, resolutionKind }] }, the ignored kinds included.
    const problems = (JSON.parse(r.out) as { problems: Record<string, { entrypoint: string; resolutionKind: string }[]> }).problems;
    const found = Object.entries(problems).filter(([kind]) => kind !== 'CJSResolvesToESM');
    expect(found).toEqual([]);
    expect(r.code).toBe(0);
  });

  it('loads with require() from a CommonJS program', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-cjs-'));
    try {
      fs.mkdirSync(path.join(dir, 'node_modules'));
      fs.symlinkSync(root, path.join(dir, 'node_modules', 'hopbus'), 'dir');
      fs.writeFileSync(
        path.join(dir, 'main.cjs'),
        `const { connect } = require('hopbus'); const { startBroker } = require('hopbus/broker');
         console.log(typeof connect, typeof startBroker);`,
      );
      const { stdout } = await run(process.execPath, ['main.cjs'], { cwd: dir });
      expect(stdout.trim()).toBe('function function');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
