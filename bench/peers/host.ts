/**
 * What the peer benchmark asks of the machine: free loopback ports, where a binary
 * is, what a command prints, the version of an installed client library.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { distRoot } from '../procs.js';

/** A TCP port free on 127.0.0.1 right now (the OS picks it; the server binds it moments later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** True once something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** The absolute path of an executable on PATH (plus the sbin folders, where Debian puts mosquitto), or null. */
export function findBinary(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) {
    if (d === '') continue;
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

/** The first line a command prints on stdout or stderr (version probes print on either, and some exit non-zero). */
export function firstLine(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 5000 });
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  return (
    text
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim() ?? `(no output from ${command} ${args.join(' ')})`
  );
}

/** "<name> <version>" of a package installed in the project's node_modules. */
export function libVersion(name: string): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(distRoot, '..', 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
    return `${name} ${pkg.version}`;
  } catch {
    return `${name} (version unknown)`;
  }
}
