/**
 * TLS on the uplink, against real nats-server hubs whose leafnode port has
 * `tls { cert_file, key_file, ca_file, verify }`, with certificates openssl makes for the
 * run: the hub's INFO in plain text says tls_required, the uplink upgrades the socket and
 * sends CONNECT over TLS, and messages cross both ways. A hub that wants a client
 * certificate admits the one its CA signed; a wrong CA, a missing client certificate, a
 * hub that requires TLS of a remote with none, and a remote that wants TLS of a hub
 * without it are each a failed attempt with its reason, retried with back-off.
 */
import fs from 'node:fs';
import tls from 'node:tls';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { StartedBroker } from '../../broker/index.js';
import { connectBroker, type Bus } from '../../client/index.js';
import { describeNeeding, until } from '../kit/index.js';
import { makeCerts, opensslProblem, type CertFiles } from '../tls/certs.js';
import { natsServerProblem, startHub, type Hub } from './hub.js';
import { useLeafRig } from './rig.js';

const problem = natsServerProblem() ?? opensslProblem();
const describe = describeNeeding(natsServerProblem() === null ? 'openssl' : 'nats-server', problem);

const { cleanup, broker, nats } = useLeafRig();

async function bus(b: StartedBroker): Promise<Bus> {
  const c = await connectBroker(b.url, { reconnect: false });
  cleanup.push(() => c.close());
  return c;
}

const tlsUrl = (h: Hub) => h.nodes[0]!.leafUrl.replace('nats://', 'tls://');
const fast = { reconnectDelayMs: 20, maxReconnectDelayMs: 40 };

describe('TLS from the uplink to a NATS hub', () => {
  let certs: CertFiles;
  /** A hub whose leafnode port requires TLS. */
  let open: Hub;
  /** One that also requires a client certificate signed by the CA. */
  let verifying: Hub;

  beforeAll(async () => {
    certs = makeCerts(['leaf']);
    const block = (verify: boolean) =>
      `tls {\n    cert_file: "${certs.serverCert}"\n    key_file: "${certs.serverKey}"\n    ca_file: "${certs.ca}"\n    verify: ${verify}\n  }`;
    open = await startHub({ nodes: 1, leafExtra: block(false) });
    verifying = await startHub({ nodes: 1, leafExtra: block(true) });
  }, 30_000);

  afterAll(async () => {
    await open?.stop();
    await verifying?.stop();
    certs?.remove();
  });

  it('the uplink upgrades to TLS after the hub INFO; a request from the cluster is answered across it and a publish crosses out', async () => {
    // A tls:// URL and the CA as PEM text.
    const b = await broker({ leafnodes: { remotes: [{ urls: [tlsUrl(open)], tls: { ca: certs.read(certs.ca) } }] } });
    const up = b.broker.leafnodes!.uplinks[0]!;
    await until(() => up.state === 'connected', 'the uplink connected over TLS');
    expect(up.conn!.link.transport).toBe('tls');
    expect(up.lastError).toBe('');
    const [leaf] = await open.leafs(open.nodes[0]!, 1, true);
    expect(leaf).toBeDefined();

    const svc = await bus(b);
    svc.subscribe('tls.echo', (m) => m.respond(`echo:${m.string()}`));
    await svc.flush();
    const n = await nats(open.nodes[0]!.clientPort);
    const got: string[] = [];
    n.subscribe('tls.out', { callback: (_e, m) => void got.push(m.string()) });
    await n.flush();
    let answer = '';
    await until(() => b.broker.router.hasSubscribers('tls.out'), "the cluster's interest in tls.out at the broker");
    for (let i = 0; i < 500 && answer === ''; i++) {
      try {
        answer = (await n.request('tls.echo', 'hi', { timeout: 2000 })).string();
      } catch (err) {
        if (!/503|no responders/i.test(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`)) throw err;
      }
    }
    expect(answer).toBe('echo:hi');
    svc.publish('tls.out', 'over tls');
    await until(() => got.length === 1, 'the publish at the nats.js client');
    expect(got).toEqual(['over tls']);
  });

  it('a hub that verifies leafs admits a client certificate its CA signed (files), and refuses none, with the reason, retrying', async () => {
    const leaf = certs.client('leaf');
    const good = await broker({ leafnodes: { remotes: [{ urls: [verifying.nodes[0]!.leafUrl], tls: { ca: certs.ca, cert: leaf.cert, key: leaf.key } }] } });
    await until(() => good.broker.leafnodes!.uplinks[0]!.state === 'connected', 'admitted with a client certificate');
    const bare = await broker({ leafnodes: { remotes: [{ urls: [verifying.nodes[0]!.leafUrl], tls: { ca: certs.ca } }], ...fast } });
    const up = bare.broker.leafnodes!.uplinks[0]!;
    await until(() => up.failures >= 2, 'two refused attempts');
    expect(up.state).not.toBe('connected');
    expect(up.lastError).toMatch(/TLS handshake with nats:\/\/127\.0\.0\.1:\d+ failed: .*certificate.*tls\.cert and tls\.key/i);
    expect(up.metrics().lastError).toBe(up.lastError);
  });

  it("a CA that did not sign the hub's certificate: a failed handshake naming OpenSSL's reason and tls.ca, retried, no crash", async () => {
    const b = await broker({ leafnodes: { remotes: [{ urls: [tlsUrl(open)], tls: { ca: certs.otherCa } }], ...fast } });
    const up = b.broker.leafnodes!.uplinks[0]!;
    await until(() => up.failures >= 2, 'two failed handshakes');
    expect(up.state).not.toBe('connected');
    expect(up.lastError).toMatch(/^TLS handshake with tls:\/\/127\.0\.0\.1:\d+ failed: .*(self.signed|unable to|verify).*tls\.ca/i);
    expect(up.lastDelayMs).toBeGreaterThan(0);
  });

  it('a hub that requires TLS of a remote without a tls option, and a remote that wants TLS of a hub without it: failed attempts that say so', async () => {
    const plainRemote = await broker({ leafnodes: { remotes: [{ urls: [open.nodes[0]!.leafUrl] }], ...fast } });
    const p = plainRemote.broker.leafnodes!.uplinks[0]!;
    await until(() => p.failures >= 2, 'two refused attempts');
    expect(p.lastError).toMatch(/requires TLS \(its INFO says tls_required\): give the remote a "tls" option/);

    const plainHub = await startHub({ nodes: 1 });
    cleanup.push(() => plainHub.stop());
    const tlsRemote = await broker({ leafnodes: { remotes: [{ urls: [plainHub.nodes[0]!.leafUrl], tls: { ca: certs.ca } }], ...fast } });
    const t = tlsRemote.broker.leafnodes!.uplinks[0]!;
    await until(() => t.failures >= 2, 'two failed attempts');
    expect(t.lastError).toMatch(/the remote wants TLS, but nats:\/\/127\.0\.0\.1:\d+ does not offer it/);
  });

  it('handshakeFirst: TLS from the first byte, then INFO and CONNECT over it (a TLS listener playing a handshake_first hub)', async () => {
    // nats-server 2.10 has handshake_first; Debian's 2.9 does not, so a node:tls server plays the hub's part of the handshake.
    const connects: Record<string, unknown>[] = [];
    const server = tls.createServer({ cert: fs.readFileSync(certs.serverCert), key: fs.readFileSync(certs.serverKey) }, (s) => {
      s.write(`INFO ${JSON.stringify({ server_id: 'FAKE', client_id: 1, leafnode_urls: [], headers: true, tls_required: true })}\r\n`);
      let text = '';
      s.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        const m = /CONNECT (\{.*\})\r\n/.exec(text);
        if (m !== null && connects.length === 0) connects.push(JSON.parse(m[1]!) as Record<string, unknown>);
        if (text.includes('PING\r\n')) {
          text = text.replace('PING\r\n', '');
          s.write('PONG\r\n');
        }
      });
      s.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as { port: number }).port;
    const b = await broker({ leafnodes: { remotes: [{ urls: [`nats://127.0.0.1:${port}`], tls: { ca: certs.ca, handshakeFirst: true } }] } });
    const up = b.broker.leafnodes!.uplinks[0]!;
    await until(() => up.state === 'connected', 'connected after a handshake first');
    expect(up.conn!.link.transport).toBe('tls');
    expect(connects[0]).toMatchObject({ tls_required: true, headers: true });
  });
});
