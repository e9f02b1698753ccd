/**
 * hopbus broker: runs a broker until SIGINT or SIGTERM, then shuts it down gracefully.
 *
 * Where each option comes from, first to last: the flag, its HOPBUS_* environment
 * variable, the --config JSON file, the built-in default. Logs are pino JSON lines on
 * standard output (for machines) or, with --log-format pretty, readable lines for a
 * person at a terminal; the start-up lines ("hopbus broker ready: ...") go to standard
 * error, so standard output stays pure JSON.
 */
import { readFileSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { startBroker, type BrokerOptions, type StartedBroker } from '../../broker/index.js';
import { UsageError, int, list, parseCommand, str, type CommandSpec } from './args.js';

/** Where `hopbus broker` serves NATS clients unless told otherwise: nats-server's port. */
export const DEFAULT_NATS_PORT = 4222;

export const BROKER: CommandSpec = {
  usage: 'broker [options]',
  about: `Runs a broker until SIGINT or SIGTERM, then shuts down gracefully (flushes pending
messages, closes every connection, exits 0). Each option is taken from its flag, else
its environment variable [in brackets], else the --config file, else the default.`,
  flags: [
    { name: 'host', kind: 'string', arg: 'H', env: 'HOPBUS_HOST', defaultText: '127.0.0.1', help: 'interface to listen on' },
    { name: 'port', kind: 'string', arg: 'P', env: 'HOPBUS_PORT', defaultText: '7400; 0 picks a free port', help: 'TCP port' },
    { name: 'unix', kind: 'string', arg: 'PATH', env: 'HOPBUS_UNIX', help: 'also listen on a Unix-domain socket' },
    {
      name: 'http-port',
      kind: 'string',
      arg: 'P',
      env: 'HOPBUS_HTTP_PORT',
      defaultText: 'off; 0 = a free port',
      help: 'serve monitoring, the dashboard and WebSocket clients (ws://HOST:P/bus)',
    },
    {
      name: 'nats-port',
      kind: 'string',
      arg: 'P',
      env: 'HOPBUS_NATS_PORT',
      defaultText: `${DEFAULT_NATS_PORT}, skipped with a note when taken; 0 = a free port`,
      help: 'serve NATS clients (docs/NATS.md)',
    },
    { name: 'nats-host', kind: 'string', arg: 'H', env: 'HOPBUS_NATS_HOST', defaultText: '--host', help: 'interface of the NATS listener' },
    { name: 'no-nats', kind: 'boolean', env: 'HOPBUS_NO_NATS', help: 'no NATS listener' },
    { name: 'config', kind: 'string', arg: 'FILE', env: 'HOPBUS_CONFIG', help: 'JSON file of broker options (README); flags and variables override it' },
    { name: 'log-level', kind: 'string', arg: 'L', env: 'HOPBUS_LOG_LEVEL', defaultText: 'info', help: 'fatal|error|warn|info|debug|trace|silent' },
    {
      name: 'log-format',
      kind: 'string',
      arg: 'F',
      env: 'HOPBUS_LOG_FORMAT',
      default: 'json',
      help: 'json (one object a line, for machines) or pretty (for a terminal)',
    },
    { name: 'name', kind: 'string', arg: 'NAME', env: 'HOPBUS_NAME', defaultText: 'hopbus', help: 'server name reported to clients' },
    { name: 'max-payload', kind: 'string', arg: 'N', env: 'HOPBUS_MAX_PAYLOAD', defaultText: '1048576', help: 'largest payload in bytes' },
    {
      name: 'max-pending',
      kind: 'string',
      arg: 'N',
      env: 'HOPBUS_MAX_PENDING',
      defaultText: '67108864',
      help: 'bytes queued towards one client before it is a slow consumer',
    },
    { name: 'ping-interval', kind: 'string', arg: 'MS', env: 'HOPBUS_PING_INTERVAL', defaultText: '30000; 0 = off', help: 'keepalive PING interval in ms' },
    { name: 'journal', kind: 'string', arg: 'DIR', env: 'HOPBUS_JOURNAL', help: 'record the --record subjects into a journal in DIR (docs/JOURNAL.md)' },
    { name: 'record', kind: 'list', arg: 'PATTERN', env: 'HOPBUS_RECORD', help: 'a subject pattern to record into --journal, e.g. md.>' },
    {
      name: 'cache',
      kind: 'list',
      arg: 'PATTERN',
      env: 'HOPBUS_CACHE',
      help: 'keep the newest message of each subject matching PATTERN in the last-value cache, e.g. md.> (docs/CACHE.md)',
    },
    { name: 'cache-subjects', kind: 'string', arg: 'N', default: '100000', help: 'subjects each --cache pattern keeps at most' },
    { name: 'cache-bytes', kind: 'string', arg: 'N', default: '268435456', help: 'bytes each --cache pattern keeps at most' },
    {
      name: 'leaf',
      kind: 'list',
      arg: 'URL[,URL]',
      env: 'HOPBUS_LEAF',
      help: "be a leafnode of the NATS cluster at URL, a hub's leafnode port (nats://[user:pass@]host:7422, or tls://host:7422 for TLS checked against the system's CAs); URLs joined by commas are one remote; tls files and .creds credentials go in --config (docs/LEAFNODE.md)",
    },
    {
      name: 'tls-cert',
      kind: 'string',
      arg: 'FILE',
      env: 'HOPBUS_TLS_CERT',
      help: 'serve TLS with this certificate (PEM) on the TCP port (tls://), the NATS port and the HTTP port (docs/SECURITY.md)',
    },
    { name: 'tls-key', kind: 'string', arg: 'FILE', env: 'HOPBUS_TLS_KEY', help: 'private key (PEM) of --tls-cert' },
    { name: 'tls-ca', kind: 'string', arg: 'FILE', env: 'HOPBUS_TLS_CA', help: "CA certificate (PEM) that signs clients' certificates (with --tls-verify)" },
    { name: 'tls-verify', kind: 'boolean', env: 'HOPBUS_TLS_VERIFY', help: 'require a client certificate signed by --tls-ca on the TCP and NATS ports' },
    {
      name: 'monitor-token',
      kind: 'string',
      arg: 'TOKEN',
      env: 'HOPBUS_MONITOR_TOKEN',
      help: 'the monitoring endpoints (all but /healthz) ask for this token: Bearer, or ?token= (docs/SECURITY.md)',
    },
  ],
  positionals: [0, 0],
};

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** Whether the options configure any way of authenticating clients. */
function hasAuth(o: BrokerOptions): boolean {
  const r = o as Record<string, unknown>;
  return ['users', 'tokens', 'nkeys', 'authorization'].some((k) => r[k] !== undefined && r[k] !== null);
}

function readConfig(file: string): BrokerOptions {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new UsageError(`config file ${file} must hold a JSON object of broker options`);
  return data as BrokerOptions;
}

function prettyLogger(name: string, level: string): Logger {
  return pino({ name, level }, pretty({ colorize: process.stdout.isTTY === true, destination: 1, sync: true, translateTime: 'SYS:HH:MM:ss.l' }));
}

export async function runBroker(args: string[]): Promise<void> {
  const p = parseCommand(args, BROKER);
  if (p === null) return;
  const { values, sources } = p;
  const config = str(values, 'config');
  const fileOpts: BrokerOptions = config !== undefined ? readConfig(config) : {};
  const opts: BrokerOptions = { logLevel: 'info', ...fileOpts };
  const host = str(values, 'host');
  if (host) opts.host = host;
  const port = int(values, 'port');
  if (port !== undefined) opts.port = port;
  const unix = str(values, 'unix');
  if (unix) opts.unix = unix;
  const httpPort = int(values, 'http-port');
  if (httpPort !== undefined) opts.httpPort = httpPort;
  const level = str(values, 'log-level');
  if (level) opts.logLevel = level;
  const name = str(values, 'name');
  if (name) opts.name = name;
  const maxPayload = int(values, 'max-payload', 1);
  if (maxPayload !== undefined) opts.maxPayload = maxPayload;
  const maxPending = int(values, 'max-pending', 1);
  if (maxPending !== undefined) opts.maxPending = maxPending;
  const ping = int(values, 'ping-interval');
  if (ping !== undefined) opts.pingIntervalMs = ping;
  const journalDir = str(values, 'journal');
  const record = list(values, 'record');
  if (journalDir !== undefined || record.length > 0) {
    const dir = journalDir ?? fileOpts.journal?.dir;
    const subjects = record.length > 0 ? record : fileOpts.journal?.subjects;
    if (dir === undefined) throw new UsageError('--record needs --journal DIR: the directory to record into');
    if (subjects === undefined || subjects.length === 0)
      throw new UsageError('--journal needs at least one --record PATTERN: the subjects to record (e.g. --record "md.>")');
    opts.journal = { ...(fileOpts.journal ?? {}), dir, subjects };
  }
  const cache = list(values, 'cache');
  if (cache.length > 0) {
    const maxSubjects = int(values, 'cache-subjects', 1)!;
    const maxBytes = int(values, 'cache-bytes', 1)!;
    opts.cache = [...(fileOpts.cache ?? []), ...cache.map((pattern) => ({ pattern, maxSubjects, maxBytes }))];
  }
  const leaf = list(values, 'leaf');
  if (leaf.length > 0) {
    const remotes = leaf.map((v) => ({ urls: v.split(',').filter((u) => u !== '') }));
    opts.leafnodes = { ...(fileOpts.leafnodes ?? {}), remotes: [...(fileOpts.leafnodes?.remotes ?? []), ...remotes] };
  }
  const tlsCert = str(values, 'tls-cert');
  const tlsKey = str(values, 'tls-key');
  const tlsCa = str(values, 'tls-ca');
  const tlsVerify = values['tls-verify'] === true;
  if (tlsCert !== undefined || tlsKey !== undefined || tlsCa !== undefined || tlsVerify) {
    const base = fileOpts.tls ?? undefined;
    const cert = tlsCert ?? base?.cert;
    const key = tlsKey ?? base?.key;
    if (cert === undefined || key === undefined)
      throw new UsageError('TLS needs both --tls-cert FILE and --tls-key FILE (or tls.cert and tls.key in --config)');
    opts.tls = { ...(base ?? {}), cert, key, ...(tlsCa !== undefined ? { ca: tlsCa } : {}), ...(tlsVerify ? { verify: true } : {}) };
  }
  const monitorToken = str(values, 'monitor-token');
  if (monitorToken !== undefined) opts.monitoring = { ...(fileOpts.monitoring ?? {}), token: monitorToken };
  const format = str(values, 'log-format')!;
  if (format !== 'json' && format !== 'pretty') throw new UsageError(`--log-format must be json or pretty, got "${format}"`);
  // --no-nats and --nats-port contradict each other when both are given the same way; a flag wins over a variable.
  const noNats = values['no-nats'] === true;
  const natsPortGiven = values['nats-port'] !== undefined;
  if (noNats && natsPortGiven && sources['no-nats'] === sources['nats-port']) {
    throw new UsageError(`--no-nats and --nats-port contradict each other${sources['no-nats'] === 'env' ? ' (HOPBUS_NO_NATS and HOPBUS_NATS_PORT)' : ''}`);
  }
  const natsHost = str(values, 'nats-host');
  if (natsHost) opts.natsHost = natsHost;
  const natsWins = natsPortGiven && (!noNats || sources['nats-port'] === 'flag');
  if (natsWins) opts.natsPort = int(values, 'nats-port');
  else if (noNats) opts.natsPort = null;
  // The daemon speaks NATS at its usual port unless told otherwise (the config file's natsPort, null included, counts).
  const natsDefault = !('natsPort' in opts);
  if (natsDefault) opts.natsPort = DEFAULT_NATS_PORT;

  const logger = format === 'pretty' ? prettyLogger(opts.name ?? 'hopbus', opts.logLevel ?? 'info') : undefined;
  let b: StartedBroker;
  let natsNote = '';
  try {
    b = await startBroker(opts, logger);
  } catch (err) {
    if (!natsDefault || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || (err as { port?: unknown }).port !== DEFAULT_NATS_PORT) throw err;
    b = await startBroker({ ...opts, natsPort: null }, logger);
    natsNote = `NATS clients: not served, port ${DEFAULT_NATS_PORT} is in use (choose another with --nats-port P, or --no-nats)`;
  }
  // Signals are handled before anything is printed: whoever reads the ready line may stop us at once.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    b.broker.log.info({ signal }, 'shutting down');
    b.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  const h = b.broker.options.host;
  const hosts = [h, b.broker.options.natsHost ?? h];
  if (hosts.some((x) => !LOOPBACK.test(x)) && !hasAuth(opts)) {
    const warning = `listening on ${[...new Set(hosts)].join(', ')} with no authentication configured: anyone who reaches these ports can read and publish every subject`;
    console.error(`hopbus: warning: ${warning}`);
    b.broker.log.warn({ host: h }, warning);
  }
  // The start-up lines are for the person or script that started the broker: standard error,
  // in one write, so a reader that sees the ready line sees all of them (and anything said
  // before, such as the warning above).
  const lines = [`hopbus broker ready: ${b.urls.join('  ')}`];
  if (b.broker.natsUrl !== null) lines.push(`NATS clients: ${b.broker.natsUrl}`);
  else if (natsNote !== '') lines.push(natsNote);
  const rec = b.broker.recorder?.stats();
  if (rec !== undefined) lines.push(`recording: ${rec.subjects.join(' ')} into ${rec.dir} (from seq ${rec.nextSeq})`);
  const cached = b.broker.cache.stores;
  if (cached.length > 0) lines.push(`caching: ${cached.map((c) => `${c.pattern} (${c.maxSubjects} subjects, ${c.maxBytes} bytes)`).join(' ')}`);
  if (b.broker.httpPort !== null) {
    const scheme = b.broker.options.tls?.http ? 'https' : 'http';
    lines.push(`monitoring: ${scheme}://${h.includes(':') ? `[${h}]` : h}:${b.broker.httpPort}/  (dashboard; /varz /connz /subsz /latency /metrics)`);
  }
  process.stderr.write(lines.join('\n') + '\n');
}
