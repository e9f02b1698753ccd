/**
 * The shared-memory layout of one shm connection, and of a broker's hub word block.
 * Everything another thread reads or writes is defined here, once.
 *
 * One connection is one SharedArrayBuffer holding a header and two single-producer /
 * single-consumer byte rings, UP (client -> broker) and DOWN (broker -> client).
 * Offsets are in bytes; every field another thread writes often sits alone on its
 * own 128-byte line (two 64-byte cache lines: adjacent-line prefetch would otherwise
 * pair them up and the two threads would still fight over one line).
 *
 *   byte 0     +------------------------------------------------------------------+
 *              | CONTROL  magic 'HBS1' | layout version | ring capacity | state     |
 *              |          client wait kind | client closed | broker closed          |
 *              |          client thread id | DOWN ring capacity (0: as UP)         |
 *              |          a direct channel's counters: messages and bytes        |
 *              |          written, two float64 at byte 48 (its writer only)      |
 *              |          (written once at set-up, or once at close)              |
 *   byte 128   +------------------------------------------------------------------+
 *              | CLIENT HEARTBEAT   counter the client thread bumps periodically   |
 *   byte 256   +------------------------------------------------------------------+
 *              | BROKER HEARTBEAT   counter the broker thread bumps periodically   |
 *   byte 384   +------------------------------------------------------------------+
 *              | CLIENT SIGNAL      seq (notifiers add 1) | parked (client sets)   |
 *   byte 512   +==================================================================+
 *              | RING UP   +0    tail       written by the producer (client) only |
 *              |           +128  head       written by the consumer (broker) only |
 *              |           +256  wantSpace  producer: "I have bytes waiting"      |
 *              |           +384  data[capacity]                                   |
 *              +==================================================================+
 *              | RING DOWN  the same, producer = broker, consumer = client        |
 *              +==================================================================+
 *
 * The broker's side of the signalling lives in the hub block (one SharedArrayBuffer
 * per broker, shared by every connection it hands out), so one broker thread parks on
 * one word however many connections it serves:
 *
 *   byte 0     | HUB SIGNAL   seq (notifiers add 1) | parked (broker sets)          |
 *   byte 128   | CLAIMS       bumped by a client that claims an endpoint            |
 *
 * Ring indices are free-running 32-bit byte positions (they wrap at 2^32, which the
 * `| 0` arithmetic makes harmless): bytes in the ring = (tail - head) | 0, offset of a
 * position = pos & (capacity - 1). The producer publishes tail with Atomics.store
 * after writing the bytes, the consumer reads tail with Atomics.load before reading
 * them, so the data writes happen-before the reads (the JS memory model orders plain
 * accesses around sequentially consistent atomics). The same holds for head in the
 * other direction: a slot is rewritten only after the consumer has released it, so
 * a full ring never overwrites unread data.
 *
 * Records are the protocol frames themselves (transports/protocol/): the frame's own
 * u32 length is the record's length prefix. A frame that does not fit before the end
 * of the ring is split: it continues at offset 0, and the consumer copies it out in
 * two parts. The ring is therefore a byte pipe with TCP's semantics, read with the
 * same FrameReader: frames may even be larger than the ring (they pass in pieces).
 */
import { OptionsError } from '../../runtime/errors.js';

export const MAGIC = 0x31534248; // 'HBS1' little-endian
export const LAYOUT_VERSION = 1;

/** Bytes per isolated line. */
export const LINE = 128;
const W = LINE / 4; // Int32 words per line

// --- connection header, as Int32Array indices --------------------------------------
export const H_MAGIC = 0;
export const H_VERSION = 1;
export const H_CAPACITY = 2;
/** Endpoint state: OFFERED until a client claims it (compare-and-swap), then CLAIMED. */
export const H_STATE = 3;
/** Wait kind the client asked for (WAIT_KIND_*): how eagerly the broker polls it. */
export const H_CLIENT_WAIT = 4;
/** CLOSED_* written by each side when it is done. */
export const H_CLIENT_CLOSED = 5;
export const H_BROKER_CLOSED = 6;
/** threadId of the client that claimed the endpoint (for the broker's logs). */
export const H_CLIENT_THREAD = 7;
/**
 * Capacity of ring DOWN when it differs from ring UP's (H_CAPACITY); 0 = the same. A
 * direct channel (direct.ts) only uses UP, so its DOWN ring is the smallest there is.
 */
export const H_DOWN_CAPACITY = 8;
/**
 * Byte offset of a direct channel's two float64 counters, messages and bytes written.
 * The writer stores them with plain writes (aligned 8-byte stores); the broker reads
 * them for monitoring, where a value a message behind does no harm.
 */
export const CHANNEL_COUNTS_AT = 48;
export const H_CLIENT_BEAT = 1 * W;
export const H_BROKER_BEAT = 2 * W;
export const H_CLIENT_SEQ = 3 * W;
export const H_CLIENT_PARKED = 3 * W + 1;

export const STATE_OFFERED = 0;
export const STATE_CLAIMED = 1;

/** Not closed. */
export const OPEN = 0;
/** Closed cleanly: everything written before it was published; read it, then close. */
export const CLOSED_CLEAN = 1;
/** Closed abruptly (destroy). */
export const CLOSED_ABORT = 2;
/** The thread exited (its exit hook wrote this). */
export const CLOSED_EXITED = 3;

export const WAIT_KIND_PARK = 0;
export const WAIT_KIND_HYBRID = 1;
export const WAIT_KIND_SPIN = 2;

/** Byte offset of the first ring. */
const RINGS_AT = 4 * LINE;
/** Ring-relative byte offsets. */
export const R_TAIL = 0;
export const R_HEAD = LINE;
export const R_WANT_SPACE = 2 * LINE;
export const R_DATA = 3 * LINE;

// --- hub block -----------------------------------------------------------------------
export const HUB_SEQ = 0;
export const HUB_PARKED = 1;
export const HUB_CLAIMS = W;
export const HUB_BYTES = 2 * LINE;

export const MIN_RING = 4096;
export const MAX_RING = 1 << 30;
export const DEFAULT_RING = 1 << 20;

/** Byte offset of ring UP (client -> broker) or DOWN (broker -> client) in a connection buffer. */
export function ringOffset(capacity: number, down: boolean): number {
  return RINGS_AT + (down ? R_DATA + capacity : 0);
}

export function connectionBytes(capacity: number, downCapacity = capacity): number {
  return RINGS_AT + 2 * R_DATA + capacity + downCapacity;
}

/** Capacity of ring DOWN of a connection, from its header. */
export function downCapacity(h: Int32Array): number {
  return h[H_DOWN_CAPACITY] || h[H_CAPACITY]!;
}

/** Rounds a requested ring size up to a power of two within [MIN_RING, MAX_RING]. */
export function ringCapacity(requested: number): number {
  if (!Number.isSafeInteger(requested) || requested < 1) throw new OptionsError(`ring size must be a positive integer, got ${requested}`);
  if (requested > MAX_RING) throw new OptionsError(`ring size ${requested} is over the limit of ${MAX_RING} bytes`);
  return Math.max(MIN_RING, 2 ** Math.ceil(Math.log2(requested)));
}

/** A fresh connection buffer with its header written, in state OFFERED. */
export function createConnection(capacity: number, down = capacity): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(connectionBytes(capacity, down));
  const h = new Int32Array(sab, 0, 4 * W);
  h[H_MAGIC] = MAGIC;
  h[H_VERSION] = LAYOUT_VERSION;
  h[H_CAPACITY] = capacity;
  if (down !== capacity) h[H_DOWN_CAPACITY] = down;
  return sab;
}

/** Why a buffer is not a connection of this layout, or null. */
export function connectionProblem(sab: unknown): string | null {
  if (!(sab instanceof SharedArrayBuffer)) return 'its "conn" field is not a SharedArrayBuffer';
  if (sab.byteLength < RINGS_AT) return 'its buffer is too small to be a connection';
  const h = new Int32Array(sab, 0, 4 * W);
  if (h[H_MAGIC] !== MAGIC) return 'its buffer is not an hopbus shm connection (bad magic)';
  if (h[H_VERSION] !== LAYOUT_VERSION) return `its layout version ${h[H_VERSION]} is not ${LAYOUT_VERSION}`;
  const cap = h[H_CAPACITY]!;
  const down = downCapacity(h);
  const pow2 = (c: number) => c >= MIN_RING && c <= MAX_RING && (c & (c - 1)) === 0;
  if (!pow2(cap) || !pow2(down) || sab.byteLength !== connectionBytes(cap, down)) return 'its ring capacity does not match its size';
  return null;
}
