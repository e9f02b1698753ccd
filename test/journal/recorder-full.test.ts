/**
 * A broker recording onto a real full disk (a 1 MiB tmpfs mounted for the test; root
 * only, skipped loudly without it): the broker goes on routing every message, the
 * journal's I/O errors and the messages it could not record are counted in /varz and
 * /metrics, and logged once per event, not once per message.
 */
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { startBroker } from '../../broker/index.js';
import { varz } from '../../broker/endpoints.js';
import { prometheus } from '../../broker/prometheus.js';
import { connectBroker } from '../../client/index.js';
import { describeNeeding } from '../kit/guards.js';
import { until } from '../kit/wait.js';
import { useTinyTmpfs } from './helpers.js';

const { mnt, problem } = useTinyTmpfs('hopbus-recorder-tmpfs-');

describeNeeding('tmpfs', problem)('a broker recording onto a full filesystem', () => {
  it('routes on, counts the I/O errors and the messages not recorded, and logs each event once', async () => {
    const lines: Array<{ msg: string; err?: string; count?: number }> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as (typeof lines)[number]);
        done();
      },
    });
    const log = pino({ level: 'info' }, sink);
    const b = await startBroker({ port: 0, journal: { dir: path.join(mnt, 'j'), subjects: ['md.>'], fsync: 'none' } }, log);
    const bus = await connectBroker(b.url, { reconnect: false });
    try {
      let got = 0;
      bus.subscribe('md.>', () => void got++);
      await bus.flush();
      const body = new Uint8Array(1024).fill(7);
      const n = 3000; // 3 MiB into 1 MiB
      for (let i = 0; i < n; i++) {
        bus.publish(`md.S${i % 3}`, body);
        if (i % 256 === 255) await bus.flush();
      }
      await bus.flush();
      await until(() => got === n, `all ${n} messages routed (have ${got})`);
      await until(() => {
        const j = varz(b.broker).journal!;
        return j.ioErrors > 0 && j.pendingBytes === 0;
      }, 'the journal to have failed a write and settled');
      const j = varz(b.broker).journal!;
      expect(j.matched).toBe(n);
      expect(j.droppedIo).toBeGreaterThan(0);
      expect(j.dropped).toBeGreaterThanOrEqual(j.droppedIo);
      const text = prometheus(b.broker);
      expect(text).toMatch(new RegExp(`^hopbus_journal_io_errors_total ${j.ioErrors}$`, 'm'));
      expect(text).toMatch(new RegExp(`^hopbus_journal_records_dropped_total\\{reason="io"\\} ${j.droppedIo}$`, 'm'));
      const failed = lines.filter((l) => l.msg === 'journal: file operation failed');
      expect(failed.length).toBeGreaterThan(0);
      expect(failed[0]!.err).toMatch(/ENOSPC|no space/i);
      // Once per event, not per message.
      const journalLines = lines.filter((l) => l.msg.startsWith('journal: '));
      expect(journalLines.length).toBeLessThan(j.dropped);
    } finally {
      await bus.close();
      await b.close();
    }
  }, 30_000);
});
