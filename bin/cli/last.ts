/**
 * hopbus last SUBJECT: the newest message the broker's last-value cache keeps for one
 * subject (a request to $HOPBUS.LAST.SUBJECT, docs/CACHE.md), printed as `hopbus req`
 * prints a reply; exit 1 when nothing is cached for it.
 */
import { validateSubject } from '../../topics/index.js';
import { UsageError, int, parseCommand, type CommandSpec } from './args.js';
import { payloadText, renderJson } from './render.js';
import { SERVER_FLAGS, openBus, resolveServer } from './server.js';

export const LAST: CommandSpec = {
  usage: 'last SUBJECT [options]',
  about: `Prints the newest message on SUBJECT that the broker's last-value cache keeps (broker
option "cache"): its payload, and with --headers its headers, among them Hopbus-Seq (the
subject's sequence) and Hopbus-Age-Ms (how long ago it was published). Exits 1 when the
broker keeps no value for SUBJECT (none published, evicted, expired or deleted, or no
cache pattern covers it).`,
  flags: [
    ...SERVER_FLAGS,
    { name: 'timeout', short: 't', kind: 'string', arg: 'MS', default: '2000', help: 'give up after MS milliseconds' },
    { name: 'headers', kind: 'boolean', help: "print the message's headers before its payload" },
    { name: 'json', kind: 'boolean', help: 'one JSON object: subject, headers, kind, size, payload (or payloadBase64, or value)' },
  ],
  positionals: [1, 1],
  needs: 'last needs one SUBJECT',
  footer: `Examples:
  hopbus last md.EURUSD.bid
  hopbus last md.EURUSD.bid --json`,
};

export async function runLast(args: string[]): Promise<void> {
  const p = parseCommand(args, LAST);
  if (p === null) return;
  const { values, positionals } = p;
  const subject = positionals[0]!;
  validateSubject(subject);
  if (subject.startsWith('$')) throw new UsageError(`last: "${subject}" is a system subject; the cache keeps no values for those`);
  const timeoutMs = int(values, 'timeout', 1)!;
  const server = resolveServer(values);
  const bus = await openBus(server, 'hopbus-last');
  try {
    const reply = await bus.request(`$HOPBUS.LAST.${subject}`, undefined, { timeoutMs });
    const h = reply.headers;
    if (reply.noResponders || h?.['Hopbus-Last'] === 'none') {
      console.error(`hopbus: ${server} keeps no value for "${subject}"`);
      process.exitCode = 1;
      return;
    }
    if (values.json === true) {
      // The reply came on an inbox: the JSON names the subject asked for.
      console.log(JSON.stringify({ ...(JSON.parse(renderJson(reply)) as object), subject }));
      return;
    }
    if (values.headers === true && h !== undefined) {
      for (const [k, v] of Object.entries(h)) console.log(`${k}: ${v}`);
      console.log('');
    }
    console.log(payloadText(reply));
  } finally {
    await bus.close();
  }
}
