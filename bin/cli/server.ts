/**
 * bin/cli/server.ts: which broker a client command talks to, and named contexts.
 *
 * The address comes from, first to last: `--server URL`, the `HOPBUS_URL` environment
 * variable, the context named by `--context NAME` or `HOPBUS_CONTEXT`, the selected
 * context, and finally tcp://127.0.0.1:7400. Contexts live in
 * `$XDG_CONFIG_HOME/hopbus/contexts.json` (default `~/.config/hopbus/contexts.json`),
 * as `nats context` keeps its own: `hopbus context add NAME --server URL`, `select`,
 * `ls`, `rm`. Credentials come from --user/--password/--token or HOPBUS_USER,
 * HOPBUS_PASSWORD, HOPBUS_TOKEN (or the URL's user part), or an nkey seed from
 * --nkey SEEDFILE or --creds FILE (HOPBUS_NKEY, HOPBUS_CREDS); contexts do not store them.
 * TLS: a tls:// or wss:// server, with --tls-ca FILE for a broker whose certificate the
 * system does not trust, and --tls-cert/--tls-key FILE for one that verifies clients.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, type Connection, type ConnectOptions } from '../../client/index.js';
import { parseUrl } from '../../transports/url.js';
import { userSeedBytes } from '../../transports/nkeys.js';
import { UsageError, str, type Flag, type Values } from './args.js';

export const DEFAULT_SERVER = 'tcp://127.0.0.1:7400';

export const SERVER_FLAGS: Flag[] = [
  { name: 'server', short: 's', kind: 'string', arg: 'URL', defaultText: `$HOPBUS_URL, the context's server, or ${DEFAULT_SERVER}`, help: 'broker address' },
  { name: 'context', kind: 'string', arg: 'NAME', defaultText: '$HOPBUS_CONTEXT or the selected one', help: 'use a saved context (hopbus context --help)' },
  { name: 'user', kind: 'string', arg: 'USER', env: 'HOPBUS_USER', help: 'user to authenticate as (or tcp://USER:PASS@host)' },
  { name: 'password', kind: 'string', arg: 'PASS', env: 'HOPBUS_PASSWORD', help: "the user's password (prefer the variable: a flag shows in ps)" },
  { name: 'token', kind: 'string', arg: 'TOKEN', env: 'HOPBUS_TOKEN', help: 'token to authenticate with' },
  { name: 'tls-ca', kind: 'string', arg: 'FILE', env: 'HOPBUS_TLS_CA', help: "CA certificate (PEM) that signed the broker's, for tls:// and wss://" },
  { name: 'tls-cert', kind: 'string', arg: 'FILE', env: 'HOPBUS_TLS_CERT', help: 'client certificate (PEM), for a broker that verifies clients' },
  { name: 'tls-key', kind: 'string', arg: 'FILE', env: 'HOPBUS_TLS_KEY', help: 'private key (PEM) of --tls-cert' },
  { name: 'nkey', kind: 'string', arg: 'SEEDFILE', env: 'HOPBUS_NKEY', help: 'file holding a user nkey seed (SU...) to log in as that nkey' },
  {
    name: 'creds',
    kind: 'string',
    arg: 'FILE',
    env: 'HOPBUS_CREDS',
    help: 'NATS credentials file: its nkey seed logs in as that nkey (its JWT is not used: hopbus has no JWT accounts)',
  },
];

/** A user nkey seed as it appears in a seed file or a NATS .creds file. */
const SEED_TEXT = /\bSU[A-Z2-7]{56}\b/;

/**
 * The user nkey seed in `file` (a seed file, or a NATS .creds file whose seed block holds
 * it), for --nkey and --creds. Never shows the seed; a file with only a JWT is refused,
 * since hopbus brokers know nkeys, not JWT accounts.
 */
export function readSeed(flag: 'nkey' | 'creds', file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--${flag}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const m = SEED_TEXT.exec(text);
  if (m === null) {
    if (/-----BEGIN NATS USER JWT-----|\beyJ[\w-]+\.[\w-]+\.[\w-]+/.test(text))
      throw new UsageError(
        `--${flag}: ${file} holds a NATS user JWT but no nkey seed: hopbus has no JWT accounts, it logs users in by their nkey (a creds file with a "USER NKEY SEED" block, or a seed file)`,
      );
    throw new UsageError(`--${flag}: ${file} holds no user nkey seed (a line "SU..." of 58 characters, as \`nsc\` or \`nk -gen user\` write it)`);
  }
  if (userSeedBytes(m[0]) === null) throw new UsageError(`--${flag}: the nkey seed in ${file} is damaged (its checksum does not match)`);
  return m[0];
}

function readPem(flag: string, file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--${flag}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The credentials of this command's flags and variables (set by resolveServer). */
let credentials: ConnectOptions = {};

/** What resolveServer found in --user/--password/--token (and their variables), for a connect's options. */
export function credentialOptions(): ConnectOptions {
  return credentials;
}

export interface Context {
  server: string;
  description?: string;
}

interface ContextFile {
  selected?: string;
  contexts: Record<string, Context>;
}

export function contextsPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : path.join(os.homedir(), '.config');
  return path.join(base, 'hopbus', 'contexts.json');
}

export function readContexts(file = contextsPath()): ContextFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return { contexts: {} };
  }
  try {
    const data = JSON.parse(text) as ContextFile;
    if (data === null || typeof data !== 'object' || typeof data.contexts !== 'object' || data.contexts === null) throw new Error('no "contexts" object');
    return data;
  } catch (err) {
    throw new UsageError(`${file} is not a hopbus contexts file: ${(err as Error).message}`);
  }
}

export function writeContexts(data: ContextFile, file = contextsPath()): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** The broker address for this command, by the precedence above; checked before any connect. */
export function resolveServer(values: Values, env: NodeJS.ProcessEnv = process.env): string {
  let server = str(values, 'server');
  if (server === undefined && env.HOPBUS_URL) server = env.HOPBUS_URL;
  if (server === undefined) {
    const name = str(values, 'context') ?? (env.HOPBUS_CONTEXT || undefined);
    const file = readContexts();
    const pick = name ?? file.selected;
    if (pick !== undefined) {
      const ctx = file.contexts[pick];
      if (ctx === undefined) throw new UsageError(`no context "${pick}" (hopbus context ls lists them)`);
      server = ctx.server;
    }
  }
  server ??= DEFAULT_SERVER;
  parseUrl(server); // UrlError (exit 2) before connecting
  const user = str(values, 'user');
  const pass = str(values, 'password');
  const token = str(values, 'token');
  if (pass !== undefined && user === undefined) throw new UsageError('--password needs --user (or HOPBUS_USER)');
  const nkeyFile = str(values, 'nkey');
  const credsFile = str(values, 'creds');
  if (nkeyFile !== undefined && credsFile !== undefined) throw new UsageError('--nkey and --creds both name a seed: give one of them');
  const seedFlag = nkeyFile !== undefined ? 'nkey' : credsFile !== undefined ? 'creds' : null;
  if (seedFlag !== null && (user !== undefined || token !== undefined))
    throw new UsageError(`--${seedFlag} logs in as an nkey: it does not go with --${user !== undefined ? 'user' : 'token'} (or its variable)`);
  const seed = seedFlag !== null ? readSeed(seedFlag, (nkeyFile ?? credsFile)!) : undefined;
  const ca = str(values, 'tls-ca');
  const cert = str(values, 'tls-cert');
  const key = str(values, 'tls-key');
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--tls-cert and --tls-key go together: the certificate and its private key');
  const tlsGiven = ca !== undefined || cert !== undefined;
  if (tlsGiven && !/^(tls|wss):\/\//.test(server)) throw new UsageError(`--tls-ca, --tls-cert and --tls-key are for tls:// and wss:// servers, not ${server}`);
  const tls = tlsGiven
    ? {
        ...(ca !== undefined ? { ca: readPem('tls-ca', ca) } : {}),
        ...(cert !== undefined ? { cert: readPem('tls-cert', cert), key: readPem('tls-key', key!) } : {}),
      }
    : undefined;
  credentials = {
    ...(user !== undefined ? { user } : {}),
    ...(pass !== undefined ? { pass } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(seed !== undefined ? { seed } : {}),
    ...(tls !== undefined ? { tls } : {}),
  };
  return server;
}

/** A connection for a command: no reconnect unless asked, server errors printed as they come. */
export async function openBus(server: string, name: string, options: ConnectOptions = {}): Promise<Connection> {
  const bus = await connect(server, { name, reconnect: false, ...credentials, ...options });
  bus.on('error', (err: Error) => console.error(`hopbus: ${err.message}`));
  return bus;
}
