/**
 * hopbus context add|select|ls|rm|show: named broker addresses, so a user with several
 * brokers (dev, uat, prod) types a name instead of a URL (bin/cli/server.ts says where
 * they are kept and how they rank against --server and HOPBUS_URL).
 */
import { parseUrl } from '../../transports/url.js';
import { UsageError, parseCommand, str, type CommandSpec } from './args.js';
import { contextsPath, readContexts, writeContexts } from './server.js';

export const CONTEXT: CommandSpec = {
  usage: 'context add NAME --server URL [--description TEXT] [--select] | select NAME | ls | show [NAME] | rm NAME',
  about: `Saves broker addresses under names. Every client command takes --context NAME (or
HOPBUS_CONTEXT); without either, the selected context is used; --server and HOPBUS_URL
win over both. Kept in $XDG_CONFIG_HOME/hopbus/contexts.json (~/.config by default).`,
  flags: [
    { name: 'server', short: 's', kind: 'string', arg: 'URL', help: 'the broker address of the context (add)' },
    { name: 'description', kind: 'string', arg: 'TEXT', help: 'a note shown by ls (add)' },
    { name: 'select', kind: 'boolean', help: 'also select the context (add)' },
  ],
  positionals: [1, 2],
};

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export function runContext(args: string[]): void {
  const p = parseCommand(args, CONTEXT);
  if (p === null) return;
  const { values, positionals } = p;
  const [verb, name] = positionals as [string, string | undefined];
  const file = readContexts();
  const need = (): string => {
    if (name === undefined) throw new UsageError(`context ${verb} needs a NAME`);
    if (!NAME.test(name)) throw new UsageError(`a context name is 1 to 64 letters, digits, "_", "." or "-", got "${name}"`);
    return name;
  };
  const known = (n: string) => {
    if (file.contexts[n] === undefined) throw new UsageError(`no context "${n}" (hopbus context ls lists them)`);
  };
  switch (verb) {
    case 'add': {
      const n = need();
      const server = str(values, 'server');
      if (server === undefined) throw new UsageError('context add needs --server URL');
      parseUrl(server);
      const description = str(values, 'description');
      file.contexts[n] = { server, ...(description !== undefined ? { description } : {}) };
      if (values.select === true || file.selected === undefined) file.selected = n;
      writeContexts(file);
      console.log(`saved context "${n}": ${server}${file.selected === n ? ' (selected)' : ''}`);
      return;
    }
    case 'select': {
      const n = need();
      known(n);
      file.selected = n;
      writeContexts(file);
      console.log(`selected context "${n}": ${file.contexts[n]!.server}`);
      return;
    }
    case 'rm': {
      const n = need();
      known(n);
      delete file.contexts[n];
      if (file.selected === n) delete file.selected;
      writeContexts(file);
      console.log(`removed context "${n}"`);
      return;
    }
    case 'ls': {
      const names = Object.keys(file.contexts).sort();
      if (names.length === 0) console.log(`no contexts (${contextsPath()})`);
      for (const n of names) {
        const c = file.contexts[n]!;
        console.log(`${n === file.selected ? '*' : ' '} ${n.padEnd(16)} ${c.server}${c.description ? `  ${c.description}` : ''}`);
      }
      return;
    }
    case 'show': {
      const n = name ?? file.selected;
      if (n === undefined) throw new UsageError('no context is selected');
      known(n);
      console.log(JSON.stringify({ name: n, selected: n === file.selected, ...file.contexts[n] }, null, 2));
      return;
    }
    default:
      throw new UsageError(`unknown context command "${verb}": add, select, ls, show or rm`);
  }
}
