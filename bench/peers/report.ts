/**
 * The peer benchmark's results: their JSON shape, the Markdown tables with the ratio
 * of hopbus to every other system for every figure, and the SVG plots.
 */
import { medianOf, summarize, type Percentiles, type Summary } from '../stats.js';
import type { Case, Figure, LatencyFigure, Sizes, ThroughputFigure } from './cases.js';
import type { InstallReport } from './install.js';
import { barChart, percentileChart, PALETTE } from './svg.js';
import type { TargetKind } from './target.js';

export interface SystemInfo {
  kind: TargetKind;
  server: string;
  serverVersion: string;
  serverCommand: string;
  client: string;
  settings: readonly string[];
  /** Where the ping-pong's far side ran, when not in another process. */
  echoWhere?: string;
}

export type LatencySummary = Percentiles & { spread: Record<string, [number, number]>; lost: number; unrepaired?: number };
export type ThroughputSummary = Summary & { lost: number; unrepaired?: number; unit: string };

/** Lost beyond repair, summed over runs, where the transport reports it (multicast). */
function unrepairedOf(runs: { unrepaired?: number }[]): { unrepaired?: number } {
  return runs.some((x) => x.unrepaired !== undefined) ? { unrepaired: runs.reduce((a, x) => a + (x.unrepaired ?? 0), 0) } : {};
}

/** The "lost" cell: deliveries missing, and of them what the transport reported lost beyond repair. */
const lostCell = (m: { lost: number; unrepaired?: number }) => (m.unrepaired === undefined ? `${m.lost}` : `${m.lost} (${m.unrepaired} beyond repair)`);

export interface SystemResult {
  runs: Figure[];
  errors: string[];
  median?: LatencySummary | ThroughputSummary;
}

export interface CaseResult {
  title: string;
  metric: 'latency' | 'throughput';
  unit: string;
  systems: Record<string, SystemResult>;
}

export interface Results {
  date: string;
  quick: boolean;
  runs: number;
  /** Samples and message counts per case. */
  sizes: Sizes;
  machine: { cpus: number; model: string | undefined; memGiB: number; kernel: string; platform: string };
  node: string;
  loadavgBefore: number[];
  loadavgAfter?: number[];
  install: InstallReport;
  systems: Record<string, SystemInfo>;
  skipped: Record<string, string>;
  cases: Record<string, CaseResult>;
}

/** Fills in each system's median and spread from its runs. */
export function summarizeCase(c: Case, r: CaseResult): void {
  for (const s of Object.values(r.systems)) {
    if (s.runs.length === 0) continue;
    if (c.metric === 'latency') {
      const runs = s.runs as LatencyFigure[];
      s.median = { ...medianOf(runs), lost: runs.reduce((a, x) => a + x.lost, 0), ...unrepairedOf(runs) };
    } else {
      const runs = s.runs as ThroughputFigure[];
      s.median = { ...summarize(runs.map((x) => x.rate)), lost: runs.reduce((a, x) => a + x.lost, 0), ...unrepairedOf(runs), unit: c.unit };
    }
  }
}

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const int = (v: number) => Math.round(v).toLocaleString('en-US');
const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : '–');
const KEYS = ['p50', 'p90', 'p99', 'p999', 'max'] as const;
const KEY_LABEL: Record<string, string> = { p50: 'p50', p90: 'p90', p99: 'p99', p999: 'p99.9', max: 'max' };

/** The systems with a figure for a case, in registry order. */
const withFigures = (r: CaseResult, order: string[]) => order.filter((n) => r.systems[n]?.median !== undefined);

export function markdown(res: Results, cases: readonly Case[], order: string[]): string {
  const md: string[] = [];
  const hopbus = order.filter((n) => res.systems[n]?.kind === 'hopbus');
  const others = order.filter((n) => res.systems[n] !== undefined && res.systems[n]!.kind !== 'hopbus');
  md.push(`# hopbus against its peers, ${res.date}`, '');
  if (res.quick) md.push('**Quick mode: a smoke check with few samples, not figures to quote.**', '');
  md.push(`- machine: ${res.machine.cpus} x ${res.machine.model ?? '?'}, ${res.machine.memGiB} GiB, ${res.machine.platform} ${res.machine.kernel}`);
  md.push(
    `- sizes: ${Object.entries(res.sizes)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  md.push(`- Node ${res.node}; ${res.runs} run${res.runs > 1 ? 's' : ''} per case, interleaved across systems; medians, spread = min..max over the runs`);
  md.push(
    `- load average before: ${res.loadavgBefore.map((x) => x.toFixed(2)).join(' ')}, after: ${(res.loadavgAfter ?? []).map((x) => x.toFixed(2)).join(' ')}`,
  );
  const inst = res.install;
  md.push(
    `- peers installed by this run: ${inst.installed.join(', ') || 'none'}; already present: ${inst.present.join(', ') || 'none'}${
      Object.keys(inst.failed).length
        ? `; not installed: ${Object.entries(inst.failed)
            .map(([p, w]) => `${p} (${w})`)
            .join(', ')}`
        : ''
    }`,
  );
  for (const [n, why] of Object.entries(res.skipped)) md.push(`- **${n}: skipped: ${why}**`);
  md.push('', '## Systems', '', '| system | server | client | settings |', '|---|---|---|---|');
  for (const n of order) {
    const s = res.systems[n];
    if (s) md.push(`| ${n} | ${s.serverVersion} | ${s.client} | ${s.settings.join('; ')} |`);
  }

  // The overview: hopbus over TCP against each other system, one row per figure.
  const main = hopbus[0];
  if (main !== undefined && others.length) {
    const cols = [...hopbus.slice(1), ...others];
    md.push('', `## ${main} / each system`, '');
    md.push('Latency rows: below 1.00 means hopbus is faster. Throughput rows: above 1.00 means hopbus moves more.', '');
    md.push(`| figure | ${cols.join(' | ')} |`, `|---|${cols.map(() => '---:').join('|')}|`);
    for (const c of cases) {
      const r = res.cases[c.id];
      const mine = r?.systems[main]?.median;
      if (r === undefined || mine === undefined) continue;
      const rows: [string, (m: LatencySummary | ThroughputSummary) => number][] =
        c.metric === 'latency'
          ? [
              ['p50', (m) => (m as LatencySummary).p50],
              ['p99', (m) => (m as LatencySummary).p99],
            ]
          : [['msg/s', (m) => (m as ThroughputSummary).median]];
      for (const [label, get] of rows) {
        md.push(`| ${c.id} ${label} | ${cols.map((o) => (r.systems[o]?.median ? ratio(get(mine), get(r.systems[o]!.median!)) : 'n/a')).join(' | ')} |`);
      }
    }
  }

  for (const c of cases) {
    const r = res.cases[c.id];
    if (r === undefined) continue;
    md.push('', `## ${c.title}`, '');
    const names = withFigures(r, order);
    if (c.group === 'pingpong') {
      const elsewhere = names.filter((n) => res.systems[n]?.echoWhere).map((n) => `${n}: ${res.systems[n]!.echoWhere}`);
      if (elsewhere.length > 0)
        md.push(`The far side runs in another process, except (a transport that does not leave its process) ${elsewhere.join('; ')}.`, '');
    }
    if (c.metric === 'latency') {
      md.push(`\`${c.id}\`, µs. ![${c.id}](peers-${c.id}.svg)`, '');
      md.push('| system | p50 | p90 | p99 | p99.9 | max | p50 spread | p99 spread | lost |', '|---|---:|---:|---:|---:|---:|---|---|---:|');
      for (const n of names) {
        const m = r.systems[n]!.median as LatencySummary;
        const sp = (k: string) => `${fmt(m.spread[k]![0])}..${fmt(m.spread[k]![1])}`;
        md.push(`| ${n} | ${fmt(m.p50)} | ${fmt(m.p90)} | ${fmt(m.p99)} | ${fmt(m.p999)} | ${fmt(m.max)} | ${sp('p50')} | ${sp('p99')} | ${lostCell(m)} |`);
      }
    } else {
      md.push(`\`${c.id}\`, ${c.unit}. ![${c.id}](${c.group === 'fanout' ? 'peers-fanout-tp.svg' : 'peers-throughput.svg'})`, '');
      md.push(`| system | ${c.unit} (median) | spread | lost |`, '|---|---:|---|---:|');
      for (const n of names) {
        const m = r.systems[n]!.median as ThroughputSummary;
        md.push(`| ${n} | ${int(m.median)} | ${int(m.min)}..${int(m.max)} | ${lostCell(m)} |`);
      }
    }
    for (const n of order) {
      const s = r.systems[n];
      if (s && s.errors.length) md.push('', `${n}: ${s.errors.length} run(s) failed: ${[...new Set(s.errors)].join('; ')}`);
    }
    // Each hopbus transport against every system that is not hopbus (hopbus/hopbus is in the overview).
    const pairs = hopbus.filter((h) => r.systems[h]?.median).flatMap((h) => names.filter((o) => res.systems[o]!.kind !== 'hopbus').map((o) => [h, o] as const));
    if (pairs.length === 0) continue;
    md.push('');
    if (c.metric === 'latency') {
      md.push('| ratio (below 1: hopbus faster) | p50 | p90 | p99 | p99.9 | max |', '|---|---:|---:|---:|---:|---:|');
      for (const [h, o] of pairs) {
        const a = r.systems[h]!.median as LatencySummary;
        const b = r.systems[o]!.median as LatencySummary;
        md.push(`| ${h} / ${o} | ${KEYS.map((k) => ratio(a[k], b[k])).join(' | ')} |`);
      }
    } else {
      md.push('| ratio (above 1: hopbus moves more) | median |', '|---|---:|');
      for (const [h, o] of pairs) {
        md.push(`| ${h} / ${o} | ${ratio((r.systems[h]!.median as ThroughputSummary).median, (r.systems[o]!.median as ThroughputSummary).median)} |`);
      }
    }
  }
  return md.join('\n') + '\n';
}

/** One SVG per latency case, and bar charts for throughput: file name -> content. */
export function plots(res: Results, cases: readonly Case[], order: string[]): Map<string, string> {
  const out = new Map<string, string>();
  // One colour per system across every chart; more systems than colours would reuse one, so refuse that.
  if (order.length > PALETTE.length) throw new Error(`${order.length} systems but ${PALETTE.length} distinct colours: extend PALETTE`);
  const color = (n: string) => PALETTE[order.indexOf(n)]!;
  const sub = `${res.quick ? 'QUICK SMOKE RUN, not figures. ' : ''}Median of ${res.runs} run(s), ${res.date.slice(0, 10)}, ${res.machine.cpus} x ${res.machine.model ?? '?'}, Node ${res.node}`;
  const bars = new Map<string, Case[]>();
  for (const c of cases) {
    const r = res.cases[c.id];
    if (r === undefined) continue;
    const names = withFigures(r, order);
    if (c.metric === 'latency') {
      out.set(
        `peers-${c.id}.svg`,
        percentileChart({
          title: c.title,
          subtitle: sub,
          yLabel: 'latency (µs, log scale)',
          series: names.map((n) => ({ name: n, color: color(n), values: r.systems[n]!.median as LatencySummary })),
        }),
      );
    } else {
      const file = c.group === 'fanout' ? 'peers-fanout-tp.svg' : 'peers-throughput.svg';
      bars.set(file, [...(bars.get(file) ?? []), c]);
    }
  }
  for (const [file, cs] of bars) {
    const names = order.filter((n) => cs.some((c) => res.cases[c.id]!.systems[n]?.median));
    out.set(
      file,
      barChart({
        title:
          file === 'peers-throughput.svg'
            ? 'Throughput, 1 publisher -> N subscribers (msg/s per subscriber)'
            : 'Fan-out, 100 subscriptions on 10 subjects (deliveries/s)',
        subtitle: sub,
        yLabel: cs[0]!.unit,
        groups: cs.map((c) => c.id.replace(/^tp-1x(\d+)-(\d+)$/, '1 -> $1, $2 B')),
        series: names.map((n) => ({
          name: n,
          color: color(n),
          values: cs.map((c) => (res.cases[c.id]!.systems[n]?.median as ThroughputSummary | undefined)?.median ?? null),
        })),
      }),
    );
  }
  return out;
}
