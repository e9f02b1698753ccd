import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';

const here = path.dirname(fileURLToPath(import.meta.url));
export const distRoot = path.resolve(here, '..');

/** A child process started for a benchmark, with the line it printed when ready. */
export interface Proc {
  child: ChildProcess;
  ready: string;
  stop(): Promise<void>;
}

/**
 * Every child a benchmark started and has not yet seen exit. stopAll() ends them on
 * the way out (normal end, failure, SIGINT), so a benchmark leaves no process behind.
 */
const live = new Set<Proc>();

/** Stops every child still running (SIGTERM, then SIGKILL after 3 s). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()));
}

// Last resort if the process exits without stopAll() (an uncaught error, process.exit):
// the 'exit' handler may only do synchronous work, and kill() is synchronous.
process.on('exit', () => {
  for (const p of live) p.child.kill('SIGKILL');
});

export interface StartOptions {
  /** Which of the child's streams to watch for the ready line (default stdout; stderr is passed through otherwise). */
  watch?: 'stdout' | 'both';
  timeoutMs?: number;
  /** Extra readiness check once the line is seen (or instead of it, with ready = null): polled until true. */
  probe?: () => Promise<boolean>;
  /** Give the child a stdin pipe (child.stdin) to send it commands. */
  stdin?: boolean;
}

/**
 * Starts `command ...args` and waits until it prints a line matching `ready` (if given)
 * and `probe` (if given) says it is up. The child is tracked until it exits.
 */
export function startProcess(command: string, args: string[], ready: RegExp | null, options: StartOptions = {}): Promise<Proc> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const both = options.watch === 'both';
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', both ? 'pipe' : 'inherit'] });
    let out = '';
    let line: string | null = ready === null ? '' : null;
    let settled = false;
    const proc: Proc = {
      child,
      ready: '',
      stop: () =>
        new Promise<void>((res) => {
          if (child.exitCode !== null || child.signalCode !== null) return res();
          child.once('exit', () => res());
          child.kill('SIGTERM');
          setTimeout(() => child.kill('SIGKILL'), 3000).unref();
        }),
    };
    live.add(proc);
    child.once('exit', () => live.delete(proc));
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void proc.stop();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`${command} was not ready within ${timeoutMs} ms; output: ${out}`)), timeoutMs);
    child.once('error', (err) => fail(new Error(`cannot start ${command}: ${err.message}`)));
    child.once('exit', (code, signal) => fail(new Error(`${command} exited (${signal ?? code}) before it was ready; output: ${out}`)));
    const ok = async () => {
      if (options.probe !== undefined) {
        while (!settled && !(await options.probe())) await new Promise((r) => setTimeout(r, 20));
      }
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      proc.ready = line ?? '';
      resolve(proc);
    };
    const onData = (d: Buffer) => {
      if (line !== null) return;
      out += d.toString();
      const m = out.split('\n').find((l) => ready!.test(l));
      if (m !== undefined) {
        line = m;
        void ok();
      }
    };
    child.stdout!.on('data', onData);
    if (both) child.stderr!.on('data', onData);
    if (line !== null) void ok();
  });
}

export interface NodeOptions {
  /** Give the child a stdin pipe (child.stdin) to send it commands. */
  stdin?: boolean;
  /** Run through this command prefix, e.g. ['ip', 'netns', 'exec', 'ns1'] for another network namespace. */
  wrap?: string[];
}

/**
 * Starts `node <script> ...args` (a path under dist/) and waits for a line matching
 * `ready` on its stdout or stderr (`hopbus broker` prints its start-up lines on stderr).
 * The node flags in HOPBUS_BENCH_NODE_FLAGS, if any, go before the script.
 */
export function startNode(script: string, args: string[], ready: RegExp, timeoutMs = 10_000, opts: NodeOptions = {}): Promise<Proc> {
  // HOPBUS_BENCH_NODE_FLAGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the children.
  const flags = (process.env.HOPBUS_BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
  const argv = [process.execPath, ...flags, path.join(distRoot, script), ...args];
  const cmd = opts.wrap && opts.wrap.length > 0 ? [...opts.wrap, ...argv] : argv;
  return startProcess(cmd[0]!, cmd.slice(1), ready, { timeoutMs, watch: 'both', ...(opts.stdin ? { stdin: true } : {}) });
}

/** Resolves on a worker thread's first message (its "ready"), rejects on its error. */
export function workerReady(w: Worker): Promise<void> {
  return new Promise((resolve, reject) => {
    w.once('message', () => resolve());
    w.once('error', reject);
  });
}

/** Asks a bench worker thread to close ('close'), and terminates it if it has not exited within 3 s. */
export async function stopWorker(w: Worker): Promise<void> {
  const exited = new Promise((r) => w.once('exit', r));
  w.postMessage('close');
  const t = setTimeout(() => void w.terminate(), 3000);
  await exited;
  clearTimeout(t);
}
