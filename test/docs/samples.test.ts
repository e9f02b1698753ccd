/**
 * The code samples of README.md and docs/*.md are part of the product: every ```ts
 * block is compiled as its own module, strictly, against this package as a user
 * imports it (`hopbus`, `hopbus/broker`), and the blocks marked to run are run against
 * a real broker. A sample that stops compiling or stops working fails here.
 *
 * What a Markdown file can say about a block, in an HTML comment on the line before it
 * (invisible on GitHub):
 *   <!-- prelude: CODE -->   code compiled before the block (a fragment's `bus`, say)
 *   <!-- run -->             the block is also run with node; it must exit 0
 * A block whose first line is `// name.ts...` is written as name.ts, so the blocks of
 * one document can import each other (a main program and its worker).
 * Samples that dial `tcp://127.0.0.1:7400` or listen on `port: 7400` get this run's
 * broker or a free port instead.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from '../../broker/index.js';

const root = path.resolve(import.meta.dirname, '../..');
const docs = ['README.md', ...fs.readdirSync(path.join(root, 'docs')).map((f) => `docs/${f}`)].filter((f) => f.endsWith('.md'));

interface Sample {
  doc: string;
  /** 1-based line of the block's first code line in the document. */
  line: number;
  file: string;
  prelude: string;
  code: string;
  run: boolean;
}

function collect(doc: string): Sample[] {
  const lines = fs.readFileSync(path.join(root, doc), 'utf8').split('\n');
  const out: Sample[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i]!)) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !lines[end]!.startsWith('```')) end++;
    const code = lines.slice(start, end).join('\n');
    let prelude = '';
    let run = false;
    for (let j = i - 1; j >= 0 && /^<!--.*-->\s*$/.test(lines[j]!); j--) {
      const m = /^<!--\s*(prelude:|run)\s*(.*?)\s*-->\s*$/.exec(lines[j]!);
      if (m?.[1] === 'run') run = true;
      else if (m?.[1] === 'prelude:') prelude = m[2]!;
    }
    const named = /^\/\/ ([\w-]+)\.ts\b/.exec(lines[start] ?? '');
    const base = doc.replace(/[/.]/g, '_');
    out.push({ doc, line: start + 1, file: named ? `${base}/${named[1]}.ts` : `${base}/line${start + 1}.ts`, prelude, code, run });
    i = end;
  }
  return out;
}

const samples = docs.flatMap(collect);
let dir = '';
let broker: StartedBroker;
let compileErrors = new Map<string, string[]>();

/** The sample as it is compiled: prelude on its first line, so tsc's line numbers stay the document's. */
function source(s: Sample, url: string): string {
  const code = s.code.replaceAll('tcp://127.0.0.1:7400', url).replace(/\bport: 7400\b/g, 'port: 0');
  return `${s.prelude}${s.prelude ? ' ' : ''}${code}\nexport {}\n`;
}

beforeAll(async () => {
  broker = await startBroker({ host: '127.0.0.1', port: 0 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-samples-'));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(root, path.join(dir, 'node_modules', 'hopbus'), 'dir');
  // What else a sample imports (the NATS client of the README's NATS section, say): this project's own packages.
  for (const name of fs.readdirSync(path.join(root, 'node_modules'))) {
    if (!name.startsWith('.') && name !== 'hopbus') fs.symlinkSync(path.join(root, 'node_modules', name), path.join(dir, 'node_modules', name), 'dir');
  }
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  fs.writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        outDir: 'out',
        rootDir: 'src',
        skipLibCheck: true,
        typeRoots: [path.join(root, 'node_modules/@types')],
        types: ['node'],
      },
      include: ['src'],
    }),
  );
  for (const s of samples) {
    const f = path.join(dir, 'src', s.file);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, source(s, broker.url));
  }
  // One compiler run for every sample; its diagnostics are sorted to the samples below.
  const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
  const out = await promisify(execFile)(process.execPath, [tsc, '-p', dir, '--pretty', 'false'], { cwd: dir }).then(
    (r) => r.stdout,
    (e: { stdout?: string }) => e.stdout ?? String(e),
  );
  compileErrors = new Map();
  for (const line of out.split('\n')) {
    const m = /^src\/(\S+?)\((\d+),\d+\): (.*)$/.exec(line);
    if (m === null) continue;
    const list = compileErrors.get(m[1]!) ?? [];
    list.push(`line ${m[2]}: ${m[3]}`);
    compileErrors.set(m[1]!, list);
  }
}, 120_000);

afterAll(async () => {
  await broker?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs out/<file>.js; resolves with its exit code and output. */
function runNode(file: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const js = path.join(dir, 'out', file.replace(/\.ts$/, '.js'));
    const child = spawn(process.execPath, [js], { cwd: path.dirname(js), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('the code samples of README.md and docs/', () => {
  it('finds the samples', () => {
    expect(samples.filter((s) => s.doc === 'README.md').length).toBeGreaterThanOrEqual(2);
    expect(samples.some((s) => s.run)).toBe(true);
  });

  for (const s of samples) {
    const where = `${s.doc}:${s.line}`;
    it(`${where} compiles under strict TypeScript`, () => {
      // tsc numbers lines from the sample's first code line (the prelude shares it).
      const errors = (compileErrors.get(s.file) ?? []).map((e) => e.replace(/^line (\d+)/, (_, n: string) => `${s.doc}:${s.line + Number(n) - 1}`));
      expect(errors.join('\n')).toBe('');
    });
    if (s.run) {
      it(`${where} runs to completion against a real broker`, async () => {
        const r = await runNode(s.file);
        expect(r.out).not.toMatch(/Error|Unhandled/);
        expect(r.code).toBe(0);
      });
    }
  }
});
