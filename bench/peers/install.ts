/**
 * Installs the peer servers the bench needs and does not find, with Debian's
 * apt-get, and says plainly what it did. It never starts them as services: the
 * bench runs its own copies on free loopback ports (on a machine with systemd, Debian
 * may start the packages' own services after installing; the bench does not use them).
 */
import { spawnSync } from 'node:child_process';

export interface InstallReport {
  /** Packages the selected systems need. */
  wanted: string[];
  /** Already installed before the bench ran. */
  present: string[];
  /** Installed by this run. */
  installed: string[];
  /** Package -> why it is not installed. */
  failed: Record<string, string>;
  /** The commands run, in order. */
  commands: string[];
}

function isInstalled(pkg: string): boolean | null {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  if (r.error !== undefined) return null; // no dpkg: not a Debian-like system
  return r.status === 0 && r.stdout.includes('install ok installed');
}

function aptGet(args: string[], report: InstallReport): { ok: boolean; output: string } {
  report.commands.push(`apt-get ${args.join(' ')}`);
  console.log(`peers: running apt-get ${args.join(' ')}`);
  const r = spawnSync('apt-get', args, { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 600_000 });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`;
  return { ok: r.status === 0, output };
}

const lastLines = (s: string, n: number) => s.trim().split('\n').slice(-n).join(' | ');

/**
 * Makes sure `packages` are installed. With `allowInstall` false it only looks.
 * Runs `apt-get update` once and retries if apt-get cannot find a package.
 */
export function ensurePackages(packages: string[], allowInstall: boolean): InstallReport {
  const report: InstallReport = { wanted: [...packages], present: [], installed: [], failed: {}, commands: [] };
  const missing: string[] = [];
  for (const p of packages) {
    const st = isInstalled(p);
    if (st === null) report.failed[p] = 'dpkg-query not found: not a Debian-like system; install it by hand';
    else if (st) report.present.push(p);
    else missing.push(p);
  }
  if (report.present.length) console.log(`peers: already installed: ${report.present.join(', ')}`);
  if (missing.length === 0) return report;
  if (!allowInstall) {
    for (const p of missing) report.failed[p] = 'not installed, and --no-install was given';
    return report;
  }
  if (process.getuid?.() !== 0) {
    for (const p of missing) report.failed[p] = `not installed, and apt-get needs root: run "sudo apt-get install -y ${missing.join(' ')}" first`;
    return report;
  }
  let r = aptGet(['install', '-y', '--no-install-recommends', ...missing], report);
  if (!r.ok && /Unable to locate package|has no installation candidate|Failed to fetch|404/.test(r.output)) {
    const u = aptGet(['update'], report);
    if (!u.ok) console.log(`peers: apt-get update failed: ${lastLines(u.output, 3)}`);
    r = aptGet(['install', '-y', '--no-install-recommends', ...missing], report);
  }
  if (!r.ok && missing.length > 1) {
    // One package that cannot be had must not keep the others out: try each alone.
    for (const p of missing) aptGet(['install', '-y', '--no-install-recommends', p], report);
  }
  for (const p of missing) {
    if (isInstalled(p)) report.installed.push(p);
    else report.failed[p] = `apt-get install failed: ${lastLines(r.output, 3)}`;
  }
  console.log(
    `peers: installed now: ${report.installed.join(', ') || 'none'}${Object.keys(report.failed).length ? `; not installed: ${Object.keys(report.failed).join(', ')}` : ''}`,
  );
  return report;
}
