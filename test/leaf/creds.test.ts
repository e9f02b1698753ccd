/**
 * `.creds` credentials on the uplink. The file is read and checked when the options are
 * resolved: a missing or unreadable file, one without a JWT or a seed, a bad seed, or a
 * seed that is not the JWT's user's stops the broker with a sentence naming the option
 * and the file, never the seed. Against a real nats-server in operator mode (an
 * operator, an account and users this test makes, the account preloaded in a MEMORY
 * resolver): CONNECT's JWT and nonce signature bind the leaf to the account, messages
 * cross both ways with a nats.js client of the same account, and an expired user JWT
 * is refused by the hub ('Authorization Violation'), reported and retried.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect as natsConnect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe as plainDescribe, expect, it } from 'vitest';
import { resolveOptions, startBroker, type StartedBroker } from '../../broker/index.js';
import { parseUserSeed } from '../../broker/leaf/nkey.js';
import { connectBroker, type Bus } from '../../client/index.js';
import { describeNeeding, until } from '../kit/index.js';
import { natsServerProblem, startHub, type Hub } from './hub.js';
import { accountJwt, credsText, newNkey, operatorJwt, userJwt, type Nkey } from './jwt.js';

const describe = describeNeeding('nats-server', natsServerProblem());

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-creds-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

function write(name: string, text: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text, { mode: 0o600 });
  return f;
}

function userCreds(account: Nkey, name: string, exp?: number): { file: string; user: Nkey; text: string } {
  const user = newNkey('user');
  const text = credsText(userJwt(account, user, exp), user.seed);
  return { file: write(name, text), user, text };
}

plainDescribe('the credentials option, read when the options are resolved', () => {
  const resolve = (credentials: string) => () => resolveOptions({ leafnodes: { remotes: [{ urls: ['nats://h:7422'], credentials }] } });

  it('the test builder makes seeds the uplink reads', () => {
    const u = newNkey('user');
    expect(parseUserSeed(u.seed)!.publicKey).toBe(u.publicKey);
    expect(u.publicKey).toMatch(/^U[A-Z2-7]{55}$/);
  });

  it('a good file resolves; the resolved options show its name and user, never the seed or the JWT', () => {
    const account = newNkey('account');
    const c = userCreds(account, 'good.creds');
    const o = resolveOptions({ leafnodes: { remotes: [{ urls: ['nats://h:7422'], credentials: c.file }] } });
    const shown = JSON.stringify(o.leafnodes);
    expect(shown).toContain(c.file);
    expect(shown).toContain(c.user.publicKey);
    expect(shown).not.toContain(c.user.seed);
    expect(shown).not.toContain(c.text.split('\n')[1]!);
  });

  it('refuses a missing or unreadable file, no JWT, no seed, a bad seed, a seed of another user, naming the option and the file and never the seed', () => {
    const account = newNkey('account');
    const user = newNkey('user');
    const token = userJwt(account, user);
    const at = /"leafnodes\.remotes\[0\]\.credentials"/;
    expect(resolve(path.join(dir, 'none.creds'))).toThrow(/"leafnodes\.remotes\[0\]\.credentials": cannot read .*none\.creds: ENOENT/);
    expect(resolve(dir)).toThrow(/cannot read .*: EISDIR/);
    const noJwt = write('nojwt.creds', `-----BEGIN USER NKEY SEED-----\n${user.seed}\n------END USER NKEY SEED------\n`);
    expect(resolve(noJwt)).toThrow(/nojwt\.creds has no user JWT/);
    expect(resolve(write('garbled.creds', credsText('not-a-jwt', user.seed)))).toThrow(/the JWT in .*garbled\.creds is not a NATS JWT/);
    expect(resolve(write('account.creds', credsText(accountJwt(newNkey('operator'), account), user.seed)))).toThrow(/is not a user's/);
    const noSeed = write('noseed.creds', `-----BEGIN NATS USER JWT-----\n${token}\n------END NATS USER JWT------\n`);
    expect(resolve(noSeed)).toThrow(/noseed\.creds has no user nkey seed/);
    const badSeed = `${user.seed.slice(0, -2)}AA`;
    let err: Error | null = null;
    try {
      resolve(write('badseed.creds', credsText(token, badSeed)))();
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toMatch(at);
    expect(err?.message).toMatch(/the nkey seed in .*badseed\.creds is not a valid user seed/);
    expect(err?.message).not.toContain(badSeed);
    const other = newNkey('user');
    err = null;
    try {
      resolve(write('other.creds', credsText(token, other.seed)))();
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toMatch(/the seed in .*other\.creds is not the JWT's user's/);
    expect(err?.message).not.toContain(other.seed);
    expect(() => resolveOptions({ leafnodes: { remotes: [{ urls: ['nats://h:7422'], credentials: noSeed, nkey: user.seed }] } })).toThrow(/exclude each other/);
  });
});

describe('.creds credentials against a nats-server in operator mode', () => {
  let hub: Hub;
  let account: Nkey;

  async function broker(o: Parameters<typeof startBroker>[0]): Promise<StartedBroker> {
    const b = await startBroker({ port: 0, logLevel: 'silent', ...o });
    cleanup.push(() => b.close());
    return b;
  }

  beforeAll(async () => {
    const operator = newNkey('operator');
    account = newNkey('account');
    const opFile = write('operator.jwt', operatorJwt(operator));
    hub = await startHub({
      nodes: 1,
      extra: `operator: "${opFile}"\nresolver: MEMORY\nresolver_preload: {\n  ${account.publicKey}: "${accountJwt(operator, account)}"\n}\n`,
    });
  }, 30_000);

  afterAll(async () => {
    await hub?.stop();
  });

  it("a user's JWT and the nonce's signature bind the leaf to its account; messages cross both ways with a client of the account", async () => {
    const leaf = userCreds(account, 'leaf.creds');
    const b = await broker({ leafnodes: { remotes: [{ urls: [hub.nodes[0]!.leafUrl], credentials: leaf.file }] } });
    const up = b.broker.leafnodes!.uplinks[0]!;
    await until(() => up.state === 'connected', 'admitted with the .creds file');
    const [l] = await hub.leafs(hub.nodes[0]!, 1, true);
    expect(l!.account).toBe(account.publicKey);

    const client = userCreds(account, 'client.creds');
    const n: NatsConnection = await natsConnect({
      servers: `127.0.0.1:${hub.nodes[0]!.clientPort}`,
      reconnect: false,
      authenticator: credsAuthenticator(new TextEncoder().encode(client.text)),
    });
    cleanup.push(() => n.close());
    const bus: Bus = await connectBroker(b.url, { reconnect: false });
    cleanup.push(() => bus.close());
    bus.subscribe('creds.echo', (m) => m.respond(`echo:${m.string()}`));
    await bus.flush();
    const got: string[] = [];
    n.subscribe('creds.out', { callback: (_e, m) => void got.push(m.string()) });
    await n.flush();
    await until(() => b.broker.router.hasSubscribers('creds.out'), "the account's interest at the broker");
    let answer = '';
    for (let i = 0; i < 500 && answer === ''; i++) {
      try {
        answer = (await n.request('creds.echo', 'hi', { timeout: 2000 })).string();
      } catch (err) {
        if (!/503|no responders/i.test(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`)) throw err;
      }
    }
    expect(answer).toBe('echo:hi');
    bus.publish('creds.out', 'bound to the account');
    await until(() => got.length === 1, 'the publish at the nats.js client');
  });

  it("an expired user JWT is refused by the hub ('Authorization Violation'): reported, retried with back-off", async () => {
    const expired = userCreds(account, 'expired.creds', Math.floor(Date.now() / 1000) - 3600);
    const b = await broker({
      leafnodes: { remotes: [{ urls: [hub.nodes[0]!.leafUrl], credentials: expired.file }], reconnectDelayMs: 20, maxReconnectDelayMs: 40 },
    });
    const up = b.broker.leafnodes!.uplinks[0]!;
    await until(() => up.failures >= 2, 'two refused attempts');
    expect(up.state).not.toBe('connected');
    expect(up.lastError).toMatch(/authorization violation/i);
    expect(up.lastDelayMs).toBeGreaterThan(0);
  });
});
