#!/usr/bin/env node
/**
 * The hopbus command line: broker | pub | sub | req | reply | last | bench | ping | context | passwd | top | replay.
 * Each has --help (listing every flag with its default) and --version; the client
 * commands live in bin/cli/, one file each. Bad arguments print a usage error and exit
 * 2, never a stack trace.
 */
import { ConfigError } from '../broker/index.js';
import { OptionsError, SubjectError, UrlError } from '../client/index.js';
import { VERSION } from '../transports/protocol/index.js';
import { UsageError } from './cli/args.js';
import { runBench } from './cli/bench.js';
import { runBroker } from './cli/broker.js';
import { runContext } from './cli/context.js';
import { runPasswd } from './cli/passwd.js';
import { runPing } from './cli/ping.js';
import { runPub } from './cli/pub.js';
import { runReply, runReq } from './cli/req.js';
import { runReplay } from './cli/replay.js';
import { runLast } from './cli/last.js';
import { runSub } from './cli/sub.js';
import { runTopCommand } from './cli/top.js';

const MAIN_HELP = `hopbus: a low-latency publish/subscribe message bus

Usage: hopbus <command> [options]

Commands:
  broker                  run a broker (default 127.0.0.1:7400)
  pub SUBJECT [DATA]      publish messages (DATA or standard input; headers, templates)
  sub PATTERN             subscribe and print messages (text, --json or --raw)
  req SUBJECT [DATA]      send a request and print the reply
  last SUBJECT            print the newest cached value of a subject (broker option cache)
  reply SUBJECT [DATA]    answer requests (an echo by default)
  bench pub|sub|reqrep    load a broker and measure rates and latency
  ping                    check that a broker answers (exit 0) or say why not (exit 1)
  server check            the same as ping
  context                 saved broker addresses (add, select, ls, show, rm)
  passwd                  hash a password from standard input for the broker's config
  top                     live rates, latency and connections of a broker (its HTTP port)
  replay --dir DIR        publish the messages of a journal again (broker --journal DIR)

Every client command finds its broker in --server, then HOPBUS_URL, then the context
(--context, HOPBUS_CONTEXT or the selected one), then tcp://127.0.0.1:7400.
Run "hopbus <command> --help" for a command's options; "hopbus --version" for the version.`;

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'broker':
      return runBroker(rest);
    case 'pub':
      return runPub(rest);
    case 'sub':
      return runSub(rest);
    case 'req':
      return runReq(rest);
    case 'reply':
      return runReply(rest);
    case 'bench':
      return runBench(rest);
    case 'ping':
      return runPing(rest);
    case 'server':
      if (rest[0] === 'check') return runPing(rest.slice(1));
      throw new UsageError(`unknown command "server ${rest[0] ?? ''}": did you mean "server check"?\n\n${MAIN_HELP}`);
    case 'context':
      return runContext(rest);
    case 'passwd':
      return runPasswd(rest);
    case 'top':
      return runTopCommand(rest);
    case 'replay':
      return runReplay(rest);
    case 'last':
      return runLast(rest);
    case '-V':
    case '--version':
    case 'version':
      console.log(`hopbus ${VERSION}`);
      return;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      console.log(MAIN_HELP);
      return;
    default:
      throw new UsageError(`unknown command "${cmd}"\n\n${MAIN_HELP}`);
  }
}

/** Errors caused by what the user typed (or put in the config file): exit 2, like usage errors. */
function isBadInput(err: unknown): boolean {
  return err instanceof UsageError || err instanceof ConfigError || err instanceof UrlError || err instanceof SubjectError || err instanceof OptionsError;
}

main(process.argv.slice(2)).catch((err: Error) => {
  console.error(`hopbus: ${err.message}`);
  process.exit(isBadInput(err) ? 2 : 1);
});
