/**
 * What the hopbus-protocol authentication suites share: a logger whose lines a test can
 * read, and the shape of a refused connect.
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { expect } from 'vitest';
import { ConnectionError, ServerError } from '../../client/index.js';

/** A pino logger whose lines land in `lines`. */
export function capture(): { lines: Array<Record<string, unknown>>; logger: Logger } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: pino({ level: 'info' }, sink) as unknown as Logger };
}

/** connect() rejects with a ConnectionError whose cause is the broker's answer: a ServerError AUTH. */
export async function refusal(p: Promise<unknown>): Promise<ServerError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectionError);
  const cause = (err as ConnectionError).cause;
  expect(cause).toBeInstanceOf(ServerError);
  expect((cause as ServerError).code).toBe('AUTH');
  return cause as ServerError;
}
