/**
 * hopbus sub PATTERN: prints what arrives, one message a line (or one JSON object a
 * line, or the bare payloads for a pipe) until interrupted, --count messages, or the
 * broker goes away, which it says, exiting 1.
 */
import type { Msg } from '../../client/index.js';
import { queueNameProblem } from '../../topics/queue.js';
import { validatePattern } from '../../topics/index.js';
import { UsageError, int, parseCommand, str, type CommandSpec } from './args.js';
import { renderJson, renderLine } from './render.js';
import { SERVER_FLAGS, openBus, resolveServer } from './server.js';

export const SUB: CommandSpec = {
  usage: 'sub PATTERN [options]',
  about: `Subscribes to PATTERN ("*" matches one token, ">" the rest) and prints each message as
"[n] subject: payload" until interrupted (Ctrl-C: drains, exits 0), --count messages
arrived (exit 0), or the connection is lost (says why, exit 1). Payloads that are not
plain text print as a hex preview; further lines of a multi-line payload are indented.
The broker's own $SYS.* subjects are left out unless PATTERN starts with $SYS.
With --snapshot, the cached value of every matching subject in the broker's last-value
cache comes first, each marked "(cached)" (in --json: "snapshot": true, with "seq"), and
a line on standard error says when all of them have arrived.`,
  flags: [
    ...SERVER_FLAGS,
    { name: 'queue', short: 'q', kind: 'string', arg: 'Q', help: 'join queue group Q' },
    { name: 'count', short: 'n', kind: 'string', arg: 'N', help: 'exit after N messages' },
    { name: 'headers', kind: 'boolean', help: "print each message's headers under it" },
    { name: 'timestamp', short: 't', kind: 'boolean', help: 'start each line with the time it arrived' },
    {
      name: 'json',
      kind: 'boolean',
      help: 'one JSON object per message: subject, reply, headers, kind, size, payload (or payloadBase64, or value), received, sentAt/brokerAt',
    },
    { name: 'raw', kind: 'boolean', help: "print only each payload's bytes, then a newline (for pipes)" },
    { name: 'snapshot', kind: 'boolean', help: "first the cached value of every matching subject (the broker's last-value cache), then live messages" },
  ],
  positionals: [1, 1],
  needs: 'sub needs one PATTERN',
};

/** The broker's own subjects are shown only to a pattern that asks for them. */
function showSysFor(pattern: string): boolean {
  return pattern.startsWith('$SYS');
}

export async function runSub(args: string[]): Promise<void> {
  const p = parseCommand(args, SUB);
  if (p === null) return;
  const { values, positionals } = p;
  const pattern = positionals[0]!;
  const count = int(values, 'count', 1);
  const queue = str(values, 'queue');
  validatePattern(pattern);
  if (queue !== undefined) {
    const bad = queueNameProblem(queue);
    if (bad !== null) throw new UsageError(`invalid queue group: ${bad}`);
  }
  if (values.json === true && values.raw === true) throw new UsageError('--json and --raw exclude each other');
  const snapshot = values.snapshot === true;
  if (snapshot && queue !== undefined) throw new UsageError('--snapshot and --queue exclude each other');
  const server = resolveServer(values);
  const bus = await openBus(server, 'hopbus-sub');
  const showSys = showSysFor(pattern);
  let lost: Error | null | undefined;
  let interrupted = false;
  bus.on('disconnect', (err: Error | null) => {
    if (!interrupted) lost = err;
  });
  // --count counts what is printed, so the broker's auto-unsubscribe (which would count
  // the $SYS messages left out too) is used only when nothing is left out.
  const sub = bus.subscribe(pattern, { queue, max: showSysFor(pattern) ? count : undefined, ...(snapshot ? { snapshot } : {}) });
  await bus.flush();
  console.error(`listening on "${pattern}"${queue ? ` in queue group "${queue}"` : ''}${snapshot ? ' with a snapshot' : ''} at ${server}`);
  if (snapshot) void sub.snapshotDone.then((n) => console.error(`snapshot complete: ${n} cached value${n === 1 ? '' : 's'}`));
  process.on('SIGINT', () => {
    interrupted = true;
    void bus.drain().then(() => process.exit(0));
  });
  const print = (n: number, msg: Msg): void => {
    if (values.raw === true) {
      process.stdout.write(msg.data);
      process.stdout.write('\n');
    } else if (values.json === true) console.log(renderJson(msg));
    else console.log(renderLine(n, msg, { headers: values.headers === true, timestamp: values.timestamp === true }));
  };
  let n = 0;
  for await (const msg of sub) {
    if (!showSys && msg.subject.startsWith('$SYS.')) continue;
    print(++n, msg);
    if (n === count) {
      sub.unsubscribe();
      break;
    }
  }
  if (lost !== undefined) {
    console.error(`hopbus: lost the connection to ${server}${lost ? `: ${lost.message}` : ' (the broker closed it)'} after ${n} message${n === 1 ? '' : 's'}`);
    process.exitCode = 1;
  }
  await bus.close();
}
