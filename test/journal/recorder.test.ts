/**
 * Recording in the broker (option `journal`, broker/recorder.ts): the messages published
 * on the recorded subjects reach the journal as they arrived (subject, reply, headers,
 * payload kind and bytes), in order and gap-free, with the broker's receive time; other
 * subjects do not; the figures are in /varz and /metrics; the option is validated like
 * every other one; closing the broker writes what was recorded and releases the journal.
 */
import { unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ConfigError, startBroker } from '../../broker/index.js';
import { prometheus } from '../../broker/prometheus.js';
import { varz } from '../../broker/endpoints.js';
import { connectBroker } from '../../client/index.js';
import { openJournal, JournalError } from '../../journal/index.js';
import { monoNs } from '../../runtime/clock.js';
import { tmpDir } from './helpers.js';

interface Rec {
  seq: number;
  timeNs: number;
  subject: string;
  reply: string;
  kind: number;
  headers: unknown;
  payload: Buffer;
}

function readAll(dir: string): Rec[] {
  const out: Rec[] = [];
  openJournal(dir).forEach({}, (r) => {
    out.push({
      seq: r.seq,
      timeNs: r.timeNs,
      subject: r.subject(),
      reply: r.reply(),
      kind: r.kind,
      headers: r.headersLen > 0 ? unpack(r.headers()) : undefined,
      payload: Buffer.from(r.payload()),
    });
  });
  return out;
}

describe('broker option journal: recording published messages', () => {
  it('records the matching subjects as published, in order, gap-free, with the receive time; the rest not', async () => {
    const dir = tmpDir();
    const before = monoNs();
    const b = await startBroker({ port: 0, logLevel: 'silent', journal: { dir, subjects: ['md.>', 'fx.*.EURUSD'], fsync: 'none' } });
    const bus = await connectBroker(b.url, { reconnect: false });
    try {
      bus.publish('md.AAPL', 'text one');
      bus.publish('other.x', 'not recorded');
      bus.publish('md.MSFT.bid', Uint8Array.of(1, 2, 3), { reply: '_INBOX.r1', headers: { src: 'desk1', n: '7' } });
      bus.publish('fx.spot.EURUSD', { px: 1.0712, qty: 3 });
      bus.publish('fx.spot.USDJPY', 'not recorded');
      for (let i = 0; i < 500; i++) bus.publish(`md.S${i % 7}`, `m${i}`);
      await bus.flush();
      const v = varz(b.broker);
      expect(v.journal).not.toBeNull();
      expect(v.journal!.matched).toBe(503);
      expect(v.journal!.appended).toBe(503);
      expect(v.journal!.dropped).toBe(0);
      expect(v.journal!.subjects).toEqual(['md.>', 'fx.*.EURUSD']);
      const text = prometheus(b.broker);
      expect(text).toMatch(/^hopbus_journal_records_appended_total 503$/m);
      expect(text).toMatch(/^hopbus_journal_records_dropped_total\{reason="full"\} 0$/m);
      expect(text).toMatch(/^hopbus_journal_io_errors_total 0$/m);
    } finally {
      await bus.close();
      await b.close();
    }
    const after = monoNs();
    const recs = readAll(dir);
    expect(recs.map((r) => r.seq)).toEqual(Array.from({ length: 503 }, (_, i) => i + 1));
    expect(recs[0]).toMatchObject({ subject: 'md.AAPL', kind: 1, reply: '', headers: undefined });
    expect(recs[0]!.payload.toString()).toBe('text one');
    expect(recs[1]).toMatchObject({ subject: 'md.MSFT.bid', kind: 0, reply: '_INBOX.r1', headers: { src: 'desk1', n: '7' } });
    expect([...recs[1]!.payload]).toEqual([1, 2, 3]);
    expect(recs[2]).toMatchObject({ subject: 'fx.spot.EURUSD', kind: 2 });
    expect(unpack(recs[2]!.payload)).toEqual({ px: 1.0712, qty: 3 });
    expect(recs.slice(3).map((r) => r.payload.toString())).toEqual(Array.from({ length: 500 }, (_, i) => `m${i}`));
    // Receive times: the broker's monotonic clock, never decreasing, within the run.
    for (let i = 1; i < recs.length; i++) expect(recs[i]!.timeNs).toBeGreaterThanOrEqual(recs[i - 1]!.timeNs);
    expect(recs[0]!.timeNs).toBeGreaterThanOrEqual(before);
    expect(recs.at(-1)!.timeNs).toBeLessThanOrEqual(after);
  });

  it('goes on after the last seq when the broker starts again on the same directory; a second broker on it is refused', async () => {
    const dir = tmpDir();
    const opts = { port: 0, logLevel: 'silent', journal: { dir, subjects: ['md.>'] } };
    for (let round = 0; round < 2; round++) {
      const b = await startBroker(opts);
      await expect(startBroker(opts)).rejects.toBeInstanceOf(JournalError);
      const bus = await connectBroker(b.url, { reconnect: false });
      for (let i = 0; i < 10; i++) bus.publish('md.x', `r${round}-${i}`);
      await bus.flush();
      await bus.close();
      await b.close();
    }
    const recs = readAll(dir);
    expect(recs.map((r) => r.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(recs.map((r) => r.payload.toString())).toEqual([0, 1].flatMap((r) => Array.from({ length: 10 }, (_, i) => `r${r}-${i}`)));
  });

  it('without the option there is no journal section and no journal metric', async () => {
    const b = await startBroker({ port: 0, logLevel: 'silent' });
    try {
      expect(varz(b.broker).journal).toBeNull();
      expect(prometheus(b.broker)).not.toContain('hopbus_journal_');
    } finally {
      await b.close();
    }
  });

  it('refuses a journal option that cannot be used, naming what is wrong', async () => {
    const bad: Array<[unknown, RegExp]> = [
      ['/tmp/x', /"journal" must be an object/],
      [{ dir: '/tmp/x', subjects: ['md.>'], fsync: 'sometimes' }, /"journal.fsync" must be one of none, interval, always/],
      [{ dir: '/tmp/x', subjects: ['md.>'], size: 1 }, /"journal" has an unknown key "size"/],
      [{ dir: '', subjects: ['md.>'] }, /"journal.dir" must be a non-empty string/],
      [{ dir: '/tmp/x', subjects: [] }, /"journal.subjects" must be a non-empty array/],
      [{ dir: '/tmp/x', subjects: ['md..x'] }, /valid subject patterns, got "md..x"/],
      [{ dir: '/tmp/x', subjects: ['md.>'], maxBytes: 0 }, /"journal.maxBytes" must be a positive integer/],
    ];
    for (const [journal, re] of bad) {
      const err = await startBroker({ port: 0, logLevel: 'silent', journal } as never).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(re);
    }
  });
});
