#!/usr/bin/env node
/**
 * The hopbus command line: broker | pub | sub | req. Each has --help.
 * Bad arguments print a usage error and exit 2, never a stack trace.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, startBroker, type BrokerOptions } from '../broker/index.js';
import { OptionsError, SubjectError, UrlError, connect, type Connection, type Msg } from '../client/index.js';
import { queueNameProblem } from '../topics/queue.js';
import { validatePattern, validateSubject } from '../topics/index.js';
import { parseUrl } from '../transports/url.js';
import { runTop } from './top.js';

const MAIN_HELP = `hopbus: a low-latency publish/subscribe message bus

Usage: hopbus <command> [options]

Commands:
  broker              run a broker (default 127.0.0.1:7400)
  pub SUBJECT DATA    publish a message
  sub PATTERN         subscribe and print messages
  req SUBJECT DATA    send a request and print the reply
  top                 live rates, latency and connections of a broker (its HTTP port)

Run "hopbus <command> --help" for a command's options.`;

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
  -h, --help          show this help`;

const PUB_HELP = `Usage: hopbus pub SUBJECT DATA [options]

Publishes DATA (sent as a UTF-8 string) to SUBJECT.

Options:
  -s, --server URL    broker address (default tcp://127.0.0.1:7400)
  -n, --count N       publish N times (default 1)
  --json              parse DATA as JSON and send it as msgpack
  -h, --help          show this help`;

const SUB_HELP = `Usage: hopbus sub PATTERN [options]

Subscribes to PATTERN ("*" matches one token, ">" the rest) and prints each message
as "[n] subject: payload" until interrupted or --count messages arrived.

Options:
  -s, --server URL    broker address (default tcp://127.0.0.1:7400)
  -q, --queue Q       join queue group Q
  -n, --count N       exit after N messages
  -h, --help          show this help`;

const REQ_HELP = `Usage: hopbus req SUBJECT DATA [options]

Sends DATA as a request to SUBJECT and prints the reply.

Options:
  -s, --server URL    broker address (default tcp://127.0.0.1:7400)
  -t, --timeout MS    give up after MS milliseconds (default 2000)
  --json              parse DATA as JSON and send it as msgpack
  -h, --help          show this help`;

const TOP_HELP = `Usage: hopbus top [options]

Shows a broker's message rates, microburst peaks, latency per hop and busiest
connections, redrawn every interval, from its HTTP port (/varz, /connz, /latency).
Press q or Ctrl-C to quit.

Options:
  -u, --url URL       the broker's HTTP address (default http://127.0.0.1:8222)
  -i, --interval MS   refresh interval in ms (default 1000)
  --once              print one frame (no screen control) and exit
  -h, --help          show this help`;

class UsageError extends Error {}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Values = Record<string, any>;

function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>, help: string): { values: Values; positionals: string[] } {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
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

function render(msg: Msg): string {
  const v = msg.value;
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  return JSON.stringify(v);
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

/** Checks user input that would otherwise only fail after connecting. */
function checkServer(server: string | undefined): void {
  if (server !== undefined) parseUrl(server);
}

async function open(server: string | undefined, name: string): Promise<Connection> {
  const bus = await connect(server ?? 'tcp://127.0.0.1:7400', { name, reconnect: false });
  bus.on('error', (err: Error) => console.error(`hopbus: ${err.message}`));
  return bus;
}

function payload(data: string, json: boolean | undefined): unknown {
  if (!json) return data;
  try {
    return JSON.parse(data);
  } catch (err) {
    throw new UsageError(`--json: DATA is not valid JSON: ${(err as Error).message}`);
  }
}

async function cmdPub(args: string[]): Promise<void> {
  const { values, positionals } = parse(
    args,
    { server: { type: 'string', short: 's' }, count: { type: 'string', short: 'n' }, json: { type: 'boolean' } },
    PUB_HELP,
  );
  if (values.help) return void console.log(PUB_HELP);
  if (positionals.length !== 2) throw new UsageError(`pub needs SUBJECT and DATA\n\n${PUB_HELP}`);
  const [subject, data] = positionals as [string, string];
  const count = int('count', values.count, 1) ?? 1;
  const value = payload(data, values.json);
  validateSubject(subject);
  checkServer(values.server);
  const bus = await open(values.server, 'hopbus-pub');
  for (let i = 0; i < count; i++) {
    bus.publish(subject, value);
    if (bus.pendingBytes > 1 << 20) await bus.flush();
  }
  await bus.flush();
  await bus.close();
  console.log(`published ${count} message${count === 1 ? '' : 's'} to "${subject}"`);
}

async function cmdSub(args: string[]): Promise<void> {
  const { values, positionals } = parse(
    args,
    { server: { type: 'string', short: 's' }, queue: { type: 'string', short: 'q' }, count: { type: 'string', short: 'n' } },
    SUB_HELP,
  );
  if (values.help) return void console.log(SUB_HELP);
  if (positionals.length !== 1) throw new UsageError(`sub needs one PATTERN\n\n${SUB_HELP}`);
  const count = int('count', values.count, 1);
  validatePattern(positionals[0]!);
  if (values.queue !== undefined) {
    const bad = queueNameProblem(values.queue);
    if (bad !== null) throw new UsageError(`invalid queue group: ${bad}`);
  }
  checkServer(values.server);
  const bus = await open(values.server, 'hopbus-sub');
  const sub = bus.subscribe(positionals[0]!, { queue: values.queue, max: count });
  await bus.flush();
  console.error(`listening on "${positionals[0]}"${values.queue ? ` in queue group "${values.queue}"` : ''}`);
  process.on('SIGINT', () => void bus.drain().then(() => process.exit(0)));
  let n = 0;
  for await (const msg of sub) {
    n++;
    console.log(`[${n}] ${msg.subject}: ${render(msg)}`);
  }
  await bus.close();
}

async function cmdReq(args: string[]): Promise<void> {
  const { values, positionals } = parse(
    args,
    { server: { type: 'string', short: 's' }, timeout: { type: 'string', short: 't' }, json: { type: 'boolean' } },
    REQ_HELP,
  );
  if (values.help) return void console.log(REQ_HELP);
  if (positionals.length !== 2) throw new UsageError(`req needs SUBJECT and DATA\n\n${REQ_HELP}`);
  const timeoutMs = int('timeout', values.timeout, 1) ?? 2000;
  const data = payload(positionals[1]!, values.json);
  validateSubject(positionals[0]!);
  checkServer(values.server);
  const bus = await open(values.server, 'hopbus-req');
  try {
    const reply = await bus.request(positionals[0]!, data, { timeoutMs });
    console.log(render(reply));
  } finally {
    await bus.close();
  }
}

async function cmdTop(args: string[]): Promise<void> {
  const { values, positionals } = parse(
    args,
    { url: { type: 'string', short: 'u' }, interval: { type: 'string', short: 'i' }, once: { type: 'boolean' } },
    TOP_HELP,
  );
  if (values.help) return void console.log(TOP_HELP);
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
      return cmdPub(rest);
    case 'sub':
      return cmdSub(rest);
    case 'req':
      return cmdReq(rest);
    case 'top':
      return cmdTop(rest);
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
