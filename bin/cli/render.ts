/**
 * bin/cli/render.ts: a message as the terminal (or a pipe) gets it. Text is printed as
 * text; anything that is not plain text (invalid UTF-8, control characters such as a
 * terminal's escape sequences) is printed as a hex preview, so a binary payload can
 * neither garble the terminal nor pass for text. A multi-line payload keeps its lines,
 * indented under the message's first line.
 */
import type { Msg } from '../../client/index.js';

const KIND_NAMES = ['raw', 'utf8', 'msgpack'];
const decoder = new TextDecoder('utf-8', { fatal: true });

/** The payload as text when it is plain text (tabs and newlines allowed), else null. */
export function plainText(bytes: Uint8Array): string | null {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return null;
  }
  // C0 controls but tab, newline and carriage return; DEL; C1 controls.
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  return /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/.test(text) ? null : text;
}

function hexPreview(bytes: Uint8Array): string {
  const head = Buffer.from(bytes.subarray(0, 32))
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1 ');
  return `<${bytes.length} bytes, not text> ${head}${bytes.length > 32 ? ' …' : ''}`;
}

/** msgpack values JSON cannot hold: 64-bit integers as decimal strings, bytes as base64. */
function jsonSafe(this: Record<string, unknown>, key: string, v: unknown): unknown {
  const raw = this[key]; // before toJSON: a Buffer would already be { type, data }
  if (typeof raw === 'bigint') return raw.toString();
  if (raw instanceof Uint8Array) return Buffer.from(raw).toString('base64');
  return v;
}

/** The payload for a human: msgpack values as JSON, text as text, the rest as hex. */
export function payloadText(msg: Msg): string {
  if (msg.kind === 2) {
    try {
      return JSON.stringify(msg.value, jsonSafe) ?? 'undefined';
    } catch {
      return hexPreview(msg.data);
    }
  }
  return plainText(msg.data) ?? hexPreview(msg.data);
}

/** "[n] subject: payload", further payload lines indented; headers under it when asked for. */
export function renderLine(n: number, msg: Msg, opts: { headers: boolean; timestamp: boolean }): string {
  const text = payloadText(msg).replace(/\r?\n$/, '');
  const lines = text.split(/\r?\n/);
  const when = opts.timestamp ? `${new Date().toISOString()} ` : '';
  let out = `${when}[${n}] ${msg.subject}${msg.snapshot ? ' (cached)' : ''}${msg.reply ? ` (reply to ${msg.reply})` : ''}: ${lines[0]}`;
  for (let i = 1; i < lines.length; i++) out += `\n    ${lines[i]}`;
  if (opts.headers) {
    const h = msg.headers;
    if (h !== undefined) for (const [k, v] of Object.entries(h)) out += `\n    ${k}: ${v}`;
  }
  return out;
}

/** One JSON object per message, for tools: everything the message carries. */
export function renderJson(msg: Msg): string {
  const text = msg.kind === 2 ? null : plainText(msg.data);
  const o: Record<string, unknown> = {
    subject: msg.subject,
    reply: msg.reply || undefined,
    headers: msg.headers,
    kind: KIND_NAMES[msg.kind] ?? msg.kind,
    size: msg.data.length,
    received: new Date().toISOString(),
  };
  if (msg.kind === 2) {
    try {
      o.value = msg.value;
    } catch {
      o.payloadBase64 = Buffer.from(msg.data).toString('base64'); // not valid msgpack after all
    }
  } else if (text !== null) o.payload = text;
  else o.payloadBase64 = Buffer.from(msg.data).toString('base64');
  // From the last-value cache (snapshot subscriptions) or a replay: the sequence, and which it was.
  if (msg.seq !== undefined) o.seq = msg.seq;
  if (msg.snapshot) o.snapshot = true;
  if (msg.replayed) o.replayed = true;
  // The latency service's stamps (monotonic ns, as decimal strings: they are 64-bit).
  if (msg.sentAt !== undefined) o.sentAt = msg.sentAt.toString();
  if (msg.brokerAt !== undefined) o.brokerAt = msg.brokerAt.toString();
  return JSON.stringify(o, jsonSafe);
}
