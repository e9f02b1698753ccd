/**
 * broker/leaf/parser.ts: the leafnode protocol as a hub sends it to its leaf (server
 * -> leaf), read as a byte machine over chunks in the manner of nats-server's
 * server/parser.go, resuming wherever a chunk ended:
 *
 *   INFO {json}                                   the hub's INFO (first, and async updates)
 *   PING, PONG, +OK, -ERR '<text>'
 *   LS+ <subject> [<queue> <weight>]              interest of the hub's side
 *   LS- <subject> [<queue>]
 *   LMSG <subject> [<reply>] <size>               a message; with queue groups:
 *   LMSG <subject> + <reply> <queue>... <size>      ("+": a reply follows)
 *   LMSG <subject> | <queue>... <size>              ("|": no reply)
 *   HMSG <subject> [<reply> | + <reply> <queue>... | | <queue>...] <hdr> <size>
 *
 * Its own file rather than a mode of the client-protocol parser (broker/nats/parser.ts):
 * that parser reads what clients send (PUB, SUB, CONNECT), this one what a server sends
 * a leaf; they share only the line and payload framing, and keeping them apart leaves the
 * client path's state machine exactly as fast as it was. The shared limits and framing
 * rules are the same: a control line ends at LF (a CR before it is dropped), a body must
 * be followed by exactly CR LF, sizes are decimal digits.
 *
 * Allocation: none per message in the common case (LMSG/HMSG and its body whole in the
 * chunk: the handler gets the chunk and offsets). A message that spans chunks is gathered
 * in one buffer owned by the parser and reused. Queue names of a queue delivery become
 * strings (a few per message, only for queue deliveries). Interest and INFO lines are
 * rare and become strings.
 *
 * Errors: the parser stops at the first protocol violation and calls onError once; it
 * never throws on any input.
 */

/** The longest control line read (INFO with many URLs is the long one; nats-server allows 4 KiB for others). */
export const MAX_LEAF_LINE = 64 * 1024;

export interface LeafHandler {
  onInfo(json: string): void;
  onPing(): void;
  onPong(): void;
  /** -ERR from the hub, without its quotes. */
  onErr(text: string): void;
  /** LS+: `queue` '' for plain interest (weight 1). */
  onSub(subject: string, queue: string, weight: number): void;
  onUnsub(subject: string, queue: string): void;
  /**
   * LMSG (hdrLen 0) or HMSG: the header block is buf[bodyOff, bodyOff + hdrLen), the
   * payload follows it up to bodyOff + size. `queues` null: plain delivery only. Valid
   * only during the call.
   */
  onMsg(
    buf: Buffer,
    subjectOff: number,
    subjectLen: number,
    replyOff: number,
    replyLen: number,
    queues: string[] | null,
    bodyOff: number,
    hdrLen: number,
    size: number,
  ): void;
  /** The parser stopped on a protocol violation; close the connection. */
  onError(detail: string): void;
}

const S_LINE = 0;
const S_BODY = 1;
const S_CLOSED = 2;

const CR = 13;
const LF = 10;
const SP = 32;
const TAB = 9;
const MAX_TOKENS = 40;

function digitsOf(b: Buffer, off: number, len: number): number {
  if (len === 0 || len > 9) return -1;
  let n = 0;
  for (let i = 0; i < len; i++) {
    const d = b[off + i]! - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** The op name at src[off, off+len), upper-cased (ASCII letters only). */
function opName(src: Buffer, off: number, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) {
    const c = src[off + i]!;
    s += String.fromCharCode(c >= 97 && c <= 122 ? c - 32 : c);
  }
  return s;
}

export class LeafParser {
  private state = S_LINE;
  /** A control line (and then the body of its message) gathered across chunks. */
  private held = Buffer.allocUnsafe(4096);
  private heldLen = 0;
  private readonly tok = new Int32Array(2 * MAX_TOKENS);
  // The message waiting for its body in `held` (offsets into held).
  private subjectOff = 0;
  private subjectLen = 0;
  private replyOff = 0;
  private replyLen = 0;
  private queues: string[] | null = null;
  private bodyOff = 0;
  private hdrLen = 0;
  private size = 0;

  constructor(
    private readonly h: LeafHandler,
    /** The largest message body (headers and payload) accepted. */
    private readonly maxBody: number,
  ) {}

  get closed(): boolean {
    return this.state === S_CLOSED;
  }

  stop(): void {
    this.state = S_CLOSED;
  }

  parse(chunk: Buffer): void {
    const end = chunk.length;
    let i = 0;
    while (i < end) {
      if (this.state === S_LINE) {
        let j = i;
        while (j < end && chunk[j] !== LF) j++;
        if (j === end) {
          if (this.heldLen + (end - i) > MAX_LEAF_LINE) return void this.fail(`control line over ${MAX_LEAF_LINE} bytes`);
          this.append(chunk, i, end - i);
          return;
        }
        let src = chunk;
        let off = i;
        let len = j - i;
        if (this.heldLen > 0) {
          if (this.heldLen + len > MAX_LEAF_LINE) return void this.fail(`control line over ${MAX_LEAF_LINE} bytes`);
          this.append(chunk, i, len);
          src = this.held;
          off = 0;
          len = this.heldLen;
        }
        if (len > 0 && src[off + len - 1] === CR) len--;
        const next = this.line(chunk, j + 1, src, off, len);
        if (next < 0) return;
        i = next;
      } else if (this.state === S_BODY) {
        const want = this.bodyOff + this.size + 2 - this.heldLen;
        const n = Math.min(want, end - i);
        this.append(chunk, i, n);
        i += n;
        if (n === want) {
          const b = this.held;
          const e = this.bodyOff + this.size;
          if (b[e] !== CR || b[e + 1] !== LF) return void this.fail('message body not followed by CR LF (wrong byte count?)');
          this.state = S_LINE;
          this.heldLen = 0;
          this.h.onMsg(b, this.subjectOff, this.subjectLen, this.replyOff, this.replyLen, this.queues, this.bodyOff, this.hdrLen, this.size);
          if (this.state === S_CLOSED) return;
        }
      } else {
        return;
      }
    }
  }

  /** One control line src[off, off+len); `next` is where the chunk goes on. Returns it (or past a body), -1 when stopped. */
  private line(chunk: Buffer, next: number, src: Buffer, off: number, len: number): number {
    const n = this.split(src, off, len);
    if (n === 0) {
      this.heldLen = 0;
      return next; // an empty line: nats-server skips it
    }
    if (n < 0) return this.fail(`more than ${MAX_TOKENS} arguments`);
    const tok = this.tok;
    const op = opName(src, off + tok[0]!, tok[1]!);
    const a = (k: number) => src.toString('utf8', off + tok[2 * k]!, off + tok[2 * k]! + tok[2 * k + 1]!);
    const rest = () => src.toString('utf8', off + tok[2]!, off + len);
    switch (op) {
      case 'PING':
        this.heldLen = 0;
        this.h.onPing();
        break;
      case 'PONG':
        this.heldLen = 0;
        this.h.onPong();
        break;
      case '+OK':
        this.heldLen = 0;
        break;
      case 'INFO':
        if (n < 2) return this.fail('INFO without a JSON object');
        this.heldLen = 0;
        this.h.onInfo(rest());
        break;
      case '-ERR': {
        this.heldLen = 0;
        const t = n < 2 ? '' : rest().trim();
        this.h.onErr(t.length >= 2 && t.startsWith("'") && t.endsWith("'") ? t.slice(1, -1) : t);
        break;
      }
      case 'LS+':
        if (n !== 2 && n !== 4)
          return this.fail(`LS+ needs a subject, or a subject, queue and weight: ${JSON.stringify(src.toString('latin1', off, off + len))}`);
        this.heldLen = 0;
        if (n === 2) this.h.onSub(a(1), '', 1);
        else {
          const w = digitsOf(src, off + tok[6]!, tok[7]!);
          if (w < 0) return this.fail(`LS+ queue weight is not a number: ${JSON.stringify(a(3))}`);
          this.h.onSub(a(1), a(2), w);
        }
        break;
      case 'LS-':
        if (n !== 2 && n !== 3) return this.fail(`LS- needs a subject and maybe a queue: ${JSON.stringify(src.toString('latin1', off, off + len))}`);
        this.heldLen = 0;
        this.h.onUnsub(a(1), n === 3 ? a(2) : '');
        break;
      case 'LMSG':
      case 'HMSG':
        return this.message(chunk, next, src, off, len, n, op === 'HMSG');
      default:
        return this.fail(`unknown protocol operation ${JSON.stringify(op.slice(0, 16))}`);
    }
    return this.state === S_CLOSED ? -1 : next;
  }

  /** LMSG/HMSG arguments (tokens 1..n-1) read; the body follows at chunk[next]. */
  private message(chunk: Buffer, next: number, src: Buffer, off: number, len: number, n: number, headers: boolean): number {
    const tok = this.tok;
    // Tokens after the subject, before the sizes: none, a reply, or an indicator with queues.
    const sizes = headers ? 2 : 1;
    const middle = n - 2 - sizes;
    if (middle < 0) return this.fail(`${headers ? 'HMSG' : 'LMSG'} without a subject and size: ${JSON.stringify(src.toString('latin1', off, off + len))}`);
    let replyTok = -1;
    let queues: string[] | null = null;
    if (middle === 1) replyTok = 2;
    else if (middle > 1) {
      const ind = tok[5] === 1 ? src[off + tok[4]!] : 0;
      let first = 3;
      if (ind === 0x2b /* + */) {
        replyTok = 3;
        first = 4;
      } else if (ind !== 0x7c /* | */)
        return this.fail(`${headers ? 'HMSG' : 'LMSG'} bad or missing reply indicator: ${JSON.stringify(src.toString('latin1', off, off + len))}`);
      queues = [];
      for (let k = first; k < n - sizes; k++) queues.push(src.toString('utf8', off + tok[2 * k]!, off + tok[2 * k]! + tok[2 * k + 1]!));
    }
    const size = digitsOf(src, off + tok[2 * (n - 1)]!, tok[2 * (n - 1) + 1]!);
    const hdr = headers ? digitsOf(src, off + tok[2 * (n - 2)]!, tok[2 * (n - 2) + 1]!) : 0;
    if (size < 0 || hdr < 0 || hdr > size) return this.fail(`bad message sizes: ${JSON.stringify(src.toString('latin1', off, off + len))}`);
    if (size > this.maxBody) return this.fail(`message of ${size} bytes over the limit of ${this.maxBody}`);
    const so = tok[2]!;
    const sl = tok[3]!;
    const ro = replyTok < 0 ? 0 : tok[2 * replyTok]!;
    const rl = replyTok < 0 ? 0 : tok[2 * replyTok + 1]!;
    if (this.heldLen === 0 && next + size + 2 <= chunk.length) {
      if (chunk[next + size] !== CR || chunk[next + size + 1] !== LF) return this.fail('message body not followed by CR LF (wrong byte count?)');
      this.h.onMsg(chunk, off + so, sl, off + ro, rl, queues, next, hdr, size);
      return this.state === S_CLOSED ? -1 : next + size + 2;
    }
    // Spans chunks: the line to held[0, len) (it may be there already), the body after it.
    if (this.heldLen === 0) this.append(src, off, len);
    else this.heldLen = len;
    this.subjectOff = so;
    this.subjectLen = sl;
    this.replyOff = ro;
    this.replyLen = rl;
    this.queues = queues;
    this.bodyOff = len;
    this.hdrLen = hdr;
    this.size = size;
    this.state = S_BODY;
    return next;
  }

  /** Splits on spaces and tabs into `tok` (offsets relative to `off`); the count, or -1 over MAX_TOKENS. */
  private split(src: Buffer, off: number, len: number): number {
    const tok = this.tok;
    let n = 0;
    let start = -1;
    for (let k = 0; k <= len; k++) {
      const c = k === len ? SP : src[off + k]!;
      if (c === SP || c === TAB) {
        if (start >= 0) {
          if (n === MAX_TOKENS) return -1;
          tok[2 * n] = start;
          tok[2 * n + 1] = k - start;
          n++;
          start = -1;
        }
      } else if (start < 0) start = k;
    }
    return n;
  }

  private append(src: Buffer, from: number, n: number): void {
    if (this.heldLen + n > this.held.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.heldLen + n, 2 * this.held.length));
      this.held.copy(grown, 0, 0, this.heldLen);
      this.held = grown;
    }
    src.copy(this.held, this.heldLen, from, from + n);
    this.heldLen += n;
  }

  private fail(detail: string): -1 {
    this.state = S_CLOSED;
    this.h.onError(detail);
    return -1;
  }
}
