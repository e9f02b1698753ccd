/**
 * bin/cli/args.ts: how every command declares its arguments, once. A command is a table
 * of flags (name, short letter, kind, default, one line of help) and positionals; from
 * it come the parser (node:util parseArgs, strict: an unknown flag is an error), the
 * defaults, the environment variables a flag may come from (a flag wins over its
 * variable, the variable over the default), and the --help text, which therefore lists
 * every flag with its default and its variable.
 */
import { parseArgs } from 'node:util';
import { HopbusError } from '../../runtime/errors.js';
import { VERSION } from '../../transports/protocol/index.js';

/** What the user typed is wrong: the message says what and the command's usage follows. Exit 2. */
export class UsageError extends HopbusError {
  constructor(message: string) {
    super('BAD_OPTIONS', message);
  }
}

export interface Flag {
  /** Long name, without the dashes. */
  name: string;
  short?: string;
  /** `string`: takes a value (named by `arg` in the help); `boolean`: a switch; `list`: a value, repeatable. */
  kind: 'string' | 'boolean' | 'list';
  arg?: string;
  /** Shown in the help as "(default ...)"; applied when the flag is absent. */
  default?: string;
  /** Where the default comes from when it is not a constant (e.g. "$HOPBUS_URL, the context, or tcp://127.0.0.1:7400"). */
  defaultText?: string;
  /** An environment variable that gives the value when the flag is absent (a flag wins over it). */
  env?: string;
  help: string;
}

export interface CommandSpec {
  /** e.g. "pub SUBJECT [DATA]" */
  usage: string;
  /** A paragraph under the usage line. */
  about: string;
  flags: Flag[];
  /** Smallest and largest number of positionals. */
  positionals: [number, number];
  /** What is missing when there are too few, e.g. "pub needs a SUBJECT". */
  needs?: string;
  /** Lines after the options (examples). */
  footer?: string;
}

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Parsed {
  values: Values;
  positionals: string[];
  /** Where each value came from: the command line, its environment variable, or the table's default. */
  sources: Record<string, 'flag' | 'env' | 'default'>;
}

const HELP_FLAG: Flag = { name: 'help', short: 'h', kind: 'boolean', help: 'show this help' };
const VERSION_FLAG: Flag = { name: 'version', short: 'V', kind: 'boolean', help: 'print the version of hopbus' };

export function helpText(spec: CommandSpec): string {
  const flags = [...spec.flags, VERSION_FLAG, HELP_FLAG];
  const left = flags.map((f) => `${f.short ? `-${f.short}, ` : '    '}--${f.name}${f.kind === 'boolean' ? '' : ` ${f.arg ?? 'VALUE'}`}`);
  const width = Math.max(...left.map((l) => l.length)) + 2;
  const lines = flags.map((f, i) => {
    const def = f.defaultText ?? f.default;
    const env = f.env ? ` [${f.env}]` : '';
    return `  ${left[i]!.padEnd(width)}${f.help}${def !== undefined ? ` (default ${def})` : ''}${f.kind === 'list' ? ' (repeatable)' : ''}${env}`;
  });
  return `Usage: hopbus ${spec.usage}\n\n${spec.about}\n\nOptions:\n${lines.join('\n')}${spec.footer ? `\n\n${spec.footer}` : ''}`;
}

/**
 * Parses `args` for `spec`. Returns null when the user asked for --help or --version
 * (printed here); throws UsageError for anything the table does not allow.
 */
export function parseCommand(args: string[], spec: CommandSpec): Parsed | null {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const f of [...spec.flags, VERSION_FLAG, HELP_FLAG]) {
    options[f.name] = {
      type: f.kind === 'boolean' ? 'boolean' : 'string',
      ...(f.short ? { short: f.short } : {}),
      ...(f.kind === 'list' ? { multiple: true } : {}),
    };
  }
  let parsed: Parsed;
  try {
    parsed = { ...(parseArgs({ args, options, allowPositionals: true, strict: true }) as { values: Values; positionals: string[] }), sources: {} };
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${helpText(spec)}`);
  }
  if (parsed.values.help) {
    console.log(helpText(spec));
    return null;
  }
  if (parsed.values.version) {
    console.log(`hopbus ${VERSION}`);
    return null;
  }
  const [min, max] = spec.positionals;
  if (parsed.positionals.length < min || parsed.positionals.length > max) {
    const what = parsed.positionals.length < min ? (spec.needs ?? 'missing arguments') : `unexpected argument "${parsed.positionals[max]}"`;
    throw new UsageError(`${what}\n\n${helpText(spec)}`);
  }
  for (const f of spec.flags) {
    if (parsed.values[f.name] !== undefined) {
      parsed.sources[f.name] = 'flag';
      continue;
    }
    const fromEnv = f.env !== undefined ? process.env[f.env] : undefined;
    if (fromEnv !== undefined && fromEnv !== '') {
      if (f.kind === 'boolean') {
        if (!/^(1|true|yes|0|false|no)$/i.test(fromEnv)) throw new UsageError(`${f.env} must be true or false, got "${fromEnv}"`);
        parsed.values[f.name] = /^(1|true|yes)$/i.test(fromEnv);
      } else parsed.values[f.name] = f.kind === 'list' ? fromEnv.split(',') : fromEnv;
      parsed.sources[f.name] = 'env';
    } else if (f.default !== undefined) {
      parsed.values[f.name] = f.default;
      parsed.sources[f.name] = 'default';
    }
  }
  return parsed;
}

/** An integer flag value, at least `min`; undefined when absent. */
export function int(values: Values, name: string, min = 0): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isSafeInteger(n) || n < min)
    throw new UsageError(`--${name} must be an integer >= ${min}, got "${String(v)}"`);
  return n;
}

export function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function list(values: Values, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v : [];
}
