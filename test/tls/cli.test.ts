/**
 * TLS on the command line: `hopbus broker --tls-cert --tls-key --tls-ca --tls-verify`
 * serves tls://, and the client commands dial it with --tls-ca (and --tls-cert/--tls-key
 * where the broker verifies clients); --monitor-token guards the monitoring endpoints;
 * --creds names a file it cannot read. Real broker processes, certificates from openssl.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeNeeding } from '../kit/index.js';
import { broker, cli, expectUsageError, run, start, useCli, waitFor } from '../cli/harness.js';
import { makeCerts, opensslProblem, type CertFiles } from './certs.js';

useCli();
const describeTls = describeNeeding('openssl', opensslProblem());

let certs: CertFiles;
beforeAll(() => {
  if (opensslProblem() === null) certs = makeCerts(['alice']);
});
afterAll(() => certs?.remove());

describeTls('TLS flags', () => {
  it('serves tls:// from the broker flags; ping, pub and sub dial it with --tls-ca', async () => {
    const b = await broker(['--port', '0', '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey]);
    expect(b.url).toMatch(/^tls:\/\/127\.0\.0\.1:\d+$/);
    expect((await run(['ping', '-q', '-s', b.url, '--tls-ca', certs.ca])).code).toBe(0);
    const sub = start(['sub', 'a.>', '-s', b.url, '-n', '1'], { env: { HOPBUS_TLS_CA: certs.ca } });
    await waitFor(sub, /listening on/, 'stderr');
    expect((await run(['pub', 'a.b', 'over tls', '-s', b.url, '--tls-ca', certs.ca])).code).toBe(0);
    expect(await sub.exited).toEqual({ code: 0, signal: null });
    expect(sub.out.stdout).toContain('over tls');
    // Without the CA the system's trust does not cover the test CA: exit 1, and the message says what to add.
    const untrusted = await run(['ping', '-s', b.url]);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/--tls-ca FILE/);
  });

  it('maps a client certificate given with --tls-cert/--tls-key to its user under --tls-verify', async () => {
    const config = path.join(cli.tmp, 'certusers.json');
    fs.writeFileSync(config, JSON.stringify({ users: [{ user: 'alice', certificate: { subject: 'CN=alice' } }] }));
    const b = await broker([
      '--port',
      '0',
      '--config',
      config,
      '--tls-cert',
      certs.serverCert,
      '--tls-key',
      certs.serverKey,
      '--tls-ca',
      certs.ca,
      '--tls-verify',
    ]);
    const alice = certs.client('alice');
    expect((await run(['ping', '-q', '-s', b.url, '--tls-ca', certs.ca, '--tls-cert', alice.cert, '--tls-key', alice.key])).code).toBe(0);
    expect((await run(['ping', '-q', '-s', b.url, '--tls-ca', certs.ca])).code).toBe(1);
  });

  it('refuses TLS flags that cannot work, and a --creds file that is not there, as usage errors', async () => {
    expectUsageError(await run(['ping', '-s', 'tcp://127.0.0.1:1', '--tls-ca', certs.ca]), /are for tls:\/\/ and wss:\/\/ servers/);
    expectUsageError(await run(['ping', '-s', 'tls://127.0.0.1:1', '--tls-cert', certs.serverCert]), /--tls-cert and --tls-key go together/);
    expectUsageError(await run(['ping', '-s', 'tls://127.0.0.1:1', '--tls-ca', '/nonexistent.pem']), /--tls-ca: cannot read \/nonexistent.pem: ENOENT/);
    expectUsageError(await run(['ping', '-s', 'tcp://127.0.0.1:1', '--creds', '/x.creds']), /--creds: cannot read \/x.creds: ENOENT/);
    expectUsageError(await run(['broker', '--port', '0', '--no-nats', '--tls-cert', certs.serverCert]), /TLS needs both --tls-cert FILE and --tls-key FILE/);
  });

  it('guards the monitoring endpoints with --monitor-token', async () => {
    const b = await broker(['--port', '0', '--http-port', '0', '--monitor-token', 'mon-secret']);
    const http = b.urls
      .find((u) => u.startsWith('ws://'))!
      .replace('ws://', 'http://')
      .replace('/bus', '');
    expect((await fetch(`${http}/varz`)).status).toBe(401);
    expect((await fetch(`${http}/varz`, { headers: { Authorization: 'Bearer mon-secret' } })).status).toBe(200);
    expect((await fetch(`${http}/healthz`)).status).toBe(200);
  });
});

describeTls('hopbus top with monitoring credentials', () => {
  it('reads a guarded HTTPS port with --token, trusting the CA through NODE_EXTRA_CA_CERTS; says so without it', async () => {
    const b = await broker(['--port', '0', '--http-port', '0', '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey, '--monitor-token', 'mon-secret']);
    const port = /:(\d+)\/bus$/.exec(b.urls.find((u) => u.startsWith('wss://'))!)![1]!;
    const env = { NODE_EXTRA_CA_CERTS: certs.ca };
    const ok = await run(['top', '--once', '--url', `https://127.0.0.1:${port}`, '--token', 'mon-secret'], { env });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/hopbus/);
    const refused = await run(['top', '--once', '--url', `https://127.0.0.1:${port}`], { env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/HTTP 401, the broker's monitoring asks for a token \(--token or HOPBUS_MONITOR_TOKEN\)/);
  });
});
