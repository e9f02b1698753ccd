#!/usr/bin/env node
/**
 * The hopbus command line: broker | pub | sub | req | reply | bench | ping | context | passwd | top.
 * Each has --help (listing every flag with its default) and --version; the client
 * commands live in bin/cli/, one file each. Bad arguments print a usage error and exit
 * 2, never a stack trace.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, startBroker, type BrokerOptions } from '../broker/index.js';
import { OptionsError, SubjectError, UrlError } from '../client/index.js';
import { VERSION } from '../transports/protocol/index.js';
import { UsageError } from './cli/args.js';
import { runBench } from './cli/bench.js';
import { runContext } from './cli/context.js';
import { runPasswd } from './cli/passwd.js';
import { runPing } from './cli/ping.js';
import { runPub } from './cli/pub.js';
import { runReply, runReq } from './cli/req.js';
import { runSub } from './cli/sub.js';
import { runTop } from './top.js';

const MAIN_HELP = `hopbus: a low-latency publish/subscribe message bus

Usage: hopbus <command> [options]

Commands:
  broker                  run a broker (default 127.0.0.1:7400)
  pub SUBJECT [DATA]      publish messages (DATA or standard input; headers, templates)
  sub PATTERN             subscribe and print messages (text, --json or --raw)
  req SUBJECT [DATA]      send a request and print the reply
  reply SUBJECT [DATA]    answer requests (an echo by default)
  bench pub|sub|reqrep    load a broker and measure rates and latency
  ping                    check that a broker answers (exit 0) or say why not (exit 1)
  server check            the same as ping
  context                 saved broker addresses (add, select, ls, show, rm)
  passwd                  hash a password from standard input for the broker's config
  top                     live rates, latency and connections of a broker (its HTTP port)

Every client command finds its broker in --server, then HOPBUS_URL, then the context
(--context, HOPBUS_CONTEXT or the selected one), then tcp://127.0.0.1:7400.
Run "hopbus <command> --help" for a command's options; "hopbus --version" for the version.`;

const BROKER_HELP = `Usage: hopbus broker [options]

Runs a broker until SIGINT or SIGTERM, then shuts down gracefully (flushes pending
messages, closes every connection, exits 0).

Options:
  --host H            interface to listen on (default 127.0.0.1)
  --port P            TCP port (default 7400; 0 picks a free port)
  --unix PATH         also listen on a Unix-domain socket
  --http-port P       serve monitoring, the dashboard and WebSocket clients
                      (ws://HOST:P/bus) on this port (default off; 0 = a free port)
  --nats-port P       also serve NATS clients (the NATS client protocol, docs/NATS.md)
                      on this port (default 4222; 0 = a free port). When the default
                      4222 is taken, the broker starts without it and says so
  --nats-host H       interface of the NATS listener (default: --host)
  --no-nats           no NATS listener
  --config FILE       JSON file of broker options (see README); flags override it
  --log-level L       fatal|error|warn|info|debug|trace|silent (default info)
  --name NAME         server name reported to clients
  --max-payload N     largest payload in bytes (default 1048576)
  --max-pending N     bytes queued towards one client before it is a slow consumer
  --ping-interval MS  keepalive PING interval in ms (default 30000; 0 = off)
  -V, --version       print the version of hopbus
  -h, --help          show this help`;

const TOP_HELP = `Usage: hopbus top [options]

Shows a broker's message rates, microburst peaks, latency per hop and busiest
connections, redrawn every interval, from its HTTP port (/varz, /connz, /latency).
Press q or Ctrl-C to quit.

Options:
  -u, --url URL       the broker's HTTP address (default http://127.0.0.1:8222)
  -i, --interval MS   refresh interval in ms (default 1000)
  --once              print one frame (no screen control) and exit
  -V, --version       print the version of hopbus
  -h, --help          show this help`;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Values = Record<string, any>;

function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>, help: string): { values: Values; positionals: string[] } {
  try {
    return parseArgs({
      args,
      options: { ...options, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${help}`);
  }
}

function int(name: string, v: string | undefined, min = 0): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${v}"`);
  return n;
}

/** Where `hopbus broker` serves NATS clients unless told otherwise: nats-server's port. */
const DEFAULT_NATS_PORT = 4222;

async function cmdBroker(args: string[]): Promise<void> {
  const { values, positionals } = parse(
    args,
    {
      host: { type: 'string' },
      port: { type: 'string' },
      unix: { type: 'string' },
      'http-port': { type: 'string' },
      'nats-port': { type: 'string' },
      'nats-host': { type: 'string' },
      'no-nats': { type: 'boolean' },
      config: { type: 'string' },
      'log-level': { type: 'string' },
      name: { type: 'string' },
      'max-payload': { type: 'string' },
      'max-pending': { type: 'string' },
      'ping-interval': { type: 'string' },
    },
    BROKER_HELP,
  );
  if (values.help) return void console.log(BROKER_HELP);
  if (values.version) return void console.log(`hopbus ${VERSION}`);
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"\n\n${BROKER_HELP}`);
  let fileOpts: BrokerOptions = {};
  if (values.config) {
    try {
      fileOpts = JSON.parse(readFileSync(values.config, 'utf8')) as BrokerOptions;
    } catch (err) {
      throw new UsageError(`cannot read config file ${values.config}: ${(err as Error).message}`);
    }
    if (fileOpts === null || typeof fileOpts !== 'object' || Array.isArray(fileOpts)) {
      throw new UsageError(`config file ${values.config} must hold a JSON object of broker options`);
    }
  }
  const opts: BrokerOptions = { logLevel: 'info', ...fileOpts };
  if (values.host) opts.host = values.host;
  if (values.port !== undefined) opts.port = int('port', values.port)!;
  if (values.unix) opts.unix = values.unix;
  if (values['http-port'] !== undefined) opts.httpPort = int('http-port', values['http-port']);
  if (values['log-level']) opts.logLevel = values['log-level'];
  if (values.name) opts.name = values.name;
  if (values['max-payload'] !== undefined) opts.maxPayload = int('max-payload', values['max-payload'], 1);
  if (values['max-pending'] !== undefined) opts.maxPending = int('max-pending', values['max-pending'], 1);
  if (values['ping-interval'] !== undefined) opts.pingIntervalMs = int('ping-interval', values['ping-interval']);
  if (values['no-nats'] && values['nats-port'] !== undefined) throw new UsageError(`--no-nats and --nats-port contradict each other\n\n${BROKER_HELP}`);
  if (values['nats-host']) opts.natsHost = values['nats-host'];
  if (values['nats-port'] !== undefined) opts.natsPort = int('nats-port', values['nats-port']);
  if (values['no-nats']) opts.natsPort = null;
  // The daemon speaks NATS at its usual port unless told otherwise (the config file's natsPort, null included, counts).
  const natsDefault = !('natsPort' in opts);
  if (natsDefault) opts.natsPort = DEFAULT_NATS_PORT;
  let b: Awaited<ReturnType<typeof startBroker>>;
  let natsNote = '';
  try {
    b = await startBroker(opts);
  } catch (err) {
    if (!natsDefault || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || (err as { port?: unknown }).port !== DEFAULT_NATS_PORT) throw err;
    b = await startBroker({ ...opts, natsPort: null });
    natsNote = `NATS clients: not served, port ${DEFAULT_NATS_PORT} is in use (choose another with --nats-port P, or --no-nats)`;
  }
  console.log(`hopbus broker ready: ${b.urls.join('  ')}`);
  if (b.broker.natsUrl !== null) console.log(`NATS clients: ${b.broker.natsUrl}`);
  else if (natsNote !== '') console.log(natsNote);
  if (b.broker.httpPort !== null) {
    const h = b.broker.options.host;
    console.log(`monitoring: http://${h.includes(':') ? `[${h}]` : h}:${b.broker.httpPort}/  (dashboard; /varz /connz /subsz /latency /metrics)`);
  }
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
}

async function cmdTop(args: string[]): Promise<void> {
  const { values, positionals } = parse(
    args,
    { url: { type: 'string', short: 'u' }, interval: { type: 'string', short: 'i' }, once: { type: 'boolean' } },
    TOP_HELP,
  );
  if (values.help) return void console.log(TOP_HELP);
  if (values.version) return void console.log(`hopbus ${VERSION}`);
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"\n\n${TOP_HELP}`);
  const intervalMs = int('interval', values.interval, 100) ?? 1000;
  const base = values.url ?? 'http://127.0.0.1:8222';
  let u: URL;
  try {
    u = new URL(base);
  } catch {
    throw new UsageError(`--url must be an http:// URL of a broker's HTTP port, got "${base}"`);
  }
  if (u.protocol !== 'http:') throw new UsageError(`--url must be an http:// URL of a broker's HTTP port, got "${base}"`);
  await runTop({ url: u.origin, intervalMs, once: values.once === true });
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'broker':
      return cmdBroker(rest);
    case 'pub':
      return runPub(rest);
    case 'sub':
      return runSub(rest);
    case 'req':
      return runReq(rest);
    case 'reply':
      return runReply(rest);
    case 'bench':
      return runBench(rest);
    case 'ping':
      return runPing(rest);
    case 'server':
      if (rest[0] === 'check') return runPing(rest.slice(1));
      throw new UsageError(`unknown command "server ${rest[0] ?? ''}": did you mean "server check"?\n\n${MAIN_HELP}`);
    case 'context':
      return runContext(rest);
    case 'passwd':
      return runPasswd(rest);
    case 'top':
      return cmdTop(rest);
    case '-V':
    case '--version':
    case 'version':
      console.log(`hopbus ${VERSION}`);
      return;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      console.log(MAIN_HELP);
      return;
    default:
      throw new UsageError(`unknown command "${cmd}"\n\n${MAIN_HELP}`);
  }
}

/** Errors caused by what the user typed (or put in the config file): exit 2, like usage errors. */
function isBadInput(err: unknown): boolean {
  return err instanceof UsageError || err instanceof ConfigError || err instanceof UrlError || err instanceof SubjectError || err instanceof OptionsError;
}

main(process.argv.slice(2)).catch((err: Error) => {
  console.error(`hopbus: ${err.message}`);
  process.exit(isBadInput(err) ? 2 : 1);
});
