#!/usr/bin/env node
// Compares this checkout's end-to-end figures with another build of hopbus (an older
// commit checked out and built in another folder), in one interleaved run: round r runs
// `node dist/bench/run.js --only <cases> --runs 1` in each tree, alternating which goes
// first, so machine noise lands on both alike. Each tree's own TCP relay floor is
// measured in the same round, so every figure is read as a ratio twice: head/base, and
// each side against its floor. Run it alone on the machine.
//
//   git worktree add --detach ../hopbus-base <rev> && (cd ../hopbus-base && npm ci && npm run build)
//   npm run build && node bench/compare.mjs --base ../hopbus-base [--rounds 5] [--only hop,pingpong,throughput]
//
// Writes bench/results/compare.md and compare.json. Each tree's bench/results/latest.*
// is restored afterwards (run.js writes them).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HELP = `Usage: node bench/compare.mjs --base DIR [--rounds N] [--only LIST]

  --base DIR     a built checkout of the hopbus to compare against (required)
  --rounds N     interleaved rounds, median reported with the spread (default 5)
  --only LIST    cases of bench/run.js: hop,pingpong,throughput (default all three)
  --quick        run.js --quick: a smoke check of this script, not figures
  -h, --help     show this help`;

let args;
try {
  args = parseArgs({
    options: {
      base: { type: 'string' },
      quick: { type: 'boolean' },
      rounds: { type: 'string' },
      only: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }).values;
} catch (err) {
  console.error(`compare: ${err.message}\n\n${HELP}`);
  process.exit(2);
}
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
const head = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (!args.base) {
  console.error(`compare: --base is required\n\n${HELP}`);
  process.exit(2);
}
const base = path.resolve(args.base);
const rounds = Number(args.rounds ?? 5);
if (!Number.isInteger(rounds) || rounds < 1) {
  console.error('compare: --rounds must be a positive integer');
  process.exit(2);
}
const only = args.only ?? 'hop,pingpong,throughput';
for (const c of only.split(',')) {
  if (!['hop', 'pingpong', 'throughput'].includes(c)) {
    console.error(`compare: case "${c}" is not one of hop, pingpong, throughput`);
    process.exit(2);
  }
}
for (const tree of [head, base]) {
  if (!fs.existsSync(path.join(tree, 'dist', 'bench', 'run.js'))) {
    console.error(`compare: ${tree} has no dist/bench/run.js: run npm ci && npm run build there first`);
    process.exit(2);
  }
}

const rev = (tree) => {
  try {
    return execFileSync('git', ['-C', tree, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return '?';
  }
};

// run.js overwrites <tree>/bench/results/latest.*: keep the files of record.
const saved = new Map();
for (const tree of [head, base]) {
  for (const f of ['latest.json', 'latest.md']) {
    const p = path.join(tree, 'bench', 'results', f);
    saved.set(p, fs.existsSync(p) ? fs.readFileSync(p) : null);
  }
}
const restore = () => {
  for (const [p, bytes] of saved) {
    if (bytes === null) fs.rmSync(p, { force: true });
    else fs.writeFileSync(p, bytes);
  }
};

const loadBefore = os.loadavg();
const samples = { head: [], base: [] };
try {
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? ['base', 'head'] : ['head', 'base'];
    for (const side of order) {
      const tree = side === 'head' ? head : base;
      process.stdout.write(`round ${r + 1}/${rounds}: ${side} (${rev(tree)}), load ${os.loadavg()[0].toFixed(2)} ... `);
      execFileSync(process.execPath, ['dist/bench/run.js', '--only', only, '--runs', '1', ...(args.quick ? ['--quick'] : [])], {
        cwd: tree,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      samples[side].push(JSON.parse(fs.readFileSync(path.join(tree, 'bench', 'results', 'latest.json'), 'utf8')));
      console.log('done');
    }
  }
} finally {
  restore();
}
const loadAfter = os.loadavg();

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x) => (x >= 1e5 ? Math.round(x).toLocaleString('en-US') : x >= 100 ? x.toFixed(0) : x.toFixed(2));
const cell = (xs) => `${fmt(median(xs))} (${fmt(Math.min(...xs))}..${fmt(Math.max(...xs))})`;

const out = { date: new Date().toISOString(), head: rev(head), base: rev(base), rounds, only, loadBefore, loadAfter, rows: [] };
const md = [
  `# hopbus ${out.head} against ${out.base}, ${out.date}`,
  '',
  `${os.cpus().length} x ${os.cpus()[0]?.model}, Node ${process.version}; ${rounds} interleaved rounds of \`node dist/bench/run.js --only ${only} --runs 1\` per tree.`,
  `Load average before: ${loadBefore.map((x) => x.toFixed(2)).join(' ')}; after: ${loadAfter.map((x) => x.toFixed(2)).join(' ')}.`,
  'Each cell: median over the rounds (min..max). Ratios are of the medians; "/ floor" divides by the same tree\'s TCP relay floor of the same rounds.',
  '',
];

const latencyRows = (key, title) => {
  if (!samples.head[0]?.[key]) return;
  md.push(`## ${title}`, '', '| target | metric | base | head | head / base | base / floor | head / floor |', '|---|---|---:|---:|---:|---:|---:|');
  for (const target of Object.keys(samples.head[0][key])) {
    for (const metric of ['p50', 'p90', 'p99', 'p999', 'max']) {
      const b = samples.base.map((s) => s[key][target]?.runs?.[0]?.[metric]).filter((x) => x !== undefined);
      const h = samples.head.map((s) => s[key][target]?.runs?.[0]?.[metric]).filter((x) => x !== undefined);
      if (b.length === 0 || h.length === 0) continue;
      const fb = samples.base.map((s) => s[key]['node-tcp-relay'].runs[0][metric]);
      const fh = samples.head.map((s) => s[key]['node-tcp-relay'].runs[0][metric]);
      const row = { case: key, target, metric, base: b, head: h, floorBase: fb, floorHead: fh };
      out.rows.push(row);
      md.push(
        `| ${target} | ${metric} µs | ${cell(b)} | ${cell(h)} | ${(median(h) / median(b)).toFixed(3)} | ${(median(b) / median(fb)).toFixed(3)} | ${(median(h) / median(fh)).toFixed(3)} |`,
      );
    }
  }
  md.push('');
};
latencyRows('hop', 'One hop, publisher and subscriber in one process, broker process between');
latencyRows('pingpong', 'Ping-pong across two processes, RTT/2');

if (samples.head[0]?.throughput) {
  md.push(
    '## Throughput, 1 publisher -> 1 subscriber, msg/s',
    '',
    '| target | base | head | head / base | base / floor | head / floor |',
    '|---|---:|---:|---:|---:|---:|',
  );
  for (const key of Object.keys(samples.head[0].throughput)) {
    const size = key.split('/')[1];
    const b = samples.base.map((s) => s.throughput[key]?.median).filter((x) => x !== undefined);
    const h = samples.head.map((s) => s.throughput[key].median);
    const fb = samples.base.map((s) => s.throughput[`node-tcp-relay/${size}`].median);
    const fh = samples.head.map((s) => s.throughput[`node-tcp-relay/${size}`].median);
    if (b.length === 0) continue;
    out.rows.push({ case: 'throughput', target: key, metric: 'msgsPerSec', base: b, head: h, floorBase: fb, floorHead: fh });
    md.push(
      `| ${key} B | ${cell(b)} | ${cell(h)} | ${(median(h) / median(b)).toFixed(3)} | ${(median(b) / median(fb)).toFixed(3)} | ${(median(h) / median(fh)).toFixed(3)} |`,
    );
  }
  md.push('');
}

const dir = path.join(head, 'bench', 'results');
fs.mkdirSync(dir, { recursive: true });
fs.writeFileSync(path.join(dir, 'compare.json'), JSON.stringify(out, null, 2) + '\n');
fs.writeFileSync(path.join(dir, 'compare.md'), md.join('\n') + '\n');
console.log('\n' + md.join('\n'));
console.log(`wrote ${path.relative(process.cwd(), path.join(dir, 'compare.md'))} and compare.json`);
