/**
 * The NATS client protocol, client -> server, read as a byte state machine in the
 * manner of nats-server's server/parser.go: one pass over each chunk, no regular
 * expressions, no string splitting, and it resumes wherever a chunk ended (inside an
 * op name, inside the arguments, inside a payload, between the CR and the LF).
 *
 * What it reads: CONNECT {json}, PUB subject [reply] size, HPUB subject [reply]
 * hdr_size total_size, SUB subject [queue] sid, UNSUB sid [max], PING, PONG; op names
 * in any letter case. What nats-server also accepts from a client and this does too:
 * +OK (ignored), INFO {json} (ignored once it is JSON), -ERR (the connection closes,
 * without an -ERR back). MSG and HMSG are server -> client only: 'Unknown Protocol
 * Operation'.
 *
 * Line endings, as nats-server: a control line ends at LF, and a CR right before it is
 * dropped, so a bare LF is accepted; a payload must be followed by exactly CR LF, or the
 * byte count was wrong and the answer is 'Unknown Protocol Operation'.
 *
 * Limits, checked before anything is buffered: the arguments of a control line (the
 * bytes after the op name and its spaces, without CR LF) over MAX_CONTROL_LINE_SIZE
 * are refused with 'maximum control line exceeded' as soon as that many bytes have
 * arrived; a PUB/HPUB size over `maxPayload` is refused with 'Maximum Payload
 * Violation' on the control line, before a byte of its payload is read.
 *
 * Allocation: none per message in the common case. When a control line and its
 * payload are both whole in the chunk, the handler gets the chunk itself and offsets
 * into it (subject, reply, queue and sid are byte ranges; the handler interns them,
 * e.g. with transports/intern.ts SubjectCache). Only a message that spans chunks is
 * gathered (arguments, then payload) in one buffer owned by the parser and reused for
 * every such message; it grows to at most MAX_CONTROL_LINE_SIZE + maxPayload. Either
 * way the buffer handed out is valid only during the callback.
 *
 * Errors: every error found here is fatal in nats-server, so the parser stops at the
 * first one (later chunks are ignored) and calls onError once with the -ERR text
 * nats-server sends ('' where it sends none and only closes) and a detail for the
 * log. It never throws on any input. The non-fatal -ERRs ('Invalid Subject',
 * 'Invalid Publish Subject', permissions) are the session's decisions (errors.ts).
 */
import { ERR_AUTH_VIOLATION, ERR_MAX_CONTROL_LINE, ERR_MAX_PAYLOAD, ERR_UNKNOWN_OP } from './errors.js';

/** server/const.go MAX_CONTROL_LINE_SIZE: the longest argument part of a control line. */
export const MAX_CONTROL_LINE_SIZE = 4096;

/**
 * What the parser found, one method per op: numbers and byte ranges of `buf`, no
 * object per message, so a session maps each call straight onto the router. `buf` and
 * the ranges are valid only during the call (copy or intern what you keep).
 */
export interface NatsHandler {
  /** CONNECT: the JSON text as sent (the session parses it; nats-server closes without an -ERR when it is not JSON). */
  onConnect(json: string): void;
  /**
   * PUB (hdrLen 0) and HPUB. The header block is [hdrOff, hdrOff + hdrLen) and the body
   * follows it at payloadOff = hdrOff + hdrLen. No reply: replyLen 0.
   */
  onPub(
    buf: Buffer,
    subjectOff: number,
    subjectLen: number,
    replyOff: number,
    replyLen: number,
    hdrOff: number,
    hdrLen: number,
    payloadOff: number,
    payloadLen: number,
  ): void;
  /** SUB. No queue group: queueLen 0. `sid` is the sid token as a number when it is decimal digits (what every official client sends), else -1: use the bytes. */
  onSub(buf: Buffer, subjectOff: number, subjectLen: number, queueOff: number, queueLen: number, sidOff: number, sidLen: number, sid: number): void;
  /** UNSUB. `max` > 0: remove after that many deliveries in all; 0: now (no max, 0, or not a number, which nats-server treats alike). */
  onUnsub(buf: Buffer, sidOff: number, sidLen: number, sid: number, max: number): void;
  onPing(): void;
  onPong(): void;
  /**
   * The parser has stopped. Send `-ERR '<text>'` unless text is '' (nats-server only
   * closes then), and close the connection. `detail` is for the log.
   */
  onError(text: string, detail: string): void;
}

export interface NatsParserOptions {
  /** The max_payload advertised in INFO: a PUB/HPUB total size over it is refused. */
  maxPayload: number;
  /** The server awaits authentication: any op before CONNECT is an 'Authorization Violation'. */
  requireConnect?: boolean;
}

// Parser states. Numbers, not an enum object, so the switch compiles to a jump table.
const S_START = 0; // at the first byte of an op
const S_P = 1; // after P: PUB, PING or PONG
const S_LIT = 2; // matching the rest of an op name (`lit`, from `li`)
const S_SPC_REQ = 3; // an op that needs a space or tab before its arguments
const S_SPC = 4; // skipping spaces and tabs before the arguments
const S_ARG = 5; // inside the arguments, up to LF
const S_SKIP = 6; // after PING, PONG, +OK: ignore up to LF, as nats-server does
const S_PAYLOAD = 7; // gathering a payload that spans chunks
const S_END_R = 8; // the CR after a gathered payload
const S_END_N = 9; // the LF after it
const S_CLOSED = 10; // stopped: an error, or stop()

const OP_PUB = 1;
const OP_HPUB = 2;
const OP_SUB = 3;
const OP_UNSUB = 4;
const OP_CONNECT = 5;
const OP_INFO = 6;
const OP_PING = 7;
const OP_PONG = 8;
const OP_OK = 9;
const OP_ERR = 10;

const CR = 13;
const LF = 10;
const SP = 32;
const TAB = 9;

/** The rest of each op name after its first letter(s), lower case; input bytes are compared OR 0x20, which folds only letters. */
const L_HPUB = lit('pub');
const L_SUB = lit('ub');
const L_UNSUB = lit('nsub');
const L_CONNECT = lit('onnect');
const L_INFO = lit('nfo');
const L_OK = lit('ok');
const L_ERR = lit('err');
const L_B = lit('b');
const L_NG = lit('ng');

function lit(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/**
 * Up to `max` decimal digits as a number, else -1. Sizes take 9 (server/util.go
 * parseSize: no size can overflow), sids 15 (still exact in a double).
 */
function parseDigits(b: Buffer, off: number, len: number, max: number): number {
  if (len === 0 || len > max) return -1;
  let n = 0;
  for (let i = 0; i < len; i++) {
    const d = b[off + i]! - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

function parseSize(b: Buffer, off: number, len: number): number {
  return parseDigits(b, off, len, 9);
}

function parseSid(b: Buffer, off: number, len: number): number {
  return parseDigits(b, off, len, 15);
}

/** The control line as nats-server's %q shows it in its log lines (error path only). */
function quote(b: Buffer, off: number, len: number): string {
  return JSON.stringify(b.toString('latin1', off, off + len));
}

export class NatsParser {
  /** The max_payload in force (the session may lower it per connection). */
  maxPayload: number;
  /**
   * Headers negotiated: the session sets it from CONNECT {"headers": true}. Until then
   * HPUB closes the connection, as nats-server (ErrMsgHeadersNotSupported, no -ERR).
   */
  headers = false;
  /** Set while the server awaits CONNECT (authentication); cleared by the first CONNECT. */
  awaitingConnect: boolean;

  private state = S_START;
  private op = 0;
  private lit: Uint8Array = L_B;
  private li = 0;
  /** Bytes ignored after PING/PONG/+OK, bounded like a control line. */
  private skipped = 0;

  /**
   * Where a control line or message that spans chunks is gathered: the argument bytes
   * from 0 (no op name, no CR LF), then the payload right after them. Reused for every
   * such message, so a split costs a copy and no allocation once it has grown.
   */
  private held = Buffer.allocUnsafe(16 * 1024);
  private heldLen = 0;
  /** The current control line is in `held` (it began in an earlier chunk). */
  private lineHeld = false;

  /** Argument tokens of the current line as (start, length) pairs, relative to the argument start. */
  private readonly tok = new Int32Array(10);

  // The PUB/HPUB waiting for its payload in `held`: ranges relative to held[0].
  private subjectOff = 0;
  private subjectLen = 0;
  private replyOff = 0;
  private replyLen = 0;
  private argLen = 0;
  private hdrSize = 0;
  private totalSize = 0;

  constructor(
    private readonly h: NatsHandler,
    opts: NatsParserOptions,
  ) {
    this.maxPayload = opts.maxPayload;
    this.awaitingConnect = opts.requireConnect === true;
  }

  /** True once an error stopped the parser or stop() was called. */
  get closed(): boolean {
    return this.state === S_CLOSED;
  }

  /** The session closes the connection (e.g. a failed CONNECT): ignore the rest of this chunk and all later ones. */
  stop(): void {
    this.state = S_CLOSED;
  }

  /** Reads one chunk. Callbacks run synchronously, in order; it returns when the chunk is consumed or the parser stopped. */
  parse(chunk: Buffer): void {
    const end = chunk.length;
    let i = 0;
    // Where the unconsumed argument bytes of the current line start in this chunk.
    let argStart = 0;
    while (i < end) {
      switch (this.state) {
        case S_START: {
          const raw = chunk[i]!;
          const c = raw | 0x20;
          if (this.awaitingConnect && c !== 0x63 /* c */) return void this.fail(ERR_AUTH_VIOLATION, 'an op before CONNECT while authentication is required');
          i++;
          if (c === 0x70 /* p */) {
            this.state = S_P;
          } else if (c === 0x68 /* h */) {
            this.expect(L_HPUB, OP_HPUB);
          } else if (c === 0x73 /* s */) {
            this.expect(L_SUB, OP_SUB);
          } else if (c === 0x75 /* u */) {
            this.expect(L_UNSUB, OP_UNSUB);
          } else if (c === 0x63 /* c */) {
            this.expect(L_CONNECT, OP_CONNECT);
          } else if (c === 0x69 /* i */) {
            this.expect(L_INFO, OP_INFO);
          } else if (raw === 0x2b /* + */) {
            this.expect(L_OK, OP_OK);
          } else if (raw === 0x2d /* - */) {
            this.expect(L_ERR, OP_ERR);
          } else {
            return void this.unknown(chunk, i - 1);
          }
          break;
        }
        case S_P: {
          const c = chunk[i]! | 0x20;
          if (c === 0x75 /* u */) this.expect(L_B, OP_PUB);
          else if (c === 0x69 /* i */) this.expect(L_NG, OP_PING);
          else if (c === 0x6f /* o */) this.expect(L_NG, OP_PONG);
          else return void this.unknown(chunk, i);
          i++;
          break;
        }
        case S_LIT: {
          if ((chunk[i]! | 0x20) !== this.lit[this.li]) return void this.unknown(chunk, i);
          i++;
          if (++this.li === this.lit.length) this.opName();
          break;
        }
        case S_SPC_REQ: {
          const b = chunk[i]!;
          if (b !== SP && b !== TAB) return void this.unknown(chunk, i);
          this.state = S_SPC;
          i++;
          break;
        }
        case S_SPC: {
          const b = chunk[i]!;
          if (b === SP || b === TAB) {
            i++;
          } else {
            this.state = S_ARG;
            argStart = i;
            this.heldLen = 0;
            this.lineHeld = false;
          }
          break;
        }
        case S_ARG: {
          let j = i;
          while (j < end && chunk[j] !== LF) j++;
          if (j === end) {
            // The line goes on in the next chunk: refuse it now if it is already too
            // long (a CR at the very end may be the line's own), else keep it.
            const n = end - argStart;
            if (this.heldLen + n - (chunk[end - 1] === CR ? 1 : 0) > MAX_CONTROL_LINE_SIZE) return void this.controlLineTooLong(this.heldLen + n);
            this.append(chunk, argStart, n);
            this.lineHeld = true;
            return;
          }
          let src = chunk;
          let off = argStart;
          let len = j - argStart;
          if (this.lineHeld) {
            if (this.heldLen + len - 1 > MAX_CONTROL_LINE_SIZE) return void this.controlLineTooLong(this.heldLen + len);
            this.append(chunk, argStart, len);
            src = this.held;
            off = 0;
            len = this.heldLen;
          }
          if (len > 0 && src[off + len - 1] === CR) len--;
          if (len > MAX_CONTROL_LINE_SIZE) return void this.controlLineTooLong(len);
          i = this.line(chunk, j + 1, src, off, len);
          if (i < 0) return;
          break;
        }
        case S_SKIP: {
          const b = chunk[i]!;
          i++;
          if (b === LF) {
            this.state = S_START;
            if (this.op === OP_PING) this.h.onPing();
            else if (this.op === OP_PONG) this.h.onPong();
            // +OK from a client: nats-server accepts and ignores it.
            if (this.state === S_CLOSED) return;
          } else if (++this.skipped > MAX_CONTROL_LINE_SIZE + 1) {
            return void this.controlLineTooLong(this.skipped);
          }
          break;
        }
        case S_PAYLOAD: {
          const n = Math.min(this.argLen + this.totalSize - this.heldLen, end - i);
          chunk.copy(this.held, this.heldLen, i, i + n);
          this.heldLen += n;
          i += n;
          if (this.heldLen === this.argLen + this.totalSize) this.state = S_END_R;
          break;
        }
        case S_END_R: {
          if (chunk[i] !== CR) return void this.badPayloadEnd(chunk, i);
          this.state = S_END_N;
          i++;
          break;
        }
        case S_END_N: {
          if (chunk[i] !== LF) return void this.badPayloadEnd(chunk, i);
          i++;
          this.state = S_START;
          this.lineHeld = false;
          const a = this.argLen;
          this.h.onPub(
            this.held,
            this.subjectOff,
            this.subjectLen,
            this.replyOff,
            this.replyLen,
            a,
            this.hdrSize,
            a + this.hdrSize,
            this.totalSize - this.hdrSize,
          );
          if (this.state === S_CLOSED) return;
          break;
        }
        default:
          return; // S_CLOSED
      }
    }
  }

  private expect(rest: Uint8Array, op: number): void {
    this.state = S_LIT;
    this.lit = rest;
    this.li = 0;
    this.op = op;
  }

  /** The op name is complete: what may follow it. */
  private opName(): void {
    switch (this.op) {
      case OP_CONNECT:
      case OP_INFO:
        // nats-server: spaces optional ("CONNECT{...}" is read too).
        this.state = S_SPC;
        break;
      case OP_PING:
      case OP_PONG:
      case OP_OK:
        this.state = S_SKIP;
        this.skipped = 0;
        break;
      default:
        this.state = S_SPC_REQ;
    }
  }

  /**
   * A whole control line: its arguments are src[off, off + len) (CR dropped); `next` is
   * the chunk index after its LF. Returns where to go on in the chunk, or -1 when the
   * parser stopped.
   */
  private line(chunk: Buffer, next: number, src: Buffer, off: number, len: number): number {
    const tok = this.tok;
    switch (this.op) {
      case OP_PUB: {
        const n = this.split(src, off, len, 3);
        if (n !== 2 && n !== 3) return this.silent(`processPub Parse Error: ${quote(src, off, len)}`);
        const size = parseSize(src, off + tok[2 * n - 2]!, tok[2 * n - 1]!);
        if (size < 0) return this.silent(`processPub Bad or Missing Size: ${quote(src, off, len)}`);
        if (size > this.maxPayload) return this.fail(ERR_MAX_PAYLOAD, `maximum payload exceeded: ${size} vs ${this.maxPayload}`);
        return this.message(chunk, next, src, off, len, n === 3, 0, size);
      }
      case OP_HPUB: {
        if (!this.headers) return this.silent('message headers not supported');
        const n = this.split(src, off, len, 4);
        if (n !== 3 && n !== 4) return this.silent(`processHeaderPub Parse Error: ${quote(src, off, len)}`);
        const hdr = parseSize(src, off + tok[2 * n - 4]!, tok[2 * n - 3]!);
        if (hdr < 0) return this.silent(`processHeaderPub Bad or Missing Header Size: ${quote(src, off, len)}`);
        const size = parseSize(src, off + tok[2 * n - 2]!, tok[2 * n - 1]!);
        if (size < 0) return this.silent(`processHeaderPub Bad or Missing Total Size: ${quote(src, off, len)}`);
        if (hdr > size) return this.silent(`processHeaderPub Header Size larger then TotalSize: ${quote(src, off, len)}`);
        if (size > this.maxPayload) return this.fail(ERR_MAX_PAYLOAD, `maximum payload exceeded: ${size} vs ${this.maxPayload}`);
        return this.message(chunk, next, src, off, len, n === 4, hdr, size);
      }
      case OP_SUB: {
        const n = this.split(src, off, len, 3);
        if (n !== 2 && n !== 3) return this.silent(`processSub Parse Error: ${quote(src, off, len)}`);
        const sidOff = off + tok[2 * n - 2]!;
        const sidLen = tok[2 * n - 1]!;
        this.endLine();
        if (n === 3) this.h.onSub(src, off + tok[0]!, tok[1]!, off + tok[2]!, tok[3]!, sidOff, sidLen, parseSid(src, sidOff, sidLen));
        else this.h.onSub(src, off + tok[0]!, tok[1]!, 0, 0, sidOff, sidLen, parseSid(src, sidOff, sidLen));
        return this.state === S_CLOSED ? -1 : next;
      }
      case OP_UNSUB: {
        const n = this.split(src, off, len, 2);
        if (n !== 1 && n !== 2) return this.silent(`processUnsub Parse Error: ${quote(src, off, len)}`);
        const max = n === 2 ? parseSize(src, off + tok[2]!, tok[3]!) : 0;
        this.endLine();
        this.h.onUnsub(src, off + tok[0]!, tok[1]!, parseSid(src, off + tok[0]!, tok[1]!), max > 0 ? max : 0);
        return this.state === S_CLOSED ? -1 : next;
      }
      case OP_CONNECT: {
        const json = src.toString('utf8', off, off + len);
        this.endLine();
        this.awaitingConnect = false;
        this.h.onConnect(json);
        return this.state === S_CLOSED ? -1 : next;
      }
      case OP_INFO: {
        // nats-server reads a client's INFO as JSON and otherwise ignores it.
        try {
          JSON.parse(src.toString('utf8', off, off + len));
        } catch {
          return this.silent('INFO from the client is not JSON');
        }
        this.endLine();
        return next;
      }
      default: // OP_ERR: nats-server logs it and closes (processErr), sending nothing.
        return this.silent(`Client Error ${src.toString('utf8', off, off + len)}`);
    }
  }

  /** A control line that needs no payload is done. */
  private endLine(): void {
    this.state = S_START;
    this.lineHeld = false;
    this.heldLen = 0;
  }

  /**
   * A PUB/HPUB control line is read; its header block and body (`total` bytes) and CR LF
   * follow at chunk[next]. Delivered straight from the chunk when all of it is there,
   * else gathered in `held` after the arguments.
   */
  private message(chunk: Buffer, next: number, src: Buffer, off: number, len: number, reply: boolean, hdr: number, total: number): number {
    const tok = this.tok;
    const rOff = reply ? tok[2]! : 0;
    const rLen = reply ? tok[3]! : 0;
    if (!this.lineHeld && next + total + 2 <= chunk.length) {
      if (chunk[next + total] !== CR || chunk[next + total + 1] !== LF) return this.badPayloadEnd(chunk, next + total);
      this.state = S_START;
      this.h.onPub(chunk, off + tok[0]!, tok[1]!, reply ? off + rOff : 0, rLen, next, hdr, next + hdr, total - hdr);
      return this.state === S_CLOSED ? -1 : next + total + 2;
    }
    // Spans chunks: arguments to held[0, len), the payload after them as it arrives.
    this.ensure(len + total, this.lineHeld ? len : 0);
    if (!this.lineHeld) src.copy(this.held, 0, off, off + len);
    this.heldLen = len;
    this.lineHeld = true;
    this.argLen = len;
    this.subjectOff = tok[0]!;
    this.subjectLen = tok[1]!;
    this.replyOff = rOff;
    this.replyLen = rLen;
    this.hdrSize = hdr;
    this.totalSize = total;
    this.state = total === 0 ? S_END_R : S_PAYLOAD;
    return next;
  }

  /**
   * Splits src[off, off + len) on spaces and tabs into `tok` (as processPub does, by
   * hand); returns the count, or max + 1 as soon as there are more than `max`.
   */
  private split(src: Buffer, off: number, len: number, max: number): number {
    const tok = this.tok;
    let n = 0;
    let start = -1;
    for (let k = 0; k < len; k++) {
      const c = src[off + k]!;
      if (c === SP || c === TAB) {
        if (start >= 0) {
          if (n === max) return max + 1;
          tok[2 * n] = start;
          tok[2 * n + 1] = k - start;
          n++;
          start = -1;
        }
      } else if (start < 0) {
        start = k;
      }
    }
    if (start >= 0) {
      if (n === max) return max + 1;
      tok[2 * n] = start;
      tok[2 * n + 1] = len - start;
      n++;
    }
    return n;
  }

  private append(chunk: Buffer, from: number, n: number): void {
    this.ensure(this.heldLen + n, this.heldLen);
    chunk.copy(this.held, this.heldLen, from, from + n);
    this.heldLen += n;
  }

  /** Grows `held` geometrically to at least `size`, keeping its first `keep` bytes. */
  private ensure(size: number, keep: number): void {
    if (size <= this.held.length) return;
    const grown = Buffer.allocUnsafe(Math.max(size, this.held.length * 2));
    this.held.copy(grown, 0, 0, keep);
    this.held = grown;
  }

  /** Stops the parser and reports; returns -1 so that callers can `return this.fail(...)`. */
  private fail(text: string, detail: string): number {
    this.state = S_CLOSED;
    this.h.onError(text, detail);
    return -1;
  }

  /** A protocol violation nats-server answers by closing only (parse returns the error; readLoop closes, ProtocolViolation). */
  private silent(detail: string): number {
    return this.fail('', detail);
  }

  private unknown(chunk: Buffer, at: number): number {
    return this.fail(ERR_UNKNOWN_OP, `parser ERROR, state=${this.state}: proto=${quote(chunk, at, Math.min(32, chunk.length - at))}`);
  }

  private badPayloadEnd(chunk: Buffer, at: number): number {
    return this.fail(ERR_UNKNOWN_OP, `payload not followed by CR LF (wrong byte count?): proto=${quote(chunk, at, Math.min(32, chunk.length - at))}`);
  }

  private controlLineTooLong(len: number): number {
    return this.fail(ERR_MAX_CONTROL_LINE, `max_control_line ${MAX_CONTROL_LINE_SIZE}, buffer len ${len}`);
  }
}
