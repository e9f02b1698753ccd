/**
 * deploy/: the systemd unit and the container image, checked here without a container
 * engine or a running systemd. The unit is verified by `systemd-analyze verify` (any
 * warning fails). The Dockerfile's build stage is run for real on a clean copy of the
 * repository (its COPY and RUN steps, in order: npm ci, build, prune to production
 * dependencies), then what the final stage keeps (package.json, node_modules, dist) is
 * started the way its ENTRYPOINT starts it, its HEALTHCHECK command is run against it,
 * and its STOPSIGNAL must end it with exit 0.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { describeNeeding } from '../kit/index.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const deploy = path.join(root, 'deploy');

function systemdProblem(): string | null {
  const r = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? null : 'systemd-analyze is not installed (Debian package systemd)';
}

describeNeeding('systemd', systemdProblem())('deploy/hopbus.service', () => {
  it('passes systemd-analyze verify with no warning, and starts the broker with a config file', async () => {
    const unit = path.join(deploy, 'hopbus.service');
    const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    expect(r.stderr + r.stdout).toBe('');
    expect(r.status).toBe(0);
    const text = fs.readFileSync(unit, 'utf8');
    expect(text).toMatch(/^ExecStart=\/usr\/bin\/node \/opt\/hopbus\/dist\/bin\/hopbus\.js broker --config \S+$/m);
    expect(text).toMatch(/^KillSignal=SIGTERM$/m);
    expect(text).toMatch(/^User=hopbus$/m);
  });
});

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function instructions(file: string): { op: string; args: string }[] {
  const joined = fs.readFileSync(file, 'utf8').replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\S+)\s+(.*)$/.exec(l)!;
      return { op: m[1]!.toUpperCase(), args: m[2]! };
    });
}

describe('deploy/Dockerfile', () => {
  const steps = instructions(path.join(deploy, 'Dockerfile'));
  const stages: { op: string; args: string }[][] = [];
  for (const s of steps) {
    if (s.op === 'FROM') stages.push([]);
    stages[stages.length - 1]!.push(s);
  }

  it('has a build stage and a slim, non-root final stage with a health check, a stop signal and the broker as entry point', () => {
    expect(stages).toHaveLength(2);
    expect(stages[0]![0]!.args).toMatch(/^node:20\S*slim AS build$/);
    const final = stages[1]!;
    expect(final[0]!.args).toMatch(/^node:20\S*slim$/);
    const ops = (op: string) => final.filter((s) => s.op === op).map((s) => s.args);
    expect(ops('USER')).toEqual(['node']);
    expect(ops('HEALTHCHECK')[0]).toMatch(/CMD \["node", "dist\/bin\/hopbus\.js", "ping"/);
    expect(ops('STOPSIGNAL')).toEqual(['SIGTERM']);
    expect(JSON.parse(ops('ENTRYPOINT')[0]!)).toEqual(['node', 'dist/bin/hopbus.js', 'broker']);
    expect(ops('EXPOSE')[0]!.split(/\s+/)).toEqual(['7400', '8222', '4222']);
  });

  it('builds: its build steps run on a clean copy, and what the image keeps starts, passes its health check and stops on SIGTERM', async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-image-'));
    try {
      // The build context: the tracked files (what .dockerignore leaves: no node_modules, no dist).
      const { stdout } = await run('git', ['ls-files', '-z'], { cwd: root, maxBuffer: 64 << 20 });
      const ignored = fs.readFileSync(path.join(root, '.dockerignore'), 'utf8').split('\n').filter(Boolean);
      const src = path.join(work, 'src');
      for (const f of stdout.split('\0').filter(Boolean)) {
        if (ignored.some((i) => f === i || f.startsWith(i + '/'))) continue;
        if (!fs.existsSync(path.join(root, f))) continue; // deleted in the working tree
        fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
        fs.copyFileSync(path.join(root, f), path.join(src, f));
      }
      // The build stage's RUN steps, as the Dockerfile says them (COPY has been done above).
      for (const s of stages[0]!.filter((x) => x.op === 'RUN')) {
        await run('sh', ['-c', s.args], { cwd: src, maxBuffer: 64 << 20, env: { ...process.env, npm_config_update_notifier: 'false' } });
      }
      // The final stage's COPY --from=build steps.
      const app = path.join(work, 'app');
      fs.mkdirSync(app);
      for (const s of stages[1]!.filter((x) => x.op === 'COPY')) {
        const m = /^--from=build \/src\/(\S+) \.\/(\S+)$/.exec(s.args);
        expect(m, s.args).not.toBeNull();
        fs.cpSync(path.join(src, m![1]!), path.join(app, m![2]!), { recursive: true });
      }
      expect(fs.existsSync(path.join(app, 'node_modules/typescript')), 'dev dependencies pruned').toBe(false);
      // ENTRYPOINT plus this run's arguments (free ports instead of CMD's fixed ones).
      const entry = JSON.parse(stages[1]!.find((x) => x.op === 'ENTRYPOINT')!.args) as string[];
      const broker = spawn(process.execPath, [...entry.slice(1), '--host', '127.0.0.1', '--port', '0', '--no-nats', '--log-level', 'warn'], {
        cwd: app,
        env: { ...process.env, NODE_ENV: 'production' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = new Promise<number | null>((resolve) => broker.once('close', (code) => resolve(code)));
      try {
        let out = '';
        const url = await new Promise<string>((resolve, reject) => {
          broker.stderr.setEncoding('utf8').on('data', (d: string) => {
            out += d;
            const m = /ready: (tcp:\/\/\S+)/.exec(out);
            if (m) resolve(m[1]!);
          });
          broker.once('close', (code) => reject(new Error(`the broker exited (${code}) before it was ready: ${out}`)));
        });
        const health = /CMD (\[.*\])/.exec(stages[1]!.find((x) => x.op === 'HEALTHCHECK')!.args)![1]!;
        const cmd = (JSON.parse(health) as string[]).map((a) => a.replace('tcp://127.0.0.1:7400', url));
        const check = await run(process.execPath, cmd.slice(1), { cwd: app });
        expect(check.stdout).toMatch(/^ok /);
      } finally {
        broker.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }, 300_000);
});
