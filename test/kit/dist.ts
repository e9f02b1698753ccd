/**
 * Tests import the TypeScript sources; what must run as JavaScript (worker threads, child
 * processes, the CLI, the browser bundle) runs from dist/. A dist/ older than the sources
 * would test yesterday's code without a word, so the run refuses to start with one
 * (test/kit/setup.ts calls distProblem() before any suite).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The source folders tsconfig.json compiles to dist/. */
function sourceFolders(): string[] {
  const tsconfig = JSON.parse(fs.readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8')) as { include: string[] };
  return tsconfig.include;
}

function* tsFiles(dir: string): Generator<string> {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* tsFiles(p);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) yield p;
  }
}

const mtime = (p: string): number => {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return -1;
  }
};

/** null when every source has a built file at least as new as itself (and the browser bundle is built from it), else what is stale. */
export function distProblem(root = ROOT): string | null {
  const stale: string[] = [];
  for (const folder of sourceFolders()) {
    const dir = path.join(root, folder);
    if (!fs.existsSync(dir)) continue;
    for (const src of tsFiles(dir)) {
      const rel = path.relative(root, src);
      const built = path.join(root, 'dist', rel.replace(/\.ts$/, '.js'));
      const at = mtime(built);
      if (at < 0) stale.push(`${rel} (dist/${path.relative(path.join(root, 'dist'), built)} missing)`);
      else if (at < mtime(src)) stale.push(`${rel} (changed after dist/ was built)`);
    }
  }
  const bundle = path.join(root, 'dist', 'browser', 'hopbus.js');
  if (mtime(bundle) < mtime(path.join(root, 'dist', 'client', 'browser.js')))
    stale.push('dist/browser/hopbus.js (older than dist/client/browser.js, or missing)');
  if (stale.length === 0) return null;
  const shown = stale.slice(0, 5).join('\n  ');
  return `dist/ is stale: ${stale.length} file(s) newer than their build, e.g.\n  ${shown}\nRun \`npm run build\` first (npm test does): the worker, CLI and child-process tests run dist/.`;
}

/** The absolute path of a built file, e.g. dist('bin/hopbus.js'). */
export function dist(rel: string): string {
  return path.join(ROOT, 'dist', rel);
}
