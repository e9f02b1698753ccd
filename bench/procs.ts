import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
export const distRoot = path.resolve(here, '..');

/** A child process started for a benchmark, with the line it printed when ready. */
export interface Proc {
  child: ChildProcess;
  ready: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Give the child a stdin pipe (child.stdin) to send it commands. */
  stdin?: boolean;
  /** Run through this command prefix, e.g. ['ip', 'netns', 'exec', 'ns1'] for another network namespace. */
  wrap?: string[];
}

/** Starts `node <script> ...args` and waits for a stdout line matching `ready`. */
export function startNode(script: string, args: string[], ready: RegExp, timeoutMs = 10_000, opts: StartOptions = {}): Promise<Proc> {
  return new Promise((resolve, reject) => {
    const argv = [process.execPath, path.join(distRoot, script), ...args];
    const cmd = opts.wrap && opts.wrap.length > 0 ? [...opts.wrap, ...argv] : argv;
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not print ${ready} within ${timeoutMs} ms; got: ${out}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code} before it was ready; output: ${out}`));
    });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = out.split('\n').find((l) => ready.test(l));
      if (m !== undefined) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({
          child,
          ready: m,
          stop: () =>
            new Promise<void>((res) => {
              if (child.exitCode !== null) return res();
              child.once('exit', () => res());
              child.kill('SIGTERM');
              setTimeout(() => child.kill('SIGKILL'), 3000).unref();
            }),
        });
      }
    });
  });
}
