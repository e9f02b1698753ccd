/**
 * The client commands authenticate: --user and --password (or HOPBUS_USER and
 * HOPBUS_PASSWORD), --token (or HOPBUS_TOKEN), against a real broker process configured
 * with a user and a token.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { encodeUserSeed, parseUserSeed } from '../../transports/nkeys.js';
import { READY, cli, expectUsageError, run, start, useCli, waitFor } from './harness.js';

useCli();

const SEED = encodeUserSeed(randomBytes(32));
const NKEY = parseUserSeed(SEED)!.publicKey;

async function guarded(): Promise<string> {
  const file = path.join(cli.tmp, `auth-${process.hrtime.bigint()}.json`);
  fs.writeFileSync(file, JSON.stringify({ users: [{ user: 'desk', password: 's3cret' }, { nkey: NKEY }], tokens: ['t0ken'] }));
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

  it('--nkey SEEDFILE and --creds FILE (or HOPBUS_NKEY, HOPBUS_CREDS) log in as the nkey; a JWT-only file, a foreign seed and mixed credentials are refused', async () => {
    const url = await guarded();
    const seedFile = path.join(cli.tmp, 'user.nk');
    fs.writeFileSync(seedFile, `${SEED}\n`);
    const creds = path.join(cli.tmp, 'user.creds');
    const jwt = 'eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJVQUJDIn0.c2ln';
    fs.writeFileSync(
      creds,
      `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${SEED}\n------END USER NKEY SEED------\n`,
    );
    expect((await run(['ping', '-q', '-s', url, '--nkey', seedFile])).code).toBe(0);
    expect((await run(['ping', '-q', '-s', url, '--creds', creds])).code).toBe(0);
    expect((await run(['ping', '-q', '-s', url], { env: { HOPBUS_NKEY: seedFile } })).code).toBe(0);
    const sub = start(['sub', 'n.>', '-s', url, '-n', '1'], { env: { HOPBUS_CREDS: creds } });
    await waitFor(sub, /listening on/, 'stderr');
    expect((await run(['pub', 'n.b', 'signed', '-s', url, '--nkey', seedFile])).code).toBe(0);
    expect(await sub.exited).toEqual({ code: 0, signal: null });
    expect(sub.out.stdout).toBe('[1] n.b: signed\n');
    const foreign = path.join(cli.tmp, 'other.nk');
    fs.writeFileSync(foreign, encodeUserSeed(randomBytes(32)));
    const refused = await run(['ping', '-s', url, '--nkey', foreign]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/unknown nkey/);
    const jwtOnly = path.join(cli.tmp, 'jwt.creds');
    fs.writeFileSync(jwtOnly, `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n`);
    expectUsageError(await run(['ping', '-s', url, '--creds', jwtOnly]), /holds a NATS user JWT but no nkey seed: hopbus has no JWT accounts/);
    expectUsageError(await run(['ping', '-s', url, '--nkey', creds, '--creds', creds]), /--nkey and --creds both name a seed/);
    expectUsageError(await run(['ping', '-s', url, '--nkey', seedFile, '--token', 't0ken']), /--nkey logs in as an nkey: it does not go with --token/);
    const help = await run(['ping', '--help']);
    expect(help.stdout).toMatch(/--nkey SEEDFILE .*\[HOPBUS_NKEY\]/);
    expect(help.stdout + refused.stderr).not.toContain(SEED);
  });
});
