/**
 * journal/crc32.ts: the checksum of every journal record, CRC-32 (IEEE 802.3, the
 * polynomial of zlib, gzip and PNG: reflected 0xEDB88320, initial and final XOR
 * 0xFFFFFFFF), so any tool can verify a record (`zlib.crc32`, Python's `zlib.crc32`).
 *
 * Two implementations of the same function, chosen by length:
 * - short ranges (most market-data records: a header, a subject and tens of bytes) by a
 *   table-driven loop over the bytes in place: no call into C++, no view to allocate;
 * - long ranges by `zlib.crc32` (Node >= 20.15, hardware-assisted in zlib) over a
 *   subarray; the view it needs costs less than the loop would on that many bytes.
 * Where `zlib.crc32` is missing (Node 20 before 20.15) the loop serves every length.
 */
import zlib from 'node:zlib';

const TABLE = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  TABLE[n] = c;
}

type NativeCrc = (data: Uint8Array, value?: number) => number;
const native: NativeCrc | null = typeof (zlib as { crc32?: unknown }).crc32 === 'function' ? (zlib as unknown as { crc32: NativeCrc }).crc32 : null;

/** Ranges at least this long go to zlib.crc32 when it exists. */
export const NATIVE_CRC_FROM = 256;

/** The table-driven CRC-32 of buf[start, end), with no allocation. */
export function crc32Loop(buf: Uint8Array, start: number, end: number): number {
  let c = -1;
  for (let i = start; i < end; i++) c = TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** CRC-32 of buf[start, end), as an unsigned 32-bit number. */
export function crc32(buf: Uint8Array, start: number, end: number): number {
  if (native !== null && end - start >= NATIVE_CRC_FROM) return native(buf.subarray(start, end)) >>> 0;
  return crc32Loop(buf, start, end);
}
