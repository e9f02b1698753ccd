import { describe, expect, it } from 'vitest';
import { PALETTE, barChart, compact, esc, fitFont, linearTicks, logTicks, percentileChart } from '../../bench/peers/svg.js';
import { TARGETS } from '../../dist/bench/peers/targets/index.js'; // from dist, as the targets resolve their files there

/**
 * A small well-formedness check: every tag closes in order, attributes are quoted,
 * and text has no raw '<' or '&'. Enough for SVG we write ourselves.
 */
function assertWellFormed(xml: string): void {
  const stack: string[] = [];
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let at = 0;
  for (let m = tag.exec(xml); m !== null; m = tag.exec(xml)) {
    const between = xml.slice(at, m.index);
    expect(between, `text before <${m[2]}>`).not.toMatch(/[<]|&(?!amp;|lt;|gt;|quot;)/);
    at = m.index + m[0].length;
    const [, close, name, , self] = m;
    if (close) expect(stack.pop(), `closing </${name}>`).toBe(name);
    else if (!self) stack.push(name!);
  }
  expect(xml.slice(at).trim()).toBe('');
  expect(stack).toEqual([]);
}

const series = (name: string, k: number) => ({ name, values: { p50: 20 * k, p90: 30 * k, p99: 90 * k, p999: 400 * k, max: 2000 * k } });

describe('logTicks', () => {
  it('covers the range with the decades around it, 1-2-5 within three decades', () => {
    expect(logTicks(3, 400)).toEqual([1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]);
  });

  it('keeps only the powers of ten over a wider range', () => {
    expect(logTicks(3, 40_000)).toEqual([1, 10, 100, 1000, 10_000, 100_000]);
  });

  it('spans at least one decade when min and max share one', () => {
    expect(logTicks(20, 30)).toEqual([10, 20, 50, 100]);
  });
});

describe('linearTicks and compact', () => {
  it('starts at zero and reaches the maximum in round steps', () => {
    expect(linearTicks(2_100_000)).toEqual([0, 500_000, 1_000_000, 1_500_000, 2_000_000, 2_500_000]);
  });

  it('writes large numbers with k and M', () => {
    expect(compact(2_100_000)).toBe('2.1M');
    expect(compact(1234)).toBe('1.23k');
    expect(compact(68.42)).toBe('68.4');
  });
});

describe('fitFont', () => {
  it('keeps the size for a short title and shrinks a long one to fit', () => {
    expect(fitFont('One hop', 16, 700)).toBe(16);
    const long = 'x'.repeat(120);
    const f = fitFont(long, 16, 700);
    expect(f).toBeLessThan(16);
    expect(f * 0.6 * long.length).toBeLessThanOrEqual(700);
  });
});

describe('percentileChart', () => {
  const svg = percentileChart({ title: 'One hop <p50 & p99>', series: [series('hopbus-tcp', 1), series('nats', 2)], yLabel: 'latency (µs)' });

  it('is well-formed SVG with the title escaped', () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    assertWellFormed(svg);
    expect(svg).toContain('One hop &lt;p50 &amp; p99&gt;');
  });

  it('draws one line per series, named in the legend', () => {
    expect(svg.match(/<polyline /g)).toHaveLength(2);
    expect(svg).toContain('data-name="hopbus-tcp"');
    expect(svg).toContain('>nats</text>');
  });

  it('labels the x axis in nines and the y axis with log ticks', () => {
    for (const l of ['p50', 'p90', 'p99', 'p99.9', 'max']) expect(svg).toContain(`>${l}</text>`);
    const yticks = [...svg.matchAll(/class="ytick"[^>]*>([^<]+)</g)].map((m) => m[1]);
    expect(yticks).toEqual(['10', '20', '50', '100', '200', '500', '1k', '2k', '5k', '10k']);
  });

  it('puts a larger latency higher on the chart', () => {
    const ys = [...svg.matchAll(/<polyline points="([^"]+)"/g)].map((m) => m[1]!.split(' ').map((p) => Number(p.split(',')[1])));
    // SVG y grows downwards: each series climbs from p50 to max, nats above hopbus-tcp.
    for (const y of ys) expect([...y].sort((a, b) => b - a)).toEqual(y);
    expect(ys[1]![0]).toBeLessThan(ys[0]![0]!);
  });
});

describe('barChart', () => {
  const svg = barChart({
    title: 'Throughput',
    groups: ['1->1 16 B', 'fan-out'],
    series: [
      { name: 'hopbus-tcp', values: [2_100_000, 900_000] },
      { name: 'node-tcp-relay', values: [3_000_000, null], color: '#000000' },
    ],
    yLabel: 'msg/s',
  });

  it('is well-formed, with a bar and a label per value and n/a for a missing one', () => {
    assertWellFormed(svg);
    expect(
      svg
        .match(/<g class="series"[\s\S]*?<\/g>/g)!
        .join('')
        .match(/<rect /g),
    ).toHaveLength(3);
    expect(svg).toContain('>2.1M</text>');
    expect(svg).toContain('>n/a</text>');
    expect(svg).toContain('fill="#000000"');
  });

  it('escapes group names', () => {
    expect(svg).toContain('1-&gt;1 16 B');
    expect(esc('a<b')).toBe('a&lt;b');
  });
});

describe('the palette', () => {
  it('gives every system of the peer benchmark a colour of its own', () => {
    expect(new Set(PALETTE.map((c) => c.toLowerCase())).size).toBe(PALETTE.length);
    expect(TARGETS.length).toBeLessThanOrEqual(PALETTE.length);
    // One grey at most: two greys (or two blues) read as one system.
    const grey = PALETTE.filter((c) => {
      const [r, g, b] = [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
      return Math.max(r!, g!, b!) - Math.min(r!, g!, b!) < 16;
    });
    expect(grey.length).toBeLessThanOrEqual(1);
  });
});
