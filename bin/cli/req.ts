/**
 * hopbus req SUBJECT [DATA]: one request, its reply printed (headers first, when it has
 * any); and hopbus reply SUBJECT [RESPONSE]: a responder to try requests against.
 */
import { validateSubject } from '../../topics/index.js';
import { queueNameProblem } from '../../topics/queue.js';
import { UsageError, int, list, parseCommand, str, type CommandSpec } from './args.js';
import { fillTemplates, parseHeaders } from './pub.js';
import { payloadText, renderLine } from './render.js';
import { SERVER_FLAGS, openBus, resolveServer } from './server.js';

export const REQ: CommandSpec = {
  usage: 'req SUBJECT [DATA] [options]',
  about: `Sends DATA (a UTF-8 string; with --json, msgpack; empty when omitted) as a request to
SUBJECT and prints the reply: its headers ("key: value" lines) when it has any, then its
payload. Exits 1 on a timeout or when nobody subscribes to SUBJECT (no responders).`,
  flags: [
    ...SERVER_FLAGS,
    { name: 'timeout', short: 't', kind: 'string', arg: 'MS', default: '2000', help: 'give up after MS milliseconds' },
    { name: 'header', short: 'H', kind: 'list', arg: 'KEY:VALUE', help: 'add a header to the request' },
    { name: 'json', kind: 'boolean', help: 'parse DATA as JSON and send it as msgpack' },
  ],
  positionals: [1, 2],
  needs: 'req needs a SUBJECT',
};

function payload(data: string, json: boolean): unknown {
  if (!json) return data;
  try {
    return JSON.parse(data) as unknown;
  } catch (err) {
    throw new UsageError(`--json: DATA is not valid JSON: ${(err as Error).message}`);
  }
}

export async function runReq(args: string[]): Promise<void> {
  const p = parseCommand(args, REQ);
  if (p === null) return;
  const { values, positionals } = p;
  const timeoutMs = int(values, 'timeout', 1)!;
  const headers = parseHeaders(list(values, 'header'));
  const data = payload(positionals[1] ?? '', values.json === true);
  validateSubject(positionals[0]!);
  const bus = await openBus(resolveServer(values), 'hopbus-req');
  try {
    const reply = await bus.request(positionals[0]!, data, { timeoutMs, ...(headers ? { headers } : {}) });
    const h = reply.headers;
    if (h !== undefined) for (const [k, v] of Object.entries(h)) console.log(`${k}: ${v}`);
    if (h !== undefined) console.log('');
    console.log(payloadText(reply));
  } finally {
    await bus.close();
  }
}

export const REPLY: CommandSpec = {
  usage: 'reply SUBJECT [RESPONSE] [options]',
  about: `Answers every request on SUBJECT (wildcards allowed) until interrupted or --count
requests: with RESPONSE (templates as in pub: {{Count}}, {{Time}}, ...), or, without it,
with the request's own payload and headers (an echo). Prints each request it answers.`,
  flags: [
    ...SERVER_FLAGS,
    { name: 'queue', short: 'q', kind: 'string', arg: 'Q', help: 'join queue group Q, sharing the requests with other responders' },
    { name: 'count', short: 'n', kind: 'string', arg: 'N', help: 'exit after answering N requests' },
    { name: 'header', short: 'H', kind: 'list', arg: 'KEY:VALUE', help: 'add a header to every response' },
    { name: 'quiet', kind: 'boolean', help: 'do not print the requests' },
  ],
  positionals: [1, 2],
  needs: 'reply needs a SUBJECT',
};

export async function runReply(args: string[]): Promise<void> {
  const p = parseCommand(args, REPLY);
  if (p === null) return;
  const { values, positionals } = p;
  const subject = positionals[0]!;
  const response = positionals[1];
  const count = int(values, 'count', 1);
  const queue = str(values, 'queue');
  const headers = parseHeaders(list(values, 'header'));
  if (queue !== undefined) {
    const bad = queueNameProblem(queue);
    if (bad !== null) throw new UsageError(`invalid queue group: ${bad}`);
  }
  if (response !== undefined) fillTemplates(response, 1); // an unknown template fails before connecting
  const server = resolveServer(values);
  const bus = await openBus(server, 'hopbus-reply');
  let lost = false;
  let interrupted = false;
  bus.on('disconnect', () => {
    if (!interrupted) lost = true;
  });
  const sub = bus.subscribe(subject, { queue, max: count });
  await bus.flush();
  console.error(`answering requests on "${subject}"${queue ? ` in queue group "${queue}"` : ''} at ${server}`);
  process.on('SIGINT', () => {
    interrupted = true;
    void bus.drain().then(() => process.exit(0));
  });
  let n = 0;
  for await (const msg of sub) {
    n++;
    if (values.quiet !== true) console.log(renderLine(n, msg, { headers: false, timestamp: false }));
    if (msg.reply === '') continue; // a plain publish: nothing to answer
    if (response !== undefined) msg.respond(fillTemplates(response, n), headers ? { headers } : undefined);
    else {
      const echo = msg.headers !== undefined || headers !== undefined ? { headers: { ...msg.headers, ...headers } } : undefined;
      msg.respond(msg.data, echo);
    }
  }
  await bus.flush().catch(() => {});
  if (lost) {
    console.error(`hopbus: lost the connection to ${server} after ${n} request${n === 1 ? '' : 's'}`);
    process.exitCode = 1;
  }
  await bus.close();
}
