/**
 * journal/crc32.ts: the checksum of every journal record, CRC-32 (IEEE 802.3, the
 * polynomial of zlib, gzip and PNG: reflected 0xEDB88320, initial and final XOR
 * 0xFFFFFFFF), so any tool can verify a record (`zlib.crc32`, Python's `zlib.crc32`).
 *
 * Two implementations of the same function, chosen by length:
 * - up to NATIVE_CRC_FROM bytes (market-data records: a header, a subject and tens to
 *   hundreds of bytes) slicing-by-8 in JavaScript, over the bytes in place: 8 bytes per
 *   step through 8 tables, no call into C++, nothing allocated;
 * - longer ranges by `zlib.crc32` (Node >= 20.15, hardware-assisted) over a subarray:
 *   the one small view it needs is negligible beside that many bytes.
 * Where `zlib.crc32` is missing (Node 20 before 20.15) JavaScript serves every length.
 */
import zlib from 'node:zlib';

// T[k * 256 + n]: the CRC of byte n followed by k zero bytes (slicing-by-8 tables).
const T = new Int32Array(8 * 256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  T[n] = c;
}
for (let n = 0; n < 256; n++) {
  for (let k = 1; k < 8; k++) {
    const prev = T[(k - 1) * 256 + n]!;
    T[k * 256 + n] = (prev >>> 8) ^ T[prev & 0xff]!;
  }
}

type NativeCrc = (data: Uint8Array, value?: number) => number;
const native: NativeCrc | null = typeof (zlib as { crc32?: unknown }).crc32 === 'function' ? (zlib as unknown as { crc32: NativeCrc }).crc32 : null;

/** Ranges at least this long go to zlib.crc32 when it exists. */
export const NATIVE_CRC_FROM = 4096;

/** The CRC-32 of buf[start, end) in JavaScript (slicing-by-8), with no allocation. */
export function crc32Loop(buf: Uint8Array, start: number, end: number): number {
  let c = -1;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)) ^ c;
    const b = buf[i + 4]! | (buf[i + 5]! << 8) | (buf[i + 6]! << 16) | (buf[i + 7]! << 24);
    c =
      T[1792 + (a & 0xff)]! ^
      T[1536 + ((a >>> 8) & 0xff)]! ^
      T[1280 + ((a >>> 16) & 0xff)]! ^
      T[1024 + (a >>> 24)]! ^
      T[768 + (b & 0xff)]! ^
      T[512 + ((b >>> 8) & 0xff)]! ^
      T[256 + ((b >>> 16) & 0xff)]! ^
      T[b >>> 24]!;
  }
  for (; i < end; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** CRC-32 of buf[start, end), as an unsigned 32-bit number. */
export function crc32(buf: Uint8Array, start: number, end: number): number {
  if (native !== null && end - start >= NATIVE_CRC_FROM) return native(buf.subarray(start, end)) >>> 0;
  return crc32Loop(buf, start, end);
}
