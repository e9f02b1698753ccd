/**
 * npm run bench:peers: hopbus against nats-server, Redis pub/sub and Mosquitto, and
 * the raw Node floor, through the same workloads (cases.ts) in the same run.
 *
 * It installs the peer servers it does not find (apt-get), starts every server by
 * hand on loopback on free ports, runs each case --runs times, interleaving the
 * systems within each run (and rotating their order) so that noise on a shared
 * machine lands on all of them alike, and stops everything it started, also on
 * failure or Ctrl-C. Writes bench/results/peers-latest.json, peers-latest.md and
 * peers-*.svg.
 *
 *   node dist/bench/peers/run.js [--runs N] [--quick] [--only LIST] [--no-install] [--replot]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { distRoot, stopAll } from '../procs.js';
import { CASE_GROUPS, CASES, FULL, QUICK, runs as canRun, type Case, type Figure, type LatencyFigure, type ThroughputFigure } from './cases.js';
import { ensurePackages } from './install.js';
import { markdown, plots, summarizeCase, type Results } from './report.js';
import { SkipError, type RunningServer, type Target } from './target.js';
import { SERVERS, TARGETS } from './targets/index.js';

const HELP = `Usage: node dist/bench/peers/run.js [options]   (npm run bench:peers -- [options])

Options:
  --runs N       runs per case, median reported (default 3)
  --quick        few samples: a smoke check that everything works, not figures
  --only LIST    comma-separated systems and/or cases. Systems: ${TARGETS.map((t) => t.name).join(', ')},
                 or hopbus / peers / floors. Cases: ${CASE_GROUPS.join(', ')}, or a case id
                 (${CASES.map((c) => c.id).join(', ')})
  --no-install   do not apt-get install missing peers (they are reported as skipped)
  --replot       run nothing: rewrite peers-latest.md and the plots from peers-latest.json
  -h, --help     show this help

Run it alone on the machine: other load shows up in every figure.`;

function fail(msg: string): never {
  console.error(`bench:peers: ${msg}\n\n${HELP}`);
  process.exit(2);
}

function parse() {
  try {
    return parseArgs({
      options: {
        runs: { type: 'string' },
        quick: { type: 'boolean' },
        only: { type: 'string' },
        'no-install': { type: 'boolean' },
        replot: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (err) {
    return fail((err as Error).message);
  }
}
const args = parse();
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
const RUNS = Number(args.runs ?? 3);
if (!Number.isInteger(RUNS) || RUNS < 1) fail('--runs must be a positive integer');
const SIZES = args.quick ? QUICK : FULL;

// --only: what is named selects; a kind of name not used at all means "all of them".
const picked = { targets: new Set<Target>(), cases: new Set<Case>() };
for (const item of (args.only ?? '').split(',').filter((s) => s !== '')) {
  const ts = TARGETS.filter(
    (t) =>
      t.name === item || (item === 'hopbus' && t.kind === 'hopbus') || (item === 'peers' && t.kind === 'peer') || (item === 'floors' && t.kind === 'floor'),
  );
  const cs = CASES.filter((c) => c.id === item || c.group === item);
  if (ts.length === 0 && cs.length === 0) fail(`unknown system or case "${item}" in --only`);
  ts.forEach((t) => picked.targets.add(t));
  cs.forEach((c) => picked.cases.add(c));
}
const targets = picked.targets.size ? TARGETS.filter((t) => picked.targets.has(t)) : [...TARGETS];
const cases = picked.cases.size ? CASES.filter((c) => picked.cases.has(c)) : [...CASES];
const order = TARGETS.map((t) => t.name);
const resultsDir = path.join(distRoot, '..', 'bench', 'results');

/** Writes peers-latest.md and the plots for `res`; returns the Markdown and the plot file names. */
function writeReport(res: Results, cs: readonly Case[]): { md: string; files: string[] } {
  const md = markdown(res, cs, order);
  fs.writeFileSync(path.join(resultsDir, 'peers-latest.md'), md);
  const svgs = plots(res, cs, order);
  for (const [file, svg] of svgs) fs.writeFileSync(path.join(resultsDir, file), svg);
  return { md, files: [...svgs.keys()] };
}

if (args.replot) {
  const res = JSON.parse(fs.readFileSync(path.join(resultsDir, 'peers-latest.json'), 'utf8')) as Results;
  const { files } = writeReport(
    res,
    CASES.filter((c) => res.cases[c.id] !== undefined),
  );
  console.log(`rewrote bench/results/peers-latest.md and ${files.join(', ')} from peers-latest.json (${res.date})`);
  process.exit(0);
}

const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-peers-'));
let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await stopAll();
  fs.rmSync(tmpDir, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`\nbench:peers: ${sig}: stopping every server and child it started`);
    void cleanup().finally(() => process.exit(130));
  });
}

const loadavg = () => os.loadavg().map((x) => Math.round(x * 100) / 100);

async function main(): Promise<void> {
  const res: Results = {
    date: new Date().toISOString(),
    quick: args.quick === true,
    runs: RUNS,
    sizes: SIZES,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), platform: os.platform() },
    node: process.version,
    loadavgBefore: loadavg(),
    install: { wanted: [], present: [], installed: [], failed: {}, commands: [] },
    systems: {},
    skipped: {},
    cases: {},
  };
  console.log(
    `bench:peers: ${targets.map((t) => t.name).join(', ')}; ${cases.length} cases x ${RUNS} run(s)${res.quick ? ' (quick: smoke check only)' : ''}; load average ${res.loadavgBefore.join(' ')}`,
  );

  const servers = SERVERS.filter((s) => targets.some((t) => t.server === s.name));
  res.install = ensurePackages([...new Set(servers.flatMap((s) => s.packages))], args['no-install'] !== true);

  const running = new Map<string, RunningServer>();
  const why = new Map<string, string>();
  for (const s of servers) {
    const missing = s.packages.find((p) => res.install.failed[p] !== undefined);
    if (missing !== undefined) {
      why.set(s.name, `${missing} is not installed: ${res.install.failed[missing]}`);
      continue;
    }
    try {
      const r = await s.start(tmpDir);
      running.set(s.name, r);
      console.log(`bench:peers: started ${r.command}: ${r.version}`);
    } catch (err) {
      why.set(s.name, err instanceof SkipError ? err.message : `${s.name} did not start: ${(err as Error).message}`);
    }
  }
  const active: Target[] = [];
  for (const t of targets) {
    const srv = running.get(t.server);
    if (srv === undefined) {
      res.skipped[t.name] = why.get(t.server) ?? 'its server did not start';
      console.log(`bench:peers: ${t.name}: skipped: ${res.skipped[t.name]}`);
      continue;
    }
    active.push(t);
    res.systems[t.name] = {
      kind: t.kind,
      server: t.server,
      serverVersion: srv.version,
      serverCommand: srv.command,
      client: t.client,
      settings: t.settings,
      ...(t.echoWhere ? { echoWhere: t.echoWhere } : {}),
    };
  }

  for (const c of cases) {
    const r = (res.cases[c.id] = { title: c.title, metric: c.metric, unit: c.unit, systems: {} as Results['cases'][string]['systems'] });
    const ts = active.filter((t) => canRun(t, c));
    for (const t of ts) r.systems[t.name] = { runs: [], errors: [] };
    for (let run = 0; run < RUNS; run++) {
      for (let k = 0; k < ts.length; k++) {
        const t = ts[(k + run) % ts.length]!;
        const s = r.systems[t.name]!;
        try {
          const f = await c.run(t, t.endpoint(running.get(t.server)!), SIZES);
          s.runs.push(f);
          console.log(`  ${c.id.padEnd(12)} run ${run + 1}/${RUNS}  ${t.name.padEnd(15)} ${describe(f)}`);
        } catch (err) {
          s.errors.push((err as Error).message);
          console.log(`  ${c.id.padEnd(12)} run ${run + 1}/${RUNS}  ${t.name.padEnd(15)} FAILED: ${(err as Error).message}`);
        }
      }
    }
    summarizeCase(c, r);
  }
  res.loadavgAfter = loadavg();

  fs.mkdirSync(resultsDir, { recursive: true });
  fs.writeFileSync(path.join(resultsDir, 'peers-latest.json'), JSON.stringify(res, null, 2) + '\n');
  const { md, files } = writeReport(res, cases);
  console.log(`\n${md}`);
  console.log(`load average after: ${res.loadavgAfter.join(' ')}`);
  console.log(`wrote bench/results/peers-latest.json, peers-latest.md and ${files.join(', ')}`);
}

function describe(f: Figure): string {
  if ('rate' in f) {
    const t = f as ThroughputFigure;
    const beyond = t.unrepaired === undefined ? '' : ` (${t.unrepaired} beyond repair)`;
    return `${t.rate.toLocaleString('en-US')} /s  (${t.received.toLocaleString('en-US')} received, ${t.lost} lost${beyond}, ${t.seconds.toFixed(2)} s)`;
  }
  const l = f as LatencyFigure;
  const beyond = l.unrepaired ? ` (${l.unrepaired} beyond repair)` : '';
  return `p50 ${l.p50} µs  p99 ${l.p99} µs  p99.9 ${l.p999} µs  max ${l.max} µs${l.lost ? `  lost ${l.lost}${beyond}` : ''}`;
}

main()
  .then(cleanup)
  .then(
    () => process.exit(0),
    async (err) => {
      console.error(err);
      await cleanup();
      process.exit(1);
    },
  );
