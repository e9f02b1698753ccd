import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RECORD_HEADER, RecordView, encodeRecord, recordSize, recordSource, crc32 } from '../../journal/index.js';
import { Check, checkRecord } from '../../journal/record.js';
import { NATIVE_CRC_FROM, crc32Loop } from '../../journal/crc32.js';
import { INDEX_ENTRY, SEGMENT_HEADER } from '../../journal/segment.js';

describe('the record checksum (CRC-32, IEEE)', () => {
  it('is the CRC-32 of zlib, on both paths (the byte loop for short ranges, zlib.crc32 for long ones)', () => {
    const data = Buffer.from('123456789');
    expect(crc32(data, 0, data.length)).toBe(0xcbf43926); // the standard check value
    expect(crc32Loop(data, 0, data.length)).toBe(0xcbf43926);
    // Both sides of the switch to zlib.crc32, and every tail length of the 8-byte steps.
    const big = Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 31 + 7) & 0xff));
    const native = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
    for (const n of [0, 1, 7, 8, 9, 15, 16, 17, NATIVE_CRC_FROM - 1, NATIVE_CRC_FROM, NATIVE_CRC_FROM + 1, 20_000]) {
      const want = native ? native(big.subarray(0, n)) >>> 0 : crc32Loop(big, 0, n);
      expect(crc32(big, 0, n)).toBe(want);
      expect(crc32Loop(big, 0, n)).toBe(want);
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 9000 }), fc.nat(20), (bytes, cut) => {
        const b = Buffer.from(bytes);
        const start = Math.min(cut, b.length);
        const want = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32?.(b.subarray(start)) ?? crc32Loop(b, start, b.length);
        expect(crc32Loop(b, start, b.length)).toBe(want >>> 0);
        expect(crc32(b, start, b.length)).toBe(want >>> 0);
      }),
    );
  });
});

const part = (max: number) => fc.uint8Array({ maxLength: max });
const subjectArb = fc.stringMatching(/^[a-zA-Z0-9_]{1,12}(\.[a-zA-Z0-9_]{1,12}){0,4}$/);

describe('a record', () => {
  it('decodes to exactly what was encoded, at any offset of a shared buffer (property)', () => {
    const buf = Buffer.alloc(1 << 16);
    const view = new RecordView();
    fc.assert(
      fc.property(
        subjectArb,
        fc.option(subjectArb, { nil: undefined }),
        part(300),
        part(3000),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 255 }),
        fc.maxSafeNat(),
        fc.maxSafeNat(),
        fc.nat(1000),
        (subject, reply, headers, payload, kind, flags, seq, timeNs, off) => {
          const src = recordSource(subject, payload, { reply, headers, kind, flags });
          const len = encodeRecord(buf, off, seq, timeNs, src);
          expect(len).toBe(recordSize(src));
          expect(checkRecord(buf, off, len)).toBe(Check.OK);
          const v = view.parse(buf, off);
          expect(v.len).toBe(len);
          expect(v.seq).toBe(seq);
          expect(v.timeNs).toBe(timeNs);
          expect(v.kind).toBe(kind);
          expect(v.flags).toBe(flags & ~0x01); // FLAG_TS is not recorded: the record has its own time
          expect(v.subject()).toBe(subject);
          expect(v.reply()).toBe(reply ?? '');
          expect([...v.headers()]).toEqual([...headers]);
          expect([...v.payload()]).toEqual([...payload]);
        },
      ),
    );
  });

  it('is refused when any one byte after the length changes, or when it is cut short (property)', () => {
    const buf = Buffer.alloc(8192);
    fc.assert(
      fc.property(subjectArb, part(500), fc.nat(), fc.integer({ min: 1, max: 255 }), (subject, payload, where, xor) => {
        const len = encodeRecord(buf, 0, 7, 1e15, recordSource(subject, payload));
        const at = 4 + (where % (len - 4));
        buf[at]! ^= xor;
        expect(checkRecord(buf, 0, len)).not.toBe(Check.OK);
        buf[at]! ^= xor;
        expect(checkRecord(buf, 0, len)).toBe(Check.OK);
        expect(checkRecord(buf, 0, len - 1 - (where % (len - 1)))).toBe(Check.SHORT);
      }),
    );
  });

  it('has its fields where the layout drawn in journal/record.ts says', () => {
    const buf = Buffer.alloc(256);
    const len = encodeRecord(
      buf,
      0,
      0x0102030405,
      0x0a0b0c0d0e0f,
      recordSource('a.b', 'xyz', { reply: 'r', headers: Uint8Array.of(0x80), kind: 1, flags: 0x03 }),
    );
    expect(len).toBe(RECORD_HEADER + 3 + 1 + 1 + 3);
    expect(buf.readUInt32LE(0)).toBe(len);
    expect(buf.readUInt32LE(4)).toBe(crc32Loop(buf, 8, len));
    expect(buf.readUInt32LE(8)).toBe(0x02030405);
    expect(buf.readUInt32LE(12)).toBe(0x01);
    expect(buf.readUInt32LE(16)).toBe(0x0c0d0e0f);
    expect(buf.readUInt32LE(20)).toBe(0x0a0b);
    expect(buf.readUInt32LE(24)).toBe(1); // headers length
    expect(buf.readUInt16LE(28)).toBe(3); // subject length
    expect(buf.readUInt16LE(30)).toBe(1); // reply length
    expect(buf[32]).toBe(1); // kind
    expect(buf[33]).toBe(0x02); // flags without FLAG_TS
    expect(buf.readUInt16LE(34)).toBe(0);
    expect(buf.toString('latin1', 36, len)).toBe('a.br\x80xyz');
  });
});

describe('docs/JOURNAL.md', () => {
  it('draws the same offsets as the code: the segment header, the record and the index entry', () => {
    const doc = fs.readFileSync(path.join(import.meta.dirname, '../../docs/JOURNAL.md'), 'utf8');
    // The offset column of the table under each heading.
    const offsets = (heading: string): number[] => {
      const section = doc.slice(doc.indexOf(`### ${heading}`));
      const table = section.slice(section.indexOf('| offset'));
      const rows = table.slice(0, table.indexOf('\n\n')).split('\n').slice(2);
      return rows.map((r) => Number(r.split('|')[1]!.trim()));
    };
    expect(offsets('Segment file')).toEqual([0, 4, 6, 8, 16, 24, 32, 36]);
    expect(offsets('Record')).toEqual([0, 4, 8, 16, 24, 28, 30, 32, 33, 34, RECORD_HEADER]);
    expect(SEGMENT_HEADER).toBe(40);
    expect(INDEX_ENTRY).toBe(24);
    expect(doc).toContain('| seq (u64)       | time ns (u64)   | offset | crc32  |');
  });
});
