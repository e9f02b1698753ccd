/**
 * The hopbus wire format: one binary frame layout shared by every transport.
 * This file is the one place each frame's layout is drawn; docs/PROTOCOL.md describes
 * the same bytes for readers of the protocol (test/transports/protocol.test.ts checks
 * that the two agree). Encoders are in encode.ts, the decoder view and validation in
 * decode.ts; import all of them from index.ts.
 *
 * All integers are little-endian. Every frame starts with the same 6-byte prefix:
 *
 *   0      4     5      6
 *   +------+-----+------+---------------------------
 *   | len  | op  | flags| op-specific body ...
 *   +------+-----+------+---------------------------
 *   len: u32, the whole frame including these 4 bytes.
 *
 * PUB (client -> broker) and MSG (broker -> client) share one layout, so the broker
 * turns a PUB into a MSG by patching the op byte (and the broker timestamp), never
 * re-encoding it: the same bytes fan out to every subscriber.
 *
 *   6  u8   payload kind (0 raw, 1 utf8, 2 msgpack)
 *   7  u8   stamp weight (with FLAG_TS: messages this stamped one stands for; 0 = 1), else 0
 *   8  u32  sid: in MSG, 0 = for every matching non-queue subscription of the
 *           connection; otherwise the one queue subscription it was chosen for
 *  12  u16  subject length S
 *  14  u16  reply length R (0 = no reply subject)
 *  16  u32  headers length H (0 = no headers)
 *  20  [flags & TS] u64 publisher send time, u64 broker receive time
 *      (monotonic ns, CLOCK_MONOTONIC: comparable between processes of one host)
 *  ..  [flags & SEQ, MSG only] u64 sequence: the subject's per-subject sequence in the
 *      last-value cache, or with FLAG_REPLAY the journal's global sequence
 *  ..  subject (S bytes UTF-8), reply (R), headers (H bytes, msgpack map), payload
 *
 * The other frames (offsets from the start of the frame, after the 6-byte prefix):
 *
 *   CONNECT, INFO   6 u16 protocol version | 8 msgpack map (rest of frame)
 *   CHALLENGE       6 u16 reserved | 8 nonce (rest of frame, 1..CHALLENGE_MAX_NONCE bytes)
 *                   (broker -> client, only in answer to a CONNECT with `nkey`: the bytes to sign)
 *   PROOF           6 u16 reserved | 8 Ed25519 signature of the nonce (64 bytes)              72 bytes
 *                   (client -> broker, only in answer to CHALLENGE, before INFO)
 *   SUB             5 flags (SUB_SNAPSHOT, SUB_FROM_SEQ, SUB_FROM_TIME) | 6 u8 policy (Policy)
 *                   | 7 u8 reserved | 8 u32 sid | 12 u16 pattern length P | 14 u16 queue length Q
 *                   | 16 pattern (P bytes) | queue (Q bytes) | [FROM_SEQ or FROM_TIME] u64 start
 *   IMAGE           5 u8 kind (ImageKind) | 6 u16 reserved | 8 u32 sid | 12 u32 count          16 bytes
 *                   (broker -> client: the start and the end of a snapshot subscription's image
 *                   from the last-value cache, or of a subscription's replay from the journal)
 *   UNSUB           6 u16 reserved | 8 u32 sid | 12 u32 max (0 = now; N = after N more messages)   16 bytes
 *   PING, PONG      the prefix only                                                             6 bytes
 *   OK              6 u16 reserved | 8 u32 ref (the sid it acknowledges, or 0)                  12 bytes
 *   ERR             5 flags (FLAG_FATAL) | 6 u16 code (ErrCode) | 8 u32 ref (sid concerned, or 0)
 *                   | 12 text (UTF-8, rest of frame)
 *   LOSS            6 u8 policy | 7 u8 reserved | 8 u32 sid | 12 u32 dropped | 16 u32 conflated  20 bytes
 *                   (broker -> client: what a slow-consumer policy dropped or conflated for one
 *                   subscription since the last LOSS)
 *   DIRECT          5 u8 kind (DirectKind) | 6 u16 pattern length P | 8 u32 a | 12 u32 b | 16 u32 c
 *                   | 20 pattern (P bytes, UTF-8); what a, b and c mean depends on the kind
 *                   (shm only: the control plane of direct delivery, docs/SHM.md "Direct delivery")
 */

import type { WireErrorName } from '../../runtime/errors.js';

export const PROTOCOL_VERSION = 1;

/** Size of the fixed part of a PUB/MSG frame (before the optional timestamps). */
export const MSG_HEADER = 20;
/** Size of the timestamp block present when FLAG_TS is set. */
export const TS_BLOCK = 16;
/** Smallest possible frame: len + op + flags. */
export const FRAME_PREFIX = 6;
export const UNSUB_SIZE = 16;
/** PING / PONG: the 6-byte prefix only. */
export const PING_SIZE = FRAME_PREFIX;
export const OK_SIZE = 12;
export const LOSS_SIZE = 20;
/** Fixed part of a DIRECT frame, before the pattern. */
export const DIRECT_HEADER = 20;
/** Size of the sequence block present in a MSG when FLAG_SEQ is set. */
export const SEQ_BLOCK = 8;
export const IMAGE_SIZE = 16;
/** Fixed part of a CHALLENGE frame, before the nonce. */
export const CHALLENGE_HEADER = 8;
/** The longest nonce a CHALLENGE carries (the broker sends 22 bytes). */
export const CHALLENGE_MAX_NONCE = 64;
/** An Ed25519 signature. */
export const SIGNATURE_BYTES = 64;
export const PROOF_SIZE = 8 + SIGNATURE_BYTES;

export const enum Op {
  CONNECT = 0x01,
  INFO = 0x02,
  CHALLENGE = 0x03,
  PROOF = 0x04,
  PUB = 0x10,
  MSG = 0x11,
  SUB = 0x20,
  UNSUB = 0x21,
  PING = 0x30,
  PONG = 0x31,
  OK = 0x40,
  ERR = 0x41,
  LOSS = 0x42,
  IMAGE = 0x43,
  DIRECT = 0x50,
}

export const OP_NAMES: Record<number, string> = {
  0x01: 'CONNECT',
  0x02: 'INFO',
  0x03: 'CHALLENGE',
  0x04: 'PROOF',
  0x10: 'PUB',
  0x11: 'MSG',
  0x20: 'SUB',
  0x21: 'UNSUB',
  0x30: 'PING',
  0x31: 'PONG',
  0x40: 'OK',
  0x41: 'ERR',
  0x42: 'LOSS',
  0x43: 'IMAGE',
  0x50: 'DIRECT',
};

/** PUB/MSG flag: a 16-byte timestamp block follows the fixed header. */
export const FLAG_TS = 0x01;
/** PUB flag: this is a request; tell the publisher at once if nobody subscribes. */
export const FLAG_REQUEST = 0x02;
/** MSG flag: status message "no responders" for a request (empty payload). */
export const FLAG_NO_RESPONDERS = 0x04;
/**
 * MSG flag: an 8-byte sequence block follows the timestamp block (or the fixed header).
 * The broker sets it only towards connections that asked for a snapshot or a replay
 * (a SUB with SUB_SNAPSHOT, SUB_FROM_SEQ or SUB_FROM_TIME), so older clients never see it;
 * a PUB with it is invalid.
 */
export const FLAG_SEQ = 0x08;
/** MSG flag: the cached value of its subject, from a snapshot subscription's image (sid = that subscription). */
export const FLAG_SNAPSHOT = 0x10;
/** MSG flag: a journal record replayed for a subscription (sid = that subscription; the sequence is the journal's). */
export const FLAG_REPLAY = 0x20;
/** ERR flag: the sender closes the connection after this frame. */
export const FLAG_FATAL = 0x01;

/** SUB flag: first send the cached value of every matching subject (the image), then live messages. */
export const SUB_SNAPSHOT = 0x01;
/** SUB flag: first replay the journal from the u64 journal sequence after the queue name, then live messages. */
export const SUB_FROM_SEQ = 0x02;
/** SUB flag: first replay the journal from the u64 time (µs since the epoch) after the queue name, then live messages. */
export const SUB_FROM_TIME = 0x04;

/** IMAGE byte 5. */
export const enum ImageKind {
  /** The image starts: count = subjects in it. From here on live messages count for the subscription. */
  BEGIN = 1,
  /** The image is complete: count = messages it delivered. */
  END = 2,
}

export const enum PayloadKind {
  RAW = 0,
  UTF8 = 1,
  MSGPACK = 2,
}

/** DIRECT byte 5: what the frame says, and so what its a, b and c mean. */
export const enum DirectKind {
  // broker -> client
  /** A subscription the client must send to the broker: a = interest seq, pattern. */
  REMOTE_ADD = 1,
  REMOTE_DEL = 2,
  /** A subscription of direct peer b that the client serves itself: a = interest seq, b = peer id, pattern. */
  PEER_ADD = 3,
  PEER_DEL = 4,
  /** Channel a to peer b is ready (its memory comes over the broadcast channel): c = the peer's pending limit in bytes. */
  OPEN = 5,
  /** Peer b serves this client directly from now on, through channel a: read it. */
  MARK = 6,
  /** Channel a (peer b) is finished: the peer is gone. */
  CLOSE = 7,
  /** No channel to peer b: keep sending its messages through the broker. */
  REFUSED = 8,
  // client -> broker
  /** Please open a channel to peer b. */
  WANT = 16,
  /** From this frame on, this client writes peer b's messages into channel a itself. */
  ACK = 17,
  /** The client has applied every interest change up to seq a. */
  IACK = 18,
  /** Channel a to peer b is over its pending limit: c bytes wait. */
  SLOW = 19,
}

/** The numbers ERR frames carry for the error names of runtime/errors.ts; clients branch on the names. */
export const ErrCode = {
  PROTOCOL: 1, // malformed or truncated frame, bad field
  UNKNOWN_OP: 2,
  FRAME_TOO_LARGE: 3,
  MAX_PAYLOAD: 4,
  BAD_SUBJECT: 5,
  MAX_SUBSCRIPTIONS: 6,
  SLOW_CONSUMER: 7,
  VERSION: 8, // protocol version not supported
  NOT_CONNECTED: 9, // frame before CONNECT
  STALE_CONNECTION: 10, // missed too many PONGs
  BAD_SID: 11,
  SHUTDOWN: 12,
  AUTH: 13,
  RATE_LIMITED: 14, // messages refused: over a publish rate limit
  BAD_OPTION: 15, // unknown or invalid CONNECT/SUB option
} as const satisfies Record<WireErrorName, number>;
/** The name of an ERR code, and so the `code` of the error it becomes (runtime/errors.ts). */
export type ErrCodeName = keyof typeof ErrCode;
export const ERR_NAMES: Record<number, ErrCodeName> = Object.fromEntries(Object.entries(ErrCode).map(([k, v]) => [v, k as ErrCodeName])) as Record<
  number,
  ErrCodeName
>;

/**
 * Slow-consumer policies, as carried in byte 6 of SUB. 0 = the broker's default.
 * Which one wins when several subscriptions of a connection match is the broker's
 * business (broker/policy.ts POLICY_RANK), not the wire's.
 */
export const enum Policy {
  DEFAULT = 0,
  DISCONNECT = 1,
  DROP_OLDEST = 2,
  DROP_NEWEST = 3,
  CONFLATE = 4,
  BLOCK = 5,
}
export const POLICY_NAMES = ['default', 'disconnect', 'drop-oldest', 'drop-newest', 'conflate', 'block'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];
