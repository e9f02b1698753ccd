/**
 * The dashboard behind TLS and monitoring credentials, in headless Chromium: served over
 * HTTPS, its client connects over wss:// with the monitoring token it was opened with
 * (/?token=...), which it keeps in sessionStorage and takes out of the address bar.
 * Skipped, saying so, without Chromium or openssl (.ci/run installs and requires both).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chromium, type BrowserContext } from 'playwright-core';
import { CHROMIUM, chromiumProblem, describeNeeding, until, useWorld } from '../kit/index.js';
import { makeCerts, opensslProblem, type CertFiles } from './certs.js';

// The functions given to page.evaluate run in the page (the test project has no DOM types).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
declare const document: any, location: any, sessionStorage: any;

const w = useWorld();
let browser: BrowserContext | null = null;
let profile = '';
let certs: CertFiles;

describeNeeding('chromium', chromiumProblem() ?? opensslProblem())('the dashboard over HTTPS with a monitoring token', () => {
  beforeAll(async () => {
    certs = makeCerts([]);
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      // The test CA is not the browser's: trust this broker's certificate for the test.
      ignoreHTTPSErrors: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
    fs.rmSync(profile, { recursive: true, force: true });
    certs?.remove();
  });

  it('connects with the token from its URL, keeps it for the tab, and shows live figures', async () => {
    const b = await w.broker({
      httpPort: 0,
      monitorIntervalMs: 100,
      tls: { cert: certs.serverCert, key: certs.serverKey },
      users: [{ user: 'alice', password: 'a' }],
      monitoring: { token: 'mon-secret' },
    });
    const page = await browser!.newPage();
    await page.goto(`https://127.0.0.1:${b.broker.httpPort}/?token=mon-secret`);
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'live', null, { timeout: 15_000 });
    await page.waitForFunction(() => Number(document.body.dataset.updates) >= 1, null, { timeout: 15_000 });
    await until(() => [...b.broker.sessions].some((s) => s.name === 'dashboard' && s.link.transport === 'ws'), 'the dashboard session over wss');
    expect(await page.evaluate(() => location.search)).toBe('');
    expect(await page.evaluate(() => sessionStorage.getItem('hopbus.token'))).toBe('mon-secret');
    // A reload (no token in the URL) still connects, from sessionStorage.
    await page.reload();
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'live', null, { timeout: 15_000 });
    // Without the token the page cannot connect: the broker takes no anonymous connections.
    const other = await browser!.newPage();
    await other.goto(`https://127.0.0.1:${b.broker.httpPort}/`);
    await other.waitForFunction(() => /^error/.test(document.getElementById('status')?.textContent ?? ''), null, { timeout: 15_000 });
    expect(b.broker.counters.authFailures).toBeGreaterThanOrEqual(1);
  });
});
