/**
 * hopbus ping (also: hopbus server check): is a broker there and answering? Connects,
 * measures --count round trips (a flush: PING answered once the broker processed what
 * came before it) and exits 0, or says why not and exits 1. Made for scripts, container
 * health checks and systemd's ExecStartPost.
 */
import { connectBroker } from '../../client/index.js';
import { int, parseCommand, type CommandSpec } from './args.js';
import { SERVER_FLAGS, credentialOptions, resolveServer } from './server.js';

export const PING: CommandSpec = {
  usage: 'ping [options]   (also: hopbus server check)',
  about: `Connects to a broker, measures round trips, and prints one line:
"ok <url> <server name> <version>: rtt min/median/max µs". Exit status: 0 when the broker
answered, 1 when it did not (the line says why), 2 for bad arguments.`,
  flags: [
    ...SERVER_FLAGS,
    { name: 'count', short: 'n', kind: 'string', arg: 'N', default: '3', help: 'round trips to measure' },
    { name: 'timeout', short: 't', kind: 'string', arg: 'MS', default: '2000', help: 'give up after MS milliseconds (connect and each round trip)' },
    { name: 'quiet', short: 'q', kind: 'boolean', help: 'print nothing; the exit status says it all' },
  ],
  positionals: [0, 0],
};

export async function runPing(args: string[]): Promise<void> {
  const p = parseCommand(args, PING);
  if (p === null) return;
  const { values } = p;
  const count = int(values, 'count', 1)!;
  const timeoutMs = int(values, 'timeout', 1)!;
  const server = resolveServer(values);
  const say = (line: string, err = false) => {
    if (values.quiet !== true) (err ? console.error : console.log)(line);
  };
  let bus;
  try {
    bus = await connectBroker(server, { name: 'hopbus-ping', reconnect: false, timeoutMs, ...credentialOptions() });
  } catch (err) {
    say(`unreachable ${server}: ${(err as Error).message}`, true);
    process.exitCode = 1;
    return;
  }
  try {
    const rtts: number[] = [];
    for (let i = 0; i < count; i++) {
      const t0 = process.hrtime.bigint();
      await bus.flush(timeoutMs);
      rtts.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    rtts.sort((a, b) => a - b);
    const f = (x: number) => x.toFixed(0);
    const info = bus.info;
    say(`ok ${server} ${info?.serverName ?? ''} ${info?.version ?? ''}: rtt ${f(rtts[0]!)}/${f(rtts[rtts.length >> 1]!)}/${f(rtts[rtts.length - 1]!)} µs`);
  } catch (err) {
    say(`not answering ${server}: ${(err as Error).message}`, true);
    process.exitCode = 1;
  } finally {
    await bus.close().catch(() => {});
  }
}
