/**
 * `hopbus broker` as an operator runs it: where each option comes from (flag, then its
 * HOPBUS_* variable, then the --config file, then the default), what goes to standard
 * output (JSON log lines only) and to standard error (the start-up lines), the pretty
 * log format, and the warning for a broker reachable from other hosts without
 * authentication.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { READY, cli, run, start, useCli, waitFor, type Proc } from './harness.js';

useCli();

async function ready(p: Proc): Promise<string> {
  return (await waitFor(p, READY, 'stderr'))[1]!.trim().split(/\s+/)[0]!;
}

async function serverName(url: string): Promise<string> {
  const r = await run(['ping', '-s', url, '-n', '1']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split(' ')[2]!;
}

describe('hopbus broker: options from flags, environment and config file', () => {
  it('a flag wins over its variable, which wins over the config file, which wins over the default', async () => {
    const file = path.join(cli.tmp, 'name.json');
    fs.writeFileSync(file, JSON.stringify({ name: 'from-file' }));
    const base = ['broker', '--port', '0', '--no-nats', '--config', file];
    const fromFile = start(base);
    expect(await serverName(await ready(fromFile))).toBe('from-file');
    const fromEnv = start(base, { env: { HOPBUS_NAME: 'from-env' } });
    expect(await serverName(await ready(fromEnv))).toBe('from-env');
    const fromFlag = start([...base, '--name', 'from-flag'], { env: { HOPBUS_NAME: 'from-env' } });
    expect(await serverName(await ready(fromFlag))).toBe('from-flag');
    // The port and the config file themselves from the environment.
    const allEnv = start(['broker', '--no-nats'], { env: { HOPBUS_PORT: '0', HOPBUS_CONFIG: file } });
    const url = await ready(allEnv);
    expect(url).not.toMatch(/:7400$/);
    expect(await serverName(url)).toBe('from-file');
  });

  it('a bad value in a variable is a usage error naming the flag; --help names every variable', async () => {
    const r = await run(['broker', '--no-nats'], { env: { HOPBUS_PORT: 'abc' }, killOn: READY });
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('hopbus: --port must be an integer >= 0, got "abc"');
    const help = await run(['broker', '--help']);
    for (const v of ['HOPBUS_HOST', 'HOPBUS_PORT', 'HOPBUS_HTTP_PORT', 'HOPBUS_NATS_PORT', 'HOPBUS_CONFIG', 'HOPBUS_LOG_LEVEL', 'HOPBUS_LOG_FORMAT']) {
      expect(help.stdout).toContain(`[${v}]`);
    }
  });
});

describe('hopbus broker: what it prints where', () => {
  it('standard output holds only JSON log lines; the start-up lines are on standard error', async () => {
    const p = start(['broker', '--port', '0', '--no-nats', '--http-port', '0']);
    await ready(p);
    await waitFor(p, /"msg":"broker started"/);
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
    const lines = p.out.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const l of lines) expect(() => JSON.parse(l) as unknown, l).not.toThrow();
    expect(p.out.stderr).toMatch(/^hopbus broker ready: tcp:\/\/127\.0\.0\.1:\d+/m);
    expect(p.out.stderr).toMatch(/^monitoring: http:\/\/127\.0\.0\.1:\d+\//m);
  });

  it('--log-format pretty writes readable lines for a terminal, not JSON', async () => {
    const p = start(['broker', '--port', '0', '--no-nats', '--log-format', 'pretty']);
    await ready(p);
    await waitFor(p, /broker started/);
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
    const started = p.out.stdout.split('\n').find((l) => l.includes('broker started'))!;
    expect(started).toMatch(/INFO/);
    expect(() => JSON.parse(started) as unknown).toThrow();
    const bad = await run(['broker', '--log-format', 'xml']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--log-format must be json or pretty, got "xml"');
  });

  it('warns when it listens beyond loopback with no authentication configured', async () => {
    const open = start(['broker', '--host', '0.0.0.0', '--port', '0', '--no-nats']);
    await ready(open);
    expect(open.out.stderr).toMatch(/^hopbus: warning: listening on 0\.0\.0\.0 with no authentication configured/m);
    const local = start(['broker', '--port', '0', '--no-nats']);
    await ready(local);
    // The warning would come before the ready line: its absence here is final.
    expect(local.out.stderr).not.toContain('warning');
  });
});
