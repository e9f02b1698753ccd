/**
 * Certificates for the TLS benchmark cases and test suites (test/tls/), made by openssl
 * in a fresh temporary directory for each run (never committed): a CA, a server
 * certificate for 127.0.0.1 and localhost, client certificates, and a second CA that
 * signed none of them.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const OPENSSL = fs.existsSync('/usr/bin/openssl') ? '/usr/bin/openssl' : 'openssl';

/** Null when openssl runs here, else why not. */
export function opensslProblem(): string | null {
  try {
    execFileSync(OPENSSL, ['version'], { stdio: 'pipe' });
    return null;
  } catch (err) {
    return `openssl is not available (${(err as Error).message.split('\n')[0]})`;
  }
}

export interface CertFiles {
  dir: string;
  ca: string;
  /** A CA that signed nothing here: trusting it must fail the handshake. */
  otherCa: string;
  serverCert: string;
  serverKey: string;
  /** Client certificates by common name. */
  client(cn: string): { cert: string; key: string };
  read(file: string): string;
  remove(): void;
}

function run(dir: string, args: string[]): void {
  execFileSync(OPENSSL, args, { cwd: dir, stdio: 'pipe' });
}

function makeCa(dir: string, name: string): void {
  run(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`]);
}

function sign(dir: string, name: string, subj: string, ext: string): void {
  run(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj]);
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  run(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  ]);
}

/** Makes the CA, the server certificate and client certificates for `clients` (common names). */
export function makeCerts(clients: string[] = ['alice', 'bob']): CertFiles {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-tls-'));
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  sign(dir, 'server', '/CN=hopbus-test-server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  for (const cn of clients) sign(dir, `client-${cn}`, `/O=Desk/CN=${cn}`, `subjectAltName=email:${cn}@desk.example\nextendedKeyUsage=clientAuth\n`);
  const p = (f: string) => path.join(dir, f);
  return {
    dir,
    ca: p('ca.pem'),
    otherCa: p('other-ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    client: (cn) => ({ cert: p(`client-${cn}.pem`), key: p(`client-${cn}.key`) }),
    read: (f) => fs.readFileSync(f, 'utf8'),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
