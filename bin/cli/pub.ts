/**
 * hopbus pub SUBJECT [DATA]: publishes DATA (or standard input) to SUBJECT, once or
 * --count times, with headers, a reply subject, a pause between messages and
 * templates in the payload ({{Count}}, {{Time}}, ...), as `nats pub` does.
 */
import crypto from 'node:crypto';
import { validateSubject } from '../../topics/index.js';
import { UsageError, int, list, parseCommand, str, type CommandSpec } from './args.js';
import { SERVER_FLAGS, openBus, resolveServer } from './server.js';

export const PUB: CommandSpec = {
  usage: 'pub SUBJECT [DATA] [options]',
  about: `Publishes DATA to SUBJECT as a UTF-8 string (or, with --json, as msgpack). Without DATA the
payload is read from standard input (all of it, as bytes). DATA may hold templates,
filled in per message: {{Count}} (1, 2, ...), {{Time}} (ISO 8601), {{Unix}} (seconds),
{{UnixNano}} (nanoseconds), {{ID}} (a random id, new per message).`,
  flags: [
    ...SERVER_FLAGS,
    { name: 'count', short: 'n', kind: 'string', arg: 'N', default: '1', help: 'publish N messages' },
    { name: 'sleep', kind: 'string', arg: 'MS', default: '0', help: 'pause between messages, in ms' },
    { name: 'header', short: 'H', kind: 'list', arg: 'KEY:VALUE', help: 'add a header' },
    { name: 'reply', short: 'r', kind: 'string', arg: 'SUBJECT', help: 'reply subject to send with each message' },
    { name: 'json', kind: 'boolean', help: 'parse DATA as JSON and send it as msgpack' },
    { name: 'quiet', short: 'q', kind: 'boolean', help: 'print nothing on success' },
  ],
  positionals: [1, 2],
  needs: 'pub needs a SUBJECT',
  footer: `Examples:
  hopbus pub md.EURUSD.bid 1.0712 -n 3
  hopbus pub orders.new '{"id":{{Count}}}' --json -n 10 --sleep 100 -H source:desk1
  echo hello | hopbus pub logs.app`,
};

const TEMPLATES: Record<string, (n: number) => string> = {
  Count: (n) => String(n),
  Time: () => new Date().toISOString(),
  Unix: () => String(Math.floor(Date.now() / 1000)),
  UnixNano: () => (BigInt(Date.now()) * 1_000_000n).toString(),
  ID: () => crypto.randomUUID(),
};

/** The payload for message n (1-based), templates filled in; throws UsageError for an unknown one. */
export function fillTemplates(data: string, n: number): string {
  return data.replace(/\{\{\s*(\w+)\s*\}\}/g, (_m, name: string) => {
    const f = TEMPLATES[name];
    if (f === undefined)
      throw new UsageError(
        `unknown template {{${name}}}; known: ${Object.keys(TEMPLATES)
          .map((k) => `{{${k}}}`)
          .join(', ')}`,
      );
    return f(n);
  });
}

/** -H key:value flags as a headers object. */
export function parseHeaders(flags: string[]): Record<string, string> | undefined {
  if (flags.length === 0) return undefined;
  const h: Record<string, string> = {};
  for (const f of flags) {
    const at = f.indexOf(':');
    const key = at < 0 ? '' : f.slice(0, at).trim();
    if (key === '' || /[\s:]/.test(key)) throw new UsageError(`--header must be KEY:VALUE with a non-empty KEY without spaces, got "${f}"`);
    h[key] = f.slice(at + 1).trim();
  }
  return h;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function runPub(args: string[]): Promise<void> {
  const p = parseCommand(args, PUB);
  if (p === null) return;
  const { values, positionals } = p;
  const subject = positionals[0]!;
  const count = int(values, 'count', 1)!;
  const sleepMs = int(values, 'sleep', 0)!;
  const headers = parseHeaders(list(values, 'header'));
  const reply = str(values, 'reply');
  validateSubject(subject);
  if (reply !== undefined) validateSubject(reply);
  let template: string | null = null;
  let bytes: Buffer | null = null;
  if (positionals.length === 2) template = positionals[1]!;
  else if (process.stdin.isTTY) throw new UsageError('pub needs DATA, or a payload on standard input');
  else {
    bytes = await readStdin();
    if (bytes.length === 0) throw new UsageError('pub needs DATA, or a payload on standard input (it was empty)');
  }
  const json = values.json === true;
  const value = (n: number): unknown => {
    if (bytes !== null) return json ? parseJson(bytes.toString('utf8')) : bytes;
    const text = fillTemplates(template!, n);
    return json ? parseJson(text) : text;
  };
  value(1); // a bad template or bad JSON is a usage error before connecting
  const server = resolveServer(values);
  const bus = await openBus(server, 'hopbus-pub');
  try {
    const options = headers !== undefined || reply !== undefined ? { headers, reply } : undefined;
    for (let i = 1; i <= count; i++) {
      bus.publish(subject, value(i), options);
      if (sleepMs > 0 && i < count) {
        await bus.flush();
        await new Promise((r) => setTimeout(r, sleepMs));
      } else if (bus.pendingBytes > 1 << 20) await bus.flush();
    }
    await bus.flush();
  } finally {
    await bus.close();
  }
  if (values.quiet !== true) console.log(`published ${count} message${count === 1 ? '' : 's'} to "${subject}"`);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new UsageError(`--json: DATA is not valid JSON: ${(err as Error).message}`);
  }
}
