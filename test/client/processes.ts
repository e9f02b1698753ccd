/**
 * Brokers in child processes (`hopbus broker` from dist/), for tests that kill one with
 * SIGKILL or freeze it with SIGSTOP and start another on the same port: what an
 * in-process broker cannot do to itself. Every child still running after a test is
 * killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { dist } from '../kit/index.js';

export interface BrokerProcess {
  proc: ChildProcess;
  url: string;
  port: number;
  /** The monitoring address (http://host:port) when the broker serves HTTP, else ''. */
  http: string;
  /** What the child printed so far (for failure messages). */
  output(): string;
  /** Sends `signal` and, for SIGKILL and SIGTERM, waits for the child to exit. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

const READY = /hopbus broker ready: (tcp:\/\/\S+)/;
const MONITORING = /monitoring: (http:\/\/[^/\s]+)/;

/** Starts brokers in child processes; each is killed after the test if still alive. */
export function useBrokerProcesses(): (options?: { port?: number; config?: Record<string, unknown> }) => Promise<BrokerProcess> {
  const procs: ChildProcess[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const p of procs.splice(0)) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      const gone = once(p, 'exit');
      p.kill('SIGKILL');
      await gone;
    }
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  return async ({ port = 0, config } = {}) => {
    const args = [dist('bin/hopbus.js'), 'broker', '--port', String(port), '--no-nats', '--log-level', 'warn'];
    if (config !== undefined) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-broker-'));
      dirs.push(dir);
      const file = path.join(dir, 'broker.json');
      fs.writeFileSync(file, JSON.stringify(config));
      args.push('--config', file);
    }
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(proc);
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      const check = () => {
        const m = READY.exec(out);
        const wantHttp = config !== undefined && config.httpPort !== undefined && config.httpPort !== null;
        if (m !== null && (!wantHttp || MONITORING.test(out))) {
          proc.stdout!.off('data', check);
          proc.stderr!.off('data', check);
          proc.off('exit', exited);
          resolve(m[1]!);
        }
      };
      const exited = (code: number | null) => reject(new Error(`broker exited (${code}) before it was ready:\n${out}`));
      // The start-up lines are on stderr, the JSON log on stdout: either may complete the picture.
      proc.stdout!.on('data', check);
      proc.stderr!.on('data', check);
      proc.once('exit', exited);
    });
    return {
      proc,
      url,
      port: Number(new URL(url).port),
      http: MONITORING.exec(out)?.[1] ?? '',
      output: () => out,
      async kill(signal) {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        const gone = signal === 'SIGKILL' || signal === 'SIGTERM' ? once(proc, 'exit') : null;
        proc.kill(signal);
        await gone;
      },
    };
  };
}
