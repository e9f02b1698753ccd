/**
 * The dashboard end to end in headless Chromium (Debian's `chromium`, driven by
 * playwright-core): the page loads, its browser build of the SDK connects over the
 * WebSocket at /bus, and its numbers change when this test publishes. A screenshot
 * is written to test-results/dashboard-1280.png and -1920.png for a person to look at,
 * after the test has checked that nothing overflows at those widths.
 *
 * Skipped, saying so (test/kit/guards.ts), when /usr/bin/chromium is missing; .ci/run
 * installs it and then requires it, so CI runs this.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chromium, type BrowserContext } from 'playwright-core';
import { CHROMIUM, chromiumProblem, describeNeeding, until, useWorld } from '../kit/index.js';
import { httpBase } from './http.js';

const SHOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'test-results', 'dashboard.png');

// The functions given to page.evaluate run in the page (the test project has no DOM types).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
declare const document: any;

const w = useWorld();
let browser: BrowserContext | null = null;
let profile = '';

describeNeeding('chromium', chromiumProblem())('the dashboard in headless Chromium', () => {
  beforeAll(async () => {
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-chromium-'));
    // A fresh --user-data-dir: playwright passes `profile` as that flag.
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
    fs.rmSync(profile, { recursive: true, force: true });
  });

  it('loads, connects over /bus, and its rates, subjects and latency follow what is published', async () => {
    const b = await w.broker({ httpPort: 0, monitorIntervalMs: 200 });
    const page = await browser!.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(httpBase(b) + '/');
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'live', null, { timeout: 15_000 });
    // The page is a client of the broker, over the WebSocket transport.
    await until(() => [...b.broker.sessions].some((s) => s.name === 'dashboard' && s.link.transport === 'ws'), 'the dashboard session');
    const text = (id: string) => page.locator(`#${id}`).innerText();
    await page.waitForFunction(() => Number(document.body.dataset.updates) >= 1, null, { timeout: 15_000 });
    const before = { tin: await text('c-tin'), conn: await text('c-conn') };
    expect(before.tin).toBe('0');

    const sub = await w.connect(b.url, { name: 'strategy' });
    const pub = await w.connect(b.url, { name: 'pricer', timestamps: true });
    sub.subscribe('md.>', () => {});
    await sub.flush();
    const quote = Buffer.alloc(64, 1);
    const stop = Date.now() + 20_000;
    let seen = false;
    while (!seen && Date.now() < stop) {
      for (let i = 0; i < 500; i++) pub.publish(i % 5 === 0 ? 'md.EURUSD.bid' : 'md.USDJPY.ask', quote);
      await pub.flush();
      await new Promise((r) => setTimeout(r, 50));
      seen = await page.evaluate(() => {
        const rows = document.querySelectorAll('#subjects tbody tr td:first-child');
        const subjects = [...rows].map((td: { textContent: string }) => td.textContent);
        const p50 = document.querySelector('#hops tbody tr:nth-child(3) td:nth-child(3)')?.textContent;
        return subjects.includes('md.USDJPY.ask') && Number(document.getElementById('c-in')?.textContent?.replace(/[^0-9.]/g, '')) > 0 && Number(p50) > 0;
      });
    }
    expect(seen, 'the page showed the traffic: rate, busiest subject, end-to-end p50').toBe(true);
    expect(await text('c-tin')).not.toBe(before.tin);
    expect(Number(await text('c-conn'))).toBe(3);
    // The broker's own subjects (the clients' $SYS.report.* latency reports) are not application traffic.
    const shown = await page.evaluate(() =>
      [...document.querySelectorAll('#subjects tbody tr td:first-child')].map((td: { textContent: string }) => td.textContent),
    );
    expect(shown.filter((x: string) => x.startsWith('$SYS.'))).toEqual([]);
    // One precision rule: no number with more than three significant digits after its unit.
    const numbers = await page.evaluate(() => [...document.querySelectorAll('.card .v, td')].map((e: { textContent: string }) => e.textContent));
    for (const n of numbers as string[]) {
      const m = /^(-?\d+)\.(\d+)( [kMG])?$/.exec(n);
      if (m) expect(m[1]!.replace('-', '').length + m[2]!.length, `"${n}" has three significant digits at most`).toBeLessThanOrEqual(3);
    }
    expect(errors).toEqual([]);
    fs.mkdirSync(path.dirname(SHOT), { recursive: true });
    // Nothing overflows at the widths people use: no horizontal scroll on the page, no
    // panel wider than its box, no table clipped.
    for (const width of [1280, 1920]) {
      await page.setViewportSize({ width, height: 1000 });
      const bumped = Number(await page.evaluate(() => document.body.dataset.updates)) + 1;
      await page.waitForFunction((n: number) => Number(document.body.dataset.updates) >= n, bumped, { timeout: 15_000 });
      const overflow = await page.evaluate(() => {
        const out: string[] = [];
        const root = document.documentElement;
        if (root.scrollWidth > root.clientWidth) out.push(`page ${root.scrollWidth} > ${root.clientWidth}`);
        for (const el of document.querySelectorAll('section, .card')) {
          if (el.scrollWidth > el.clientWidth + 1) out.push(`${el.querySelector('h2, .k')?.textContent}: ${el.scrollWidth} > ${el.clientWidth}`);
        }
        return out;
      });
      expect(overflow, `at ${width} px`).toEqual([]);
      await page.screenshot({ path: SHOT.replace(/\.png$/, `-${width}.png`), fullPage: true });
    }
    await page.close();
  });
});
