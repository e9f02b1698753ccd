/**
 * `hopbus top` in a real terminal of 80 x 24 (tmux, from Debian): the screen holds every
 * column and label without clipping or wrapping, and `q` quits. Skips loudly without
 * tmux; .ci/run installs it and then requires it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { afterEach, expect, it } from 'vitest';
import { describeNeeding, dist, until, useWorld } from '../kit/index.js';
import { httpBase } from './http.js';

function tmuxProblem(): string | null {
  return spawnSync('tmux', ['-V'], { encoding: 'utf8' }).status === 0 ? null : 'tmux is not installed (Debian package tmux)';
}

const w = useWorld();
const session = `hopbus-top-${process.pid}`;
const tmux = (...args: string[]) => execFileSync('tmux', args, { encoding: 'utf8' });
const alive = () => spawnSync('tmux', ['has-session', '-t', session]).status === 0;

afterEach(() => {
  if (alive()) tmux('kill-session', '-t', session);
});

describeNeeding('tmux', tmuxProblem())('hopbus top at 80 x 24', () => {
  it('fits the screen, clips nothing, and quits on q', async () => {
    const b = await w.broker({ httpPort: 0, monitorIntervalMs: 200 });
    await w.connect(b.url, { name: 'desk-pricer-0007' });
    const cmd = `${process.execPath} ${dist('bin/hopbus.js')} top -u ${httpBase(b)} -i 200`;
    tmux('new-session', '-d', '-s', session, '-x', '80', '-y', '24', cmd);
    let screen = '';
    await until(() => {
      screen = tmux('capture-pane', '-p', '-t', session);
      return screen.includes('desk-pricer-0007') && screen.includes('handler (application)');
    }, 'a full frame on the screen');
    const lines = screen.split('\n');
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(80);
    // Nothing clipped: the last column of each table and line is there in full.
    for (const label of ['out/s', 'busiest 1 ms', 'slow ', 'p99.9', 'max', 'rtt us', 'end to end']) expect(screen).toContain(label);
    expect(screen).not.toMatch(/~$/m);
    tmux('send-keys', '-t', session, 'q');
    await until(() => !alive(), 'top to quit on q');
  });
});
