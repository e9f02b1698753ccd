/**
 * The client commands authenticate: --user and --password (or HOPBUS_USER and
 * HOPBUS_PASSWORD), --token (or HOPBUS_TOKEN), against a real broker process configured
 * with a user and a token.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { READY, cli, run, start, useCli, waitFor } from './harness.js';

useCli();

async function guarded(): Promise<string> {
  const file = path.join(cli.tmp, `auth-${process.hrtime.bigint()}.json`);
  fs.writeFileSync(file, JSON.stringify({ users: [{ user: 'desk', password: 's3cret' }], tokens: ['t0ken'] }));
  const p = start(['broker', '--port', '0', '--no-nats', '--config', file]);
  return (await waitFor(p, READY, 'stderr'))[1]!.trim().split(/\s+/)[0]!;
}

describe('credentials on the command line', () => {
  it('--user/--password and --token are accepted, wrong or missing ones are refused (exit 1, AUTH)', async () => {
    const url = await guarded();
    expect((await run(['ping', '-q', '-s', url, '--user', 'desk', '--password', 's3cret'])).code).toBe(0);
    expect((await run(['ping', '-q', '-s', url, '--token', 't0ken'])).code).toBe(0);
    const wrong = await run(['ping', '-s', url, '--user', 'desk', '--password', 'nope']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/AUTH|[Aa]uthoriz|credentials/);
    expect((await run(['ping', '-q', '-s', url])).code).toBe(1);
  });

  it('takes them from HOPBUS_USER, HOPBUS_PASSWORD and HOPBUS_TOKEN, and a flag wins over its variable', async () => {
    const url = await guarded();
    expect((await run(['ping', '-q', '-s', url], { env: { HOPBUS_USER: 'desk', HOPBUS_PASSWORD: 's3cret' } })).code).toBe(0);
    expect((await run(['ping', '-q', '-s', url], { env: { HOPBUS_TOKEN: 't0ken' } })).code).toBe(0);
    expect((await run(['ping', '-q', '-s', url, '--password', 'nope'], { env: { HOPBUS_USER: 'desk', HOPBUS_PASSWORD: 's3cret' } })).code).toBe(1);
    // pub and sub carry them too.
    const sub = start(['sub', 'a.>', '-s', url, '-n', '1'], { env: { HOPBUS_TOKEN: 't0ken' } });
    await waitFor(sub, /listening on/, 'stderr');
    expect((await run(['pub', 'a.b', 'hi', '-s', url, '--user', 'desk', '--password', 's3cret'])).code).toBe(0);
    expect(await sub.exited).toEqual({ code: 0, signal: null });
    expect(sub.out.stdout).toBe('[1] a.b: hi\n');
  });

  it('--password without a user is a usage error', async () => {
    const r = await run(['ping', '-s', 'tcp://127.0.0.1:1', '--password', 'x'], { env: { HOPBUS_USER: '' } });
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('hopbus: --password needs --user (or HOPBUS_USER)');
  });
});
