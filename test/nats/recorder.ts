/**
 * A NatsHandler that writes down every callback as plain data (bytes decoded, offsets
 * resolved), so tests compare what the parser reported, not where in which buffer.
 */
import { NatsParser, type NatsHandler, type NatsParserOptions } from '../../broker/nats/parser.js';

export type NatsEvent =
  | { op: 'connect'; json: string }
  | { op: 'pub'; subject: string; reply: string; headers: string; payload: string }
  | { op: 'sub'; subject: string; queue: string; sid: string; sidNum: number }
  | { op: 'unsub'; sid: string; sidNum: number; max: number }
  | { op: 'ping' }
  | { op: 'pong' }
  | { op: 'error'; text: string; detail: string };

export class Recorder implements NatsHandler {
  readonly events: NatsEvent[] = [];
  onConnect(json: string): void {
    this.events.push({ op: 'connect', json });
  }
  onPub(buf: Buffer, so: number, sl: number, ro: number, rl: number, ho: number, hl: number, po: number, pl: number): void {
    this.events.push({
      op: 'pub',
      subject: buf.toString('latin1', so, so + sl),
      reply: buf.toString('latin1', ro, ro + rl),
      headers: buf.toString('latin1', ho, ho + hl),
      payload: buf.toString('latin1', po, po + pl),
    });
  }
  onSub(buf: Buffer, so: number, sl: number, qo: number, ql: number, io: number, il: number, sid: number): void {
    this.events.push({
      op: 'sub',
      subject: buf.toString('latin1', so, so + sl),
      queue: buf.toString('latin1', qo, qo + ql),
      sid: buf.toString('latin1', io, io + il),
      sidNum: sid,
    });
  }
  onUnsub(buf: Buffer, io: number, il: number, sid: number, max: number): void {
    this.events.push({ op: 'unsub', sid: buf.toString('latin1', io, io + il), sidNum: sid, max });
  }
  onPing(): void {
    this.events.push({ op: 'ping' });
  }
  onPong(): void {
    this.events.push({ op: 'pong' });
  }
  onError(text: string, detail: string): void {
    this.events.push({ op: 'error', text, detail });
  }
}

export const DEFAULTS: NatsParserOptions = { maxPayload: 1024 * 1024 };

/** Parses the chunks in order with a fresh parser (headers negotiated unless told otherwise); returns what it reported. */
export function run(chunks: Buffer[] | Buffer | string, opts: Partial<NatsParserOptions> & { headers?: boolean } = {}): NatsEvent[] {
  const r = new Recorder();
  const p = new NatsParser(r, { ...DEFAULTS, ...opts });
  p.headers = opts.headers ?? true;
  const list = typeof chunks === 'string' ? [Buffer.from(chunks, 'latin1')] : Array.isArray(chunks) ? chunks : [chunks];
  for (const c of list) p.parse(c);
  return r.events;
}

/** The first error reported (text only), or undefined. */
export function errorOf(events: NatsEvent[]): string | undefined {
  const e = events.find((x) => x.op === 'error');
  return e?.op === 'error' ? e.text : undefined;
}

/** Splits a buffer at the given cut points (sorted, deduplicated, within bounds). */
export function cut(buf: Buffer, points: number[]): Buffer[] {
  const at = [...new Set(points.map((p) => Math.max(0, Math.min(buf.length, p))))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of at) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}
