/**
 * hopbus passwd: reads a password from standard input and prints its scrypt hash, the
 * form the broker's `users[].password` (and `tokens`) take without keeping the secret
 * itself in the config file (docs/SECURITY.md has the format).
 */
import { hashPassword, SCRYPT_DEFAULTS } from '../../broker/auth/index.js';
import { UsageError, int, parseCommand, type CommandSpec } from './args.js';

export const PASSWD: CommandSpec = {
  usage: 'passwd [options] < password',
  about: `Reads a password from standard input (one line; the line break is not part of it) and
prints its hash, $scrypt$N=..,r=..,p=..$SALT$KEY, for a user's "password" (or a token) in the
broker's --config file. The password is never an argument, so it stays out of the shell's
history and the process list.`,
  flags: [{ name: 'cost', kind: 'string', arg: 'LOG2N', default: String(Math.log2(SCRYPT_DEFAULTS.N)), help: 'scrypt cost: N = 2^LOG2N (10 to 20)' }],
  positionals: [0, 0],
  footer: `Example:
  printf '%s' "$PASSWORD" | hopbus passwd
  read -rs PW && printf '%s\\n' "$PW" | hopbus passwd`,
};

export async function runPasswd(args: string[], input: NodeJS.ReadableStream = process.stdin): Promise<void> {
  const p = parseCommand(args, PASSWD);
  if (p === null) return;
  const cost = int(p.values, 'cost', 10)!;
  if (cost > 20) throw new UsageError('--cost must be at most 20 (N = 2^20 takes a GiB of memory per check)');
  const chunks: Buffer[] = [];
  for await (const c of input) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  const password = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (password === '') throw new UsageError('no password on standard input');
  console.log(hashPassword(password, { N: 2 ** cost, r: SCRYPT_DEFAULTS.r, p: SCRYPT_DEFAULTS.p }));
}
