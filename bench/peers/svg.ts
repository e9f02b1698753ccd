/**
 * The benchmark's plots, written as SVG text by hand: no plotting dependency, and
 * the output is plain enough to read in a diff.
 *
 *  - percentileChart: one line per system through its p50, p90, p99, p99.9 and max.
 *    x is a "nines" scale (x = -log10(1 - p), so 90 -> 1, 99 -> 2, 99.9 -> 3; max is
 *    drawn one step past p99.9), y is latency on a log scale.
 *  - barChart: groups of bars (one per system) on a linear scale from zero, each bar
 *    labelled with its value; a missing value is marked "n/a".
 *
 * The legend sits in a right-hand margin of its own, so it never covers data.
 */

export interface PercentilePoints {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface PercentileSeries {
  name: string;
  /** Defaults to the palette colour of the series' index; pass one to keep a system's colour across charts. */
  color?: string;
  values: PercentilePoints;
}

export interface PercentileChart {
  title: string;
  subtitle?: string;
  series: PercentileSeries[];
  /** Axis label, e.g. 'latency (µs, log scale)'. */
  yLabel: string;
}

export interface BarSeries {
  name: string;
  color?: string;
  /** One value per group; null where the system has no figure. */
  values: (number | null)[];
}

export interface BarChart {
  title: string;
  subtitle?: string;
  groups: string[];
  series: BarSeries[];
  yLabel: string;
}

/**
 * Series colours, in order: Kelly's colours of maximum contrast (without white and black,
 * and the two palest yellows last), so that up to 20 systems in one chart never share a
 * colour. The one grey is last but for those yellows: it reads as "a floor".
 */
export const PALETTE = [
  '#0067a5', // blue
  '#be0032', // red
  '#008856', // green
  '#f38400', // orange
  '#875692', // purple
  '#882d17', // reddish brown
  '#e68fac', // purplish pink
  '#8db600', // yellow green
  '#604e97', // violet
  '#e25822', // reddish orange
  '#a1caf1', // light blue
  '#b3446c', // purplish red
  '#654522', // yellowish brown
  '#2b3d26', // olive green
  '#f99379', // yellowish pink
  '#c2b280', // buff
  '#f6a600', // orange yellow
  '#848482', // grey
  '#dcd300', // greenish yellow
  '#f3c300', // yellow
];

const W = 820;
const H = 460;
const M = { left: 78, right: 190, top: 62, bottom: 58 };
const PW = W - M.left - M.right;
const PH = H - M.top - M.bottom;
const FONT = 'font-family="Helvetica, Arial, sans-serif"';

/** Escapes text for XML content and attribute values. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const colorOf = (s: { color?: string }, i: number): string => s.color ?? PALETTE[i % PALETTE.length]!;
const r1 = (x: number) => Math.round(x * 10) / 10;

/**
 * Ticks for a log axis covering [min, max]: the decades around them, with 2 and 5
 * between powers of ten when the range spans at most three decades.
 */
export function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(Math.max(min, 1e-9)));
  let hi = Math.ceil(Math.log10(Math.max(max, 1e-9)));
  if (hi === lo) hi = lo + 1;
  const steps = hi - lo <= 3 ? [1, 2, 5] : [1];
  const out: number[] = [];
  for (let e = lo; e <= hi; e++) {
    for (const s of steps) {
      const v = s * 10 ** e;
      if (e === hi && s > 1) break;
      out.push(Number(v.toPrecision(12)));
    }
  }
  return out;
}

/** Round ticks for a linear axis from 0 to at least max (about 5 of them). */
export function linearTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((s) => s * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v < max + step * 0.999; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** 1234 -> '1.23k', 2100000 -> '2.1M'; small numbers as they are. */
export function compact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e3) return `${Number((v / 1e3).toPrecision(3))}k`;
  return String(Number(v.toPrecision(3)));
}

/**
 * The font size, at most `size`, at which `text` fits in `width` pixels. No font
 * metrics here, so it assumes the average glyph of a sans-serif font: 0.6 em.
 */
export function fitFont(text: string, size: number, width: number): number {
  return Math.min(size, Math.floor((width / (0.6 * text.length)) * 10) / 10);
}

function frame(title: string, subtitle: string | undefined, yLabel: string, body: string[]): string {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT}>`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${M.left}" y="26" font-size="${fitFont(title, 16, W - M.left - 16)}" font-weight="bold">${esc(title)}</text>`,
  ];
  if (subtitle) out.push(`<text x="${M.left}" y="45" font-size="${fitFont(subtitle, 11, W - M.left - 16)}" fill="#555555">${esc(subtitle)}</text>`);
  out.push(`<text transform="translate(18 ${M.top + PH / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(yLabel)}</text>`);
  out.push(...body, '</svg>', '');
  return out.join('\n');
}

function legend(series: { name: string; color?: string }[], marker: 'line' | 'box'): string[] {
  const x = M.left + PW + 20;
  const out = [`<g class="legend">`];
  series.forEach((s, i) => {
    const y = M.top + 8 + i * 20;
    const c = colorOf(s, i);
    const n = s.name;
    out.push(
      marker === 'line'
        ? `<line x1="${x}" y1="${y}" x2="${x + 22}" y2="${y}" stroke="${c}" stroke-width="2.5"/><circle cx="${x + 11}" cy="${y}" r="3" fill="${c}"/>`
        : `<rect x="${x + 5}" y="${y - 6}" width="12" height="12" fill="${c}"/>`,
      `<text x="${x + 30}" y="${y + 4}" font-size="12">${esc(n)}</text>`,
    );
  });
  out.push('</g>');
  return out;
}

const NINES: { key: keyof PercentilePoints; label: string; x: number }[] = [
  { key: 'p50', label: 'p50', x: -Math.log10(0.5) },
  { key: 'p90', label: 'p90', x: 1 },
  { key: 'p99', label: 'p99', x: 2 },
  { key: 'p999', label: 'p99.9', x: 3 },
  { key: 'max', label: 'max', x: 4 },
];

/** Latency percentile curves, one per series (x: nines, y: log). */
export function percentileChart(c: PercentileChart): string {
  const all = c.series.flatMap((s) => NINES.map((n) => s.values[n.key])).filter((v) => v > 0);
  const ticks = logTicks(all.length ? Math.min(...all) : 1, all.length ? Math.max(...all) : 10);
  const yLo = Math.log10(ticks[0]!);
  const yHi = Math.log10(ticks[ticks.length - 1]!);
  const px = (x: number) => M.left + ((x - NINES[0]!.x) / (NINES[4]!.x - NINES[0]!.x)) * PW;
  const py = (v: number) => M.top + PH - ((Math.log10(v) - yLo) / (yHi - yLo)) * PH;
  const body: string[] = [`<g class="grid" stroke="#dddddd" stroke-width="1">`];
  for (const t of ticks) body.push(`<line x1="${M.left}" y1="${r1(py(t))}" x2="${M.left + PW}" y2="${r1(py(t))}"/>`);
  for (const n of NINES) body.push(`<line x1="${r1(px(n.x))}" y1="${M.top}" x2="${r1(px(n.x))}" y2="${M.top + PH}"/>`);
  body.push('</g>', `<g class="axes" font-size="11">`);
  body.push(`<rect x="${M.left}" y="${M.top}" width="${PW}" height="${PH}" fill="none" stroke="#333333"/>`);
  for (const t of ticks) body.push(`<text class="ytick" x="${M.left - 6}" y="${r1(py(t) + 4)}" text-anchor="end">${compact(t)}</text>`);
  for (const n of NINES) body.push(`<text class="xtick" x="${r1(px(n.x))}" y="${M.top + PH + 18}" text-anchor="middle">${n.label}</text>`);
  body.push(`<text x="${M.left + PW / 2}" y="${H - 14}" text-anchor="middle" font-size="12">percentile (nines scale)</text>`, '</g>');
  c.series.forEach((s, i) => {
    const col = colorOf(s, i);
    const pts = NINES.filter((n) => s.values[n.key] > 0).map((n) => `${r1(px(n.x))},${r1(py(s.values[n.key]))}`);
    body.push(`<g class="series" data-name="${esc(s.name)}">`);
    body.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${col}" stroke-width="2.5" stroke-linejoin="round"/>`);
    for (const p of pts) {
      const [x, y] = p.split(',');
      body.push(`<circle cx="${x}" cy="${y}" r="3" fill="${col}"/>`);
    }
    body.push('</g>');
  });
  body.push(...legend(c.series, 'line'));
  return frame(c.title, c.subtitle, c.yLabel, body);
}

/** Grouped bars from zero, each labelled with its value. */
export function barChart(c: BarChart): string {
  const vals = c.series.flatMap((s) => s.values).filter((v): v is number => v !== null);
  const ticks = linearTicks(vals.length ? Math.max(...vals) : 1);
  const top = ticks[ticks.length - 1]!;
  const py = (v: number) => M.top + PH - (v / top) * PH;
  const gw = PW / Math.max(1, c.groups.length);
  const bw = Math.min(28, (gw * 0.8) / Math.max(1, c.series.length));
  const body: string[] = [`<g class="grid" stroke="#dddddd" stroke-width="1">`];
  for (const t of ticks) body.push(`<line x1="${M.left}" y1="${r1(py(t))}" x2="${M.left + PW}" y2="${r1(py(t))}"/>`);
  body.push('</g>', `<g class="axes" font-size="11">`);
  body.push(`<rect x="${M.left}" y="${M.top}" width="${PW}" height="${PH}" fill="none" stroke="#333333"/>`);
  for (const t of ticks) body.push(`<text class="ytick" x="${M.left - 6}" y="${r1(py(t) + 4)}" text-anchor="end">${compact(t)}</text>`);
  c.groups.forEach((g, gi) =>
    body.push(`<text class="xtick" x="${r1(M.left + gw * gi + gw / 2)}" y="${M.top + PH + 18}" text-anchor="middle">${esc(g)}</text>`),
  );
  body.push('</g>');
  c.series.forEach((s, si) => {
    const col = colorOf(s, si);
    body.push(`<g class="series" data-name="${esc(s.name)}">`);
    s.values.forEach((v, gi) => {
      const x = M.left + gw * gi + (gw - bw * c.series.length) / 2 + bw * si;
      const cx = r1(x + bw / 2);
      if (v === null) {
        body.push(`<text transform="translate(${r1(cx + 3)} ${M.top + PH - 4}) rotate(-90)" font-size="9" fill="#999999">n/a</text>`);
        return;
      }
      const y = py(v);
      body.push(`<rect x="${r1(x + 1)}" y="${r1(y)}" width="${r1(bw - 2)}" height="${r1(M.top + PH - y)}" fill="${col}"/>`);
      // Vertical labels: bars are narrower than their numbers. Inside the bar when the
      // bar is tall enough, above it otherwise.
      const inside = M.top + PH - y > 44;
      body.push(
        `<text transform="translate(${r1(cx + 3.5)} ${r1(inside ? y + 5 : y - 4)}) rotate(-90)" font-size="10" text-anchor="${inside ? 'end' : 'start'}" fill="${inside ? '#ffffff' : '#333333'}">${compact(v)}</text>`,
      );
    });
    body.push('</g>');
  });
  body.push(...legend(c.series, 'box'));
  return frame(c.title, c.subtitle, c.yLabel, body);
}
