/**
 * A replay at full speed into a consumer that falls behind: with the `block` policy on
 * its subscription the broker stops reading the replaying connection while that consumer
 * is behind, the replay's own flow control (a flush past flushBytes) waits on it, and
 * nothing is lost however long the consumer stalls. The consumer is a real process,
 * frozen with SIGSTOP until the broker shows the replay paused on it.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { replay } from '../../client/index.js';
import { JournalWriter, recordSource } from '../../journal/index.js';
import { jsonLines, until, useChildProcesses, useWorld } from '../kit/index.js';

const w = useWorld();
const fixture = fileURLToPath(new URL('../broker/fixtures/slow-subscriber.mjs', import.meta.url));
const track = useChildProcesses();

describe('replay into a consumer that falls behind', () => {
  it('a consumer frozen mid-replay with the block policy: the replay waits while it is frozen, and every message arrives once it thaws', async () => {
    const N = 100_000;
    const dir = w.tmpdir();
    const jw = await JournalWriter.open({ dir, fsync: 'none' });
    const srcs = Array.from({ length: 8 }, (_, i) => recordSource(`md.S${i}`, Buffer.alloc(200, i)));
    for (let i = 0; i < N; i++) {
      expect(jw.append(srcs[i & 7]!, 1_000 * (i + 1))).toBe(true);
      if (i % 10_000 === 9_999) await jw.flush();
    }
    await jw.close();

    // 100,000 x ~230 B is about 23 MB: many times the consumer's 1 MiB bound and the sockets' buffers.
    const b = await w.broker({ maxPending: 1024 * 1024, writeDeadlineMs: 0 });
    const child = track(spawn(process.execPath, [fixture, b.url, 'md.>', '0', 'block'], { stdio: ['ignore', 'pipe', 'inherit'] }));
    const events = jsonLines(child.stdout!);
    await until(() => events.some((e) => e.event === 'ready'), 'the consumer to be ready');
    child.kill('SIGSTOP');

    const pub = await w.connect(b.url, { name: 'replayer' });
    let published = 0;
    const done = replay(dir, pub, { speed: 'max', onMessage: () => void published++ });
    // The broker has stopped reading the replaying connection: the frozen consumer holds it back.
    const replayer = () => b.broker.metrics().connections.find((c) => (c as { name?: string }).name === 'replayer') as { paused?: boolean } | undefined;
    await until(() => replayer()?.paused === true, 'the broker to pause the replaying connection');
    expect(published).toBeLessThan(N);

    child.kill('SIGCONT');
    const summary = await done;
    expect(summary.messages).toBe(N);
    const stats = async () => {
      for (;;) {
        const n = events.length;
        child.kill('SIGUSR2');
        await until(() => events.slice(n).some((e) => e.event === 'stats'), 'a stats report');
        const s = events.slice(n).find((e) => e.event === 'stats') as { received: number };
        if (s.received >= N) return s;
      }
    };
    expect((await stats()).received).toBe(N);
    expect(events.filter((e) => e.event === 'error' || e.event === 'disconnect')).toEqual([]);
  });
});
